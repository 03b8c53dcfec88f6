"""
How the package's processes spin their node: one SingleThreadedExecutor until shutdown.

One executor thread is enough for the matte node: frames are processed on the node's
own worker, so services answer meanwhile.  A MultiThreadedExecutor costs far more
Python time per callback; flooded with VGA frames at 450 Hz it left the worker so little
of the GIL that output fell from 60 to 5 fps (docs/benchmarks.md, overload rows).  The
benchmark's echo node spins the same way, so that it measures the same transport.
"""

import contextlib
import time
from typing import Callable
from typing import Iterator
from typing import Optional
from typing import Sequence

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.executors import SingleThreadedExecutor


#: Longest wait, after a signal, for rclpy's signal thread to finish (seconds).
SIGNAL_SETTLE_S = 0.25


def settle_after_signal(context, limit: float = SIGNAL_SETTLE_S) -> None:
    """
    Wait until ``context`` is shut down, at most ``limit`` seconds.

    rclpy handles SIGINT/SIGTERM on a thread of its own: it wakes the executors first and
    shuts the contexts down after (Jazzy's and Kilted's rclpy, checked here).  Tearing the
    node down in between (``destroy_node`` while that thread is in ``rcl_shutdown``)
    crashed the process with SIGSEGV or left it hung: 5 of 6 runs of 2,000 SIGINTs here
    (``test/sigint_stress.py --unguarded``); with the wait, 0 of 6.  Where the handler
    does not shut contexts down (Humble), the wait runs to ``limit``, which also lets it
    finish waking the executors before their guard conditions go.
    """
    end = time.monotonic() + limit
    while context.ok() and time.monotonic() < end:
        time.sleep(0.002)


@contextlib.contextmanager
def until_shutdown(context) -> Iterator[None]:
    """
    End the block quietly on SIGINT or when ``context`` is shut down (SIGTERM).

    rclpy's SIGTERM handler shuts the context down from another thread; when that lands
    between an ``ok()`` check and the wait set being built (or a publish), rclpy raises
    an RCLError or RuntimeError ("context is not valid") rather than
    ExternalShutdownException.  An error raised once the context is down is that
    shutdown, not a fault; an error while it is up is re-raised.

    Out of a signal, the block is left only once rclpy's signal thread is done
    (:func:`settle_after_signal`), so that the teardown after it does not race that
    thread.  A KeyboardInterrupt raised while waiting (the SIGINT's own, when the shutdown
    it caused ended the spin first, or a second Ctrl-C) is absorbed, not left to break
    the teardown.
    """
    try:
        yield
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:  # noqa: B902 - rclpy's error types differ between distributions
        if context.ok():
            raise
    else:
        return
    for _ in range(3):   # the late KeyboardInterrupt, or a second Ctrl-C
        try:
            settle_after_signal(context)
            return
        except KeyboardInterrupt:
            continue


def spin(node, on_stop: Optional[Callable[[], None]] = None) -> None:
    """
    Spin ``node`` until SIGINT/SIGTERM or an external shutdown, then tear down.

    ``on_stop`` runs before the executor shuts down (the node ends its worker there);
    then the node is destroyed and rclpy shut down.  A shutdown racing the executor ends
    the process cleanly (:func:`until_shutdown`).
    """
    spin_nodes([node], on_stop)


def spin_nodes(nodes: Sequence, on_stop: Optional[Callable[[], None]] = None) -> None:
    """
    Spin several nodes of one context on one executor thread, as :func:`spin` does one.

    The matte container (:mod:`matte_ros.ros.multi`) spins its camera nodes this way:
    each does its frames on its own worker, so one executor thread answers them all.
    """
    context = nodes[0].context
    executor = SingleThreadedExecutor(context=context)
    for node in nodes:
        executor.add_node(node)
    try:
        with until_shutdown(context):
            executor.spin()
    finally:
        if on_stop is not None:
            on_stop()
        executor.shutdown(timeout_sec=1.0)
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=context)

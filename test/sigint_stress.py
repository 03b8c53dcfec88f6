"""
Stress the package's spin loop with SIGINT: many spin / signal / teardown cycles in one process.

Each cycle creates a node (publisher, subscription, a 1 ms timer), spins it with
``matte_ros.ros.executor.spin`` and sends the process SIGINT 0-10 ms later, as a user or
launch would.  rclpy's signal thread may still be shutting the context down when the
teardown starts; where they race, the process dies (SIGSEGV) or hangs.  A
KeyboardInterrupt that gets out of ``spin`` (its teardown cut short) is counted and
makes the exit code 1.  ``--unguarded`` replaces the wait for that thread
(``executor.settle_after_signal``) with nothing, to see what it prevents.

Run by ``test/test_executor.py`` (slow); by hand::

    python test/sigint_stress.py --cycles 2000 [--unguarded]
"""

import argparse
import os
import random
import signal
import sys
import threading
import time

from matte_ros.measure import processes
from matte_ros.ros import executor
import rclpy
from rclpy.context import Context
from rclpy.signals import SignalHandlerOptions
from rclpy.signals import uninstall_signal_handlers
from std_msgs.msg import String


def cycle(rng: random.Random) -> None:
    """One node: spin it, SIGINT it, tear it down (the node's own sequence)."""
    context = Context()   # a fresh one per cycle, with rclpy's signal handlers as in main()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.ALL)
    node = rclpy.create_node('matte_sigint_stress', context=context)
    node.create_publisher(String, 'stress', 10)
    node.create_subscription(String, 'stress', lambda msg: None, 10)
    node.create_timer(0.001, lambda: None)
    kill = threading.Timer(rng.random() * 0.01, os.kill, (os.getpid(), signal.SIGINT))

    def arm():   # from inside the spin, so the signal cannot land before it
        if not kill.is_alive() and not kill.finished.is_set():
            kill.start()

    node.create_timer(0.0005, arm)
    try:
        executor.spin(node)
    finally:
        if kill.is_alive() or kill.finished.is_set():
            kill.join()
        uninstall_signal_handlers()   # as at the end of a process


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    parser.add_argument('--cycles', type=int, default=500)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--unguarded', action='store_true',
                        help="tear down without waiting for rclpy's signal thread")
    args = parser.parse_args(argv)
    processes.apply_isolation()
    if args.unguarded:
        executor.settle_after_signal = lambda context, limit=0.0: None
    rng = random.Random(args.seed)
    escaped = 0   # KeyboardInterrupts that got out of executor.spin (its teardown broken)
    start = time.monotonic()
    for _ in range(args.cycles):
        try:
            cycle(rng)
        except KeyboardInterrupt:
            escaped += 1
    print('cycles %d, KeyboardInterrupt out of spin %d, %.1f s'
          % (args.cycles, escaped, time.monotonic() - start), flush=True)
    return 1 if escaped else 0


if __name__ == '__main__':
    sys.exit(main())

"""
The test side of a live node: its process, lifecycle, diagnostics, inputs and outputs.

:class:`LiveNode` starts ``matte_node`` in its own process (:mod:`processes`) and
attaches to it from a client rclpy node in this process: a publisher on its input, a
counter per output topic, the node's latest ``/diagnostics`` values, and ``/proc``
samples of the process.  The reliability scenarios and their tests are written
against it.
"""

import os
import time
from typing import Any
from typing import Dict
from typing import List
from typing import Optional

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from matte_ros.measure import process_probe
from matte_ros.measure import processes
from matte_ros.ros.image_msgs import make_image_msg
from matte_ros.ros.lifecycle_client import LifecycleClient
import numpy as np
from rcl_interfaces.msg import ParameterType
from rcl_interfaces.srv import GetParameters
import rclpy
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

OUTPUTS = ('mask', 'alpha', 'composite')


def qos(reliable: bool, depth: int) -> QoSProfile:
    """Return a keep-last QoS profile."""
    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE if reliable
                      else ReliabilityPolicy.BEST_EFFORT)


def header(sec: int, nanosec: int = 0, frame_id: str = 'camera') -> Header:
    """Return a header whose stamp identifies one frame."""
    return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id)


def textured_frames(count: int, height: int, width: int, seed: int = 0) -> List[np.ndarray]:
    """Return ``count`` BGR frames: noise with a bright square that moves."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 60, size=(height, width, 3), dtype=np.uint8)
    side = max(2, min(height, width) // 4)
    out = []
    for i in range(count):
        frame = base.copy()
        x = (i * max(1, width // 16)) % max(1, width - side)
        frame[height // 4:height // 4 + side, x:x + side] = 250
        out.append(frame)
    return out


def _parameter_value(value):
    kind = value.type
    if kind == ParameterType.PARAMETER_BOOL:
        return value.bool_value
    if kind == ParameterType.PARAMETER_INTEGER:
        return value.integer_value
    if kind == ParameterType.PARAMETER_DOUBLE:
        return value.double_value
    if kind == ParameterType.PARAMETER_STRING:
        return value.string_value
    if kind == ParameterType.PARAMETER_INTEGER_ARRAY:
        return list(value.integer_array_value)
    return None


class LiveNode:
    """
    One ``matte_node`` process under ``namespace``, seen from ``client`` (an rclpy node).

    ``params`` are passed with ``-p``; ``input_reliable``/``depth`` choose the QoS of
    the test's image publisher (the node's own comes from its ``qos.*`` parameters).
    """

    def __init__(self, client, namespace: str, params: Dict[str, Any], env: Dict[str, str],
                 log_path: str, input_reliable: bool = False, depth: int = 10,
                 outputs=OUTPUTS, timeout: float = 30.0):
        self.client = client
        self.namespace = namespace
        self.target = namespace + '/matte'
        self.log_path = log_path
        self.process = processes.ManagedProcess(
            processes.node_command(namespace=namespace, params=params), env, log_path)
        self.lifecycle = LifecycleClient(client, self.target, timeout=timeout)
        self.publisher = client.create_publisher(Image, namespace + '/image',
                                                 qos(input_reliable, depth))
        self.counts = dict.fromkeys(outputs, 0)
        self.stamps = {name: set() for name in outputs}
        self.last = {}
        self.diagnostics: Dict[str, str] = {}
        self._subs = [client.create_subscription(
            Image, '%s/%s' % (self.target, name),
            lambda msg, name=name: self._on_output(name, msg), qos(True, 100))
            for name in outputs]
        self._subs.append(client.create_subscription(
            DiagnosticArray, '/diagnostics', self._on_diagnostics, 50))
        self._get_params = client.create_client(GetParameters,
                                                self.target + '/get_parameters')

    # --- callbacks -----------------------------------------------------------------------

    def _on_output(self, name: str, msg: Image) -> None:
        self.counts[name] += 1
        self.stamps[name].add((msg.header.stamp.sec, msg.header.stamp.nanosec))
        self.last[name] = msg

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith(self.target + ':'):
                self.diagnostics = {kv.key: kv.value for kv in status.values}
                self.diagnostics['_level'] = str(int.from_bytes(status.level, 'little')
                                                 if isinstance(status.level, bytes)
                                                 else status.level)
                self.diagnostics['_message'] = status.message

    # --- helpers -------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """Return the node's process id."""
        return self.process.proc.pid

    def alive(self) -> bool:
        """Tell whether the node process is still running."""
        return self.process.alive()

    def usage(self) -> process_probe.Usage:
        """Return the node process's RSS, threads and open fds now."""
        return process_probe.sample(self.pid)

    def counter(self, key: str) -> int:
        """Return an integer diagnostics value (0 before the first message)."""
        try:
            return int(float(self.diagnostics.get(key, 0)))
        except ValueError:
            return 0

    def spin(self, seconds: float, until=None) -> bool:
        """Spin the client for up to ``seconds`` or until ``until()`` holds; return it."""
        end = time.monotonic() + seconds
        while True:
            rclpy.spin_once(self.client, timeout_sec=0.01)
            if until is not None and until():
                return True
            if time.monotonic() >= end:
                return until() if until is not None else True

    def configure_activate(self) -> None:
        """Bring the node to *active* and wait until its subscription matched ours."""
        if not self.lifecycle.change_state('configure'):
            raise AssertionError('configure failed:\n' + self.log_tail())
        if not self.lifecycle.change_state('activate'):
            raise AssertionError('activate failed:\n' + self.log_tail())
        self.wait_for_subscriber()

    def wait_for_subscriber(self, timeout: float = 30.0) -> None:
        """Wait until the node's image subscription matched the test's publisher."""
        if not self.spin(timeout, lambda: self.publisher.get_subscription_count() > 0):
            raise AssertionError('the node never subscribed to %s/image' % self.namespace)

    def send(self, frame: np.ndarray, sec: int, nanosec: int = 0,
             encoding: str = 'bgr8') -> None:
        """Publish one frame stamped (sec, nanosec)."""
        self.publisher.publish(make_image_msg(header(sec, nanosec), frame, encoding))

    def got(self, sec: int, nanosec: int = 0, output: str = 'mask') -> bool:
        """Tell whether the output for the frame stamped (sec, nanosec) arrived."""
        return (sec, nanosec) in self.stamps[output]

    def wait_output(self, sec: int, nanosec: int = 0, timeout: float = 20.0,
                    output: str = 'mask') -> bool:
        """Wait for the output of one frame; return whether it came."""
        return self.spin(timeout, lambda: self.got(sec, nanosec, output))

    def wait_diagnostics(self, predicate, timeout: float = 20.0) -> bool:
        """Wait until the node's diagnostics satisfy ``predicate(self)``."""
        return self.spin(timeout, lambda: bool(self.diagnostics) and predicate(self))

    def get_parameters(self, names: List[str], timeout: float = 20.0) -> Dict[str, Any]:
        """Return the node's current values of ``names`` (``ros2 param get``)."""
        if not self._get_params.wait_for_service(timeout_sec=timeout):
            raise AssertionError('no %s/get_parameters service' % self.target)
        future = self._get_params.call_async(GetParameters.Request(names=list(names)))
        rclpy.spin_until_future_complete(self.client, future, timeout_sec=timeout)
        if not future.done():
            raise AssertionError('get_parameters did not answer within %.0f s' % timeout)
        return {n: _parameter_value(v) for n, v in zip(names, future.result().values)}

    def output(self) -> str:
        """Return everything the node logged."""
        return self.process.output()

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines of the node's log (for failure messages)."""
        return '\n'.join(self.output().splitlines()[-lines:])

    def stop(self, timeout: float = 5.0) -> Optional[int]:
        """Stop the process (SIGINT, escalating) and detach; return its exit code."""
        code = self.process.stop(timeout)
        for sub in self._subs:
            self.client.destroy_subscription(sub)
        self._subs = []
        self.client.destroy_publisher(self.publisher)
        self.client.destroy_client(self._get_params)
        return code


def shared_model(name: str) -> Optional[str]:
    """Return ``../shared/models/<name>`` beside the source tree if present, else None."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(os.path.dirname(here), 'shared', 'models', name)
    return path if os.path.isfile(path) else None

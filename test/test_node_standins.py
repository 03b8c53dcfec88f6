"""
The node on a robot whose ONNX Runtime lists TensorRT but cannot run it, over real DDS.

``matte_node`` runs in its own process with the stand-in listing (test/standin_node.py:
the real CPU onnxruntime lists TensorRT and CUDA and drops them at session creation).
With ``backend tensorrt`` it must serve frames and say ``cpu`` with the reason in
``/diagnostics``; with ``backend_strict`` configure must fail with the reason and the
node stay up.  Needs ../shared/models (the RVM model); skips without it.
"""

import os
import sys
import time

from builtin_interfaces.msg import Time
from conftest import ENV
from conftest import shared_path
from diagnostic_msgs.msg import DiagnosticArray
from diagnostic_msgs.msg import DiagnosticStatus
from matte_ros.measure import processes
from matte_ros.ros.image_msgs import make_image_msg
from matte_ros.ros.lifecycle_client import LifecycleClient
import numpy as np
import pytest
import rclpy
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

pytestmark = [pytest.mark.dds]

NS = '/gpu'
TARGET = NS + '/matte'
LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'standin_node.py')


@pytest.fixture
def standin_node(tmp_path):
    """Start the stand-in node with rvm and the given extra parameters; stop it after."""
    started = []

    def start(mode='missing-libraries', **values):
        params = {'segmenter': 'rvm', 'models.auto_fetch': False, 'composite.mode': 'none',
                  'models.model_path': shared_path('models', 'rvm_mobilenetv3_fp32.onnx'),
                  'models.model_dir': str(tmp_path), 'diagnostics_period': 0.5,
                  'tensorrt.engine_cache': str(tmp_path / 'matte_ros' / 'engines')}
        params.update(values)
        argv = processes.node_command(namespace=NS, params=params)
        argv[1:3] = [LAUNCHER, mode]  # python -m matte_ros.ros.node -> standin_node.py
        env = dict(ENV, PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
                   XDG_CACHE_HOME=str(tmp_path))
        proc = processes.ManagedProcess(argv, env, str(tmp_path / 'node.log'))
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def spin(node, seconds, until):
    """Spin ``node`` until ``until()`` or ``seconds``; return ``until()``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
        if until():
            return True
    return until()


class Client:
    """The test's side: frames out, alphas and the node's diagnostics in."""

    def __init__(self, node, proc):
        self.node = node
        self.proc = proc
        self.lifecycle = LifecycleClient(node, TARGET, timeout=60.0)
        self.alphas, self.statuses = [], []
        node.create_subscription(Image, TARGET + '/alpha', self.alphas.append, QoSProfile(
            depth=20, reliability=ReliabilityPolicy.RELIABLE))
        node.create_subscription(DiagnosticArray, '/diagnostics', self.statuses.append, 10)
        self.pub = node.create_publisher(Image, NS + '/image', QoSProfile(
            depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))
        self.frame = np.random.default_rng(0).integers(0, 255, (120, 160, 3)).astype(np.uint8)

    def activate(self):
        """Configure and activate the node; wait until it listens."""
        assert self.lifecycle.change_state('configure'), self.proc.output()
        assert self.lifecycle.change_state('activate')
        assert spin(self.node, 30.0, lambda: self.pub.get_subscription_count() > 0)

    def serve(self, sec):
        """Send one frame stamped ``sec``; wait for its alpha."""
        count = len(self.alphas)
        self.pub.publish(make_image_msg(Header(stamp=Time(sec=sec), frame_id='cam'),
                                        self.frame, 'bgr8'))
        assert spin(self.node, 30.0, lambda: len(self.alphas) > count), self.proc.output()

    def diagnostics(self):
        """Yield (level, message, values) of the node's statuses received so far."""
        for array in self.statuses:
            for status in array.status:
                if status.name.endswith(TARGET + ': matte'):
                    yield status.level, status.message, {kv.key: kv.value
                                                         for kv in status.values}


def test_tensorrt_that_cannot_run_serves_frames_and_diagnostics_say_cpu(client_node,
                                                                        standin_node):
    client = Client(client_node, standin_node(backend='tensorrt'))
    client.activate()
    for sec in range(1, 4):
        client.serve(sec)
    assert spin(client_node, 10.0, lambda: any(
        v.get('backend') == 'cpu' and 'TensorrtExecutionProvider' in v.get('backend_note', '')
        for _, _, v in client.diagnostics())), client.proc.output()
    assert 'TensorrtExecutionProvider' in client.proc.output()  # and the log says why
    assert client.proc.alive()


def test_an_engine_build_is_visible_in_diagnostics_while_frames_are_served(client_node,
                                                                           standin_node):
    client = Client(client_node, standin_node('slow-tensorrt', backend='tensorrt'))
    client.activate()
    client.serve(1)  # starts the 4 s engine build; served meanwhile

    def building():
        return any(level == DiagnosticStatus.WARN
                   and message.startswith('building TensorRT engine for 160x120 (')
                   for level, message, _ in client.diagnostics())

    assert spin(client_node, 5.0, building), client.proc.output()
    client.serve(2)  # still served during the build

    def failed():
        return any(v.get('backend') == 'cpu' and 'TensorRT engine for 160x120 failed'
                   in v.get('backend_note', '') for _, _, v in client.diagnostics())

    # the engine then fails (no CUDA memory here): at the next frame rvm leaves TensorRT
    # for good, serving on, and diagnostics and the log say why
    for sec in range(3, 40):
        client.serve(sec)
        if spin(client_node, 0.5, failed):
            break
    assert failed(), client.proc.output()
    assert 'TensorRT engine for 160x120 failed' in client.proc.output()


def test_strict_tensorrt_that_cannot_run_fails_configure_with_the_reason(client_node,
                                                                         standin_node):
    proc = standin_node(backend='tensorrt', backend_strict=True)
    lifecycle = LifecycleClient(client_node, TARGET, timeout=60.0)
    assert not lifecycle.change_state('configure')
    assert lifecycle.state() == 'unconfigured'
    assert proc.alive()
    output = proc.output()
    assert 'configure failed' in output and 'TensorrtExecutionProvider' in output

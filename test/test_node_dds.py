"""
The node in its own process over real DDS, driven by this process as a client.

Each test starts ``matte_node`` under ``/cam`` and drives it through
``/cam/matte/change_state`` as ``ros2 lifecycle set`` would, sends frames on
``/cam/image`` and checks what comes back on ``/cam/matte/{mask,alpha,composite}``.
"""

import time

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from matte_ros.image_encodings import decode
from matte_ros.ros.image_msgs import make_image_msg
from matte_ros.ros.lifecycle_client import LifecycleClient
import numpy as np
import pytest
import rclpy
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

pytestmark = [pytest.mark.dds, pytest.mark.ros_integration]   # also run on Jazzy

NS = '/cam'
TARGET = NS + '/matte'
OUTPUTS = ('mask', 'alpha', 'composite')
H, W = 120, 160


class Graph:
    """The test's side of the graph: a frame publisher and output recorders."""

    def __init__(self, node):
        self.node = node
        self.lifecycle = LifecycleClient(node, TARGET, timeout=20.0)
        self.image_pub = node.create_publisher(
            Image, NS + '/image', QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))
        self.received = {name: [] for name in OUTPUTS}
        self.diagnostics = []
        for name in OUTPUTS:
            node.create_subscription(
                Image, '%s/%s' % (TARGET, name),
                lambda msg, name=name: self.received[name].append(msg),
                QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
        node.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.append, 10)

    def spin(self, seconds: float, until=None):
        """Spin the client for up to ``seconds`` or until ``until()`` is true."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(self.node, timeout_sec=0.05)
            if until is not None and until():
                return True
        return until() if until is not None else True

    def wait_for_subscriber(self, timeout=20.0):
        """Wait until the node's image subscription has matched our publisher."""
        assert self.spin(timeout, lambda: self.image_pub.get_subscription_count() > 0), \
            'the node never subscribed to %s/image' % NS

    def send(self, frame, stamp_sec: int, frame_id='camera_optical', encoding='bgr8'):
        """Publish one frame with a distinctive header; return that header."""
        header = Header(stamp=Time(sec=stamp_sec, nanosec=123456789), frame_id=frame_id)
        self.image_pub.publish(make_image_msg(header, frame, encoding))
        return header

    def outputs_for(self, stamp_sec: int, timeout=10.0):
        """Wait for all three outputs of the frame stamped ``stamp_sec``; return them."""
        def found():
            return {name: next((m for m in msgs if m.header.stamp.sec == stamp_sec), None)
                    for name, msgs in self.received.items()}
        self.spin(timeout, lambda: all(found().values()))
        return found()

    def clear(self):
        """Forget what was received so far."""
        for msgs in self.received.values():
            msgs.clear()


def frames(n, seed=0):
    """Return distinct textured BGR frames: a bright square moving over noise."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 60, size=(H, W, 3), dtype=np.uint8)
    out = []
    for i in range(n):
        f = base.copy()
        f[30:70, 10 + 20 * i:50 + 20 * i] = 250
        out.append(f)
    return out


def as_array(msg):
    """Decode an Image message into its native NumPy array."""
    return decode(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)


@pytest.fixture
def graph(client_node, start_node):
    """Start the node (framediff, deterministic) and return the test's graph side."""
    proc = start_node(namespace=NS, params={'segmenter': 'framediff'})
    g = Graph(client_node)
    g.proc = proc
    assert g.lifecycle.state() == 'unconfigured'
    return g


def activate(g):
    """Configure and activate the node, and wait until it listens."""
    assert g.lifecycle.change_state('configure')
    assert g.lifecycle.state() == 'inactive'
    assert g.lifecycle.change_state('activate')
    assert g.lifecycle.state() == 'active'
    g.wait_for_subscriber()


def test_lifecycle_and_outputs_carry_the_input_header(graph):
    g = graph
    activate(g)
    f0, f1 = frames(2)
    g.send(f0, 1000, frame_id='cam_left')
    g.spin(1.0, lambda: g.received['mask'])
    sent = g.send(f1, 1001, frame_id='cam_left')
    out = g.outputs_for(1001)
    for name in OUTPUTS:
        msg = out[name]
        assert msg is not None, 'no %s output for the frame' % name
        assert msg.header.stamp.sec == sent.stamp.sec
        assert msg.header.stamp.nanosec == sent.stamp.nanosec
        assert msg.header.frame_id == 'cam_left'
        assert (msg.height, msg.width) == (H, W)
    assert out['mask'].encoding == 'mono8' and out['alpha'].encoding == 'mono8'
    assert out['composite'].encoding == 'bgr8'
    mask = as_array(out['mask'])
    assert set(np.unique(mask)) <= {0, 255}
    # the square moved by 20 px: the pixels it left and entered changed
    assert mask[40:60, 12:28].min() == 255 and mask[40:60, 52:68].min() == 255
    assert mask[100:, :].max() == 0
    for transition, state in (('deactivate', 'inactive'), ('cleanup', 'unconfigured')):
        assert g.lifecycle.change_state(transition)
        assert g.lifecycle.state() == state
    assert g.proc.alive()


def test_rgb8_input_gives_rgb8_composite(graph):
    g = graph
    activate(g)
    f0, f1 = frames(2)
    g.send(f0[..., ::-1].copy(), 10, encoding='rgb8')
    g.send(f1[..., ::-1].copy(), 11, encoding='rgb8')
    out = g.outputs_for(11)
    assert out['composite'] is not None
    assert out['composite'].encoding == 'rgb8'


def test_nothing_published_while_inactive(graph):
    g = graph
    assert g.lifecycle.change_state('configure')
    for i, f in enumerate(frames(3)):
        g.send(f, 20 + i)
        g.spin(0.3)
    g.spin(1.0)
    assert all(not msgs for msgs in g.received.values())
    assert g.lifecycle.change_state('activate')
    g.wait_for_subscriber()
    f = frames(2)
    g.send(f[0], 30)
    g.send(f[1], 31)
    assert g.outputs_for(31)['mask'] is not None


def test_parameter_change_applies_to_the_next_frame_and_bad_values_are_rejected(graph):
    g = graph
    activate(g)
    results = g.lifecycle.set_parameters({'composite.mode': 'color',
                                          'composite.color': [1, 2, 3]})
    assert results == [(True, ''), (True, '')]
    f = frames(2)
    g.send(f[0], 40)
    g.send(f[1], 41)
    composite = as_array(g.outputs_for(41)['composite'])
    assert composite[110, 150].tolist() == [1, 2, 3]   # background pixel → the colour
    ok, reason = g.lifecycle.set_parameters({'threshold': 1.5})[0]
    assert not ok and 'threshold' in reason
    ok, reason = g.lifecycle.set_parameters({'composite.blur_kernel': 40})[0]
    assert not ok and ('odd' in reason or 'step' in reason)
    ok, reason = g.lifecycle.set_parameters({'segmenter': 'no_such'})[0]
    assert not ok and 'segmenter' in reason
    ok, reason = g.lifecycle.set_parameters({'threshold': 'high'})[0]
    assert not ok
    assert g.proc.alive()


def test_failed_segmenter_reload_keeps_the_old_one(graph, tmp_path):
    g = graph
    activate(g)
    # set one by one, in order: the model settings first, then the segmenter that needs them
    results = g.lifecycle.set_parameters({
        'models.auto_fetch': False, 'models.model_path': str(tmp_path / 'missing.onnx'),
        'segmenter': 'rvm'})
    assert results[:2] == [(True, ''), (True, '')]
    ok, reason = results[2]
    assert not ok and 'missing.onnx' in reason
    f = frames(2)
    g.send(f[0], 50)
    g.send(f[1], 51)
    assert g.outputs_for(51)['mask'] is not None   # framediff still serves
    assert g.lifecycle.set_parameters({'segmenter': 'bgsub'}) == [(True, '')]
    g.send(f[0], 52)
    assert g.outputs_for(52)['mask'] is not None


def test_reset_clears_the_previous_frame(graph):
    g = graph
    activate(g)
    a, b = frames(2)
    g.send(a, 60)
    g.spin(1.0, lambda: g.received['mask'])
    g.send(b, 61)
    assert as_array(g.outputs_for(61)['mask']).max() == 255   # a → b changed
    response = g.lifecycle.reset()
    assert response.success
    g.send(a, 62)
    # after the reset there is no previous frame: a is compared with nothing
    assert as_array(g.outputs_for(62)['mask']).max() == 0


def test_stabiliser_switches_on_live_and_reset_clears_it(graph):
    g = graph
    activate(g)
    results = g.lifecycle.set_parameters({'stabilizer.enabled': True,
                                          'stabilizer.strength': 0.9})
    assert results == [(True, ''), (True, '')]
    ok, reason = g.lifecycle.set_parameters({'stabilizer.strength': 1.5})[0]
    assert not ok and 'stabilizer.strength' in reason
    a, b = frames(2)
    square = (slice(40, 60), slice(52, 68))              # where the square entered in b

    def mask_of(frame, stamp):
        g.send(frame, stamp)
        msg = g.outputs_for(stamp)['mask']
        assert msg is not None, 'no mask for frame %d' % stamp
        return as_array(msg)

    mask_of(a, 70)
    assert mask_of(b, 71)[square].min() == 255           # framediff: a -> b changed
    # b again: framediff sees no change, the stabiliser holds 0.9 of the past where the
    # image is still, so the square stays in the mask.
    assert mask_of(b, 72)[square].min() == 255
    assert g.lifecycle.reset().success
    # After ~/reset nothing is held (0.81 of the past would still show).
    assert mask_of(b, 73).max() == 0
    assert g.lifecycle.set_parameters({'stabilizer.enabled': False}) == [(True, '')]
    mask_of(a, 74)
    mask_of(b, 75)
    assert mask_of(b, 76).max() == 0                      # off: framediff's own answer
    assert g.proc.alive()


def test_malformed_messages_do_not_kill_the_node(graph):
    g = graph
    activate(g)
    bad = []
    for encoding, height, width, step, size in (
            ('16UC1', 4, 4, 8, 32), ('bgr8', 4, 4, 5, 60), ('bgr8', 4, 4, 12, 10),
            ('nonsense', 2, 2, 2, 4), ('bgr8', 2 ** 31 - 1, 2 ** 31 - 1, 3, 3)):
        msg = Image(height=height, width=width, encoding=encoding, step=step)
        msg.data = bytes(size)
        msg.header.stamp.sec = 70
        bad.append(msg)
    for msg in bad:
        g.image_pub.publish(msg)
        g.spin(0.1)
    f = frames(2)
    g.send(f[0], 71)
    g.send(f[1], 72)
    assert g.outputs_for(72)['mask'] is not None
    assert g.proc.alive()
    assert not any(m.header.stamp.sec == 70 for m in g.received['mask'])

    def rejected():
        for array in g.diagnostics:
            for status in array.status:
                values = {kv.key: kv.value for kv in status.values}
                if status.name.startswith(TARGET) and int(values.get('rejected', 0)) >= 1:
                    return values
        return None
    assert g.spin(5.0, rejected), 'diagnostics never reported the rejected messages'
    assert rejected()['last_reject_reason']


def test_invalid_transitions_are_refused_and_the_node_lives(graph):
    g = graph
    assert not g.lifecycle.change_state('activate')      # not configured yet
    activate(g)
    assert not g.lifecycle.change_state('activate')      # already active
    assert not g.lifecycle.change_state('configure')
    assert g.lifecycle.state() == 'active'
    assert g.proc.alive()


def test_configure_failure_leaves_the_node_up(client_node, start_node, tmp_path):
    proc = start_node(namespace=NS, params={
        'segmenter': 'rvm', 'models.auto_fetch': False,
        'models.model_path': str(tmp_path / 'absent.onnx')})
    lifecycle = LifecycleClient(client_node, TARGET, timeout=20.0)
    assert not lifecycle.change_state('configure')
    assert lifecycle.state() == 'unconfigured'
    assert proc.alive()
    assert 'absent.onnx' in proc.output()
    assert lifecycle.set_parameters({'segmenter': 'framediff'}) == [(True, '')]
    assert lifecycle.change_state('configure')
    assert lifecycle.state() == 'inactive'


def test_sigint_exits_cleanly(client_node, start_node):
    proc = start_node(namespace=NS, params={'segmenter': 'bgsub'})
    lifecycle = LifecycleClient(client_node, TARGET, timeout=20.0)
    assert lifecycle.change_state('configure') and lifecycle.change_state('activate')
    start = time.monotonic()
    code = proc.stop(timeout=5.0)
    assert code == 0, proc.output()
    assert time.monotonic() - start < 5.0


def test_console_script_with_bgsub_serves_vga_frames(client_node, start_node):
    """
    Check the documented robot case: ``matte_node --ros-args -r __ns:=/cam -p segmenter:=bgsub``.

    640×480 bgr8 frames (900 KB, beyond Fast DDS's default best-effort limit) go in on
    /cam/image and come back on /cam/matte/{mask,alpha,composite} with their headers.
    """
    start_node(namespace=NS, params={'segmenter': 'bgsub'}, console_script=True)
    g = Graph(client_node)
    assert g.lifecycle.state() == 'unconfigured'
    activate(g)
    rng = np.random.default_rng(3)
    background = rng.integers(0, 80, size=(480, 640, 3), dtype=np.uint8)
    for i in range(15):
        frame = background.copy()
        if i >= 10:
            frame[200:300, 40 * i - 300:40 * i - 200] = 255
        header = g.send(frame, 200 + i, frame_id='cam_vga')
        got = g.outputs_for(200 + i)
        for name in OUTPUTS:
            assert got[name] is not None, (name, i)
            assert got[name].header == header
            assert (got[name].height, got[name].width) == (480, 640)
    mask = as_array(got['mask'])
    assert set(np.unique(mask)) <= {0, 255}
    assert mask[200:300, 260:360].mean() > 200 and mask[:150].mean() < 10

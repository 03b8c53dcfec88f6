"""
Segmenter ``onnx`` served live over DDS, with the transparent composite.

The node runs in its own process on a recurrent model the test builds
(test/onnx_graphs.py: ``alpha = (state + R) / 2``), configured by parameters only; the
test checks the published alpha against the same core in-process (carried state
included), that ``~/composite`` is ``bgra8`` (``rgba8`` for rgb8 input) whose alpha
channel equals ``~/alpha``, that ``~/composite/compressed`` is a PNG with that alpha,
and that a wrong setting fails configure while the node keeps answering.
"""

import time

from builtin_interfaces.msg import Time
import cv2
from matte_ros.image_encodings import decode
from matte_ros.pipeline import Pipeline
from matte_ros.ros.image_msgs import make_image_msg
from matte_ros.ros.lifecycle_client import LifecycleClient
import numpy as np
import onnx_graphs
import pytest
import rclpy
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import CompressedImage
from sensor_msgs.msg import Image
from std_msgs.msg import Header

pytestmark = [pytest.mark.dds, pytest.mark.ros_integration]

NS = '/own'
TARGET = NS + '/matte'
H, W = 96, 128


class Stream:
    """Publish frames to the node; collect its alpha, composite and compressed composite."""

    def __init__(self, node):
        self.node = node
        self.lifecycle = LifecycleClient(node, TARGET, timeout=30.0)
        self.pub = node.create_publisher(
            Image, NS + '/image', QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))
        self.got = {'alpha': {}, 'composite': {}, 'composite/compressed': {}}
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        for name, kind in (('alpha', Image), ('composite', Image),
                           ('composite/compressed', CompressedImage)):
            node.create_subscription(kind, '%s/%s' % (TARGET, name),
                                     lambda msg, name=name: self._store(name, msg), qos)

    def _store(self, name, msg):
        self.got[name][msg.header.stamp.sec] = msg

    def spin_until(self, done, seconds=30.0):
        end = time.monotonic() + seconds
        while time.monotonic() < end and not done():
            rclpy.spin_once(self.node, timeout_sec=0.05)
        return done()

    def send(self, frame, sec, encoding='bgr8'):
        """Publish ``frame`` (BGR) stamped ``sec``; wait for all three outputs of it."""
        image = frame[:, :, ::-1].copy() if encoding == 'rgb8' else frame
        header = Header(stamp=Time(sec=sec, nanosec=0), frame_id='cam')
        self.pub.publish(make_image_msg(header, image, encoding))
        assert self.spin_until(lambda: all(sec in got for got in self.got.values())), \
            'outputs of frame %d missing: %s' % (sec, {k: sec in v for k, v in self.got.items()})
        return {k: v[sec] for k, v in self.got.items()}


def image_of(msg):
    return decode(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)


def test_own_recurrent_model_and_transparent_composite_over_dds(tmp_path, client_node,
                                                                start_node):
    model = onnx_graphs.recurrent_model(tmp_path / 'own.onnx')
    values = {'segmenter': 'onnx', 'backend': 'cpu', 'onnx.model_path': model,
              'onnx.recurrent': 'state_in:state_out', 'onnx.output': 'alpha',
              'composite.mode': 'transparent', 'composite.compressed': True}
    start_node(namespace=NS, params=values)
    stream = Stream(client_node)
    assert stream.lifecycle.change_state('configure')
    assert stream.lifecycle.change_state('activate')
    assert stream.spin_until(lambda: stream.pub.get_subscription_count() > 0)
    reference = Pipeline(values)
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8) for _ in range(3)]
    for i, frame in enumerate(frames):
        sec = 10 + i
        out = stream.send(frame, sec)
        want = reference.process(frame, float(sec), 'cam')
        alpha = image_of(out['alpha'])
        assert np.array_equal(alpha, want.alpha), 'frame %d: alpha differs from the core' % i
        composite = out['composite']
        assert composite.encoding == 'bgra8'
        bgra = image_of(composite)
        assert bgra.shape == (H, W, 4)
        assert np.array_equal(bgra[:, :, 3], alpha), 'composite alpha is not ~/alpha'
        assert np.array_equal(bgra[:, :, :3], frame)
        png = out['composite/compressed']
        assert 'png' in png.format
        decoded = cv2.imdecode(np.frombuffer(bytes(png.data), np.uint8), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(decoded, bgra)
    # the state is carried: the third frame is not what it gives alone
    alone = Pipeline(values)
    assert np.abs(alone.process(frames[2]).alpha.astype(int) - alpha.astype(int)).max() > 20
    alone.close()
    # rgb8 input: the composite is rgba8, its alpha still ~/alpha
    out = stream.send(frames[0], 20, encoding='rgb8')
    assert out['composite'].encoding == 'rgba8'
    rgba = image_of(out['composite'])
    assert np.array_equal(rgba[:, :, 3], image_of(out['alpha']))
    assert np.array_equal(rgba[:, :, :3], frames[0][:, :, ::-1])
    reference.close()


def test_wrong_setting_fails_configure_and_the_node_still_answers(tmp_path, client_node,
                                                                  start_node):
    model = onnx_graphs.channel_model(tmp_path / 'own.onnx')
    proc = start_node(namespace=NS, params={'segmenter': 'onnx', 'backend': 'cpu',
                                            'onnx.model_path': model,
                                            'onnx.layout': 'nhwc'})
    stream = Stream(client_node)
    assert not stream.lifecycle.change_state('configure')
    assert stream.lifecycle.state() == 'unconfigured'
    assert stream.spin_until(lambda: 'onnx.layout' in proc.output(), 10.0), proc.output()


def test_a_real_person_model_serves_live_from_parameters_only(client_node, start_node):
    from conftest import davis_frames
    from conftest import shared_path
    model = shared_path('models', 'selfie_segmentation.onnx')
    values = {'segmenter': 'onnx', 'backend': 'cpu', 'onnx.model_path': model,
              'onnx.layout': 'nhwc', 'composite.mode': 'transparent'}
    start_node(namespace=NS, params=values)
    stream = Stream(client_node)
    assert stream.lifecycle.change_state('configure')
    assert stream.lifecycle.change_state('activate')
    assert stream.spin_until(lambda: stream.pub.get_subscription_count() > 0)
    reference = Pipeline(values)
    stream.got.pop('composite/compressed')   # composite.compressed is off here
    for i, frame in enumerate(davis_frames('parkour', 2, (320, 180))):
        out = stream.send(frame, 30 + i)
        alpha = image_of(out['alpha'])
        want = reference.process(frame).alpha
        # same code and model; ONNX Runtime's threads may sum in another order
        assert np.abs(alpha.astype(int) - want.astype(int)).max() <= 2
        assert alpha.max() > 128, 'a person is in view'
        assert np.array_equal(image_of(out['composite'])[:, :, 3], alpha)
    reference.close()

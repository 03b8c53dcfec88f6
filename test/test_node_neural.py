"""
The neural segmenters served live over DDS: carried state and its reset rules.

The node runs ``rvm`` (or ``selfie``) in its own process on real DAVIS frames; the test
runs the same core (:class:`~matte_ros.pipeline.Pipeline`) in-process on the same frames
with the same stamps and frame_ids, so what the node published can be compared pixel by
pixel with what carried (or freshly reset) recurrent state must give.  Models come from
../shared/models (the reference files), so these tests skip without it.
"""

import os

from builtin_interfaces.msg import Time
from conftest import shared_path
import cv2
from matte_ros.image_encodings import decode
from matte_ros.pipeline import Pipeline
from matte_ros.ros.image_msgs import make_image_msg
from matte_ros.ros.lifecycle_client import LifecycleClient
import numpy as np
import pytest
import rclpy
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

pytestmark = pytest.mark.ros_integration   # also run on Jazzy

NS = '/neural'
TARGET = NS + '/matte'
SIZE = (320, 180)        # width, height: DAVIS 854×480 scaled down to keep the test quick
#: uint8 tolerance between the node's alpha and the in-process one (same code, same model;
#: ONNX Runtime may schedule threads differently in the two processes)
TOLERANCE = 2


def davis_frames(count):
    folder = shared_path('data', 'davis2016', 'JPEGImages', '480p', 'parkour')
    names = sorted(os.listdir(folder))[:count]
    return [cv2.resize(cv2.imread(os.path.join(folder, n)), SIZE, interpolation=cv2.INTER_AREA)
            for n in names]


class Stream:
    """Send one frame at a time to the live node and wait for its alpha."""

    def __init__(self, node):
        self.node = node
        self.lifecycle = LifecycleClient(node, TARGET, timeout=60.0)
        self.pub = node.create_publisher(
            Image, NS + '/image', QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))
        self.alphas = {}
        node.create_subscription(Image, TARGET + '/alpha', self._on_alpha,
                                 QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))

    def _on_alpha(self, msg):
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id)
        self.alphas[key] = decode(msg.encoding, msg.height, msg.width, msg.step,
                                  msg.is_bigendian, msg.data)

    def spin_until(self, done, seconds=60.0):
        end = rclpy.clock.Clock().now().nanoseconds + seconds * 1e9
        while rclpy.clock.Clock().now().nanoseconds < end:
            rclpy.spin_once(self.node, timeout_sec=0.05)
            if done():
                return True
        return False

    def start(self):
        assert self.lifecycle.change_state('configure')
        assert self.lifecycle.change_state('activate')
        assert self.spin_until(lambda: self.pub.get_subscription_count() > 0)

    def alpha_for(self, frame, stamp: float, frame_id='cam'):
        sec = int(stamp)
        nanosec = int(round((stamp - sec) * 1e9))
        key = (sec, nanosec, frame_id)
        header = Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id)
        self.pub.publish(make_image_msg(header, frame, 'bgr8'))
        assert self.spin_until(lambda: key in self.alphas), 'no alpha for %s' % (key,)
        return self.alphas[key]


def close(a, b):
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()) <= TOLERANCE


@pytest.fixture
def rvm_setup(client_node, start_node):
    model = shared_path('models', 'rvm_mobilenetv3_fp32.onnx')
    values = {'segmenter': 'rvm', 'models.model_path': model, 'models.auto_fetch': False,
              'rvm.downsample_ratio': 0.5, 'rvm.max_gap': 1.0, 'composite.mode': 'none',
              'backend': 'cpu'}
    start_node(namespace=NS, params=values)
    stream = Stream(client_node)
    stream.start()
    reference = Pipeline(values)
    yield stream, reference
    reference.close()


def test_rvm_carries_state_over_dds_and_resets_on_every_rule(rvm_setup):
    stream, reference = rvm_setup
    frames = davis_frames(6)
    fresh = [Pipeline(reference.config.values) for _ in range(2)]

    def first_frame(frame):
        """Alpha of ``frame`` as the first frame of a stream (no carried state)."""
        fresh[0].reset('test')
        return fresh[0].process(frame, None, 'x').alpha

    # a continuous stream: the node's alphas are the in-process ones with carried state
    carried = []
    for i, frame in enumerate(frames[:4]):
        got = stream.alpha_for(frame, 10.0 + 0.1 * i)
        want = reference.process(frame, 10.0 + 0.1 * i, 'cam').alpha
        assert close(got, want), 'frame %d differs from the carried-state reference' % i
        carried.append(got)
    # the state is really used: frame 3 with carried state differs from frame 3 alone
    alone = first_frame(frames[3])
    assert np.abs(carried[3].astype(np.int16) - alone.astype(np.int16)).max() > 10 * TOLERANCE

    # each rule resets: the node's output equals the first-frame output of that frame
    stream.lifecycle.reset()
    assert close(stream.alpha_for(frames[4], 10.5), first_frame(frames[4])), '~/reset'
    stream.alpha_for(frames[5], 10.6)
    assert close(stream.alpha_for(frames[3], 10.7, frame_id='other'),
                 first_frame(frames[3])), 'frame_id change'
    stream.alpha_for(frames[4], 10.8, frame_id='other')
    assert close(stream.alpha_for(frames[2], 10.75, frame_id='other'),
                 first_frame(frames[2])), 'stamp going backwards'
    stream.alpha_for(frames[3], 10.85, frame_id='other')
    assert close(stream.alpha_for(frames[1], 12.5, frame_id='other'),
                 first_frame(frames[1])), 'stamp jump above rvm.max_gap'
    stream.alpha_for(frames[2], 12.6, frame_id='other')
    small = cv2.resize(frames[0], (SIZE[0] // 2, SIZE[1] // 2))
    assert close(stream.alpha_for(small, 12.7, frame_id='other'),
                 first_frame(small)), 'resolution change'
    # deactivate / activate clears it too
    assert stream.lifecycle.change_state('deactivate')
    assert stream.lifecycle.change_state('activate')
    assert stream.spin_until(lambda: stream.pub.get_subscription_count() > 0)
    assert close(stream.alpha_for(small, 12.8, frame_id='other'),
                 first_frame(small)), 'deactivate'
    for p in fresh:
        p.close()


def test_selfie_serves_live_frames_equal_to_the_core(client_node, start_node):
    model = shared_path('models', 'selfie_segmentation.tflite')
    values = {'segmenter': 'selfie', 'selfie.model': 'general', 'models.model_path': model,
              'models.auto_fetch': False, 'selfie.smoothing': 0.5, 'composite.mode': 'none',
              'backend': 'cpu'}
    start_node(namespace=NS, params=values)
    stream = Stream(client_node)
    stream.start()
    reference = Pipeline(values)
    frames = davis_frames(3)
    for i, frame in enumerate(frames):
        got = stream.alpha_for(frame, 20.0 + 0.1 * i)
        assert close(got, reference.process(frame, 20.0 + 0.1 * i, 'cam').alpha), i
    assert got.max() > 128, 'a person is in view: some alpha must be high'
    # smoothing is temporal state: ~/reset makes the next output the unsmoothed one
    stream.lifecycle.reset()
    reference.reset('test')
    got = stream.alpha_for(frames[0], 20.5)
    assert close(got, reference.process(frames[0], 20.5, 'cam').alpha)
    reference.close()

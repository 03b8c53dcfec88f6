"""The node publishes bgsub's background image on ``~/background`` (bgr8, the input's header)."""

import time

from builtin_interfaces.msg import Time
from matte_ros.ros.image_msgs import image_msg_to_bgr8
from matte_ros.ros.image_msgs import make_image_msg
from matte_ros.ros.lifecycle_client import LifecycleClient
import numpy as np
import pytest
import rclpy
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

pytestmark = [pytest.mark.dds, pytest.mark.ros_integration]

NS = '/bgcam'
TARGET = NS + '/matte'
H, W = 96, 128


def _spin(node, seconds, until):
    end = time.monotonic() + seconds
    while time.monotonic() < end and not until():
        rclpy.spin_once(node, timeout_sec=0.05)
    return until()


def test_background_arrives_with_the_input_header(client_node, start_node):
    node = client_node
    start_node(namespace=NS, params={'segmenter': 'bgsub'})
    lifecycle = LifecycleClient(node, TARGET, timeout=20.0)
    reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    pub = node.create_publisher(Image, NS + '/image', reliable)
    got = []
    node.create_subscription(Image, TARGET + '/background', got.append, reliable)
    assert lifecycle.change_state('configure')
    assert lifecycle.change_state('activate')
    assert _spin(node, 20.0, lambda: pub.get_subscription_count() > 0)
    rng = np.random.default_rng(3)
    scene = rng.integers(20, 230, (H, W, 3), dtype=np.uint8)
    frame = scene.copy()
    frame[30:60, 40:80] = (250, 10, 10)  # an object over part of the scene
    for sec in range(1, 40):
        header = Header(stamp=Time(sec=sec, nanosec=777), frame_id='bg_optical')
        pub.publish(make_image_msg(header, scene if sec == 1 else frame, 'bgr8'))
        if _spin(node, 0.1, lambda: any(m.header.stamp.sec >= 5 for m in got)):
            break
    assert _spin(node, 10.0, lambda: any(m.header.stamp.sec >= 5 for m in got)), \
        'no ~/background although a subscriber listens'
    for msg in got:
        assert msg.header.frame_id == 'bg_optical' and msg.header.stamp.nanosec == 777
        assert (msg.encoding, msg.height, msg.width) == ('bgr8', H, W)
    last = image_msg_to_bgr8(got[-1], H * W)
    # The background is the scene learnt from the first frame, not the object over it.
    assert np.abs(last.astype(int) - scene.astype(int)).max() <= 2

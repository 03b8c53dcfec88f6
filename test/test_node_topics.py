"""
The node's ROS-toolchain topics, in its own process over real DDS.

Compressed input (``input_transport: compressed`` on ``image/compressed``, JPEG and PNG),
the optional ``~/composite/compressed`` output, ``camera_info`` republished with each
output frame's header, and the tracker outputs: ``~/roi`` (largest foreground blob) and
the foreground fraction in ``/diagnostics``.  Frames are drawn here (framediff segmenter:
the mask is exactly what changed between two frames).
"""

import time

from builtin_interfaces.msg import Time
import cv2
from diagnostic_msgs.msg import DiagnosticArray
from matte_ros import compressed
from matte_ros.image_encodings import decode
from matte_ros.ros.image_msgs import make_image_msg
from matte_ros.ros.lifecycle_client import LifecycleClient
import numpy as np
import pytest
import rclpy
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import CompressedImage
from sensor_msgs.msg import Image
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import Header

pytestmark = [pytest.mark.dds, pytest.mark.ros_integration]   # also run on Jazzy

NS = '/cam'
TARGET = NS + '/matte'
H, W = 120, 160
BIG = (40, 30, 60, 40)      # x, y, width, height of the large square in the second frame
SMALL = (10, 90, 10, 10)


def _frames():
    """Return (background, frame with a big and a small bright square) as BGR."""
    rng = np.random.default_rng(5)
    background = rng.integers(0, 60, size=(H, W, 3), dtype=np.uint8)
    changed = background.copy()
    for x, y, w, h in (BIG, SMALL):
        changed[y:y + h, x:x + w] = 250
    return background, changed


def _reliable(depth=50):
    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)


class Topics:
    """The test's side: publishers of image, compressed image and camera_info; recorders."""

    def __init__(self, node):
        self.node = node
        self.lifecycle = LifecycleClient(node, TARGET, timeout=20.0)
        best_effort = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.raw_pub = node.create_publisher(Image, NS + '/image', best_effort)
        self.compressed_pub = node.create_publisher(
            CompressedImage, NS + '/image/compressed', best_effort)
        self.info_pub = node.create_publisher(CameraInfo, NS + '/camera_info', best_effort)
        self.got = {'mask': [], 'roi': [], 'camera_info': [], 'composite/compressed': []}
        types = {'mask': Image, 'roi': RegionOfInterest, 'camera_info': CameraInfo,
                 'composite/compressed': CompressedImage}
        self.subscriptions = {}
        for name, msg_type in types.items():
            self.subscriptions[name] = node.create_subscription(
                msg_type, '%s/%s' % (TARGET, name),
                lambda msg, name=name: self.got[name].append(msg), _reliable())
        self.diagnostics = []
        node.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.append, 10)

    def spin(self, seconds, until):
        """Spin until ``until()`` is true or ``seconds`` pass; return ``until()``."""
        end = time.monotonic() + seconds
        while time.monotonic() < end and not until():
            rclpy.spin_once(self.node, timeout_sec=0.05)
        return until()

    def activate(self, publisher):
        """Configure and activate the node; wait until it subscribes to ``publisher``."""
        assert self.lifecycle.change_state('configure')
        assert self.lifecycle.change_state('activate')
        assert self.spin(20.0, lambda: publisher.get_subscription_count() > 0), \
            'the node never subscribed to %s' % publisher.topic_name

    def mask_for(self, sec, timeout=15.0):
        """Wait for the mask of the frame stamped ``sec``; return it (or None)."""
        def find():
            return next((m for m in self.got['mask'] if m.header.stamp.sec == sec), None)
        self.spin(timeout, lambda: find() is not None)
        return find()


def _header(sec):
    return Header(stamp=Time(sec=sec, nanosec=4242), frame_id='cam_optical')


def _compressed_msg(frame, sec, fmt):
    msg = CompressedImage(header=_header(sec), format=fmt)
    msg.data = compressed.encode(frame, fmt, 95)
    return msg


def _box(roi):
    return (roi.x_offset, roi.y_offset, roi.width, roi.height)


@pytest.fixture
def topics(client_node):
    """Return the test's publishers and recorders."""
    return Topics(client_node)


def test_compressed_input_gives_masks_roi_and_compressed_composite(topics, start_node):
    t = topics
    proc = start_node(namespace=NS, params={
        'segmenter': 'framediff', 'input_transport': 'compressed',
        'composite.compressed': True, 'composite.jpeg_quality': 70})
    t.activate(t.compressed_pub)
    background, changed = _frames()
    # PNG is lossless: the mask is exactly the squares that appeared
    t.compressed_pub.publish(_compressed_msg(background, 1, 'png'))
    assert t.mask_for(1) is not None
    t.compressed_pub.publish(_compressed_msg(changed, 2, 'png'))
    mask_msg = t.mask_for(2)
    assert mask_msg is not None, 'no mask for the compressed frame: ' + proc.output()
    assert mask_msg.header == _header(2) and (mask_msg.height, mask_msg.width) == (H, W)
    mask = decode('mono8', H, W, mask_msg.step, 0, mask_msg.data)
    assert mask[35:65, 45:95].min() == 255 and mask[:20].max() == 0
    # one ROI per processed frame, in order: none for the first, the big square for the second
    assert t.spin(10.0, lambda: len(t.got['roi']) >= 2)
    assert _box(t.got['roi'][0]) == (0, 0, 0, 0)
    x, y, w, h = _box(t.got['roi'][1])
    assert max(abs(x - BIG[0]), abs(y - BIG[1]), abs(w - BIG[2]), abs(h - BIG[3])) <= 3, \
        'ROI %s is not the big square %s' % ((x, y, w, h), BIG)
    # the composite also goes out as JPEG with the input header
    assert t.spin(10.0, lambda: any(m.header.stamp.sec == 2
                                    for m in t.got['composite/compressed']))
    jpeg = next(m for m in t.got['composite/compressed'] if m.header.stamp.sec == 2)
    assert 'jpeg' in jpeg.format and jpeg.header.frame_id == 'cam_optical'
    composite = cv2.imdecode(np.frombuffer(bytes(jpeg.data), np.uint8), cv2.IMREAD_COLOR)
    assert composite.shape == (H, W, 3)
    # a JPEG frame (lossy) is decoded too; garbage is rejected and counted, not fatal
    t.compressed_pub.publish(_compressed_msg(changed, 3, 'jpeg'))
    assert t.mask_for(3) is not None
    t.compressed_pub.publish(CompressedImage(header=_header(4), format='jpeg',
                                             data=b'\xff\xd8 not a jpeg at all'))

    def tracking():
        for array in t.diagnostics:
            for status in array.status:
                values = {kv.key: kv.value for kv in status.values}
                if status.name.startswith(TARGET) and 'foreground_fraction' in values and \
                        int(values.get('rejected', 0)) >= 1:
                    return values
        return None
    assert t.spin(10.0, tracking), 'diagnostics lack foreground_fraction or the rejection'
    values = tracking()
    assert 0.0 <= float(values['foreground_fraction']) < 0.3
    assert values['roi_stamp'].startswith('3.')
    assert proc.alive()


def test_without_roi_subscribers_diagnostics_still_carry_the_roi(topics, start_node):
    # ~/roi and ~/composite/compressed are only built for subscribers; diagnostics then
    # compute the ROI of the last frame themselves.
    t = topics
    for name in ('roi', 'composite/compressed'):
        t.node.destroy_subscription(t.subscriptions.pop(name))
    start_node(namespace=NS, params={'segmenter': 'framediff', 'composite.compressed': True})
    t.activate(t.raw_pub)
    background, changed = _frames()
    for sec, frame in ((1, background), (2, changed)):
        t.raw_pub.publish(make_image_msg(_header(sec), frame, 'bgr8'))
        assert t.mask_for(sec) is not None

    def tracking():
        for array in t.diagnostics:
            for status in array.status:
                values = {kv.key: kv.value for kv in status.values}
                if status.name.startswith(TARGET) and values.get('roi_stamp', '').startswith(
                        '2.'):
                    return values
        return None
    assert t.spin(10.0, tracking), 'diagnostics never carried the ROI of frame 2'
    x, y, w, h = (int(v) for v in tracking()['roi'].split())
    bx, by, bw, bh = BIG   # framediff's mask may be dilated by a pixel or two
    assert abs(x - bx) <= 3 and abs(y - by) <= 3 and abs(w - bw) <= 6 and abs(h - bh) <= 6
    assert not t.got['roi'] and not t.got['composite/compressed']
    # stamps of 1970 are another clock's: no latency is made up from them
    assert not any(key.startswith(('latency_ms', 'node_added_ms')) for key in tracking())


def test_diagnostics_carry_the_latency_of_frames_stamped_now(topics, start_node):
    t = topics
    start_node(namespace=NS, params={'segmenter': 'framediff'})
    t.activate(t.raw_pub)
    background, changed = _frames()
    sent = []
    for i in range(6):
        header = Header(stamp=t.node.get_clock().now().to_msg(), frame_id='cam_optical')
        t.raw_pub.publish(make_image_msg(header, changed if i % 2 else background, 'bgr8'))
        sent.append(header.stamp.sec)
        assert t.mask_for(header.stamp.sec) is not None
        time.sleep(0.05)

    def latency():
        for array in t.diagnostics:
            for status in array.status:
                values = {kv.key: kv.value for kv in status.values}
                if status.name.startswith(TARGET) and 'latency_ms[p50]' in values:
                    return values
        return None
    assert t.spin(10.0, latency), 'diagnostics never carried latency_ms[p50]'
    values = latency()
    # stamp to outputs published, per frame; the node's share excludes the segmenter
    assert 0.0 < float(values['node_added_ms[p50]']) <= float(values['latency_ms[p50]'])
    assert float(values['latency_ms[p50]']) <= float(values['latency_ms[max]']) < 5000.0
    assert 1 <= int(values['latency_samples']) <= len(sent)


def test_camera_info_is_republished_with_each_output_header(topics, start_node):
    t = topics
    start_node(namespace=NS, params={'segmenter': 'framediff'})
    t.activate(t.raw_pub)
    info = CameraInfo(header=_header(0), height=H, width=W, distortion_model='plumb_bob')
    info.k = [100.0, 0.0, 80.0, 0.0, 100.0, 60.0, 0.0, 0.0, 1.0]
    info.d = [0.1, -0.2, 0.0, 0.0, 0.0]
    # camera_info is best-effort from our side: send it until the node has one
    background, changed = _frames()
    for sec in range(10, 40):
        t.info_pub.publish(info)
        t.raw_pub.publish(make_image_msg(_header(sec), background, 'bgr8'))
        if t.spin(0.5, lambda: t.got['camera_info']):
            break
    assert t.got['camera_info'], 'no ~/camera_info although camera_info was published'
    for out in t.got['camera_info']:
        assert out.header.stamp.nanosec == 4242 and out.header.stamp.sec >= 10
        assert out.header.frame_id == 'cam_optical'
        assert list(out.k) == list(info.k) and list(out.d) == list(info.d)
        assert (out.height, out.width, out.distortion_model) == (H, W, 'plumb_bob')
    # every ~/camera_info carries the stamp of a mask, not that of the camera_info input
    stamps = {m.header.stamp.sec for m in t.got['mask']}
    t.spin(2.0, lambda: {m.header.stamp.sec for m in t.got['camera_info']} <= stamps)
    assert {m.header.stamp.sec for m in t.got['camera_info']} <= \
        {m.header.stamp.sec for m in t.got['mask']}
    # switching to compressed input at run time resubscribes
    assert t.lifecycle.set_parameters({'input_transport': 'compressed'}) == [(True, '')]
    assert t.spin(20.0, lambda: t.compressed_pub.get_subscription_count() > 0)
    t.compressed_pub.publish(_compressed_msg(changed, 100, 'png'))
    assert t.mask_for(100) is not None
    assert t.spin(5.0, lambda: any(m.header.stamp.sec == 100 for m in t.got['camera_info']))

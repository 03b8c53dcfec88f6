"""sensor_msgs/Image glue: real message objects, serialised as rclpy would (no DDS needed)."""

import array

from matte_ros.image_encodings import EncodingError
from matte_ros.image_encodings import ENCODINGS
from matte_ros.image_encodings import from_bgr8
import numpy as np
import pytest

msg_pkg = pytest.importorskip('sensor_msgs.msg', reason='sensor_msgs (ROS 2) not installed')
serialization = pytest.importorskip('rclpy.serialization', reason='rclpy not installed')
std_msgs = pytest.importorskip('std_msgs.msg', reason='std_msgs (ROS 2) not installed')
builtin = pytest.importorskip('builtin_interfaces.msg', reason='builtin_interfaces missing')

from matte_ros.ros.image_msgs import decode_image_msg  # noqa: E402, I100
from matte_ros.ros.image_msgs import image_msg_to_bgr8  # noqa: E402
from matte_ros.ros.image_msgs import make_image_msg  # noqa: E402

Image = msg_pkg.Image


def header(sec=1712345678, nanosec=123456789, frame_id='camera_optical'):
    """Return a std_msgs Header."""
    return std_msgs.Header(stamp=builtin.Time(sec=sec, nanosec=nanosec), frame_id=frame_id)


def wire(msg):
    """Return ``msg`` after serialisation and deserialisation, as a subscriber gets it."""
    return serialization.deserialize_message(serialization.serialize_message(msg), Image)


def sample(encoding, height=6, width=8, seed=0):
    """Return a native-layout array for ``encoding`` and the BGR image it came from."""
    rng = np.random.default_rng(seed)
    bgr = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    if ENCODINGS[encoding].channels == 2:
        bgr[:, 1::2] = bgr[:, 0::2]
    if ENCODINGS[encoding].channels == 1:
        bgr[..., 1] = bgr[..., 0]
        bgr[..., 2] = bgr[..., 0]
    return from_bgr8(bgr, encoding), bgr


@pytest.mark.parametrize('encoding', sorted(ENCODINGS))
def test_round_trip_through_a_serialised_message(encoding):
    native, bgr = sample(encoding)
    head = header()
    msg = make_image_msg(head, native, encoding)
    assert msg.header is head
    assert (msg.height, msg.width, msg.encoding, msg.is_bigendian) == (6, 8, encoding, 0)
    assert msg.step == 8 * ENCODINGS[encoding].bytes_per_pixel
    assert isinstance(msg.data, array.array) and len(msg.data) == msg.step * msg.height
    got = wire(msg)
    assert got.header.stamp.sec == 1712345678 and got.header.stamp.nanosec == 123456789
    assert got.header.frame_id == 'camera_optical'
    assert got.header == head
    np.testing.assert_array_equal(decode_image_msg(got), native)
    tol = 3 if ENCODINGS[encoding].channels == 2 else 0
    assert np.abs(image_msg_to_bgr8(got).astype(int) - bgr).max() <= tol


def test_bgr8_read_is_zero_copy():
    native, _ = sample('bgr8')
    msg = wire(make_image_msg(header(), native, 'bgr8'))
    frame = image_msg_to_bgr8(msg)
    assert np.shares_memory(frame, np.frombuffer(msg.data, np.uint8))


def test_padded_message_from_another_driver():
    native, bgr = sample('rgb8', 4, 5)
    padded = np.zeros((4, 5 * 3 + 4), np.uint8)
    padded[:, :15] = native.reshape(4, 15)
    msg = Image(header=header(frame_id='usb_cam'), height=4, width=5, encoding='rgb8',
                is_bigendian=0, step=19, data=padded.tobytes())
    np.testing.assert_array_equal(image_msg_to_bgr8(wire(msg)), bgr)


def test_big_endian_mono16_message():
    values = np.array([[0x0100, 0xFF00], [0x8000, 0x0000]], np.uint16)
    msg = Image(header=header(), height=2, width=2, encoding='mono16', is_bigendian=1,
                step=4, data=values.astype('>u2').tobytes())
    np.testing.assert_array_equal(decode_image_msg(wire(msg)), values)
    assert image_msg_to_bgr8(msg)[..., 0].tolist() == [[1, 255], [128, 0]]


@pytest.mark.parametrize('fields,words', [
    ({'step': 23}, 'step 23 is less than'),
    ({'height': 5}, 'expected step\\*height'),
    ({'encoding': '8UC3'}, 'unsupported encoding'),
    ({'width': 0}, 'must be positive'),
])
def test_malformed_messages_raise_encoding_error(fields, words):
    native, _ = sample('bgr8')
    msg = make_image_msg(header(), native, 'bgr8')
    for key, value in fields.items():
        setattr(msg, key, value)
    with pytest.raises(EncodingError, match=words):
        image_msg_to_bgr8(wire(msg))


def test_max_pixels_is_applied():
    native, _ = sample('mono8')
    msg = make_image_msg(header(), native, 'mono8')
    assert image_msg_to_bgr8(msg, max_pixels=48).shape == (6, 8, 3)
    with pytest.raises(EncodingError, match='max_pixels'):
        image_msg_to_bgr8(msg, max_pixels=47)


def test_make_image_msg_refuses_a_wrong_array():
    with pytest.raises(EncodingError, match='mono8'):
        make_image_msg(header(), np.zeros((2, 2, 3), np.uint8), 'mono8')

"""Image encodings: round trips, padded rows, byte order, and refusal of malformed messages."""

import array
import tracemalloc

import cv2
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from matte_ros import image_encodings
from matte_ros.image_encodings import decode
from matte_ros.image_encodings import encode
from matte_ros.image_encodings import EncodingError
from matte_ros.image_encodings import ENCODINGS
from matte_ros.image_encodings import from_bgr8
from matte_ros.image_encodings import image_to_bgr8
from matte_ros.image_encodings import to_bgr8
import numpy as np
import pytest

YUV = ('yuv422', 'yuv422_yuy2', 'uyvy', 'yuyv')


def random_bgr(height, width, seed=0):
    """Return a random BGR image."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def pair_equal_bgr(height, width, seed=0):
    """Return a random BGR image whose horizontal pixel pairs are equal (yuv422-exact chroma)."""
    img = random_bgr(height, width, seed)
    img[:, 1::2] = img[:, 0::2]
    return img


def grey_bgr(height, width, seed=0):
    """Return a random grey BGR image (B = G = R)."""
    grey = np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def reference_rows(buf: bytes, height: int, step: int, row: int) -> bytes:
    """Return the image bytes without row padding, computed naively."""
    return b''.join(buf[r * step:r * step + row] for r in range(height))


def test_table_covers_the_ros_names_and_aliases():
    for name in ('bgr8', 'rgb8', 'bgra8', 'rgba8', 'mono8', 'mono16', 'yuv422',
                 'yuv422_yuy2', 'uyvy', 'yuyv'):
        assert name in ENCODINGS
    assert ENCODINGS['uyvy'].name == 'yuv422'
    assert ENCODINGS['yuyv'].name == 'yuv422_yuy2'
    assert ENCODINGS['mono16'].dtype is np.uint16
    assert ENCODINGS['mono16'].bytes_per_pixel == 2
    assert ENCODINGS['bgra8'].channels == 4


@pytest.mark.parametrize('encoding', sorted(ENCODINGS))
def test_round_trip(encoding):
    info = ENCODINGS[encoding]
    if info.lossless:
        src, tol = random_bgr(7, 10), 0
    elif info.channels == 1:
        src, tol = grey_bgr(7, 10), 0
    else:
        src, tol = pair_equal_bgr(7, 10), image_encodings.YUV_TOLERANCE
    native = from_bgr8(src, encoding)
    step, data = encode(native, encoding)
    assert isinstance(data, array.array) and data.typecode == 'B'
    assert step == 10 * info.bytes_per_pixel
    assert len(data) == step * 7
    decoded = decode(encoding, 7, 10, step, 0, data)
    assert decoded.dtype == info.dtype
    np.testing.assert_array_equal(decoded, native)
    back = to_bgr8(decoded, encoding)
    assert back.shape == src.shape and back.dtype == np.uint8 and back.flags.c_contiguous
    assert np.abs(back.astype(int) - src).max() <= tol
    np.testing.assert_array_equal(back, image_to_bgr8(encoding, 7, 10, step, 0, bytes(data)))


def test_channel_order_is_what_the_names_say():
    # One pixel with B=1, G=2, R=3.
    assert decode('rgb8', 1, 1, 3, 0, b'\x03\x02\x01').tolist() == [[[3, 2, 1]]]
    assert to_bgr8(decode('rgb8', 1, 1, 3, 0, b'\x03\x02\x01'), 'rgb8').tolist() == \
        [[[1, 2, 3]]]
    assert to_bgr8(decode('rgba8', 1, 1, 4, 0, b'\x03\x02\x01\x09'), 'rgba8').tolist() == \
        [[[1, 2, 3]]]
    assert to_bgr8(decode('bgra8', 1, 1, 4, 0, b'\x01\x02\x03\x09'), 'bgra8').tolist() == \
        [[[1, 2, 3]]]
    assert to_bgr8(decode('mono8', 1, 1, 1, 0, b'\x07'), 'mono8').tolist() == [[[7, 7, 7]]]
    assert from_bgr8(np.array([[[1, 2, 3]]], np.uint8), 'bgra8').tolist() == [[[1, 2, 3, 255]]]


def test_yuv_byte_orders():
    # UYVY puts chroma first: bytes (U, Y0, V, Y1).  A white pair is Y=235, U=V=128.
    white_uyvy = bytes([128, 235, 128, 235])
    np.testing.assert_array_equal(image_to_bgr8('yuv422', 1, 2, 4, 0, white_uyvy), 255)
    np.testing.assert_array_equal(image_to_bgr8('uyvy', 1, 2, 4, 0, white_uyvy), 255)
    # The same bytes read as YUYV are Y=128 with strong chroma: not grey.
    as_yuyv = image_to_bgr8('yuv422_yuy2', 1, 2, 4, 0, white_uyvy)
    assert as_yuyv.max() - as_yuyv.min() > 50
    # Swapping each byte pair turns UYVY into YUYV.
    src = random_bgr(4, 8, seed=3)
    uyvy = from_bgr8(src, 'yuv422')
    yuyv = from_bgr8(src, 'yuv422_yuy2')
    np.testing.assert_array_equal(uyvy[..., ::-1], yuyv)
    np.testing.assert_array_equal(to_bgr8(uyvy, 'uyvy'), to_bgr8(yuyv, 'yuyv'))


@pytest.mark.parametrize('uyvy', [True, False])
def test_numpy_yuv_fallback_matches_opencv(uyvy):
    src = pair_equal_bgr(16, 24, seed=5)
    mine = image_encodings._bgr_to_yuv422(src, uyvy)
    back = to_bgr8(mine, 'yuv422' if uyvy else 'yuv422_yuy2')
    assert np.abs(back.astype(int) - src).max() <= image_encodings.YUV_TOLERANCE
    code = getattr(cv2, 'COLOR_BGR2YUV_UYVY' if uyvy else 'COLOR_BGR2YUV_YUY2', None)
    if code is not None:
        assert np.abs(mine.astype(int) - cv2.cvtColor(src, code)).max() <= 1


def test_mono16_scaling():
    assert from_bgr8(np.full((1, 1, 3), 255, np.uint8), 'mono16').tolist() == [[65535]]
    assert from_bgr8(np.full((1, 1, 3), 1, np.uint8), 'mono16').tolist() == [[257]]
    high = np.array([[0x1234, 0xFFFF, 0x00FF]], np.uint16)
    assert to_bgr8(high, 'mono16')[..., 0].tolist() == [[0x12, 0xFF, 0x00]]


@pytest.mark.parametrize('is_bigendian', [0, 1])
@pytest.mark.parametrize('pad', [0, 1, 6])
def test_mono16_byte_order_and_padding(is_bigendian, pad):
    values = np.array([[1, 0x0102, 0xFF00], [0xABCD, 7, 65535]], np.uint16)
    order = '>u2' if is_bigendian else '<u2'
    rows = values.astype(order).view(np.uint8)
    buf = np.concatenate([rows, np.full((2, pad), 0xEE, np.uint8)], axis=1).tobytes()
    got = decode('mono16', 2, 3, 6 + pad, is_bigendian, buf)
    assert got.dtype.isnative
    np.testing.assert_array_equal(got, values)


def test_encode_writes_mono16_little_endian():
    step, data = encode(np.array([[0x0102]], np.uint16), 'mono16')
    assert step == 2 and data.tobytes() == b'\x02\x01'
    step, data = encode(np.array([[0x0102]], '>u2'), 'mono16')
    assert data.tobytes() == b'\x02\x01'


@pytest.mark.parametrize('encoding', sorted(ENCODINGS))
def test_padded_step_is_a_view_and_skips_padding(encoding):
    info = ENCODINGS[encoding]
    height, width, pad = 5, 6, 7
    row = width * info.bytes_per_pixel
    step = row + pad
    rng = np.random.default_rng(1)
    buf = bytearray(rng.integers(0, 256, step * height, dtype=np.uint8).tobytes())
    got = decode(encoding, height, width, step, 0, buf)
    expected = np.frombuffer(reference_rows(bytes(buf), height, step, row), np.dtype(
        info.dtype).newbyteorder('<')).reshape(got.shape)
    np.testing.assert_array_equal(got, expected)
    assert np.shares_memory(got, np.frombuffer(buf, np.uint8))
    # to_bgr8 reads the padded view correctly too.
    np.testing.assert_array_equal(to_bgr8(got, encoding), to_bgr8(expected, encoding))


@pytest.mark.parametrize('kind', ['bytes', 'bytearray', 'memoryview', 'array', 'list',
                                  'tuple', 'ndarray', 'ndarray2d', 'strided'])
def test_every_data_container(kind):
    img = random_bgr(3, 4, seed=2)
    raw = img.tobytes()
    data = {
        'bytes': lambda: raw,
        'bytearray': lambda: bytearray(raw),
        'memoryview': lambda: memoryview(raw),
        'array': lambda: array.array('B', raw),
        'list': lambda: list(raw),
        'tuple': lambda: tuple(raw),
        'ndarray': lambda: np.frombuffer(raw, np.uint8),
        'ndarray2d': lambda: img.reshape(3, 12),
        'strided': lambda: np.repeat(np.frombuffer(raw, np.uint8), 2)[::2],
    }[kind]()
    np.testing.assert_array_equal(decode('bgr8', 3, 4, 12, 0, data), img)


def test_bgr8_to_bgr8_does_not_copy():
    buf = array.array('B', random_bgr(3, 4).tobytes())
    frame = image_to_bgr8('bgr8', 3, 4, 12, 0, buf)
    assert np.shares_memory(frame, np.frombuffer(buf, np.uint8))
    assert frame.flags.c_contiguous


BAD = [
    # (what, args, words expected in the message)
    ('unknown encoding', ('bgr16', 2, 2, 12, 0, bytes(24)), 'unsupported encoding'),
    ('encoding not a str', (None, 2, 2, 6, 0, bytes(12)), 'unsupported encoding'),
    ('case matters', ('BGR8', 2, 2, 6, 0, bytes(12)), 'unsupported encoding'),
    ('zero height', ('bgr8', 0, 2, 6, 0, b''), 'must be positive'),
    ('negative width', ('bgr8', 2, -2, 6, 0, bytes(12)), 'must be positive'),
    ('float height', ('bgr8', 2.0, 2, 6, 0, bytes(12)), 'height must be an integer'),
    ('bool width', ('bgr8', 2, True, 3, 0, bytes(6)), 'width must be an integer'),
    ('str step', ('bgr8', 2, 2, '6', 0, bytes(12)), 'step must be an integer'),
    ('step too small', ('bgr8', 2, 2, 5, 0, bytes(10)), 'step 5 is less than'),
    ('data short', ('bgr8', 2, 2, 6, 0, bytes(11)), 'data is 11 bytes, expected'),
    ('data long', ('bgr8', 2, 2, 6, 0, bytes(13)), 'data is 13 bytes, expected'),
    ('list short', ('mono8', 2, 2, 2, 0, [0, 1, 2]), 'data is 3 bytes'),
    ('odd yuv width', ('yuv422', 2, 3, 6, 0, bytes(12)), 'even width'),
    ('odd yuyv width', ('yuyv', 2, 3, 6, 0, bytes(12)), 'even width'),
    ('value above 255', ('mono8', 1, 2, 2, 0, [0, 256]), '0-255'),
    ('negative value', ('mono8', 1, 2, 2, 0, [-1, 0]), '0-255'),
    ('float values', ('mono8', 1, 2, 2, 0, [0.5, 1.0]), 'ints 0-255'),
    ('str values', ('mono8', 1, 2, 2, 0, ['a', 'b']), 'ints 0-255'),
    ('str data', ('mono8', 1, 2, 2, 0, 'ab'), 'got a str'),
    ('no data', ('mono8', 1, 2, 2, 0, None), 'bytes or a sequence'),
    ('int too big', ('mono8', 1, 2, 2, 0, [2 ** 70, 0]), '0-255'),
]


@pytest.mark.parametrize('what,args,words', BAD, ids=[b[0] for b in BAD])
def test_bad_messages_raise_encoding_error(what, args, words):
    with pytest.raises(EncodingError, match=words):
        decode(*args)


def test_encoding_error_is_a_value_error():
    assert issubclass(EncodingError, ValueError)


@pytest.mark.parametrize('max_pixels', [None, 1000])
def test_huge_dimensions_are_refused_without_allocating(max_pixels):
    huge = 2 ** 31 - 1
    tracemalloc.start()
    try:
        for args in (('bgr8', huge, huge, huge * 3, 0, b'abc'),
                     ('mono16', huge, huge, huge * 2, 1, [1, 2, 3]),
                     ('bgr8', huge, 1, 3, 0, bytes(30))):
            with pytest.raises(EncodingError) as err:
                decode(*args, max_pixels=max_pixels)
            if max_pixels is not None:
                assert 'max_pixels' in str(err.value)
            else:
                assert 'expected step*height' in str(err.value)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024


def test_max_pixels_allows_exactly_the_limit():
    assert decode('mono8', 2, 3, 3, 0, bytes(6), max_pixels=6).shape == (2, 3)
    with pytest.raises(EncodingError, match='max_pixels = 5'):
        decode('mono8', 2, 3, 3, 0, bytes(6), max_pixels=5)


@pytest.mark.parametrize('encoding,image,words', [
    ('bgr8', np.zeros((2, 2), np.uint8), 'shape'),
    ('bgr8', np.zeros((2, 2, 4), np.uint8), 'shape'),
    ('bgr8', np.zeros((2, 2, 3), np.uint16), 'uint8'),
    ('mono16', np.zeros((2, 2), np.uint8), 'uint16'),
    ('mono8', np.zeros((2, 2), np.float32), 'uint8'),
    ('yuv422', np.zeros((2, 3, 2), np.uint8), 'even width'),
    ('rgb8', np.zeros((0, 2, 3), np.uint8), 'empty'),
    ('rgb8', [[1, 2, 3]], 'NumPy array'),
    ('bgr9', np.zeros((2, 2, 3), np.uint8), 'unsupported encoding'),
])
def test_encode_and_to_bgr8_check_the_array(encoding, image, words):
    with pytest.raises(EncodingError, match=words):
        encode(image, encoding)
    with pytest.raises(EncodingError, match=words):
        to_bgr8(image, encoding)


def test_from_bgr8_checks_its_input():
    with pytest.raises(EncodingError, match='bgr8 input'):
        from_bgr8(np.zeros((2, 2), np.uint8), 'rgb8')
    with pytest.raises(EncodingError, match='even width'):
        from_bgr8(np.zeros((2, 3, 3), np.uint8), 'uyvy')


def test_encode_copies_non_contiguous_arrays():
    img = random_bgr(4, 6)
    view = img[:, ::2]
    step, data = encode(view, 'bgr8')
    assert step == 9
    assert data.tobytes() == np.ascontiguousarray(view).tobytes()


@settings(max_examples=300, deadline=None)
@given(encoding=st.sampled_from(sorted(ENCODINGS)),
       height=st.integers(1, 6), width=st.integers(1, 6), pad=st.integers(0, 5),
       delta=st.sampled_from([0, 0, 0, -1, 1, -7, 9]), bigendian=st.integers(0, 1),
       seed=st.integers(0, 2 ** 32 - 1), as_list=st.booleans())
def test_decode_is_correct_or_refuses(encoding, height, width, pad, delta, bigendian, seed,
                                      as_list):
    info = ENCODINGS[encoding]
    row = width * info.bytes_per_pixel
    step = row + pad
    size = max(0, step * height + delta)
    raw = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    data = list(raw) if as_list else raw
    should_fail = delta != 0 or (info.channels == 2 and width % 2)
    if should_fail:
        with pytest.raises(EncodingError):
            decode(encoding, height, width, step, bigendian, data)
        return
    got = decode(encoding, height, width, step, bigendian, data)
    dtype = np.dtype(info.dtype).newbyteorder('>' if bigendian else '<')
    if info.dtype is np.uint8:
        dtype = np.dtype(np.uint8)
    expected = np.frombuffer(reference_rows(raw, height, step, row), dtype)
    shape = (height, width) if info.channels == 1 else (height, width, info.channels)
    assert got.shape == shape
    np.testing.assert_array_equal(got, expected.reshape(shape))
    bgr = to_bgr8(got, encoding)
    assert bgr.shape == (height, width, 3) and bgr.dtype == np.uint8


FIELD = st.one_of(st.integers(-3, 8), st.integers(2 ** 30, 2 ** 62), st.just(0),
                  st.floats(allow_nan=True), st.none(), st.text(max_size=2), st.booleans())
DATA = st.one_of(st.binary(max_size=64), st.lists(st.integers(-300, 300), max_size=64),
                 st.lists(st.floats(), max_size=4), st.text(max_size=8), st.none(),
                 st.integers())


@settings(max_examples=400, deadline=None)
@given(encoding=st.one_of(st.sampled_from(sorted(ENCODINGS)), st.text(max_size=12)),
       height=FIELD, width=FIELD, step=FIELD, bigendian=st.one_of(st.integers(0, 1), FIELD),
       data=DATA, max_pixels=st.one_of(st.none(), st.integers(1, 100)))
def test_garbage_raises_only_encoding_error(encoding, height, width, step, bigendian, data,
                                            max_pixels):
    try:
        got = decode(encoding, height, width, step, bigendian, data, max_pixels)
    except EncodingError:
        return
    # Accepted: then it must really be an image of the declared size.
    assert got.shape[:2] == (height, width)
    assert height * width <= (max_pixels or height * width)
    to_bgr8(got, encoding)

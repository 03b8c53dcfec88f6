# noqa: A005 (the name is fixed by the API; always imported as matte_ros.image_encodings)
"""
Convert raw ``sensor_msgs/Image`` fields to NumPy arrays and back (ROS-free).

This is the part of cv_bridge that matte_ros needs, without ROS: it takes the message
fields (encoding, height, width, step, is_bigendian, data) and returns an array, checking
everything a malformed or hostile message could get wrong before touching the buffer.

Encodings accepted (names as in ``sensor_msgs/image_encodings.hpp``):

===============  ========  =====  ======  ==========================================
name             channels  bytes  dtype   native layout from :func:`decode`
===============  ========  =====  ======  ==========================================
``bgr8``         3         3      uint8   H×W×3, B G R
``rgb8``         3         3      uint8   H×W×3, R G B
``bgra8``        4         4      uint8   H×W×4, B G R A
``rgba8``        4         4      uint8   H×W×4, R G B A
``mono8``        1         1      uint8   H×W
``mono16``       1         2      uint16  H×W, native byte order (``is_bigendian`` honoured)
``yuv422``       2         2      uint8   H×W×2, UYVY byte order (U Y0 V Y1); alias ``uyvy``
``yuv422_yuy2``  2         2      uint8   H×W×2, YUYV byte order (Y0 U Y1 V); alias ``yuyv``
===============  ========  =====  ======  ==========================================

``yuv422``/``yuv422_yuy2`` are the historical ROS names (deprecated in newer
``sensor_msgs`` in favour of ``uyvy``/``yuyv``, which mean the same bytes); both spellings
are accepted.  YUV is BT.601 limited range (Y 16-235), as OpenCV's ``cvtColor`` uses.

Conversions that lose information (:func:`from_bgr8`):

* ``mono8``: BGR → grey (BT.601 luma); exact only for grey input (B = G = R).
* ``mono16``: grey × 257 (0 → 0, 255 → 65535); :func:`to_bgr8` takes the high byte
  (``>> 8``), which inverts it exactly.
* ``yuv422``/``yuv422_yuy2``: chroma is shared by each horizontal pixel pair and Y is
  limited range, so a BGR image whose pixel pairs are equal comes back within
  :data:`YUV_TOLERANCE` levels; other images lose colour detail.
* ``bgra8``/``rgba8``: alpha is set to 255 on the way in and dropped on the way out.

Every failure raises :class:`EncodingError` (a ``ValueError``) saying which field does not
add up.  :func:`encode` writes ``mono16`` little-endian (message ``is_bigendian = 0``) and
returns ``array.array('B')`` data, the type rclpy stores without a per-element copy.
"""

import array
from typing import NamedTuple
from typing import Optional
from typing import Tuple

import cv2
import numpy as np


class EncodingError(ValueError):
    """An image whose fields or data do not fit together (says which and why)."""


class Encoding(NamedTuple):
    """What one encoding holds per pixel."""

    name: str             # canonical name (aliases map to it)
    channels: int         # values per pixel in the native layout (yuv: 2 bytes per pixel)
    bytes_per_pixel: int
    dtype: type           # np.uint8 or np.uint16
    lossless: bool        # from_bgr8 → to_bgr8 returns any BGR image unchanged


ENCODINGS = {
    'bgr8': Encoding('bgr8', 3, 3, np.uint8, True),
    'rgb8': Encoding('rgb8', 3, 3, np.uint8, True),
    'bgra8': Encoding('bgra8', 4, 4, np.uint8, True),
    'rgba8': Encoding('rgba8', 4, 4, np.uint8, True),
    'mono8': Encoding('mono8', 1, 1, np.uint8, False),
    'mono16': Encoding('mono16', 1, 2, np.uint16, False),
    'yuv422': Encoding('yuv422', 2, 2, np.uint8, False),
    'yuv422_yuy2': Encoding('yuv422_yuy2', 2, 2, np.uint8, False),
    'uyvy': Encoding('yuv422', 2, 2, np.uint8, False),
    'yuyv': Encoding('yuv422_yuy2', 2, 2, np.uint8, False),
}

#: Largest per-channel difference of a yuv422 round trip of a BGR image whose horizontal
#: pixel pairs are equal (limited-range quantisation; measured 2 with OpenCV 5).
YUV_TOLERANCE = 3

_UYVY = 'yuv422'
_YUYV = 'yuv422_yuy2'


def lookup(encoding: str) -> Encoding:
    """Return the :class:`Encoding` of a name, or raise :class:`EncodingError`."""
    info = ENCODINGS.get(encoding) if isinstance(encoding, str) else None
    if info is None:
        raise EncodingError('unsupported encoding %r (accepted: %s)'
                            % (encoding, ', '.join(sorted(ENCODINGS))))
    return info


def _as_count(name: str, value) -> int:
    """Return a message integer field as int, refusing bools, floats and garbage."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise EncodingError('%s must be an integer, got %r' % (name, value))
    return int(value)


def _byte_view(data, expected: int) -> memoryview:
    """
    Return ``data`` as a flat byte memoryview of exactly ``expected`` bytes.

    Buffers (bytes, bytearray, memoryview, array.array, NumPy arrays) are read as raw
    bytes, without a copy when C-contiguous; a list or tuple of ints 0-255 is converted
    only after its length matched, so a short list cannot trigger a large allocation.
    """
    if isinstance(data, str):
        raise EncodingError('data must be bytes or a sequence of ints, got a str')
    try:
        view = memoryview(data)
    except TypeError:
        view = None
    if view is not None:
        size = view.nbytes
        if size != expected:
            raise EncodingError('data is %d bytes, expected step*height = %d'
                                % (size, expected))
        if not view.c_contiguous:
            return memoryview(view.tobytes())
        try:
            return view.cast('B') if view.format != 'B' or view.ndim != 1 else view
        except TypeError as err:
            raise EncodingError('data buffer of format %r cannot be read as bytes: %s'
                                % (view.format, err))
    try:
        size = len(data)
    except TypeError:
        raise EncodingError('data must be bytes or a sequence of ints, got %s'
                            % type(data).__name__)
    if size != expected:
        raise EncodingError('data is %d bytes, expected step*height = %d' % (size, expected))
    try:
        values = np.asarray(data)
    except (TypeError, ValueError, OverflowError) as err:
        raise EncodingError('data is not a sequence of ints 0-255: %s' % err)
    if values.ndim != 1 or values.dtype.kind not in 'iub':
        raise EncodingError('data is not a flat sequence of ints 0-255 (got dtype %s)'
                            % values.dtype)
    if size and (values.min() < 0 or values.max() > 255):
        raise EncodingError('data values must lie in 0-255, got %d … %d'
                            % (values.min(), values.max()))
    return memoryview(values.astype(np.uint8))


def decode(encoding: str, height, width, step, is_bigendian, data,
           max_pixels: Optional[int] = None) -> np.ndarray:
    """
    Return the pixels of an image message as an array in the encoding's native layout.

    The result is a view of ``data`` (no copy) unless the data is a list or a mono16 image
    in foreign byte order; it is read-only when ``data`` is.  Rows may be padded
    (``step`` > ``width * bytes_per_pixel``).  Every field is checked before the buffer is
    used: ``height * width`` against ``max_pixels`` first, then ``step``, then the data
    length, which must equal ``step * height`` exactly.
    """
    info = lookup(encoding)
    height = _as_count('height', height)
    width = _as_count('width', width)
    step = _as_count('step', step)
    if height <= 0 or width <= 0:
        raise EncodingError('image is %d×%d: height and width must be positive'
                            % (width, height))
    if max_pixels is not None and height * width > max_pixels:
        raise EncodingError('image is %d×%d = %d pixels, more than max_pixels = %d'
                            % (width, height, height * width, max_pixels))
    if info.channels == 2 and width % 2:
        raise EncodingError('%s needs an even width (pixel pairs share chroma), got %d'
                            % (encoding, width))
    row = width * info.bytes_per_pixel
    if step < row:
        raise EncodingError('step %d is less than width*bytes_per_pixel = %d*%d = %d'
                            % (step, width, info.bytes_per_pixel, row))
    buf = _byte_view(data, step * height)
    item = np.dtype(info.dtype).itemsize
    if info.dtype is np.uint16:
        dtype = np.dtype('>u2' if is_bigendian else '<u2')
    else:
        dtype = np.dtype(info.dtype)
    if info.channels == 1:
        shape, strides = (height, width), (step, item)
    else:
        shape, strides = (height, width, info.channels), (step, info.bytes_per_pixel, item)
    out = np.ndarray(shape, dtype=dtype, buffer=buf, strides=strides)
    if not dtype.isnative:
        out = out.astype(dtype.newbyteorder('='))
    return out


def _check_native(image: np.ndarray, info: Encoding, encoding: str):
    """Raise :class:`EncodingError` unless ``image`` has the encoding's shape and dtype."""
    if not isinstance(image, np.ndarray):
        raise EncodingError('expected a NumPy array for %s, got %s'
                            % (encoding, type(image).__name__))
    want = '(H, W)' if info.channels == 1 else '(H, W, %d)' % info.channels
    ok_shape = (image.ndim == 2 and info.channels == 1) or (
        image.ndim == 3 and image.shape[2] == info.channels)
    if not ok_shape or image.dtype.newbyteorder('=') != info.dtype:
        raise EncodingError('%s needs a %s array of shape %s, got %s of shape %s'
                            % (encoding, np.dtype(info.dtype).name, want, image.dtype,
                               image.shape))
    if image.shape[0] <= 0 or image.shape[1] <= 0:
        raise EncodingError('%s array is empty (shape %s)' % (encoding, image.shape))
    if info.channels == 2 and image.shape[1] % 2:
        raise EncodingError('%s needs an even width, got %d' % (encoding, image.shape[1]))


_TO_BGR = {
    'rgb8': cv2.COLOR_RGB2BGR,
    'bgra8': cv2.COLOR_BGRA2BGR,
    'rgba8': cv2.COLOR_RGBA2BGR,
    'mono8': cv2.COLOR_GRAY2BGR,
    _UYVY: cv2.COLOR_YUV2BGR_UYVY,
    _YUYV: cv2.COLOR_YUV2BGR_YUY2,
}


def to_bgr8(image: np.ndarray, encoding: str) -> np.ndarray:
    """
    Return an H×W×3 uint8 C-contiguous BGR image from a native-layout array.

    A C-contiguous ``bgr8`` input is returned as is (no copy, so it may alias the message
    buffer and be read-only); everything else is a new array.  mono16 keeps the high byte.
    """
    info = lookup(encoding)
    _check_native(image, info, encoding)
    name = info.name
    if name == 'bgr8':
        return np.ascontiguousarray(image)
    if name == 'mono16':
        image = np.right_shift(image, 8).astype(np.uint8)
        name = 'mono8'
    return cv2.cvtColor(image, _TO_BGR[name])


def image_to_bgr8(encoding: str, height, width, step, is_bigendian, data,
                  max_pixels: Optional[int] = None) -> np.ndarray:
    """Decode image message fields straight to BGR (:func:`decode` then :func:`to_bgr8`)."""
    return to_bgr8(decode(encoding, height, width, step, is_bigendian, data, max_pixels),
                   encoding)


def _bgr_to_yuv422(bgr: np.ndarray, uyvy: bool) -> np.ndarray:
    """
    Convert BGR to packed YUV 4:2:2 (BT.601 limited range) with NumPy.

    The fallback for OpenCV < 4.7, which lacks ``COLOR_BGR2YUV_UYVY``; chroma is the mean
    of each pixel pair, as OpenCV does.
    """
    f = bgr.astype(np.float32)
    b, g, r = f[..., 0], f[..., 1], f[..., 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    y = 16.0 + luma * (219.0 / 255.0)
    cb = 128.0 + (b - luma) * (224.0 / 255.0 / 1.772)
    cr = 128.0 + (r - luma) * (224.0 / 255.0 / 1.402)
    cb = 0.5 * (cb[:, 0::2] + cb[:, 1::2])
    cr = 0.5 * (cr[:, 0::2] + cr[:, 1::2])
    out = np.empty(bgr.shape[:2] + (2,), np.float32)
    out[..., 1 if uyvy else 0] = y
    chroma = out[..., 0 if uyvy else 1]
    chroma[:, 0::2] = cb
    chroma[:, 1::2] = cr
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


_FROM_BGR = {
    'rgb8': cv2.COLOR_BGR2RGB,
    'bgra8': cv2.COLOR_BGR2BGRA,
    'rgba8': cv2.COLOR_BGR2RGBA,
    'mono8': cv2.COLOR_BGR2GRAY,
}
_BGR2UYVY = getattr(cv2, 'COLOR_BGR2YUV_UYVY', None)
_BGR2YUY2 = getattr(cv2, 'COLOR_BGR2YUV_YUY2', None)


def from_bgr8(bgr: np.ndarray, encoding: str) -> np.ndarray:
    """Return a BGR uint8 image converted to ``encoding``'s native layout (see the table)."""
    info = lookup(encoding)
    _check_native(bgr, ENCODINGS['bgr8'], 'bgr8 input')
    name = info.name
    if name == 'bgr8':
        return np.ascontiguousarray(bgr)
    if name == 'mono16':
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16) * np.uint16(257)
    if info.channels == 2:
        if bgr.shape[1] % 2:
            raise EncodingError('%s needs an even width, got %d' % (encoding, bgr.shape[1]))
        code = _BGR2UYVY if name == _UYVY else _BGR2YUY2
        if code is None:
            return _bgr_to_yuv422(bgr, name == _UYVY)
        return cv2.cvtColor(bgr, code)
    return cv2.cvtColor(bgr, _FROM_BGR[name])


def encode(image: np.ndarray, encoding: str) -> Tuple[int, array.array]:
    """
    Return ``(step, data)`` for an image message holding ``image`` in ``encoding``.

    ``data`` is an ``array.array('B')`` of ``step * height`` bytes, rows unpadded
    (``step = width * bytes_per_pixel``), mono16 little-endian.  rclpy takes an
    ``array.array`` with one memcpy, whereas a NumPy array or memoryview assigned to
    ``msg.data`` is copied element by element (~100 ms per VGA frame).
    """
    info = lookup(encoding)
    _check_native(image, info, encoding)
    if info.dtype is np.uint16:
        image = image.astype('<u2', copy=False)
    image = np.ascontiguousarray(image)
    data = array.array('B')
    data.frombytes(image.view(np.uint8))
    return image.shape[1] * info.bytes_per_pixel, data

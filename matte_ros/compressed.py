"""
JPEG / PNG payloads of ``sensor_msgs/CompressedImage`` to BGR arrays and back (ROS-free).

image_transport's ``compressed`` plugin publishes ``format`` strings such as ``jpeg``,
``png`` or ``bgr8; jpeg compressed bgr8`` (colour images are encoded as BGR, grey ones as
grey).  :func:`decode` reads the picture size from the JPEG/PNG header first, so an
oversized or truncated payload is refused before OpenCV allocates anything, then decodes
with ``cv2.imdecode`` to H×W×3 BGR.  EXIF orientation is ignored (cameras do not rotate
their frames; OpenCV would otherwise turn a tagged JPEG to a size its header does not
give).  Sizes in messages read width×height.  Every failure raises
:class:`~matte_ros.image_encodings.EncodingError`, like the raw path.
"""

import struct
from typing import Optional
from typing import Tuple

import cv2
from matte_ros.image_encodings import EncodingError
import numpy as np

#: Formats this module writes; readers accept any payload that is JPEG or PNG.
FORMATS = ('jpeg', 'png')
#: ``cv2.imdecode`` flags: 3-channel BGR, EXIF orientation not applied.
DECODE_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
#: JPEG start-of-frame markers (they carry the size); C4, C8 and CC are other segments.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> Optional[Tuple[int, int]]:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:        # fill byte
            pos += 1
            continue
        if marker in (0x01,) or 0xD0 <= marker <= 0xD7:   # segments without a length
            pos += 2
            continue
        (length,) = struct.unpack('>H', data[pos + 2:pos + 4])
        if marker in _SOF_MARKERS:
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack('>HH', data[pos + 5:pos + 9])
            return width, height
        pos += 2 + length
    return None


def image_size(data: bytes) -> Tuple[str, int, int]:
    """
    Return ``(kind, width, height)`` from a JPEG or PNG header without decoding.

    Raises :class:`EncodingError` when the payload is neither or its header is cut short.
    """
    if data[:8] == _PNG_SIGNATURE:
        if len(data) < 24 or data[12:16] != b'IHDR':
            raise EncodingError('PNG payload without an IHDR header')
        width, height = struct.unpack('>II', data[16:24])
        return 'png', width, height
    if data[:2] == b'\xff\xd8':
        size = _jpeg_size(data)
        if size is None:
            raise EncodingError('JPEG payload without a readable frame header')
        return ('jpeg',) + size
    raise EncodingError('compressed payload is neither JPEG nor PNG (%d bytes, starts %r)'
                        % (len(data), bytes(data[:4])))


def decode(data, max_pixels: Optional[int] = None) -> np.ndarray:
    """Return the JPEG/PNG ``data`` as H×W×3 uint8 BGR; raise ``EncodingError`` if bad."""
    data = bytes(data)
    kind, width, height = image_size(data)
    if width == 0 or height == 0:
        raise EncodingError('%s header says %d×%d pixels' % (kind, width, height))
    if max_pixels is not None and width * height > max_pixels:
        raise EncodingError('%s image of %d×%d pixels exceeds max_pixels %d'
                            % (kind, width, height, max_pixels))
    image = cv2.imdecode(np.frombuffer(data, np.uint8), DECODE_FLAGS)
    if image is None:
        raise EncodingError('OpenCV could not decode the %s payload (%d bytes)'
                            % (kind, len(data)))
    if image.shape[:2] != (height, width):
        raise EncodingError('%s decoded to %d×%d, header said %d×%d'
                            % (kind, image.shape[1], image.shape[0], width, height))
    return image


def encode(bgr: np.ndarray, fmt: str = 'jpeg', quality: int = 80) -> bytes:
    """Return ``bgr`` compressed as ``fmt`` (jpeg with ``quality`` 1-100, or png)."""
    if fmt == 'jpeg':
        ok, buf = cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    elif fmt == 'png':
        ok, buf = cv2.imencode('.png', bgr)
    else:
        raise EncodingError('cannot write compressed format %r (one of %s)'
                            % (fmt, ', '.join(FORMATS)))
    if not ok:
        raise EncodingError('OpenCV could not encode %s' % fmt)
    return buf.tobytes()

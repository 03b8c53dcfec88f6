"""
Malformed ``sensor_msgs/Image`` field sets, for robustness tests (ROS-free).

:func:`generate` yields seeded, reproducible field dicts (``encoding``, ``height``,
``width``, ``step``, ``is_bigendian``, ``data``) that a camera driver with a bug, a
bag from another robot or a hostile peer could send.  Each one has at least one real
defect that :func:`matte_ros.image_encodings.decode` must refuse (checked as it is made);
the ``kind`` says which defect was meant.  Declared sizes go up to the field limits
(2^32 - 1 for the uint32 ``height``, ``width`` and ``step``) while the data stays small,
so a decoder that trusted the header would try to allocate terabytes.
"""

import random
from typing import Dict
from typing import Iterator
from typing import Optional

from matte_ros import image_encodings

UINT32_MAX = 2 ** 32 - 1
INT32_MAX = 2 ** 31 - 1
#: Encodings real drivers use that matte_ros does not take (depth, Bayer, float, 16 bit).
FOREIGN_ENCODINGS = ('16UC1', '32FC1', '8UC3', '8UC1', 'bayer_rggb8', 'bayer_bggr16',
                     'bgra16', 'rgb16', 'mono32', 'jpeg', 'BGR8', 'Bgr8', 'bgr8 ', ' bgr8',
                     'rgb8\t', '', 'yuv420', 'nv12', 'rgba16', '64FC4')
#: Defects :func:`generate` makes, in turn.
KINDS = ('encoding', 'huge_dims', 'zero_dims', 'step_short', 'step_huge', 'data_short',
         'data_long', 'big_endian', 'odd_yuv_width', 'max_pixels')
#: Characters of random encoding names (printable ASCII and some other letters; no NUL,
#: which a C string would cut).
_NAME_CHARS = ''.join(chr(c) for c in range(32, 127)) + 'äöüßéλжЖ中文€'
#: Largest data buffer a generated message carries (bytes).
MAX_DATA = 16384


def _name(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(FOREIGN_ENCODINGS)
    name = ''.join(rng.choice(_NAME_CHARS) for _ in range(rng.randint(1, 24)))
    return name if name not in image_encodings.ENCODINGS else name + '!'


def _size(rng: random.Random) -> int:
    """Return a declared dimension: small, or huge up to the uint32 limit."""
    return rng.choice((rng.randint(1, 64), rng.randint(INT32_MAX - 4, INT32_MAX),
                       rng.randint(1 << 16, INT32_MAX), UINT32_MAX, 1 << 31))


def _valid(rng: random.Random, max_side: int = 24):
    """Return (encoding, height, width, step) of a small well-formed image."""
    encoding = rng.choice(sorted(image_encodings.ENCODINGS))
    info = image_encodings.ENCODINGS[encoding]
    height = rng.randint(1, max_side)
    width = rng.randint(1, max_side)
    if info.channels == 2:
        width += width % 2
    step = width * info.bytes_per_pixel + rng.choice((0, 0, 1, 3))
    return encoding, height, width, step


def _bytes(rng: random.Random, size: int) -> bytes:
    size = max(0, min(size, MAX_DATA))
    return rng.getrandbits(8 * size).to_bytes(size, 'little') if size else b''


def make(kind: str, rng: random.Random, max_pixels: int) -> Dict[str, object]:
    """Return one message's fields with the defect ``kind`` (see :data:`KINDS`)."""
    encoding, height, width, step = _valid(rng)
    size = step * height
    bigendian = rng.choice((0, 0, 1, rng.randint(2, 255)))
    info = image_encodings.ENCODINGS[encoding]
    if kind == 'encoding':
        encoding = _name(rng)
    elif kind == 'huge_dims':
        height, width = _size(rng), _size(rng)
        if height * width < 1 << 31:
            height = INT32_MAX
        step = rng.choice((step, width * info.bytes_per_pixel % (UINT32_MAX + 1),
                           rng.randint(0, UINT32_MAX)))
        size = rng.randint(0, 64)
    elif kind == 'zero_dims':
        height, width = rng.choice(((0, width), (height, 0), (0, 0)))
    elif kind == 'step_short':
        step = rng.randint(0, width * info.bytes_per_pixel - 1)
        size = step * height
    elif kind == 'step_huge':
        step = rng.randint(1 << 20, UINT32_MAX)
        size = rng.randint(0, MAX_DATA)
    elif kind == 'data_short':
        size = rng.randint(0, size - 1)
    elif kind == 'data_long':
        size = size + rng.randint(1, 4096)
    elif kind == 'big_endian':
        # 16-bit data in either byte order, with an odd byte count
        encoding, width = 'mono16', rng.randint(1, 24)
        step = 2 * width
        size = step * height + rng.choice((-1, 1))
        bigendian = rng.choice((1, 255))
    elif kind == 'odd_yuv_width':
        encoding = rng.choice(('yuv422', 'yuv422_yuy2', 'uyvy', 'yuyv'))
        width = 2 * rng.randint(0, 11) + 1
        step = 2 * width
        size = step * height
    elif kind == 'max_pixels':
        # well formed but larger than the limit: refused on the header alone
        encoding = 'mono8'
        side = int(max_pixels ** 0.5) + 1
        height, width = side, side + rng.randint(0, 8)
        step = width
        size = step * height
    else:
        raise ValueError('unknown defect %r (known: %s)' % (kind, ', '.join(KINDS)))
    fields = {'encoding': encoding, 'height': height, 'width': width, 'step': step,
              'is_bigendian': bigendian, 'data': _bytes(rng, size)}
    if accepted(fields, max_pixels):
        raise AssertionError('defect %s made a valid image: %r' % (
            kind, {k: v for k, v in fields.items() if k != 'data'}))
    return fields


def accepted(fields: Dict[str, object], max_pixels: Optional[int]) -> bool:
    """Tell whether :func:`matte_ros.image_encodings.decode` takes these fields."""
    try:
        image_encodings.decode(fields['encoding'], fields['height'], fields['width'],
                               fields['step'], fields['is_bigendian'], fields['data'],
                               max_pixels)
    except image_encodings.EncodingError:
        return False
    return True


def generate(count: int, seed: int = 0, max_pixels: int = 4096) -> Iterator[Dict[str, object]]:
    """Yield ``count`` malformed field dicts, cycling through :data:`KINDS`, with ``kind``."""
    rng = random.Random(seed)
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        fields = make(kind, rng, max_pixels)
        fields['kind'] = kind
        yield fields

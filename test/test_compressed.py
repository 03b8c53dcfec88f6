"""JPEG/PNG payloads of CompressedImage: size from the header, decode, encode, refusals."""

from matte_ros import compressed
from matte_ros.image_encodings import EncodingError
import numpy as np
import pytest


def _image(h=48, w=64):
    """Return a smooth colour gradient (JPEG keeps it within a few levels)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], -1).astype(np.uint8)


@pytest.mark.parametrize('fmt', compressed.FORMATS)
def test_round_trip_keeps_size_and_png_is_exact(fmt):
    image = _image()
    data = compressed.encode(image, fmt, 90)
    assert compressed.image_size(data) == (fmt, 64, 48)
    back = compressed.decode(data)
    assert back.shape == (48, 64, 3) and back.dtype == np.uint8
    if fmt == 'png':
        assert np.array_equal(back, image)
    else:
        assert np.abs(back.astype(int) - image).mean() < 3


def test_grey_payload_decodes_to_three_channels():
    import cv2
    ok, buf = cv2.imencode('.png', np.full((5, 7), 200, np.uint8))
    back = compressed.decode(buf.tobytes())
    assert back.shape == (5, 7, 3) and (back == 200).all()


def test_oversized_image_is_refused_before_decoding():
    data = compressed.encode(_image(100, 100), 'jpeg')
    with pytest.raises(EncodingError, match='max_pixels'):
        compressed.decode(data, max_pixels=100 * 99)
    assert compressed.decode(data, max_pixels=100 * 100).shape == (100, 100, 3)


@pytest.mark.parametrize('data', [b'', b'GIF89a....', b'\xff\xd8\xff', b'\x89PNG\r\n\x1a\n1234',
                                  b'\xff\xd8 not jpeg'])
def test_garbage_is_refused_with_a_reason(data):
    with pytest.raises(EncodingError):
        compressed.decode(data)


def test_truncated_jpeg_is_refused():
    data = compressed.encode(_image(), 'jpeg')
    with pytest.raises(EncodingError):
        compressed.decode(data[:200])


def test_unknown_output_format_is_refused():
    with pytest.raises(EncodingError, match='tiff'):
        compressed.encode(_image(), 'tiff')


def test_exif_orientation_is_ignored():
    import cv2
    from hostile_files import exif_jpeg
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, :16] = 255
    data = exif_jpeg(frame, orientation=6)
    assert compressed.image_size(data) == ('jpeg', 64, 48)
    # OpenCV's default decode turns it to 48×64; ours keeps the camera's 64×48
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape[:2] == (64, 48)
    image = compressed.decode(data)
    assert image.shape == (48, 64, 3)
    assert image[:, :12].mean() > 200 and image[:, 20:].mean() < 30

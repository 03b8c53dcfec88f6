"""Compositing arithmetic: mask threshold and dilation, feathering, blending, backgrounds."""

import cv2
from matte_ros import compositing
from matte_ros import params
from matte_ros.compositing import alpha_to_mask
from matte_ros.compositing import CompositeError
from matte_ros.compositing import Compositor
from matte_ros.compositing import feather
from matte_ros.compositing import to_mono8
import numpy as np
import pytest


def config(**changes):
    """Return a full parameter dict with changes like ``mask__dilate=3`` (for mask.dilate)."""
    values = params.defaults()
    for key, value in changes.items():
        values[key.replace('__', '.')] = value
    return values


def solid(height, width, bgr):
    """Return a solid BGR frame."""
    return np.full((height, width, 3), bgr, np.uint8)


def test_alpha_one_gives_the_frame_and_zero_the_background():
    comp = Compositor(config(composite__mode='color', composite__color=[10, 20, 30]))
    frame = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    np.testing.assert_array_equal(comp.composite(frame, np.ones((6, 8), np.float32)), frame)
    np.testing.assert_array_equal(comp.composite(frame, np.zeros((6, 8), np.float32)),
                                  solid(6, 8, [10, 20, 30]))


def test_blend_with_known_numbers():
    comp = Compositor(config(composite__mode='color', composite__color=[100, 0, 255]))
    frame = solid(2, 2, [200, 50, 0])
    half = comp.composite(frame, np.full((2, 2), 0.5, np.float32))
    np.testing.assert_allclose(half, solid(2, 2, [150, 25, 128]), atol=1)
    quarter = comp.composite(frame, np.full((2, 2), 0.25, np.float32))
    # 200*.25 + 100*.75 = 125; 50*.25 = 12.5; 255*.75 = 191.25
    np.testing.assert_allclose(quarter, solid(2, 2, [125, 12, 191]), atol=1)
    per_pixel = comp.composite(frame, np.array([[0, 1], [0.5, 0.1]], np.float32))
    np.testing.assert_allclose(per_pixel[..., 0], [[100, 200], [150, 110]], atol=1)


def test_uint8_alpha_is_read_as_0_255():
    comp = Compositor(config(composite__mode='color', composite__color=[0, 0, 0]))
    frame = solid(1, 3, [200, 200, 200])
    out = comp.composite(frame, np.array([[0, 255, 51]], np.uint8))
    np.testing.assert_allclose(out[..., 0], [[0, 200, 40]], atol=1)


def test_mode_none_returns_none():
    comp = Compositor(config(composite__mode='none'))
    assert comp.composite(solid(4, 4, [1, 2, 3]), np.ones((4, 4), np.float32)) is None
    assert comp.background(solid(4, 4, [1, 2, 3])) is None


def test_threshold_is_strict():
    alpha = np.array([[0.49, 0.5, 0.51, 1.0, 0.0, np.nan]], np.float32)
    mask = alpha_to_mask(alpha, 0.5)
    assert mask.dtype == np.uint8
    assert mask.tolist() == [[0, 0, 255, 255, 0, 0]]
    assert alpha_to_mask(alpha, 0.0).tolist() == [[255, 255, 255, 255, 0, 0]]


@pytest.mark.parametrize('radius', [1, 2, 3, 7])
def test_dilate_grows_a_point_into_a_disc_of_that_radius(radius):
    alpha = np.zeros((31, 31), np.float32)
    alpha[15, 15] = 1.0
    mask = alpha_to_mask(alpha, 0.5, radius) > 0
    rows, cols = np.nonzero(mask)
    assert cols.min() == 15 - radius and cols.max() == 15 + radius
    assert rows.min() == 15 - radius and rows.max() == 15 + radius
    # A disc, not a square: the corners of the bounding box stay background.
    assert not mask[15 - radius, 15 - radius] and not mask[15 + radius, 15 + radius]
    assert mask[15, 15 - radius] and mask[15 - radius, 15]


def test_dilate_grows_an_edge_by_exactly_n_pixels():
    alpha = np.zeros((20, 40), np.float32)
    alpha[:, :10] = 1.0
    for radius in (0, 1, 4):
        mask = alpha_to_mask(alpha, 0.5, radius)
        assert (mask[:, :10 + radius] == 255).all()
        assert (mask[:, 10 + radius:] == 0).all()


def test_feather_radius_zero_is_identity():
    alpha = np.random.default_rng(1).random((5, 5)).astype(np.float32)
    assert feather(alpha, 0) is alpha


def test_feather_softens_a_hard_edge_around_its_position():
    alpha = np.zeros((10, 40), np.float32)
    alpha[:, 20:] = 1.0
    soft = feather(alpha, 4)
    assert soft.dtype == np.float32
    row = soft[5]
    assert (np.diff(row) >= -1e-6).all()                      # monotonic ramp
    assert row[19] < 0.5 < row[20]                            # the edge stays where it was
    assert 0.02 < row[17] < 0.4 and 0.6 < row[22] < 0.98      # really soft near it
    assert row[:14].max() < 1e-3 and row[26:].min() > 1 - 1e-3  # untouched far from it
    # Border replicated: a foreground touching the image edge stays opaque there.
    np.testing.assert_allclose(feather(np.ones((8, 8), np.float32), 3), 1.0, atol=1e-6)


def test_to_mono8_rounds_and_clips():
    alpha = np.array([[0.0, 1.0, 0.5, 0.2, -0.3, 1.5, np.nan, 0.004]], np.float32)
    assert to_mono8(alpha).tolist() == [[0, 255, 128, 51, 0, 255, 0, 1]]
    assert to_mono8(alpha).dtype == np.uint8
    eight = np.array([[3, 200]], np.uint8)
    assert to_mono8(eight) is eight


def test_dilate_makes_the_composite_opaque_inside_the_mask():
    comp = Compositor(config(composite__mode='color', composite__color=[0, 0, 0],
                             mask__dilate=3, threshold=0.5))
    alpha = np.zeros((21, 21), np.float32)
    alpha[10, 10] = 1.0
    alpha[10, 11] = 0.3                    # soft pixel inside the dilated disc
    alpha[0, 0] = 0.3                      # soft pixel far away keeps its alpha
    frame = solid(21, 21, [100, 100, 100])
    out = comp.composite(frame, alpha)[..., 0]
    assert out[10, 7] == 100 and out[10, 13] == 100 and out[10, 11] == 100
    assert out[10, 6] == 0 and out[10, 14] == 0
    assert abs(int(out[0, 0]) - 30) <= 1
    # Passing the mask the node already computed gives the same result.
    mask = alpha_to_mask(alpha, 0.5, 3)
    np.testing.assert_array_equal(comp.composite(frame, alpha, mask)[..., 0], out)
    # Without dilation the soft alpha is used as is.
    comp.configure(config(composite__mode='color', composite__color=[0, 0, 0]))
    assert abs(int(comp.composite(frame, alpha)[10, 11, 0]) - 30) <= 1


def test_feather_applies_to_the_composite():
    comp = Compositor(config(composite__mode='color', composite__color=[0, 0, 0],
                             mask__feather=3))
    alpha = np.zeros((9, 30), np.float32)
    alpha[:, 15:] = 1.0
    out = comp.composite(solid(9, 30, [200, 200, 200]), alpha)[4, :, 0].astype(int)
    assert out[0] == 0 and out[-1] == 200
    assert 0 < out[14] < 100 < out[15] < 200


def test_blur_background_matches_opencv():
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    for kernel in (1, 3, 9, 21):
        expected = frame if kernel == 1 else cv2.GaussianBlur(frame, (kernel, kernel), 0)
        np.testing.assert_array_equal(compositing.blur_background(frame, kernel), expected)
    comp = Compositor(config(composite__mode='blur', composite__blur_kernel=9))
    np.testing.assert_array_equal(comp.composite(frame, np.zeros((120, 160), np.float32)),
                                  cv2.GaussianBlur(frame, (9, 9), 0))


@pytest.mark.parametrize('kernel', [41, 81, 151])
def test_large_blur_runs_shrunk_but_looks_the_same(kernel):
    # Smooth structure plus noise, like a camera frame.
    yy, xx = np.mgrid[0:240, 0:320].astype(np.float32)
    base = 128 + 60 * np.sin(xx / 17.0) * np.cos(yy / 23.0)
    noise = np.random.default_rng(3).normal(0, 25, (240, 320, 3))
    frame = np.clip(base[..., None] + noise, 0, 255).astype(np.uint8)
    frame[60:180, 100:220] = 255 - frame[60:180, 100:220]   # hard edges
    expected = cv2.GaussianBlur(frame, (kernel, kernel), 0).astype(int)
    got = compositing.blur_background(frame, kernel).astype(int)
    diff = np.abs(got - expected)
    assert diff.mean() < 1.0
    assert np.percentile(diff[20:-20, 20:-20], 99) <= 4


def test_image_background_is_scaled_to_cover_and_centre_cropped(tmp_path):
    picture = np.zeros((100, 300, 3), np.uint8)     # 3:1, three vertical bands
    picture[:, :100] = (255, 0, 0)
    picture[:, 100:200] = (0, 255, 0)
    picture[:, 200:] = (0, 0, 255)
    path = str(tmp_path / 'bands.png')
    assert cv2.imwrite(path, picture)
    comp = Compositor(config(composite__mode='image', composite__image_path=path))
    back = comp.composite(solid(50, 50, [9, 9, 9]), np.zeros((50, 50), np.float32))
    # Covering a square frame keeps the height and crops the middle band only.
    assert back.shape == (50, 50, 3)
    np.testing.assert_array_equal(back[:, 5:45], solid(50, 40, [0, 255, 0]))
    wide = comp.background(solid(10, 90, [0, 0, 0]))
    assert wide.shape == (10, 90, 3)
    assert tuple(wide[5, 2]) == (255, 0, 0) and tuple(wide[5, 87]) == (0, 0, 255)


def test_picture_reloads_only_when_the_path_changes(tmp_path):
    first = str(tmp_path / 'a.png')
    second = str(tmp_path / 'b.png')
    cv2.imwrite(first, solid(8, 8, [10, 10, 10]))
    cv2.imwrite(second, solid(8, 8, [20, 20, 20]))
    values = config(composite__mode='image', composite__image_path=first)
    comp = Compositor(values)
    frame = solid(4, 4, [0, 0, 0])
    zero = np.zeros((4, 4), np.float32)
    assert comp.composite(frame, zero)[0, 0, 0] == 10
    cv2.imwrite(first, solid(8, 8, [30, 30, 30]))           # same path, new content
    values['threshold'] = 0.7
    comp.configure(values)
    assert comp.composite(frame, zero)[0, 0, 0] == 10       # not reloaded
    values['composite.image_path'] = second
    comp.configure(values)
    assert comp.composite(frame, zero)[0, 0, 0] == 20


@pytest.mark.parametrize('path', ['', 'does/not/exist.png', 'not_an_image'])
def test_unreadable_picture_raises_and_changes_nothing(tmp_path, path):
    if path == 'not_an_image':
        path = str(tmp_path / 'junk.png')
        with open(path, 'wb') as f:
            f.write(b'this is not a PNG')
    comp = Compositor(config(composite__mode='color', composite__color=[1, 2, 3]))
    with pytest.raises(CompositeError, match='composite.image_path'):
        comp.configure(config(composite__mode='image', composite__image_path=path))
    assert comp.mode == 'color'
    assert comp.composite(solid(2, 2, [0, 0, 0]), np.zeros((2, 2), np.float32))[0, 0] \
        .tolist() == [1, 2, 3]
    with pytest.raises(CompositeError):
        Compositor(config(composite__mode='image', composite__image_path=path))


def test_a_bad_path_is_only_checked_when_the_picture_is_needed():
    comp = Compositor(config(composite__mode='blur', composite__image_path='missing.png'))
    assert comp.mode == 'blur'
    with pytest.raises(CompositeError, match='missing.png'):
        comp.configure(config(composite__mode='image', composite__image_path='missing.png'))


@pytest.mark.parametrize('key,value,words', [
    ('composite.mode', 'sepia', 'composite.mode'),
    ('composite.blur_kernel', 8, 'odd'),
    ('composite.blur_kernel', 0, 'odd'),
    ('composite.color', [1, 2], 'B, G, R'),
    ('composite.color', [1, 2, 256], 'B, G, R'),
    ('mask.dilate', -1, 'mask.dilate'),
    ('mask.feather', 2.5, 'mask.feather'),
    ('threshold', 'high', 'threshold'),
])
def test_bad_settings_raise_composite_error(key, value, words):
    values = config()
    values[key] = value
    with pytest.raises(CompositeError, match=words):
        Compositor(values)


def test_mismatched_inputs_raise_composite_error():
    comp = Compositor(config(composite__mode='blur'))
    frame = solid(4, 6, [0, 0, 0])
    with pytest.raises(CompositeError, match='alpha'):
        comp.composite(frame, np.zeros((4, 5), np.float32))
    with pytest.raises(CompositeError, match='H×W×3'):
        comp.composite(frame[..., 0], np.zeros((4, 6), np.float32))
    with pytest.raises(CompositeError, match='mask'):
        comp.composite(frame, np.zeros((4, 6), np.float32), np.zeros((3, 6), np.uint8))


def test_missing_keys_fall_back_to_the_schema_defaults():
    comp = Compositor({'composite.mode': 'color'})
    assert comp.color == tuple(params.BY_NAME['composite.color'].default)
    assert comp.blur_kernel == params.BY_NAME['composite.blur_kernel'].default


def test_transparent_mode_keeps_the_frame_and_puts_the_weight_in_a_fourth_channel():
    frame = np.random.default_rng(3).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    alpha = np.random.default_rng(4).random((6, 8), dtype=np.float32)
    comp = Compositor(config(composite__mode='transparent'))
    out = comp.composite(frame, alpha)
    assert out.shape == (6, 8, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., :3], frame)
    np.testing.assert_array_equal(out[..., 3], to_mono8(alpha))
    # dilate and feather shape the published alpha channel as they shape other composites
    grown = Compositor(config(composite__mode='transparent', mask__dilate=1))
    point = np.zeros((6, 8), np.float32)
    point[3, 4] = 1.0
    np.testing.assert_array_equal(grown.composite(frame, point)[..., 3],
                                  alpha_to_mask(point, 0.5, 1))


def test_published_encodings_of_each_composite_kind():
    bgr = np.random.default_rng(5).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    bgra = np.dstack((bgr, np.arange(24, dtype=np.uint8).reshape(4, 6)))
    image, encoding = compositing.published(bgr, 'bgr8')
    assert encoding == 'bgr8' and np.array_equal(image, bgr)
    image, encoding = compositing.published(bgr, 'rgb8')
    assert encoding == 'rgb8' and np.array_equal(image, bgr[..., ::-1])
    image, encoding = compositing.published(bgra, 'mono8')
    assert encoding == 'bgra8' and np.array_equal(image, bgra)
    image, encoding = compositing.published(bgra, 'rgb8')
    assert encoding == 'rgba8'
    np.testing.assert_array_equal(image[..., :3], bgr[..., ::-1])
    np.testing.assert_array_equal(image[..., 3], bgra[..., 3])


def test_background_picture_must_be_a_small_regular_jpeg_or_png(tmp_path):
    import time
    from hostile_files import fifo, huge_png
    pipe = fifo(str(tmp_path / 'fifo'))
    big = str(tmp_path / 'big.png')
    huge_png(big, 10000, 10000)
    start = time.monotonic()
    for path, reason in ((pipe, 'not a regular file .a FIFO'),
                         ('/dev/zero', 'not a regular file'),
                         (str(tmp_path), 'a directory'),
                         (big, 'png image of 10000×10000 pixels exceeds max_pixels'),
                         (str(tmp_path / 'absent.png'), 'cannot be opened')):
        with pytest.raises(compositing.CompositeError, match=reason):
            compositing.Compositor({'composite.mode': 'image', 'composite.image_path': path})
    assert time.monotonic() - start < 5.0   # nothing blocked on the FIFO
    with pytest.raises(compositing.CompositeError, match='exceeds max_pixels 99'):
        compositing.load_picture(big, max_pixels=99)


def test_picture_loaded_elsewhere_is_taken_as_is(tmp_path):
    picture = np.full((4, 6, 3), 7, np.uint8)
    comp = compositing.Compositor({'composite.mode': 'blur'})
    config = {'composite.mode': 'image', 'composite.image_path': str(tmp_path / 'p.png')}
    assert comp.needs_picture(config)
    comp.configure(config, picture=picture)
    assert not comp.needs_picture(config)
    frame = np.zeros((8, 12, 3), np.uint8)
    out = comp.composite(frame, np.zeros((8, 12), np.float32))
    assert out.shape == (8, 12, 3) and int(out.max()) == 7


def test_memory_estimate_grows_with_pixels_and_mode():
    vga, hd = 640 * 480, 1920 * 1080
    blur = compositing.memory_bytes({'composite.mode': 'blur'}, hd)
    assert blur == compositing.BYTES_PER_PIXEL['blur'] * hd
    assert compositing.memory_bytes({'composite.mode': 'blur'}, vga) < blur
    assert compositing.memory_bytes({'composite.mode': 'none'}, hd) == 0
    assert compositing.memory_bytes({'composite.mode': 'image', 'max_pixels': vga}, hd) > blur

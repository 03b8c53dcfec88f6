"""
The stabiliser against a slow reference of its formulas (written here, not imported).

:class:`Reference` computes what the module docstring of ``matte_ros.stabilizer``
states, pixel by pixel in NumPy with no reused planes, no sparse writes and no OpenCV:
the half-resolution green gate, the weight table, OpenCV's ``blendLinear`` formula
(divided by the weights' sum + 1e-5, in float32), NaN to 0, and the mask hysteresis with
its uint8 band test.  Both run the same streams (still and moving content, flicker near
the threshold, segmenter resets, size changes to odd sizes, grey frames, NaN, a
threshold change, many and few held pixels) and must give the same mask on every frame
and the same alpha within 1e-6.  Real frames: DAVIS from ../shared (skipped without).
"""

from conftest import davis_frames  # noqa: I100 (test helper, not a package)
import numpy as np
import pytest

from matte_ros import params  # noqa: I100
from matte_ros import stabilizer
from matte_ros.stabilizer import Stabilizer

STEPS = 64      # the ratio's resolution: steps per unit


def _max3(plane):
    """Return the maximum over each pixel's 3×3 neighbourhood (inside the plane)."""
    padded = np.pad(plane, 1, mode='edge')
    rows, columns = plane.shape
    return np.max([padded[y:y + rows, x:x + columns] for y in range(3) for x in range(3)],
                  axis=0)


def _min3(plane):
    """Return the minimum over each pixel's 3×3 neighbourhood (inside the plane)."""
    return -_max3(-plane)


def _enlarge(half, shape):
    """Return ``half`` with each value over its 2×2 block, cut to ``shape``."""
    return np.repeat(np.repeat(half, 2, axis=0), 2, axis=1)[:shape[0], :shape[1]]


class Reference:
    """The formulas of the stabiliser's docstring, one frame at a time."""

    def __init__(self, config):
        self.strength = float(config['stabilizer.strength'])
        self.motion = int(config['stabilizer.motion'])
        self.hysteresis = float(config['stabilizer.hysteresis'])
        self.threshold = float(config['threshold'])
        self.grey = self.average = self.mask = self.published = None
        self.resets_seen = None

    def set_threshold(self, threshold):
        """Take a new threshold: the previous mask sides no longer count."""
        self.threshold = threshold
        self.mask = None

    def apply(self, frame, alpha, resets):
        """Return this frame's output alpha."""
        if resets != self.resets_seen:
            self.grey = self.mask = None
            self.resets_seen = resets
        alpha = np.array(alpha, np.float32)
        grey = (frame[::2, ::2, 1] if frame.ndim == 3 else frame[::2, ::2]).astype(np.int64)
        if self.grey is None or self.grey.shape != grey.shape or \
                self.average.shape != alpha.shape:
            self.grey, self.average, self.published = grey, alpha, alpha
            self.mask = alpha > self.threshold if self.hysteresis > 0 else None
            return alpha
        change = _max3(np.abs(grey - self.grey))
        contrast = _max3(grey) - _min3(grey)
        scale = np.clip(np.rint(0.5 * contrast + self.motion), 0, 255)
        with np.errstate(divide='ignore', invalid='ignore'):
            ratio = np.where(scale > 0, np.clip(np.rint(STEPS * change / scale), 0, 255), 0)
        ratio = _enlarge(ratio.astype(np.int64), alpha.shape)
        past = (np.float32(self.strength) * np.clip(1.0 - ratio / STEPS, 0.0, 1.0)
                ).astype(np.float32)
        now = np.float32(1.0) - past
        average = (self.average * past + alpha * now) / (past + now + np.float32(1e-5))
        average[np.isnan(average)] = 0.0
        self.grey, self.average = grey, average
        if self.hysteresis <= 0:
            self.mask, self.published = None, average
            return average
        side = average > self.threshold
        out = average
        if self.mask is not None:
            # RATIO_STEPS × |a - threshold| / hysteresis, rounded in float32 as uint8.
            gain = np.float32(STEPS / self.hysteresis)
            distance = np.abs(average * gain + np.float32(-gain * self.threshold))
            distance = np.clip(np.rint(distance), 0, 255)
            held = (side != self.mask) & (distance + ratio < STEPS)
            out = np.where(held, self.published, average)
            side = np.where(held, self.mask, side)
        self.mask, self.published = side, out
        return out


def _config(**changes):
    values = params.defaults()
    values.update({'stabilizer.enabled': True})
    values.update(changes)
    return values


def _compare(stream, config, threshold_at=None):
    """Run ``stream`` of (frame, alpha, resets) through both; return frames with holds."""
    stab, ref = Stabilizer(config), Reference(config)
    frames_held = 0
    for t, (frame, alpha, resets) in enumerate(stream):
        if t == threshold_at:
            stab.configure(dict(config, threshold=0.4))
            ref.set_threshold(0.4)
        out = np.array(stab.apply(frame, alpha, resets))
        expected = ref.apply(frame, alpha, resets)
        assert out.shape == expected.shape
        both = np.isfinite(out) & np.isfinite(expected)
        assert np.array_equal(np.isnan(out), np.isnan(expected)), t
        assert np.abs(out[both] - expected[both]).max(initial=0.0) <= 1e-6, t
        assert np.array_equal(out > ref.threshold, expected > ref.threshold), t
        if ref.mask is not None:
            state = stab.state()
            assert np.abs(state - ref.average).max() <= 1e-6, t
            frames_held += int(not np.array_equal(out, ref.average))
    return frames_held


def _synthetic(shape, count, seed, hover=0.05, speed=2, resets=()):
    """Return a stream: textured noisy background, a square moving ``speed`` px per frame."""
    rng = np.random.default_rng(seed)
    rows, columns = shape
    background = rng.integers(40, 200, (rows, columns, 3)).astype(np.int16)
    background = (background + np.roll(background, 1, axis=1)) // 2
    stream, reset_count = [], 0
    for t in range(count):
        if t in resets:
            reset_count += 1
        frame = background + rng.integers(-3, 4, background.shape)
        alpha = np.clip(0.5 + rng.normal(0.0, hover, shape), 0.0, 1.0)
        left = 5 + speed * t
        frame[rows // 4:rows // 2, left:left + columns // 4] = 230
        alpha[rows // 4:rows // 2, left:left + columns // 4] = 0.95
        alpha[:, :3] = 0.0
        stream.append((np.clip(frame, 0, 255).astype(np.uint8), alpha.astype(np.float32),
                       reset_count))
    return stream


@pytest.mark.parametrize('hysteresis', [0.1, 0.0, 0.45])
def test_synthetic_stream_with_resets_matches_the_reference(hysteresis):
    stream = _synthetic((48, 64), 24, 1, resets=(9, 10))
    held = _compare(stream, _config(**{'stabilizer.hysteresis': hysteresis}))
    if hysteresis:
        assert held > 5      # the hold path was taken (dense: every row hovers)


def test_few_held_pixels_sparse_writes_match_the_reference():
    """A still scene at 0.8 where a few pixels hover at the threshold: few rows held."""
    rng = np.random.default_rng(3)
    frame = np.full((60, 80, 3), 90, np.uint8)
    stream = []
    for t in range(20):
        alpha = np.full((60, 80), 0.8, np.float32)
        alpha[[5, 33, 47], [7, 40, 71]] = 0.5 + 0.04 * rng.standard_normal(3)
        stream.append((frame, alpha, 0))
    assert _compare(stream, _config()) > 5


def test_size_changes_odd_sizes_grey_frames_nan_and_threshold_change():
    stream = _synthetic((48, 64), 8, 2)
    stream += _synthetic((37, 51), 8, 3)                  # odd: no exact 2× enlargement
    grey = _synthetic((30, 44), 8, 4)
    stream += [(frame[:, :, 1].copy(), alpha, resets) for frame, alpha, resets in grey]
    frame, alpha, resets = stream[-3]
    alpha = alpha.copy()
    alpha[3:6, 10:20] = np.nan
    stream[-3] = (frame, alpha, resets)
    stream += [(frame, alpha.astype(np.float64), resets) for frame, alpha, resets in grey]
    _compare(stream, _config(), threshold_at=12)


def test_strength_and_motion_at_their_limits():
    stream = _synthetic((40, 56), 12, 5, speed=1)
    _compare(stream, _config(**{'stabilizer.strength': 0.95, 'stabilizer.motion': 1}))
    _compare(stream, _config(**{'stabilizer.strength': 0.0, 'stabilizer.motion': 255}))


@pytest.mark.parametrize('sequence', ['parkour', 'kite-surf'])
def test_davis_frames_with_a_reset_match_the_reference(sequence):
    """Real frames (320×240) with an alpha that flickers near the threshold, a reset at 8."""
    frames = davis_frames(sequence, 16, (320, 240))
    rng = np.random.default_rng(7)
    stream = []
    for t, frame in enumerate(frames):
        grey = frame[:, :, 1].astype(np.float32) / 255.0
        alpha = np.clip(grey + rng.normal(0.0, 0.03, grey.shape), 0.0, 1.0)
        stream.append((frame, alpha.astype(np.float32), int(t >= 8)))
    assert _compare(stream, _config()) > 0


@pytest.mark.parametrize('dense_rows', [0.0, 2.0])
def test_both_ways_of_writing_held_pixels_match_the_reference(monkeypatch, dense_rows):
    """Held pixels copied into a whole new plane (0) or written sparsely (2), always."""
    monkeypatch.setattr(stabilizer, 'DENSE_ROWS', dense_rows)
    monkeypatch.setattr(stabilizer, 'STRIP_PIXELS', 7 * 64)     # strips of 7 rows and less
    assert _compare(_synthetic((48, 64), 16, 8, resets=(6,)), _config()) > 5
    assert _compare(_synthetic((37, 51), 10, 9, hover=0.02), _config()) > 3


def test_weights_from_the_open_share_are_the_weight_table_bit_for_bit():
    """The weight strength × open / 64 in float32 is weight_table(strength)[64 - open]."""
    from matte_ros.stabilizer import weight_table
    opens = np.arange(STEPS + 1, dtype=np.uint8)
    for strength in np.linspace(0.0, 0.95, 1901):
        table = weight_table(strength)
        step = np.float32(strength) / np.float32(STEPS)
        weights = np.multiply(opens, step, dtype=np.float32)
        assert np.array_equal(weights, table[STEPS - opens.astype(int)]), strength
        assert np.array_equal(np.subtract(np.float32(1.0), weights, dtype=np.float32),
                              (1.0 - table).astype(np.float32)[STEPS - opens.astype(int)])


def test_bench_compares_two_versions_on_the_same_frames(capsys, tmp_path):
    """tools/bench_stabilizer.py --compare: a version with a changed formula is told apart."""
    from conftest import load_tool
    bench = load_tool('bench_stabilizer')
    source = open(stabilizer.__file__).read()
    same, other = tmp_path / 'same.py', tmp_path / 'other.py'
    same.write_text(source)
    other.write_text(source.replace('CONTRAST = 0.5', 'CONTRAST = 0.25'))
    args = ['--size', '64x48', '--frames', '6', '--repeats', '1', '--compare']
    assert bench.main(args + [str(same)]) == 0
    printed = capsys.readouterr().out
    assert 'largest alpha difference 0, 0 mask pixels differ' in printed
    assert printed.count('ms per frame') == 2
    assert bench.main(args + [str(other)]) == 0
    assert 'largest alpha difference 0,' not in capsys.readouterr().out


@pytest.mark.parametrize('shape', [(1, 1), (1, 9), (7, 1), (2, 2), (5, 7), (6, 10)])
def test_tiny_frames_match_the_reference(shape):
    """Frames of a few pixels (one row or column, odd sizes): the same edge handling."""
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    stream = []
    for t in range(10):
        frame = rng.integers(0, 256, shape + (3,)).astype(np.uint8) if t % 3 else \
            np.full(shape + (3,), 80, np.uint8)
        alpha = np.clip(0.5 + rng.normal(0.0, 0.05, shape), 0.0, 1.0).astype(np.float32)
        stream.append((frame, alpha, 0))
    _compare(stream, _config())


def test_non_contiguous_inputs_match_the_reference():
    """Alpha and frame as strided views (every second column of larger arrays)."""
    wide = _synthetic((40, 112), 10, 11)
    stream = [(frame[:, ::2], alpha[:, ::2], resets) for frame, alpha, resets in wide]
    assert not stream[0][1].flags['C_CONTIGUOUS']
    _compare(stream, _config())

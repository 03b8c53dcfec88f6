"""
The temporal stabiliser (matte_ros.stabilizer) alone and inside the Pipeline.

Synthetic sequences whose answers are known: a still scene whose alpha flickers, a
square that moves (image and alpha together), and streams with discontinuities.
"""

from matte_ros import params
from matte_ros import stabilizer
from matte_ros.compositing import to_mono8
from matte_ros.measure import scoring
from matte_ros.pipeline import Pipeline
from matte_ros.stabilizer import Stabilizer
from matte_ros.stabilizer import weight_table
import numpy as np
import pytest

SHAPE = (40, 60)
ON = {'stabilizer.enabled': True, 'stabilizer.strength': 0.7, 'stabilizer.motion': 16,
      'stabilizer.hysteresis': 0.1, 'threshold': 0.5}
NO_HOLD = dict(ON, **{'stabilizer.hysteresis': 0.0})


def scene(left, noise_seed=None):
    """Return (BGR frame, bool mask): a bright 12 px square at column ``left`` on grey."""
    frame = np.full(SHAPE + (3,), 60, np.uint8)
    if noise_seed is not None:
        noise = np.random.default_rng(noise_seed).integers(-2, 3, SHAPE + (3,))
        frame = (frame + noise).astype(np.uint8)
    mask = np.zeros(SHAPE, bool)
    mask[10:22, left:left + 12] = True
    frame[mask] = 220
    return frame, mask


def test_weight_table_falls_linearly_to_zero_at_ratio_one():
    table = weight_table(0.8)
    steps = stabilizer.RATIO_STEPS
    assert table[0] == pytest.approx(0.8)
    assert table[steps // 2] == pytest.approx(0.4)
    assert table[steps] == 0.0 and table[255] == 0.0


def test_disabled_passes_alpha_through_untouched():
    stab = Stabilizer(params.defaults())
    assert not stab.enabled
    frame, mask = scene(5)
    alpha = mask.astype(np.float32)
    assert stab.apply(frame, alpha, 0) is alpha


def test_still_scene_flicker_is_cut():
    """Alpha of a still (noisy) scene with random stray pixels: far fewer mask flips."""
    rng = np.random.default_rng(1)
    stab = Stabilizer(ON)
    raw_score, stable_score = scoring.TemporalScore(), scoring.TemporalScore()
    for t in range(30):
        frame, mask = scene(20, noise_seed=t)
        alpha = mask.astype(np.float32)
        stray = rng.random(SHAPE) < 0.05             # 5 % of pixels wrong each frame
        alpha[stray] = 1.0 - alpha[stray]
        out = stab.apply(frame, alpha, 0)
        raw_score.add(alpha, alpha > 0.5, mask)
        stable_score.add(out, out > 0.5, mask)
    raw, stable = raw_score.result(), stable_score.result()
    # Grey noise of at most 4 levels leaves the past a weight of at least 0.7 x 0.75:
    # a lone stray pixel keeps under half of its flip and stays hidden; only strays
    # that repeat at a pixel (or fall beside the square's edge) still show.
    assert raw['flicker'] > 8.0
    assert stable['flicker'] < 0.2 * raw['flicker']
    assert stable['dtSSD'] < 0.6 * raw['dtSSD']


def test_moving_square_is_not_smeared_and_not_delayed():
    """Where the image changes the segmenter's alpha passes at once: no trail, no lag."""
    stab = Stabilizer(ON)
    for t in range(12):
        frame, mask = scene(4 + 3 * t)
        alpha = mask.astype(np.float32)
        out = stab.apply(frame, alpha, 0)
        # The new leading columns are foreground in this very frame, the columns the
        # square left are background in this very frame: the mask equals the truth.
        assert np.array_equal(out > 0.5, mask), 'frame %d' % t
        # And the published alpha (mono8) is the segmenter's, pixel for pixel.
        assert np.array_equal(to_mono8(out), to_mono8(alpha)), 'frame %d' % t


def test_only_the_past_is_used():
    """The output of frame t is the same whether or not later frames follow."""
    frames = [scene(10 + t % 3, noise_seed=t) for t in range(6)]
    alphas = [np.random.default_rng(t).random(SHAPE).astype(np.float32) for t in range(6)]
    full = Stabilizer(ON)
    # Each output is valid until the next call (the stabiliser reuses its planes): copy.
    outs = [full.apply(f, a, 0).copy() for (f, _), a in zip(frames, alphas)]
    for t in range(6):
        cut = Stabilizer(ON)
        for (f, _), a in zip(frames[:t + 1], alphas[:t + 1]):
            last = cut.apply(f, a, 0)
        assert np.array_equal(last, outs[t])
    # The first frame passes through unchanged (nothing in the past).
    assert np.array_equal(outs[0], alphas[0])


def _hold_test(stab, resets_after):
    """Feed a still scene whose alpha drops from 1 to 0; return the second output."""
    frame, _ = scene(20)
    stab.apply(frame, np.ones(SHAPE, np.float32), 0)
    return stab.apply(frame, np.zeros(SHAPE, np.float32), resets_after)


def test_segmenter_reset_and_size_change_clear_the_state():
    held = _hold_test(Stabilizer(ON), 0)
    assert held.min() == pytest.approx(0.7, abs=1e-4)      # the past is held ...
    cleared = _hold_test(Stabilizer(ON), 1)                  # ... unless the segmenter reset
    assert not cleared.any()
    stab = Stabilizer(ON)
    stab.apply(scene(20)[0], np.ones(SHAPE, np.float32), 0)
    small = np.zeros((20, 30), np.float32)
    out = stab.apply(np.full((20, 30, 3), 60, np.uint8), small, 0)
    assert not out.any() and stab.last_reset_reason == 'frame size changed'


def test_switching_off_drops_the_state():
    stab = Stabilizer(ON)
    frame, _ = scene(20)
    stab.apply(frame, np.ones(SHAPE, np.float32), 0)
    stab.configure(dict(ON, **{'stabilizer.enabled': False}))
    stab.configure(ON)
    assert not stab.apply(frame, np.zeros(SHAPE, np.float32), 0).any()


def _pipeline(**extra):
    values = dict(ON, segmenter='framediff', **{'composite.mode': 'none'})
    values.update(extra)
    return Pipeline(values, backend='cpu')


def _held_after(pipeline, second_id='cam', reset=False):
    """Still frames, then one whose framediff alpha is 0: return its mask's maximum."""
    a, _ = scene(20)
    b, _ = scene(23)
    pipeline.process(a, 0.0, 'cam')
    pipeline.process(b, 0.1, 'cam')          # the square moved: framediff alpha 1 there
    if reset:
        pipeline.reset('~/reset service')
    return int(pipeline.process(b, 0.2, second_id).mask.max())


def test_pipeline_stabiliser_follows_the_segmenter_resets():
    # Frame 3 repeats frame 2: framediff says 0 everywhere, the stabiliser holds 0.7 of
    # frame 2's alpha where the image is still, so the moved square's pixels stay on.
    assert _held_after(_pipeline()) == 255
    # A frame_id change is a discontinuity (segmenter Continuity): both states go.
    assert _held_after(_pipeline(), second_id='other') == 0
    # ~/reset goes through Pipeline.reset: both states go.
    assert _held_after(_pipeline(), reset=True) == 0
    # Off: framediff's own answer.
    assert _held_after(_pipeline(**{'stabilizer.enabled': False})) == 0


def test_pipeline_switch_is_dynamic():
    pipeline = _pipeline(**{'stabilizer.enabled': False})
    assert not pipeline.needs_rebuild({'stabilizer.enabled': True,
                                       'stabilizer.strength': 0.5})
    pipeline.update({'stabilizer.enabled': True})
    assert pipeline.stabilizer.enabled
    assert _held_after(pipeline) == 255


@pytest.mark.parametrize('name, value', [
    ('stabilizer.strength', 0.99), ('stabilizer.strength', -0.1),
    ('stabilizer.motion', 0.0), ('stabilizer.enabled', 1), ('stabilizer.motion', 'x'),
    ('stabilizer.hysteresis', 0.5), ('stabilizer.hysteresis', -0.01),
    ('stabilizer.hysteresis', float('nan')), ('stabilizer.hysteresis', 'x')])
def test_careless_values_are_refused(name, value):
    pipeline = _pipeline()
    with pytest.raises(ValueError):
        pipeline.update({name: value})
    assert pipeline.stabilizer.strength == 0.7 and pipeline.stabilizer.motion == 16.0
    assert pipeline.stabilizer.hysteresis == 0.1


# --- mask hysteresis ---------------------------------------------------------------------

def _hovering(t):
    """Alpha of a still scene: the square at 0.9, a band of pixels at 0.45 / 0.56 in turn."""
    frame, mask = scene(20, noise_seed=t)
    alpha = mask.astype(np.float32) * 0.9
    alpha[30:34, :] = 0.45 if t % 2 else 0.56
    return frame, alpha


def test_hysteresis_stops_a_hovering_alpha_from_toggling():
    """Known answer: the band starts on (0.56) and never leaves it; without a hold it toggles."""
    flips = {}
    for values in (ON, NO_HOLD):
        stab, last, count = Stabilizer(values), None, 0
        for t in range(20):
            frame, alpha = _hovering(t)
            band = stab.apply(frame, alpha, 0)[30:34, :] > 0.5
            if last is not None:
                count += int(np.count_nonzero(band != last))
            last = band
        flips[values['stabilizer.hysteresis']] = (count, last)
    held_count, held_last = flips[0.1]
    assert held_count == 0 and held_last.all()
    # Without the hold the average (0.7 of the past) crosses 0.5 about every frame.
    assert flips[0.0][0] > 10 * 4 * SHAPE[1]


def test_a_held_pixel_keeps_its_published_alpha_and_the_average_is_untouched():
    stab, plain = Stabilizer(ON), Stabilizer(NO_HOLD)
    published, held_any = None, False
    for t in range(6):
        frame, alpha = _hovering(t)
        out, ref = stab.apply(frame, alpha, 0).copy(), plain.apply(frame, alpha, 0)
        # The state is the plain average: holding never feeds back.
        assert np.array_equal(stab.state(), ref)
        held = (out > 0.5) != (ref > 0.5)
        if published is not None:
            assert np.array_equal(out[held], published[held])
        assert np.array_equal(out[~held], ref[~held])
        held_any = held_any or held.any()
        published = out
    assert held_any


def test_hysteresis_never_holds_a_moving_edge():
    """A square whose alpha is just above the threshold moves: the mask follows at once."""
    stab = Stabilizer(dict(ON, **{'stabilizer.hysteresis': 0.45}))
    for t in range(12):
        frame, mask = scene(4 + 3 * t)
        alpha = np.where(mask, 0.56, 0.44).astype(np.float32)
        out = stab.apply(frame, alpha, 0)
        assert np.array_equal(out > 0.5, mask), 'frame %d' % t


def test_reset_drops_the_held_mask():
    stab = Stabilizer(ON)
    frame, _ = scene(20)
    stab.apply(frame, np.full(SHAPE, 0.9, np.float32), 0)
    stab.apply(frame, np.full(SHAPE, 0.9, np.float32), 0)
    assert stab._mask is not None       # a mask to hold against was kept
    stab.reset('~/reset')
    assert stab._mask is None and stab._published is None
    # After the reset the first frame passes as it is, and the next one is not held
    # against the mask from before the reset.
    first = np.full(SHAPE, 0.45, np.float32)
    assert np.array_equal(stab.apply(frame, first, 0), first)
    assert not (stab.apply(frame, first, 0) > 0.5).any()


def test_hysteresis_off_publishes_the_average_itself():
    stab = Stabilizer(NO_HOLD)
    for t in range(5):
        frame, alpha = _hovering(t)
        out = stab.apply(frame, alpha, 0)
        assert t == 0 or out is stab._alpha        # no copy, no mask kept
    assert stab._mask is None

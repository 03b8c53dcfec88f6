"""Behaviour of the bgsub segmenter on synthetic frames and on CDnet 2014 baseline."""

import contextlib
import os
import sys
import types

import cv2
from matte_ros.measure import datasets
from matte_ros.measure.scoring import CdnetScore
from matte_ros.params import defaults
from matte_ros.params import ParamError
from matte_ros.params import validate
from matte_ros.segmenters import create
from matte_ros.segmenters import SegmenterError
from matte_ros.segmenters.bgsub import BackgroundSubtractor
from matte_ros.segmenters.bgsub_consensus import filled_holes
from matte_ros.segmenters.bgsub_consensus import HOLE_LIMIT
from matte_ros.segmenters.bgsub_consensus import SampleConsensus
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CDNET = os.path.join(REPO, '..', 'shared', 'data', 'cdnet2014', 'baseline')

H, W = 120, 160
SQUARE = 24
ALGORITHMS = ['consensus', 'mog2', 'knn']


def config(**changes):
    """Return every parameter at its default, with ``bgsub.<key>`` overrides (validated)."""
    cfg = defaults()
    for key, value in changes.items():
        name = 'bgsub.' + key.replace('__', '.')
        cfg[name] = validate(name, value)
    return cfg


def static_background(seed=0):
    """Return a textured static scene (smoothed noise, so colours vary locally)."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (H // 8, W // 8, 3), dtype=np.uint8)
    return cv2.resize(noise, (W, H), interpolation=cv2.INTER_LINEAR)


def noisy(image, rng, amplitude=2):
    """Return ``image`` plus uniform sensor noise of ± ``amplitude``."""
    out = image.astype(np.int16) + rng.integers(-amplitude, amplitude + 1, image.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def frame_at(background, t, rng):
    """Return the background plus sensor noise and a red square that moves with t."""
    frame = noisy(background, rng)
    x = 10 + (3 * t) % (W - SQUARE - 20)
    y = 40 + (t // 3) % 30
    frame[y:y + SQUARE, x:x + SQUARE] = (20, 20, 235)
    box = np.zeros((H, W), bool)
    box[y:y + SQUARE, x:x + SQUARE] = True
    return frame, box


def run(seg, background, frames, start=0, seed=1):
    """Feed ``frames`` frames; return the last matte and the last square's box."""
    rng = np.random.default_rng(seed)
    matte = box = None
    for t in range(start, start + frames):
        frame, box = frame_at(background, t, rng)
        matte = seg.process(frame)
    return matte, box


def test_default_algorithm_is_consensus():
    seg = create('bgsub', defaults(), 'cpu')
    assert seg.algorithm == 'consensus'
    assert isinstance(seg._model, SampleConsensus)


@pytest.mark.parametrize('algorithm', ALGORITHMS)
def test_moving_square_is_foreground_and_background_is_learnt(algorithm):
    background = static_background()
    seg = create('bgsub', config(algorithm=algorithm), 'cpu')
    matte, box = run(seg, background, 80)
    alpha = matte.alpha
    assert alpha.dtype == np.float32 and alpha.shape == (H, W)
    assert set(np.unique(alpha)) <= {0.0, 1.0}
    assert alpha[box].mean() > 0.9, 'the moving square must be detected'
    assert alpha[~box].mean() < 0.02, 'the static background must not be'
    assert matte.background.shape == (H, W, 3) and matte.background.dtype == np.uint8
    error = np.abs(matte.background.astype(int) - background.astype(int))
    assert np.median(error[~box]) <= 3, 'background image must approximate the scene'


@pytest.mark.parametrize('algorithm, frames', [('consensus', 1), ('mog2', 1), ('knn', 6)])
def test_reset_clears_the_model(algorithm, frames):
    """After reset the model is rebuilt from the next frames (KNN needs a few)."""
    background = static_background()
    other = static_background(seed=7)

    def median_error(image, scene):
        return np.median(np.abs(image.astype(int) - scene.astype(int)))

    seg = BackgroundSubtractor(config(algorithm=algorithm), 'cpu')
    run(seg, background, 60)
    # A learnt model still holds the old scene and sees the new one as foreground ...
    matte, _ = run(seg, other, frames, start=60)
    assert matte.alpha.mean() > 0.5
    assert median_error(matte.background, background) <= 3
    # ... while a reset model learns the new scene from scratch.
    seg.reset('test')
    assert seg.last_reset_reason == 'test'
    matte, _ = run(seg, other, frames, start=60)
    assert median_error(matte.background, other) <= 3
    if algorithm != 'knn':  # KNN calls everything foreground until it has samples
        assert matte.alpha.mean() < 0.05


def test_resolution_change_resets_through_process():
    seg = BackgroundSubtractor(config(), 'cpu')
    seg.process(np.zeros((H, W, 3), np.uint8))
    matte = seg.process(np.full((H // 2, W // 2, 3), 200, np.uint8))
    assert seg.last_reset_reason == 'resolution changed'
    assert matte.alpha.shape == (H // 2, W // 2) and matte.alpha.max() == 0.0
    assert matte.background.shape == (H // 2, W // 2, 3)


@pytest.mark.parametrize('algorithm, frames', [('consensus', 200), ('mog2', 10), ('knn', 10)])
def test_learn_rate_change_is_applied(algorithm, frames):
    """
    After configure(rate 0) a scene change stays foreground; after rate 1 it is learnt.

    consensus: with learning off a change of the whole frame is not re-learnt either;
    with it on, such a change re-initialises the model within a fraction of a second.
    """
    background = static_background()
    other = static_background(seed=3)
    seg = BackgroundSubtractor(config(algorithm=algorithm, learn_rate=-1.0), 'cpu')
    for _ in range(20):
        seg.process(background)
    seg.configure(config(algorithm=algorithm, learn_rate=0.0))
    for _ in range(5):
        matte = seg.process(other)
    assert matte.alpha.mean() > 0.5, 'rate 0: the model must not learn the new scene'
    seg.configure(config(algorithm=algorithm, learn_rate=1.0))
    assert seg.learn_rate == 1.0
    for _ in range(frames):
        matte = seg.process(other)
    assert matte.alpha.mean() < 0.05, 'rate 1: the model must take the new scene'


def test_shadows_are_background():
    """A darkened patch (same chromaticity) is a shadow: not in alpha with detect_shadows."""
    background = np.full((H, W, 3), (90, 140, 190), np.uint8)
    shadowed = background.copy()
    shadowed[40:80, 40:100] = (background[40:80, 40:100] * 0.7).astype(np.uint8)
    for detect, expected in ((True, 0.0), (False, 1.0)):
        seg = BackgroundSubtractor(config(algorithm='mog2', detect_shadows=detect), 'cpu')
        rng = np.random.default_rng(0)
        for _ in range(30):
            seg.process(noisy(background, rng))
        matte = seg.process(shadowed)
        assert matte.alpha[45:75, 45:95].mean() == pytest.approx(expected, abs=0.05)


# -- consensus knobs --------------------------------------------------------------------


def test_consensus_threshold_is_dynamic():
    """A change of 20 (L1) is foreground at threshold 10 and background at 40."""
    background = static_background()
    seg = BackgroundSubtractor(config(consensus__threshold=10.0, consensus__adapt=0.0), 'cpu')
    rng = np.random.default_rng(0)
    for _ in range(30):
        seg.process(noisy(background, rng, 1))
    brighter = np.clip(background.astype(int) + (7, 7, 6), 0, 255).astype(np.uint8)
    assert seg.process(brighter).alpha.mean() > 0.9
    seg.configure(config(consensus__threshold=40.0, consensus__adapt=0.0))
    assert seg.process(brighter).alpha.mean() < 0.05


def test_consensus_adapt_quietens_noisy_pixels():
    """Pixels that always flicker raise their own threshold when adapt > 0."""
    background = static_background()
    flicker = np.zeros((H, W), bool)
    flicker[20:60, 20:60] = True

    def false_positives(adapt):
        seg = BackgroundSubtractor(config(consensus__adapt=adapt,
                                          consensus__smooth=1), 'cpu')
        rng = np.random.default_rng(5)
        rate = []
        for t in range(300):
            frame = noisy(background, rng, 1)
            jitter = rng.integers(-18, 19, (H, W, 1))
            frame[flicker] = np.clip(frame[flicker] + jitter[flicker], 0, 255)
            alpha = seg.process(frame).alpha
            if t >= 200:
                rate.append(alpha[flicker].mean())
        return float(np.mean(rate))

    fixed, adaptive = false_positives(0.0), false_positives(2.0)
    assert fixed > 0.05, 'the flicker must exceed the fixed threshold sometimes'
    assert adaptive < fixed / 3


def test_consensus_smoothing_removes_isolated_pixels():
    background = static_background()
    speck = background.copy()
    speck[60, 80] = 255 - speck[60, 80]
    speck[10:30, 10:30] = 255 - speck[10:30, 10:30]
    for smooth, expected in ((1, 1.0), (9, 0.0)):
        seg = BackgroundSubtractor(config(consensus__smooth=smooth), 'cpu')
        for _ in range(10):
            seg.process(background)
        alpha = seg.process(speck).alpha
        assert alpha[60, 80] == expected
        assert alpha[12:28, 12:28].min() == 1.0, 'a 20×20 change survives any smoothing'


def test_consensus_dissolves_a_ghost():
    """An object in the first frame that leaves is a ghost, which diffusion absorbs."""
    background = static_background()
    first = background.copy()
    first[40:70, 60:90] = (20, 20, 235)
    seg = BackgroundSubtractor(config(), 'cpu')
    seg.process(first)
    rng = np.random.default_rng(0)
    ghost = [seg.process(noisy(background, rng)).alpha[40:70, 60:90].mean()
             for _ in range(100)]
    assert ghost[0] > 0.5, 'the uncovered background differs from the model at first'
    assert max(ghost[-10:]) < 0.05, 'and is learnt within 100 frames'


def test_consensus_min_matches_is_validated():
    with pytest.raises(SegmenterError, match='min_matches'):
        BackgroundSubtractor(config(consensus__samples=2, consensus__min_matches=3), 'cpu')
    seg = BackgroundSubtractor(config(consensus__samples=3), 'cpu')
    with pytest.raises(SegmenterError, match='min_matches'):
        seg.configure(config(consensus__samples=3, consensus__min_matches=4))


def test_consensus_min_matches_needs_that_many_samples():
    """A colour seen in one sample is background with min_matches 1, not with 2."""
    model = SampleConsensus(samples=4, min_matches=1, adapt=0.0, smooth=1, learn_rate=0.0)
    grey = np.full((8, 8, 3), 100, np.uint8)
    model.apply(grey)
    model._model[1] = 200  # one sample of every pixel remembers a bright colour
    bright = np.full((8, 8, 3), 200, np.uint8)
    assert model.apply(bright).max() == 0
    model.configure(threshold=30.0, min_matches=2, adapt=0.0, smooth=1, learn_rate=0.0)
    assert model.apply(bright).min() == 255


# -- VPI ----------------------------------------------------------------------------------


def test_vpi_backend_without_nvidia_vpi_raises(monkeypatch):
    monkeypatch.setitem(sys.modules, 'vpi', None)  # import vpi -> ImportError
    with pytest.raises(SegmenterError, match='NVIDIA VPI was not found'):
        BackgroundSubtractor(config(algorithm='mog2'), 'vpi')


def test_vpi_backend_rejects_the_unrelated_pypi_vpi(monkeypatch):
    impostor = types.ModuleType('vpi')  # PyPI's "vpi" (Raspberry Pi) has none of VPI's API
    impostor.__file__ = '/somewhere/vpi/__init__.py'
    monkeypatch.setitem(sys.modules, 'vpi', impostor)
    with pytest.raises(SegmenterError, match='NVIDIA VPI was not found.*BackgroundSubtractor'):
        BackgroundSubtractor(config(algorithm='mog2'), 'vpi')


class _Locked:
    """Stand-in for a VPI image: ``rlock_cpu()`` yields its array."""

    def __init__(self, array):
        self.array = array

    def rlock_cpu(self):
        return contextlib.nullcontext(self.array)


def fake_vpi(calls):
    """
    Build a stand-in for NVIDIA VPI's Python module that records how it is called.

    The subtractor marks the left half foreground (255), a shadow column (127) and the
    rest background, and returns a grey background image.
    """
    vpi = types.ModuleType('vpi')
    vpi.Backend = types.SimpleNamespace(CUDA=contextlib.nullcontext())
    vpi.Format = types.SimpleNamespace(BGR8='BGR8')
    vpi.asimage = lambda array, fmt: (array, fmt)

    def subtractor(size, fmt):
        calls.append(('create', size, fmt))

        def call(image, *, out_fgmask=None, out_bg=None, threshold=16.0, shadow=127,
                 learnrate=0.001, stream=None):
            # VPI 3's keywords exactly (no **kwargs: a misspelt keyword fails here)
            calls.append(('call', {'learnrate': learnrate, 'threshold': threshold,
                                   'shadow': shadow}))
            width, height = size
            mask = np.zeros((height, width), np.uint8)
            mask[:, :width // 2] = 255
            mask[:, -1] = 127
            return _Locked(mask), _Locked(np.full((height, width, 3), 90, np.uint8))
        return call

    vpi.BackgroundSubtractor = subtractor
    return vpi


def test_vpi_path_maps_parameters(monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, 'vpi', fake_vpi(calls))
    seg = BackgroundSubtractor(config(algorithm='mog2', learn_rate=-1.0,
                                      variance_threshold=25.0), 'vpi')
    matte = seg.process(static_background())
    assert calls[0] == ('create', (W, H), 'BGR8')
    assert calls[1][1] == {'learnrate': 0.5, 'threshold': 25.0, 'shadow': 127}
    assert matte.alpha[:, :W // 2].min() == 1.0 and matte.alpha[:, W // 2:].max() == 0.0
    assert matte.background.shape == (H, W, 3)
    seg.process(static_background())
    assert calls[2][1]['learnrate'] == 0.25, "automatic rate: MOG2's 1 / (2 x frames seen)"
    seg.configure(config(algorithm='mog2', learn_rate=0.02))
    seg.process(static_background())
    assert calls[3][1]['learnrate'] == 0.02
    no_shadows = BackgroundSubtractor(config(algorithm='mog2', detect_shadows=False), 'vpi')
    no_shadows.process(static_background())
    assert calls[-1][1]['shadow'] is None


@pytest.mark.parametrize('algorithm', ['consensus', 'knn'])
def test_vpi_backend_runs_other_algorithms_on_cpu(monkeypatch, algorithm):
    """VPI offers a Gaussian mixture only: consensus and knn run on the CPU, saying why."""
    monkeypatch.setitem(sys.modules, 'vpi', None)  # and they never need VPI
    seg = BackgroundSubtractor(config(algorithm=algorithm), 'vpi')
    assert seg.backend == 'cpu'
    assert 'no VPI implementation' in seg.warning and 'mog2' in seg.warning
    assert seg.process(static_background()).alpha.shape == (H, W)


def test_cpu_backend_never_imports_vpi(monkeypatch):
    monkeypatch.setitem(sys.modules, 'vpi', None)
    seg = BackgroundSubtractor(config(), 'cpu')
    assert seg.process(static_background()).alpha.shape == (H, W)


# -- CDnet 2014 ------------------------------------------------------------------------


def cdnet_f_measure(seg, sequence, last):
    """
    Run ``seg`` on frames 1 … ``last`` of a CDnet sequence; return the F-measure.

    Scoring follows CDnet (matte_ros.measure.scoring): frames before the temporal ROI are only
    learnt from; scored pixels lie in ROI.bmp with ground truth 255, 0 or 50.
    """
    seqdir = os.path.join(CDNET, sequence)
    score = CdnetScore(datasets.cdnet_roi(seqdir))
    for _, frame, gt, scored in datasets.iter_cdnet(seqdir, last=last):
        score.add(seg.process(frame).alpha > 0.5, gt, scored)
    return score.result()['f_measure']


@pytest.fixture
def cdnet():
    if not os.path.isdir(os.path.join(CDNET, 'pedestrians')):
        pytest.skip('CDnet 2014 baseline not found at %s (../shared beside the repo)' % CDNET)


def test_mog2_on_cdnet_pedestrians(cdnet):
    """Check OpenCV MOG2 at its own defaults: measured F 0.79 (full), 0.80 (to frame 700)."""
    seg = BackgroundSubtractor(config(algorithm='mog2', learn_rate=-1.0), 'cpu')
    assert cdnet_f_measure(seg, 'pedestrians', last=700) > 0.7


@pytest.mark.parametrize('sequence, last', [('pedestrians', 700), ('highway', 900)])
def test_consensus_defaults_on_cdnet(cdnet, sequence, last):
    """
    Check the default algorithm (consensus) on the first scored frames of a sequence.

    Measured F (seed 0): pedestrians to frame 700: 0.971, highway to frame 900: 0.970
    (whole temporal ROIs: 0.977 and 0.960, docs/quality.md).
    """
    seg = BackgroundSubtractor(defaults(), 'cpu')
    assert cdnet_f_measure(seg, sequence, last) > 0.94


# -- consensus: still objects, ghosts, blinking, scene changes, memory -------------------


def square_scene(t, rng, still=True, ghost=False):
    """Return a frame: noisy background, a square that stands still, or the ghost case."""
    frame = noisy(static_background(), rng)
    if still:
        frame[30:60, 30:60] = (20, 20, 235)
    if ghost and t == 0:
        frame[50:80, 100:130] = (235, 200, 20)
    return frame


def run_stamped(seg, frames, step, **scene):
    """Feed ``frames`` frames stamped every ``step`` seconds; return the alphas."""
    rng = np.random.default_rng(4)
    empty = noisy(static_background(), rng)
    seg.process(empty, 0.0, 'cam')
    return [seg.process(square_scene(t, rng, **scene), step * (t + 1), 'cam').alpha
            for t in range(frames)]


def test_consensus_keeps_a_still_object_for_still_seconds_of_stamps():
    """An object that stops stays foreground for still_seconds (stamp time, not frames)."""
    seg = BackgroundSubtractor(config(consensus__still_seconds=5.0), 'cpu')
    alphas = run_stamped(seg, 140, 1 / 30.0)  # 4.7 s
    assert min(a[32:58, 32:58].mean() for a in alphas) > 0.95
    # The same 140 frames 0.1 s apart span 14 s: the object is background well before.
    seg = BackgroundSubtractor(config(consensus__still_seconds=5.0), 'cpu')
    alphas = run_stamped(seg, 140, 0.1)
    assert alphas[40][32:58, 32:58].mean() > 0.95, 'still foreground at 4 s'
    assert max(a[32:58, 32:58].mean() for a in alphas[-20:]) < 0.05, 'absorbed after 5 s'
    # A pause in the stream counts as at most MAX_STEP (1 s): 12 frames 60 s apart.
    seg = BackgroundSubtractor(config(consensus__still_seconds=20.0), 'cpu')
    alphas = run_stamped(seg, 12, 60.0)
    assert min(a[32:58, 32:58].mean() for a in alphas) > 0.95


def test_consensus_default_keeps_a_still_object_for_minutes():
    seg = BackgroundSubtractor(config(), 'cpu')
    assert seg._model.still_seconds >= 120.0
    alphas = run_stamped(seg, 150, 1.0)  # 2.5 minutes of stamps, a frame a second
    assert min(a[32:58, 32:58].mean() for a in alphas) > 0.95
    assert max(a[~_box(30, 30)].mean() for a in alphas[-5:]) < 0.01


def _box(y, x, size=30):
    box = np.zeros((H, W), bool)
    box[y:y + size, x:x + size] = True
    return box


def test_consensus_releases_a_ghost_fast_and_keeps_the_still_object():
    """An object in the first frame that leaves is a ghost, released within a second."""
    seg = BackgroundSubtractor(config(), 'cpu')
    rng = np.random.default_rng(2)
    seg.process(square_scene(0, rng, still=False, ghost=True), 0.0, 'cam')
    alphas = [seg.process(square_scene(1, rng), (t + 1) / 30.0, 'cam').alpha
              for t in range(60)]
    ghost = _box(50, 100)
    assert alphas[0][ghost].mean() > 0.5, 'the uncovered background is foreground at first'
    assert max(a[ghost].mean() for a in alphas[30:]) < 0.05, 'and released within 1 s'
    assert min(a[32:58, 32:58].mean() for a in alphas[5:]) > 0.95, 'the object stays'
    assert seg._model.ghosts_released >= 1


def test_consensus_blinking_pixels_raise_their_threshold(monkeypatch):
    """A patch of strong random jitter (leaves, water) becomes quiet through the blink level."""
    from matte_ros.segmenters import bgsub_consensus
    background = static_background()
    patch = _box(20, 20, 40)

    def false_positives():
        seg = BackgroundSubtractor(config(consensus__adapt=0.0), 'cpu')
        rng = np.random.default_rng(5)
        rate = []
        for t in range(300):
            frame = noisy(background, rng, 1)
            jitter = rng.integers(-40, 41, (H, W, 1))
            frame[patch] = np.clip(frame[patch] + jitter[patch], 0, 255)
            alpha = seg.process(frame).alpha
            if t >= 200:
                rate.append(alpha[patch].mean())
        return float(np.mean(rate))

    with_blink = false_positives()
    monkeypatch.setattr(bgsub_consensus, 'BLINK_GAIN', 0.0)
    without = false_positives()
    assert without > 0.05, 'the jitter must exceed the base threshold'
    assert with_blink < 0.6 * without


def test_consensus_relearns_a_large_scene_change_fast():
    """Lights on: the whole frame changes; the model re-learns within half a second."""
    seg = BackgroundSubtractor(config(), 'cpu')
    rng = np.random.default_rng(6)
    for t in range(30):
        seg.process(noisy(static_background(), rng), t / 30.0, 'cam')
    lit = np.clip(static_background().astype(int) + 70, 0, 255).astype(np.uint8)
    alphas = [seg.process(noisy(lit, rng), 1 + t / 30.0, 'cam').alpha for t in range(15)]
    assert alphas[0].mean() > 0.9
    assert max(a.mean() for a in alphas[-5:]) < 0.01
    assert seg._model.relearned == 1


def test_consensus_refuses_negative_or_nan_still_seconds():
    with pytest.raises(ValueError, match='still_seconds'):
        SampleConsensus(still_seconds=-1.0)
    with pytest.raises(ParamError):
        validate('bgsub.consensus.still_seconds', -1.0)
    nan = config()
    nan['bgsub.consensus.still_seconds'] = float('nan')
    with pytest.raises(SegmenterError, match='still_seconds'):
        BackgroundSubtractor(nan, 'cpu')
    seg = BackgroundSubtractor(config(), 'cpu')
    with pytest.raises(SegmenterError, match='still_seconds'):
        seg.configure(nan)
    assert seg._model.still_seconds == 300.0, 'the old value stays'


def test_shadow_pixels_are_darker_with_the_background_texture():
    """shadow_pixels: a uniform darkening of a textured background, not other changes."""
    from matte_ros.segmenters.bgsub_consensus import shadow_pixels
    background = static_background()
    inner = (slice(10, -10), slice(10, -10))  # away from clipped borders

    def share(frame, darkest=0.5):
        return shadow_pixels(frame, background.astype(np.float32), darkest)[inner].mean() / 255

    assert share(cv2.convertScaleAbs(background, alpha=0.7)) > 0.9, 'a cast shadow'
    assert share(background) == 0.0, 'no change is no shadow'
    assert share(cv2.convertScaleAbs(background, alpha=1.2)) == 0.0, 'brighter: no shadow'
    assert share(cv2.convertScaleAbs(background, alpha=0.3)) < 0.05, 'darker than darkest'
    assert share(cv2.convertScaleAbs(background, alpha=0.3), darkest=0.25) > 0.9
    # An object: its own texture (another scene), or its own colour (one channel kept).
    assert share(cv2.convertScaleAbs(static_background(seed=7), alpha=0.7)) < 0.1
    tinted = cv2.convertScaleAbs(background, alpha=0.7)
    tinted[..., 2] = background[..., 2]
    assert share(tinted) < 0.05


def cast_shadow(frame, rows, cols, gain=0.7):
    """Darken ``frame[rows, cols]`` by ``gain`` with a soft edge (a penumbra of ~4 px)."""
    shade = np.ones(frame.shape[:2], np.float32)
    shade[rows, cols] = gain
    shade = cv2.GaussianBlur(shade, (9, 9), 2.0)
    return cv2.convertScaleAbs(frame * shade[..., None])


def shadow_scene(rng, darkest):
    """Feed 40 frames of a textured scene; return the mask of one with a shadow and a square."""
    seg = BackgroundSubtractor(config(consensus__shadow_darkest=darkest), 'cpu')
    background = static_background()
    for t in range(40):
        seg.process(noisy(background, rng), t / 30.0, 'cam')
    frame = cast_shadow(noisy(background, rng), slice(20, 60), slice(90, 150))
    frame[60:100, 20:60] = (20, 20, 235)
    return seg, seg.process(frame, 40 / 30.0, 'cam').alpha > 0.5


def test_consensus_shadow_test_drops_cast_shadows():
    """With shadow_darkest the shadow leaves the mask; the object and the model's labels stay."""
    assert config()['bgsub.consensus.shadow_darkest'] == 0.5
    shadow, square = _box(20, 90, 40), _box(60, 20, 40)
    shadow[20:60, 130:150] = True
    _, mask = shadow_scene(np.random.default_rng(8), 0.0)
    assert mask[25:55, 95:145].mean() > 0.95, 'off: a shadow is foreground'
    seg, mask = shadow_scene(np.random.default_rng(8), 0.5)
    assert mask[25:55, 95:145].mean() < 0.05, 'on: the shadow is background'
    assert mask[62:98, 22:58].mean() > 0.95, 'the object stays'
    assert mask[~(shadow | square)].mean() < 0.01
    assert seg._model._last_mask[25:55, 95:145].mean() > 250, \
        'the model still counts the shadow as foreground (not learnt)'


def test_consensus_shadow_test_keeps_narrow_uniform_parts_of_an_object():
    """
    Shadow-like pixels with mostly non-shadow foreground around them stay foreground.

    A grey stripe (the wall's colour, darker) inside a red coat stays, and so does a
    shadow-like patch inside it; the same grey cast as a shadow alone is background.
    """
    wall = np.full((H, W, 3), (120, 130, 140), np.uint8)
    seg = BackgroundSubtractor(config(consensus__shadow_darkest=0.5), 'cpu')
    rng = np.random.default_rng(9)
    for t in range(40):
        seg.process(noisy(wall, rng), t / 30.0, 'cam')
    frame = noisy(wall, rng)
    frame[30:90, 40:100] = (20, 20, 235)  # a red coat ...
    frame[40:80, 68:72] = cv2.convertScaleAbs(wall[40:80, 68:72], alpha=0.7)  # a grey stripe
    mask = seg.process(frame, 40 / 30.0, 'cam').alpha > 0.5
    assert mask[30:90, 40:100].mean() > 0.97
    # A shadow-like patch inside the coat, not touching the background, stays too.
    frame = noisy(wall, rng)
    frame[30:90, 40:100] = (20, 20, 235)
    frame[40:80, 50:90] = cast_shadow(wall, slice(40, 80), slice(50, 90))[40:80, 50:90]
    mask = seg.process(frame, 41 / 30.0, 'cam').alpha > 0.5
    assert mask[30:90, 40:100].mean() > 0.97
    # A soft-edged shadow of the same grey, alone, is background.
    frame = cast_shadow(noisy(wall, rng), slice(40, 80), slice(60, 80))
    assert (seg.process(frame, 42 / 30.0, 'cam').alpha[40:80, 60:80] > 0.5).mean() < 0.05


def check_consensus_knob_refuses(knob, bad_values):
    """Each bad value of ``bgsub.consensus.<knob>`` is refused by the schema and the model."""
    for bad in bad_values:
        with pytest.raises(ParamError):
            validate('bgsub.consensus.' + knob, bad)
        with pytest.raises(ValueError, match=knob):
            SampleConsensus(**{knob: bad})


def test_consensus_shadow_darkest_is_validated():
    check_consensus_knob_refuses('shadow_darkest', (-0.1, 0.96, float('nan')))
    seg = BackgroundSubtractor(config(), 'cpu')
    broken = config()
    broken['bgsub.consensus.shadow_darkest'] = float('nan')
    with pytest.raises(SegmenterError, match='shadow_darkest'):
        seg.configure(broken)
    seg.configure(config(consensus__shadow_darkest=0.6))
    assert seg._model.shadow_darkest == 0.6


def _ring(mask_value=255):
    """Return a 0/255 mask holding a 60×60 square object at (30, 50)."""
    mask = np.zeros((H, W), np.uint8)
    mask[30:90, 50:110] = mask_value
    return mask


def test_filled_holes_fills_small_object_coloured_holes_only():
    """A small enclosed hole coloured like its object is filled; others stay (exact pixels)."""
    frame = np.full((H, W, 3), 100, np.uint8)
    frame[30:90, 50:110] = 130  # the object; its hole below has the background's colour
    mask = _ring()
    mask[55:65, 75:85] = 0  # 100 px hole in a 3500 px object: share 0.029
    colour = 3 * 30.0
    filled = filled_holes(mask, 0.05, frame, colour)
    assert (filled[55:65, 75:85] == 255).all(), 'hole mean 100 vs ring 130: L1 90 <= 90'
    assert np.array_equal(filled[mask == 255], mask[mask == 255])
    assert (filled[mask == 0].sum() // 255) == 100, 'nothing but the hole is filled'
    assert mask[55:65, 75:85].max() == 0, 'the input mask is not written'
    # Too large a share of the object: stays.
    assert np.array_equal(filled_holes(mask, 0.02, frame, colour), mask)
    # Colour unlike the object around it (background seen through it): stays.
    frame[55:65, 75:85] = 40
    assert np.array_equal(filled_holes(mask, 0.05, frame, colour), mask)
    # A gap reaching the edge of the image is no hole, even coloured like the object.
    edge = np.zeros((H, W), np.uint8)
    edge[0:60, 50:110] = 255
    edge[0:10, 75:85] = 0
    same = np.full((H, W, 3), 130, np.uint8)
    assert np.array_equal(filled_holes(edge, 0.05, same, colour), edge)
    # No foreground, or a box without background: the same mask back.
    empty = np.zeros((H, W), np.uint8)
    assert filled_holes(empty, 0.05, same, colour) is empty
    assert np.array_equal(filled_holes(np.full((H, W), 255, np.uint8), 1.0, same, colour),
                          np.full((H, W), 255, np.uint8))


def test_filled_holes_compares_a_hole_with_the_foreground_next_to_it():
    """
    The colour test uses the foreground within HOLE_RING (2) px of the hole, nothing else.

    Around a 10×10 hole (grey 100) the object is 140 at 1 px, 120 at 2 px and 250
    further out: the mean of the two-pixel ring is 129.2 (L1 87.5 <= 90), while one
    pixel (140), three pixels or the whole object would be too bright.  The hole's own
    pixels are not part of the ring: at grey 84 the hole is 135.5 from the ring, and
    would be 66.4 from a ring that counted them.
    """
    frame = np.full((H, W, 3), 100, np.uint8)
    frame[30:90, 50:110] = 250
    frame[53:67, 73:87] = 120
    frame[54:66, 74:86] = 140
    frame[55:65, 75:85] = 100
    mask = _ring()
    mask[55:65, 75:85] = 0
    assert (filled_holes(mask, 0.05, frame, 90.0)[55:65, 75:85] == 255).all()
    frame[55:65, 75:85] = 84
    assert np.array_equal(filled_holes(mask, 0.05, frame, 90.0), mask)


def test_filled_holes_share_ring_pixels_between_nearby_holes():
    """A foreground pixel within HOLE_RING px of two holes counts for both of them."""
    same = np.full((7, 7, 3), 100, np.uint8)
    mask = np.zeros((7, 7), np.uint8)
    mask[1:6, 1:6] = 255
    mask[2, 2] = mask[3, 3] = 0  # two diagonal one-pixel holes: every ring pixel is shared
    assert (filled_holes(mask, 1.0, same, 1.0)[1:6, 1:6] == 255).all()
    # The left hole at a colour edge: its ring is 14 px of 100 and 10 of 200 (mean 141.7,
    # L1 125 > 100), even though the right hole's ring shares the bright pixels.
    frame = np.full((21, 30, 3), 100, np.uint8)
    frame[:, 11:] = 200
    mask = np.zeros((21, 30), np.uint8)
    mask[2:19, 2:28] = 255
    mask[10, 10] = mask[10, 13] = 0
    filled = filled_holes(mask, 1.0, frame, 100.0)
    assert filled[10, 10] == 0 and filled[10, 13] == 255


def _components(selected, steps):
    """Label the True pixels of ``selected`` by breadth-first search (slow, obviously right)."""
    height, width = selected.shape
    labels = np.zeros((height, width), int)
    count = 0
    for start in zip(*np.nonzero(selected)):
        if labels[start]:
            continue
        count += 1
        labels[start] = count
        queue = [start]
        while queue:
            r, c = queue.pop()
            for dr, dc in steps:
                y, x = r + dr, c + dc
                if 0 <= y < height and 0 <= x < width and selected[y, x] and not labels[y, x]:
                    labels[y, x] = count
                    queue.append((y, x))
    return labels, count


def _filled_holes_reference(mask, share, frame, colour):
    """filled_holes written hole by hole from its definition (small masks only)."""
    four = ((-1, 0), (1, 0), (0, -1), (0, 1))
    eight = four + ((-1, -1), (-1, 1), (1, -1), (1, 1))
    foreground = mask > 0
    holes, count = _components(~foreground, four)
    edge = set(holes[0]) | set(holes[-1]) | set(holes[:, 0]) | set(holes[:, -1])
    inner = [k for k in range(1, count + 1) if k not in edge]
    if not 0 < len(inner) <= HOLE_LIMIT:
        return mask
    regions, _ = _components(foreground, eight)
    out = mask.copy()
    for k in inner:
        hole = holes == k
        # The region around the hole: the foreground next to the hole on its outer side
        # (in the component of everything else that holds the image's corner).
        outside, _ = _components(~hole, eight)
        cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
        touching = (cv2.dilate(hole.astype(np.uint8), cross) > 0) & ~hole
        around = set(regions[touching & (outside == outside[0, 0])])
        assert len(around) == 1
        area = np.count_nonzero(regions == around.pop())
        near = cv2.dilate(hole.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        ring = near & foreground
        if not (hole.sum() < share * area and ring.any()):
            continue
        distance = np.abs(frame[hole].mean(axis=0) - frame[ring].mean(axis=0)).sum()
        if distance <= colour:
            out[hole] = 255
    return out


def test_filled_holes_matches_a_hole_by_hole_reference():
    """On random small masks and frames, filled_holes equals a per-hole reference."""
    rng = np.random.default_rng(15)
    for _ in range(150):
        height, width = (int(v) for v in rng.integers(3, 28, 2))
        mask = np.zeros((height, width), np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            y, x = rng.integers(0, height), rng.integers(0, width)
            mask[y:y + rng.integers(3, height + 1), x:x + rng.integers(3, width + 1)] = 255
        flips = rng.random((height, width)) < rng.choice([0.02, 0.1, 0.3])
        mask[flips] ^= 255
        frame = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
        if rng.random() < 0.5:  # a near-uniform frame: colours within the test
            frame = rng.integers(100, 120, (height, width, 3)).astype(np.uint8)
        share = float(rng.choice([0.05, 0.3, 1.0]))
        colour = float(rng.choice([30.0, 90.0, 400.0]))
        before = mask.copy()
        got = filled_holes(mask, share, frame, colour)
        assert np.array_equal(mask, before), 'the input mask is not written'
        assert np.array_equal(got, _filled_holes_reference(mask, share, frame, colour))


def test_filled_holes_leaves_a_noise_mask_alone():
    """A mask with more than HOLE_LIMIT holes (the vote off, noise) is returned unchanged."""
    frame = np.full((H, W, 3), 130, np.uint8)
    mask = np.full((H, W), 255, np.uint8)
    mask[1:-1:3, 1:-1:3] = 0  # one-pixel holes
    holes = int(np.count_nonzero(mask == 0))
    assert holes > HOLE_LIMIT
    assert filled_holes(mask, 1.0, frame, 90.0) is mask
    few = np.full((H, W), 255, np.uint8)
    few[1:-1:3, 1:-1:3][:10, :10] = 0  # 100 holes: filled
    assert (filled_holes(few, 1.0, frame, 90.0) == 255).all()


def test_filled_holes_measures_a_hole_against_the_region_around_it():
    """An island inside a hole does not make the hole small: the enclosing region counts."""
    frame = np.full((H, W, 3), 130, np.uint8)
    mask = np.zeros((H, W), np.uint8)
    mask[20:100, 20:140] = 255  # outer region
    mask[40:80, 50:110] = 0  # 2400 px hole ...
    mask[58:62, 78:82] = 255  # ... with a 16 px island
    filled = filled_holes(mask, 0.5, frame, 90.0)
    assert (filled[40:80, 50:110] == 255).all(), 'hole 2384 px < 0.5 x outer 7200 px'
    assert np.array_equal(filled_holes(mask, 0.3, frame, 90.0), mask), '2384 > 0.3 x 7200'


def test_consensus_fills_a_camouflaged_hole_in_a_still_object():
    """
    In the segmenter, a part of an object that matches the background is filled.

    A uniform grey wall; an object 30 grey levels brighter per channel (L1 90 > the
    threshold) with a 12×12 patch of the wall's own colour: the patch matches the model
    and outlasts the 9×9 vote; with ``hole_share`` it is foreground, without it is not.
    """
    wall = np.full((H, W, 3), 100, np.uint8)
    results = {}
    for share in (0.0, 0.05):
        seg = BackgroundSubtractor(config(consensus__hole_share=share), 'cpu')
        rng = np.random.default_rng(3)
        for t in range(30):
            seg.process(noisy(wall, rng), t / 30.0, 'cam')
        frame = noisy(wall, rng)
        frame[30:90, 50:110] = 130
        frame[54:66, 74:86] = 100
        results[share] = seg.process(frame, 1.0, 'cam').alpha > 0.5
    assert results[0.0][56:64, 76:84].mean() < 0.05, 'without filling the patch is a hole'
    assert results[0.05][54:66, 74:86].all(), 'with filling the patch is foreground'
    outside = np.ones((H, W), bool)
    outside[30:90, 50:110] = False
    assert results[0.05][outside].mean() < 0.01


def test_consensus_hole_share_is_validated():
    assert config()['bgsub.consensus.hole_share'] == 0.05
    check_consensus_knob_refuses('hole_share', (-0.01, 1.01, float('nan')))
    seg = BackgroundSubtractor(config(), 'cpu')
    seg.configure(config(consensus__hole_share=0.0))
    assert seg._model.hole_share == 0.0


def test_consensus_memory_is_proportional_to_the_model():
    """Set-up and a frame allocate at most bytes_per_pixel per pixel (no int64 indices)."""
    import tracemalloc
    height, width, samples = 480, 640, 10
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(3)]
    model = SampleConsensus(samples=samples)
    tracemalloc.start()
    try:
        for i, frame in enumerate(frames):
            model.apply(frame, i / 30.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    budget = SampleConsensus.bytes_per_pixel(samples) * height * width
    assert model._model.nbytes == samples * 3 * height * width
    assert model._model.nbytes < peak <= budget


# -- matte-ros process ----------------------------------------------------------------


def test_process_writes_the_background_images(tmp_path):
    from matte_ros.cli.main import main as cli
    frames = tmp_path / 'in'
    frames.mkdir()
    rng = np.random.default_rng(1)
    for t in range(5):
        frame, _ = frame_at(static_background(), t, rng)
        cv2.imwrite(str(frames / ('f%02d.png' % t)), frame)
    out = tmp_path / 'out'
    assert cli(['process', '--input', str(frames), '--output', str(out), '--quiet',
                '--segmenter', 'bgsub', '--fps', '15']) == 0
    written = sorted(os.listdir(out / 'background'))
    assert written == ['f%02d.png' % t for t in range(5)]
    background = cv2.imread(str(out / 'background' / 'f04.png'))
    assert background.shape == (H, W, 3)
    assert np.median(np.abs(background.astype(int) - static_background().astype(int))) <= 3
    # A segmenter without a background model writes none; a bad --fps is refused.
    other = tmp_path / 'other'
    assert cli(['process', '--input', str(frames), '--output', str(other), '--quiet',
                '--segmenter', 'framediff']) == 0
    assert not (other / 'background').exists()
    assert cli(['process', '--input', str(frames), '--output', str(other), '--quiet',
                '--fps', '0']) == 2

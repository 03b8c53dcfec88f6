"""
Segmenter rvm: parity with a plain ONNX Runtime loop, the recurrent state, its resets.

Runs the real RVM model from ../shared/models (given through models.model_path, whose
checksum the product verifies) on DAVIS frames; skips when either is absent.
"""

import glob
import os

import cv2
from matte_ros import models
from matte_ros import onnx_runtime
from matte_ros import params
from matte_ros.segmenters import create
from matte_ros.segmenters import SegmenterError
from matte_ros.segmenters.rvm import auto_downsample_ratio
from matte_ros.segmenters.rvm import RecurrentState
from matte_ros.segmenters.rvm import RobustVideoMatting
from matte_ros.segmenters.rvm import zoomed
from matte_ros.segmenters.rvm_model import reference_loop
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, '..', 'shared')
RVM_FILE = os.path.join(SHARED, 'models', 'rvm_mobilenetv3_fp32.onnx')
FRAMES = os.path.join(SHARED, 'data', 'davis2016', 'JPEGImages', '480p', 'parkour')
SMALL = (320, 180)  # (width, height): long side ≤ 512, so downsample ratio 1, fast


def need(path):
    """Skip the test when a shared file or directory is absent."""
    if not os.path.exists(path):
        pytest.skip('%s absent (tests read ../shared beside the repo)' % path)


@pytest.fixture(scope='module')
def frames():
    """Return the first six DAVIS parkour images: BGR, 854×480."""
    need(FRAMES)
    return [cv2.imread(f) for f in sorted(glob.glob(os.path.join(FRAMES, '*.jpg')))[:6]]


@pytest.fixture(scope='module')
def small(frames):
    """Return the same frames at 320×180."""
    return [cv2.resize(f, SMALL, interpolation=cv2.INTER_AREA) for f in frames]


def rvm_config(**extra):
    """Return a full config that runs RVM from the shared reference file."""
    need(RVM_FILE)
    cfg = params.defaults()
    cfg['models.model_path'] = RVM_FILE
    cfg.update(extra)
    return cfg


@pytest.fixture
def rvm():
    """Return a fresh rvm segmenter (CPU)."""
    seg = create('rvm', rvm_config(), 'cpu')
    yield seg
    seg.close()


def plain_loop(frames, ratio):
    """Return alphas from RVM's documented loop (rvm_model.reference_loop)."""
    alpha = reference_loop(RVM_FILE, ratio)
    return [alpha(frame) for frame in frames]


def test_automatic_downsample_ratio_follows_rvm_advice():
    assert auto_downsample_ratio(1080, 1920) == pytest.approx(0.25)
    assert auto_downsample_ratio(720, 1280) == pytest.approx(0.375)
    assert auto_downsample_ratio(512, 512) == 1.0
    assert auto_downsample_ratio(240, 320) == 1.0
    for height, width in ((480, 854), (1080, 1920), (2160, 3840), (600, 513)):
        long_side = max(height, width) * auto_downsample_ratio(height, width)
        assert 256 <= long_side <= 512


def test_recurrent_state_starts_as_zeros():
    state = RecurrentState.zeros()
    feed = state.feed()
    assert sorted(feed) == ['r1i', 'r2i', 'r3i', 'r4i']
    assert all(v.shape == (1, 1, 1, 1) and not v.any() for v in feed.values())
    assert state.frames == 0


def test_matches_a_plain_onnxruntime_loop(frames):
    """Without settling (rvm.settle_frames 0) every matte is the plain loop's."""
    rvm = create('rvm', rvm_config(**{'rvm.settle_frames': 0}), 'cpu')
    try:
        ratio = auto_downsample_ratio(*frames[0].shape[:2])
        expected = plain_loop(frames, ratio)
        for i, (frame, alpha) in enumerate(zip(frames, expected)):
            matte = rvm.process(frame, stamp=i / 25.0, frame_id='cam')
            assert matte.alpha.dtype == np.float32 and matte.alpha.shape == frame.shape[:2]
            assert np.abs(matte.alpha - alpha).max() <= 1e-3
            assert matte.foreground is None   # not published: fgr is not converted
        assert rvm.state.frames == len(frames)
        assert rvm.state.r1.shape[1] == 16  # real state from the model, not the zeros
    finally:
        rvm.close()


def test_the_state_is_used_and_reset_reproduces_the_first_frame(small, rvm):
    first = rvm.process(small[0]).alpha
    for frame in small[1:-1]:
        rvm.process(frame)
    carried = rvm.process(small[-1]).alpha
    rvm.reset()
    assert rvm.state.frames == 0
    fresh = rvm.process(small[-1]).alpha
    assert np.abs(carried - fresh).max() > 0.01, 'the carried state changed nothing'
    rvm.reset('again')
    assert np.array_equal(rvm.process(small[0]).alpha, first)
    assert rvm.last_reset_reason == 'again'


def test_settling_without_zoom_runs_the_first_frame_again(small):
    """rvm.settle_frames 2, settle_zoom 0: the published first matte is a plain loop's third."""
    seg = create('rvm', rvm_config(**{'rvm.settle_frames': 2, 'rvm.settle_zoom': 0.0}), 'cpu')
    try:
        ratio = auto_downsample_ratio(*small[0].shape[:2])
        expected = plain_loop([small[0]] * 3 + [small[1]], ratio)
        first = seg.process(small[0]).alpha
        assert seg.state.frames == 3
        assert np.abs(first - expected[2]).max() <= 1e-3
        second = seg.process(small[1]).alpha          # not a fresh state: no settling
        assert seg.state.frames == 4
        assert np.abs(second - expected[3]).max() <= 1e-3
        seg.reset('~/reset service')
        again = seg.process(small[0]).alpha            # settles again after the reset
        assert seg.state.frames == 3 and np.abs(again - expected[2]).max() <= 1e-3
    finally:
        seg.close()


def count_runs(seg):
    """Count the inferences of ``seg`` (its real runner's ``run``, called through)."""
    calls = []
    real = seg.runner.run

    def run(src, state, ratio, want_foreground):
        calls.append(src.shape)
        return real(src, state, ratio, want_foreground)

    seg.runner.run = run
    return calls


def test_zoom_settling_runs_the_documented_inferences_on_zoomed_copies(small):
    """
    Settle 3, zoom 0.03: three extra inferences per reset, on the frame scaled 1.09, 1.06, 1.03.

    The published matte is a plain loop's fourth over those copies and the frame; the
    state it leaves is not the fresh one; later frames run once each; a reset clears
    what came before (the next first frame gives exactly the first matte again).
    """
    seg = create('rvm', rvm_config(**{'rvm.settle_frames': 3, 'rvm.settle_zoom': 0.03}), 'cpu')
    try:
        calls = count_runs(seg)
        ratio = auto_downsample_ratio(*small[0].shape[:2])
        copies = [zoomed(small[0], scale) for scale in (1.09, 1.06, 1.03)]
        assert not np.array_equal(copies[0], small[0])
        expected = plain_loop(copies + [small[0], small[1]], ratio)
        first = seg.process(small[0]).alpha
        assert len(calls) == 4 and seg.state.frames == 4
        assert all(shape == (1, 3) + small[0].shape[:2] for shape in calls)  # its own size
        assert np.abs(first - expected[3]).max() <= 1e-3
        unsettled = plain_loop([small[0]], ratio)[0]
        assert np.abs(first - unsettled).max() > 0.01, 'settling changed nothing'
        second = seg.process(small[1]).alpha
        assert len(calls) == 5 and np.abs(second - expected[4]).max() <= 1e-3
        for frame in small[2:]:
            seg.process(frame)
        assert len(calls) == 5 + len(small) - 2
        seg.reset('~/reset service')
        assert seg.state.frames == 0
        again = seg.process(small[0]).alpha
        assert len(calls) == 5 + len(small) - 2 + 4
        assert np.array_equal(again, first), 'the state before the reset leaked through'
    finally:
        seg.close()


def test_zoomed_keeps_the_size_and_scales_about_the_centre():
    frame = np.zeros((40, 60, 3), np.uint8)
    frame[16:24, 26:34] = 200                          # an 8×8 square at the centre
    out = zoomed(frame, 1.5)
    assert out.shape == frame.shape and out.dtype == np.uint8
    mass = out[:, :, 0].astype(np.float64)
    assert mass.sum() / frame[:, :, 0].sum() == pytest.approx(1.5 ** 2, rel=0.05)
    rows, cols = np.indices(mass.shape)
    assert (rows * mass).sum() / mass.sum() == pytest.approx(19.5, abs=0.05)
    assert (cols * mass).sum() / mass.sum() == pytest.approx(29.5, abs=0.05)
    assert np.array_equal(zoomed(frame, 1.0), frame)


@pytest.mark.parametrize('name, value', [('rvm.settle_frames', 9), ('rvm.settle_frames', -1),
                                         ('rvm.settle_zoom', 0.5), ('rvm.settle_zoom', -0.01),
                                         ('rvm.settle_zoom', float('nan'))])
def test_settle_values_out_of_range_are_refused(name, value):
    with pytest.raises(params.ParamError):
        params.validate(name, value)


#: Extra inferences a fresh state runs first (the default rvm.settle_frames).
SETTLE = params.defaults()['rvm.settle_frames']


def fresh_alpha(frame):
    """Return the alpha a brand-new rvm segmenter gives for ``frame`` (fresh state, settled)."""
    seg = create('rvm', rvm_config(), 'cpu')
    return seg.process(frame).alpha


@pytest.mark.parametrize('trigger, reason', [
    ('resolution', 'resolution changed'),
    ('frame_id', 'frame_id changed'),
    ('backwards', 'stamp went backwards'),
    ('gap', 'stamp jumped'),
])
def test_every_discontinuity_resets_the_state(small, trigger, reason):
    seg = create('rvm', rvm_config(**{'rvm.max_gap': 0.5}), 'cpu')
    for i, frame in enumerate(small[:3]):
        seg.process(frame, stamp=10.0 + i * 0.1, frame_id='cam')
    assert seg.resets == 0 and seg.state.frames == 3 + SETTLE
    frame, stamp, frame_id = small[3], 10.3, 'cam'
    if trigger == 'resolution':
        frame = cv2.resize(frame, (SMALL[0] // 2, SMALL[1] // 2))
    elif trigger == 'frame_id':
        frame_id = 'other_cam'
    elif trigger == 'backwards':
        stamp = 9.0
    else:
        stamp = 10.2 + 0.6
    alpha = seg.process(frame, stamp=stamp, frame_id=frame_id).alpha
    assert seg.resets == 1 and seg.last_reset_reason.startswith(reason)
    assert seg.state.frames == 1 + SETTLE
    assert np.array_equal(alpha, fresh_alpha(frame))


def test_small_gaps_keep_the_state(small):
    seg = create('rvm', rvm_config(**{'rvm.max_gap': 0.5}), 'cpu')
    assert seg.continuity.max_gap == 0.5
    for i, frame in enumerate(small[:3]):
        seg.process(frame, stamp=i * 0.45, frame_id='cam')
    assert seg.resets == 0 and seg.state.frames == 3 + SETTLE
    seg.configure(rvm_config(**{'rvm.max_gap': 2.0}))
    assert seg.continuity.max_gap == 2.0


def test_changing_the_downsample_ratio_resets(small, rvm):
    rvm.process(small[0])
    rvm.process(small[1])
    rvm.configure(rvm_config(**{'rvm.downsample_ratio': 0.5}))
    rvm.process(small[2])
    assert rvm.resets == 1 and rvm.last_reset_reason == 'downsample ratio changed'
    assert rvm.ratio == 0.5 and rvm.state.frames == 1 + SETTLE


def test_a_wrong_model_file_is_refused(tmp_path):
    other = os.path.join(SHARED, 'models', 'selfie_segmentation.tflite')
    need(other)
    with pytest.raises(models.ModelError, match='it is model selfie_general'):
        create('rvm', rvm_config(**{'models.model_path': other}), 'cpu')


def test_missing_model_without_auto_fetch_fails_with_a_clear_error(tmp_path):
    cfg = params.defaults()
    cfg.update({'models.model_dir': str(tmp_path), 'models.auto_fetch': False})
    with pytest.raises(SegmenterError, match='rvm_mobilenetv3_fp32 is missing in %s'
                       % tmp_path):
        create('rvm', cfg, 'cpu')


def test_missing_gpu_provider_falls_back_or_fails_when_strict():
    seg = create('rvm', rvm_config(), 'cuda')
    info = seg.runner.session_info
    if 'CUDAExecutionProvider' in info.providers:
        pytest.skip('this machine has CUDA')
    assert info.providers == ['CPUExecutionProvider']
    assert 'CUDAExecutionProvider' in info.missing
    assert seg.backend == 'cpu' and 'CUDAExecutionProvider' in seg.status().note
    with pytest.raises(SegmenterError, match='CUDAExecutionProvider'):
        create('rvm', rvm_config(backend_strict=True), 'cuda')


def test_io_binding_path_gives_the_same_mattes(small):
    """The I/O-binding path (used on CUDA/TensorRT, forced here on the CPU) is exact."""
    reference = create('rvm', rvm_config(publish_foreground=True), 'cpu')
    bound = RobustVideoMatting(rvm_config(publish_foreground=True), 'cpu', io_binding=True)
    assert bound.runner.device == 'cpu' and not hasattr(reference.runner, 'device')
    for frame in small[:3]:
        expected = reference.process(frame)
        got = bound.process(frame)
        np.testing.assert_array_equal(got.alpha, expected.alpha)
        assert expected.foreground.dtype == np.uint8 and expected.foreground.shape == frame.shape
        np.testing.assert_array_equal(got.foreground, expected.foreground)
    assert not isinstance(bound.state.r1, np.ndarray)  # an OrtValue, kept by ORT
    assert bound.state.r1.shape() == list(reference.state.r1.shape)
    reference.close()
    bound.reset()
    np.testing.assert_array_equal(bound.process(small[0]).alpha, fresh_alpha(small[0]))


def test_backends_map_to_providers_with_cpu_fallback():
    cpu_only = ['CPUExecutionProvider']
    gpu = ['TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider']
    assert onnx_runtime.choose_providers('tensorrt', gpu) == (gpu, [])
    use, missing = onnx_runtime.choose_providers('tensorrt', cpu_only)
    assert use == cpu_only
    assert missing == ['TensorrtExecutionProvider', 'CUDAExecutionProvider']
    assert onnx_runtime.choose_providers('auto', cpu_only) == (cpu_only, [])
    assert onnx_runtime.choose_providers('cuda', gpu)[0] == gpu[1:]
    with pytest.raises(SegmenterError, match='TensorrtExecutionProvider'):
        onnx_runtime.choose_providers('tensorrt', cpu_only, strict=True)
    with pytest.raises(SegmenterError, match='unknown backend'):
        onnx_runtime.choose_providers('opencl', cpu_only)
    listed = onnx_runtime.provider_list(gpu, cache_dir='/tmp/engines')
    assert listed[0][0] == 'TensorrtExecutionProvider'
    assert listed[0][1]['trt_engine_cache_path'] == '/tmp/engines'
    assert listed[1:] == gpu[1:]

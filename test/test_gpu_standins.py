"""
The robot's first run, rehearsed with faithful stand-ins (test/standins.py).

ONNX Runtime here is the real CPU build made to *list* TensorRT and CUDA: its real
InferenceSession then drops them, as a GPU build with missing libraries does.  VPI is a
module with VPI 3's documented Python signatures whose algorithms are OpenCV's.  What
these tests check is what the robot's user sees: the backend in use, the reasons in
logs and diagnostics, ``backend_strict``, frames still served, TensorRT engine builds
visible, and bgsub / the blur on VPI agreeing with OpenCV.  RVM tests read
../shared/models and skip without it.
"""

import logging
import os
import sys
import threading

import cv2
from matte_ros import backends
from matte_ros import compositing
from matte_ros import onnx_runtime
from matte_ros import params
from matte_ros import vpi_ops
from matte_ros.pipeline import Pipeline
from matte_ros.segmenters import create
from matte_ros.segmenters import rvm_runner
from matte_ros.segmenters import rvm_tensorrt
from matte_ros.segmenters import SegmenterError
from matte_ros.segmenters.bgsub import BackgroundSubtractor
import numpy as np
import pytest

from conftest import davis_frames  # noqa: I100 (test helpers, not packages)
from conftest import shared_path  # noqa: I100
import standins  # noqa: I100

FAILURES = ['missing-libraries', 'ep-error']


@pytest.fixture(autouse=True)
def user_cache(monkeypatch, tmp_path):
    """Make tmp_path the user cache: engines go to tmp_path/matte_ros/engines."""
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))


def rvm_values(tmp_path, **extra):
    """Return parameter values that run rvm from the shared model file."""
    values = params.defaults()
    values.update({'segmenter': 'rvm', 'composite.mode': 'none',
                   'models.model_path': shared_path('models', 'rvm_mobilenetv3_fp32.onnx'),
                   'models.model_dir': str(tmp_path), 'tensorrt.engine_cache':
                   str(tmp_path / 'matte_ros' / 'engines')})
    values.update(extra)
    return values


def frames(count=3, size=(320, 180)):
    """Return DAVIS parkour frames at ``size`` (skips without ../shared)."""
    return davis_frames('parkour', count, size)


def reference(values, count=3, size=(320, 180), video=None):
    """Return the CPU segmenter's alphas over the frames (state carried)."""
    seg = create('rvm', dict(values, backend='cpu'), 'cpu')
    try:
        return [seg.process(f).alpha for f in (video or frames(count, size))]
    finally:
        seg.close()


# --- bug 1: the backend in use is what the session reports --------------------------------

@pytest.mark.parametrize('failure', FAILURES)
def test_a_listed_cuda_that_does_not_start_is_reported_as_cpu(monkeypatch, tmp_path,
                                                              caplog, failure):
    standins.claim_gpu_providers(monkeypatch, failure)
    import onnxruntime
    assert 'CUDAExecutionProvider' in onnxruntime.get_available_providers()
    with caplog.at_level(logging.WARNING, logger='matte_ros.onnx_runtime'):
        seg = create('rvm', rvm_values(tmp_path), 'cuda')
    try:
        assert seg.backend == 'cpu'
        note = seg.status().note
        assert 'CUDAExecutionProvider listed but failed to start' in note
        assert note.endswith('running on cpu')
        assert any('CUDAExecutionProvider' in r.getMessage() for r in caplog.records)
        assert seg.process(frames(1)[0]).alpha.shape == (180, 320)
    finally:
        seg.close()


# --- bugs 1 and 2: TensorRT listed but dropped: frames served, on the CPU ----------------

@pytest.mark.parametrize('failure', FAILURES)
def test_tensorrt_listed_but_dropped_serves_frames_on_cpu(monkeypatch, tmp_path, failure):
    values = rvm_values(tmp_path)
    expected = reference(values, video=frames(3) + frames(3))
    standins.claim_gpu_providers(monkeypatch, failure)
    seg = create('rvm', values, 'tensorrt')
    try:
        got = [seg.process(f).alpha for f in frames(3)]
        seg.runner.wait(120)
        got += [seg.process(f).alpha for f in frames(3)]
        assert seg.backend == 'cpu'
        assert 'TensorrtExecutionProvider' in seg.status().note
        assert 'running on cpu' in seg.status().note
        assert seg.status().busy == ''
        # served meanwhile and after by the same CUDA-else-CPU session: one stream
        assert seg.resets == 0
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, atol=1e-5)
    finally:
        seg.close()


# --- bug 3: diagnostics read the live backend after a first-frame fallback ----------------

@pytest.mark.parametrize('failure', FAILURES)
def test_pipeline_status_follows_a_fallback_after_configure(monkeypatch, tmp_path, failure):
    standins.claim_gpu_providers(monkeypatch, failure)
    # The configure-time probe passed (a tiny session ran on TensorRT); RVM's own engine
    # then fails at the first frame (here: dropped as the libraries are missing).
    monkeypatch.setattr(backends, 'probe', lambda: backends.Probe(
        {'cpu': (True, ''), 'ort_tensorrt': (True, 'stand-in: a tiny session ran'),
         'ort_cuda': (True, 'stand-in')}))
    pipeline = Pipeline(rvm_values(tmp_path, backend='tensorrt'))
    assert pipeline.backend == 'tensorrt' and pipeline.status().note == ''
    try:
        for frame in frames(2):
            pipeline.process(frame)
        pipeline.segmenter.runner.wait(120)
        for frame in frames(2):
            pipeline.process(frame)
        status = pipeline.status()
        assert pipeline.backend == status.backend == 'cpu'
        assert 'TensorrtExecutionProvider' in status.note
    finally:
        pipeline.close()


# --- bug 4: backend_strict refuses configure when the provider is not active --------------

@pytest.mark.parametrize('failure', FAILURES)
def test_strict_refuses_a_listed_provider_that_does_not_start(monkeypatch, tmp_path, failure):
    standins.claim_gpu_providers(monkeypatch, failure)
    for backend, provider in (('tensorrt', 'TensorrtExecutionProvider'),
                              ('cuda', 'CUDAExecutionProvider')):
        with pytest.raises((SegmenterError, backends.BackendError), match=provider):
            Pipeline(rvm_values(tmp_path, backend=backend, backend_strict=True))
    with pytest.raises(SegmenterError, match='not active in the session'):
        onnx_runtime.create_session(shared_path('models', 'rvm_mobilenetv3_fp32.onnx'),
                                    'cuda', strict=True)


# --- bug 6: auto, the probe and doctor say what works -------------------------------------

def test_the_probe_counts_a_provider_only_when_a_session_runs_on_it(monkeypatch):
    standins.claim_gpu_providers(monkeypatch)
    found = backends.probe()
    assert not found.has('ort_cuda') and not found.has('ort_tensorrt')
    assert 'test session dropped it' in found.detail('ort_cuda')
    assert 'CUDAExecutionProvider' in found.detail('onnxruntime')  # listed all the same
    assert backends.choose('rvm', 'auto', found=found).backend == 'cpu'
    from matte_ros.cli import doctor_cmd
    rows = dict(dict(doctor_cmd.collect(probe=found))['accelerators'])
    assert rows['onnxruntime CUDA'].startswith('no - listed, but a test session dropped')
    assert rows['onnxruntime TensorRT'].startswith('no - listed, but a test session dropped')


def test_auto_never_picks_tensorrt():
    every = backends.Probe({key: (True, 'stand-in') for key in
                            ('cpu', 'ort_cuda', 'ort_tensorrt', 'torch_cuda', 'vpi', 'vpi_cuda')})
    assert backends.choose('rvm', 'auto', found=every).backend == 'cuda'
    assert backends.choose('rvm', 'tensorrt', found=every).backend == 'tensorrt'


def test_the_ratio_is_bound_on_the_host_even_when_the_state_is_on_the_device(tmp_path):
    from matte_ros.segmenters.rvm_onnxruntime import BoundOrtRunner
    model = rvm_runner.ModelFile(shared_path('models', 'rvm_mobilenetv3_fp32.onnx'), '')
    runner = BoundOrtRunner(model, 'cpu', rvm_runner.Options(), device='cuda')
    value = runner._ratio_value_for(0.5)
    assert value.device_name().lower() == 'cpu'
    assert runner._ratio_value_for(0.5) is value  # made once per ratio
    assert runner._ratio_value_for(0.25) is not value
    runner.close()


# --- TensorRT that works: engine per shape, builds visible, frames served meanwhile -------

class WorkingTensorrt:
    """
    Stand-in for a GPU build whose TensorRT starts.

    The real CPU session computes, and ``get_providers()`` answers what was asked for.
    ``gate`` holds TensorRT sessions' creation (an engine build that takes a while);
    ``created`` records their options.
    """

    def __init__(self, monkeypatch):
        import onnxruntime
        standins.claim_gpu_providers(monkeypatch)
        real = onnxruntime.InferenceSession
        self.gate = threading.Event()
        self.gate.set()
        self.created = []
        stand_in = self

        class Session(real):

            def __init__(self, path, sess_options=None, providers=None, **kwargs):
                names = [p[0] if isinstance(p, tuple) else p for p in providers or []]
                self._claimed = None
                if standins.TENSORRT in names:
                    given = providers[names.index(standins.TENSORRT)]
                    options = dict(given[1]) if isinstance(given, tuple) else {}
                    stand_in.created.append((path, options))
                    stand_in.gate.wait(60)
                    self._claimed = names
                super().__init__(path, sess_options=sess_options,
                                 providers=['CPUExecutionProvider'], **kwargs)

            def get_providers(self):
                return list(self._claimed) if self._claimed else super().get_providers()

        monkeypatch.setattr(onnxruntime, 'InferenceSession', Session)


def tensorrt_segmenter(values):
    """
    Return rvm on tensorrt whose engine's state is bound on the CPU.

    The stand-in computes there; on a robot the device is read from the session (cuda).
    """
    seg = create('rvm', values, 'tensorrt')
    seg.runner.close()
    seg.runner = rvm_tensorrt.TensorrtRunner(seg.runner.model, 'tensorrt',
                                             seg.runner.options, device='cpu')
    return seg


def test_engines_are_cached_per_shape_and_ratio(monkeypatch, tmp_path):
    trt = WorkingTensorrt(monkeypatch)
    values = rvm_values(tmp_path, **{'tensorrt.fp16': False})
    seg = tensorrt_segmenter(values)
    try:
        for size in ((320, 180), (640, 360), (320, 180)):
            frame = frames(1, size)[0]
            seg.process(frame)
            seg.runner.wait(120)
            seg.process(frame)
            assert seg.backend == 'tensorrt' and seg.status().note == ''
        created = [c for c in trt.created if isinstance(c[0], str)]  # not the probe's
        (small_path, small), (big_path, big) = created[:2]
        assert len(created) == 3  # the third is the first size again (a new engine)
        engines = str(tmp_path / 'matte_ros' / 'engines')
        assert os.path.dirname(small_path) == small['trt_engine_cache_path'] == \
            os.path.join(engines, '320x180')
        assert os.path.dirname(big_path) == big['trt_engine_cache_path'] == \
            os.path.join(engines, '640x360')
        assert small_path.endswith('ratio-1.000000.onnx')
        assert big_path.endswith('ratio-0.750000.onnx')
        assert small['trt_profile_min_shapes'].startswith('src:1x3x180x320,')
        assert big['trt_profile_opt_shapes'].startswith('src:1x3x360x640,')
        assert small['trt_fp16_enable'] is False
        assert 'fixed ratio 1.000000 at 320x180' in seg.describe()
    finally:
        seg.close()


def test_an_engine_build_is_visible_and_frames_are_served_meanwhile(monkeypatch, tmp_path):
    values = rvm_values(tmp_path)
    expected = reference(values, count=4)
    trt = WorkingTensorrt(monkeypatch)
    trt.gate.clear()  # the engine build will wait
    pipeline = Pipeline(dict(values, backend='tensorrt'))
    pipeline.segmenter.runner.close()
    pipeline.segmenter.runner = rvm_tensorrt.TensorrtRunner(
        pipeline.segmenter.runner.model, 'tensorrt', pipeline.segmenter.runner.options,
        device='cpu')
    try:
        video = frames(4)
        served = [pipeline.process(f) for f in video[:2]]
        status = pipeline.status()
        assert status.busy.startswith('building TensorRT engine for 320x180 (')
        assert status.busy.endswith(' s)')
        assert status.backend == 'cpu'  # the interim session (CUDA on a robot)
        assert 'while the TensorRT engine is built' in status.note
        for result, alpha in zip(served, expected):  # served on the interim session
            diff = np.abs(result.alpha.astype(np.int16) - compositing.to_mono8(alpha))
            assert diff.max() <= 1 and result.mask.shape == (180, 320)
        trt.gate.set()
        assert pipeline.segmenter.runner.wait(120)
        resets = pipeline.segmenter.resets
        pipeline.process(video[0])
        assert pipeline.segmenter.resets == resets + 1
        assert pipeline.segmenter.last_reset_reason == 'TensorRT engine changed'
        assert pipeline.status() == pipeline.segmenter.status()
        assert pipeline.backend == 'tensorrt' and pipeline.status().busy == ''
    finally:
        pipeline.close()


def test_the_interim_frames_match_the_cpu_reference(monkeypatch, tmp_path):
    values = rvm_values(tmp_path)
    expected = reference(values, count=3)
    trt = WorkingTensorrt(monkeypatch)
    trt.gate.clear()
    seg = tensorrt_segmenter(values)
    try:
        got = [seg.process(f).alpha for f in frames(3)]
        assert seg.status().busy
        # the ratio is the fixed-ratio tag's (1.000000 here): the same as the reference
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, atol=1e-5)
    finally:
        trt.gate.set()
        seg.close()


def test_strict_tensorrt_whose_build_fails_refuses_every_frame(monkeypatch, tmp_path):
    standins.claim_gpu_providers(monkeypatch)
    # the configure-time probe is what refuses first; here the runner is built directly
    model = rvm_runner.ModelFile(shared_path('models', 'rvm_mobilenetv3_fp32.onnx'), '')
    engines = str(tmp_path / 'matte_ros' / 'engines')
    runner = rvm_tensorrt.TensorrtRunner(
        model, 'tensorrt', rvm_runner.Options(strict=True, engine_cache=engines))
    runner.prepare(180, 320, 1.0)
    assert runner.wait(120)
    for _ in range(2):
        with pytest.raises(SegmenterError, match='TensorrtExecutionProvider.*backend_strict'):
            runner.prepare(180, 320, 1.0)
    runner.close()


# --- VPI: bgsub and the blur end to end on VPI's API ---------------------------------------

def bgsub_values(**extra):
    """Return bgsub parameter values (mog2: the algorithm VPI implements)."""
    values = params.defaults()
    values.update({'bgsub.algorithm': 'mog2'})
    values.update(extra)
    return values


def moving_square(count=12, size=(96, 64)):
    """Return frames of a static textured scene with a bright square moving across."""
    rng = np.random.default_rng(3)
    width, height = size
    scene = rng.integers(40, 120, (height, width, 3)).astype(np.uint8)
    scene = cv2.GaussianBlur(scene, (5, 5), 0)
    out = []
    for i in range(count):
        frame = scene.copy()
        if i >= count // 2:
            x = 10 + 4 * (i - count // 2)
            frame[20:40, x:x + 20] = 230
        out.append(frame)
    return out


@pytest.mark.parametrize('shadows', [True, False])
def test_bgsub_on_vpi_equals_opencv_mog2(monkeypatch, shadows):
    vpi = standins.fake_vpi()
    monkeypatch.setitem(sys.modules, 'vpi', vpi)
    values = bgsub_values(**{'bgsub.detect_shadows': shadows,
                             'bgsub.variance_threshold': 20.0})
    gpu = create('bgsub', values, 'vpi')
    cpu = create('bgsub', values, 'cpu')
    assert gpu.backend == 'vpi' and gpu.warning == ''
    video = moving_square()
    for frame in video:
        a, b = gpu.process(frame), cpu.process(frame)
        np.testing.assert_array_equal(a.alpha, b.alpha)
        np.testing.assert_array_equal(a.background, b.background)
    assert a.alpha.sum() > 100  # the square is foreground
    assert ('BackgroundSubtractor', 'CUDA') in vpi.record
    assert all(backend == 'CUDA' for _, backend in vpi.record)


def test_bgsub_on_vpi_through_the_pipeline_with_the_vpi_blur(monkeypatch):
    vpi = standins.fake_vpi()
    monkeypatch.setitem(sys.modules, 'vpi', vpi)
    monkeypatch.setattr(backends, 'probe', lambda: backends.Probe(
        {'cpu': (True, ''), 'vpi': (True, 'stand-in'), 'vpi_cuda': (True, 'stand-in')}))
    values = bgsub_values(backend='vpi', **{'composite.mode': 'blur',
                                            'composite.blur_kernel': 41})
    gpu = Pipeline(values)
    cpu = Pipeline(dict(values, backend='cpu'))
    assert gpu.backend == 'vpi' and gpu.compositor._blur is vpi_ops.blur_background
    for frame in moving_square():
        a, b = gpu.process(frame), cpu.process(frame)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert gpu.compositor.blur_error == ''
    diff = np.abs(a.composite.astype(np.int16) - b.composite.astype(np.int16))
    assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 3
    assert ('gaussian_filter', 'CUDA') in vpi.record and ('rescale', 'CUDA') in vpi.record


@pytest.mark.parametrize('kernel', [3, 9, 41, 255])
def test_vpi_blur_equals_opencv(monkeypatch, kernel):
    vpi = standins.fake_vpi()
    monkeypatch.setitem(sys.modules, 'vpi', vpi)
    frame = frames(1, (640, 480))[0]
    got = vpi_ops.blur_background(frame, kernel)
    reference_blur = cv2.GaussianBlur(frame, (kernel, kernel), 0)
    diff = np.abs(got.astype(np.int16) - reference_blur.astype(np.int16))
    assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 3
    assert all(k in range(3, 12, 2) for k in [vpi_ops.blur_plan(kernel).ksize])


def test_the_stand_in_refuses_what_vpi_refuses():
    vpi = standins.fake_vpi()
    image = vpi.asimage(np.zeros((8, 8), np.uint8))
    with pytest.raises(vpi.Error, match='between 3 and 11'):
        image.gaussian_filter(13, 2.0)
    with pytest.raises(vpi.Error, match='takes U8'):
        vpi.asimage(np.zeros((8, 8), np.float32)).gaussian_filter(3, 1.0)
    with pytest.raises(TypeError):
        image.gaussian_filter(3, 1.0, vpi.Border.CLAMP)  # border is keyword-only
    subtractor = vpi.BackgroundSubtractor((8, 8), vpi.Format.U8)
    with pytest.raises(TypeError):
        subtractor(image, learningRate=0.1)  # OpenCV's name is not VPI's


def test_vpi_cuda_probe_reads_the_result_back():
    broken = standins.fake_vpi(cuda_works=False)
    listed = backends.vpi_backends(broken)
    assert listed['CUDA'][0] is False and 'cudaErrorNoKernelImageForDevice' in \
        listed['CUDA'][1]
    working = standins.fake_vpi()
    assert backends.vpi_backends(working)['CUDA'] == (True, 'ran a test conversion and read '
                                                            'it back')
    assert working.record == [('convert', 'CUDA')]


def test_bgsub_reports_a_missing_vpi_the_one_way(monkeypatch):
    monkeypatch.setitem(sys.modules, 'vpi', None)
    with pytest.raises(SegmenterError, match='NVIDIA VPI was not found'):
        BackgroundSubtractor(bgsub_values(), 'vpi')
    assert backends.find_vpi()[0] is None
    assert 'NVIDIA VPI was not found' in backends.find_vpi()[1]

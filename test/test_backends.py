"""
Backends: probing with the real CPU builds, fallback and strict mode, and the GPU paths' logic.

This machine has no GPU: ONNX Runtime (CPU build), torch (CPU build) are probed for
real.  Where a test needs a GPU machine's *answer*, it fakes exactly one boundary and
says so: a :class:`backends.Probe` built by hand (what ``probe()`` would find on a
Jetson), ONNX Runtime's provider list (to claim TensorRT), or a ``vpi`` module in
``sys.modules`` (NVIDIA VPI's API recording calls).  The computations behind those
boundaries (I/O binding with device-resident state, the fixed-ratio model, the blur
plan) run for real on the CPU.  RVM tests use ../shared/models and skip without it.
The robot's first run end to end (TensorRT and CUDA listed but not starting, engine
builds, VPI 3's API) is rehearsed in test/test_gpu_standins.py.
"""

import os
import sys
import types

import cv2
from matte_ros import backends
from matte_ros import compositing
from matte_ros import onnx_runtime
from matte_ros import params
from matte_ros import vpi_ops
from matte_ros.pipeline import Pipeline
from matte_ros.segmenters import create
from matte_ros.segmenters import rvm as rvm_module
from matte_ros.segmenters import rvm_model
from matte_ros.segmenters import rvm_runner
from matte_ros.segmenters.bgsub import vpi_arguments
from matte_ros.segmenters.rvm_onnxruntime import BoundOrtRunner
import numpy as np
import pytest

from conftest import davis_frames  # noqa: I100 (test helpers, not packages)
from conftest import shared_path  # noqa: I100


def gpu_probe(**found):
    """Return a Probe as a Jetson would answer it (faked: no GPU here)."""
    table = {'cpu': (True, 'always available')}
    for key in ('ort_cuda', 'ort_tensorrt', 'torch_cuda', 'vpi', 'vpi_cuda'):
        table[key] = (bool(found.get(key, False)), 'faked %s' % key)
    return backends.Probe(table)


def rvm_values(**extra):
    """Return parameter values that run rvm from the shared model file."""
    values = params.defaults()
    values['models.model_path'] = shared_path('models', 'rvm_mobilenetv3_fp32.onnx')
    values.update(extra)
    return values


def frames(count=3, size=(320, 180)):
    """Return DAVIS parkour frames at ``size`` (skips without ../shared)."""
    return davis_frames('parkour', count, size)


# --- probing with the real libraries --------------------------------------------------------

def test_probe_reports_the_real_cpu_builds_of_onnxruntime_and_torch():
    import onnxruntime
    import torch
    found = backends.probe()
    providers = onnxruntime.get_available_providers()
    assert found.has('ort_cuda') == ('CUDAExecutionProvider' in providers)
    assert found.has('ort_tensorrt') == ('TensorrtExecutionProvider' in providers)
    assert onnxruntime.__version__ in found.detail('onnxruntime')
    assert 'CPUExecutionProvider' in found.detail('onnxruntime')
    assert found.has('torch_cuda') == torch.cuda.is_available()
    assert torch.__version__ in found.detail('torch_cuda')
    assert found.has('cpu') and found.available('cpu')


def test_pypi_vpi_lookalike_is_not_taken_for_nvidia_vpi(monkeypatch):
    # Faked: the module named vpi.  PyPI's "vpi" lacks NVIDIA's API.
    monkeypatch.setitem(sys.modules, 'vpi', types.ModuleType('vpi'))
    assert backends.nvidia_vpi() is None
    nvidia = types.ModuleType('vpi')
    for name in backends.VPI_API:
        setattr(nvidia, name, object())
    monkeypatch.setitem(sys.modules, 'vpi', nvidia)
    assert backends.nvidia_vpi() is nvidia


def test_vpi_backends_try_cuda_for_real_and_report_its_failure(monkeypatch):
    # Faked: NVIDIA VPI whose CUDA backend fails (no GPU), as on a broken JetPack.
    calls = []

    class Backend:

        def __init__(self, name):
            self.name = name

        def __enter__(self):
            calls.append(self.name)
            if self.name == 'CUDA':
                raise RuntimeError('no CUDA device')

        def __exit__(self, *exc):
            return False

    fake = types.SimpleNamespace(Backend=types.SimpleNamespace(
        CPU=Backend('CPU'), CUDA=Backend('CUDA'), VIC=Backend('VIC')))
    listed = backends.vpi_backends(fake)
    assert listed['CUDA'][0] is False and 'no CUDA device' in listed['CUDA'][1]
    assert listed['VIC'] == (True, 'listed (not exercised)')
    assert listed['PVA'][0] is False and listed['OFA'][0] is False
    assert calls == ['CUDA']


# --- choosing: fallback and strict ------------------------------------------------------------

def test_auto_on_this_machine_is_cpu_without_warning():
    found = backends.probe()
    if found.has('ort_cuda') or found.has('torch_cuda') or found.has('vpi_cuda'):
        pytest.skip('this machine has a GPU backend')
    for segmenter in params.SEGMENTERS:
        assert backends.choose(segmenter, 'auto') == backends.Choice('auto', 'cpu')


def test_explicit_backend_falls_back_with_a_warning_naming_what_is_missing():
    found = gpu_probe()  # nothing found
    choice = backends.choose('rvm', 'tensorrt', found=found)
    assert choice.backend == 'cpu'
    assert 'TensorrtExecutionProvider' in choice.warning and 'falling back to cpu' in \
        choice.warning
    choice = backends.choose('instance', 'cuda', found=found)
    assert choice.backend == 'cpu' and 'torch with CUDA' in choice.warning
    choice = backends.choose('bgsub', 'vpi', found=found, config={'bgsub.algorithm': 'mog2'})
    assert choice.backend == 'cpu' and 'NVIDIA VPI' in choice.warning
    choice = backends.choose('selfie', 'cuda', found=found)
    assert choice.backend == 'cpu' and 'selfie does not run on cuda' in choice.warning


def test_strict_mode_raises_with_the_reason():
    with pytest.raises(backends.BackendError, match='TensorrtExecutionProvider.*strict'):
        backends.choose('rvm', 'tensorrt', strict=True, found=gpu_probe())
    with pytest.raises(backends.BackendError, match='consensus has no VPI'):
        backends.choose('bgsub', 'vpi', strict=True, found=gpu_probe(vpi_cuda=True),
                        config={'bgsub.algorithm': 'consensus'})
    assert backends.choose('rvm', 'cpu', strict=True, found=gpu_probe()).backend == 'cpu'


def test_choices_on_a_jetson_like_machine():
    # Faked: the probe result of a machine with TensorRT, CUDA, torch CUDA and VPI.
    jetson = gpu_probe(ort_cuda=True, ort_tensorrt=True, torch_cuda=True, vpi=True,
                       vpi_cuda=True)
    mog2, consensus = {'bgsub.algorithm': 'mog2'}, {'bgsub.algorithm': 'consensus'}
    # auto never picks TensorRT (a first engine build takes minutes): CUDA
    assert backends.choose('rvm', 'auto', found=jetson).backend == 'cuda'
    assert backends.choose('rvm', 'tensorrt', found=jetson).backend == 'tensorrt'
    assert backends.choose('rvm', 'cuda', found=jetson).backend == 'cuda'
    assert backends.choose('instance', 'auto', found=jetson).backend == 'cuda'
    assert backends.choose('bgsub', 'auto', found=jetson, config=mog2).backend == 'vpi'
    assert backends.choose('bgsub', 'auto', found=jetson, config=consensus) == \
        backends.Choice('auto', 'cpu')  # auto never warns
    assert backends.choose('selfie', 'auto', found=jetson).backend == 'cpu'
    only_cuda = gpu_probe(ort_cuda=True)
    assert backends.choose('rvm', 'auto', found=only_cuda).backend == 'cuda'
    assert backends.choose('instance', 'auto', found=only_cuda).backend == 'cpu'


def test_pipeline_strict_fails_before_loading_and_fallback_is_reported():
    with pytest.raises(backends.BackendError):
        Pipeline({'segmenter': 'bgsub', 'backend': 'vpi', 'backend_strict': True,
                  'bgsub.algorithm': 'mog2'})
    pipeline = Pipeline({'segmenter': 'bgsub', 'backend': 'vpi'})
    assert pipeline.backend == 'cpu' and 'VPI' in pipeline.choice.warning
    frame = np.zeros((48, 64, 3), np.uint8)
    assert pipeline.process(frame).mask.shape == (48, 64)
    pipeline.close()


def test_segmenter_fallback_joins_the_pipeline_choice(monkeypatch):
    # Faked: the probe says TensorRT exists; the real CPU onnxruntime then lacks it,
    # so rvm itself falls back and the pipeline must say so.
    monkeypatch.setattr(backends, 'probe', lambda: gpu_probe(ort_tensorrt=True))
    monkeypatch.setattr(onnx_runtime, 'available_providers', lambda: ['CPUExecutionProvider'])
    pipeline = Pipeline(rvm_values(segmenter='rvm', backend='tensorrt'))
    assert pipeline.backend == 'cpu'
    assert 'TensorrtExecutionProvider' in pipeline.status().note
    pipeline.close()


# --- ONNX Runtime / TensorRT options ----------------------------------------------------------

def test_tensorrt_options_carry_fp16_cache_and_one_fixed_profile():
    shapes = rvm_model.input_shapes(480, 640, 0.5)
    options = onnx_runtime.tensorrt_options('/cache', fp16=False, shapes=shapes)
    assert options['trt_fp16_enable'] is False
    assert options['trt_engine_cache_enable'] is True
    assert options['trt_engine_cache_path'] == '/cache'
    assert options['trt_timing_cache_path'] == '/cache'
    profile = options['trt_profile_min_shapes']
    assert profile == options['trt_profile_opt_shapes'] == options['trt_profile_max_shapes']
    assert profile.startswith('src:1x3x480x640,r1i:1x16x120x160,')
    assert 'downsample_ratio' not in profile
    assert onnx_runtime.tensorrt_options() == {'trt_fp16_enable': True}
    listed = onnx_runtime.provider_list([onnx_runtime.TENSORRT, onnx_runtime.CPU], '/c')
    assert listed[0][1]['trt_engine_cache_path'] == '/c' and listed[1] == onnx_runtime.CPU


def test_engine_cache_defaults_under_the_model_cache(monkeypatch, tmp_path):
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
    values = params.defaults()
    cache = tmp_path / 'matte_ros'
    values['models.model_dir'] = str(cache / 'mine')
    assert rvm_module.engine_cache_dir(values) == str(cache / 'mine' / 'tensorrt')
    values['models.model_dir'] = str(tmp_path / 'read-only')   # outside: never written
    assert rvm_module.engine_cache_dir(values) == str(cache / 'models' / 'tensorrt')
    values['tensorrt.engine_cache'] = str(cache / 'engines')
    assert rvm_module.engine_cache_dir(values) == str(cache / 'engines')
    for name in ('tensorrt.fp16', 'tensorrt.engine_cache'):
        assert params.BY_NAME[name].reload


# --- RVM: state shapes, fixed ratio, device-resident state ------------------------------------

@pytest.mark.parametrize('height,width,ratio', [(180, 320, 1.0), (480, 854, 480 / 854),
                                                (720, 1280, 0.375), (481, 853, 0.375)])
def test_state_shapes_match_the_real_model(height, width, ratio):
    import onnxruntime
    session = onnxruntime.InferenceSession(
        shared_path('models', 'rvm_mobilenetv3_fp32.onnx'), providers=['CPUExecutionProvider'])
    zero = np.zeros((1, 1, 1, 1), np.float32)
    feed = {'src': np.zeros((1, 3, height, width), np.float32),
            'downsample_ratio': np.array([ratio], np.float32)}
    feed.update(dict.fromkeys(rvm_model.STATE_INPUTS, zero))
    outputs = session.run(list(rvm_model.STATE_OUTPUTS), feed)
    assert [o.shape for o in outputs] == rvm_model.state_shapes(height, width, ratio)


def test_fixed_ratio_model_equals_the_original_fed_that_ratio(monkeypatch, tmp_path):
    import onnxruntime
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))   # copies are written in the cache
    model = shared_path('models', 'rvm_mobilenetv3_fp32.onnx')
    path = rvm_model.fixed_ratio_model(model, 0.375, str(tmp_path / 'matte_ros' / 'x'))
    assert os.path.basename(path) == 'rvm_mobilenetv3_fp32.ratio-0.375000.onnx'
    stamp = os.stat(path).st_mtime_ns
    assert rvm_model.fixed_ratio_model(model, 0.375, str(tmp_path / 'matte_ros' / 'x')) == path
    assert os.stat(path).st_mtime_ns == stamp  # reused, not rewritten
    fixed = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    original = onnxruntime.InferenceSession(model, providers=['CPUExecutionProvider'])
    assert 'downsample_ratio' not in [i.name for i in fixed.get_inputs()]
    src = np.random.default_rng(1).random((1, 3, 360, 640), np.float32)
    feed = dict.fromkeys(rvm_model.STATE_INPUTS, np.zeros((1, 1, 1, 1), np.float32))
    feed['src'] = src
    got = fixed.run(None, feed)
    feed['downsample_ratio'] = np.array([0.375], np.float32)
    expected = original.run(None, feed)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def test_alpha_only_model_gives_the_same_alpha_and_state(monkeypatch, tmp_path):
    import onnxruntime
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))   # copies are written in the cache
    model = shared_path('models', 'rvm_mobilenetv3_fp32.onnx')
    full = rvm_model.fixed_ratio_model(model, 0.5, str(tmp_path / 'matte_ros'))
    path = rvm_model.fixed_ratio_model(model, 0.5, str(tmp_path / 'matte_ros'), alpha_only=True)
    assert os.path.basename(path) == 'rvm_mobilenetv3_fp32.ratio-0.500000.alpha.onnx'
    sessions = [onnxruntime.InferenceSession(p, providers=['CPUExecutionProvider'])
                for p in (full, path)]
    names = [[o.name for o in s.get_outputs()] for s in sessions]
    assert names[1] == ['pha', 'r1o', 'r2o', 'r3o', 'r4o'] and 'fgr' in names[0]
    # a real frame and a carried state, so that every refiner channel is exercised
    rng = np.random.default_rng(2)
    feed = {'src': rng.random((1, 3, 240, 320), np.float32)}
    state = [np.zeros((1, 1, 1, 1), np.float32)] * 4
    for _ in range(2):
        feed.update(zip(rvm_model.STATE_INPUTS, state))
        full_out = dict(zip(names[0], sessions[0].run(None, feed)))
        alpha_out = dict(zip(names[1], sessions[1].run(None, feed)))
        for name in names[1]:
            np.testing.assert_array_equal(alpha_out[name], full_out[name])
        state = [full_out[n] for n in ('r1o', 'r2o', 'r3o', 'r4o')]
    assert 0 < full_out['pha'].mean() < 1 and full_out['pha'].std() > 0


def test_alpha_only_rewrite_refuses_another_graph():
    pytest.importorskip('onnx')
    from onnx import helper
    from onnx import TensorProto
    graph = helper.make_graph(
        [helper.make_node('Relu', ['x'], ['pha'])], 'not_rvm',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info('pha', TensorProto.FLOAT, [1])])
    with pytest.raises(rvm_module.SegmenterError, match='not the official RVM export'):
        rvm_model.alpha_only_proto(helper.make_model(graph))


def test_bound_runner_keeps_state_and_ratio_as_ortvalues_and_skips_fgr():
    import onnxruntime
    session = onnxruntime.InferenceSession(
        shared_path('models', 'rvm_mobilenetv3_fp32.onnx'), providers=['CPUExecutionProvider'])
    runner = BoundOrtRunner(rvm_runner.ModelFile(session._model_path, ''), 'cpu',
                            rvm_runner.Options(full_zero_state=True))
    assert runner.device == 'cpu'  # from the session's providers
    src = np.random.default_rng(2).random((1, 3, 90, 160), np.float32)
    state = runner.zero_state(90, 160, 1.0)
    fgr, pha, state2 = runner.run(src, state, 1.0, want_foreground=False)
    assert fgr is None and pha.shape == (1, 1, 90, 160)
    assert all(isinstance(t, onnxruntime.OrtValue) for t in state2)
    assert [tuple(t.shape()) for t in state2] == rvm_model.state_shapes(90, 160, 1.0)
    ratio_value = runner._ratio_value
    fgr, pha2, _ = runner.run(src, state2, 1.0, want_foreground=True)
    assert runner._ratio_value is ratio_value  # created once per ratio
    assert fgr.shape == (1, 3, 90, 160)
    runner.close()
    assert runner.session is None and runner._ratio_value is None


def test_full_size_zero_state_gives_the_same_mattes():
    plain = create('rvm', rvm_values(), 'cpu')
    bound = rvm_module.RobustVideoMatting(rvm_values(), 'cpu', io_binding=True,
                                          full_zero_state=True)
    for frame in frames(3):
        expected = plain.process(frame).alpha
        np.testing.assert_allclose(bound.process(frame).alpha, expected, atol=1e-5)
    plain.close()
    bound.close()


def test_reset_drops_the_device_state():
    bound = rvm_module.RobustVideoMatting(rvm_values(), 'cpu', io_binding=True)
    bound.process(frames(1)[0])
    assert not isinstance(bound.state.r1, np.ndarray)
    bound.reset('deactivate')
    assert isinstance(bound.state.r1, np.ndarray) and bound.state.frames == 0
    bound.close()


# --- VPI: bgsub mapping and the blur plan ---------------------------------------------------

def test_bgsub_parameters_map_onto_vpi_keywords():
    assert vpi_arguments(-1.0, 0, 16.0, True) == {'learnrate': 0.5, 'threshold': 16.0,
                                                  'shadow': 127}
    assert vpi_arguments(-1.0, 9, 25.0, False)['learnrate'] == pytest.approx(0.05)
    assert vpi_arguments(-1.0, 10_000, 16.0, False) == {
        'learnrate': pytest.approx(1 / 500), 'threshold': 16.0, 'shadow': None}
    assert vpi_arguments(0.05, 3, 16.0, True)['learnrate'] == 0.05


class FakeVpiImage:
    """Stands for vpi.Image: holds a NumPy array, lockable for reading."""

    def __init__(self, data):
        self.data = data

    def rlock_cpu(self):
        image = self

        class Lock:

            def __enter__(self):
                return image.data

            def __exit__(self, *exc):
                return False
        return Lock()


def fake_vpi(calls):
    """Return a stand-in for NVIDIA VPI whose BackgroundSubtractor records its calls."""
    class Backend:

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    class Subtractor:

        def __init__(self, size, fmt):
            calls.append(('create', size, fmt))

        def __call__(self, image, *, out_fgmask=None, out_bg=None, threshold=16.0,
                     shadow=127, learnrate=0.001, stream=None):
            # VPI 3's keywords exactly (no **kwargs: a misspelt keyword fails here)
            calls.append(('run', {'learnrate': learnrate, 'threshold': threshold,
                                  'shadow': shadow}))
            mask = np.zeros(image.data.shape[:2], np.uint8)
            mask[0, 0], mask[0, 1] = 255, 127  # one foreground, one shadow pixel
            return FakeVpiImage(mask), FakeVpiImage(image.data.copy())

    return types.SimpleNamespace(
        Backend=types.SimpleNamespace(CUDA=Backend()), BackgroundSubtractor=Subtractor,
        Format=types.SimpleNamespace(BGR8='BGR8'), asimage=lambda a, f=None: FakeVpiImage(a))


def test_bgsub_on_vpi_maps_parameters_and_releases_its_model(monkeypatch):
    # Faked: NVIDIA VPI (sys.modules['vpi']) recording the calls bgsub makes.
    calls = []
    monkeypatch.setitem(sys.modules, 'vpi', fake_vpi(calls))
    values = params.defaults()
    values.update({'bgsub.algorithm': 'mog2', 'bgsub.variance_threshold': 25.0})
    seg = create('bgsub', values, 'vpi')
    assert seg.backend == 'vpi' and seg.warning == ''
    frame = np.full((8, 12, 3), 50, np.uint8)
    matte = seg.process(frame)
    assert calls[0] == ('create', (12, 8), 'BGR8')
    assert calls[1] == ('run', {'learnrate': 0.5, 'threshold': 25.0, 'shadow': 127})
    assert matte.alpha[0, 0] == 1.0 and matte.alpha[0, 1] == 0.0  # shadow is background
    seg.process(frame)
    assert calls[2][1]['learnrate'] == pytest.approx(0.25)
    seg.reset('deactivate')
    assert seg._model is None  # the GPU model is dropped, rebuilt at the next frame
    seg.process(frame)
    assert calls[3][0] == 'create' and calls[4][1]['learnrate'] == 0.5
    seg.close()
    assert seg._model is None


@pytest.mark.parametrize('kernel', [3, 9, 21, 41, 81, 255])
def test_vpi_blur_plan_reproduces_opencv_blur(kernel):
    # The plan runs here with OpenCV's Gaussian (VPI-sized kernels) and linear resize.
    plan = vpi_ops.blur_plan(kernel)
    assert 3 <= plan.ksize <= 11 and plan.ksize % 2 == 1
    frame = frames(1, (640, 480))[0]

    def gaussian(image, ksize, sigma):
        return cv2.GaussianBlur(image, (ksize, ksize), sigma, borderType=cv2.BORDER_REPLICATE)

    def resize(image, size):
        return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)

    got = vpi_ops.apply_plan(frame, (640, 480), plan, gaussian, resize)
    reference = cv2.GaussianBlur(frame, (kernel, kernel), 0)
    diff = np.abs(got.astype(np.int16) - reference.astype(np.int16))
    assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 3


def test_compositor_falls_back_to_the_cpu_blur_when_the_gpu_one_fails(monkeypatch):
    # Faked: the probe says VPI's CUDA backend exists; the real VPI import then fails.
    monkeypatch.setattr(backends, 'probe', lambda: gpu_probe(vpi=True, vpi_cuda=True))
    monkeypatch.setattr(backends, 'nvidia_vpi', lambda: None)
    pipeline = Pipeline({'segmenter': 'framediff', 'backend': 'auto'})
    assert pipeline.compositor._blur is vpi_ops.blur_background
    frame = frames(1)[0]
    result = pipeline.process(frame)
    assert 'NVIDIA VPI is not available' in pipeline.compositor.blur_error
    cpu = Pipeline({'segmenter': 'framediff', 'backend': 'cpu'})
    assert cpu.compositor._blur is None
    np.testing.assert_array_equal(result.composite, cpu.process(frame).composite)


def test_compositor_uses_the_replacement_blur():
    seen = []

    def blur(frame, kernel):
        seen.append(kernel)
        return np.zeros_like(frame)

    compositor = compositing.Compositor(params.defaults(), blur=blur)
    frame = np.full((10, 10, 3), 200, np.uint8)
    out = compositor.composite(frame, np.zeros((10, 10), np.float32))
    assert seen == [41] and not out.any()


def test_a_backend_change_needs_a_new_pipeline(monkeypatch, tmp_path):
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
    pipeline = Pipeline({'segmenter': 'framediff', 'backend': 'cpu'})
    for change in ({'backend': 'cuda'}, {'backend_strict': True}, {'tensorrt.fp16': False},
                   {'tensorrt.engine_cache': str(tmp_path / 'matte_ros' / 'engines')}):
        assert pipeline.needs_rebuild(change)
        with pytest.raises(ValueError, match='need a new segmenter'):
            pipeline.update(change)
    assert pipeline.backend == 'cpu'
    pipeline.close()


def test_probe_looks_up_only_what_a_choice_needs(monkeypatch):
    # Faked: the probe functions, replaced by recorders (the real ones import libraries).
    calls = []

    def recorder(name, keys):
        def probe_it():
            calls.append(name)
            return {key: (False, 'faked') for key in keys}
        return probe_it

    vpi = recorder('vpi', ('vpi', 'vpi_cuda'))
    monkeypatch.setattr(backends, '_PROBERS', {
        'onnxruntime': recorder('onnxruntime', ('onnxruntime',)),
        'ort_cuda': recorder('ort_cuda', ('ort_cuda',)),
        'ort_tensorrt': recorder('ort_tensorrt', ('ort_tensorrt',)),
        'torch_cuda': recorder('torch', ('torch_cuda',)), 'vpi': vpi, 'vpi_cuda': vpi})
    lazy = backends.Probe({'cpu': (True, '')}, lazy=True)
    backends.choose('bgsub', 'auto', found=lazy, config={'bgsub.algorithm': 'consensus'})
    backends.choose('framediff', 'auto', found=lazy)
    assert calls == []
    backends.choose('rvm', 'auto', found=lazy)   # never TensorRT: only CUDA is tried
    backends.choose('rvm', 'cuda', found=lazy)
    assert calls == ['ort_cuda']
    backends.choose('bgsub', 'auto', found=lazy, config={'bgsub.algorithm': 'mog2'})
    assert calls == ['ort_cuda', 'vpi']
    backends.choose('instance', 'auto', found=lazy)
    assert calls == ['ort_cuda', 'vpi', 'torch']
    backends.choose('rvm', 'tensorrt', found=lazy)
    assert calls == ['ort_cuda', 'vpi', 'torch', 'ort_tensorrt']


def test_the_tiny_probe_model_is_an_identity_and_runs_on_the_cpu():
    onnx = pytest.importorskip('onnx')
    from onnx import helper
    from onnx import TensorProto
    model = onnx.load_from_string(onnx_runtime.TINY_MODEL)
    onnx.checker.check_model(model)
    graph = helper.make_graph(
        [helper.make_node('Identity', ['x'], ['y'])], 'probe',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1])])
    made = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)], ir_version=7)
    assert made.SerializeToString() == onnx_runtime.TINY_MODEL
    assert onnx_runtime.provider_works(onnx_runtime.CPU) == (True, 'a test session ran on it')
    works, detail = onnx_runtime.provider_works(onnx_runtime.CUDA)
    if not works:
        assert 'not in this onnxruntime build' in detail or 'dropped' in detail


def test_rvm_backends_follow_its_runtime():
    # Faked probes: which rvm backends exist depends on rvm.runtime, not on ONNX Runtime alone.
    jetson = gpu_probe(ort_cuda=True, ort_tensorrt=True, torch_cuda=True)
    openvino = {'rvm.runtime': 'openvino'}
    torchscript = {'rvm.runtime': 'torchscript'}
    assert backends.supported('rvm', openvino) == ('cpu',)
    assert backends.choose('rvm', 'auto', found=jetson, config=openvino) == \
        backends.Choice('auto', 'cpu')   # no warning: auto promised nothing
    choice = backends.choose('rvm', 'cuda', found=jetson, config=openvino)
    assert choice.backend == 'cpu' and 'openvino runs on the CPU only' in choice.warning
    with pytest.raises(backends.BackendError, match='no TensorRT path'):
        backends.choose('rvm', 'tensorrt', strict=True, found=jetson, config=torchscript)
    # TorchScript on cuda needs torch's CUDA, not ONNX Runtime's
    torch_only = gpu_probe(torch_cuda=True)
    assert backends.choose('rvm', 'auto', found=torch_only, config=torchscript).backend == \
        'cuda'
    assert backends.choose('rvm', 'cuda', strict=True, found=torch_only,
                           config=torchscript).backend == 'cuda'
    with pytest.raises(backends.BackendError, match='torch with CUDA'):
        backends.choose('rvm', 'cuda', strict=True, found=gpu_probe(ort_cuda=True),
                        config=torchscript)
    assert backends.choose('rvm', 'auto', found=torch_only).backend == 'cpu'  # onnxruntime

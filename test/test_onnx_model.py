"""
Segmenter ``onnx`` on models the tests build (``onnx.helper``), through the core and the CLI.

Each model computes its foreground from known input channels (test/onnx_graphs.py), so
every test states the exact alpha a frame must give: colour order, scaling, layout,
softmax class, recurrent state, constant inputs and input sizes are all checked by value.
Wrong settings must fail configure with a message that names the parameter to change.
"""

import os

import cv2
from matte_ros import params
from matte_ros.cli.main import main as cli
from matte_ros.pipeline import Pipeline
from matte_ros.segmenters import onnx_model
from matte_ros.segmenters.base import SegmenterError
import numpy as np
import onnx_graphs
import pytest

H, W = 64, 96     # multiples of 32: a dynamic input runs at the frame's own size


def frame(seed=0):
    """Return a random BGR test picture (every channel different)."""
    return np.random.default_rng(seed).integers(0, 256, size=(H, W, 3), dtype=np.uint8)


def pipeline(model, **values):
    settings = {'segmenter': 'onnx', 'onnx.model_path': model, 'backend': 'cpu',
                'composite.mode': 'none'}
    settings.update(values)
    return Pipeline(settings)


def alpha_of(model, image, **values):
    """Run one frame through a new pipeline; return the segmenter's float alpha."""
    p = pipeline(model, **values)
    try:
        return p.segmenter.process(image).alpha
    finally:
        p.close()


def test_schema_registers_the_segmenter_and_its_parameters():
    assert 'onnx' in params.SEGMENTERS
    names = {p.name for p in params.PARAMS}
    assert {s['name'] for s in onnx_model.PARAM_SPECS} <= names
    assert onnx_model.SPEC.params
    assert all(p.name.startswith('onnx.') for p in onnx_model.SPEC.params)
    assert params.BY_NAME['composite.mode'].choices[-2:] == ('transparent', 'none')


@pytest.mark.parametrize('color, index', [('rgb', 2), ('bgr', 0)])
def test_nchw_probability_follows_colour_order_and_unit_scaling(tmp_path, color, index):
    model = onnx_graphs.channel_model(tmp_path / 'm.onnx', 'nchw')
    image = frame()
    alpha = alpha_of(model, image, **{'onnx.color': color})
    assert alpha.dtype == np.float32 and alpha.shape == (H, W)
    np.testing.assert_allclose(alpha, image[:, :, index] / 255.0, atol=1e-6)


def test_symmetric_and_meanstd_scaling(tmp_path):
    # prob = 0.5 * x + 0.5 maps symmetric [-1, 1] back to [0, 1]
    model = onnx_graphs.channel_model(tmp_path / 'm.onnx', scale=0.5, offset=0.5)
    image = frame(1)
    red = image[:, :, 2] / 255.0
    np.testing.assert_allclose(alpha_of(model, image, **{'onnx.scaling': 'symmetric'}),
                               red, atol=1e-6)
    got = alpha_of(model, image, **{'onnx.scaling': 'meanstd', 'onnx.mean': '0.25,0,0',
                                    'onnx.std': '0.5'})
    np.testing.assert_allclose(got, np.clip(0.5 * (red - 0.25) / 0.5 + 0.5, 0, 1), atol=1e-6)


def test_sigmoid_turns_a_logit_into_a_probability(tmp_path):
    model = onnx_graphs.channel_model(tmp_path / 'm.onnx', scale=8.0, offset=-4.0)
    image = frame(2)
    want = 1.0 / (1.0 + np.exp(-(8.0 * image[:, :, 2] / 255.0 - 4.0)))
    got = alpha_of(model, image, **{'onnx.activation': 'sigmoid'})
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_nhwc_fixed_size_softmax_class_is_resized_back_to_the_frame(tmp_path):
    model = onnx_graphs.two_class_model(tmp_path / 'm.onnx', 'nhwc', (32, 32))
    image = np.zeros((64, 64, 3), np.uint8)
    image[:, :32] = (200, 0, 50)    # left: B high → class 0 (B) wins
    image[:, 32:] = (10, 0, 240)    # right: R high → class 1 (R) wins
    values = {'onnx.layout': 'nhwc', 'onnx.activation': 'softmax', 'onnx.channel': 1,
              'onnx.scaling': 'symmetric'}
    alpha = alpha_of(model, image, **values)
    assert alpha.shape == (64, 64)

    def p(bgr):
        b, r = (2.0 * bgr[0] / 255.0 - 1.0), (2.0 * bgr[2] / 255.0 - 1.0)
        return np.exp(r) / (np.exp(r) + np.exp(b))
    np.testing.assert_allclose(alpha[:, :28], p((200, 0, 50)), atol=1e-5)
    np.testing.assert_allclose(alpha[:, 36:], p((10, 0, 240)), atol=1e-5)
    # class 0 is the complement, and so is class 0 inverted (a background class)
    values['onnx.channel'] = 0
    np.testing.assert_allclose(alpha_of(model, image, **values)[:, 36:],
                               1.0 - p((10, 0, 240)), atol=1e-5)
    values['onnx.invert'] = True
    np.testing.assert_allclose(alpha_of(model, image, **values)[:, 36:],
                               p((10, 0, 240)), atol=1e-5)


def test_nchw_layout_on_an_nhwc_model_fails_configure_naming_onnx_layout(tmp_path):
    model = onnx_graphs.two_class_model(tmp_path / 'm.onnx', 'nhwc', (32, 32))
    with pytest.raises(SegmenterError, match=r'^onnx\.layout: .*set onnx\.layout nhwc'):
        pipeline(model)


def test_recurrent_pair_carries_state_and_resets_to_zeros(tmp_path):
    model = onnx_graphs.recurrent_model(tmp_path / 'm.onnx')
    p = pipeline(model, **{'onnx.recurrent': 'state_in:state_out', 'onnx.output': 'alpha'})
    image = frame(3)
    red = image[:, :, 2] / 255.0
    seg = p.segmenter
    np.testing.assert_allclose(seg.process(image, 1.0, 'cam').alpha, 0.5 * red, atol=1e-6)
    np.testing.assert_allclose(seg.process(image, 1.1, 'cam').alpha, 0.75 * red, atol=1e-6)
    np.testing.assert_allclose(seg.process(image, 1.2, 'cam').alpha, 0.875 * red, atol=1e-6)
    assert seg.state['state_in'].shape == (1, 1, H, W)
    seg.reset('test')
    np.testing.assert_allclose(seg.process(image, 1.3, 'cam').alpha, 0.5 * red, atol=1e-6)
    # a stamp jump above onnx.max_gap (default 1 s) resets it as well
    seg.process(image, 1.4, 'cam')
    np.testing.assert_allclose(seg.process(image, 9.0, 'cam').alpha, 0.5 * red, atol=1e-6)
    # after a reset the zeros take the shape the output had at this size
    seg.reset('test')
    assert seg.zero_state((H, W))['state_in'].shape == (1, 1, H, W)
    p.close()


def test_a_state_that_cannot_broadcast_needs_declared_shapes(tmp_path):
    model = onnx_graphs.recurrent_model(tmp_path / 'm.onnx', concat=True)
    values = {'onnx.recurrent': 'state_in:state_out', 'onnx.output': 'alpha',
              'onnx.width': 64, 'onnx.height': 64}
    with pytest.raises(SegmenterError, match='onnx.recurrent_shapes'):
        pipeline(model, **values)
    values['onnx.recurrent_shapes'] = 'state_in=1x1x64x64'
    p = pipeline(model, **values)
    image = cv2.resize(frame(4), (64, 64))
    red = image[:, :, 2] / 255.0
    np.testing.assert_allclose(p.segmenter.process(image).alpha, 0.5 * red, atol=1e-6)
    np.testing.assert_allclose(p.segmenter.process(image).alpha, 0.75 * red, atol=1e-6)
    p.close()


def test_a_static_state_shape_is_taken_from_the_model(tmp_path):
    model = onnx_graphs.recurrent_model(tmp_path / 'm.onnx', state_shape=(1, 1, 32, 32),
                                        size=(32, 32), concat=True)
    p = pipeline(model, **{'onnx.recurrent': 'state_in:state_out', 'onnx.output': 'alpha'})
    image = cv2.resize(frame(5), (32, 32))
    np.testing.assert_allclose(p.segmenter.process(image).alpha,
                               0.5 * image[:, :, 2] / 255.0, atol=1e-6)
    p.close()


def test_constant_extra_input_is_fed_by_name(tmp_path):
    model = onnx_graphs.gain_model(tmp_path / 'm.onnx')
    image = frame(6)
    got = alpha_of(model, image, **{'onnx.constants': 'gain=0.25'})
    np.testing.assert_allclose(got, 0.25 * image[:, :, 2] / 255.0, atol=1e-6)
    with pytest.raises(SegmenterError, match=r'^onnx\.(input|constants): .*gain'):
        pipeline(model)
    with pytest.raises(SegmenterError, match=r'^onnx\.constants: .*not a number'):
        pipeline(model, **{'onnx.constants': 'gain=lots'})
    with pytest.raises(SegmenterError, match=r'^onnx\.constants: nope is not an input'):
        pipeline(model, **{'onnx.constants': 'gain=1,nope=2'})


def test_dynamic_input_is_scaled_to_the_long_side_and_a_multiple(tmp_path):
    assert onnx_model.dynamic_size(480, 640, 320, 32) == (256, 320)
    assert onnx_model.dynamic_size(60, 100, 64, 32) == (32, 64)
    assert onnx_model.dynamic_size(50, 70, 0, 16) == (48, 64)
    model = onnx_graphs.recurrent_model(tmp_path / 'm.onnx')
    p = pipeline(model, **{'onnx.recurrent': 'state_in:state_out', 'onnx.output': 'alpha',
                           'onnx.long_side': 64, 'onnx.multiple_of': 32})
    image = np.full((60, 100, 3), (0, 0, 200), np.uint8)
    alpha = p.segmenter.process(image).alpha
    assert alpha.shape == (60, 100)
    np.testing.assert_allclose(alpha, 0.5 * 200 / 255.0, atol=1e-6)
    # the model really ran at 32×64: that is the shape its state output had
    assert p.segmenter.state['state_in'].shape == (1, 1, 32, 64)
    p.close()


def test_uint8_input_takes_raw_values(tmp_path):
    model = onnx_graphs.uint8_model(tmp_path / 'm.onnx')
    image = frame(7)
    np.testing.assert_allclose(alpha_of(model, image, **{'onnx.scaling': 'raw'}),
                               image[:, :, 2] / 255.0, atol=1e-6)
    with pytest.raises(SegmenterError, match=r'^onnx\.scaling: .*raw'):
        pipeline(model)


@pytest.mark.parametrize('values, param', [
    ({'onnx.channel': 1}, 'onnx.channel'),
    ({'onnx.activation': 'softmax'}, 'onnx.activation'),
    ({'onnx.output': 'nope'}, 'onnx.output'),
    ({'onnx.input': 'nope'}, 'onnx.input'),
    ({'onnx.width': 48, 'onnx.height': 32}, 'onnx.width'),
    ({'onnx.recurrent': 'prob:image'}, 'onnx.recurrent'),
    ({'onnx.recurrent': 'image:prob'}, 'onnx.input'),
    ({'onnx.recurrent': 'nope:prob'}, 'onnx.recurrent'),
    ({'onnx.recurrent': 'garbage'}, 'onnx.recurrent'),
    ({'onnx.scaling': 'meanstd', 'onnx.std': '0.2,0,0.2'}, 'onnx.std'),
    ({'onnx.mean': '1,2'}, 'onnx.mean'),
    ({'onnx.sha256': 'abc'}, 'onnx.sha256'),
    ({'onnx.sha256': '0' * 64}, 'onnx.sha256'),
])
def test_wrong_settings_fail_configure_naming_the_parameter(tmp_path, values, param):
    model = onnx_graphs.channel_model(tmp_path / 'm.onnx')
    with pytest.raises(SegmenterError) as err:
        pipeline(model, **values)
    assert str(err.value).startswith(param + ':'), str(err.value)


def test_fixed_size_mismatch_names_onnx_width(tmp_path):
    model = onnx_graphs.channel_model(tmp_path / 'm.onnx', size=(32, 32))
    with pytest.raises(SegmenterError, match=r'^onnx\.width: .*fixed'):
        pipeline(model, **{'onnx.width': 64, 'onnx.height': 32})


def test_the_right_sha256_is_accepted(tmp_path):
    from matte_ros import models
    model = onnx_graphs.channel_model(tmp_path / 'm.onnx')
    p = pipeline(model, **{'onnx.sha256': models.sha256_file(model).upper()})
    p.close()


@pytest.mark.parametrize('make', ['missing', 'directory', 'empty', 'garbage', 'unset'])
def test_bad_model_files_name_onnx_model_path(tmp_path, make):
    path = tmp_path / 'm.onnx'
    if make == 'directory':
        path.mkdir()
    elif make == 'empty':
        path.write_bytes(b'')
    elif make == 'garbage':
        path.write_bytes(b'\x08\x01 this is not a protobuf' * 10)
    with pytest.raises(SegmenterError, match=r'^onnx\.model_path: '):
        pipeline('' if make == 'unset' else str(path))


def test_a_fifo_is_refused_without_blocking(tmp_path):
    path = tmp_path / 'fifo.onnx'
    os.mkfifo(str(path))
    with pytest.raises(SegmenterError, match='not a regular file'):
        pipeline(str(path))


def test_transparent_composite_has_alpha_as_fourth_channel(tmp_path):
    model = onnx_graphs.channel_model(tmp_path / 'm.onnx')
    p = pipeline(model, **{'composite.mode': 'transparent'})
    image = frame(8)
    result = p.process(image)
    assert result.composite.shape == (H, W, 4)
    assert np.array_equal(result.composite[:, :, :3], image)
    assert np.array_equal(result.composite[:, :, 3], result.alpha)
    p.close()


def test_process_cli_writes_alpha_and_transparent_pngs(tmp_path):
    model = onnx_graphs.channel_model(tmp_path / 'm.onnx')
    frames = tmp_path / 'in'
    frames.mkdir()
    images = [frame(10 + i) for i in range(3)]
    for i, image in enumerate(images):
        cv2.imwrite(str(frames / ('%03d.png' % i)), image)
    out = tmp_path / 'out'
    code = cli(['process', '--segmenter', 'onnx', '--input', str(frames), '--output', str(out),
                '--backend', 'cpu', '--quiet', '--param', 'onnx.model_path=%s' % model,
                '--param', 'composite.mode=transparent'])
    assert code == 0
    for i, image in enumerate(images):
        alpha = cv2.imread(str(out / 'alpha' / ('%03d.png' % i)), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(alpha, image[:, :, 2])   # R / 255, written as 0-255
        composite = cv2.imread(str(out / 'composite' / ('%03d.png' % i)),
                               cv2.IMREAD_UNCHANGED)
        assert composite.shape == (H, W, 4)
        assert np.array_equal(composite[:, :, 3], alpha)
        assert np.array_equal(composite[:, :, :3], image)


def test_process_cli_refuses_a_wrong_setting_with_the_parameter(tmp_path, capsys):
    model = onnx_graphs.channel_model(tmp_path / 'm.onnx')
    frames = tmp_path / 'in'
    frames.mkdir()
    cv2.imwrite(str(frames / '0.png'), frame())
    code = cli(['process', '--segmenter', 'onnx', '--input', str(frames), '--output',
                str(tmp_path / 'out'), '--quiet', '--param', 'onnx.model_path=%s' % model,
                '--param', 'onnx.layout=nhwc'])
    assert code == 2
    assert 'onnx.layout' in capsys.readouterr().err


def test_models_inspect_prints_io_and_suggests_parameters(tmp_path, capsys):
    model = onnx_graphs.recurrent_model(tmp_path / 'm.onnx')
    assert cli(['models', 'inspect', model]) == 0
    text = capsys.readouterr().out
    for words in ('src', 'state_in', 'state_out', '[1, 3, ?, ?]', 'tensor(float)',
                  'onnx.recurrent=state_in:state_out', 'onnx.output=alpha',
                  'onnx.layout=nchw', 'onnx.input=src'):
        assert words in text, words
    # the suggested parameters configure the model as printed
    suggested = [line.split()[-1] for line in text.splitlines()
                 if line.strip().startswith('--param')]
    values = params.parse_assignments(suggested)
    assert values['segmenter'] == 'onnx'
    Pipeline(dict(values, backend='cpu', **{'composite.mode': 'none'})).close()
    nhwc = onnx_graphs.two_class_model(tmp_path / 'n.onnx', 'nhwc', (32, 32))
    assert cli(['models', 'inspect', nhwc]) == 0
    text = capsys.readouterr().out
    assert 'onnx.layout=nhwc' in text and 'onnx.activation=softmax' in text
    assert cli(['models', 'inspect', str(tmp_path / 'missing.onnx')]) == 1
    assert 'onnx.model_path' in capsys.readouterr().out


def test_rvm_runs_as_a_user_model_with_recurrent_pairs_and_a_constant():
    """The published RVM ONNX, described by parameters only, gives what segmenter rvm gives."""
    from conftest import davis_frames
    from conftest import shared_path
    model = shared_path('models', 'rvm_mobilenetv3_fp32.onnx')
    frames = davis_frames('parkour', 4, (320, 180))
    own = pipeline(model, **{
        'onnx.input': 'src', 'onnx.output': 'pha', 'onnx.multiple_of': 1,
        'onnx.recurrent': 'r1i:r1o,r2i:r2o,r3i:r3o,r4i:r4o',
        'onnx.constants': 'downsample_ratio=0.5'})
    rvm = Pipeline({'segmenter': 'rvm', 'models.model_path': model, 'backend': 'cpu',
                    'models.auto_fetch': False, 'rvm.downsample_ratio': 0.5,
                    'rvm.settle_frames': 0, 'composite.mode': 'none'})
    for i, image in enumerate(frames):
        got = own.process(image, 1.0 + 0.1 * i, 'cam').alpha.astype(int)
        want = rvm.process(image, 1.0 + 0.1 * i, 'cam').alpha.astype(int)
        assert np.abs(got - want).max() <= 2, 'frame %d' % i
    assert own.segmenter.state['r1i'].shape[2:] == (45, 80)   # carried, not 1x1 zeros
    own.close()
    rvm.close()
    # inspect suggests what this test sets (the ratio is the user's choice)
    info = onnx_model.describe(model)['suggest']
    assert info['onnx.output'] == 'pha' and info['onnx.input'] == 'src'
    assert info['onnx.recurrent'] == 'r1i:r1o,r2i:r2o,r3i:r3o,r4i:r4o'
    assert info['onnx.constants'] == 'downsample_ratio=?'


def test_mediapipe_selfie_onnx_runs_from_parameters_as_segmenter_selfie_does():
    """A real person model (MediaPipe selfie as ONNX, NHWC): only parameters, as selfie."""
    pytest.importorskip('ai_edge_litert', reason='LiteRT (ai-edge-litert) not installed')
    from conftest import davis_frames
    from conftest import shared_path
    model = shared_path('models', 'selfie_segmentation.onnx')
    tflite = shared_path('models', 'selfie_segmentation.tflite')
    frames = davis_frames('parkour', 3, (320, 180))
    values = {'onnx.layout': 'nhwc', 'onnx.resize': 'linear'}
    own = pipeline(model, **values)
    selfie = Pipeline({'segmenter': 'selfie', 'models.model_path': tflite, 'backend': 'cpu',
                       'models.auto_fetch': False, 'composite.mode': 'none'})
    for i, image in enumerate(frames):
        got = own.process(image).alpha.astype(int)
        want = selfie.process(image).alpha.astype(int)
        assert np.abs(got - want).max() <= 2, 'frame %d' % i
        assert want.max() > 128, 'a person is in view'
    own.close()
    selfie.close()


def test_mediapipe_selfie_onnx_through_process_from_parameters_only(tmp_path):
    """``matte-ros process --segmenter onnx``, parameters only (no LiteRT needed)."""
    from conftest import davis_frames
    from conftest import shared_path
    model = shared_path('models', 'selfie_segmentation.onnx')
    frames = davis_frames('parkour', 1, (320, 180))
    folder = tmp_path / 'in'
    folder.mkdir()
    cv2.imwrite(str(folder / 'a.png'), frames[0])
    out = tmp_path / 'out'
    assert cli(['process', '--segmenter', 'onnx', '--input', str(folder), '--output', str(out),
                '--quiet', '--param', 'onnx.model_path=%s' % model,
                '--param', 'onnx.layout=nhwc', '--param', 'composite.mode=transparent']) == 0
    alpha = cv2.imread(str(out / 'alpha' / 'a.png'), cv2.IMREAD_UNCHANGED)
    bgra = cv2.imread(str(out / 'composite' / 'a.png'), cv2.IMREAD_UNCHANGED)
    assert bgra.shape == (180, 320, 4) and np.array_equal(bgra[:, :, 3], alpha)
    assert alpha.max() > 128, 'a person is in view'


@pytest.mark.parametrize('shapes, words', [
    ('state_in=1x1x0x4', 'positive'),
    ('state_in=100000x100000', '2\\*\\*26'),
    ('state_in=axb', 'expected a shape'),
    ('state_in=1x1x64', 'does not fit'),
    ('src=1x3x64x64', 'not a recurrent input'),
])
def test_careless_recurrent_shapes_are_refused(tmp_path, shapes, words):
    model = onnx_graphs.recurrent_model(tmp_path / 'm.onnx')
    with pytest.raises(SegmenterError, match=r'^onnx\.recurrent_shapes: .*' + words):
        pipeline(model, **{'onnx.recurrent': 'state_in:state_out', 'onnx.output': 'alpha',
                           'onnx.recurrent_shapes': shapes})


def test_non_finite_constants_are_refused(tmp_path):
    model = onnx_graphs.gain_model(tmp_path / 'm.onnx')
    for text in ('inf', 'nan'):
        with pytest.raises(SegmenterError, match=r'^onnx\.constants: .*not finite'):
            pipeline(model, **{'onnx.constants': 'gain=%s' % text})


def test_gpu_backends_fall_back_to_cpu_with_a_reason_or_refuse_when_strict(tmp_path):
    from matte_ros import backends
    from matte_ros.segmenters import registry
    model = onnx_graphs.channel_model(tmp_path / 'm.onnx')
    assert backends.supported('onnx') == ('tensorrt', 'cuda', 'cpu')
    for backend in ('cuda', 'tensorrt'):
        p = pipeline(model, backend=backend)
        if backends.probe().has(registry.get('onnx').use(backend).needs):
            assert p.backend == backend          # a machine with onnxruntime-gpu
        else:
            assert p.backend == 'cpu' and 'falling back to cpu' in p.choice.warning
        p.close()
        if not backends.probe().has(registry.get('onnx').use(backend).needs):
            with pytest.raises(backends.BackendError, match='backend_strict'):
                pipeline(model, backend=backend, backend_strict=True)


def test_memory_need_counts_the_model_file(tmp_path):
    model = onnx_graphs.channel_model(tmp_path / 'm.onnx')
    base = dict(params.core_defaults(), segmenter='onnx')
    with_file = dict(base, **{'onnx.model_path': str(model)})
    size = os.path.getsize(str(model))
    assert onnx_model.OnnxModel.memory_bytes(with_file, 100) - \
        onnx_model.OnnxModel.memory_bytes(base, 100) == \
        onnx_model.OnnxModel.MODEL_FILE_FACTOR * size
    fifo = str(tmp_path / 'fifo')
    os.mkfifo(fifo)   # stat only: never opened, never blocks, counts nothing
    assert onnx_model.OnnxModel.memory_bytes(dict(base, **{'onnx.model_path': fifo}), 100) == \
        onnx_model.OnnxModel.memory_bytes(base, 100)

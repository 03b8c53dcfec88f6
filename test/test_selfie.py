"""
Segmenter selfie: parity with plain LiteRT and ONNX Runtime calls, smoothing, errors.

Uses the reference .tflite/.onnx files in ../shared/models (handed to the segmenter
through models.model_path, checksum verified) and real DAVIS frames; skips when they
or LiteRT are absent.
"""

import glob
import os

import cv2
from matte_ros import models
from matte_ros import params
from matte_ros.segmenters import create
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, '..', 'shared')
MODEL_DIR = os.path.join(SHARED, 'models')
DAVIS = os.path.join(SHARED, 'data', 'davis2016')
VARIANTS = {'general': 'selfie_segmentation', 'landscape': 'selfie_segmentation_landscape'}

pytest.importorskip('ai_edge_litert', reason='LiteRT (ai-edge-litert) not installed')


def need(path):
    """Skip the test when a shared file or directory is absent."""
    if not os.path.exists(path):
        pytest.skip('%s absent (tests read ../shared beside the repo)' % path)
    return path


@pytest.fixture(scope='module')
def frames():
    """Return real frames with people and their ground-truth masks (two sequences)."""
    need(DAVIS)
    out = []
    for seq in ('dance-twirl', 'parkour'):
        names = sorted(glob.glob(os.path.join(DAVIS, 'JPEGImages', '480p', seq, '*.jpg')))
        for name in names[:40:5]:
            gt = name.replace('JPEGImages', 'Annotations').replace('.jpg', '.png')
            out.append((cv2.imread(name), cv2.imread(gt, cv2.IMREAD_GRAYSCALE) > 127))
    return out


def selfie_config(variant, **extra):
    """Return a full config running ``variant`` from the shared reference .tflite."""
    cfg = params.defaults()
    cfg['selfie.model'] = variant
    cfg['models.model_path'] = need(os.path.join(MODEL_DIR, VARIANTS[variant] + '.tflite'))
    cfg.update(extra)
    return cfg


def plain_input(frame, height, width):
    """Return the model input computed step by step in NumPy order (RGB, [0, 1], NHWC)."""
    small = cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)
    return (small[:, :, ::-1].astype(np.float32) / 255.0)[None]


def plain_litert(variant, inputs):
    """Return probabilities from a plain LiteRT interpreter on the reference .tflite."""
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=os.path.join(MODEL_DIR, VARIANTS[variant] + '.tflite'))
    interpreter.allocate_tensors()
    index_in = interpreter.get_input_details()[0]['index']
    index_out = interpreter.get_output_details()[0]['index']
    out = []
    for x in inputs:
        interpreter.set_tensor(index_in, x)
        interpreter.invoke()
        out.append(interpreter.get_tensor(index_out)[0, :, :, 0].copy())
    return out


def plain_onnx(variant, inputs):
    """Return probabilities from ONNX Runtime on the converted reference .onnx."""
    import onnxruntime as ort
    path = need(os.path.join(MODEL_DIR, VARIANTS[variant] + '.onnx'))
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name
    return [session.run(None, {name: x})[0][0, :, :, 0] for x in inputs]


@pytest.mark.parametrize('variant, size', [('general', (256, 256)),
                                           ('landscape', (144, 256))])
def test_matches_plain_litert_and_onnxruntime(frames, variant, size):
    seg = create('selfie', selfie_config(variant), 'cpu')
    assert seg.input_size == size
    inputs = [plain_input(frame, *size) for frame, _ in frames]
    references = {'litert': plain_litert(variant, inputs),
                  'onnxruntime': plain_onnx(variant, inputs)}
    for i, (frame, _) in enumerate(frames):
        alpha = seg.process(frame).alpha
        assert alpha.shape == frame.shape[:2] and alpha.dtype == np.float32
        for runtime, probs in references.items():
            expected = np.clip(cv2.resize(probs[i], (frame.shape[1], frame.shape[0])), 0, 1)
            diff = np.abs(alpha - expected).max()
            assert diff <= 1e-3, '%s frame %d: max abs diff %.2e vs %s' % (
                variant, i, diff, runtime)


def test_finds_the_people(frames):
    seg = create('selfie', selfie_config('general'), 'cpu')
    inside, outside = [], []
    for frame, gt in frames:
        alpha = seg.process(frame).alpha
        inside.append(alpha[gt].mean())
        outside.append(alpha[~gt].mean())
    assert np.mean(inside) > 0.5 > 0.1 > np.mean(outside)


def test_smoothing_is_an_ema_cleared_by_reset(frames):
    weight = 0.7
    seg = create('selfie', selfie_config('general', **{'selfie.smoothing': weight}), 'cpu')
    raw = [seg.probability(frames[i][0]).copy() for i in range(3)]
    seg.process(frames[0][0])
    seg.process(frames[1][0])
    expected = weight * (weight * raw[0] + (1 - weight) * raw[1]) + (1 - weight) * raw[2]
    np.testing.assert_allclose(seg.process(frames[2][0]).alpha,
                               np.clip(cv2.resize(expected, (854, 480)), 0, 1), atol=1e-5)
    seg.reset()
    unsmoothed = np.clip(cv2.resize(raw[2], (854, 480)), 0, 1)
    np.testing.assert_allclose(seg.process(frames[2][0]).alpha, unsmoothed, atol=1e-6)
    seg.configure(selfie_config('general'))  # smoothing 0: dynamic, no reload
    seg.process(frames[0][0])
    np.testing.assert_allclose(seg.process(frames[2][0]).alpha, unsmoothed, atol=1e-6)


def test_a_frame_id_change_clears_the_smoothing(frames):
    seg = create('selfie', selfie_config('general', **{'selfie.smoothing': 0.9}), 'cpu')
    seg.process(frames[0][0], frame_id='a')
    alpha = seg.process(frames[4][0], frame_id='b').alpha
    assert seg.last_reset_reason == 'frame_id changed'
    fresh = create('selfie', selfie_config('general'), 'cpu').process(frames[4][0]).alpha
    np.testing.assert_array_equal(alpha, fresh)


def test_the_variant_must_match_the_model_file():
    cfg = selfie_config('general')
    cfg['models.model_path'] = need(os.path.join(MODEL_DIR, VARIANTS['landscape'] + '.tflite'))
    with pytest.raises(models.ModelError, match='it is model selfie_landscape'):
        create('selfie', cfg, 'cpu')


def test_upscales_small_frames():
    seg = create('selfie', selfie_config('landscape'), 'cpu')
    frame = np.full((60, 80, 3), 128, np.uint8)
    alpha = seg.process(frame).alpha
    assert alpha.shape == (60, 80) and 0.0 <= alpha.min() <= alpha.max() <= 1.0

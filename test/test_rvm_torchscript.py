"""
Segmenter rvm on rvm.runtime torchscript: parity with ONNX Runtime, state, resets, retraces.

The TorchScript module is derived here from the real RVM model in ../shared/models
(onnx2torch, then torch.jit.trace); skips when the model, the DAVIS frames, torch or
onnx2torch are absent.  Frames are 320×240 (ratio 1) to keep the traces quick.
"""

import glob
import logging
import os
import shutil
import sys

from conftest import davis_frames
from conftest import temporary_user_cache
import cv2
from matte_ros import models
from matte_ros import params
from matte_ros.segmenters import create
from matte_ros.segmenters import SegmenterError
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, '..', 'shared')
RVM_FILE = os.path.join(SHARED, 'models', 'rvm_mobilenetv3_fp32.onnx')
SIZE = (320, 240)  # (width, height): long side ≤ 512, so downsample ratio 1
TOLERANCE = 1e-3


def need(path):
    """Skip the test when a shared file or directory is absent."""
    if not os.path.exists(path):
        pytest.skip('%s absent (tests read ../shared beside the repo)' % path)


def need_torch():
    """Skip the test when torch or onnx2torch is not installed."""
    pytest.importorskip('torch', reason='torch not installed (rvm.runtime torchscript)')
    from matte_ros.segmenters import torchvision_ops
    torchvision_ops.import_torchvision()  # onnx2torch imports torchvision
    pytest.importorskip('onnx2torch', reason='onnx2torch not installed (rvm.runtime '
                        'torchscript)')


def rvm_config(model_dir, runtime):
    """Return a full config that runs RVM from the shared file on ``runtime``."""
    need(RVM_FILE)
    cfg = params.defaults()
    cfg.update({'models.model_path': RVM_FILE, 'models.model_dir': str(model_dir),
                'rvm.runtime': runtime})
    return cfg


@pytest.fixture(scope='module')
def frames():
    """Return the first five DAVIS parkour images at 320×240 (BGR)."""
    return davis_frames('parkour', 5, SIZE)


@pytest.fixture(scope='module', autouse=True)
def user_cache(tmp_path_factory):
    """Make a temporary folder the user cache ($XDG_CACHE_HOME) for the whole module."""
    yield from temporary_user_cache(tmp_path_factory)


@pytest.fixture(scope='module')
def model_dir(user_cache):
    """Return this module's model cache directory, inside the user cache (traces go there)."""
    return user_cache / 'models'


@pytest.fixture(scope='module')
def onnx_alphas(frames, model_dir):
    """Return the ONNX Runtime segmenter's alphas over the frames (state carried)."""
    seg = create('rvm', rvm_config(model_dir, 'onnxruntime'), 'cpu')
    alphas = [seg.process(f, stamp=i / 25.0, frame_id='cam').alpha
              for i, f in enumerate(frames)]
    seg.close()
    return alphas


@pytest.fixture(scope='module')
def torchscript(model_dir):
    """Return one TorchScript rvm segmenter shared by the module (one trace per size)."""
    need_torch()
    seg = create('rvm', rvm_config(model_dir, 'torchscript'), 'cpu')
    yield seg
    seg.close()


def test_matches_onnxruntime_with_the_state_carried(frames, onnx_alphas, torchscript):
    import torch
    torchscript.reset()
    for i, (frame, expected) in enumerate(zip(frames, onnx_alphas)):
        matte = torchscript.process(frame, stamp=i / 25.0, frame_id='cam')
        assert matte.alpha.dtype == np.float32 and matte.alpha.shape == frame.shape[:2]
        diff = float(np.abs(matte.alpha - expected).max())
        assert diff <= TOLERANCE, 'frame %d: max alpha diff %g' % (i, diff)
        assert matte.foreground is None   # ~/foreground not published: not converted
    settle = params.defaults()['rvm.settle_frames']   # extra runs at the fresh state
    assert torchscript.state.frames == len(frames) + settle and len(frames) >= 3
    assert all(isinstance(t, torch.Tensor) for t in torchscript.state.tensors())
    assert torchscript.state.r1.shape == (1, 16, SIZE[1] // 2, SIZE[0] // 2)
    assert torchscript.describe().startswith(
        'TorchScript (derived from ONNX via onnx2torch) on cpu')
    assert torchscript.backend == 'cpu' and torchscript.status().note == ''


def test_reset_reproduces_the_first_frame(frames, torchscript):
    torchscript.reset()
    first = torchscript.process(frames[0]).alpha
    for frame in frames[1:-1]:
        torchscript.process(frame)
    carried = torchscript.process(frames[-1]).alpha
    torchscript.reset('again')
    assert torchscript.state.frames == 0
    fresh = torchscript.process(frames[-1]).alpha
    assert np.abs(carried - fresh).max() > 0.01, 'the carried state changed nothing'
    torchscript.reset()
    assert np.array_equal(torchscript.process(frames[0]).alpha, first)


def test_a_size_change_retraces_and_resets(frames, onnx_alphas, torchscript, model_dir):
    torchscript.reset()
    torchscript.process(frames[0], stamp=0.0, frame_id='cam')
    torchscript.process(frames[1], stamp=0.04, frame_id='cam')
    traced = torchscript.runner.traced
    small = cv2.resize(frames[2], (SIZE[0] // 2, SIZE[1] // 2))
    alpha = torchscript.process(small, stamp=0.08, frame_id='cam').alpha
    assert alpha.shape == small.shape[:2]
    assert torchscript.last_reset_reason.startswith('resolution changed')
    assert torchscript.state.frames == 1 + params.defaults()['rvm.settle_frames']
    assert torchscript.runner.traced == traced + 1
    assert torchscript.runner.key[:2] == (SIZE[1] // 2, SIZE[0] // 2)
    assert 'at 160x120' in torchscript.describe()
    reference = create('rvm', rvm_config(model_dir, 'onnxruntime'), 'cpu')
    assert np.abs(alpha - reference.process(small).alpha).max() <= TOLERANCE
    # Back to the first size: the trace kept in memory serves, no new trace.
    again = torchscript.process(frames[0], stamp=0.12, frame_id='cam').alpha
    assert torchscript.runner.traced == traced + 1
    assert torchscript.runner.source == 'memory'
    assert np.abs(again - onnx_alphas[0]).max() <= TOLERANCE


def test_a_saved_trace_is_loaded_from_the_model_cache(frames, onnx_alphas, torchscript,
                                                      model_dir):
    torchscript.reset()
    torchscript.process(frames[0])  # makes sure the 320×240 trace exists
    saved = glob.glob(os.path.join(str(model_dir), 'torchscript', '*.320x240.*.pt'))
    assert len(saved) == 1
    seg = create('rvm', rvm_config(model_dir, 'torchscript'), 'cpu')
    alpha = seg.process(frames[0]).alpha
    assert seg.runner.source == 'disk' and seg.runner.traced == 0
    assert np.abs(alpha - onnx_alphas[0]).max() <= TOLERANCE
    seg.close()


def test_missing_onnx2torch_fails_configure_with_a_clear_error(tmp_path, monkeypatch):
    pytest.importorskip('torch', reason='torch not installed (rvm.runtime torchscript)')
    monkeypatch.setitem(sys.modules, 'onnx2torch', None)  # import raises ImportError
    with pytest.raises(SegmenterError, match='needs onnx2torch'):
        create('rvm', rvm_config(tmp_path, 'torchscript'), 'cpu')


def test_a_failed_conversion_fails_configure_with_a_clear_error(tmp_path, monkeypatch):
    need_torch()
    import onnx2torch

    def broken(model):
        raise NotImplementedError('Converter is not implemented (OperationDescription(...))')

    monkeypatch.setattr(onnx2torch, 'convert', broken)
    with pytest.raises(SegmenterError, match='onnx2torch cannot convert .*NotImplementedError'):
        create('rvm', rvm_config(tmp_path, 'torchscript'), 'cpu')


# --- saved traces are loaded only from the user cache, and only when matte_ros wrote them --

def planted_trace(path):
    """Save at ``path`` a TorchScript module that answers alpha 0.25 everywhere."""
    import torch

    class Planted(torch.nn.Module):
        """Alpha 0.25 everywhere; the state passes through."""

        def forward(self, src, r1, r2, r3, r4):
            return src, torch.full_like(src[:, :1], 0.25), r1, r2, r3, r4

    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.jit.save(torch.jit.script(Planted()), path)


def test_a_trace_planted_in_a_model_dir_outside_the_cache_is_never_loaded(
        frames, onnx_alphas, torchscript, model_dir, tmp_path):
    torchscript.reset()
    torchscript.process(frames[0])   # the real 320×240 trace, sealed, in the cache
    real = torchscript.runner.trace_path(SIZE[1], SIZE[0], 1.0)
    outside = tmp_path / 'opt-models'   # what a hostile models.model_dir points at
    planted = os.path.join(str(outside), 'torchscript', os.path.basename(real))
    planted_trace(planted)
    shutil.copy(real + models.SEAL_SUFFIX, planted + models.SEAL_SUFFIX)   # a stolen seal
    listing = sorted(os.listdir(os.path.dirname(planted)))
    seg = create('rvm', rvm_config(outside, 'torchscript'), 'cpu')
    try:
        assert seg.runner.cache_dir == str(model_dir / 'torchscript')
        alpha = seg.process(frames[0]).alpha
        assert seg.runner.source == 'disk' and seg.runner.traced == 0   # the cache's own
        assert np.abs(alpha - onnx_alphas[0]).max() <= TOLERANCE
        assert not np.allclose(alpha, 0.25)
    finally:
        seg.close()
    assert sorted(os.listdir(os.path.dirname(planted))) == listing   # nothing written there


@pytest.mark.parametrize('seal', ['kept', 'removed'])
def test_a_trace_changed_in_the_cache_is_refused_traced_again_and_replaced(
        frames, onnx_alphas, torchscript, model_dir, caplog, seal):
    torchscript.reset()
    torchscript.process(frames[0])
    path = torchscript.runner.trace_path(SIZE[1], SIZE[0], 1.0)
    planted_trace(path)   # same name, other code; its old seal kept or gone
    if seal == 'removed':
        os.unlink(path + models.SEAL_SUFFIX)
    seg = create('rvm', rvm_config(model_dir, 'torchscript'), 'cpu')
    try:
        with caplog.at_level(logging.WARNING):
            alpha = seg.process(frames[0]).alpha
        why = 'does not match its seal' if seal == 'kept' else 'has no readable seal'
        assert 'TorchScript trace %s %s' % (path, why) in caplog.text
        assert 'tracing again' in caplog.text
        assert seg.runner.source == 'trace' and seg.runner.traced == 1
        assert np.abs(alpha - onnx_alphas[0]).max() <= TOLERANCE
    finally:
        seg.close()
    again = create('rvm', rvm_config(model_dir, 'torchscript'), 'cpu')
    try:
        again.process(frames[0])
        assert again.runner.source == 'disk'   # the replacement is sealed and loads
    finally:
        again.close()


def test_a_trace_is_not_saved_in_a_model_dir_outside_the_cache(frames, model_dir, tmp_path):
    outside = tmp_path / 'opt-models'
    outside.mkdir()
    seg = create('rvm', rvm_config(outside, 'torchscript'), 'cpu')
    try:
        seg.process(cv2.resize(frames[0], (96, 64)))
        saved = seg.runner.trace_path(64, 96, 1.0)
        assert saved.startswith(str(model_dir / 'torchscript') + os.sep)
        assert os.path.isfile(saved) and os.path.isfile(saved + models.SEAL_SUFFIX)
        assert os.stat(os.path.dirname(saved)).st_mode & 0o777 == 0o700
    finally:
        seg.close()
    assert os.listdir(outside) == []

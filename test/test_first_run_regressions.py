"""
The first-run bugs 1-4 (GPU backends that tell the truth), written against APIs old and new.

The real CPU ONNX Runtime lists TensorRT and CUDA (test/standins.py) and drops them at
session creation.  These tests use only what the package had before the runner rework
(``create``, ``process``, ``backend``, ``Pipeline``), so they can be run against an older
checkout (``PYTHONPATH=<old checkout> pytest test/test_first_run_regressions.py``):
there all ten fail (backend reported as cuda, "Can't allocate memory on the device",
stale tensorrt in diagnostics, strict not refusing); here they pass.
"""

import logging

from matte_ros import backends
from matte_ros import params
from matte_ros.pipeline import Pipeline
from matte_ros.segmenters import create
import numpy as np
import pytest

from conftest import shared_path  # noqa: I100 (test helpers, not packages)
import standins  # noqa: I100


@pytest.fixture(autouse=True)
def user_cache(monkeypatch, tmp_path):
    """Make tmp_path the user cache: engines go to tmp_path/matte_ros/engines."""
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))


def values(tmp_path, **extra):
    """Return parameter values that run rvm from the shared model file."""
    out = params.defaults()
    out.update({'segmenter': 'rvm', 'composite.mode': 'none',
                'models.model_path': shared_path('models', 'rvm_mobilenetv3_fp32.onnx'),
                'models.model_dir': str(tmp_path),
                'tensorrt.engine_cache': str(tmp_path / 'matte_ros' / 'engines')})
    out.update(extra)
    return out


def frame():
    """Return a 320x180 noise frame."""
    return np.random.default_rng(1).integers(0, 255, (180, 320, 3)).astype(np.uint8)


def note(pipeline):
    """Return what the node publishes as ``backend_note``."""
    return pipeline.status().note if hasattr(pipeline, 'status') else pipeline.choice.warning


@pytest.mark.parametrize('failure', ['missing-libraries', 'ep-error'])
def test_bug1_cuda_listed_but_dropped_is_reported(monkeypatch, tmp_path, caplog, failure):
    standins.claim_gpu_providers(monkeypatch, failure)
    with caplog.at_level(logging.WARNING):
        seg = create('rvm', values(tmp_path), 'cuda')
    assert seg.backend == 'cpu'
    assert any('CUDAExecutionProvider' in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize('failure', ['missing-libraries', 'ep-error'])
def test_bug2_tensorrt_listed_but_dropped_serves_frames(monkeypatch, tmp_path, failure):
    standins.claim_gpu_providers(monkeypatch, failure)
    seg = create('rvm', values(tmp_path), 'tensorrt')
    for _ in range(3):
        assert seg.process(frame()).alpha.shape == (180, 320)


@pytest.mark.parametrize('failure', ['missing-libraries', 'ep-error'])
def test_bug3_diagnostics_follow_a_first_frame_fallback(monkeypatch, tmp_path, failure):
    standins.claim_gpu_providers(monkeypatch, failure)
    monkeypatch.setattr(backends, 'probe', lambda: backends.Probe(
        {'cpu': (True, ''), 'ort_tensorrt': (True, 'probe passed'), 'ort_cuda': (True, '')}))
    pipeline = Pipeline(values(tmp_path, backend='tensorrt'))
    for _ in range(3):
        try:
            pipeline.process(frame())
        except Exception:  # noqa: B902 - the node drops a failing frame and goes on
            pass
    runner = getattr(pipeline.segmenter, 'runner', None)
    if hasattr(runner, 'wait'):
        runner.wait(120)
        pipeline.process(frame())
    assert pipeline.backend == 'cpu' and 'TensorrtExecutionProvider' in note(pipeline)


@pytest.mark.parametrize('failure', ['missing-libraries', 'ep-error'])
@pytest.mark.parametrize('backend', ['cuda', 'tensorrt'])
def test_bug4_strict_refuses_configure(monkeypatch, tmp_path, failure, backend):
    standins.claim_gpu_providers(monkeypatch, failure)
    with pytest.raises(Exception, match='ExecutionProvider'):
        Pipeline(values(tmp_path, backend=backend, backend_strict=True))

"""
ONNX Runtime sessions for the neural segmenters: providers per backend, threads, options.

A backend name maps to an ordered list of execution providers (:data:`PROVIDERS`).
What runs is decided by the session, not by the listing:
``onnxruntime.get_available_providers()`` names the providers the package was *built*
with, and ``InferenceSession`` drops a listed provider that fails to start (a missing
``libnvinfer`` or cuDNN, an option key the build does not know) and carries on with the
rest, without raising.  So after a session is created, :class:`SessionInfo` holds
``session.get_providers()``: the backend in use is read from it (:func:`backend_of`),
every wanted provider that is not active is named with the reason (not built in, or
listed but dropped at session creation), a warning is logged, and ``strict=True`` (the
``backend_strict`` parameter) raises SegmenterError instead of running on less.

:func:`provider_works` creates a tiny session per provider: what ``matte-ros doctor``
and the backend probe report as working.
"""

import base64
from dataclasses import dataclass
import logging
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

from matte_ros.errors import SegmenterError

LOG = logging.getLogger(__name__)

CPU = 'CPUExecutionProvider'
CUDA = 'CUDAExecutionProvider'
TENSORRT = 'TensorrtExecutionProvider'

#: Provider → the backend name it stands for.
BACKEND_OF = {TENSORRT: 'tensorrt', CUDA: 'cuda', CPU: 'cpu'}

#: A one-node ONNX model (``y = Identity(x)``, float [1], opset 13) for
#: :func:`provider_works`; test/test_backends.py checks it against onnx.helper's.
TINY_MODEL = base64.b64decode(
    'CAc6OwoQCgF4EgF5IghJZGVudGl0eRIFcHJvYmVaDwoBeBIKCggIARIECgIIAWIPCgF5EgoKCAgBEgQKAggBQgQKABAN')

#: backend → execution providers, best first (CPU always last, as the fallback).
PROVIDERS = {
    'cpu': (CPU,),
    'cuda': (CUDA, CPU),
    'tensorrt': (TENSORRT, CUDA, CPU),
    # auto and vpi (VPI has no ONNX runtime): the best GPU provider present, else CPU.
    'auto': (CUDA, CPU),
    'vpi': (CUDA, CPU),
}


def backend_of(providers: List[str]) -> str:
    """Return the backend a session runs on, from its active providers (best first)."""
    return BACKEND_OF.get(providers[0], 'cpu') if providers else 'cpu'


@dataclass
class SessionInfo:
    """
    What a session runs on (``session.get_providers()``) and what it was asked for.

    ``backend``: the backend asked for; ``providers``: the active providers, best first;
    ``missing``: wanted providers that are not active; ``dropped``: those of them the
    package lists but the session did not start.
    """

    backend: str
    providers: List[str]
    missing: List[str]
    threads: int
    dropped: List[str] = None

    @property
    def in_use(self) -> str:
        """Return the backend actually in use (cpu, cuda, tensorrt)."""
        return backend_of(self.providers)

    def summary(self) -> str:
        """Return one line for logs and diagnostics."""
        text = 'onnxruntime on %s' % ', '.join(self.providers)
        if self.missing:
            text += ' (asked for %s; %s)' % (self.backend, self.reason())
        return text

    def reason(self) -> str:
        """Return why the wanted providers are not active ('' when they all are)."""
        dropped = self.dropped or []
        parts = []
        absent = [p for p in self.missing if p not in dropped]
        if absent:
            parts.append('%s not in this onnxruntime build' % ', '.join(absent))
        if dropped:
            parts.append('%s listed but failed to start in the session (ONNX Runtime '
                         'dropped it: see its log for the missing library or option)'
                         % ', '.join(dropped))
        return '; '.join(parts)

    def note(self) -> str:
        """Return the warning when the session runs on less than asked ('' otherwise)."""
        if not self.missing or self.backend == 'auto':
            return ''
        return 'backend %s: %s; running on %s' % (self.backend, self.reason(), self.in_use)


def _import_ort():
    try:
        import onnxruntime
    except ImportError as exc:
        raise SegmenterError('onnxruntime is not installed (pip install onnxruntime, or '
                             'onnxruntime-gpu on CUDA machines): %s' % exc)
    return onnxruntime


def available_providers() -> List[str]:
    """Return the execution providers of the installed ONNX Runtime."""
    return list(_import_ort().get_available_providers())


def choose_providers(backend: str, available: List[str],
                     strict: bool = False) -> Tuple[List[str], List[str]]:
    """
    Return (providers to use, wanted providers that are missing) for a backend.

    ``strict`` raises SegmenterError when the backend's first provider is missing.
    """
    try:
        wanted = PROVIDERS[backend]
    except KeyError:
        raise SegmenterError('unknown backend %r for onnxruntime (choose from %s)'
                             % (backend, ', '.join(sorted(PROVIDERS))))
    use = [p for p in wanted if p in available]
    missing = [p for p in wanted if p not in available]
    if CPU not in use:
        use.append(CPU)
    if backend == 'auto':
        missing = []  # auto promises nothing: CPU is an expected outcome, not a fallback
    if strict and backend not in ('auto', 'vpi') and wanted[0] in missing:
        raise SegmenterError('backend %s needs %s, which this onnxruntime lacks (has: %s); '
                             'install onnxruntime-gpu or set backend_strict false'
                             % (backend, wanted[0], ', '.join(available)))
    return use, missing


def session_options(threads: int = 0, spinning: bool = True):
    """
    Return SessionOptions for a low-latency, one-stream segmenter.

    All graph optimisations, sequential execution, ``threads`` intra-op threads (0 lets
    ONNX Runtime use one per physical core), one inter-op thread.  ``spinning`` lets
    idle workers spin-wait between operators (ONNX Runtime's default): about 10 % faster
    on an idle machine, slower when other processes load the same cores
    (tools/bench_rvm.py shows both).
    """
    ort = _import_ort()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = max(0, int(threads))
    options.inter_op_num_threads = 1
    options.add_session_config_entry('session.intra_op.allow_spinning',
                                     '1' if spinning else '0')
    return options


def trt_shapes(shapes: Dict[str, Tuple[int, ...]]) -> str:
    """Return input shapes in the TensorRT EP's profile syntax: ``src:1x3x480x640,r1i:...``."""
    return ','.join('%s:%s' % (name, 'x'.join(str(int(d)) for d in shape))
                    for name, shape in shapes.items())


def tensorrt_options(cache_dir: str = '', fp16: bool = True,
                     shapes: Optional[Dict[str, Tuple[int, ...]]] = None) -> Dict[str, object]:
    """
    Return TensorRT execution provider options (documented ONNX Runtime names).

    ``cache_dir``: engines (``trt_engine_cache_*``) and tactic timings
    (``trt_timing_cache_*``) are kept there, so only the first run per model and shape
    builds an engine (minutes on a Jetson).  ``fp16``: ``trt_fp16_enable``.  ``shapes``:
    one fixed optimisation profile (min = opt = max) for these input shapes, so the
    engine is built once for the stream's resolution instead of for every new shape.
    """
    options = {'trt_fp16_enable': bool(fp16)}
    if cache_dir:
        options.update(trt_engine_cache_enable=True, trt_engine_cache_path=cache_dir,
                       trt_timing_cache_enable=True, trt_timing_cache_path=cache_dir)
    if shapes:
        text = trt_shapes(shapes)
        options.update(trt_profile_min_shapes=text, trt_profile_opt_shapes=text,
                       trt_profile_max_shapes=text)
    return options


def provider_list(use: List[str], cache_dir: str = '', fp16: bool = True,
                  shapes: Optional[Dict[str, Tuple[int, ...]]] = None) -> list:
    """
    Return the ``providers`` argument for InferenceSession, with TensorRT options.

    TensorRT gets :func:`tensorrt_options` (engine cache in ``cache_dir``, fp16, fixed
    profile ``shapes``); the other providers run with their defaults.
    """
    out = []
    for name in use:
        if name == TENSORRT:
            out.append((name, tensorrt_options(cache_dir, fp16, shapes)))
        else:
            out.append(name)
    return out


def create_session(path: str, backend: str = 'cpu', threads: int = 0,
                   strict: bool = False, options=None, cache_dir: str = '',
                   spinning: bool = True, fp16: bool = True,
                   shapes: Optional[Dict[str, Tuple[int, ...]]] = None):
    """
    Load an ONNX model for ``backend``; return (InferenceSession, SessionInfo).

    Raises SegmenterError naming the file when ONNX Runtime cannot load it.
    ``cache_dir``, ``fp16`` and ``shapes`` are TensorRT's (see :func:`tensorrt_options`).
    """
    ort = _import_ort()
    use, missing = choose_providers(backend, list(ort.get_available_providers()), strict)
    if options is None:
        options = session_options(threads, spinning)
    try:
        providers = provider_list(use, cache_dir, fp16, shapes)
        session = ort.InferenceSession(path, sess_options=options, providers=providers)
    except Exception as exc:  # noqa: B902 - onnxruntime raises its own unrelated types
        raise SegmenterError('onnxruntime cannot load %s: %s' % (path, exc))
    active = list(session.get_providers())
    dropped = [p for p in use if p not in active and p != CPU]
    info = SessionInfo(backend, active, missing + dropped, options.intra_op_num_threads,
                       dropped)
    wanted = PROVIDERS.get(backend, (CPU,))[0]
    if strict and backend not in ('auto', 'vpi') and wanted not in active:
        raise SegmenterError('backend %s: %s is not active in the session (%s); '
                             'backend_strict is true' % (backend, wanted, info.reason()))
    if info.note():
        LOG.warning('%s (model %s)', info.note(), path)
    return session, info


def provider_works(provider: str) -> Tuple[bool, str]:
    """
    Tell whether ``provider`` really starts: create a tiny session on it and run it.

    Returns (works, detail); the detail names what the session fell back to or the error.
    """
    try:
        ort = _import_ort()
    except SegmenterError as exc:
        return False, str(exc)
    if provider not in ort.get_available_providers():
        return False, '%s not in this onnxruntime build' % provider
    wanted = [provider] if provider == CPU else [provider, CPU]
    try:
        session = ort.InferenceSession(TINY_MODEL, providers=wanted)
        active = list(session.get_providers())
        import numpy as np
        session.run(None, {'x': np.ones(1, np.float32)})
    except Exception as exc:  # noqa: B902 - any failure means "does not work"
        return False, 'a test session failed: %s: %s' % (type(exc).__name__, exc)
    if provider not in active:
        return False, ('listed, but a test session dropped it and ran on %s (see ONNX '
                       "Runtime's log for the missing library)" % ', '.join(active))
    return True, 'a test session ran on it'

"""
Which compute backends exist on this machine, and which one each segmenter gets.

Each segmenter declares the backends it runs on, best first, with the capability each
needs (:class:`matte_ros.segmenters.spec.BackendUse`); this module probes the
capabilities and chooses.

Probing imports the GPU libraries lazily (they exist only on the robot) and looks for
*capabilities*, because each segmenter needs a different library for the same backend
name:

* ``ort_cuda`` / ``ort_tensorrt`` -- ONNX Runtime's CUDA / TensorRT execution
  providers (``rvm`` on ``cuda`` / ``tensorrt``), found only when a tiny session really
  runs on them (:func:`matte_ros.onnx_runtime.provider_works`): the package's listing
  names what it was built with, not what starts;
* ``torch_cuda`` -- ``torch.cuda.is_available()`` (``instance`` on ``cuda``, and ``rvm``
  with ``rvm.runtime torchscript``);
* ``vpi_cuda`` -- NVIDIA VPI with a working CUDA backend (``bgsub`` on ``vpi`` with
  ``bgsub.algorithm mog2``, the only model VPI implements; and the composite's blur):
  a test conversion on CUDA whose result is read back on the CPU (VPI runs lazily, so
  only the read-back shows that the work ran).

``auto`` never picks TensorRT (a declaration's ``BackendUse.not_auto``): its first engine
build per resolution takes minutes; ask for it with ``backend tensorrt``.

The PyPI package called ``vpi`` is an unrelated Raspberry Pi library, so NVIDIA VPI is
recognised by its API (``vpi.Backend``, ``vpi.BackgroundSubtractor``), not by the name.
Tests replace :func:`probe`'s result (a :class:`Probe`) to exercise the GPU choices on
machines without a GPU.
"""

from dataclasses import dataclass
import functools
import importlib
from typing import Any
from typing import Dict
from typing import Mapping
from typing import Optional
from typing import Tuple

from matte_ros.segmenters.spec import CPU


class BackendError(RuntimeError):
    """The requested backend is missing and ``backend_strict`` forbids a fallback."""


#: What each capability is, in the words a user installs it by.
NEED_TEXT: Dict[str, str] = {
    'ort_cuda': "ONNX Runtime's CUDAExecutionProvider (onnxruntime-gpu)",
    'ort_tensorrt': "ONNX Runtime's TensorrtExecutionProvider (onnxruntime-gpu with TensorRT)",
    'torch_cuda': 'torch with CUDA (torch.cuda.is_available())',
    'vpi_cuda': 'NVIDIA VPI with its CUDA backend (JetPack: python3-vpi3)',
}

#: Attributes NVIDIA VPI's module has and the PyPI ``vpi`` package lacks.
VPI_API = ('Backend', 'BackgroundSubtractor', 'Format', 'asimage')


@dataclass(frozen=True)
class Probe:
    """
    What was found: capability → (available, detail).

    A ``lazy`` probe (what :func:`probe` returns) looks a capability up the first time
    it is asked for, so choosing a backend for bgsub never imports torch or ONNX Runtime
    (importing torch alone costs seconds and hundreds of MB).  Tests pass a full table.
    """

    found: Dict[str, Tuple[bool, str]]
    lazy: bool = False

    def _entry(self, capability: str) -> Tuple[bool, str]:
        if capability not in self.found and self.lazy and capability in _PROBERS:
            self.found.update(_PROBERS[capability]())
        return self.found.get(capability, (False, 'not probed'))

    def has(self, capability: str) -> bool:
        """Tell whether a capability (``ort_cuda``, ``vpi_cuda``, ...) was found."""
        return self._entry(capability)[0]

    def detail(self, capability: str) -> str:
        """Return what probing said about a capability (version, or why it is missing)."""
        return self._entry(capability)[1]

    def available(self, backend: str) -> bool:
        """Tell whether any segmenter can use ``backend`` here."""
        if backend == 'cpu':
            return True
        return any(self.has(use.needs) for spec in _specs().values()
                   for use in spec.backends if use.name == backend and use.needs)


@dataclass(frozen=True)
class Choice:
    """The backend a segmenter will run on, and why (empty ``warning`` when as asked)."""

    requested: str
    backend: str
    warning: str = ''


# --- probing ------------------------------------------------------------------------------

def ort_providers() -> Tuple[Optional[list], str]:
    """Return (ONNX Runtime's available providers or None, version or import error)."""
    try:
        ort = importlib.import_module('onnxruntime')
    except ImportError as exc:
        return None, 'onnxruntime not importable (%s)' % exc
    return list(ort.get_available_providers()), 'onnxruntime %s' % ort.__version__


def torch_cuda() -> Tuple[bool, str]:
    """Return (``torch.cuda.is_available()``, torch version and CUDA devices or why not)."""
    try:
        torch = importlib.import_module('torch')
    except ImportError:
        return False, 'torch not installed'
    try:
        if torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            return True, 'torch %s, CUDA %s, %d device(s): %s' % (
                torch.__version__, torch.version.cuda, len(names), '; '.join(names))
    except Exception as exc:  # noqa: B902 - a broken CUDA install must not stop probing
        return False, 'torch %s: CUDA probe failed (%s)' % (torch.__version__, exc)
    return False, 'torch %s without CUDA (torch.cuda.is_available() is false)' % (
        torch.__version__)


def find_vpi() -> Tuple[Any, str]:
    """
    Return (NVIDIA VPI's module, '') or (None, why it is not there).

    The one place VPI is detected: the PyPI package called ``vpi`` (a Raspberry Pi
    library) is told apart by its missing attributes.
    """
    try:
        vpi = importlib.import_module('vpi')
    except Exception as exc:  # noqa: B902 - any import failure means "no VPI"
        return None, 'NVIDIA VPI was not found (import vpi failed: %s)' % exc
    missing = [name for name in VPI_API if not hasattr(vpi, name)]
    if missing:
        return None, ('NVIDIA VPI was not found: the module "vpi" at %s lacks %s (is it the '
                      'unrelated PyPI package "vpi"?)' % (getattr(vpi, '__file__', '?'),
                                                          ', '.join(missing)))
    return vpi, ''


def nvidia_vpi():
    """Return NVIDIA VPI's module, or None (also when ``vpi`` is PyPI's unrelated package)."""
    return find_vpi()[0]


def vpi_backends(vpi) -> Dict[str, Tuple[bool, str]]:
    """
    Return VPI backend name → (usable, detail) for CPU, CUDA, PVA, VIC, OFA.

    CUDA is tried for real: a 16×16 conversion to float on CUDA, read back on the CPU
    and compared (VPI evaluates lazily; reading the result back is what synchronises and
    surfaces a failed launch).  The accelerators (PVA, VIC, OFA) are only listed as
    present in ``vpi.Backend``, because each runs a different subset of algorithms and
    formats.
    """
    import numpy as np
    out = {}
    for name in ('CPU', 'CUDA', 'PVA', 'VIC', 'OFA'):
        backend = getattr(vpi.Backend, name, None)
        if backend is None:
            out[name] = (False, 'not in vpi.Backend')
        elif name == 'CUDA':
            source = np.arange(256, dtype=np.uint8).reshape(16, 16)
            try:
                with backend:
                    image = vpi.asimage(source).convert(vpi.Format.F32)
                with image.rlock_cpu() as data:
                    same = np.array_equal(np.asarray(data), source.astype(np.float32))
                out[name] = (same, 'ran a test conversion and read it back' if same else
                             'a test conversion read back wrong values')
            except Exception as exc:  # noqa: B902 - any VPI/CUDA failure = unusable
                out[name] = (False, 'test conversion failed: %s' % exc)
        else:
            out[name] = (True, 'listed (not exercised)')
    return out


def _vpi_found() -> Dict[str, Tuple[bool, str]]:
    vpi, why = find_vpi()
    if vpi is None:
        return {'vpi': (False, '%s (JetPack: python3-vpi3)' % why), 'vpi_cuda': (False, why)}
    version = 'NVIDIA VPI %s' % getattr(vpi, '__version__', '?')
    listed = vpi_backends(vpi)
    names = ', '.join('%s%s' % (n, '' if ok else ' (no)') for n, (ok, _) in listed.items())
    cuda_ok, cuda_detail = listed['CUDA']
    return {'vpi': (True, '%s, backends: %s' % (version, names)),
            'vpi_cuda': (cuda_ok, '%s, CUDA backend: %s' % (version, cuda_detail))}


def _ort_found() -> Dict[str, Tuple[bool, str]]:
    providers, detail = ort_providers()
    listed = '%s, providers: %s' % (detail, ', '.join(providers or []) or 'none')
    return {'onnxruntime': (bool(providers), listed)}


def _ort_works(capability: str, provider: str):
    """Return a prober telling whether a tiny session runs on ``provider``."""
    def probe_it() -> Dict[str, Tuple[bool, str]]:
        from matte_ros import onnx_runtime
        return {capability: onnx_runtime.provider_works(provider)}
    return probe_it


#: capability → the function that probes it (and its siblings).
_PROBERS = {
    'onnxruntime': _ort_found,
    'ort_cuda': _ort_works('ort_cuda', 'CUDAExecutionProvider'),
    'ort_tensorrt': _ort_works('ort_tensorrt', 'TensorrtExecutionProvider'),
    'torch_cuda': lambda: {'torch_cuda': torch_cuda()},
    'vpi': _vpi_found, 'vpi_cuda': _vpi_found,
}


@functools.lru_cache(maxsize=1)
def probe() -> Probe:
    """Return this process's probe; each capability is looked up once, when first asked."""
    return Probe({'cpu': (True, 'always available')}, lazy=True)


# --- choosing -----------------------------------------------------------------------------

def _specs():
    """Return the segmenters' declarations, looked up on first use (importing this is cheap)."""
    from matte_ros.segmenters import registry
    return registry.specs()


def _uses(segmenter: str):
    """Return how ``segmenter`` runs on each backend it declares, best first."""
    spec = _specs().get(segmenter)
    return spec.backends if spec is not None else (CPU,)


def supported(segmenter: str, config: Optional[Mapping[str, Any]] = None) -> Tuple[str, ...]:
    """Return the backends ``segmenter`` can use with these parameter values, best first."""
    return tuple(use.name for use in _uses(segmenter) if not use.excluded_by(config))


def _unsupported_reason(segmenter, requested, config) -> str:
    for use in _uses(segmenter):
        if use.name == requested and use.excluded_by(config):
            return use.excluded_by(config)
    return '%s does not run on %s (supported: %s)' % (
        segmenter, requested, ', '.join(use.name for use in _uses(segmenter)))


def choose(segmenter: str, requested: str, strict: bool = False,
           found: Optional[Probe] = None,
           config: Optional[Mapping[str, Any]] = None) -> Choice:
    """
    Pick the backend ``segmenter`` runs on.

    ``auto`` takes the best backend the segmenter supports whose capability was found
    (never an error), except a backend whose declaration says why ``auto`` skips it
    (:attr:`~matte_ros.segmenters.spec.BackendUse.not_auto`: rvm's TensorRT, whose first
    engine build per resolution takes minutes).  An explicit request that cannot be met
    falls back to cpu with a warning naming what was missing, or raises
    :class:`BackendError` when ``strict``.  ``config`` (parameter values) narrows what is
    supported through each declared backend's ``unless`` (bgsub runs on vpi only with
    ``bgsub.algorithm mog2``).
    """
    found = found or probe()
    names = supported(segmenter, config)
    if requested == 'auto':
        for name in names:
            use = _use(segmenter, name)
            if use is not None and use.not_auto:
                continue
            need = _need(segmenter, name, config)
            if not need or found.has(need):
                return Choice(requested, name)
        return Choice(requested, 'cpu')
    if requested == 'cpu':
        return Choice(requested, 'cpu')
    if requested not in names:
        why = _unsupported_reason(segmenter, requested, config)
    else:
        need = _need(segmenter, requested, config)
        if not need or found.has(need):
            return Choice(requested, requested)
        why = 'backend %s for %s needs %s, which is missing (found: %s)' % (
            requested, segmenter, NEED_TEXT.get(need, need), found.detail(need))
    if strict:
        raise BackendError(why + ' (backend_strict is true)')
    return Choice(requested, 'cpu', why + '; falling back to cpu')


def _use(segmenter: str, backend: str):
    """Return how ``segmenter`` runs on ``backend`` (its BackendUse), or None."""
    for use in _uses(segmenter):
        if use.name == backend:
            return use
    return None


def _need(segmenter: str, backend: str,
          config: Optional[Mapping[str, Any]] = None) -> str:
    """Return the capability ``segmenter`` needs on ``backend`` with ``config`` ('' for none)."""
    use = _use(segmenter, backend)
    return use.capability(config) if use is not None else ''


def wants_gpu_blur(requested: str, found: Optional[Probe] = None) -> bool:
    """Tell whether the composite's blur should run on VPI/CUDA (not for backend cpu)."""
    return requested != 'cpu' and (found or probe()).has('vpi_cuda')

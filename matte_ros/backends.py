"""
Which compute backends exist on this machine, and which one each segmenter gets.

Probing imports the GPU libraries lazily (they exist only on the robot): ONNX
Runtime's execution providers, ``torch.cuda``, and NVIDIA VPI.  The PyPI package
called ``vpi`` is an unrelated Raspberry Pi library, so NVIDIA VPI is recognised by
its API (``vpi.Backend``, ``vpi.BackgroundSubtractor``), not by the module name.
"""

from dataclasses import dataclass
import functools
import importlib
from typing import Dict
from typing import Optional
from typing import Tuple


class BackendError(RuntimeError):
    """The requested backend is missing and ``backend_strict`` forbids a fallback."""


#: Backends each segmenter can run on, best first (what ``auto`` tries).
SUPPORTED: Dict[str, Tuple[str, ...]] = {
    'bgsub': ('vpi', 'cpu'),
    'framediff': ('cpu',),
    'rvm': ('tensorrt', 'cuda', 'cpu'),
    'selfie': ('cpu',),
    'instance': ('cuda', 'cpu'),
}


@dataclass(frozen=True)
class Probe:
    """What was found: backend name → (available, detail)."""

    found: Dict[str, Tuple[bool, str]]

    def available(self, backend: str) -> bool:
        """Tell whether ``backend`` can be used here."""
        return self.found.get(backend, (False, ''))[0]


@dataclass(frozen=True)
class Choice:
    """The backend a segmenter will run on, and why (empty ``warning`` when as asked)."""

    requested: str
    backend: str
    warning: str = ''


def _ort_providers():
    try:
        ort = importlib.import_module('onnxruntime')
    except ImportError as exc:
        return None, 'onnxruntime not importable (%s)' % exc
    return list(ort.get_available_providers()), 'onnxruntime %s' % ort.__version__


def _torch_cuda():
    try:
        torch = importlib.import_module('torch')
    except ImportError:
        return False, 'torch not installed'
    try:
        if torch.cuda.is_available():
            return True, 'torch %s, %d CUDA device(s): %s' % (
                torch.__version__, torch.cuda.device_count(), torch.cuda.get_device_name(0))
    except Exception as exc:  # noqa: B902 - a broken CUDA install must not stop probing
        return False, 'torch %s: CUDA probe failed (%s)' % (torch.__version__, exc)
    return False, 'torch %s without CUDA' % torch.__version__


def nvidia_vpi():
    """Return NVIDIA VPI's module, or None (also when ``vpi`` is PyPI's unrelated package)."""
    try:
        vpi = importlib.import_module('vpi')
    except Exception:  # noqa: B902 - any import failure means "no VPI"
        return None
    if hasattr(vpi, 'Backend') and hasattr(vpi, 'BackgroundSubtractor'):
        return vpi
    return None


@functools.lru_cache(maxsize=1)
def probe() -> Probe:
    """Look for every backend once per process (imports are lazy and cached)."""
    found = {'cpu': (True, 'always available')}
    providers, detail = _ort_providers()
    providers = providers or []
    found['cuda'] = ('CUDAExecutionProvider' in providers,
                     '%s, providers: %s' % (detail, ', '.join(providers) or 'none'))
    found['tensorrt'] = ('TensorrtExecutionProvider' in providers, found['cuda'][1])
    torch_ok, torch_detail = _torch_cuda()
    found['torch_cuda'] = (torch_ok, torch_detail)
    if torch_ok and not found['cuda'][0]:
        found['cuda'] = (True, torch_detail)
    vpi = nvidia_vpi()
    if vpi is None:
        found['vpi'] = (False, 'NVIDIA VPI python module not found')
    else:
        found['vpi'] = (True, 'NVIDIA VPI %s' % getattr(vpi, '__version__', '?'))
    return Probe(found)


def choose(segmenter: str, requested: str, strict: bool = False,
           found: Optional[Probe] = None) -> Choice:
    """
    Pick the backend ``segmenter`` runs on.

    ``auto`` takes the best available one the segmenter supports.  An explicit request
    that cannot be met falls back to cpu with a warning naming what was missing, or
    raises :class:`BackendError` when ``strict``.
    """
    found = found or probe()
    supported = SUPPORTED.get(segmenter, ('cpu',))
    if requested == 'auto':
        for name in supported:
            if found.available(name):
                return Choice(requested, name)
        return Choice(requested, 'cpu')
    if requested in supported and found.available(requested):
        return Choice(requested, requested)
    if requested not in supported:
        why = '%s does not run on %s (supported: %s)' % (
            segmenter, requested, ', '.join(supported))
    else:
        why = 'backend %s not available: %s' % (requested, found.found.get(
            requested, (False, 'unknown backend'))[1])
    if strict:
        raise BackendError(why)
    return Choice(requested, 'cpu', why + '; falling back to cpu')

"""
RVM on TorchScript (``rvm.runtime`` torchscript), derived from the official ONNX model.

No registry ships RVM as TorchScript, so it is made here from the checksummed ONNX file
that :func:`matte_ros.models.locate` verified: the ONNX graph is converted to a torch
module with ``onnx2torch`` and that module is compiled with ``torch.jit.trace``.

**One trace per (height, width, ratio)**: RVM's ``downsample_ratio`` input drives a
Resize whose output size a trace freezes, and the trace also records the frame's size.
The ratio is therefore fixed first, exactly as for TensorRT, with
:func:`matte_ros.segmenters.rvm_model.fixed_ratio_proto` (the ratio becomes a constant of
the graph, rounded to :func:`~matte_ros.segmenters.rvm_model.ratio_tag`'s 6 decimals),
and the trace is taken with full-size zero state tensors
(:func:`~matte_ros.segmenters.rvm_model.state_shapes`), the shapes every later frame
feeds.  A new resolution or ratio gets a new trace.

Traces are kept in memory for the stream (a few of them, so switching back to a recent
size costs nothing) and saved under ``<model cache>/torchscript``
(:func:`matte_ros.models.derived_dir`: never a ``models.model_dir`` outside the user's
cache) as ``<model>.<sha256 prefix>.<W>x<H>.ratio-<r>.<device>.pt``: keyed by the model's
sha256, so another model never reuses them.  A TorchScript archive is code (its graph
runs when called, and its pickled constants are unpickled by ``torch.jit.load``, which
has no ``weights_only`` mode), so a trace is loaded only when this product wrote it:
:func:`matte_ros.models.write_sealed` seals each file with an HMAC keyed by a secret of
the user's cache, and :func:`matte_ros.models.open_sealed` checks it on the descriptor
``torch.jit.load`` then reads.  A file without a matching seal is refused (logged,
naming the file), traced again and replaced; so is one torch cannot read.

Device: ``cpu``; on backends cuda and tensorrt the module and the state go to CUDA when
``torch.cuda.is_available()``, else they stay on the CPU and ``note`` says why.
``Options.half`` (the GPU check's fp16 row) runs the module, the frame and the state in
float16 and returns float32 alpha.
"""

from collections import OrderedDict
import logging
import os
from typing import List
from typing import Optional
from typing import Tuple
import warnings

from matte_ros import models
from matte_ros.segmenters import rvm_model
from matte_ros.segmenters import rvm_runner
from matte_ros.segmenters.base import SegmenterError
import numpy as np

LOG = logging.getLogger(__name__)

#: Traced modules kept in memory per runner (most recently used last).
MEMORY_TRACES = 4
#: Names saved traces in refusals and logs.
WHAT = 'TorchScript trace'


def _import_torch():
    """Return (torch, onnx2torch.convert), or raise SegmenterError saying what is missing."""
    try:
        import torch
    except ImportError as exc:
        raise SegmenterError('rvm.runtime torchscript needs torch (pip install torch): %s'
                             % exc)
    try:
        # onnx2torch imports torchvision (for its NMS converter); beside a CPU torch the
        # PyPI torchvision only imports with the pure-torch operators of torchvision_ops.
        from matte_ros.segmenters import torchvision_ops
        torchvision_ops.import_torchvision()
    except (ImportError, RuntimeError):
        pass  # onnx2torch's own import below reports it
    try:
        from onnx2torch import convert
    except (ImportError, RuntimeError) as exc:
        raise SegmenterError('rvm.runtime torchscript needs onnx2torch (pip install '
                             'onnx2torch): %s' % exc)
    return torch, convert


def cache_dir(model_dir: str) -> str:
    """
    Return the directory of saved TorchScript traces: ``<model cache>/torchscript``.

    ``model_dir`` '' keeps traces in memory only ('' returned); a directory outside the
    user's cache is replaced by the user's own (:func:`matte_ros.models.derived_dir`).
    """
    return models.derived_dir(model_dir, 'torchscript') if model_dir else ''


class TorchScriptRunner(rvm_runner.Runner):
    """
    Run RVM as a traced TorchScript module with the recurrent state as torch tensors.

    ``model`` is the verified ONNX model (its sha256 keys the disk cache); traces are
    saved under ``<model cache>/torchscript`` ('' model cache = memory only).
    :meth:`prepare` makes the module for a frame size and ratio.
    """

    fixed_ratio = True

    def __init__(self, model: rvm_runner.ModelFile, backend: str = 'cpu',
                 options: rvm_runner.Options = rvm_runner.Options()):
        super().__init__(model, backend, options)
        self.torch, self._convert = _import_torch()
        self.model_path = model.path
        self.sha256 = model.sha256
        self.cache_dir = cache_dir(options.model_dir)
        on_gpu = backend in ('cuda', 'tensorrt') and self.torch.cuda.is_available()
        self.device = 'cuda' if on_gpu else 'cpu'
        self.backend = 'cuda' if on_gpu else 'cpu'
        if backend != 'cpu' and not on_gpu:
            self.note = 'torch sees no CUDA device; TorchScript runs on cpu'
        self.half = bool(options.half)
        self.dtype = self.torch.float16 if self.half else self.torch.float32
        self._traces: 'OrderedDict[Tuple[int, int, str], object]' = OrderedDict()
        self.module = None
        self.key: Optional[Tuple[int, int, str]] = None
        #: Traces made (not loaded from memory or disk) by this runner; for tests.
        self.traced = 0
        #: Where the current module came from: 'trace', 'disk' or 'memory'.
        self.source = ''
        # Convert once now (ratio 1, about 0.3 s) so that a model onnx2torch cannot
        # convert fails configure instead of every frame.
        self._converted(1.0)

    def _converted(self, ratio: float):
        """Return the fixed-ratio model converted to torch by onnx2torch, on the device."""
        proto = rvm_model.fixed_ratio_proto(self.model_path, ratio, 'rvm.runtime torchscript')
        try:
            return self._convert(proto).eval().to(self.device, self.dtype)
        except Exception as exc:  # noqa: B902 - onnx2torch raises many unrelated types
            raise SegmenterError('rvm.runtime torchscript: onnx2torch cannot convert %s: '
                                 '%s: %s' % (self.model_path, type(exc).__name__, exc))

    #: Why the recurrent state is reset when another module becomes current.
    change_reason = 'TorchScript module changed'

    def describe(self) -> str:
        """Return the device, precision and the current module's size and ratio."""
        text = 'TorchScript (derived from ONNX via onnx2torch) on %s%s' % (
            self.device, ' in fp16' if self.half else '')
        if self.key is None:
            return text + ' (traced at the first frame, fixed ratio)'
        height, width, tag = self.key
        return text + ' (fixed ratio %s at %dx%d)' % (tag, width, height)

    def trace_path(self, height: int, width: int, ratio: float) -> str:
        """Return the disk cache file of the trace for this size and ratio ('' = none)."""
        if not self.cache_dir:
            return ''
        base = os.path.splitext(os.path.basename(self.model_path))[0]
        name = '%s.%s.%dx%d.ratio-%s.%s%s.pt' % (
            base, self.sha256[:16], width, height, rvm_model.ratio_tag(ratio), self.device,
            '.fp16' if self.half else '')
        return os.path.join(self.cache_dir, name)

    def prepare(self, height: int, width: int, ratio: float) -> bool:
        """Make the module for this size and ratio current; return True when it changed."""
        key = (height, width, rvm_model.ratio_tag(ratio))
        if key == self.key and self.module is not None:
            return False
        module = self._traces.pop(key, None)
        self.source = 'memory'
        if module is None:
            module = self._load_or_trace(height, width, ratio)
        self._traces[key] = module
        while len(self._traces) > MEMORY_TRACES:
            self._traces.popitem(last=False)
        self.module, self.key = module, key
        return True

    def _load_or_trace(self, height: int, width: int, ratio: float):
        path = self.trace_path(height, width, ratio)
        if path and os.path.lexists(path):
            try:
                with models.open_sealed(path, WHAT) as stream:
                    module = self.torch.jit.load(stream, map_location=self.device)
                self.source = 'disk'
                return module.eval()
            except models.DerivedFileError as exc:
                LOG.warning('%s; tracing again', exc)
            except (RuntimeError, OSError, ValueError):
                pass  # from another torch: trace again and replace it
        module = self._trace(height, width, ratio)
        self.source = 'trace'
        if path:
            self._save(module, path)
        return module

    def _trace(self, height: int, width: int, ratio: float):
        """Convert the fixed-ratio ONNX model with onnx2torch and trace it."""
        torch = self.torch
        converted = self._converted(ratio)
        try:
            example = [torch.zeros((1, 3, height, width), device=self.device,
                                   dtype=self.dtype)]
            example += self.zero_state(height, width, ratio)
            with warnings.catch_warnings():
                # onnx2torch's shape arithmetic in Python: exactly what the trace freezes.
                warnings.simplefilter('ignore', torch.jit.TracerWarning)
                warnings.simplefilter('ignore', UserWarning)  # its deprecated indexing
                with torch.no_grad():
                    module = torch.jit.trace(converted, tuple(example), check_trace=False)
        except Exception as exc:  # noqa: B902 - any tracer failure
            raise SegmenterError('rvm.runtime torchscript: tracing %s (converted by '
                                 'onnx2torch) at %dx%d, ratio %s failed: %s: %s'
                                 % (self.model_path, width, height,
                                    rvm_model.ratio_tag(ratio), type(exc).__name__, exc))
        self.traced += 1
        return module.eval()

    def _save(self, module, path: str) -> None:
        """Write the trace atomically and sealed; a failure only skips the disk cache."""
        try:
            models.write_sealed(path, lambda temporary: self.torch.jit.save(module, temporary),
                                'TorchScript trace folder')
        except (models.ModelError, OSError, RuntimeError) as exc:
            LOG.warning('TorchScript trace %s not saved: %s', path, exc)

    def zero_state(self, height: int, width: int, ratio: float) -> List:
        """Return the four zero state tensors of their real shapes, on the device."""
        return [self.torch.zeros(shape, device=self.device, dtype=self.dtype)
                for shape in rvm_model.state_shapes(height, width, ratio)]

    def run(self, src: np.ndarray, state: List, ratio: float = 0.0,
            want_foreground: bool = True):
        """
        Run one frame through the current module.

        ``src`` is the [1, 3, H, W] float32 input, ``state`` four tensors on the device.
        Return (fgr ndarray or None, pha ndarray, successor state tensors on the device);
        the arrays are float32 also in fp16.
        """
        torch = self.torch
        with torch.inference_mode():
            frame = torch.from_numpy(src).to(self.device, self.dtype)
            fgr, pha, *rec = self.module(frame, *state)
            pha = pha.float().cpu().numpy()
            fgr = fgr.float().cpu().numpy() if want_foreground else None
        return fgr, pha, rec

    def close(self) -> None:
        """Drop every traced module (and with them their device memory)."""
        self._traces.clear()
        self.module = None
        self.key = None

"""
RVM on ONNX Runtime's TensorRT provider: the ratio fixed per resolution, engines built aside.

TensorRT needs every tensor size when it builds an engine, and RVM's ratio decides
internal sizes, so the runner runs the fixed-ratio copy of the model
(:func:`matte_ros.segmenters.rvm_model.fixed_ratio_model`) with one optimisation
profile of exactly the stream's input shapes, and keeps the state on the GPU (I/O
binding, full-size zero state: the profile fixes the state's shape).

**Engine cache keyed by shape and ratio**: TensorRT's engine id hashes the model file's
name and graph but not the profile shapes, so each resolution gets its own directory
``<tensorrt.engine_cache>/<W>x<H>/`` holding its fixed-ratio model
(``<model>.ratio-<r>.onnx``) and the engines and timing cache TensorRT writes for it.
Two cameras of different resolutions sharing a cache never overwrite each other.  The
folders are made with :func:`matte_ros.models.make_writable` (inside the model cache,
mode 0700, no symlink out of it), checked again in the build thread before writing.

**Builds are visible**: an engine takes seconds to minutes to build (minutes on a
Jetson) the first time a resolution is seen.  The build runs in a background thread
(session creation plus one warm-up frame, which builds the engine whichever way the
provider defers it); meanwhile frames are **served on CUDA** (else the CPU) by an
interim ONNX Runtime session with the ratio as an input, and :attr:`busy` says
``building TensorRT engine for WxH (N s)``, which the node publishes on
``/diagnostics`` at WARN.  Serving rather than dropping keeps the outputs flowing (a
robot's consumers of the mask do not starve for minutes) at the cost of sharing the GPU
with the builder.  When the engine is ready the runner switches to it and the
segmenter restarts the state (another module); the interim session is then freed.

**Fallback**: when TensorRT is not in the build, or the session dropped it (a missing
``libnvinfer``: ONNX Runtime then carries on without raising), or the build fails, the
runner leaves TensorRT for good: it runs on an ONNX Runtime session on CUDA (else the
CPU) with the ratio as an input, bound to the device that session really runs on, and
``note`` says why.  With ``backend_strict`` it raises SegmenterError instead.
"""

import os
import threading
import time
from typing import Optional
from typing import Tuple

from matte_ros import models
from matte_ros import onnx_runtime
from matte_ros.segmenters import rvm_model
from matte_ros.segmenters import rvm_runner
from matte_ros.segmenters.base import SegmenterError
from matte_ros.segmenters.rvm_onnxruntime import BoundOrtRunner
import numpy as np


def shape_dir(cache: str, height: int, width: int) -> str:
    """Return the engine cache directory of one input resolution: ``<cache>/<W>x<H>``."""
    return os.path.join(cache, '%dx%d' % (width, height))


class _Build:
    """One engine build in a background thread: its key, start time and outcome."""

    def __init__(self, key: Tuple[int, int, str], target):
        self.key = key
        self.started = time.monotonic()
        self.runner: Optional[BoundOrtRunner] = None
        self.error = ''
        self.abandoned = False
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(target,), daemon=True,
                                       name='tensorrt-build-%dx%d' % (key[1], key[0]))
        self.thread.start()

    def abandon(self) -> None:
        """Drop the outcome: a finished build's session is closed, a running one's will be."""
        self.abandoned = True
        if self.done.is_set() and self.runner is not None:
            self.runner.close()
            self.runner = None

    def _run(self, target) -> None:
        try:
            self.runner = target()
        except Exception as exc:  # noqa: B902 - any build failure is reported, not raised
            self.error = '%s: %s' % (type(exc).__name__, exc)
        finally:
            if self.abandoned and self.runner is not None:
                self.runner.close()  # the segmenter was closed during the build
            self.done.set()


class TensorrtRunner(rvm_runner.Runner):
    """RVM on TensorRT, one engine per resolution and ratio (see the module docstring)."""

    fixed_ratio = True
    change_reason = 'TensorRT engine changed'

    def __init__(self, model: rvm_runner.ModelFile, backend: str,
                 options: rvm_runner.Options, device: Optional[str] = None):
        super().__init__(model, backend, options)
        #: Device of the engine's bound state (None: from the session's providers).
        self.device = device
        self._engine: Optional[BoundOrtRunner] = None
        self._key: Optional[Tuple[int, int, str]] = None
        self._build: Optional[_Build] = None
        self._interim: Optional[BoundOrtRunner] = None
        self._fallback: Optional[BoundOrtRunner] = None
        self._serving = None
        self._why = ''
        self._refused = ''
        if onnx_runtime.TENSORRT not in onnx_runtime.available_providers():
            self._leave('%s is not in this onnxruntime build' % onnx_runtime.TENSORRT)
        else:
            self.backend = 'tensorrt'

    # -- what runs ---------------------------------------------------------------------

    @property
    def busy(self) -> str:
        """Return ``building TensorRT engine for WxH (N s)`` while a build runs."""
        build = self._build
        if build is None or build.done.is_set():
            return ''
        return 'building TensorRT engine for %dx%d (%d s)' % (
            build.key[1], build.key[0], time.monotonic() - build.started)

    def describe(self) -> str:
        """Return the engine's session and shape, or what serves meanwhile and why."""
        if self._fallback is not None:
            return '%s (left TensorRT: %s)' % (self._fallback.describe(), self._why)
        if self._engine is not None and self._serving is self._engine:
            height, width, tag = self._key
            return '%s (fixed ratio %s at %dx%d, engine cache %s)' % (
                self._engine.describe(), tag, width, height,
                shape_dir(self.options.engine_cache, height, width))
        if self._interim is not None:
            return '%s; meanwhile %s' % (self.busy or 'TensorRT engine pending',
                                         self._interim.describe())
        return 'TensorRT (engine built at the first frame, fixed ratio)'

    def _set_serving(self, runner) -> bool:
        """Serve frames with ``runner``; True when that changes the module in use."""
        changed = runner is not self._serving
        self._serving = runner
        self.backend = runner.backend if runner is not self._engine else 'tensorrt'
        if runner is self._interim:
            self.note = 'serving on %s while the TensorRT engine is built' % runner.backend
        elif runner is self._engine:
            self.note = ''
        return changed

    def _leave(self, why: str) -> None:
        """Leave TensorRT for good: a CUDA (else CPU) session with the ratio as an input."""
        if self.options.strict:
            self._refused = 'backend tensorrt: %s (backend_strict is true)' % why
            raise SegmenterError(self._refused)
        self._why = why
        self._fallback = self._interim or BoundOrtRunner(self.model, 'cuda', self.options)
        self._interim = None
        self.backend = self._fallback.backend
        self.note = 'backend tensorrt: %s; running on %s' % (why, self.backend)
        if self._fallback.note:
            self.note += ' (%s)' % self._fallback.note
        onnx_runtime.LOG.warning('%s', self.note)

    # -- the protocol ------------------------------------------------------------------

    def prepare(self, height: int, width: int, ratio: float) -> bool:
        """Serve this size with its engine if built, else start its build and serve interim."""
        if self._refused:
            raise SegmenterError(self._refused)
        if self._fallback is not None:
            return self._set_serving(self._fallback)
        key = (height, width, rvm_model.ratio_tag(ratio))
        if key == self._key and self._engine is not None:
            return self._set_serving(self._engine)
        build = self._build
        if build is None or build.key != key:
            if build is not None:
                build.abandon()  # another resolution came before its engine was ready
            self._build = build = _Build(key, lambda: self._build_engine(height, width, ratio))
        if build.done.is_set():
            self._build = None
            if build.runner is None:
                self._leave('TensorRT engine for %dx%d failed: %s' % (width, height,
                                                                      build.error))
                return self._set_serving(self._fallback)
            if self._engine is not None:
                self._engine.close()
            self._engine, self._key = build.runner, key
            if self._interim is not None:
                self._interim.close()
                self._interim = None
            return self._set_serving(self._engine)
        if self._interim is None:
            self._interim = BoundOrtRunner(self.model, 'cuda',
                                           rvm_runner.Options(**dict(
                                               vars(self.options), strict=False)))
        return self._set_serving(self._interim)

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait for a running engine build (tools, tests); True when none is left running."""
        build = self._build
        return build is None or build.done.wait(timeout)

    def _build_engine(self, height: int, width: int, ratio: float) -> BoundOrtRunner:
        """Create the TensorRT session for this shape and run one frame (builds the engine)."""
        directory = models.make_writable(shape_dir(self.options.engine_cache, height, width),
                                         'tensorrt.engine_cache')
        path = rvm_model.fixed_ratio_model(self.model.path, ratio, directory)
        options = rvm_runner.Options(**dict(vars(self.options), full_zero_state=True))
        runner = BoundOrtRunner(self.model, 'tensorrt', options, path=path, ratio_input=False,
                                device=self.device, cache_dir=directory,
                                fp16=self.options.fp16,
                                shapes=rvm_model.input_shapes(height, width, ratio))
        if runner.backend != 'tensorrt':
            note = runner.session_info.reason()
            runner.close()
            raise SegmenterError(note or 'the session does not run on TensorRT')
        src = np.zeros((1, 3, height, width), np.float32)
        runner.run(src, runner.zero_state(height, width, ratio), ratio, False)
        return runner

    def zero_state(self, height: int, width: int, ratio: float):
        """Return the zero state of the module serving now."""
        return self._serving.zero_state(height, width, ratio)

    def run(self, src, state, ratio, want_foreground):
        """Run one frame on the engine, or on what serves while it is built."""
        return self._serving.run(src, state, ratio, want_foreground)

    def close(self) -> None:
        """Free the engine, the interim or fallback session; a running build is abandoned."""
        for runner in (self._engine, self._interim, self._fallback):
            if runner is not None:
                runner.close()
        if self._build is not None:
            self._build.abandon()
        self._engine = self._interim = self._fallback = self._serving = None
        self._build = None
        self._key = None

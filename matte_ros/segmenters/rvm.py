"""
Robust Video Matting (RVM, MobileNetV3) on ONNX Runtime, with its recurrent state in view.

RVM is a recurrent network: besides the frame it takes four hidden tensors ``r1i..r4i``
(ConvGRU states at 1/2 … 1/16 of the downsampled resolution) and returns their
successors ``r1o..r4o``.  The state carries what the network learnt about the scene
(who is foreground, where the background is) from frame to frame; that is what makes
its mattes stable.  Here it is an explicit :class:`RecurrentState` held by the
segmenter:

* it starts as four zero tensors ``[1, 1, 1, 1]`` (the model broadcasts them);
* every frame feeds the current state and stores the returned one;
* **reset policy** — it goes back to zeros on :meth:`RobustVideoMatting.reset`
  (explicit request), on every discontinuity the base class's Continuity detects
  (resolution change, frame_id change, stamp going backwards, and a forward stamp jump
  of more than ``rvm.max_gap`` seconds), and when the effective downsample ratio
  changes (the state's size depends on it).  A state that belongs to another scene
  would smear the old foreground over the new frames for a second or two.

Downsample ratio (``rvm.downsample_ratio``): RVM runs its encoder on the frame scaled by
this ratio and refines back to full resolution.  Its authors advise a downsampled long
side of 256-512 px.  0 selects it automatically: 1 when the long side is at most 512 px,
otherwise 480 / long side (so 0.25 at 1920×1080, 0.375 at 1280×720, 0.562 at 854×480).

Model: ``rvm_mobilenetv3_fp32`` (see :mod:`matte_ros.models`).  Inputs ``src``
[1, 3, H, W] RGB in [0, 1], ``r1i..r4i``, ``downsample_ratio`` [1]; outputs ``fgr``
(foreground colours), ``pha`` (alpha), ``r1o..r4o``.  On CUDA/TensorRT the state and
the ratio stay in GPU memory through I/O binding and only alpha (and ``fgr`` when it
is published) comes back; TensorRT runs a copy of the model with the ratio fixed per
resolution (see :mod:`matte_ros.segmenters.rvm_device`).  On the CPU plain ``run`` is
as fast.  Speed against a straight ONNX Runtime loop: ``tools/bench_rvm.py``.

Runtime (``rvm.runtime``): onnxruntime (above), or torchscript, where torch and
onnx2torch are installed: the same model converted and traced once per resolution and
ratio (see :mod:`matte_ros.segmenters.rvm_torchscript`), the state carried as torch
tensors with the same reset rules; or openvino (CPU), compiled once per resolution and
ratio, in fp32 or (``rvm.precision`` int8) in an int8 model the project derives and
checks itself (:mod:`matte_ros.segmenters.rvm_openvino`, :mod:`.rvm_int8`).  On this
project's development CPU OpenVINO fp32 is 1.07-1.15× a straight ONNX Runtime loop at
the same J, int8 1.5-1.6× but with a J loss that depends on the calibration frames.
"""

from dataclasses import dataclass
import os
from typing import Any
from typing import Dict
from typing import List
from typing import Optional

import cv2
from matte_ros import models
from matte_ros import onnx_runtime
from matte_ros.segmenters import rvm_device
from matte_ros.segmenters import rvm_openvino
from matte_ros.segmenters import rvm_torchscript
from matte_ros.segmenters.base import Matte
from matte_ros.segmenters.base import Segmenter
from matte_ros.segmenters.base import SegmenterError
import numpy as np

#: The registry model this segmenter runs.
MODEL = 'rvm_mobilenetv3_fp32'
#: Long side (px) the automatic downsample ratio aims for above :data:`AUTO_FULL_SIZE`.
AUTO_TARGET = 480
#: Frames whose long side is at most this run at downsample ratio 1.
AUTO_FULL_SIZE = 512
#: ``rvm.runtime`` values.
ONNXRUNTIME = 'onnxruntime'
TORCHSCRIPT = 'torchscript'
OPENVINO = 'openvino'

STATE_INPUTS = ('r1i', 'r2i', 'r3i', 'r4i')
STATE_OUTPUTS = ('r1o', 'r2o', 'r3o', 'r4o')


def engine_cache_dir(config) -> str:
    """Return ``tensorrt.engine_cache``, or ``<model cache>/tensorrt`` when it is empty."""
    path = config.get('tensorrt.engine_cache', '') if config is not None else ''
    if path:
        return os.path.abspath(os.path.expanduser(path))
    return os.path.join(models.model_dir(config), 'tensorrt')


def torchscript_cache_dir(config) -> str:
    """Return the directory of saved TorchScript traces: ``<model cache>/torchscript``."""
    return os.path.join(models.model_dir(config), 'torchscript')


def auto_downsample_ratio(height: int, width: int) -> float:
    """Return RVM's downsample ratio for a frame size (long side into 256-512 px)."""
    long_side = max(height, width)
    if long_side <= AUTO_FULL_SIZE:
        return 1.0
    return AUTO_TARGET / float(long_side)


def downsample_ratio(height: int, width: int, setting: float) -> float:
    """Return the ratio to use: ``setting`` when > 0, else :func:`auto_downsample_ratio`."""
    if setting > 0:
        return float(setting)
    return auto_downsample_ratio(height, width)


@dataclass
class RecurrentState:
    """
    RVM's four ConvGRU hidden tensors, carried from one frame to the next.

    ``zeros()`` is the start-of-stream state.  ``frames`` counts the frames that have
    updated it since the last reset (0 = fresh).  The tensors are NumPy arrays, or
    ONNX Runtime OrtValues that stay in GPU memory when the session runs on CUDA or
    TensorRT (I/O binding: no copy to the host and back per frame), or torch tensors
    on the TorchScript runtime.
    """

    r1: Any
    r2: Any
    r3: Any
    r4: Any
    frames: int = 0

    @classmethod
    def zeros(cls) -> 'RecurrentState':
        """Return the initial state: four [1, 1, 1, 1] zero tensors (broadcast by RVM)."""
        return cls(*(np.zeros((1, 1, 1, 1), np.float32) for _ in range(4)))

    def feed(self) -> Dict[str, np.ndarray]:
        """Return the state as the model's ``r1i..r4i`` inputs."""
        return dict(zip(STATE_INPUTS, (self.r1, self.r2, self.r3, self.r4)))

    def tensors(self) -> List[Any]:
        """Return the four tensors in input order."""
        return [self.r1, self.r2, self.r3, self.r4]

    def advanced(self, tensors: List[Any]) -> 'RecurrentState':
        """Return the successor state from the model's ``r1o..r4o`` outputs."""
        return RecurrentState(*tensors, frames=self.frames + 1)


class RobustVideoMatting(Segmenter):
    """
    Segmenter ``rvm``: alpha matte and foreground colours from RVM MobileNetV3.

    The model comes from :func:`matte_ros.models.locate` (``models.*`` parameters);
    the ONNX Runtime providers from the backend (cpu, cuda, tensorrt; see
    :mod:`matte_ros.onnx_runtime`).  ``runtime_info`` (one line) and ``session_info``
    (providers in use, those missing) say what actually runs.  With ``rvm.runtime``
    torchscript a :class:`~matte_ros.segmenters.rvm_torchscript.TorchScriptRunner` runs
    the frames instead (``session`` and ``session_info`` are None).
    """

    name = 'rvm'
    #: ONNX Runtime intra-op threads (0 = one per physical core) and spin-waiting;
    #: tuning knobs for benchmarks (tools/bench_rvm.py), not parameters.
    threads = 0
    spinning = True
    #: Run through I/O binding even on the CPU (it is always used on CUDA/TensorRT).
    io_binding = False
    #: Start the state as full-size zeros on the device instead of [1, 1, 1, 1]
    #: (always on TensorRT, whose engine profile fixes the state's shape).
    full_zero_state = False
    #: Device of the TensorRT path's bound state (tests run that path's logic on 'cpu').
    trt_device = 'cuda'
    #: True while :meth:`_settle` runs the first frame again.
    _settling = False

    def __init__(self, config: Dict[str, Any], backend: str = 'cpu'):
        super().__init__(config, backend)
        self.model_path = models.locate(MODEL, config)
        self.engine_cache = engine_cache_dir(config)
        self._runner: Optional[rvm_device.BoundRunner] = None
        self._shape_key = None
        #: Why rvm runs on another backend than asked ('' when as asked).
        self.warning = ''
        strict = bool(config.get('backend_strict', False))
        self.state = RecurrentState.zeros()
        self.ratio: Optional[float] = None
        self._src: Optional[np.ndarray] = None  # preallocated [1, 3, H, W] input
        self.torchscript: Optional[rvm_torchscript.TorchScriptRunner] = None
        self.openvino: Optional[rvm_openvino.OpenVinoRunner] = None
        runtime = config.get('rvm.runtime', ONNXRUNTIME)
        precision = config.get('rvm.precision', rvm_openvino.FP32)
        if precision != rvm_openvino.FP32 and runtime != OPENVINO:
            raise SegmenterError('rvm.precision %s needs rvm.runtime openvino (runtime is %s)'
                                 % (precision, runtime))
        if runtime == TORCHSCRIPT:
            self._init_torchscript(config, backend)
            return
        if runtime == OPENVINO:
            self._init_openvino(config, backend, precision)
            return
        self.fixed_ratio = (backend == 'tensorrt' and onnx_runtime.TENSORRT
                            in onnx_runtime.available_providers())
        if self.fixed_ratio:
            # The engine needs the ratio and resolution: built at the first frame.
            self.session = None
            self.session_info = onnx_runtime.SessionInfo(
                backend, [onnx_runtime.TENSORRT, onnx_runtime.CUDA, onnx_runtime.CPU], [],
                self.threads)
        else:
            self.session, self.session_info = onnx_runtime.create_session(
                self.model_path, backend, strict=strict, threads=self.threads,
                spinning=self.spinning)
        self._output_names = ['fgr', 'pha'] + list(STATE_OUTPUTS)
        self.runtime_info = self.session_info.summary()
        if self.fixed_ratio:
            self.runtime_info += ' (engine built at the first frame, fixed ratio)'
        on_gpu = self.session_info.providers[0] in (onnx_runtime.CUDA, onnx_runtime.TENSORRT)
        self.state_device = 'cuda' if on_gpu else ('cpu' if self.io_binding else None)
        if self.state_device is not None and not self.fixed_ratio:
            self._runner = rvm_device.BoundRunner(self.session, self.state_device)

    def _init_torchscript(self, config, backend: str) -> None:
        """Set up the TorchScript runtime (SegmenterError when torch or onnx2torch lack)."""
        self.fixed_ratio = False
        self.session = None
        self.session_info = None
        self.torchscript = rvm_torchscript.TorchScriptRunner(
            self.model_path, models.get(MODEL).sha256, backend, torchscript_cache_dir(config))
        self.state_device = self.torchscript.device
        self.runtime_info = ('TorchScript (derived from ONNX via onnx2torch) on %s '
                             '(traced at the first frame, fixed ratio)'
                             % self.torchscript.device)
        if backend != 'cpu' and self.torchscript.device == 'cpu':
            self.backend = 'cpu'
            self.warning = 'torch sees no CUDA device; TorchScript runs on cpu'

    def _init_openvino(self, config, backend: str, precision: str) -> None:
        """Set up the OpenVINO runtime (SegmenterError when it or the int8 model lacks)."""
        self.fixed_ratio = False
        self.session = None
        self.session_info = None
        self.state_device = None
        sha256 = models.get(MODEL).sha256
        directory = rvm_openvino.openvino_dir(config)
        alpha_only = not self._want_foreground()
        self.openvino = rvm_openvino.OpenVinoRunner(self.model_path, sha256, precision,
                                                    directory, self.threads, alpha_only)
        if precision == rvm_openvino.INT8:
            # Fail configure, not every frame, when no derived model can serve.
            fixed = float(config.get('rvm.downsample_ratio', 0.0))
            if fixed > 0:
                rvm_openvino.int8_model(self.model_path, sha256, fixed, directory, alpha_only)
            elif not rvm_openvino.derived_ratios(self.model_path, sha256, directory,
                                                 alpha_only):
                raise SegmenterError(
                    'rvm.precision int8: no int8 model derived yet in %s; derive one with '
                    '`%s`' % (directory, rvm_openvino.derive_command(alpha_only=alpha_only)))
        self.runtime_info = 'OpenVINO %s on cpu (compiled at the first frame, fixed ratio)' % (
            precision)
        if backend != 'cpu':
            self.backend = 'cpu'
            self.warning = 'rvm.runtime openvino runs on the CPU; backend %s not used' % backend

    @staticmethod
    def _max_gap(config) -> float:
        """Reset the state when the stamp jumps forward by more than ``rvm.max_gap`` s."""
        return float(config.get('rvm.max_gap', 0.0))

    def reset(self, reason: str = 'requested') -> None:
        """Forget the recurrent state (back to zeros)."""
        super().reset(reason)
        self.state = RecurrentState.zeros()

    def close(self) -> None:
        """
        Release the session and every device buffer (state, ratio, TensorRT engine).

        Deactivation only calls :meth:`reset`, which already drops the device-resident
        state (it becomes host zeros); ``close`` (cleanup, shutdown, reload) also drops
        the session, whose CUDA/TensorRT memory ONNX Runtime frees with it.
        """
        if self._runner is not None:
            self._runner.close()
        self._runner = None
        if self.torchscript is not None:
            self.torchscript.close()
        if self.openvino is not None:
            self.openvino.close()
        self.session = None
        self.state = RecurrentState.zeros()
        self._src = None

    def _want_foreground(self) -> bool:
        """Copy ``fgr`` back from the GPU, and convert it to BGR, only when it is published."""
        return bool(self.config.get('publish_foreground'))

    def _settle(self, frame: np.ndarray) -> None:
        """
        Let a fresh recurrent state settle on the first frame after a reset.

        Runs this frame ``rvm.settle_frames`` extra times, feeding the state back,
        before the run whose matte is published, so the state has converged on the
        frame instead of starting from zeros; the cost is bounded (that many extra
        inferences per reset, none between resets).  It cannot give back the motion
        history a reset drops: docs/quality.md measures what it recovers.
        """
        self._settling = True
        try:
            for _ in range(int(self.config.get('rvm.settle_frames', 0))):
                self._segment(frame)
        finally:
            self._settling = False

    def _segment(self, frame: np.ndarray) -> Matte:
        if self.state.frames == 0 and not self._settling:
            self._settle(frame)
        height, width = frame.shape[:2]
        ratio = downsample_ratio(height, width, float(self.config.get('rvm.downsample_ratio',
                                                                      0.0)))
        if self.fixed_ratio or self.torchscript or self.openvino:
            ratio = float(rvm_device.ratio_tag(ratio))
        if self.ratio is not None and ratio != self.ratio and self.state.frames:
            self.reset('downsample ratio changed')
        self.ratio = ratio
        src = self._to_src(frame)
        if self.fixed_ratio:
            self._ensure_engine(height, width, ratio)
        per_size = self.torchscript or self.openvino
        if per_size is not None:
            fgr, pha, rec = self._run_per_size(per_size, src, height, width, ratio)
        elif self._runner is None:
            feed = self.state.feed()
            feed['src'] = src
            feed['downsample_ratio'] = np.array([ratio], np.float32)
            fgr, pha, *rec = self.session.run(self._output_names, feed)
        else:
            if self.state.frames == 0 and (self.fixed_ratio or self.full_zero_state):
                self.state = RecurrentState(*self._runner.zero_state(height, width, ratio))
            fgr, pha, rec = self._runner.run(src, self.state.tensors(), ratio,
                                             self._want_foreground())
        self.state = self.state.advanced(rec)
        # fgr to BGR costs 0.6 ms at 640x480, 1.7 ms at 1280x720: only for ~/foreground
        return Matte(alpha=np.clip(pha[0, 0], 0.0, 1.0),
                     foreground=fgr_to_bgr(fgr) if fgr is not None and self._want_foreground()
                     else None)

    def _run_per_size(self, runner, src: np.ndarray, height: int, width: int, ratio: float):
        """
        Run one frame on a runner built per size and ratio (TorchScript, OpenVINO).

        A new size or ratio makes the runner prepare another module (and resets the
        state if the stream had one); ``runtime_info`` then says which.
        """
        if runner.prepare(height, width, ratio):
            self.runtime_info = runner.describe(height, width, ratio)
            if self.state.frames:
                self.reset(runner.change_reason)
        if self.state.frames == 0:
            self.state = RecurrentState(*runner.zero_state(height, width, ratio))
        return runner.run(src, self.state.tensors(), self._want_foreground())

    def _ensure_engine(self, height: int, width: int, ratio: float) -> None:
        """
        Build (or reuse) the TensorRT session for this resolution and fixed ratio.

        See :mod:`matte_ros.segmenters.rvm_device`: the ratio is baked into a copy of
        the model and the engine has one profile of exactly these input shapes.
        """
        key = (height, width, ratio)
        if key == self._shape_key and self._runner is not None:
            return
        if self._runner is not None:
            self._runner.close()
            self._runner = None
            self.session = None
        strict = bool(self.config.get('backend_strict', False))
        try:
            path = rvm_device.fixed_ratio_model(self.model_path, ratio, self.engine_cache)
            self.session, self.session_info = onnx_runtime.create_session(
                path, 'tensorrt', strict=strict, threads=self.threads, spinning=self.spinning,
                cache_dir=self.engine_cache, fp16=bool(self.config.get('tensorrt.fp16', True)),
                shapes=rvm_device.input_shapes(height, width, ratio))
        except (SegmenterError, OSError) as exc:
            if strict:
                raise
            self._leave_tensorrt('TensorRT engine for %dx%d failed: %s' % (width, height, exc))
            return
        self.runtime_info = self.session_info.summary() + ' (fixed ratio %s at %dx%d)' % (
            rvm_device.ratio_tag(ratio), width, height)
        self._runner = rvm_device.BoundRunner(self.session, self.trt_device, ratio_input=False)
        self._shape_key = key
        self.state = RecurrentState.zeros()

    def _leave_tensorrt(self, why: str) -> None:
        """Continue on CUDA (else CPU) with a runtime ratio when TensorRT cannot be used."""
        self.fixed_ratio = False
        self.session, self.session_info = onnx_runtime.create_session(
            self.model_path, 'cuda', threads=self.threads, spinning=self.spinning)
        on_gpu = self.session_info.providers[0] == onnx_runtime.CUDA
        self.backend = 'cuda' if on_gpu else 'cpu'
        self.state_device = 'cuda' if on_gpu else ('cpu' if self.io_binding else None)
        self._runner = (rvm_device.BoundRunner(self.session, self.state_device)
                        if self.state_device else None)
        self._shape_key = None
        self.state = RecurrentState.zeros()
        self.warning = '%s; running on %s' % (why, self.backend)
        self.runtime_info = self.session_info.summary() + ' (%s)' % self.warning

    def _to_src(self, frame: np.ndarray) -> np.ndarray:
        """
        Return the frame as ``src`` (RGB, [0, 1], NCHW) in a buffer reused across frames.

        One single-threaded NumPy pass (about 2.4 ms at 854×480 here, against 7 ms for
        cv2.dnn.blobFromImage, whose worker threads also compete with ONNX Runtime's).
        """
        height, width = frame.shape[:2]
        if self._src is None or self._src.shape[2:] != (height, width):
            self._src = np.empty((1, 3, height, width), np.float32)
        return to_src(frame, self._src)


def to_src(frame: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
    """
    Return a BGR uint8 frame as RVM's ``src``: [1, 3, H, W] RGB float32 in [0, 1].

    Written into ``out`` when given (a [1, 3, H, W] float32 buffer), else a new array.
    The int8 derivation calibrates on exactly what the segmenter feeds.
    """
    if out is None:
        out = np.empty((1, 3) + frame.shape[:2], np.float32)
    np.multiply(frame[:, :, ::-1].transpose(2, 0, 1), np.float32(1.0 / 255.0),
                out=out[0], casting='unsafe')
    return out


def fgr_to_bgr(fgr: np.ndarray) -> np.ndarray:
    """Return RVM's ``fgr`` [1, 3, H, W] RGB in [0, 1] as an H×W×3 BGR uint8 image."""
    planes = [fgr[0, 2], fgr[0, 1], fgr[0, 0]]
    return cv2.convertScaleAbs(cv2.merge(planes), alpha=255.0)

"""
Robust Video Matting (RVM, MobileNetV3): its recurrent state in view, the runtimes behind it.

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
  would smear the old foreground over the new frames for a second or two;
* **after a reset** the fresh state settles before the first matte is published:
  ``rvm.settle_frames`` extra inferences on zoomed copies of that frame
  (:meth:`RobustVideoMatting._settle`), so the frames after a reset score about as
  they would have without it (docs/quality.md, "rvm after a reset").

Downsample ratio (``rvm.downsample_ratio``): RVM runs its encoder on the frame scaled by
this ratio and refines back to full resolution.  Its authors advise a downsampled long
side of 256-512 px.  0 selects it automatically: 1 when the long side is at most 512 px,
otherwise 480 / long side (so 0.25 at 1920×1080, 0.375 at 1280×720, 0.562 at 854×480).

Model: ``rvm_mobilenetv3_fp32`` (see :mod:`matte_ros.models`); its inputs and outputs
are named in :mod:`matte_ros.segmenters.rvm_model`.

Runtimes (``rvm.runtime`` and the backend): each is a
:class:`~matte_ros.segmenters.rvm_runner.Runner` that only runs frames; this segmenter
keeps the state and the policy above.  onnxruntime on cpu: plain ``session.run``
(:mod:`.rvm_onnxruntime`); on cuda: I/O binding with the state on the GPU; on tensorrt:
the ratio fixed per resolution, engines built in the background while CUDA serves
(:mod:`.rvm_tensorrt`); torchscript: the model converted with onnx2torch and traced per
resolution and ratio (:mod:`.rvm_torchscript`); openvino (CPU): compiled per resolution
and ratio, fp32 or a derived int8 model (:mod:`.rvm_openvino`, :mod:`.rvm_int8`).
:meth:`RobustVideoMatting.status` and :meth:`~RobustVideoMatting.describe` say what
actually runs, read live (a TensorRT fallback at the first frame shows at once).
Speed against RVM's documented loop (:func:`.rvm_model.reference_loop`):
``tools/bench_rvm.py``.
"""

from dataclasses import dataclass
import os
from typing import Any
from typing import Dict
from typing import List
from typing import Optional

import cv2
from matte_ros import models
from matte_ros import shared_models
from matte_ros.params import BOOL
from matte_ros.params import FLOAT
from matte_ros.params import INT
from matte_ros.params import Param
from matte_ros.params import STRING
from matte_ros.segmenters import rvm_model
from matte_ros.segmenters import rvm_runner
from matte_ros.segmenters.base import Matte
from matte_ros.segmenters.base import Segmenter
from matte_ros.segmenters.base import SegmenterError
from matte_ros.segmenters.base import Status
from matte_ros.segmenters.spec import BackendUse
from matte_ros.segmenters.spec import CPU
from matte_ros.segmenters.spec import SegmenterSpec
from matte_ros.segmenters.spec import Variant
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
FP32 = rvm_runner.FP32


#: The parameter that names the TensorRT engine cache (its rule: :func:`engine_cache_refusal`).
ENGINE_CACHE = 'tensorrt.engine_cache'


def engine_cache_dir(config) -> str:
    """
    Return ``tensorrt.engine_cache``, or ``<model cache>/tensorrt`` when it is empty.

    The model cache is ``models.model_dir`` when that lies inside the user's cache, else
    the user's own (a read-only ``models.model_dir`` elsewhere is never written).  The
    folder is not created here: :func:`make_engine_cache` does it, inside the cache only.
    """
    path = config.get(ENGINE_CACHE, '') if config is not None else ''
    if path:
        return os.path.abspath(os.path.expanduser(path))
    return models.derived_dir(config, 'tensorrt')


def make_engine_cache(config) -> str:
    """Create the engine cache folder (inside the model cache, mode 0700); return it."""
    return models.make_writable(engine_cache_dir(config), ENGINE_CACHE)


def engine_cache_refusal(value: str) -> str:
    """
    Return why ``tensorrt.engine_cache`` may not be ``value`` ('' when it may).

    TensorRT writes engines there, so the value follows the writing rule of the model
    cache (:func:`matte_ros.models.check_writable`): inside it, no symlink out of it,
    never /proc, /sys or /dev.  Checked when the value is set and again at the write.
    """
    if not value:
        return ''
    try:
        models.check_writable(value, ENGINE_CACHE)
    except models.ModelError as exc:
        return str(exc)
    return ''


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
    updated it since the last reset (0 = fresh).  The tensors are whatever the runner
    returns: NumPy arrays, ONNX Runtime OrtValues kept in GPU memory (I/O binding), or
    torch tensors (TorchScript).
    """

    r1: Any
    r2: Any
    r3: Any
    r4: Any
    frames: int = 0

    @classmethod
    def zeros(cls) -> 'RecurrentState':
        """Return the initial state: four [1, 1, 1, 1] zero tensors (broadcast by RVM)."""
        return cls(*rvm_model.zero_state())

    def feed(self) -> Dict[str, Any]:
        """Return the state as the model's ``r1i..r4i`` inputs."""
        return dict(zip(rvm_model.STATE_INPUTS, self.tensors()))

    def tensors(self) -> List[Any]:
        """Return the four tensors in input order."""
        return [self.r1, self.r2, self.r3, self.r4]

    def advanced(self, tensors: List[Any]) -> 'RecurrentState':
        """Return the successor state from the model's ``r1o..r4o`` outputs."""
        return RecurrentState(*tensors, frames=self.frames + 1)


class RobustVideoMatting(Segmenter):
    """
    Segmenter ``rvm``: alpha matte and foreground colours from RVM MobileNetV3.

    The model comes from :func:`matte_ros.models.locate` (``models.*`` parameters); the
    runner from ``rvm.runtime`` and the backend (:mod:`.rvm_runner`).  The keyword
    arguments are the benchmarks' tuning knobs, not parameters: ONNX Runtime ``threads``
    (0 = one per physical core) and ``spinning``; ``io_binding`` runs ONNX Runtime through
    I/O binding even on the CPU; ``full_zero_state`` starts from full-size zero tensors;
    ``half`` runs TorchScript in fp16.
    """

    name = 'rvm'
    #: Full-resolution float32 source, foreground and alpha with their resized copies
    #: (~48 B/px); the model, its recurrent state and runtime arenas (~200 MB).
    bytes_per_pixel = 48
    fixed_bytes = 200 * 1024 * 1024
    #: The model's activations per frame, per pixel of the downsampled frame it works
    #: on: ~600 B (peak RSS of one frame at ratio 1.0: +404 MB at 1280×720, +1172 MB at
    #: 1920×1080; tools/bench_rvm_batch.py at 640×480, ratio 0.75: +136 MiB for each
    #: further frame of a batch, full-resolution copies included).
    MODEL_BYTES = 600

    @classmethod
    def memory_bytes(cls, config: Dict[str, Any], pixels: int) -> int:
        """
        Return the need of one camera's frames, counting the largest batch it may lead.

        Per frame: ``bytes_per_pixel`` at full resolution and ``MODEL_BYTES`` per pixel
        of the downsampled frame; the frames are those of a batch this camera leads:
        ``rvm.batch_max``, or as many as the process has cameras
        (:data:`matte_ros.shared_models.CAMERAS`) if fewer, on ONNX Runtime's CPU runner
        (the only one that batches; backend ``auto`` is counted as if it ran there), else
        one.  A single-camera node never batches.  The model's working size is the
        downsampled frame:
        ``pixels × ratio²`` for a set ratio; with the automatic ratio the long side is
        at most ``AUTO_TARGET``, so at most a square of it.
        """
        pixels = int(pixels)
        setting = float(config.get('rvm.downsample_ratio', 0.0) or 0.0)
        if setting > 0:
            model_pixels = int(pixels * setting * setting)
        else:
            model_pixels = min(pixels, AUTO_TARGET * AUTO_TARGET)
        frames = cls.batch_frames(config)
        return cls.fixed_bytes + frames * (cls.bytes_per_pixel * pixels
                                           + cls.MODEL_BYTES * model_pixels)

    @staticmethod
    def batch_frames(config: Dict[str, Any]) -> int:
        """Return the frames of the largest batch a camera with ``config`` leads."""
        batching = (config.get('rvm.runtime', ONNXRUNTIME) == ONNXRUNTIME
                    and config.get('backend', 'cpu') in ('cpu', 'auto'))
        if not batching:
            return 1
        return max(1, min(int(config.get('rvm.batch_max', 1)), shared_models.CAMERAS))

    @classmethod
    def memory_hint(cls, config: Dict[str, Any]) -> str:
        """Return what the need counts beyond one frame ('' when nothing), for refusals."""
        frames = cls.batch_frames(config)
        if frames <= 1:
            return ''
        return ('a batch of %d frames: rvm.batch_max %d, %d cameras in this process'
                % (frames, int(config['rvm.batch_max']), shared_models.CAMERAS))
    #: True while :meth:`_settle` runs the first frame again.
    _settling = False

    def __init__(self, config: Dict[str, Any], backend: str = 'cpu', *, threads: int = 0,
                 spinning: bool = True, io_binding: bool = False,
                 full_zero_state: bool = False, half: bool = False):
        super().__init__(config, backend)
        self.runner: Optional[rvm_runner.Runner] = None
        self.state = RecurrentState.zeros()
        self.ratio: Optional[float] = None
        self._src: Optional[np.ndarray] = None  # preallocated [1, 3, H, W] input
        runtime = config['rvm.runtime']
        precision = config['rvm.precision']
        if precision != FP32 and runtime != OPENVINO:
            raise SegmenterError('rvm.precision %s needs rvm.runtime openvino (runtime is %s)'
                                 % (precision, runtime))
        self.model_path = models.locate(MODEL, config)
        model = rvm_runner.ModelFile(self.model_path, models.get(MODEL).sha256)
        options = rvm_runner.Options(
            threads=threads, spinning=spinning,
            strict=bool(config['backend_strict']),
            alpha_only=not self._want_foreground(), model_dir=models.model_dir(config),
            engine_cache=make_engine_cache(config) if backend == 'tensorrt' else '',
            fp16=bool(config['tensorrt.fp16']), precision=precision,
            ratio=float(config['rvm.downsample_ratio']), half=half,
            io_binding=io_binding, full_zero_state=full_zero_state,
            batch_max=int(config['rvm.batch_max']))
        self.runner = rvm_runner.create(runtime, backend, model, options,
                                        cache=shared_models.CACHE)

    # -- what runs ---------------------------------------------------------------------

    @property
    def backend(self) -> str:
        """Return the backend in use: the runner's, read live (it may fall back)."""
        return self.runner.backend if self.runner is not None else self._requested

    @backend.setter
    def backend(self, value: str) -> None:
        self._requested = value

    @property
    def warning(self) -> str:
        """Return why rvm runs on another backend than asked ('' when as asked)."""
        return self.runner.note if self.runner is not None else ''

    def status(self) -> Status:
        """Return the runner's backend, note and busy line, as they are now."""
        if self.runner is None:
            return Status(self._requested)
        return Status(self.runner.backend, self.runner.note, self.runner.busy)

    def describe(self) -> str:
        """Return what runs, in one line (library, providers or device, model, size)."""
        return self.runner.describe() if self.runner is not None else 'rvm (closed)'

    # -- state policy ------------------------------------------------------------------

    @staticmethod
    def _max_gap(config) -> float:
        """Reset the state when the stamp jumps forward by more than ``rvm.max_gap`` s."""
        return float(config['rvm.max_gap'])

    def reset(self, reason: str = 'requested') -> None:
        """Forget the recurrent state (back to host zeros; device tensors are dropped)."""
        super().reset(reason)
        self.state = RecurrentState.zeros()

    def close(self) -> None:
        """
        Release the runner and every device buffer (state, ratio, TensorRT engine).

        Deactivation only calls :meth:`reset`, which already drops the device-resident
        state; ``close`` (cleanup, shutdown, reload) also drops the runner's session or
        module, whose device memory goes with it.
        """
        if self.runner is not None:
            self.runner.close()
        self.state = RecurrentState.zeros()
        self._src = None

    def _want_foreground(self) -> bool:
        """Copy ``fgr`` back from the GPU, and convert it to BGR, only when it is published."""
        return bool(self.config.get('publish_foreground'))

    def _ratio_for(self, height: int, width: int) -> float:
        """Return this frame's ratio (rounded to the file-name tag for fixed-ratio runners)."""
        ratio = downsample_ratio(height, width,
                                 float(self.config['rvm.downsample_ratio']))
        if self.runner.fixed_ratio:
            ratio = float(rvm_model.ratio_tag(ratio))
        return ratio

    def _settle(self, frame: np.ndarray) -> None:
        """
        Let a fresh recurrent state settle on the first frame after a reset.

        Before the run whose matte is published, the state runs ``rvm.settle_frames``
        (K) extra inferences, each at the frame's own size and downsample ratio, so K
        extra inferences per reset and none between resets.  Run k of K (k = K … 1) sees
        the frame scaled about its centre by ``1 + k × rvm.settle_zoom`` (cropped to the
        frame size): a short synthetic camera move that ends on the real frame.

        Why a move and not the frame K times: what a reset takes away is the evidence
        the state gathered over many frames of a moving scene (a limb half hidden in
        spray, say), and the same frame again adds no new evidence: it recovers almost
        nothing (docs/quality.md, "rvm after a reset").  Zoomed copies show the same
        scene at several scales and positions, as a moving camera would, so the state
        integrates several views; only the current frame is used, so a reset still
        forgets everything before it.
        ``rvm.settle_zoom`` 0 repeats the frame itself.
        """
        count = int(self.config['rvm.settle_frames'])
        zoom = float(self.config['rvm.settle_zoom'])
        self._settling = True
        try:
            for k in range(count, 0, -1):
                self._segment(zoomed(frame, 1.0 + k * zoom) if zoom else frame)
        finally:
            self._settling = False

    def _segment(self, frame: np.ndarray) -> Matte:
        height, width = frame.shape[:2]
        ratio = self._ratio_for(height, width)
        if self.ratio is not None and ratio != self.ratio and self.state.frames:
            self.reset('downsample ratio changed')
        self.ratio = ratio
        if self.runner.prepare(height, width, ratio) and self.state.frames:
            self.reset(self.runner.change_reason)
        if self.state.frames == 0 and not self._settling:
            self._settle(frame)   # every fresh state, whichever reset made it
        src = self._to_src(frame)
        if self.state.frames == 0:
            fgr, pha, rec = self._run_fresh(src, height, width, ratio)
        else:
            fgr, pha, rec = self._run(src, ratio)
        self.state = self.state.advanced(rec)
        # fgr to BGR costs 0.6 ms at 640x480, 1.7 ms at 1280x720: only for ~/foreground
        return Matte(alpha=np.clip(pha[0, 0], 0.0, 1.0),
                     foreground=fgr_to_bgr(fgr) if fgr is not None and self._want_foreground()
                     else None)

    def _run_fresh(self, src: np.ndarray, height: int, width: int, ratio: float):
        """
        Run the first frame of a fresh state (``state.frames == 0``).

        The one place where a stream (re)starts: after construction, a reset, or another
        module.  The runner's zero state replaces the host zeros (full-size device tensors
        where the runner needs them).
        """
        self.state = RecurrentState(*self.runner.zero_state(height, width, ratio))
        return self._run(src, ratio)

    def _run(self, src: np.ndarray, ratio: float):
        """Run one frame with the current state; return (fgr, pha, successor tensors)."""
        return self.runner.run(src, self.state.tensors(), ratio, self._want_foreground())

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


def zoomed(frame: np.ndarray, scale: float) -> np.ndarray:
    """Return ``frame`` scaled by ``scale`` about its centre, at its own size (edges reflected)."""
    height, width = frame.shape[:2]
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    matrix = cv2.getRotationMatrix2D(centre, 0.0, scale)
    return cv2.warpAffine(frame, matrix, (width, height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def fgr_to_bgr(fgr: np.ndarray) -> np.ndarray:
    """Return RVM's ``fgr`` [1, 3, H, W] RGB in [0, 1] as an H×W×3 BGR uint8 image."""
    planes = [fgr[0, 2], fgr[0, 1], fgr[0, 0]]
    return cv2.convertScaleAbs(cv2.merge(planes), alpha=255.0)


def _tensorrt_unless(config) -> str:
    """Say why backend tensorrt cannot run these values ('' when it can)."""
    runtime = config.get('rvm.runtime', ONNXRUNTIME)
    if runtime == ONNXRUNTIME:
        return ''
    return ('rvm.runtime %s has no TensorRT path (TensorRT runs through ONNX Runtime: '
            'rvm.runtime onnxruntime)' % runtime)


def _cuda_unless(config) -> str:
    """Say why backend cuda cannot run these values ('' when it can)."""
    if config.get('rvm.runtime', ONNXRUNTIME) != OPENVINO:
        return ''
    return 'rvm.runtime openvino runs on the CPU only'


def _cuda_need(config) -> str:
    """Return what rvm on cuda needs: torch's CUDA for TorchScript, else ONNX Runtime's."""
    return 'torch_cuda' if config.get('rvm.runtime') == TORCHSCRIPT else 'ort_cuda'


SPEC = SegmenterSpec(
    name='rvm',
    summary='Robust Video Matting, recurrent',
    description='Robust Video Matting (MobileNetV3) on ONNX Runtime, OpenVINO (fp32 or a '
                'derived int8) or TorchScript (`rvm.runtime`)',
    state='four ConvGRU states',
    factory=RobustVideoMatting,
    params=(
        Param('rvm.downsample_ratio', FLOAT, 0.0,
              'Downsample ratio inside RVM; 0 picks it so the long side falls in 256-512 px.',
              low=0.0, high=1.0),
        Param('rvm.max_gap', FLOAT, 1.0,
              'Reset the recurrent state when the stamp jumps forward by more than this (s).',
              low=0.0, high=3600.0),
        Param('rvm.runtime', STRING, 'onnxruntime',
              'Runtime of rvm: onnxruntime; torchscript (needs torch and onnx2torch; traced '
              'from the checksummed ONNX model once per resolution and ratio); or openvino '
              '(CPU, compiled once per resolution and ratio; needed for rvm.precision int8).',
              choices=rvm_runner.runtimes(), reload=True),
        Param('rvm.settle_frames', INT, 3,
              'rvm: extra inferences on the first frame after a reset (zoomed copies, see '
              'rvm.settle_zoom), so the recurrent state settles before a matte is published; '
              'costs that many inferences per reset, none between resets.',
              low=0, high=8),
        Param('rvm.settle_zoom', FLOAT, 0.02,
              'rvm: settle run k of rvm.settle_frames (k = K … 1) sees the first frame scaled '
              'by 1 + k × this about its centre (a synthetic camera move ending on the real '
              'frame); 0 runs the frame itself again.',
              low=0.0, high=0.1),
        Param('rvm.precision', STRING, 'fp32',
              'Precision of rvm: fp32, or int8 (rvm.runtime openvino only; runs the model '
              '`matte-ros models derive-int8` derived for the ratio in use).',
              choices=(FP32, rvm_runner.INT8), reload=True),
        Param('rvm.batch_max', INT, 2,
              'rvm with several cameras in one process (matte_multi_node, ONNX Runtime '
              "CPU): at most this many cameras' frames run in a batch this camera's frame "
              'leads (memory grows with the batch; 1 = this camera leads no batch).',
              low=1, high=16, reload=True),
        # rvm on backend tensorrt
        Param('tensorrt.fp16', BOOL, True,
              'rvm and onnx on tensorrt: let TensorRT use fp16 kernels (trt_fp16_enable).',
              reload=True),
        Param(ENGINE_CACHE, STRING, '',
              'Directory of cached TensorRT engines and fixed-ratio models; empty = '
              '<model cache>/tensorrt. It must lie inside the user cache '
              '(~/.cache/matte_ros, no symlink out of it); fixed while configured. The '
              'first run per resolution builds for minutes.',
              reload=True, check=engine_cache_refusal),
    ),
    backends=(BackendUse('tensorrt', 'ort_tensorrt', unless=_tensorrt_unless,
                         not_auto='its first engine build per resolution takes minutes'),
              BackendUse('cuda', 'ort_cuda', unless=_cuda_unless, needs_by=_cuda_need),
              CPU),
    models=(MODEL,),
    variants=(Variant('rvm', model=MODEL),),
)

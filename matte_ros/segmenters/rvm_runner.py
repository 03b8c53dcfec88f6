"""
The one interface every RVM runtime implements, and the registry of runtimes.

The ``rvm`` segmenter (:mod:`matte_ros.segmenters.rvm`) owns the recurrent state and
its reset policy; a :class:`Runner` only runs frames.  Its life:

1. ``Runner(model, backend, options)``: loads what can be loaded without a frame
   (raises SegmenterError saying what is missing); ``backend`` / ``note`` then say what
   it runs on and why, if that is not what was asked;
2. :meth:`Runner.prepare` before every frame: makes the module for this size and ratio
   current, and returns True when that is another module than before (the segmenter then
   restarts the state: a state from another module or shape is meaningless);
3. :meth:`Runner.zero_state` for a fresh state, :meth:`Runner.run` for one frame;
4. :meth:`Runner.close`.

:meth:`Runner.describe` says in one line what runs (library, device, model file, size);
:attr:`Runner.busy` says what keeps it from its best speed right now (a TensorRT engine
being built).  Runners with ``fixed_ratio`` run a copy of the model per ratio, so the
segmenter rounds the ratio to :func:`~matte_ros.segmenters.rvm_model.ratio_tag`.

Adding a runtime: one module with a Runner subclass, and one line in :data:`RUNNERS`.
"""

import dataclasses
from dataclasses import dataclass
import importlib
import threading
from typing import List
from typing import Optional
from typing import Tuple

from matte_ros import shared_models
from matte_ros.segmenters import rvm_model
from matte_ros.segmenters.base import SegmenterError
import numpy as np

#: ``rvm.precision`` values (OpenVINO runs int8; the others fp32).
FP32 = 'fp32'
INT8 = 'int8'

#: (``rvm.runtime``, backend) → "module:class"; backend ``*`` serves every backend.
RUNNERS = {
    ('onnxruntime', 'cpu'): 'matte_ros.segmenters.rvm_onnxruntime:OrtRunner',
    ('onnxruntime', 'cuda'): 'matte_ros.segmenters.rvm_onnxruntime:BoundOrtRunner',
    ('onnxruntime', 'tensorrt'): 'matte_ros.segmenters.rvm_tensorrt:TensorrtRunner',
    ('openvino', '*'): 'matte_ros.segmenters.rvm_openvino:OpenVinoRunner',
    ('torchscript', '*'): 'matte_ros.segmenters.rvm_torchscript:TorchScriptRunner',
}


def runtimes():
    """Return the ``rvm.runtime`` values, in :data:`RUNNERS` order (the schema's choices)."""
    return tuple(dict.fromkeys(runtime for runtime, _ in RUNNERS))


@dataclass(frozen=True)
class ModelFile:
    """The verified RVM ONNX file: its path and sha256 (the key of derived caches)."""

    path: str
    sha256: str


@dataclass(frozen=True)
class Options:
    """
    How a runner runs: from the parameters, plus the benchmarks' tuning knobs.

    ``threads`` / ``spinning``: ONNX Runtime intra-op threads (0 = one per physical core)
    and spin-waiting; ``strict``: ``backend_strict``; ``alpha_only``: no foreground colours
    wanted; ``model_dir``: the model cache (derived models go below it);
    ``engine_cache`` / ``fp16``: TensorRT's; ``precision``: OpenVINO's fp32 / int8;
    ``ratio``: ``rvm.downsample_ratio`` (0 = automatic; OpenVINO int8 checks at
    configure that a model was derived for a fixed one); ``half``: TorchScript in fp16
    (the GPU check); ``io_binding``: run ONNX Runtime through I/O binding even on the
    CPU; ``full_zero_state``: start from full-size zero tensors instead of [1, 1, 1, 1];
    ``batch_max``: most frames of a shared runner's batch (``rvm.batch_max``).
    """

    threads: int = 0
    spinning: bool = True
    strict: bool = False
    alpha_only: bool = True
    model_dir: str = ''
    engine_cache: str = ''
    fp16: bool = True
    precision: str = FP32
    ratio: float = 0.0
    half: bool = False
    io_binding: bool = False
    full_zero_state: bool = False
    batch_max: int = 2


class Runner:
    """Base class of the RVM runtimes (see the module docstring for the protocol)."""

    #: True when one module serves one ratio (the segmenter rounds ratios to ratio_tag).
    fixed_ratio = False
    #: Why the segmenter restarts the state when :meth:`prepare` changed the module.
    change_reason = 'rvm module changed'
    #: True when one instance can serve several segmenters in turn: one module for every
    #: frame size (:meth:`prepare` switches nothing), a :meth:`zero_state` that does not
    #: use the session, nothing kept between calls that another stream would disturb.
    shareable = False
    #: True when :meth:`run` takes a batch of frames with their states batched (NumPy).
    batchable = False
    #: True when the loaded module does not depend on ``alpha_only``: :meth:`run`'s
    #: ``want_foreground`` chooses per call whether foreground colours come back.
    per_call_foreground = False

    def __init__(self, model: ModelFile, backend: str, options: Options):
        self.model = model
        self.requested = backend
        self.options = options
        #: The backend actually in use (cpu, cuda, tensorrt).
        self.backend = backend
        #: Why ``backend`` differs from the request ('' when as asked).
        self.note = ''

    @property
    def busy(self) -> str:
        """Return what delays the runner right now ('' when nothing)."""
        return ''

    def prepare(self, height: int, width: int, ratio: float) -> bool:
        """Make the module for this frame size and ratio current; True when it changed."""
        return False

    def zero_state(self, height: int, width: int, ratio: float) -> List:
        """Return a fresh state: four zero tensors the runner's :meth:`run` accepts."""
        return rvm_model.zero_state()

    def run(self, src: np.ndarray, state: List, ratio: float,
            want_foreground: bool) -> Tuple[Optional[np.ndarray], np.ndarray, List]:
        """Run one frame; return (fgr ndarray or None, pha ndarray, successor state)."""
        raise NotImplementedError

    def describe(self) -> str:
        """Return one line saying what runs (library, device, model, size)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the module and its device memory."""


def runner_class(runtime: str, backend: str):
    """Return the Runner class for ``rvm.runtime`` and a backend (SegmenterError if none)."""
    target = RUNNERS.get((runtime, backend)) or RUNNERS.get((runtime, '*'))
    if target is None:
        known = sorted({r for r, _ in RUNNERS})
        if runtime not in known:
            raise SegmenterError('unknown rvm.runtime %r (choose from %s)'
                                 % (runtime, ', '.join(known)))
        target = RUNNERS[(runtime, 'cpu')]
    module_name, class_name = target.split(':')
    return getattr(importlib.import_module(module_name), class_name)


class _Request:
    """One camera's frame waiting for the shared runner, and what it got back."""

    def __init__(self, src, state, ratio, want_foreground, batch_max):
        self.src = src
        self.batch_max = batch_max
        self.state = state
        self.ratio = ratio
        self.want_foreground = want_foreground
        #: Frames batch together when their size and ratio agree (their states then too).
        self.key = (src.shape, float(ratio))
        self.done = False
        self.result = None
        self.error: Optional[BaseException] = None


class Batcher:
    """
    One shared runner and the frames its users want run: taken in turn, batched if it can.

    A user's frame joins the pending list, then the user waits for the session in first
    come, first served order (:class:`~matte_ros.shared_models.FairLock`).  Whoever gets
    the session runs its own frame together with every pending frame of the same size
    and ratio (RVM's ONNX model takes a batch when its four state tensors are batched
    too; a fresh [1, 1, 1, 1] zero state is broadcast to its slot's full shape), and
    hands each user its slot of the outputs; a user whose frame was run that way finds
    it done and returns.  Every camera has at most one frame pending (its worker waits
    for it), so a batch holds at most one frame per camera, and a frame waits for at
    most the batch in progress plus the batches of other sizes queued before it.
    ``batch_max`` bounds a batch (its own frame first, then the longest waiting ones;
    the rest wait for the next turn; a user may pass its own bound, the ``rvm.batch_max``
    of its camera, which then bounds the batches its frames lead): on the CPU a batch
    saves a little time per frame over running its frames one by one, while its working
    memory grows with each frame (docs/multi_camera.md has both measured).
    Runners that are not ``batchable`` run each frame on its own, in the same order.
    """

    def __init__(self, runner: Runner, batch_max: int = 2):
        self.runner = runner
        self.batch_max = max(1, int(batch_max))
        self.session = shared_models.FairLock()
        self._lock = threading.Lock()   # guards _pending
        self._pending: List[_Request] = []
        #: Batches run and frames in them (diagnostics, benchmarks).
        self.batches = 0
        self.frames = 0

    def run(self, src, state, ratio, want_foreground, batch_max: Optional[int] = None):
        """Run one frame (alone or in a batch); return (fgr, pha, successor state)."""
        limit = self.batch_max if batch_max is None else max(1, int(batch_max))
        request = _Request(src, state, ratio, want_foreground, limit)
        with self._lock:
            self._pending.append(request)
        with self.session:
            if not request.done:
                with self._lock:
                    if self.runner.batchable and request.batch_max > 1:
                        others = [r for r in self._pending
                                  if r.key == request.key and r is not request]
                        batch = [request] + others[:request.batch_max - 1]
                    else:
                        batch = [request]
                    self._pending = [r for r in self._pending if r not in batch]
                self._run(batch)
        if request.error is not None:
            raise request.error
        return request.result

    def _run(self, batch: List[_Request]) -> None:
        try:
            if len(batch) == 1:
                one = batch[0]
                one.result = self.runner.run(one.src, one.state, one.ratio,
                                             one.want_foreground)
            else:
                self._run_batch(batch)
        except BaseException as exc:  # noqa: B902 - each waiting camera gets the error
            for request in batch:
                request.error = exc
        self.batches += 1
        self.frames += len(batch)
        for request in batch:
            request.done = True

    def _run_batch(self, batch: List[_Request]) -> None:
        first = batch[0]
        height, width = first.src.shape[2:]
        shapes = rvm_model.state_shapes(height, width, first.ratio)
        src = np.concatenate([r.src for r in batch])
        state = [np.concatenate([np.broadcast_to(r.state[k], shapes[k]) for r in batch])
                 for k in range(len(shapes))]
        want = any(r.want_foreground for r in batch)
        fgr, pha, rec = self.runner.run(src, state, first.ratio, want)
        for i, request in enumerate(batch):
            request.result = (fgr[i:i + 1] if fgr is not None else None, pha[i:i + 1],
                              [tensor[i:i + 1] for tensor in rec])


class SharedRunner(Runner):
    """
    A lease on a runner that other segmenters of this process use too (one session).

    :meth:`run` holds the session in turn (:class:`Batcher`), alone or batched with the
    other cameras' frames of the same size; :meth:`prepare` and :meth:`zero_state` do not
    touch the session of a ``shareable`` runner.  The state stays with each camera's
    segmenter.  :meth:`close` gives the lease back; the last user's close closes the
    runner.
    """

    def __init__(self, lease, options: Optional[Options] = None):
        self._lease = lease
        self._batcher: Batcher = lease.value
        self._runner: Runner = self._batcher.runner
        super().__init__(self._runner.model, self._runner.requested,
                         options if options is not None else self._runner.options)
        self.fixed_ratio = self._runner.fixed_ratio
        self.change_reason = self._runner.change_reason

    def __getattr__(self, name: str):
        """Read what else the shared runner offers (its session, device) from it."""
        if name.startswith('_'):
            raise AttributeError(name)
        return getattr(self._runner, name)

    @property
    def backend(self) -> str:
        """Return the shared runner's backend, read live."""
        return self._runner.backend

    @backend.setter
    def backend(self, value: str) -> None:
        pass   # the shared runner's own value is read live

    @property
    def note(self) -> str:
        """Return the shared runner's note, read live."""
        return self._runner.note

    @note.setter
    def note(self, value: str) -> None:
        pass

    @property
    def busy(self) -> str:
        """Return what delays the shared runner now."""
        return self._runner.busy

    @property
    def users(self) -> int:
        """Return how many segmenters share the runner."""
        return self._lease.users

    @property
    def batcher(self) -> Batcher:
        """Return the object that batches this session's frames (and counts batches)."""
        return self._batcher

    def prepare(self, height: int, width: int, ratio: float) -> bool:
        """Ask the shared runner (``shareable``: one module for every size, nothing to switch)."""
        return self._runner.prepare(height, width, ratio)

    def zero_state(self, height: int, width: int, ratio: float) -> List:
        """Return a fresh state from the shared runner (new tensors; the session is not used)."""
        return self._runner.zero_state(height, width, ratio)

    def run(self, src, state, ratio, want_foreground):
        """Run one frame of this camera's stream with its state, alone or batched."""
        return self._batcher.run(src, state, ratio, want_foreground, self.options.batch_max)

    def describe(self) -> str:
        """Return the shared runner's line, and how many share it."""
        batched = ', batched' if self._runner.batchable else ''
        return '%s, shared by %d%s' % (self._runner.describe(), max(1, self.users), batched)

    def close(self) -> None:
        """Give the lease back (the runner closes with its last user)."""
        self._lease.release()


def _close_batcher(batcher: Batcher) -> None:
    batcher.runner.close()


def create(runtime: str, backend: str, model: ModelFile, options: Options,
           cache=None) -> Runner:
    """
    Build the runner of ``rvm.runtime`` for ``backend``, or share one through ``cache``.

    ``options.io_binding`` takes ONNX Runtime's I/O-binding runner on the CPU too.  With
    a :class:`~matte_ros.shared_models.SharedCache`, runners whose class is
    ``shareable`` are loaded once per (runtime, runner, backend, model, options) and
    returned as :class:`SharedRunner` leases; the others (one module per frame size,
    switched by :meth:`Runner.prepare`) are built for each segmenter.
    """
    key = backend
    if runtime == 'onnxruntime' and backend == 'cpu' and options.io_binding:
        key = 'cuda'
    cls = runner_class(runtime, key)
    if cache is None or not cls.shareable:
        return cls(model, backend, options)
    lease = cache.acquire(('rvm', runtime, cls.__module__, cls.__name__, backend, model,
                           session_options(cls, options)),
                          lambda: Batcher(cls(model, backend, options), options.batch_max),
                          _close_batcher)
    return SharedRunner(lease, options)


def session_options(cls, options: Options) -> Options:
    """
    Return the part of ``options`` that decides what ``cls`` loads (its sharing key).

    ``batch_max`` bounds each camera's own batches (:meth:`Batcher.run`), so cameras
    that differ in it share one session; so do cameras that differ in ``alpha_only``
    (``publish_foreground``) where the runner takes the choice per call
    (``per_call_foreground``).
    """
    if cls.per_call_foreground:
        options = dataclasses.replace(options, alpha_only=True)
    return dataclasses.replace(options, batch_max=1)

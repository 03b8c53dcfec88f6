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

from dataclasses import dataclass
import importlib
from typing import List
from typing import Optional
from typing import Tuple

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
    CPU; ``full_zero_state``: start from full-size zero tensors instead of [1, 1, 1, 1].
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


class Runner:
    """Base class of the RVM runtimes (see the module docstring for the protocol)."""

    #: True when one module serves one ratio (the segmenter rounds ratios to ratio_tag).
    fixed_ratio = False
    #: Why the segmenter restarts the state when :meth:`prepare` changed the module.
    change_reason = 'rvm module changed'
    #: True when one instance can serve several segmenters in turn (one module for every
    #: frame size, nothing kept between calls that another stream would disturb).
    shareable = False

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


class SharedRunner(Runner):
    """
    A lease on a runner that other segmenters of this process use too (one session).

    Every call that touches the runner (:meth:`prepare`, :meth:`zero_state`,
    :meth:`run`) holds the lease's first-come-first-served lock, so the cameras of one
    process take turns on the one session; the state stays with each camera's segmenter.
    :meth:`close` gives the lease back; the last user's close closes the runner.
    """

    def __init__(self, lease):
        self._lease = lease
        self._runner: Runner = lease.value
        super().__init__(self._runner.model, self._runner.requested, self._runner.options)
        self.fixed_ratio = self._runner.fixed_ratio
        self.change_reason = self._runner.change_reason

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

    def __getattr__(self, name: str):
        """Read what else the shared runner offers (its session, device) from it."""
        if name.startswith('_'):
            raise AttributeError(name)
        return getattr(self._runner, name)

    @property
    def users(self) -> int:
        """Return how many segmenters share the runner."""
        return self._lease.users

    def prepare(self, height: int, width: int, ratio: float) -> bool:
        """Make the module current, in this camera's turn."""
        with self._lease.lock:
            return self._runner.prepare(height, width, ratio)

    def zero_state(self, height: int, width: int, ratio: float) -> List:
        """Return the shared runner's fresh state."""
        with self._lease.lock:
            return self._runner.zero_state(height, width, ratio)

    def run(self, src, state, ratio, want_foreground):
        """Run one frame of this camera's stream with its state, in its turn."""
        with self._lease.lock:
            return self._runner.run(src, state, ratio, want_foreground)

    def describe(self) -> str:
        """Return the shared runner's line, and how many share it."""
        return '%s, shared by %d' % (self._runner.describe(), max(1, self.users))

    def close(self) -> None:
        """Give the lease back (the runner closes with its last user)."""
        self._lease.release()


def _close_runner(runner: Runner) -> None:
    runner.close()


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
                           options), lambda: cls(model, backend, options), _close_runner)
    return SharedRunner(lease)

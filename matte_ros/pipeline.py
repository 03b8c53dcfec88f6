"""
One frame in, mask + alpha + composite out: the core that the node, the CLI and the tools share.

A :class:`Pipeline` owns a segmenter (built from the ``segmenter`` parameter on the
backend that probing chose) and a :class:`~matte_ros.compositing.Compositor`.  It
times each stage so that the node's diagnostics and the benchmarks report the same
numbers.
"""

from dataclasses import dataclass
from dataclasses import field
import time
from typing import Any
from typing import Dict
from typing import Optional

from typing import Tuple
from typing import Union

from matte_ros import backends
from matte_ros import compositing
from matte_ros import memory
from matte_ros import params
from matte_ros import segmenters
from matte_ros.stabilizer import Stabilizer
import numpy as np


@dataclass
class Result:
    """What the pipeline produces for one frame."""

    mask: np.ndarray                        # uint8 H×W, 0/255
    alpha: np.ndarray                       # uint8 H×W, 0–255
    composite: Optional[np.ndarray]         # uint8 BGR H×W×3 (BGRA H×W×4 when composite.mode
    #                                         is transparent), None when it is none
    foreground: Optional[np.ndarray] = None  # uint8 BGR (rvm's fgr), if the segmenter has it
    background: Optional[np.ndarray] = None  # uint8 BGR (bgsub's model), if it has one
    timings: Dict[str, float] = field(default_factory=dict)  # stage → seconds


class Pipeline:
    """
    Segmenter + compositor with validated configuration.

    Building a Pipeline loads the model (it may raise
    :class:`~matte_ros.segmenters.SegmenterError`) and checks the memory budget at
    ``max_pixels`` (:class:`~matte_ros.memory.MemoryBudgetError`); :meth:`update`
    applies dynamic parameter changes and refuses (``ValueError`` with the reason) those
    that need a new Pipeline or a new picture — :meth:`prepare` makes what those need
    (slow: the node calls it off its service thread, beside the serving pipeline).
    ``values`` is a validated :class:`~matte_ros.params.Config` (taken as is) or a dict
    of values (validated here; settings of the ROS layer in it are left out).
    """

    def __init__(self, values: Union[None, params.Config, Dict[str, Any]] = None,
                 backend: Optional[str] = None):
        if isinstance(values, params.Config):
            config = values
        else:
            config = params.Config().with_updates(params.split(values or {})[0])
        memory.check(config.values, config['max_pixels'],
                     'max_pixels %d' % config['max_pixels'])
        self.config = config
        self._checked_sizes = set()
        requested = backend or config['backend']
        self.choice = backends.choose(config['segmenter'], requested,
                                      strict=config['backend_strict'], config=config.values)
        blur = None
        if backends.wants_gpu_blur(requested):
            from matte_ros import vpi_ops
            blur = vpi_ops.blur_background
        self.compositor = compositing.Compositor(config.values, blur=blur)
        self.segmenter = segmenters.create(config['segmenter'], config.values,
                                           self.choice.backend)
        self.stabilizer = Stabilizer(config.values)

    @property
    def name(self) -> str:
        """Return the segmenter's name."""
        return self.segmenter.name

    @property
    def backend(self) -> str:
        """Return the backend the segmenter actually runs on (read live)."""
        return self.segmenter.status().backend

    def status(self) -> segmenters.Status:
        """
        Return what runs now: backend in use, why it is not the one asked for, what delays it.

        The notes are the probe's and the segmenter's own.  Read live, so a fallback
        after configure (a TensorRT engine that fails at the first frame) shows in logs
        and diagnostics at once.
        """
        own = self.segmenter.status()
        notes = [n for n in (self.choice.warning, own.note) if n]
        return segmenters.Status(own.backend, '; '.join(notes), own.busy)

    def describe(self) -> str:
        """Return what the segmenter runs, in one line (for logs)."""
        return self.segmenter.describe()

    def process(self, frame: np.ndarray, stamp: Optional[float] = None,
                frame_id: Optional[str] = None,
                stream_gap: Optional[float] = None) -> Result:
        """
        Segment, stabilise (when ``stabilizer.enabled``) and composite one BGR frame.

        ``stream_gap``: where frames were dropped before this one, the largest stamp step
        of the camera's stream since the previous frame given here (the segmenter's
        gap rule then judges the camera, not the drops: ``segmenters.base.Continuity``).

        The first frame of each size is checked against the memory budget first
        (:class:`~matte_ros.memory.MemoryBudgetError`: the frame is refused, nothing runs).
        The stabiliser's time counts in the ``postprocess`` stage.
        """
        size = frame.shape[:2]
        if size not in self._checked_sizes:
            memory.check(self.config.values, size[0] * size[1],
                         'frame %d×%d' % (size[1], size[0]))
            if len(self._checked_sizes) > 16:
                self._checked_sizes.clear()
            self._checked_sizes.add(size)
        t0 = time.perf_counter()
        continuity = getattr(self.segmenter, 'continuity', None)
        if stream_gap is not None and continuity is not None:
            continuity.stream_gap = stream_gap
        matte = self.segmenter.process(frame, stamp, frame_id)
        t1 = time.perf_counter()
        cfg = self.config
        alpha = self.stabilizer.apply(frame, matte.alpha, self.segmenter.resets)
        mask = compositing.alpha_to_mask(alpha, cfg['threshold'], cfg['mask.dilate'])
        alpha8 = compositing.to_mono8(alpha)
        t2 = time.perf_counter()
        composite = self.compositor.composite(frame, alpha, mask)
        t3 = time.perf_counter()
        return Result(mask=mask, alpha=alpha8, composite=composite,
                      foreground=matte.foreground, background=matte.background,
                      timings={'segment': t1 - t0, 'postprocess': t2 - t1,
                               'composite': t3 - t2})

    def _as_config(self, values: Union[params.Config, Dict[str, Any]]) -> params.Config:
        if isinstance(values, params.Config):
            return values
        return self.config.with_updates(values)

    def needs_rebuild(self, values: Union[params.Config, Dict[str, Any]]) -> bool:
        """Tell whether applying ``values`` needs a new Pipeline (segmenter or model change)."""
        return params.needs_reload(self.config, self._as_config(values))

    def needs_work(self, values: Union[params.Config, Dict[str, Any]]) -> bool:
        """Tell whether applying ``values`` needs :meth:`prepare` (a rebuild or a picture)."""
        new = self._as_config(values)
        return params.needs_reload(self.config, new) or \
            self.compositor.needs_picture(new.values)

    def prepare(self, values: Union[params.Config, Dict[str, Any]]) -> Tuple[str, Any]:
        """
        Do the slow part of a change (may take seconds; call it off the service thread).

        Returns ``('pipeline', new Pipeline)`` when the change needs a rebuild,
        ``('picture', array)`` when it needs a new background picture, ``('none', None)``
        otherwise; raises with the reason when that work fails.  Nothing of this
        pipeline changes: :meth:`update` (picture) or a swap (pipeline) commits it.
        """
        new = self._as_config(values)
        if params.needs_reload(self.config, new):
            return 'pipeline', Pipeline(new)
        if self.compositor.needs_picture(new.values):
            return 'picture', compositing.load_picture(new['composite.image_path'],
                                                       new['max_pixels'])
        return 'none', None

    def update(self, values: Union[params.Config, Dict[str, Any]],
               picture: Optional[np.ndarray] = None) -> None:
        """
        Apply dynamic parameter changes from the next frame on.

        ``values`` is a validated Config (taken as is) or a dict of changes.  Raises
        ``ValueError`` (ParamError, CompositeError, MemoryBudgetError) with the reason
        when a value is invalid, would need a rebuild or more memory than the budget, or
        SegmenterError when the segmenter refuses a combination (consensus: min_matches
        above samples); nothing is changed then (the segmenter gets its values back).
        ``picture`` is the one :meth:`prepare` loaded.
        """
        new = self._as_config(values)
        if params.needs_reload(self.config, new):
            raise ValueError('these parameters need a new segmenter: %s' % ', '.join(
                sorted(p.name for p in params.PARAMS
                       if p.reload and new[p.name] != self.config[p.name])))
        memory.check(new.values, new['max_pixels'], 'max_pixels %d' % new['max_pixels'])
        try:
            self.segmenter.configure(new.values)
            self.compositor.configure(new.values, picture=picture)
            self.stabilizer.configure(new.values)
        except Exception:  # noqa: B902 - put the segmenter back, then refuse as asked
            self.segmenter.configure(self.config.values)   # the values in force
            raise
        self.config = new
        self._checked_sizes = set()

    def reset(self, reason: str = 'requested') -> None:
        """Clear the temporal state: the segmenter's and the stabiliser's."""
        self.segmenter.reset(reason)
        self.stabilizer.reset(reason)

    def close(self) -> None:
        """Release the segmenter's model and device memory."""
        self.segmenter.close()

"""
The one interface every segmenter implements, and the temporal-state reset policy.

A segmenter takes a BGR ``uint8`` frame (H×W×3, OpenCV's order) with the frame's
stamp and frame_id, and returns a :class:`Matte`: alpha in [0, 1] (float32, H×W),
plus optional extras (RVM's foreground colours, a background model's image).

Temporal state (background model, previous frame, recurrent state) is explicit:
:meth:`Segmenter.reset` clears it, and :class:`Continuity` decides when a stream
has a discontinuity that must clear it (resolution or frame_id change, stamp going
backwards or jumping).
"""

from dataclasses import dataclass
from typing import Any
from typing import Dict
from typing import Optional

from matte_ros.errors import SegmenterError  # noqa: F401 - part of this module's interface
import numpy as np


@dataclass(frozen=True)
class Status:
    """
    What a segmenter runs on now, read live by the pipeline, the node and the CLI.

    ``backend``: the backend in use (after any fallback); ``note``: why it is not the one
    asked for ('' when it is); ``busy``: what keeps it from its best speed right now,
    e.g. ``building TensorRT engine for 640x480 (12 s)`` ('' when nothing).
    """

    backend: str
    note: str = ''
    busy: str = ''


@dataclass
class Matte:
    """What a segmenter returns for one frame."""

    alpha: np.ndarray                        # float32 H×W in [0, 1]
    foreground: Optional[np.ndarray] = None  # uint8 BGR H×W×3 (rvm's fgr)
    background: Optional[np.ndarray] = None  # uint8 BGR H×W×3 (bgsub's model)


class Continuity:
    """
    Detects stream discontinuities that must reset temporal state.

    ``check`` returns the reason for a reset (a short string) or ``None``.  ``max_gap``
    ≤ 0 disables the gap rule; stamps of ``None`` (files without time) skip both
    stamp rules.

    The gap rule is about the camera's stream, not about the frames that reached the
    segmenter: a node that drops frames under load (latest-frame policy) sees stamps
    further apart than the camera sent them, and a reset there would restart the state
    on every frame of a slow segmenter.  So whoever drops frames sets
    :attr:`stream_gap` before :meth:`check` (the largest stamp step between the frames
    that arrived since the previous checked one, up to this one); without it the step
    from the previous checked frame is the gap.
    """

    def __init__(self, max_gap: float = 0.0):
        self.max_gap = max_gap
        #: The stream's largest stamp step up to the next checked frame (None: unknown).
        self.stream_gap: Optional[float] = None
        self.clear()

    def clear(self):
        """Forget the last frame seen (the next frame starts a new stream)."""
        self._shape = None
        self._frame_id = None
        self._stamp = None

    def check(self, shape, stamp: Optional[float], frame_id: Optional[str]) -> Optional[str]:
        """Record this frame and say why the state must be reset before it, if it must."""
        reason = None
        stream_gap, self.stream_gap = self.stream_gap, None
        if self._shape is not None:
            if tuple(shape) != self._shape:
                reason = 'resolution changed'
            elif frame_id != self._frame_id:
                reason = 'frame_id changed'
            elif stamp is not None and self._stamp is not None:
                if stamp < self._stamp:
                    reason = 'stamp went backwards'
                else:
                    gap = stamp - self._stamp if stream_gap is None else stream_gap
                    if self.max_gap > 0 and gap > self.max_gap:
                        reason = 'stamp jumped by %.3f s' % gap
        self._shape = tuple(shape)
        self._frame_id = frame_id
        self._stamp = stamp
        return reason


class Segmenter:
    """
    Base class: frames in, mattes out.

    Subclasses implement :meth:`_segment` and :meth:`reset`; they may override
    :meth:`configure` to take dynamic parameter changes without a reload.  ``name`` is
    the ``segmenter`` parameter value, ``backend`` what actually runs (after probing).
    """

    name = 'base'
    #: Memory per frame pixel (bytes) and fixed memory (model, runtime) of
    #: :meth:`memory_bytes`; subclasses state their own.
    bytes_per_pixel = 64
    fixed_bytes = 0

    @classmethod
    def memory_bytes(cls, config: Dict[str, Any], pixels: int) -> int:
        """Return the memory the segmenter needs for frames of ``pixels`` pixels (bytes)."""
        return cls.fixed_bytes + cls.bytes_per_pixel * int(pixels)

    @classmethod
    def memory_hint(cls, config: Dict[str, Any]) -> str:
        """Return what :meth:`memory_bytes` counts that a refusal should name ('' if nothing)."""
        return ''

    #: Why the segmenter runs on another backend than asked ('' when as asked).
    warning = ''

    def __init__(self, config: Dict[str, Any], backend: str = 'cpu'):
        self.backend = backend
        self.config = dict(config)
        self.continuity = Continuity(self._max_gap(config))
        self.last_reset_reason: Optional[str] = None
        self.resets = 0

    @staticmethod
    def _max_gap(config) -> float:
        """Stamp gap (s) that resets state; 0 = never.  RVM overrides (``rvm.max_gap``)."""
        return 0.0

    def configure(self, config: Dict[str, Any]) -> None:
        """Take new dynamic parameter values (applied from the next frame)."""
        self.config = dict(config)
        self.continuity.max_gap = self._max_gap(config)

    def process(self, frame: np.ndarray, stamp: Optional[float] = None,
                frame_id: Optional[str] = None) -> Matte:
        """Segment one BGR frame, resetting temporal state first on a discontinuity."""
        reason = self.continuity.check(frame.shape, stamp, frame_id)
        if reason is not None:
            self.reset(reason)
        return self._segment(frame)

    def reset(self, reason: str = 'requested') -> None:
        """Clear temporal state; subclasses extend this and call super()."""
        self.last_reset_reason = reason
        self.resets += 1

    def close(self) -> None:
        """Release models and device memory."""

    def status(self) -> Status:
        """Return the backend in use, why it differs from the request, what delays it."""
        return Status(self.backend, self.warning)

    def describe(self) -> str:
        """Return one line saying what runs (library, model, device)."""
        return '%s on %s' % (self.name, self.backend)

    def _segment(self, frame: np.ndarray) -> Matte:
        raise NotImplementedError

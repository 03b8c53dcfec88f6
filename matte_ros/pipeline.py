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

from matte_ros import backends
from matte_ros import compositing
from matte_ros import params
from matte_ros import segmenters
from matte_ros.stabilizer import Stabilizer
import numpy as np


@dataclass
class Result:
    """What the pipeline produces for one frame."""

    mask: np.ndarray                        # uint8 H×W, 0/255
    alpha: np.ndarray                       # uint8 H×W, 0–255
    composite: Optional[np.ndarray]         # uint8 BGR H×W×3, None when composite.mode is none
    foreground: Optional[np.ndarray] = None  # uint8 BGR (rvm's fgr), if the segmenter has it
    background: Optional[np.ndarray] = None  # uint8 BGR (bgsub's model), if it has one
    timings: Dict[str, float] = field(default_factory=dict)  # stage → seconds


def _settled(choice: backends.Choice, segmenter) -> backends.Choice:
    """
    Return the choice updated with what the segmenter actually runs on.

    A segmenter may still step down (ONNX Runtime without the provider, a VPI model
    missing): its ``backend`` and its ``warning`` or ``runtime_info`` note then join the
    choice, so logs and diagnostics name it.
    """
    notes = [choice.warning] if choice.warning else []
    own = getattr(segmenter, 'warning', '')
    info = getattr(segmenter, 'session_info', None)
    if info is not None and info.missing:
        own = own or 'backend %s: %s not available, running on %s' % (
            info.backend, ', '.join(info.missing), info.providers[0])
    if own:
        notes.append(own)
    backend = getattr(segmenter, 'backend', choice.backend) or choice.backend
    if info is not None and info.missing and info.providers[0] == 'CPUExecutionProvider':
        backend = 'cpu'
    if backend == choice.backend and len(notes) == (1 if choice.warning else 0):
        return choice
    return backends.Choice(choice.requested, backend, '; '.join(notes))


class Pipeline:
    """
    Segmenter + compositor with validated configuration.

    Building a Pipeline loads the model (it may raise
    :class:`~matte_ros.segmenters.SegmenterError`); :meth:`update` applies dynamic
    parameter changes and refuses (``ValueError`` with the reason) those that need a
    new Pipeline — the node builds the new one beside the old one in that case.
    """

    def __init__(self, values: Optional[Dict[str, Any]] = None, backend: Optional[str] = None):
        config = params.Config()
        if values:
            config = config.with_updates(values)
        self.config = config
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
        self.choice = _settled(self.choice, self.segmenter)
        self.stabilizer = Stabilizer(config.values)

    @property
    def name(self) -> str:
        """Return the segmenter's name."""
        return self.segmenter.name

    @property
    def backend(self) -> str:
        """Return the backend the segmenter actually runs on."""
        return self.choice.backend

    def process(self, frame: np.ndarray, stamp: Optional[float] = None,
                frame_id: Optional[str] = None) -> Result:
        """
        Segment, stabilise (when ``stabilizer.enabled``) and composite one BGR frame.

        The stabiliser's time counts in the ``postprocess`` stage.
        """
        t0 = time.perf_counter()
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

    def needs_rebuild(self, values: Dict[str, Any]) -> bool:
        """Tell whether applying ``values`` needs a new Pipeline (segmenter or model change)."""
        new = self.config.with_updates(values)
        return params.needs_reload(self.config, new)

    def update(self, values: Dict[str, Any]) -> None:
        """
        Apply dynamic parameter changes from the next frame on.

        Raises ``ValueError`` (ParamError, CompositeError) with the reason when a value
        is invalid or would need a rebuild; nothing is changed then.
        """
        new = self.config.with_updates(values)
        if params.needs_reload(self.config, new):
            raise ValueError('these parameters need a new segmenter: %s' % ', '.join(
                sorted(p.name for p in params.PARAMS
                       if p.reload and new[p.name] != self.config[p.name])))
        self.compositor.configure(new.values)
        self.segmenter.configure(new.values)
        self.stabilizer.configure(new.values)
        self.config = new

    def reset(self, reason: str = 'requested') -> None:
        """Clear the temporal state: the segmenter's and the stabiliser's."""
        self.segmenter.reset(reason)
        self.stabilizer.reset(reason)

    def close(self) -> None:
        """Release the segmenter's model and device memory."""
        self.segmenter.close()

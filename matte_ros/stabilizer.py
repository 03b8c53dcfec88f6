"""
Temporal stabiliser: calms a flickering alpha where the image did not change.

ROS-free.  The pipeline runs it between the segmenter and the mask threshold, for
every segmenter, when ``stabilizer.enabled`` is true.  It only looks at the past (the
previous frame and its stabilised alpha), so it adds no frame of delay:

    a_t = alpha_t + w_t * (a_{t-1} - alpha_t)

an exponential moving average whose weight ``w_t`` is chosen per pixel from how much
the image changed there.  ``d`` is the grey-level difference of this frame and the
previous one, spread to each pixel's 3×3 neighbourhood (its maximum) so that the pixels
beside a moving edge count as changed too, and

    w = stabilizer.strength × max(0, 1 - d / stabilizer.motion)

Where the image is still (``d`` near 0) the output keeps most of its past: a pixel that
the segmenter toggles on and off from noise no longer flips.  Where the image changed
by ``stabilizer.motion`` grey levels or more (a person moving, the camera panning) the
weight is 0 and the segmenter's alpha passes through untouched, so a moving person is
never smeared: the gate is the evidence, in the image itself, that the matte is
allowed to change.  A change the segmenter makes on a still image (a person standing
still that a background model starts to absorb) is followed at the EMA's rate instead
of at once.

Reset policy: the state (previous grey frame and alpha) is dropped on
:meth:`Stabilizer.reset` and whenever the segmenter's reset count changes (the
pipeline passes it in), so it follows exactly the segmenter's resets: ``~/reset``,
deactivation, and every discontinuity its :class:`~matte_ros.segmenters.base.Continuity`
detects (stamp going backwards or jumping, resolution or frame_id change); and on a
change of frame size.  Switching it off drops the state too.

Cost: a grey conversion, one difference, one 3×3 dilation, a table look-up and three
float operations per pixel (OpenCV); see ``benchmarks`` in the README for the figure.
"""

from typing import Any
from typing import Dict
from typing import Optional

import cv2
import numpy as np

#: 3×3 neighbourhood of the change spread.
_KERNEL = np.ones((3, 3), np.uint8)


def weight_table(strength: float, motion: float) -> np.ndarray:
    """Return the 256-entry float32 table: grey difference → weight of the past."""
    d = np.arange(256, dtype=np.float32)
    if motion <= 0:
        return np.zeros(256, np.float32)
    return (np.float32(strength) * np.clip(1.0 - d / np.float32(motion), 0.0, 1.0)
            ).astype(np.float32)


class Stabilizer:
    """
    Motion-gated exponential smoothing of alpha (see the module docstring).

    :meth:`apply` takes the BGR frame and the segmenter's alpha (float32 H×W in
    [0, 1]) and returns the stabilised alpha (float32; the input itself when disabled).
    """

    def __init__(self, config: Dict[str, Any]):
        self.enabled = False
        self.strength = 0.0
        self.motion = 0.0
        self._table = np.zeros(256, np.float32)
        self._grey: Optional[np.ndarray] = None
        self._alpha: Optional[np.ndarray] = None
        self._resets_seen: Optional[int] = None
        self.resets = 0
        self.last_reset_reason: Optional[str] = None
        self.configure(config)

    def configure(self, config: Dict[str, Any]) -> None:
        """Take ``stabilizer.*`` values (validated by the schema) from the next frame on."""
        enabled = bool(config.get('stabilizer.enabled', False))
        self.strength = float(config.get('stabilizer.strength', 0.0))
        self.motion = float(config.get('stabilizer.motion', 0.0))
        self._table = weight_table(self.strength, self.motion)
        if self.enabled and not enabled:
            self.reset('stabilizer switched off')
        self.enabled = enabled

    def reset(self, reason: str = 'requested') -> None:
        """Forget the previous frame and alpha (the next frame passes through)."""
        self._grey = None
        self._alpha = None
        self.resets += 1
        self.last_reset_reason = reason

    def apply(self, frame: np.ndarray, alpha: np.ndarray,
              segmenter_resets: Optional[int] = None) -> np.ndarray:
        """
        Return the stabilised alpha of this frame (the input alpha when disabled).

        ``segmenter_resets`` is the segmenter's reset count: when it differs from the
        one seen with the previous frame the state is dropped first.
        """
        if not self.enabled:
            self._resets_seen = segmenter_resets
            return alpha
        if segmenter_resets != self._resets_seen:
            if self._resets_seen is not None and self._grey is not None:
                self.reset('segmenter reset')
            self._resets_seen = segmenter_resets
        alpha = np.asarray(alpha, np.float32)
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame.copy()
        previous, previous_alpha = self._grey, self._alpha
        if previous is None or previous.shape != grey.shape or \
                previous_alpha.shape != alpha.shape:
            if previous is not None:
                self.reset('frame size changed')
            self._grey, self._alpha = grey, alpha.copy()
            return alpha
        change = cv2.dilate(cv2.absdiff(grey, previous), _KERNEL)
        weight = cv2.LUT(change, self._table)
        out = cv2.add(alpha, cv2.multiply(weight, cv2.subtract(previous_alpha, alpha)))
        self._grey, self._alpha = grey, out.copy()
        return out

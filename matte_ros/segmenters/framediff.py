"""
Frame difference: the simplest baseline (seed "virtual background, a silly approach").

A pixel is foreground when its grey level changed by more than
``framediff.threshold`` since the previous frame.  The first frame after a reset
has nothing to compare with and is all background.
"""

from typing import Optional

import cv2
from matte_ros.params import INT
from matte_ros.params import Param
from matte_ros.segmenters.base import Matte
from matte_ros.segmenters.base import Segmenter
from matte_ros.segmenters.spec import SegmenterSpec
from matte_ros.segmenters.spec import Variant
import numpy as np


class FrameDifference(Segmenter):
    """Per-pixel threshold on the grey difference of consecutive frames."""

    name = 'framediff'
    #: grey frame, previous grey frame, difference (1 each), float32 alpha (4), slack (5).
    bytes_per_pixel = 12

    def __init__(self, config, backend='cpu'):
        super().__init__(config, backend)
        self.backend = 'cpu'
        self._previous: Optional[np.ndarray] = None

    def _segment(self, frame: np.ndarray) -> Matte:
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        previous, self._previous = self._previous, grey
        if previous is None:
            return Matte(alpha=np.zeros(grey.shape, np.float32))
        diff = cv2.absdiff(grey, previous)
        _, changed = cv2.threshold(diff, int(self.config['framediff.threshold']), 1.0,
                                   cv2.THRESH_BINARY)
        return Matte(alpha=changed.astype(np.float32))

    def reset(self, reason: str = 'requested') -> None:
        """Forget the previous frame."""
        super().reset(reason)
        self._previous = None


SPEC = SegmenterSpec(
    name='framediff',
    summary='difference of consecutive frames',
    description='grey difference of consecutive frames, the simplest baseline',
    state='previous frame',
    factory=FrameDifference,
    params=(
        Param('framediff.threshold', INT, 3,
              'Grey-level difference above which a pixel changed between frames.',
              low=0, high=255),
    ),
    variants=(Variant('framediff'),),
)

"""
The demo's built-in input: a real photo moving over another real photo.

scikit-image bundles both (``astronaut`` and ``coffee``), so the demo needs no
download.  An elliptical cut-out of the astronaut glides across a still background;
the ellipse is also the ground truth, which lets the demo report IoU.
"""

from typing import Iterator
from typing import Tuple

import cv2
import numpy as np


def _pictures(size):
    from skimage import data
    width, height = size
    background = cv2.resize(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR), (width, height),
                            interpolation=cv2.INTER_AREA)
    person = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[20:420, 90:390]
    scale = 0.8 * height / person.shape[0]
    person = cv2.resize(person, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ph, pw = person.shape[:2]
    cutout = np.zeros((ph, pw), np.uint8)
    cv2.ellipse(cutout, (pw // 2, ph // 2), (pw // 2 - 2, ph // 2 - 2), 0, 0, 360, 255, -1)
    return background, person, cutout


def frames(count: int = 90, size=(640, 480)) -> Iterator[Tuple[str, np.ndarray, np.ndarray]]:
    """
    Yield (stem, BGR frame, ground-truth mask 0/255) for ``count`` frames.

    The first sixth of the frames show the empty scene (as a static camera would before
    someone walks in, so background subtraction can learn it); then the cut-out enters
    from the left, crosses and leaves on the right.
    """
    background, person, cutout = _pictures(size)
    width, height = size
    ph, pw = person.shape[:2]
    top = height - ph
    lead = count // 6
    for i in range(count):
        frame = background.copy()
        truth = np.zeros((height, width), np.uint8)
        if i >= lead:
            t = (i - lead) / max(count - 1 - lead, 1)
            left = int(round(-pw + t * (width + pw)))
            x0, x1 = max(left, 0), min(left + pw, width)
            if x1 > x0:
                part = slice(x0 - left, x1 - left)
                inside = cutout[:, part] > 0
                region = frame[top:top + ph, x0:x1]
                region[inside] = person[:, part][inside]
                truth[top:top + ph, x0:x1] = cutout[:, part]
        yield '%06d' % i, frame, truth

"""
Sample-consensus background subtraction (``bgsub.algorithm: consensus``), vectorised.

The model keeps, for every pixel, ``samples`` past background colours (ViBe, Barnich &
Van Droogenbroeck 2011; SuBSENSE, St-Charles et al. 2015 use the same kind of model).  A
pixel is background when at least ``min_matches`` samples lie within an L1 colour
distance (sum over B, G, R) of the current colour.  The rest is written for whole
images at once with OpenCV calls, so the cost is a few dozen passes over uint8 planes:

* Matching keeps the ``min_matches`` smallest distances seen so far as running
  minima (a min/max insertion per sample), so "k samples within the threshold" becomes
  "k-th smallest distance ≤ threshold" and the threshold is applied once per pixel.
* Per-pixel feedback: the threshold of a pixel grows with ``adapt`` times the moving
  average of its smallest distance on background frames (its own noise level), so
  noisy or dynamic pixels (leaves, water) need a larger change to become foreground.
* Random update: background pixels (after smoothing) replace one of their samples with
  probability ``update_probability``, and as often copy their colour into the model of
  one neighbour (spatial diffusion, which dissolves ghosts).  Foreground pixels do so
  ``FOREGROUND_SLOWDOWN`` times less often, so that an object that stops, or a scene
  that changes as a whole (lights), becomes background after a while (about 80 frames
  at the automatic rate) instead of never.  One random sample slot and one random
  neighbour direction are drawn per frame rather than per pixel: over time each pixel
  still sees uniform choices, and the update becomes a masked copy.
* Post-processing: a ``smooth`` × ``smooth`` majority vote (a median filter on the
  binary mask, computed as a box filter) removes isolated pixels and fills pinholes.

The background image is a running mean of the frames over background pixels, learnt at
the model's refresh rate.  This module does not import ROS.

On CDnet 2014 baseline (``tools/bench_bgsub.py``) the defaults score F 0.969 on
pedestrians and 0.958 on highway at 400+ fps (360×240, one process, 2 cores).  What
limits highway is precision (0.935): the umbra under each car, 10-35 % of the road's
brightness, is labelled shadow (background) but is as dark and grey as tyres and
bumpers; a colour/brightness-ratio shadow test removed more car than shadow there.
The defaults were chosen on those two sequences only (no other CDnet data here).
"""

from typing import List
from typing import Optional

import cv2
import numpy as np

#: Smallest-distance moving average rate used by the ``adapt`` feedback.
NOISE_RATE = 0.02
#: Update probability of the automatic learning rate (each background pixel refreshes
#: one of its samples every second frame on average).
AUTO_UPDATE_PROBABILITY = 0.5
#: Foreground pixels refresh a sample this many times less often than background ones,
#: so that objects which stop (or a scene that changes as a whole) are absorbed.
FOREGROUND_SLOWDOWN = 20
#: The eight neighbour offsets (dy, dx) used by the diffusion update.
NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


class SampleConsensus:
    """
    A per-pixel sample model: ``apply(frame)`` returns the foreground mask (uint8 0/255).

    ``learn_rate`` is the fraction of the model refreshed per frame on background pixels
    (an update probability of ``learn_rate * samples``, capped at 1); -1 picks the
    automatic rate.  All arguments except ``samples`` and ``seed`` may change between
    frames through :meth:`configure`.
    """

    def __init__(self, samples: int = 10, threshold: float = 30.0, min_matches: int = 2,
                 adapt: float = 0.5, smooth: int = 9, learn_rate: float = -1.0,
                 seed: int = 0):
        if samples < 1:
            raise ValueError('samples must be ≥ 1, got %r' % samples)
        self.samples = int(samples)
        self._rng = np.random.default_rng(seed)
        self._model: Optional[np.ndarray] = None  # samples × 3 × H × W uint8
        self._background: Optional[np.ndarray] = None  # H × W × 3 float32
        self._noise: Optional[np.ndarray] = None  # H × W float32
        self.configure(threshold, min_matches, adapt, smooth, learn_rate)

    def configure(self, threshold: float, min_matches: int, adapt: float, smooth: int,
                  learn_rate: float) -> None:
        """Set the dynamic knobs (applied from the next frame)."""
        if not 1 <= min_matches <= self.samples:
            raise ValueError('min_matches must lie in 1 … samples (%d), got %r'
                             % (self.samples, min_matches))
        self.threshold = float(threshold)
        self.min_matches = int(min_matches)
        self.adapt = float(adapt)
        self.smooth = int(smooth)
        self.learn_rate = float(learn_rate)

    @property
    def update_probability(self) -> float:
        """Probability that a background pixel refreshes one sample this frame."""
        if self.learn_rate < 0:
            return AUTO_UPDATE_PROBABILITY
        return min(1.0, self.learn_rate * self.samples)

    def reset(self) -> None:
        """Forget the model; the next frame initialises a new one."""
        self._model = None
        self._background = None
        self._noise = None

    # -- per frame --------------------------------------------------------------------

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """Classify one BGR uint8 frame, then learn from it; return the mask (0/255)."""
        if self._model is None or self._model.shape[2:] != frame.shape[:2]:
            self._initialise(frame)
            return np.zeros(frame.shape[:2], np.uint8)
        planes = cv2.split(frame)
        smallest = self._smallest_distances(planes)
        raw = self._threshold(smallest[-1])
        mask = self._smooth(raw)
        self._learn(frame, planes, mask, raw, smallest[0])
        return mask

    def background_image(self) -> Optional[np.ndarray]:
        """Return the background estimate (BGR uint8), or None before the first frame."""
        if self._background is None:
            return None
        return cv2.convertScaleAbs(self._background)

    # -- steps --------------------------------------------------------------------------

    def _initialise(self, frame: np.ndarray) -> None:
        """Fill every sample with the colour of a random 3×3 neighbour in ``frame``."""
        height, width = frame.shape[:2]
        padded = cv2.copyMakeBorder(frame, 1, 1, 1, 1, cv2.BORDER_REFLECT)
        shape = (self.samples, height, width)
        rows = np.arange(height)[None, :, None] + 1 + self._rng.integers(-1, 2, shape)
        cols = np.arange(width)[None, None, :] + 1 + self._rng.integers(-1, 2, shape)
        model = padded[rows, cols]  # samples × H × W × 3
        model[0] = frame
        self._model = np.ascontiguousarray(model.transpose(0, 3, 1, 2))
        self._background = frame.astype(np.float32)
        self._noise = np.zeros((height, width), np.float32)

    def _smallest_distances(self, planes) -> List[np.ndarray]:
        """Return the ``min_matches`` smallest L1 distances to the samples, ascending."""
        height, width = planes[0].shape
        smallest = [np.full((height, width), 255, np.uint8) for _ in range(self.min_matches)]
        last = self.min_matches - 1
        for sample in self._model:
            # Saturating uint8 sum: distances above 255 are all "far", which is enough.
            dist = cv2.add(cv2.add(cv2.absdiff(sample[0], planes[0]),
                                   cv2.absdiff(sample[1], planes[1])),
                           cv2.absdiff(sample[2], planes[2]))
            for j in range(last):
                larger = cv2.max(smallest[j], dist)
                cv2.min(smallest[j], dist, dst=smallest[j])
                dist = larger
            cv2.min(smallest[last], dist, dst=smallest[last])
        return smallest

    def _threshold(self, kth: np.ndarray) -> np.ndarray:
        """Foreground (255) where the k-th smallest distance exceeds the pixel's threshold."""
        if self.adapt > 0:
            limit = cv2.convertScaleAbs(self._noise, alpha=self.adapt, beta=self.threshold)
            return cv2.compare(kth, limit, cv2.CMP_GT)
        return cv2.threshold(kth, min(self.threshold, 255.0), 255, cv2.THRESH_BINARY)[1]

    def _smooth(self, raw: np.ndarray) -> np.ndarray:
        """Majority vote over smooth × smooth windows (binary median filter)."""
        if self.smooth <= 1:
            return raw
        votes = cv2.blur(raw, (self.smooth, self.smooth), borderType=cv2.BORDER_REPLICATE)
        return cv2.threshold(votes, 127, 255, cv2.THRESH_BINARY)[1]

    def _learn(self, frame, planes, mask, raw, nearest) -> None:
        """Update samples, background image and noise level from background pixels."""
        probability = self.update_probability
        background = cv2.bitwise_not(mask)
        if self.adapt > 0:
            cv2.accumulateWeighted(nearest, self._noise, NOISE_RATE,
                                   mask=cv2.bitwise_not(raw))
        if probability <= 0:
            return
        cv2.accumulateWeighted(frame, self._background, probability / self.samples,
                               mask=background)
        # Update in place: one random slot, pixels drawn with the update probability.
        slot = self._model[int(self._rng.integers(self.samples))]
        chosen = self._draw(background, probability)
        if self._rng.random() < probability / FOREGROUND_SLOWDOWN:
            chosen = cv2.bitwise_or(chosen, mask)
        for c in range(3):
            cv2.copyTo(planes[c], chosen, slot[c])
        # Diffusion: as often, a pixel's colour goes into a neighbour's sample.  With one
        # direction (dy, dx) per frame, pixel q takes the colour of q - (dy, dx): views
        # into 1-px padded copies (the mask padded with zeros) shift whole planes.
        chosen = self._draw(background, probability)
        slot = self._model[int(self._rng.integers(self.samples))]
        dy, dx = NEIGHBOURS[int(self._rng.integers(len(NEIGHBOURS)))]
        height, width = mask.shape
        rows = slice(1 - dy, 1 - dy + height)
        cols = slice(1 - dx, 1 - dx + width)
        where = cv2.copyMakeBorder(chosen, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
        where = np.ascontiguousarray(where[rows, cols])
        for c in range(3):
            padded = cv2.copyMakeBorder(planes[c], 1, 1, 1, 1, cv2.BORDER_REPLICATE)
            cv2.copyTo(np.ascontiguousarray(padded[rows, cols]), where, slot[c])

    def _draw(self, background: np.ndarray, probability: float) -> np.ndarray:
        """Return 255 on background pixels picked with ``probability``, else 0."""
        if probability >= 1.0:
            return background
        height, width = background.shape
        dice = np.frombuffer(self._rng.bytes(height * width), np.uint8).reshape(height, width)
        level = int(round(probability * 256))  # dice < level with that probability
        picked = cv2.threshold(dice, level - 1, 255, cv2.THRESH_BINARY_INV)[1]
        return cv2.bitwise_and(picked, background)

"""
Sample-consensus background subtraction (``bgsub.algorithm: consensus``), vectorised.

The model keeps, for every pixel, ``samples`` past background colours (ViBe, Barnich &
Van Droogenbroeck 2011; SuBSENSE and PAWCS, St-Charles, Bilodeau & Bergevin 2014-2016,
use the same kind of model).  A pixel is background when at least ``min_matches``
samples lie within an L1 colour distance (sum over B, G, R) of the current colour.
Everything is written for whole images at once with OpenCV calls, so the cost is a few
dozen passes over uint8 planes per frame.

Classification
    Matching keeps the ``min_matches`` smallest distances seen so far as running minima
    (a min/max insertion per sample), so "k samples within the threshold" becomes "k-th
    smallest distance ≤ threshold", applied once per pixel.  A ``smooth`` × ``smooth``
    majority vote (a binary median, computed as a box filter) then removes isolated
    pixels and fills pinholes.  The vote also cuts thin parts (arms, feet) and fills
    concave corners, so it is refined: pixels beyond :data:`SURE_FOREGROUND` times their
    threshold near the voted foreground stay foreground, and pixels within
    :data:`SURE_BACKGROUND` times it in the voted foreground's outline band are
    background.

Per-pixel feedback (after SuBSENSE's idea, simplified)
    * Noise: the moving average of a pixel's nearest-sample distance on background
      frames (its own noise level) raises its threshold by ``adapt`` times that level.
    * Blinking: a pixel whose raw label flips between frames away from the borders of
      moving objects (dynamic background: leaves, water, flicker) builds up a blink
      level (a moving average of those flips); the blink level raises the threshold
      further (:data:`BLINK_GAIN`) and speeds up the pixel's updates, up to twice the
      base rate.  Flips near the outline of last frame's foreground do not count, so
      the edge of a moving person, or of one who sways a little, does not become
      "noise"; flips inside a foreground region do (flicker that the vote let through).
    * Time as foreground: a foreground pixel that is not blinking keeps its model (its
      samples are not refreshed, and no neighbour writes into them) until it has been
      foreground for ``still_seconds`` of stamp time; only then is it refreshed at the
      background rate, so a person who stands still stays foreground for that long
      while a parked object eventually becomes background.  Blinking foreground pixels
      are refreshed at once (they are background noise, not an object).

Ghost test (a region released at once)
    Every :data:`GHOST_PERIOD` frames, each connected region of pixels that have been
    foreground for :data:`GHOST_AGE` seconds and that borders background along most of
    its outline is tested.  It is a ghost (an object that left, a stale patch of model)
    when, along its outline, the current frame has much weaker edges than the
    background image (:data:`GHOST_EDGE_RATIO`: the object's silhouette is in the model,
    not in the frame), when its colours along the outline match the background just
    outside it and the frame has no edge of its own there (:data:`GHOST_COLOUR`), or
    when most of its pixels still match at least one of their own samples
    (:data:`GHOST_MATCHING`).  A ghost's samples and background image are set to the
    current frame, and its pixels are background from that frame on.

Cast shadows (``shadow_darkest`` > 0; 0.5 by default)
    A shadow darkens the background by roughly the same factor over a few pixels and
    keeps its texture; CDnet scores hard shadows as background.  In the returned mask
    (not in the model's own labels, so learning, ageing and the ghost test are not
    affected), a foreground pixel is a shadow when its grey level is between
    ``shadow_darkest`` and :data:`SHADOW_LIGHTEST` times the background image's, each
    colour channel's ratio lies between :data:`SHADOW_CHANNEL_SHARE` × ``shadow_darkest``
    and :data:`SHADOW_LIGHTEST` (a shadow darkens every channel), and the grey ratio
    frame / background varies by
    less than :data:`SHADOW_TEXTURE` (coefficient of variation) over a
    :data:`SHADOW_WINDOW` square: the background's texture shows through.  A person's
    uniform clothes in front of a uniform wall can pass that test too, so two rules
    keep objects whole: a cast shadow lies on its object's outline, so only connected
    shadow regions that touch the background are removed (not shadow-like patches
    inside an object; a real shadow's soft edge, its penumbra, passes the test and
    connects it to the background, while a hard-edged dark patch, whose rim fails the
    texture test, stays); and a removed pixel stays foreground when most of its
    ``smooth`` × ``smooth`` window is foreground that is not shadow (a narrow uniform
    part of a person at the outline).  A wide uniform area of the background's colour,
    only darker, at an object's edge cannot be told from a shadow.  The test runs on
    the bounding box of the foreground only.

Holes (``hole_share`` > 0; 0.05 by default)
    Where part of an object has the colour of the background behind it (camouflage: a
    dark car over a tree's shadow, a shirt the colour of the wall), its pixels match
    the model and leave a hole that the majority vote cannot close when it is wider
    than the vote's window.  A region of background enclosed by one foreground region
    (4-connected background not reaching the edge of the image, whose outline is one
    8-connected foreground region) and smaller than ``hole_share`` times that region's
    area is made foreground in the returned mask when its mean colour is within
    :data:`HOLE_COLOUR` × ``threshold`` (L1) of the mean colour of the foreground within
    :data:`HOLE_RING` px of it.  Background seen through an object (between an arm and
    the body, between the legs) stays: it is larger than that share, or its colour
    differs from the object's around it (the colour test keeps a gap of a few per cent
    of a person), unless that object is itself close to the background's colour.  A
    mask with more than :data:`HOLE_LIMIT` holes (noise) is left as it is.  Like the
    shadow test it changes the returned mask only, after the shadow test, on the
    bounding box of the foreground.

Random update
    Updatable pixels replace one of their samples with their pixel's update probability
    (``learn_rate``), and as often copy their colour into the model of one updatable
    neighbour (spatial diffusion, which lets the background follow slow changes).  One
    random sample slot and one neighbour direction are drawn per frame rather than per
    pixel: over time each pixel still sees uniform choices, and an update is a masked
    copy.  Diffusion never writes into a foreground pixel that keeps its model: it
    would erode a still person wherever their colours come close to the background's,
    and then through every similar colour inside them.  Only pixels that are
    background both before and after the vote count as background here (a raw
    foreground pixel voted away is no evidence of background), for the update and
    for the noise level.  A large
    scene change (more than :data:`LARGE_CHANGE` of the frame foreground for
    :data:`RELEARN_SECONDS`, such as the lights going on) re-initialises the model from
    the current frame, unless learning is off (``learn_rate`` 0); so does a person
    who fills most of the view for that long.

Time
    ``apply(frame, stamp)`` takes the frame's stamp in seconds; the time between
    frames is the difference of stamps (at most :data:`MAX_STEP`, so that a pause in
    the stream cannot age a still person into the background), or 1 / :data:`ASSUMED_RATE`
    when there is no stamp (files).

Memory
    :meth:`SampleConsensus.bytes_per_pixel` gives the model's bytes per pixel: the
    ``samples`` × 3 uint8 samples plus :data:`STATE_BYTES` of per-pixel state
    (background image and feedback), plus at most :data:`WORK_BYTES` of per-frame
    temporaries (including the set-up, which draws each sample's neighbour offsets
    as uint8, not as 64-bit index arrays).

The background image is a running mean of the frames over updatable pixels, learnt at
the model's refresh rate.  This module does not import ROS.
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
#: The eight neighbour offsets (dy, dx) used by the diffusion update.
NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
#: Frame rate assumed when frames come without stamps (files, tests).
ASSUMED_RATE = 30.0
#: Largest time step (s) between two frames counted towards a pixel's time as foreground.
MAX_STEP = 1.0
#: Moving-average rate of the blink level (per frame).
BLINK_RATE = 0.05
#: Threshold increase (L1) of a pixel that flips at every frame (blink level 1).
BLINK_GAIN = 45.0
#: Blink level (0-1) above which a foreground pixel counts as noise and is refreshed.
BLINK_LEVEL = 0.3
#: Refinement of the majority vote: pixels beyond this many times their threshold stay
#: foreground near the voted foreground; within this many times it, background.
SURE_FOREGROUND = 3.0
SURE_BACKGROUND = 0.3
#: Seconds a region must have been foreground before the ghost test looks at it.
GHOST_AGE = 0.5
#: The ghost test runs every this many frames.
GHOST_PERIOD = 3
#: Ghost when the frame's edges along the outline are below this share of the model's.
GHOST_EDGE_RATIO = 0.6
#: Ghost when inside and outside colours along the outline differ by less (mean L1) ...
GHOST_COLOUR = 24.0
#: ... and the frame's edges there are at most this many times the model's.
GHOST_COLOUR_EDGE_RATIO = 1.3
#: Ghost when more than this share of its pixels match one of their samples.
GHOST_MATCHING = 0.6
#: Share of a region's outline that must border background for the ghost test.
GHOST_BORDER = 0.6
#: Regions smaller than this (pixels) are left to the majority vote.
GHOST_MIN_PIXELS = 16
#: Share of the frame that is foreground in a large scene change ...
LARGE_CHANGE = 0.6
#: ... for this long (s) before the model is re-initialised.
RELEARN_SECONDS = 0.25
#: Per-pixel state besides the samples: background image (3 float32), noise, blink and
#: time as foreground (float32 each), last raw and smoothed masks (uint8 each).
STATE_BYTES = 12 + 4 + 4 + 4 + 1 + 1
#: Upper bound of the per-frame temporaries per pixel (planes, distances, masks, the
#: ghost test's labels and edges, the set-up's shifted planes and offsets).
WORK_BYTES = 64

#: Shadow test: a shadow pixel's grey level is at most this share of the background's ...
SHADOW_LIGHTEST = 0.95
#: ... each of its colour channels at least this share of ``shadow_darkest`` ...
SHADOW_CHANNEL_SHARE = 0.8
#: ... and the ratio frame / background has a coefficient of variation below this ...
SHADOW_TEXTURE = 0.10
#: ... over windows of this size (px).
SHADOW_WINDOW = 5
#: Added to grey levels before ratios are taken (keeps dark pixels' ratios finite).
SHADOW_OFFSET = 4.0

#: Holes: a hole is filled when its mean colour is within this many times ``threshold``
#: (L1) of the mean colour of the foreground within HOLE_RING px of it.
HOLE_COLOUR = 3.0
HOLE_RING = 2
#: A mask with more holes than this is noise (the majority vote off), not objects with
#: camouflaged parts: it is not filled (this also bounds the work per frame).
HOLE_LIMIT = 1024
#: Ring pixels whose windows are compared at once (bounds that step's memory).
HOLE_CHUNK = 1 << 13

KERNEL3 = np.ones((3, 3), np.uint8)


class SampleConsensus:
    """
    A per-pixel sample model: ``apply(frame, stamp)`` returns the foreground mask (0/255).

    ``learn_rate`` is the fraction of the model refreshed per frame on background pixels
    (an update probability of ``learn_rate * samples``, capped at 1); -1 picks the
    automatic rate.  ``still_seconds`` is how long (stamp time) a foreground pixel that
    is not blinking keeps its model.  ``shadow_darkest`` > 0 leaves cast shadows out of
    the mask; it is the darkest shadow (grey ratio to the background; 0 = no shadow
    test).  All
    arguments except ``samples`` and ``seed`` may change between frames through
    :meth:`configure`.
    """

    def __init__(self, samples: int = 10, threshold: float = 30.0, min_matches: int = 2,
                 adapt: float = 0.5, smooth: int = 9, learn_rate: float = -1.0,
                 still_seconds: float = 300.0, seed: int = 0, shadow_darkest: float = 0.5,
                 hole_share: float = 0.05):
        if samples < 1:
            raise ValueError('samples must be ≥ 1, got %r' % samples)
        self.samples = int(samples)
        self._rng = np.random.default_rng(seed)
        self._model: Optional[np.ndarray] = None  # samples × 3 × H × W uint8
        self._background: Optional[np.ndarray] = None  # H × W × 3 float32
        self._noise: Optional[np.ndarray] = None  # H × W float32, L1 units
        self._blink: Optional[np.ndarray] = None  # H × W float32, 0-255 (255 = always)
        self._age: Optional[np.ndarray] = None  # H × W float32, seconds as foreground
        self._last_raw: Optional[np.ndarray] = None  # H × W uint8
        self._last_mask: Optional[np.ndarray] = None  # H × W uint8
        self._stamp: Optional[float] = None
        self._changed = 0.0  # seconds of large scene change so far
        self._frames = 0
        #: Ghost regions released so far (for tests and diagnostics).
        self.ghosts_released = 0
        #: Times a large scene change re-initialised the model.
        self.relearned = 0
        self.configure(threshold, min_matches, adapt, smooth, learn_rate, still_seconds,
                       shadow_darkest, hole_share)

    @staticmethod
    def bytes_per_pixel(samples: int) -> int:
        """Return the peak bytes per pixel of a model with ``samples`` samples (state + work)."""
        return 3 * int(samples) + STATE_BYTES + WORK_BYTES

    def configure(self, threshold: float, min_matches: int, adapt: float, smooth: int,
                  learn_rate: float, still_seconds: float = 300.0,
                  shadow_darkest: float = 0.5, hole_share: float = 0.05) -> None:
        """Set the dynamic knobs (applied from the next frame)."""
        if not 1 <= min_matches <= self.samples:
            raise ValueError('min_matches must lie in 1 … samples (%d), got %r'
                             % (self.samples, min_matches))
        if not still_seconds >= 0:  # also refuses NaN
            raise ValueError('still_seconds must be ≥ 0, got %r' % still_seconds)
        if not 0 <= shadow_darkest <= SHADOW_LIGHTEST:  # also refuses NaN
            raise ValueError('shadow_darkest must lie in [0, %g], got %r'
                             % (SHADOW_LIGHTEST, shadow_darkest))
        if not 0 <= hole_share <= 1:  # also refuses NaN
            raise ValueError('hole_share must lie in [0, 1], got %r' % hole_share)
        self.threshold = float(threshold)
        self.min_matches = int(min_matches)
        self.adapt = float(adapt)
        self.smooth = int(smooth)
        self.learn_rate = float(learn_rate)
        self.still_seconds = float(still_seconds)
        self.shadow_darkest = float(shadow_darkest)
        self.hole_share = float(hole_share)

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
        self._stamp = None

    # -- per frame --------------------------------------------------------------------

    def apply(self, frame: np.ndarray, stamp: Optional[float] = None) -> np.ndarray:
        """Classify one BGR uint8 frame (stamp in seconds), learn from it; return the mask."""
        step = self._step(stamp)
        if self._model is None or self._model.shape[2:] != frame.shape[:2]:
            self._initialise(frame)
            return np.zeros(frame.shape[:2], np.uint8)
        self._frames += 1
        planes = cv2.split(frame)
        smallest = self._smallest_distances(planes)
        limit = self._limit()
        raw = cv2.compare(smallest[-1], limit, cv2.CMP_GT)
        mask = self._smooth(raw, smallest[-1], limit)
        if self._large_change(mask, step):
            self._initialise(frame)
            self.relearned += 1
            return np.zeros(frame.shape[:2], np.uint8)
        self._update_blink(raw)
        self._update_age(mask, step)
        if self.update_probability > 0 and self._frames % GHOST_PERIOD == 0:
            self._release_ghosts(frame, planes, mask, smallest[0], limit)
        self._learn(frame, planes, mask, raw, smallest[0])
        self._last_raw = raw
        self._last_mask = mask
        if self.shadow_darkest > 0:
            mask = self._without_shadows(frame, mask)
        if self.hole_share > 0:
            mask = filled_holes(mask, self.hole_share, frame, HOLE_COLOUR * self.threshold)
        return mask

    def background_image(self) -> Optional[np.ndarray]:
        """Return the background estimate (BGR uint8), or None before the first frame."""
        if self._background is None:
            return None
        return cv2.convertScaleAbs(self._background)

    # -- steps --------------------------------------------------------------------------

    def _step(self, stamp: Optional[float]) -> float:
        """Return the seconds since the last frame (from stamps, else the assumed rate)."""
        step = 1.0 / ASSUMED_RATE
        if stamp is not None and self._stamp is not None:
            step = min(max(float(stamp) - self._stamp, 0.0), MAX_STEP)
        self._stamp = None if stamp is None else float(stamp)
        return step

    def _initialise(self, frame: np.ndarray) -> None:
        """
        Fill every sample with the colour of a random 3×3 neighbour in ``frame``.

        The neighbour of each pixel is drawn as a uint8 offset code (0-8) per sample,
        and each sample is assembled plane by plane from the nine shifted planes by
        masked copies, so the set-up needs a few bytes per pixel beyond the model.
        """
        height, width = frame.shape[:2]
        model = np.empty((self.samples, 3, height, width), np.uint8)
        shifted = []
        for c, plane in enumerate(cv2.split(frame)):
            padded = cv2.copyMakeBorder(plane, 1, 1, 1, 1, cv2.BORDER_REFLECT)
            shifted.append([np.ascontiguousarray(padded[1 + dy:1 + dy + height,
                                                        1 + dx:1 + dx + width])
                            for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
            model[0, c] = plane
        for s in range(1, self.samples):
            codes = np.frombuffer(self._rng.bytes(height * width), np.uint8)
            codes = (codes.reshape(height, width) % 9).astype(np.uint8)
            for code in range(9):
                where = cv2.compare(codes, code, cv2.CMP_EQ)
                for c in range(3):
                    cv2.copyTo(shifted[c][code], where, model[s, c])
        self._model = model
        self._background = frame.astype(np.float32)
        self._noise = np.zeros((height, width), np.float32)
        self._blink = np.zeros((height, width), np.float32)
        self._age = np.zeros((height, width), np.float32)
        self._last_raw = np.zeros((height, width), np.uint8)
        self._last_mask = np.zeros((height, width), np.uint8)
        self._changed = 0.0

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

    def _limit(self) -> np.ndarray:
        """Return each pixel's distance threshold (uint8): base + noise and blink feedback."""
        return cv2.addWeighted(self._noise, self.adapt, self._blink, BLINK_GAIN / 255.0,
                               min(self.threshold, 255.0), dtype=cv2.CV_8U)

    def _smooth(self, raw: np.ndarray, kth: np.ndarray, limit: np.ndarray) -> np.ndarray:
        """
        Majority vote over smooth × smooth windows (binary median filter), refined.

        The vote removes specks and fills pinholes but also cuts thin parts (an arm) and
        fills concave corners; pixels far beyond their threshold (:data:`SURE_FOREGROUND`
        times it) next to the voted foreground stay foreground, and pixels well within it
        (:data:`SURE_BACKGROUND` times it) are background.
        """
        if self.smooth <= 1:
            return raw
        votes = cv2.blur(raw, (self.smooth, self.smooth), borderType=cv2.BORDER_REPLICATE)
        mask = cv2.threshold(votes, 127, 255, cv2.THRESH_BINARY)[1]
        if SURE_FOREGROUND > 0:
            sure = cv2.compare(kth, cv2.convertScaleAbs(limit, alpha=SURE_FOREGROUND),
                               cv2.CMP_GT)
            near = cv2.dilate(mask, KERNEL3, iterations=self.smooth // 2)
            cv2.bitwise_or(mask, cv2.bitwise_and(sure, near), dst=mask)
        if SURE_BACKGROUND > 0:
            sure = cv2.compare(kth, cv2.convertScaleAbs(limit, alpha=SURE_BACKGROUND),
                               cv2.CMP_LE)
            inner = cv2.erode(mask, KERNEL3, iterations=self.smooth // 2)
            cv2.bitwise_and(sure, cv2.bitwise_not(inner), dst=sure)
            cv2.bitwise_and(mask, cv2.bitwise_not(sure), dst=mask)
        return mask

    def _large_change(self, mask: np.ndarray, step: float) -> bool:
        """Return True when most of the frame has been foreground for RELEARN_SECONDS."""
        if self.update_probability <= 0:
            return False
        if cv2.countNonZero(mask) > LARGE_CHANGE * mask.size:
            self._changed += step
        else:
            self._changed = 0.0
        return self._changed >= RELEARN_SECONDS

    def _update_blink(self, raw: np.ndarray) -> None:
        """Raise the blink level where the raw label flipped away from last outlines."""
        flips = cv2.bitwise_xor(raw, self._last_raw)
        outline = cv2.bitwise_and(cv2.dilate(self._last_mask, KERNEL3, iterations=2),
                                  cv2.bitwise_not(cv2.erode(self._last_mask, KERNEL3,
                                                            iterations=2)))
        cv2.bitwise_and(flips, cv2.bitwise_not(outline), dst=flips)
        cv2.accumulateWeighted(flips, self._blink, BLINK_RATE)

    def _update_age(self, mask: np.ndarray, step: float) -> None:
        """Add ``step`` seconds to foreground pixels; background pixels start again at 0."""
        self._age += step
        self._age[mask == 0] = 0.0

    def _release_ghosts(self, frame, planes, mask, nearest, limit) -> None:
        """Find ghost regions among old foreground and make them background (see module)."""
        old = cv2.bitwise_and(cv2.compare(self._age, GHOST_AGE, cv2.CMP_GE), mask)
        if cv2.countNonZero(old) < GHOST_MIN_PIXELS:
            return
        count, labels = cv2.connectedComponents(old, connectivity=8, ltype=cv2.CV_32S)
        if count <= 1:
            return
        background = cv2.bitwise_not(mask)
        # Outline: old pixels next to background (inner) and background next to them
        # (outer); the outer pixels take the label of their neighbouring region.
        outline = cv2.bitwise_and(old, cv2.dilate(cv2.bitwise_not(old), KERNEL3))
        inner = cv2.bitwise_and(outline, cv2.dilate(background, KERNEL3))
        outer = cv2.bitwise_and(background, cv2.dilate(old, KERNEL3))
        wide = labels.astype(np.float32 if count > 65535 else np.uint16)
        outer_labels = cv2.dilate(wide, KERNEL3).astype(np.int32)

        def per_label(where, values, label_image=labels):
            picked = where > 0
            return np.bincount(label_image[picked], weights=None if values is None
                               else values[picked], minlength=count)[:count]

        sizes = per_label(old, None)
        n_outline = per_label(outline, None)
        n_inner = per_label(inner, None)
        n_outer = per_label(outer, None, outer_labels)
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        model_grey = cv2.cvtColor(self.background_image(), cv2.COLOR_BGR2GRAY)
        edges = cv2.morphologyEx(grey, cv2.MORPH_GRADIENT, KERNEL3)
        model_edges = cv2.morphologyEx(model_grey, cv2.MORPH_GRADIENT, KERNEL3)
        frame_edge = (per_label(inner, edges) + per_label(outer, edges, outer_labels))
        model_edge = (per_label(inner, model_edges)
                      + per_label(outer, model_edges, outer_labels))
        colour = np.zeros(count)
        for plane in planes:
            inside = per_label(inner, plane) / np.maximum(n_inner, 1)
            outside = per_label(outer, plane, outer_labels) / np.maximum(n_outer, 1)
            colour += np.abs(inside - outside)
        matched = cv2.compare(nearest, limit, cv2.CMP_LE)
        matching = per_label(cv2.bitwise_and(matched, old), None) / np.maximum(sizes, 1)

        testable = ((sizes >= GHOST_MIN_PIXELS) & (n_outer > 0)
                    & (n_inner >= GHOST_BORDER * np.maximum(n_outline, 1)))
        ghost = testable & ((frame_edge < GHOST_EDGE_RATIO * model_edge)
                            | ((colour < GHOST_COLOUR)
                               & (frame_edge <= GHOST_COLOUR_EDGE_RATIO * model_edge))
                            | (matching > GHOST_MATCHING))
        ghost[0] = False
        if not ghost.any():
            return
        region = cv2.dilate(ghost[labels].astype(np.uint8) * 255, KERNEL3)
        region = cv2.bitwise_and(region, mask)
        for sample in self._model:
            for c in range(3):
                cv2.copyTo(planes[c], region, sample[c])
        cv2.copyTo(frame.astype(np.float32), region, self._background)
        self._age[region > 0] = 0.0
        cv2.bitwise_and(mask, cv2.bitwise_not(region), dst=mask)
        self.ghosts_released += int(np.count_nonzero(ghost))

    def _without_shadows(self, frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Return ``mask`` less its shadow pixels, except those inside non-shadow foreground."""
        x, y, width, height = cv2.boundingRect(mask)
        if width == 0 or height == 0:
            return mask
        # The box of the foreground, widened so windows and votes see past its edge.
        pad = max(SHADOW_WINDOW, self.smooth)
        rows, cols = mask.shape
        box = (slice(max(y - pad, 0), min(y + height + pad, rows)),
               slice(max(x - pad, 0), min(x + width + pad, cols)))
        part = mask[box]
        shadow = shadow_pixels(frame[box], self._background[box], self.shadow_darkest)
        cv2.bitwise_and(shadow, part, dst=shadow)
        if not shadow.any():
            return mask
        # A cast shadow lies on the outline of its object: only shadow regions that
        # touch the background count.
        count, labels = cv2.connectedComponents(shadow, connectivity=8, ltype=cv2.CV_32S)
        touching = cv2.bitwise_and(shadow, cv2.dilate(cv2.bitwise_not(part), KERNEL3))
        outer = np.zeros(count, bool)
        outer[labels[touching > 0]] = True
        outer[0] = False
        if not outer.any():
            return mask
        shadow = outer[labels].astype(np.uint8) * 255
        kept = cv2.bitwise_and(part, cv2.bitwise_not(shadow))
        if self.smooth > 1:
            votes = cv2.blur(kept, (self.smooth, self.smooth), borderType=cv2.BORDER_REPLICATE)
            inside = cv2.threshold(votes, 127, 255, cv2.THRESH_BINARY)[1]
            cv2.bitwise_or(kept, cv2.bitwise_and(inside, shadow), dst=kept)
        out = mask.copy()
        out[box] = kept
        return out

    def _learn(self, frame, planes, mask, raw, nearest) -> None:
        """Update samples, background image and noise level from updatable pixels."""
        probability = self.update_probability
        # Background for the update: background both before and after the majority vote
        # (a raw foreground pixel voted away is not evidence of background).
        foreground = cv2.bitwise_or(mask, raw)
        background = cv2.bitwise_not(foreground)
        if self.adapt > 0:
            cv2.accumulateWeighted(nearest, self._noise, NOISE_RATE, mask=background)
        if probability <= 0:
            return
        # Foreground pixels refresh their model only once still for still_seconds, or
        # while they blink (background noise).
        absorb = cv2.bitwise_or(cv2.compare(self._age, self.still_seconds, cv2.CMP_GE),
                                cv2.compare(self._blink, BLINK_LEVEL * 255, cv2.CMP_GE))
        updatable = cv2.bitwise_or(background, cv2.bitwise_and(absorb, foreground))
        # Per-pixel update level: probability × (1 + blink level), as dice < level / 256.
        level = cv2.convertScaleAbs(self._blink, alpha=probability,
                                    beta=probability * 256)
        cv2.accumulateWeighted(frame, self._background, probability / self.samples,
                               mask=updatable)
        slot = self._model[int(self._rng.integers(self.samples))]
        chosen = self._draw(updatable, level, probability)
        for c in range(3):
            cv2.copyTo(planes[c], chosen, slot[c])
        # Diffusion: as often, a pixel's colour goes into a neighbour's sample.  With one
        # direction (dy, dx) per frame, pixel q takes the colour of q - (dy, dx) when
        # both may update: views into 1-px padded copies shift whole planes.
        chosen = self._draw(updatable, level, probability)
        slot = self._model[int(self._rng.integers(self.samples))]
        dy, dx = NEIGHBOURS[int(self._rng.integers(len(NEIGHBOURS)))]
        height, width = mask.shape
        rows = slice(1 - dy, 1 - dy + height)
        cols = slice(1 - dx, 1 - dx + width)
        where = cv2.copyMakeBorder(chosen, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
        where = np.ascontiguousarray(where[rows, cols])
        cv2.bitwise_and(where, updatable, dst=where)
        for c in range(3):
            padded = cv2.copyMakeBorder(planes[c], 1, 1, 1, 1, cv2.BORDER_REPLICATE)
            cv2.copyTo(np.ascontiguousarray(padded[rows, cols]), where, slot[c])

    def _draw(self, updatable: np.ndarray, level: np.ndarray,
              probability: float) -> np.ndarray:
        """Return 255 on updatable pixels picked with their level / 256, else 0."""
        if probability >= 1.0:
            return updatable
        height, width = updatable.shape
        dice = np.frombuffer(self._rng.bytes(height * width), np.uint8).reshape(height, width)
        picked = cv2.compare(dice, level, cv2.CMP_LT)
        return cv2.bitwise_and(picked, updatable)


def filled_holes(mask: np.ndarray, share: float, frame: np.ndarray,
                 colour: float) -> np.ndarray:
    """
    Return ``mask`` (0/255) with its small, object-coloured holes filled (a copy if any is).

    A hole is a 4-connected background region that does not reach the edge of the
    image.  It is filled when its area is below ``share`` times the area of the
    8-connected foreground region around it (not of an island inside it) and the mean
    colour of ``frame`` (BGR) over it lies within ``colour`` (L1, sum over B, G, R) of
    the mean colour of the foreground within :data:`HOLE_RING` px of it.  Works on the
    bounding box of the foreground: outside it everything is background, so a region
    that reaches the box's edge is not a hole.  A mask with more than
    :data:`HOLE_LIMIT` holes is returned as it is.
    """
    x, y, width, height = cv2.boundingRect(mask)
    if width < 3 or height < 3:
        return mask
    box = (slice(y, y + height), slice(x, x + width))
    part = mask[box]
    background = cv2.bitwise_not(part)
    if cv2.countNonZero(background) == 0:
        return mask
    # SAUF named: OpenCV 4.5's default 4-connected labelling crashes (Ubuntu 22.04's 4.5.4).
    count, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(
        background, 4, cv2.CV_32S, cv2.CCL_SAUF)
    if count <= 1:
        return mask
    hole = np.ones(count, bool)
    for edge in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        hole[edge] = False
    hole[0] = False  # label 0: the foreground
    if not 0 < np.count_nonzero(hole) <= HOLE_LIMIT:
        return mask
    # Size: the pixel left of a hole's leftmost column is foreground (4-adjacent to the
    # hole) and joined to the outside by its row, which holds no pixel of the hole: it
    # lies on the hole's outer border, which is one 8-connected foreground region (the
    # region around the hole, not an island inside it).  One column slice per hole.
    _, regions, region_stats, _ = cv2.connectedComponentsWithStats(
        part, connectivity=8, ltype=cv2.CV_32S)
    holes = np.flatnonzero(hole)
    lefts = stats[holes, cv2.CC_STAT_LEFT]
    tops = stats[holes, cv2.CC_STAT_TOP]
    bottoms = tops + stats[holes, cv2.CC_STAT_HEIGHT]
    rows = [top + int(np.argmax(labels[top:bottom, left] == k))
            for k, top, bottom, left in zip(holes, tops, bottoms, lefts)]
    enclosing = np.zeros(count, np.int64)
    enclosing[holes] = region_stats[regions[rows, lefts - 1], cv2.CC_STAT_AREA]
    hole &= stats[:, cv2.CC_STAT_AREA] < share * enclosing
    if not hole.any():
        return mask
    # Colour: the small holes are numbered 1 … n (n ≤ HOLE_LIMIT), and the foreground
    # within HOLE_RING px of one hole takes its number (the dilation of the numbers
    # equals their erosion there), over the box of the small holes widened by HOLE_RING
    # and cut to the foreground's box (outside it there is no foreground).
    small = np.flatnonzero(hole)
    left = stats[small, cv2.CC_STAT_LEFT].min() - HOLE_RING
    top = stats[small, cv2.CC_STAT_TOP].min() - HOLE_RING
    right = (stats[small, cv2.CC_STAT_LEFT] + stats[small, cv2.CC_STAT_WIDTH]).max() + HOLE_RING
    bottom = (stats[small, cv2.CC_STAT_TOP] + stats[small, cv2.CC_STAT_HEIGHT]).max() + HOLE_RING
    near = (slice(max(top, 0), bottom), slice(max(left, 0), right))
    number = np.zeros(count, np.uint16)
    number[small] = np.arange(1, small.size + 1)
    numbers = number[labels[near]]
    inside = numbers > 0
    spread = 2 * HOLE_RING + 1
    kernel = np.ones((spread, spread), np.uint8)
    highest = cv2.dilate(numbers, kernel)
    lowest = cv2.erode(np.where(inside, numbers, np.uint16(65535)), kernel)
    ring = (part[near] > 0) & (highest > 0)
    alone = ring & (highest == lowest)
    colours = frame[y:y + height, x:x + width][near]
    bins = small.size + 1
    owners = highest[alone]
    pixels = colours[alone]
    in_ring = np.bincount(owners, minlength=bins).astype(float)
    ring_sums = np.array([np.bincount(owners, pixels[:, c], bins) for c in range(3)])
    # A ring pixel near several small holes (a few px apart) counts for each of them: the
    # numbers of its spread × spread window, sorted, each distinct one once (HOLE_CHUNK
    # pixels at a time, which bounds the memory).
    shared_rows, shared_cols = np.nonzero(ring & ~alone)
    if shared_rows.size:
        padded = cv2.copyMakeBorder(numbers, HOLE_RING, HOLE_RING, HOLE_RING, HOLE_RING,
                                    cv2.BORDER_CONSTANT, value=0)
    for start in range(0, shared_rows.size, HOLE_CHUNK):
        rows = shared_rows[start:start + HOLE_CHUNK]
        cols = shared_cols[start:start + HOLE_CHUNK]
        window = np.empty((spread * spread, rows.size), np.uint16)
        for i in range(spread * spread):
            window[i] = padded[rows + i // spread, cols + i % spread]
        window.sort(axis=0)
        first = window > 0
        first[1:] &= window[1:] != window[:-1]
        owners = window[first]
        pixels = colours[rows, cols][np.nonzero(first)[1]]
        in_ring += np.bincount(owners, minlength=bins)
        for c in range(3):
            ring_sums[c] += np.bincount(owners, pixels[:, c], bins)
    hole_numbers = numbers[inside]
    in_hole = np.bincount(hole_numbers, minlength=bins)
    distance = np.zeros(bins)
    for c in range(3):
        hole_sum = np.bincount(hole_numbers, colours[..., c][inside], bins)
        distance += np.abs(hole_sum / np.maximum(in_hole, 1)
                           - ring_sums[c] / np.maximum(in_ring, 1))
    filled = (in_ring > 0) & (distance <= colour)
    filled[0] = False
    if not filled.any():
        return mask
    out = mask.copy()
    out[box][near][filled[numbers]] = 255
    return out


def shadow_pixels(frame: np.ndarray, background: np.ndarray,
                  darkest: float = 0.5) -> np.ndarray:
    """
    Return 255 where ``frame`` (BGR uint8) looks like ``background`` under a cast shadow.

    ``background`` is the model's background image (BGR, any depth).  Both tests of
    :func:`shadow_tests` per pixel (no outline rule).
    """
    dim, flat = shadow_tests(frame, background, darkest)
    return cv2.bitwise_and(dim, flat)


def shadow_tests(frame: np.ndarray, background: np.ndarray, darkest: float = 0.5):
    """
    Return the colour and texture parts of the shadow test (uint8 masks, 255 = pass).

    Colour: grey ratio frame / background in [``darkest``, :data:`SHADOW_LIGHTEST`],
    each channel's ratio in [:data:`SHADOW_CHANNEL_SHARE` × ``darkest``,
    :data:`SHADOW_LIGHTEST`].  Texture: the grey ratio's coefficient of variation over
    :data:`SHADOW_WINDOW` squares at most :data:`SHADOW_TEXTURE`.
    """
    # a 4-tuple: OpenCV 4.x reads a bare number as Scalar(v, 0, 0, 0), blue channel only
    offset = (SHADOW_OFFSET,) * 4
    colour = cv2.add(np.ascontiguousarray(frame), offset, dtype=cv2.CV_32F)
    model = cv2.add(np.ascontiguousarray(background), offset, dtype=cv2.CV_32F)
    grey = cv2.divide(cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY),
                      cv2.cvtColor(model, cv2.COLOR_BGR2GRAY))
    shadow = cv2.inRange(grey, darkest, SHADOW_LIGHTEST)
    # inRange over the three channel ratios: 255 where all of them lie in range.
    low = SHADOW_CHANNEL_SHARE * darkest
    cv2.bitwise_and(shadow, cv2.inRange(cv2.divide(colour, model), (low,) * 3,
                                        (SHADOW_LIGHTEST,) * 3), dst=shadow)
    size = (SHADOW_WINDOW, SHADOW_WINDOW)
    mean = cv2.blur(grey, size, borderType=cv2.BORDER_REPLICATE)
    square = cv2.blur(cv2.multiply(grey, grey), size, borderType=cv2.BORDER_REPLICATE)
    # variance ≤ (texture × mean)²  ⇔  mean of squares ≤ (1 + texture²) × mean²
    textured = cv2.compare(square, cv2.multiply(mean, mean, scale=1.0 + SHADOW_TEXTURE ** 2),
                           cv2.CMP_LE)
    return shadow, textured

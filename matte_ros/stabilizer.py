"""
Temporal stabiliser: calms a flickering alpha where the image did not change.

ROS-free.  The pipeline runs it between the segmenter and the mask threshold, for
every segmenter, when ``stabilizer.enabled`` is true.  It only looks at the past (the
previous frame and its stabilised alpha), so it adds no frame of delay:

    a_t = alpha_t + w_t * (a_{t-1} - alpha_t)

an exponential moving average whose weight ``w_t`` is chosen per pixel from how much
the image changed there, measured against how much it could change by noise and by a
sub-pixel shift of the local texture.  ``g`` is the green channel at half resolution
(every second pixel and row: most of the luma, a quarter of the work), and the weights
are spread back over each 2×2 block:

    d = |g_t - g_{t-1}|, spread to each pixel's 3×3 neighbourhood (its maximum), so
        that the pixels beside a moving edge count as changed too
    c = local contrast of g_t (3×3 maximum - minimum)
    w = stabilizer.strength × max(0, 1 - d / (CONTRAST × c + stabilizer.motion))

Where the image is still (``d`` near 0) the output keeps most of its past: a pixel that
the segmenter toggles on and off from noise, or from its own jitter while the scene
barely moves, no longer flips.  Where the image changed by more than
``stabilizer.motion`` grey levels plus half the local contrast the weight is 0 and the
segmenter's alpha passes through untouched.  An edge that moves by a pixel or more
changes by its whole contrast ``c``, which exceeds ``c / 2 + motion`` once ``c`` is
above twice ``stabilizer.motion``: a moving person visible against the background (or
a panning camera) is not smeared and does not lag; the gate is the evidence, in the
image itself, that the matte is allowed to change.  Fainter edges are smoothed in
part, in proportion to how faint they are.  Texture that shifts by less than half a pixel is
smoothed (its matte edge cannot have moved further).  A change the segmenter makes on
a still image (a person standing still that a background model starts to absorb) is
followed at the EMA's rate instead of at once.

Mask hysteresis: the mask is ``alpha > threshold``, so a pixel whose alpha hovers at the
threshold toggles however little it moves.  With the smoothed alpha ``a_t`` and the
mask published with the previous frame ``m_{t-1}``, a pixel that would change side
keeps ``m_{t-1}`` while

    |a_t - threshold| < stabilizer.hysteresis × max(0, 1 - d / (CONTRAST × c + motion))

(the same gate as the weight) and is published with the alpha it had in the previous
output, so its mask bit and alpha stand still.  The band is widest where the image is
still and gone where it moved by more than the motion gate: a moving edge is never
held.  It is a Schmitt trigger on a still pixel: a change the segmenter keeps making
passes once the average has moved past the band (one frame later than without it for
a 0/1 alpha on a perfectly still pixel), while an alpha that settles within the band
keeps the previous side until the image changes there.  The hold works on the output
only: the state of the average stays ``a_t``, so evidence against a held bit
accumulates as if there were no hold.

Reset policy: the state (previous grey frame and alpha) is dropped on
:meth:`Stabilizer.reset` and whenever the segmenter's reset count changes (the
pipeline passes it in), so it follows exactly the segmenter's resets: ``~/reset``,
deactivation, and every discontinuity its :class:`~matte_ros.segmenters.base.Continuity`
detects (stamp going backwards or jumping, resolution or frame_id change); and on a
change of frame size.  Switching it off drops the state too.

Cost: a difference, three 3×3 min/max filters, a division and a table look-up in
uint8 on a quarter of the pixels, and an enlargement (each value written twice as a
uint16, each row twice); then, in strips of rows that stay in the cache, the two
weights (a multiplication and a subtraction in float32), one float blend and, for the
hysteresis, two float-to-uint8 passes and three uint8 ones; held pixels, a handful on
most frames, are found row by row (a maximum per row, 8 bytes at a time) and written
one by one, with a whole-plane copy only when they spread over many rows.  Alpha and
the two state planes each cross the memory once per frame (the later passes over a
strip find it in the cache) and no full-size array is allocated per frame.  NumPy and
OpenCV; the measured figure is in docs/quality.md.
"""

from typing import Any
from typing import Dict
from typing import Optional

import cv2
import numpy as np

#: 3×3 neighbourhood of the change spread and of the local contrast.
_KERNEL = np.ones((3, 3), np.uint8)
#: Share of the local contrast (3×3 max - min) that a change must exceed, beyond
#: ``stabilizer.motion``, before smoothing stops; 0.5: an edge that moves by a whole
#: pixel changes by its full contrast and is never smoothed.
CONTRAST = 0.5
#: Resolution of the change / (contrast + motion) ratio: steps per unit.
RATIO_STEPS = 64
#: ratio → RATIO_STEPS - ratio, clipped at 0: the open share of the gate.
_OPEN = np.clip(RATIO_STEPS - np.arange(256), 0, 255).astype(np.uint8)
#: Pixels per strip of rows of the full-size work (the weights of a strip, float32, fit
#: in a core's cache).
STRIP_PIXELS = 1 << 16
_ONE = np.float32(1.0)
#: Share of the rows with a held pixel above which the hold copies the whole plane.
DENSE_ROWS = 0.125


def weight_table(strength: float) -> np.ndarray:
    """Return the 256-entry float32 table: ratio (in 1/RATIO_STEPS) → weight of the past."""
    ratio = np.arange(256, dtype=np.float32) / np.float32(RATIO_STEPS)
    return (np.float32(strength) * np.clip(1.0 - ratio, 0.0, 1.0)).astype(np.float32)


def half_grey(frame: np.ndarray) -> np.ndarray:
    """
    Return the image the gate compares: every second pixel of every second row.

    Green of a BGR frame (most of the luma, no colour conversion), or the frame itself
    when it has one channel; uint8, contiguous, ceil(H/2) × ceil(W/2).
    """
    plane = frame[::2, ::2, 1] if frame.ndim == 3 else frame[::2, ::2]
    return np.ascontiguousarray(plane)


#: Memory per frame pixel while enabled (bytes, rounded up): two state planes (this
#: frame's and the previous one) and, for the hysteresis, two output planes (float32);
#: the gate, two mask planes and two hysteresis planes (uint8); the two weight planes
#: of one strip of rows (float32, ``STRIP_PIXELS`` each at most: up to 8 bytes per
#: pixel of a small frame, less of a large one); the half-size planes and temporaries.
BYTES_PER_PIXEL = 32


def memory_bytes(config: Dict[str, Any], pixels: int) -> int:
    """Return the stabiliser's memory for frames of ``pixels`` pixels (0 when disabled)."""
    return BYTES_PER_PIXEL * int(pixels) if config.get('stabilizer.enabled') else 0


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
        self.hysteresis = 0.0
        self.threshold = 0.5
        self._published: Optional[np.ndarray] = None
        self._mask: Optional[np.ndarray] = None
        self._step = np.float32(0.0)
        self._buffers = None
        self._patch = None
        self._grey: Optional[np.ndarray] = None
        self._alpha: Optional[np.ndarray] = None
        self._resets_seen: Optional[int] = None
        self.resets = 0
        self.last_reset_reason: Optional[str] = None
        self.configure(config)

    def configure(self, config: Dict[str, Any]) -> None:
        """Take ``stabilizer.*`` values (validated by the schema) from the next frame on."""
        enabled = bool(config['stabilizer.enabled'])
        self.strength = float(config['stabilizer.strength'])
        self.motion = int(config['stabilizer.motion'])
        # The weight per step of the open share (exact: a power of two apart).
        self._step = np.float32(self.strength) / np.float32(RATIO_STEPS)
        self.hysteresis = float(config['stabilizer.hysteresis'])
        threshold = float(config['threshold'])
        if threshold != self.threshold:
            self._mask = None       # the previous sides were taken at another threshold
        self.threshold = threshold
        if self.enabled and not enabled:
            self.reset('stabilizer switched off')
        self.enabled = enabled

    def reset(self, reason: str = 'requested') -> None:
        """Forget the previous frame and alpha (the next frame passes through)."""
        self._grey = None
        self._alpha = None
        self._mask = None
        self._published = None
        self._patch = None
        self.resets += 1
        self.last_reset_reason = reason

    def apply(self, frame: np.ndarray, alpha: np.ndarray,
              segmenter_resets: Optional[int] = None) -> np.ndarray:
        """
        Return the stabilised alpha of this frame (the input alpha when disabled).

        The returned array belongs to the stabiliser and is valid until the next call
        (its planes are reused from frame to frame, so no full-size array is allocated
        per frame): read it, do not write into it or keep it.

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
        grey = half_grey(frame)
        previous, previous_alpha = self._grey, self._alpha
        if previous is None or previous.shape != grey.shape or \
                previous_alpha.shape != alpha.shape:
            if previous is not None:
                self.reset('frame size changed')
            buffers = self._planes_for(alpha.shape)
            self._grey, self._alpha = grey, buffers['alpha'][0]
            np.copyto(self._alpha, alpha)
            self._published = self._alpha
            if self.hysteresis > 0.0:
                self._mask = np.greater(self._alpha, self.threshold,
                                        out=buffers['mask'][0]).view(np.uint8)
            return alpha
        buffers = self._planes_for(alpha.shape)
        change = cv2.dilate(cv2.absdiff(grey, previous), _KERNEL)
        # CONTRAST x local contrast + motion (uint8, saturated); change / that in
        # 1/RATIO_STEPS units (uint8, saturated), and its complement: the open share
        # of the gate RATIO_STEPS - ratio (0 where the ratio is RATIO_STEPS or more).
        contrast = cv2.morphologyEx(grey, cv2.MORPH_GRADIENT, _KERNEL)
        scale = cv2.addWeighted(contrast, CONTRAST, contrast, 0.0, float(self.motion))
        ratio = cv2.divide(change, scale, scale=RATIO_STEPS)
        cv2.LUT(ratio, _OPEN, dst=ratio)
        # Spread back to full size in uint8; the rest runs in strips of rows, so that
        # the weights and the hysteresis planes of a strip stay in the cache.
        gate = buffers['open']
        spread(ratio, gate, buffers['spread'])
        # out = w * past + (1 - w) * alpha in one pass (OpenCV divides by the weights'
        # sum + 1e-5: 1e-5 relative, invisible in mono8), into the state plane the
        # previous frame did not use; a NaN alpha becomes 0 rather than staying in the
        # state.  A previous output with held pixels is the state plane with those
        # pixels overwritten: they get their state back for the blend.
        out = buffers['alpha'][1] if previous_alpha is buffers['alpha'][0] \
            else buffers['alpha'][0]
        patch, self._patch = self._patch, None
        if patch is not None:
            flat = previous_alpha.reshape(-1)
            index, kept = patch
            published = flat[index]
            flat[index] = kept
        mask, side = self._mask, None
        if self.hysteresis > 0.0:
            plane = buffers['mask'][1] if mask is not None and \
                mask.base is buffers['mask'][0] else buffers['mask'][0]
            side = plane.view(np.uint8)                                         # 0 / 1
            if mask is not None and mask.shape != side.shape:
                mask = None
        past, now = buffers['past'], buffers['now']
        near, held = buffers['distance'], buffers['held']
        scale = RATIO_STEPS / self.hysteresis if side is not None else 0.0
        step = past.shape[0]
        for top in range(0, alpha.shape[0], step):
            rows = slice(top, top + step)
            part = gate[rows]
            weights = past[:part.shape[0]], now[:part.shape[0]]
            # w = strength × open / RATIO_STEPS and 1 - w, in float32: the values of
            # weight_table and of 1 - weight_table, bit for bit.
            np.multiply(part, self._step, out=weights[0], dtype=np.float32)
            np.subtract(_ONE, weights[0], out=weights[1], dtype=np.float32)
            blended = out[rows]
            cv2.blendLinear(previous_alpha[rows], alpha[rows], weights[0], weights[1],
                            dst=blended)
            cv2.patchNaNs(blended, 0.0)
            if side is not None:
                np.greater(blended, self.threshold, out=plane[rows])
            if mask is not None:
                # RATIO_STEPS × |a - threshold| / hysteresis < gate, on the pixels
                # that change side: held (see _hold).
                cv2.convertScaleAbs(blended, dst=near[rows], alpha=scale,
                                    beta=-scale * self.threshold)
                cv2.compare(near[rows], part, cv2.CMP_LT, dst=near[rows])      # 255 / 0
                cv2.bitwise_xor(side[rows], mask[rows], dst=held[rows])
                cv2.bitwise_and(held[rows], near[rows], dst=held[rows])        # 0 / 1
        if patch is not None:
            flat[index] = published
        self._grey, self._alpha = grey, out
        return self._hold(out, side, mask, buffers)

    def state(self) -> Optional[np.ndarray]:
        """Return a copy of the average ``a_t`` (None before the first frame), without holds."""
        if self._alpha is None:
            return None
        average = self._alpha.copy()
        if self._patch is not None:
            index, values = self._patch
            average.reshape(-1)[index] = values
        return average

    def _planes_for(self, shape) -> Dict[str, Any]:
        """Return the full-size work planes for frames of ``shape`` (made once per size)."""
        if self._buffers is None or self._buffers['open'].shape != shape:
            half = ((shape[0] + 1) // 2, (shape[1] + 1) // 2)
            strip = (min(shape[0], max(1, STRIP_PIXELS // max(1, shape[1]))), shape[1])
            self._buffers = {
                'alpha': (np.empty(shape, np.float32), np.empty(shape, np.float32)),
                'mask': (np.empty(shape, bool), np.empty(shape, bool)),
                'open': np.empty(shape, np.uint8), 'spread': np.empty(half, np.uint16),
                'past': np.empty(strip, np.float32), 'now': np.empty(strip, np.float32),
                'out': (np.empty(shape, np.float32), np.empty(shape, np.float32)),
                'distance': np.empty(shape, np.uint8), 'held': np.empty(shape, np.uint8)}
        return self._buffers

    def _hold(self, smoothed: np.ndarray, side: Optional[np.ndarray],
              previous: Optional[np.ndarray], buffers: Dict[str, Any]) -> np.ndarray:
        """
        Return the output of this frame: ``smoothed`` with the mask hysteresis applied.

        A pixel whose smoothed alpha lies on the other side of the threshold than the
        mask published with the previous frame, but closer to it than the band
        ``stabilizer.hysteresis × max(0, 1 - ratio)`` (the same gate as the weight), is
        published with the alpha it had in the previous frame's output (which lies on that
        side), so its mask bit and its alpha stand still.  The test runs in uint8 on the
        open share of the gate ``RATIO_STEPS - ratio`` (0 where the gate is shut):
        ``RATIO_STEPS × |a - threshold| / hysteresis < RATIO_STEPS - ratio``; :meth:`apply`
        leaves its result in ``buffers['held']`` (0 / 1), with ``side`` (this frame's
        ``smoothed > threshold``, 0 / 1, None without hysteresis) and ``previous`` (the
        mask published with the previous frame, None when there is none to hold
        against).  The smoothed alpha stays the state: a hold never feeds back into the
        average, so a pixel is held only while the evidence against its mask bit stays
        weak.

        Held pixels are few on most frames (a handful along a still edge): they are
        found row by row and written into ``smoothed`` itself, their state values kept
        aside (``_patch``) and put back before the next blend; when they fill more than
        ``DENSE_ROWS`` of the rows the output is a copy of ``smoothed`` instead.
        """
        published = self._published
        self._published, self._mask = smoothed, side
        if previous is None:
            return smoothed
        held = buffers['held']
        rows = np.flatnonzero(_row_maxima(held))
        if not rows.size:
            return smoothed
        if rows.size > DENSE_ROWS * held.shape[0]:
            # Held pixels keep the alpha published with the previous frame (on their
            # previous side by definition), into the output plane that frame did not use.
            out = buffers['out'][1] if published is buffers['out'][0] else buffers['out'][0]
            np.copyto(out, smoothed)
            cv2.copyTo(published, held, out)
            self._published = out
            cv2.bitwise_xor(side, held, dst=side)     # the held pixels keep their side
            return out
        lines, columns = np.nonzero(held[rows])
        index = rows[lines] * held.shape[1] + columns
        flat = smoothed.reshape(-1)
        self._patch = (index, flat[index])
        flat[index] = published.reshape(-1)[index]
        side.reshape(-1)[index] = previous.reshape(-1)[index]
        return smoothed


def _row_maxima(plane: np.ndarray) -> np.ndarray:
    """Return the maximum of each row of a contiguous uint8 plane, 8 bytes at a time."""
    width = plane.shape[1]
    for wide in (np.uint64, np.uint32, np.uint16, np.uint8):
        if width % np.dtype(wide).itemsize == 0:
            return plane.view(wide).max(axis=1)


def spread(half: np.ndarray, full: np.ndarray, wide: np.ndarray) -> None:
    """
    Write ``half`` (uint8) enlarged to ``full``: each value over its 2×2 block.

    What ``cv2.resize`` with ``INTER_NEAREST`` gives; when the full size is twice the
    half one, by writing each value into both bytes of a uint16 (``wide``, half size)
    and copying those rows twice, a fraction of the resize's time.
    """
    rows, columns = half.shape
    if full.shape != (2 * rows, 2 * columns):
        cv2.resize(half, (full.shape[1], full.shape[0]), dst=full,
                   interpolation=cv2.INTER_NEAREST)
        return
    np.multiply(half, np.uint16(257), out=wide)
    full.view(np.uint16).reshape(rows, 2, columns)[...] = wide[:, None, :]

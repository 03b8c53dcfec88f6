"""
Quality scores of foreground masks: DAVIS (J, boundary F) and CDnet (confusion counts).

ROS-free (NumPy and OpenCV).  Each benchmark has a per-frame function and an
accumulator for one sequence: ``add(pred, gt)`` per frame, then ``result()`` → dict.

DAVIS (Perazzi et al., CVPR 2016):

* J, region similarity: intersection over union of predicted and true masks; 1 when
  both are empty.
* F, boundary accuracy: F-measure of boundary pixels.  A mask's boundary is the set of
  pixels that differ from their east, south or south-east neighbour (outside the image
  a pixel counts as equal to its own value, so the image border is no boundary).  A
  predicted boundary pixel is correct when a true boundary pixel lies within
  ``ceil(0.008 × image diagonal)`` px (Euclidean), and vice versa for recall: 8 px at
  854×480.  The DAVIS code rounds the tolerance up (``ceil``), so this does too, with
  at least 1 px.  No boundary in either mask: F = 1; in only one: F = 0.
* Per sequence, the DAVIS 2016 evaluation averages over all frames except the first
  and the last (the first frame's mask is given to semi-supervised methods).
  :class:`DavisScore` follows that by default (``skip_ends=True``) when a sequence has
  at least 3 scored frames; with ``--max-frames`` the ends are those of the frames
  evaluated.

CDnet 2014 (Goyette et al.): confusion counts over the frames inside the temporal
ROI and the pixels inside the spatial ROI; ground truth 255 is positive, 0 (static)
and 50 (hard shadow) negative, 85 (outside ROI) and 170 (unknown motion) not scored.

Temporal stability (both benchmarks; :class:`TemporalScore`), over each pair of
consecutive scored frames ``t-1, t`` and the pixels scored in both (every pixel on
DAVIS; on CDnet those inside the spatial ROI whose truth is 0, 50 or 255 in both
frames, with 255 as 1 and 0 or 50 as 0):

* dtSSD (Erofeev et al., BMVC 2015; as the video-matting literature reports it):
  ``sqrt(mean(((a_t - a_{t-1}) - (g_t - g_{t-1}))^2))`` per pair, alpha ``a`` and truth
  ``g`` in [0, 1], averaged over the pairs and reported ×100.  It is 0 when the alpha
  changes exactly as the truth does.  The mean runs over the pixels scored in both
  frames only: a pixel whose truth is unknown (CDnet 85, 170) in either frame has no
  temporal truth and is left out, and a pair with no such pixel is no pair.
* mask flicker: the fraction of the pixels scored in both frames whose mask changes
  between the two frames while their truth does not, averaged over the pairs, ×100.

On DAVIS with ``skip_ends`` the pairs are those between the frames J averages (the
first and last scored frame left out), so both kinds of score see the same frames.
"""

import math
from typing import Any
from typing import Dict
from typing import List
from typing import Optional

import cv2
import numpy as np

#: DAVIS boundary tolerance as a fraction of the image diagonal.
BOUNDARY_FRACTION = 0.008

#: CDnet ground-truth values.
CDNET_STATIC = 0
CDNET_SHADOW = 50
CDNET_OUTSIDE_ROI = 85
CDNET_UNKNOWN = 170
CDNET_MOTION = 255


def as_bool(mask: np.ndarray) -> np.ndarray:
    """Return ``mask`` as a bool array (non-zero = foreground)."""
    mask = np.asarray(mask)
    return mask if mask.dtype == bool else mask > 0


def _check_shapes(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.shape != gt.shape:
        raise ValueError('prediction is %s but ground truth is %s'
                         % ('x'.join(map(str, pred.shape)), 'x'.join(map(str, gt.shape))))


def _ratio(num: float, den: float) -> float:
    """Return ``num / den``, NaN when ``den`` is 0 (the score is undefined)."""
    return float(num) / den if den else float('nan')


def _nanmean(values) -> float:
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return float(sum(kept) / len(kept)) if kept else float('nan')


# --- DAVIS ---------------------------------------------------------------------------------

def region_similarity(pred: np.ndarray, gt: np.ndarray) -> float:
    """Return J, the IoU of two masks; 1.0 when both are empty."""
    pred, gt = as_bool(pred), as_bool(gt)
    _check_shapes(pred, gt)
    union = np.count_nonzero(pred | gt)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(pred & gt)) / union


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """
    Return the 1-px boundary of a mask (bool H×W).

    A pixel is on the boundary when it differs from its east, south or south-east
    neighbour; beyond the image edge the mask is extended with its own edge values.
    """
    mask = as_bool(mask)
    padded = np.pad(mask, ((0, 1), (0, 1)), mode='edge')
    east = padded[:-1, 1:]
    south = padded[1:, :-1]
    south_east = padded[1:, 1:]
    return (mask != east) | (mask != south) | (mask != south_east)


def boundary_tolerance(shape, fraction: float = BOUNDARY_FRACTION) -> int:
    """Return the DAVIS boundary tolerance in px for an image of ``shape`` (H, W, ...)."""
    return max(1, int(math.ceil(fraction * math.hypot(shape[0], shape[1]))))


def _disk(radius: int) -> np.ndarray:
    """Return the structuring element of all offsets (dy, dx) with dy² + dx² ≤ radius²."""
    offsets = np.arange(-radius, radius + 1)
    return ((offsets[:, None] ** 2 + offsets[None, :] ** 2) <= radius * radius).astype(np.uint8)


def _within(boundary: np.ndarray, tolerance: int) -> np.ndarray:
    """Return the pixels within ``tolerance`` px (Euclidean) of a boundary."""
    # A dilation by a disk: 3-4x faster than an exact distance transform at 854x480.
    return cv2.dilate(boundary.astype(np.uint8), _disk(tolerance)) > 0


def boundary_scores(pred: np.ndarray, gt: np.ndarray,
                    tolerance: Optional[int] = None) -> Dict[str, float]:
    """
    Return the boundary precision, recall and F-measure (keys ``precision``, ``recall``, ``F``).

    ``tolerance`` defaults to :func:`boundary_tolerance` of the image size.
    """
    pred, gt = as_bool(pred), as_bool(gt)
    _check_shapes(pred, gt)
    if tolerance is None:
        tolerance = boundary_tolerance(gt.shape)
    pred_b, gt_b = boundary_map(pred), boundary_map(gt)
    n_pred, n_gt = np.count_nonzero(pred_b), np.count_nonzero(gt_b)
    if n_pred == 0 and n_gt == 0:
        return {'precision': 1.0, 'recall': 1.0, 'F': 1.0}
    if n_pred == 0:
        return {'precision': 1.0, 'recall': 0.0, 'F': 0.0}
    if n_gt == 0:
        return {'precision': 0.0, 'recall': 1.0, 'F': 0.0}
    precision = float(np.count_nonzero(pred_b & _within(gt_b, tolerance))) / n_pred
    recall = float(np.count_nonzero(gt_b & _within(pred_b, tolerance))) / n_gt
    f_measure = 0.0 if precision + recall == 0 else \
        2.0 * precision * recall / (precision + recall)
    return {'precision': precision, 'recall': recall, 'F': f_measure}


def boundary_f(pred: np.ndarray, gt: np.ndarray, tolerance: Optional[int] = None) -> float:
    """Return the DAVIS boundary F-measure of a predicted mask against the true one."""
    return boundary_scores(pred, gt, tolerance)['F']


class DavisScore:
    """
    Accumulate J and boundary F over the frames of one DAVIS sequence.

    Frames whose ``gt`` is None are counted as seen but not scored.  With ``skip_ends``
    (the DAVIS 2016 convention) the first and last scored frame are left out of the
    means when there are at least 3.
    """

    def __init__(self, skip_ends: bool = True, tolerance: Optional[int] = None):
        self.skip_ends = skip_ends
        self.tolerance = tolerance
        self.j_values: List[float] = []
        self.f_values: List[float] = []
        self.unscored = 0

    def add(self, pred: np.ndarray, gt: Optional[np.ndarray]) -> Optional[Dict[str, float]]:
        """Score one frame; return its ``{'J', 'F'}`` (None for a frame without truth)."""
        if gt is None:
            self.unscored += 1
            return None
        j = region_similarity(pred, gt)
        f = boundary_f(pred, gt, self.tolerance)
        self.j_values.append(j)
        self.f_values.append(f)
        return {'J': j, 'F': f}

    def _kept(self, values: List[float]) -> List[float]:
        if self.skip_ends and len(values) >= 3:
            return values[1:-1]
        return values

    def result(self) -> Dict[str, Any]:
        """
        Return the sequence's scores.

        Keys: ``frames`` (scored frames averaged), ``J`` and ``F`` (means), ``JF`` (their
        mean), ``J_recall`` and ``F_recall`` (fraction of frames above 0.5, as DAVIS
        reports); NaN when no frame was scored.
        """
        j_values, f_values = self._kept(self.j_values), self._kept(self.f_values)
        j, f = _nanmean(j_values), _nanmean(f_values)
        return {
            'frames': len(j_values),
            'J': j,
            'F': f,
            'JF': (j + f) / 2.0,
            'J_recall': _ratio(sum(v > 0.5 for v in j_values), len(j_values)),
            'F_recall': _ratio(sum(v > 0.5 for v in f_values), len(f_values)),
        }


# --- CDnet ---------------------------------------------------------------------------------

def cdnet_counts(pred: np.ndarray, gt: np.ndarray,
                 roi: Optional[np.ndarray] = None) -> Dict[str, int]:
    """Return the ``TP``, ``FP``, ``FN``, ``TN`` pixel counts of one CDnet frame."""
    pred = as_bool(pred)
    gt = np.asarray(gt)
    if gt.ndim == 3:
        gt = gt[:, :, 0]
    _check_shapes(pred, gt)
    positive = gt == CDNET_MOTION
    negative = (gt == CDNET_STATIC) | (gt == CDNET_SHADOW)
    if roi is not None:
        roi = as_bool(roi)
        _check_shapes(roi, gt)
        positive &= roi
        negative &= roi
    return {
        'TP': int(np.count_nonzero(pred & positive)),
        'FN': int(np.count_nonzero(~pred & positive)),
        'FP': int(np.count_nonzero(pred & negative)),
        'TN': int(np.count_nonzero(~pred & negative)),
    }


def cdnet_metrics(tp: int, fp: int, fn: int, tn: int) -> Dict[str, float]:
    """
    Return the CDnet metrics of confusion counts.

    Keys: ``precision``, ``recall``, ``f_measure``, ``specificity``, ``fpr``, ``fnr``,
    ``pwc`` (percentage of wrong classifications).  A ratio with a zero denominator is
    NaN; the F-measure is computed as 2TP / (2TP + FP + FN), equal to the harmonic mean
    of precision and recall and 0 when TP = 0 but something was wrong.
    """
    return {
        'precision': _ratio(tp, tp + fp),
        'recall': _ratio(tp, tp + fn),
        'f_measure': _ratio(2 * tp, 2 * tp + fp + fn),
        'specificity': _ratio(tn, tn + fp),
        'fpr': _ratio(fp, fp + tn),
        'fnr': _ratio(fn, tp + fn),
        'pwc': _ratio(100.0 * (fn + fp), tp + fn + fp + tn),
    }


class CdnetScore:
    """
    Accumulate CDnet confusion counts over the frames of one sequence.

    ``roi`` is the sequence's spatial ROI (bool or 0/255; None = whole frame).  Frames
    added with ``scored=False`` (outside the temporal ROI) or ``gt=None`` are counted
    but not scored.
    """

    def __init__(self, roi: Optional[np.ndarray] = None):
        self.roi = None if roi is None else as_bool(roi)
        self.counts = {'TP': 0, 'FP': 0, 'FN': 0, 'TN': 0}
        self.frames = 0
        self.unscored = 0

    def add(self, pred: np.ndarray, gt: Optional[np.ndarray],
            scored: bool = True) -> Optional[Dict[str, int]]:
        """Add one frame; return its counts (None when it is not scored)."""
        if not scored or gt is None:
            self.unscored += 1
            return None
        counts = cdnet_counts(pred, gt, self.roi)
        for key, value in counts.items():
            self.counts[key] += value
        self.frames += 1
        return counts

    def result(self) -> Dict[str, Any]:
        """Return the counts (``TP``...), ``frames`` scored and :func:`cdnet_metrics`."""
        out: Dict[str, Any] = {'frames': self.frames}
        out.update(self.counts)
        c = self.counts
        out.update(cdnet_metrics(c['TP'], c['FP'], c['FN'], c['TN']))
        return out


# --- temporal stability -------------------------------------------------------------------

def cdnet_truth(gt: np.ndarray, roi: Optional[np.ndarray] = None):
    """
    Return ``(foreground, scored)`` bool masks of a CDnet ground-truth frame.

    ``foreground`` is truth 255; ``scored`` is truth 0, 50 or 255 (inside ``roi`` when
    given), the pixels :func:`cdnet_counts` counts.
    """
    gt = np.asarray(gt)
    if gt.ndim == 3:
        gt = gt[:, :, 0]
    positive = gt == CDNET_MOTION
    scored = positive | (gt == CDNET_STATIC) | (gt == CDNET_SHADOW)
    if roi is not None:
        roi = as_bool(roi)
        _check_shapes(roi, gt)
        scored &= roi
    return positive, scored


def _unit(alpha: np.ndarray) -> np.ndarray:
    """Return alpha as float32 in [0, 1] (uint8 is divided by 255, bool is 0/1)."""
    alpha = np.asarray(alpha)
    if alpha.dtype == np.uint8:
        return alpha.astype(np.float32) * np.float32(1.0 / 255.0)
    return alpha.astype(np.float32)


def temporal_pair(alpha0: np.ndarray, alpha1: np.ndarray, mask0: np.ndarray,
                  mask1: np.ndarray, gt0: np.ndarray, gt1: np.ndarray,
                  scored: Optional[np.ndarray] = None) -> Optional[Dict[str, float]]:
    """
    Return ``{'dtSSD', 'flicker'}`` (×100) of one pair of consecutive frames.

    ``alpha*`` are in [0, 1] (float) or 0-255 (uint8), ``mask*`` and ``gt*`` bool (or
    non-zero = foreground), ``scored`` the pixels scored in both frames (None = all).
    Returns None when no pixel is scored in both.
    """
    a0, a1 = _unit(alpha0), _unit(alpha1)
    m0, m1, g0, g1 = as_bool(mask0), as_bool(mask1), as_bool(gt0), as_bool(gt1)
    for other in (a1, m0, m1, g0, g1):
        _check_shapes(other, a0)
    diff = (a1 - a0) - (g1.astype(np.float32) - g0.astype(np.float32))
    flips = (m0 != m1) & (g0 == g1)
    if scored is None:
        pixels = diff.size
        squares = float(np.dot(diff.ravel(), diff.ravel()))
        flipped = np.count_nonzero(flips)
    else:
        scored = as_bool(scored)
        _check_shapes(scored, a0)
        pixels = np.count_nonzero(scored)
        if pixels == 0:
            return None
        kept = diff[scored]
        squares = float(np.dot(kept, kept))
        flipped = np.count_nonzero(flips & scored)
    return {'dtSSD': 100.0 * math.sqrt(squares / pixels),
            'flicker': 100.0 * flipped / pixels}


class TemporalScore:
    """
    Accumulate dtSSD and mask flicker over the consecutive frames of one sequence.

    ``add`` takes each frame in stream order: its alpha, mask, truth (bool; None for a
    frame without truth or not scored) and the pixels scored (None = all).  A frame
    without truth breaks the chain: the next pair starts after it.  With ``skip_ends``
    the pairs touching the first or last frame with truth are left out (as J does on
    DAVIS) when there are at least 3 such frames.
    """

    def __init__(self, skip_ends: bool = False):
        self.skip_ends = skip_ends
        self._last = None
        self._scored_frames = 0
        #: (index of the later frame among frames with truth, scores) per pair.
        self.pairs: List = []

    def add(self, alpha: np.ndarray, mask: np.ndarray, gt: Optional[np.ndarray],
            scored: Optional[np.ndarray] = None) -> Optional[Dict[str, float]]:
        """Add one frame; return the scores of its pair with the previous frame, if any."""
        if gt is None:
            self._last = None
            return None
        alpha, mask, gt = _unit(alpha), as_bool(mask).copy(), as_bool(gt).copy()
        scored = None if scored is None else as_bool(scored).copy()
        index = self._scored_frames
        self._scored_frames += 1
        pair = None
        if self._last is not None:
            a0, m0, g0, s0 = self._last
            both = s0 if scored is None else (scored if s0 is None else scored & s0)
            pair = temporal_pair(a0, alpha, m0, mask, g0, gt, both)
            if pair is not None:
                self.pairs.append((index, pair))
        self._last = (alpha, mask, gt, scored)
        return pair

    def result(self) -> Dict[str, Any]:
        """Return ``pairs`` (counted), ``dtSSD`` and ``flicker`` (means; NaN with no pair)."""
        kept = [p for i, p in self.pairs]
        if self.skip_ends and self._scored_frames >= 3:
            last = self._scored_frames - 1
            kept = [p for i, p in self.pairs if 1 < i < last]
        return {'pairs': len(kept),
                'dtSSD': _nanmean([p['dtSSD'] for p in kept]),
                'flicker': _nanmean([p['flicker'] for p in kept])}


def mean_of(results: List[Dict[str, Any]], keys) -> Dict[str, float]:
    """Return the mean over sequences of each key (NaN values left out), as benchmarks do."""
    return {key: _nanmean([r[key] for r in results]) for key in keys}

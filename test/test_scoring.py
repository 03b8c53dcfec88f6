"""Scores of matte_ros.measure.scoring on small masks whose results are worked out by hand."""

import math

from matte_ros.measure import scoring
import numpy as np
import pytest


def square(shape, top, left, side):
    """Return a bool mask with a filled ``side``×``side`` square at (top, left)."""
    mask = np.zeros(shape, bool)
    mask[top:top + side, left:left + side] = True
    return mask


def left_part(shape, columns):
    """Return a bool mask whose first ``columns`` columns are foreground."""
    mask = np.zeros(shape, bool)
    mask[:, :columns] = True
    return mask


# --- J ---------------------------------------------------------------------------------------

def test_j_both_empty_is_one_and_miss_is_zero():
    empty = np.zeros((20, 30), bool)
    assert scoring.region_similarity(empty, empty) == 1.0
    assert scoring.region_similarity(square((20, 30), 2, 2, 5), empty) == 0.0
    assert scoring.region_similarity(empty, square((20, 30), 2, 2, 5)) == 0.0


def test_j_shifted_square():
    # 10x10 squares shifted by 2 columns: intersection 10*8 = 80, union 100 + 20 = 120.
    gt = square((40, 40), 5, 5, 10)
    pred = square((40, 40), 5, 7, 10)
    assert scoring.region_similarity(pred, gt) == pytest.approx(80 / 120)


def test_j_accepts_0_255_masks():
    gt = left_part((10, 100), 50).astype(np.uint8) * 255
    pred = left_part((10, 100), 53).astype(np.uint8) * 255
    assert scoring.region_similarity(pred, gt) == pytest.approx(50 / 53)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match='ground truth'):
        scoring.region_similarity(np.zeros((4, 5), bool), np.zeros((5, 4), bool))


# --- boundary --------------------------------------------------------------------------------

def test_boundary_map_of_a_square():
    # A 3x3 square at rows/cols 3..5: the pixels differing from their east, south or
    # south-east neighbour are the outside column 2 and row 2 (rows/cols 2..5) and the
    # inside column 5 and row 5: the ring of the 4x4 block rows/cols 2..5, 12 pixels.
    expected = np.zeros((10, 10), bool)
    expected[2:6, 2:6] = True
    expected[3:5, 3:5] = False
    assert np.array_equal(scoring.boundary_map(square((10, 10), 3, 3, 3)), expected)


def test_image_border_is_no_boundary():
    assert not scoring.boundary_map(np.ones((8, 9), bool)).any()
    # The left half touches three image edges: only its right edge (column 4) remains.
    boundary = scoring.boundary_map(left_part((8, 9), 5))
    assert np.array_equal(np.nonzero(boundary.any(axis=0))[0], [4])
    assert boundary[:, 4].all()


def test_boundary_tolerance_is_davis_ceil_of_diagonal_fraction():
    assert scoring.boundary_tolerance((480, 854)) == 8    # 0.008 * 979.6 = 7.84
    assert scoring.boundary_tolerance((240, 320)) == 4    # 0.008 * 400 = 3.2
    assert scoring.boundary_tolerance((100, 100)) == 2    # 0.008 * 141.4 = 1.13
    assert scoring.boundary_tolerance((10, 10)) == 1      # at least one pixel


@pytest.mark.parametrize('shape, tolerance', [((100, 100), 2), ((480, 854), 8)])
def test_boundary_f_tolerance_edge(shape, tolerance):
    # Vertical edges `shift` px apart: every boundary pixel is exactly `shift` px away
    # from the other boundary, so F is 1 up to the tolerance and 0 beyond.
    gt = left_part(shape, 50)
    at = scoring.boundary_scores(left_part(shape, 50 + tolerance), gt)
    beyond = scoring.boundary_scores(left_part(shape, 51 + tolerance), gt)
    assert at == {'precision': 1.0, 'recall': 1.0, 'F': 1.0}
    assert beyond == {'precision': 0.0, 'recall': 0.0, 'F': 0.0}


def test_boundary_f_explicit_tolerance():
    gt = left_part((100, 100), 50)
    assert scoring.boundary_f(left_part((100, 100), 53), gt) == 0.0
    assert scoring.boundary_f(left_part((100, 100), 53), gt, tolerance=3) == 1.0


def test_shifted_square_by_one_pixel():
    # Each boundary pixel of one square has its twin one column away in the other.
    gt = square((100, 100), 30, 30, 20)
    pred = square((100, 100), 30, 31, 20)
    assert scoring.boundary_f(pred, gt) == 1.0
    assert scoring.region_similarity(pred, gt) == pytest.approx(20 * 19 / (20 * 21))


def test_far_shifted_square_scores_zero():
    gt = square((100, 100), 10, 10, 20)
    pred = square((100, 100), 60, 60, 20)
    assert scoring.boundary_f(pred, gt) == 0.0
    assert scoring.region_similarity(pred, gt) == 0.0


def test_extra_blob_lowers_precision_only():
    # A square's boundary has 4*side pixels: 80 for the true 20x20 square, 40 for the
    # extra 10x10 blob far from it.  Precision 80/120, recall 1, F = 0.8; J = 400/500.
    gt = square((100, 100), 10, 10, 20)
    pred = gt | square((100, 100), 70, 70, 10)
    scores = scoring.boundary_scores(pred, gt)
    assert scores['precision'] == pytest.approx(80 / 120)
    assert scores['recall'] == 1.0
    assert scores['F'] == pytest.approx(0.8)
    assert scoring.region_similarity(pred, gt) == pytest.approx(0.8)
    # The same masks swapped: a missed object lowers recall only.
    swapped = scoring.boundary_scores(gt, pred)
    assert swapped['precision'] == 1.0
    assert swapped['recall'] == pytest.approx(80 / 120)


def test_boundary_f_empty_masks():
    empty = np.zeros((50, 50), bool)
    blob = square((50, 50), 10, 10, 10)
    assert scoring.boundary_f(empty, empty) == 1.0
    assert scoring.boundary_f(empty, blob) == 0.0
    assert scoring.boundary_f(blob, empty) == 0.0


# --- DavisScore ------------------------------------------------------------------------------

def test_davis_score_skips_first_and_last_frame():
    gt = square((60, 60), 10, 10, 20)
    empty = np.zeros_like(gt)
    score = scoring.DavisScore()
    plain = scoring.DavisScore(skip_ends=False)
    for pred in (empty, gt, gt, empty):
        score.add(pred, gt)
        plain.add(pred, gt)
    result = score.result()
    assert result['frames'] == 2
    assert result['J'] == 1.0 and result['F'] == 1.0 and result['JF'] == 1.0
    full = plain.result()
    assert full['frames'] == 4
    assert full['J'] == 0.5 and full['F'] == 0.5
    assert full['J_recall'] == 0.5


def test_davis_score_short_sequence_and_unannotated_frames():
    gt = square((60, 60), 10, 10, 20)
    half = square((60, 60), 10, 10, 20)
    half[:, 20:] = False                                   # left half of the square: J 0.5
    score = scoring.DavisScore()
    assert score.add(gt, None) is None                     # no annotation: not scored
    assert score.add(gt, gt) == {'J': 1.0, 'F': 1.0}
    score.add(half, gt)
    result = score.result()
    assert score.unscored == 1
    assert result['frames'] == 2                           # < 3 frames: ends kept
    assert result['J'] == pytest.approx(0.75)


def test_davis_score_without_frames_is_nan():
    result = scoring.DavisScore().result()
    assert result['frames'] == 0
    assert math.isnan(result['J']) and math.isnan(result['F'])


# --- CDnet -----------------------------------------------------------------------------------

GT = np.array([[255, 255, 0, 0],
               [255, 50, 50, 0],
               [85, 85, 170, 170],
               [0, 0, 255, 0]], np.uint8)
PRED = np.array([[1, 0, 1, 0],
                 [1, 1, 0, 0],
                 [1, 1, 1, 1],
                 [0, 0, 0, 0]], bool)


def test_cdnet_counts_by_hand():
    # Positives (255) at (0,0) (0,1) (1,0) (3,2): predicted at (0,0) (1,0) → TP 2, FN 2.
    # Negatives (0, 50): predicted at (0,2) and the shadow (1,1) → FP 2, TN 6.
    # Row 2 (85 outside ROI, 170 unknown) is predicted everywhere but not scored.
    assert scoring.cdnet_counts(PRED, GT) == {'TP': 2, 'FN': 2, 'FP': 2, 'TN': 6}


def test_cdnet_counts_honour_roi():
    roi = np.full(GT.shape, 255, np.uint8)
    roi[:, 0] = 0
    # Without column 0: positives (0,1) (3,2) both missed; negatives lose (3,0).
    assert scoring.cdnet_counts(PRED, GT, roi) == {'TP': 0, 'FN': 2, 'FP': 2, 'TN': 5}


def test_cdnet_metrics_by_hand():
    m = scoring.cdnet_metrics(tp=2, fp=2, fn=2, tn=6)
    assert m['precision'] == 0.5
    assert m['recall'] == 0.5
    assert m['f_measure'] == 0.5
    assert m['pwc'] == pytest.approx(100 * 4 / 12)
    assert m['specificity'] == 0.75
    assert m['fpr'] == 0.25
    assert m['fnr'] == 0.5
    m = scoring.cdnet_metrics(tp=30, fp=10, fn=20, tn=940)
    assert m['precision'] == 0.75 and m['recall'] == 0.6
    assert m['f_measure'] == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    assert m['pwc'] == pytest.approx(3.0)


def test_cdnet_metrics_undefined_ratios_are_nan():
    m = scoring.cdnet_metrics(tp=0, fp=0, fn=0, tn=16)
    assert math.isnan(m['precision']) and math.isnan(m['recall'])
    assert math.isnan(m['f_measure'])
    assert m['pwc'] == 0.0 and m['specificity'] == 1.0
    # Nothing predicted while objects were there: recall 0, F 0, precision undefined.
    m = scoring.cdnet_metrics(tp=0, fp=0, fn=5, tn=11)
    assert math.isnan(m['precision']) and m['recall'] == 0.0 and m['f_measure'] == 0.0


def test_cdnet_score_accumulates_scored_frames_only():
    score = scoring.CdnetScore()
    assert score.add(~PRED, GT, scored=False) is None      # outside the temporal ROI
    assert score.add(PRED, None) is None                   # no ground truth
    score.add(PRED, GT)
    score.add(PRED.astype(np.uint8) * 255, GT)             # 0/255 prediction works too
    result = score.result()
    assert result['frames'] == 2 and score.unscored == 2
    assert (result['TP'], result['FN'], result['FP'], result['TN']) == (4, 4, 4, 12)
    assert result['pwc'] == pytest.approx(100 * 8 / 24)
    assert result['f_measure'] == 0.5


def test_cdnet_score_with_roi_and_colour_ground_truth():
    roi = np.ones(GT.shape, bool)
    roi[:, 0] = False
    score = scoring.CdnetScore(roi)
    score.add(PRED, np.dstack([GT, GT, GT]))               # a 3-channel GT image
    result = score.result()
    assert (result['TP'], result['FN'], result['FP'], result['TN']) == (0, 2, 2, 5)
    assert result['recall'] == 0.0


def test_mean_of_skips_nan():
    rows = [{'J': 0.5, 'F': float('nan')}, {'J': 1.0, 'F': 0.25}]
    assert scoring.mean_of(rows, ('J', 'F')) == {'J': 0.75, 'F': 0.25}


# --- temporal stability ----------------------------------------------------------------------

def test_temporal_pair_steady_and_following_truth_is_zero():
    gt0, gt1 = square((20, 30), 2, 2, 5), square((20, 30), 2, 4, 5)
    # Alpha and mask follow the truth exactly as it moves: nothing to blame.
    pair = scoring.temporal_pair(gt0.astype(np.float32), gt1.astype(np.float32),
                                 gt0, gt1, gt0, gt1)
    assert pair == {'dtSSD': 0.0, 'flicker': 0.0}


def test_temporal_pair_toggling_block_by_hand():
    # 600 pixels, truth empty and still; 6 pixels switch on: 1 % of the frame flickers,
    # dtSSD = 100 * sqrt(6 / 600) = 10.
    empty = np.zeros((20, 30), bool)
    on = square((20, 30), 0, 0, 1)
    on[0, :6] = True
    pair = scoring.temporal_pair(empty.astype(np.float32), on.astype(np.float32),
                                 empty, on, empty, empty)
    assert pair['flicker'] == pytest.approx(1.0)
    assert pair['dtSSD'] == pytest.approx(10.0)


def test_temporal_pair_soft_alpha_and_uint8():
    # Alpha 0.5 everywhere in frame 1, 0 in frame 0, truth still: dtSSD = 50; the
    # mask (thresholded elsewhere) does not change: no flicker.  uint8 alpha is /255.
    zeros = np.zeros((4, 4), np.uint8)
    half = np.full((4, 4), 255, np.uint8)
    still = np.zeros((4, 4), bool)
    pair = scoring.temporal_pair(np.zeros((4, 4), np.float32), np.full((4, 4), 0.5, np.float32),
                                 still, still, still, still)
    assert pair == {'dtSSD': pytest.approx(50.0), 'flicker': 0.0}
    assert scoring.temporal_pair(zeros, half, still, still, still, still)['dtSSD'] == \
        pytest.approx(100.0)


def test_temporal_pair_mask_change_where_truth_changes_is_not_flicker():
    gt0 = np.zeros((10, 10), bool)
    gt1 = gt0.copy()
    gt1[0, :5] = True                       # truth grows by 5 px
    mask1 = gt1.copy()
    mask1[9, 9] = True                      # the mask also grows there plus 1 stray px
    alpha0, alpha1 = gt0.astype(np.float32), mask1.astype(np.float32)
    pair = scoring.temporal_pair(alpha0, alpha1, gt0, mask1, gt0, gt1)
    assert pair['flicker'] == pytest.approx(1.0)               # 1 of 100 px
    assert pair['dtSSD'] == pytest.approx(100.0 * math.sqrt(1 / 100.0))


def test_temporal_pair_only_scored_pixels_count():
    still = np.zeros((10, 10), bool)
    mask1 = still.copy()
    mask1[0, :4] = True                     # 4 px flip, 2 of them unscored
    scored = np.ones((10, 10), bool)
    scored[0, :2] = False                   # 98 scored pixels
    pair = scoring.temporal_pair(still, mask1, still, mask1, still, still, scored)
    assert pair['flicker'] == pytest.approx(100.0 * 2 / 98)
    assert pair['dtSSD'] == pytest.approx(100.0 * math.sqrt(2 / 98.0))
    assert scoring.temporal_pair(still, mask1, still, mask1, still, still,
                                 np.zeros((10, 10), bool)) is None


def test_cdnet_truth_classes_and_roi():
    gt = np.array([[0, 50, 85, 170, 255]], np.uint8)
    positive, scored = scoring.cdnet_truth(gt)
    assert positive.tolist() == [[False, False, False, False, True]]
    assert scored.tolist() == [[True, True, False, False, True]]
    roi = np.array([[0, 255, 255, 255, 255]], np.uint8)
    assert scoring.cdnet_truth(gt, roi)[1].tolist() == [[False, True, False, False, True]]


def test_temporal_score_sequence_with_gap_and_unscored_pixels():
    # Frame masks: off, on, off, (no truth), on, on over a 2x5 frame whose truth is empty
    # and whose pixel (0, 0) is unscored in frame 1 only.
    shape = (2, 5)
    off, on = np.zeros(shape, bool), np.zeros(shape, bool)
    on[0, :2] = True                        # 2 of 10 px on
    empty = np.zeros(shape, bool)
    part = np.ones(shape, bool)
    part[0, 0] = False
    score = scoring.TemporalScore()
    assert score.add(off, off, empty) is None               # first frame: no pair
    first = score.add(on, on, empty, part)                  # 1 of 9 px flips
    assert first['flicker'] == pytest.approx(100.0 / 9)
    second = score.add(off, off, empty)                     # 1 of 9 again (frame 1's mask)
    assert second['flicker'] == pytest.approx(100.0 / 9)
    assert score.add(on, on, None) is None                  # no truth: chain broken
    assert score.add(on, on, empty) is None                 # no pair across the gap
    assert score.add(on, on, empty)['flicker'] == 0.0       # steady
    result = score.result()
    assert result['pairs'] == 3
    assert result['flicker'] == pytest.approx((100.0 / 9 * 2 + 0.0) / 3)
    assert result['dtSSD'] == pytest.approx((100.0 / 3 * 2 + 0.0) / 3)


def test_temporal_score_skip_ends_keeps_pairs_between_kept_frames():
    # 5 frames with truth; J keeps frames 1..3, so the pairs kept are (1,2) and (2,3).
    shape = (1, 4)
    empty = np.zeros(shape, bool)
    masks = [np.zeros(shape, bool) for _ in range(5)]
    masks[1][0, 0] = True                  # pairs (0,1) and (1,2) flip 1 px
    masks[4][0, :] = True                  # pair (3,4) flips all 4
    score = scoring.TemporalScore(skip_ends=True)
    for mask in masks:
        score.add(mask, mask, empty)
    result = score.result()
    assert result['pairs'] == 2
    assert result['flicker'] == pytest.approx((25.0 + 0.0) / 2)
    plain = scoring.TemporalScore()
    for mask in masks:
        plain.add(mask, mask, empty)
    assert plain.result()['pairs'] == 4
    assert plain.result()['flicker'] == pytest.approx((25.0 + 25.0 + 0.0 + 100.0) / 4)


def test_temporal_score_without_pairs_is_nan():
    score = scoring.TemporalScore()
    score.add(np.zeros((2, 2)), np.zeros((2, 2), bool), np.zeros((2, 2), bool))
    result = score.result()
    assert result['pairs'] == 0 and math.isnan(result['dtSSD']) and math.isnan(result['flicker'])

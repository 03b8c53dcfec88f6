"""The error breakdown of ``tools/bench_bgsub.py --errors``: exact counts on small frames."""

import os

from conftest import load_tool
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CDNET = os.path.join(REPO, '..', 'shared', 'data', 'cdnet2014', 'baseline')

bench = load_tool('bench_bgsub')


def scene():
    """Return (gt, frame, background): a 10×10 object on 40×40, a shadow strip below it."""
    gt = np.zeros((40, 40), np.uint8)
    gt[10:20, 10:20] = 255
    gt[20:22, 10:20] = 50
    gt[0:2, :] = 170  # not scored
    background = np.full((40, 40, 3), 100, np.uint8)
    frame = background.copy()
    frame[10:20, 10:20] = 200  # the object differs from the background ...
    frame[15:17, 15:17] = 105  # ... except a camouflaged 2×2 patch at its centre
    return gt, frame, background


def test_every_error_lands_in_exactly_one_kind():
    """False positives and negatives are split by kind with exact counts."""
    gt, frame, background = scene()
    mask = np.zeros((40, 40), bool)
    mask[10:22, 10:20] = True  # the object and its shadow strip
    mask[15:17, 15:17] = False  # camouflaged centre missed
    mask[10, 10:20] = False  # the object's top row (its rim) missed
    mask[23, 30] = True  # 2 rows below the strip, 11 px right of the object: far
    mask[12, 21] = True  # 1 px beside the object: its margin
    mask[0, 0] = True  # in the unscored band: not counted
    counts = bench.error_classes(mask, gt, None, frame, background)
    assert counts == {'FP shadow': 20, 'FP object margin': 1, 'FP elsewhere': 1,
                      'FN object rim': 10, 'FN camouflage': 4, 'FN other': 0}
    assert list(counts) == list(bench.ERROR_KINDS)


def test_roi_and_a_non_camouflaged_miss():
    """Pixels outside the ROI are not counted; a clearly visible interior miss is 'other'."""
    gt, frame, background = scene()
    mask = np.zeros((40, 40), bool)
    mask[10:20, 10:20] = True
    mask[14, 14] = False  # interior (4 px from the edge), colour 200 vs 100
    mask[20:22, 10:20] = True  # shadow strip ...
    roi = np.ones((40, 40), bool)
    roi[20:22, 10:15] = False  # ... half of it outside the ROI
    counts = bench.error_classes(mask, gt, roi, frame, background)
    assert counts['FP shadow'] == 10
    assert counts['FN other'] == 1
    assert counts['FN camouflage'] == 0 and counts['FN object rim'] == 0


def test_error_table_halves_add_up_on_cdnet():
    """On CDnet highway's start, the halves' counts add up to the whole's."""
    seqdir = os.path.join(CDNET, 'highway')
    if not os.path.isdir(seqdir):
        pytest.skip('CDnet 2014 baseline not found at %s (../shared beside the repo)' % CDNET)
    from matte_ros.params import defaults
    table = bench.error_table(seqdir, defaults(), last=520)
    whole, first, second = (table[w] for w in ('whole', 'first half', 'second half'))
    assert whole[0]['frames'] == 51 and first[0]['frames'] == 51 and second[0]['frames'] == 0
    assert whole[1] == first[1]
    assert whole[0]['f_measure'] > 0.9
    assert sum(whole[1].values()) == whole[0]['FP'] + whole[0]['FN']

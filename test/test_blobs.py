"""The tracker outputs: largest blob box and foreground fraction of a mask."""

from matte_ros import blobs
import numpy as np


def test_largest_blob_is_chosen_by_pixel_count():
    mask = np.zeros((60, 80), np.uint8)
    mask[2:4, 0:70] = 255          # wide but thin: 140 px
    mask[20:35, 40:52] = 255       # 180 px
    mask[50:52, 5:7] = 1           # any non-zero counts as foreground
    assert blobs.largest_blob(mask) == blobs.Box(40, 20, 12, 15, 180)


def test_diagonal_pixels_are_one_blob():
    mask = np.zeros((10, 10), np.uint8)
    for i in range(5):
        mask[i, i] = 255
    assert blobs.largest_blob(mask) == blobs.Box(0, 0, 5, 5, 5)


def test_empty_mask_gives_the_zero_box():
    assert blobs.largest_blob(np.zeros((8, 8), np.uint8)) == blobs.EMPTY == (0, 0, 0, 0, 0)


def test_foreground_fraction():
    mask = np.zeros((10, 20), np.uint8)
    mask[:5, :4] = 255
    assert blobs.foreground_fraction(mask) == 0.1
    assert blobs.foreground_fraction(np.zeros((0, 0), np.uint8)) == 0.0

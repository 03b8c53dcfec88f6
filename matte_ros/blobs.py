"""
What a tracker wants from a mask: the largest foreground blob's box and the foreground share.

ROS-free; the node publishes the box as ``sensor_msgs/RegionOfInterest`` on ``~/roi`` and
the fraction in its diagnostics.
"""

from typing import NamedTuple

import cv2
import numpy as np


class Box(NamedTuple):
    """Axis-aligned box of a blob in pixels (all zero when there is no foreground)."""

    x: int
    y: int
    width: int
    height: int
    area: int      # foreground pixels of the blob (not width × height)


EMPTY = Box(0, 0, 0, 0, 0)


def largest_blob(mask: np.ndarray) -> Box:
    """Return the box of the largest 8-connected non-zero region of ``mask``, or EMPTY."""
    binary = (mask > 0).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count <= 1:              # label 0 is the background
        return EMPTY
    areas = stats[1:, cv2.CC_STAT_AREA]
    best = 1 + int(np.argmax(areas))
    x, y, w, h, area = (int(v) for v in stats[best, :5])
    return Box(x, y, w, h, area)


def foreground_fraction(mask: np.ndarray) -> float:
    """Return the share of non-zero pixels of ``mask`` (0 for an empty mask)."""
    return float(np.count_nonzero(mask)) / mask.size if mask.size else 0.0

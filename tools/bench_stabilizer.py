#!/usr/bin/env python3
"""
Time the temporal stabiliser alone: milliseconds per frame at a given size.

Feeds DAVIS parkour frames (../shared, resized) with their annotation as alpha, or
synthetic moving frames when the data is absent, through
:class:`matte_ros.stabilizer.Stabilizer` at the schema's defaults, with OpenCV limited
to ``--threads`` threads.  Prints the best and the median of ``--repeats`` passes
(the best is the least disturbed by other load on the machine).

Example::

    .venv/bin/python tools/bench_stabilizer.py --size 640x480 --threads 2
"""

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cv2  # noqa: E402
from matte_ros import params  # noqa: E402
from matte_ros.measure import datasets  # noqa: E402
from matte_ros.stabilizer import Stabilizer  # noqa: E402
import numpy as np  # noqa: E402

DAVIS = os.path.join(ROOT, '..', 'shared', 'data', 'davis2016')


def _frames(width, height, count):
    """Return ``count`` (frame, alpha) pairs of the given size."""
    pairs = []
    if os.path.isdir(DAVIS):
        for _, frame, gt in datasets.iter_davis(DAVIS, 'parkour'):
            if len(pairs) == count:
                break
            alpha = gt.astype(np.float32) if gt is not None else np.zeros(frame.shape[:2])
            pairs.append((cv2.resize(frame, (width, height)),
                          cv2.resize(alpha.astype(np.float32), (width, height))))
        return pairs
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (height, width, 3), np.uint8)
    for i in range(count):
        frame = np.roll(base, 2 * i, axis=1)
        alpha = np.zeros((height, width), np.float32)
        alpha[height // 4:height // 2, 10 + 4 * i:width // 3 + 4 * i] = 1.0
        pairs.append((frame, alpha))
    return pairs


def main(argv=None) -> int:
    """Run the timing and print one line; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n\n')[0])
    parser.add_argument('--size', default='640x480', help='WxH (default 640x480)')
    parser.add_argument('--threads', type=int, default=2, help='OpenCV threads (default 2)')
    parser.add_argument('--frames', type=int, default=30)
    parser.add_argument('--repeats', type=int, default=7)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split('x'))
    cv2.setNumThreads(args.threads)
    pairs = _frames(width, height, args.frames)
    values = params.defaults()
    values['stabilizer.enabled'] = True
    stabilizer = Stabilizer(values)
    passes = []
    for _ in range(args.repeats):
        stabilizer.reset('next pass')
        started = time.perf_counter()
        for frame, alpha in pairs:
            stabilizer.apply(frame, alpha, 0)
        passes.append((time.perf_counter() - started) / len(pairs) * 1000.0)
    print('stabiliser %dx%d, %d OpenCV threads: best %.3f ms, median %.3f ms per frame '
          '(%d frames x %d passes; the first frame of a pass only stores the state)'
          % (width, height, args.threads, min(passes), statistics.median(passes),
             len(pairs), args.repeats))
    return 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
"""
Time the temporal stabiliser alone: milliseconds per frame at a given size.

Feeds DAVIS parkour frames (../shared, resized) with their annotation as alpha, or
synthetic moving frames when the data is absent, through
:class:`matte_ros.stabilizer.Stabilizer` at the schema's defaults, with OpenCV limited
to ``--threads`` threads.  Prints the best and the median of ``--repeats`` passes
(the best is the least disturbed by other load on the machine).  ``--compare FILE``
loads another version of the module (a copy of ``stabilizer.py``, e.g. from
``git show c4e85a3:matte_ros/stabilizer.py``) and alternates passes of the two, so
that both see the same load; it first checks that both give the same output.

Example::

    .venv/bin/python tools/bench_stabilizer.py --size 640x480 --threads 2
    git show c4e85a3:matte_ros/stabilizer.py > /tmp/stabilizer_old.py
    .venv/bin/python tools/bench_stabilizer.py --compare /tmp/stabilizer_old.py
"""

import argparse
import importlib.util
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


def _load(path):
    """Return the module in the file ``path`` (another version of the stabiliser)."""
    spec = importlib.util.spec_from_file_location('stabilizer_compared', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _same_output(first, second, pairs):
    """Return the largest alpha difference and mask disagreements of two stabilisers."""
    largest, masks = 0.0, 0
    first.reset('compare')
    second.reset('compare')
    for frame, alpha in pairs:
        one = np.array(first.apply(frame, alpha, 0))
        two = np.array(second.apply(frame, alpha, 0))
        largest = max(largest, float(np.abs(one - two).max()))
        masks += int(np.count_nonzero((one > first.threshold) != (two > second.threshold)))
    return largest, masks


def _pass(stabilizer, pairs):
    """Return the milliseconds per frame of one pass over ``pairs``."""
    stabilizer.reset('next pass')
    started = time.perf_counter()
    for frame, alpha in pairs:
        stabilizer.apply(frame, alpha, 0)
    return (time.perf_counter() - started) / len(pairs) * 1000.0


def main(argv=None) -> int:
    """Run the timing and print one line; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n\n')[0])
    parser.add_argument('--size', default='640x480', help='WxH (default 640x480)')
    parser.add_argument('--threads', type=int, default=2, help='OpenCV threads (default 2)')
    parser.add_argument('--frames', type=int, default=30)
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--compare', metavar='FILE',
                        help='another stabilizer.py to time in alternate passes')
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split('x'))
    cv2.setNumThreads(args.threads)
    pairs = _frames(width, height, args.frames)
    values = params.defaults()
    values['stabilizer.enabled'] = True
    timed = [('this code', Stabilizer(values))]
    if args.compare:
        timed.append((args.compare, _load(args.compare).Stabilizer(values)))
        largest, masks = _same_output(timed[0][1], timed[1][1], pairs)
        print('output against %s: largest alpha difference %.3g, %d mask pixels differ'
              % (args.compare, largest, masks))
    passes = {name: [] for name, _ in timed}
    for _ in range(args.repeats):
        for name, stabilizer in timed:
            passes[name].append(_pass(stabilizer, pairs))
    load = ', '.join('%.2f' % v for v in os.getloadavg())
    for name, _ in timed:
        print('stabiliser %dx%d, %d OpenCV threads, %s: best %.3f ms, median %.3f ms per '
              'frame (%d frames x %d passes; the first frame of a pass only stores the '
              'state; load average %s)'
              % (width, height, args.threads, name, min(passes[name]),
                 statistics.median(passes[name]), len(pairs), args.repeats, load))
    return 0


if __name__ == '__main__':
    sys.exit(main())

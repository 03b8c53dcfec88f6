#!/usr/bin/env python3
"""
Print a table: OpenCV MOG2 and KNN at their defaults vs matte_ros's consensus on CDnet.

Every method runs through ``Segmenter.process`` (BGR frame in, float alpha and the
background image out) over all frames of the CDnet 2014 baseline sequences in
``../shared`` at their native resolution (pedestrians 360×240, highway 320×240), in
order, so frames before the temporal ROI only train the model.  Scoring is CDnet's
(``matte_ros.measure.scoring``): frames inside ``temporalROI.txt``, pixels inside ``ROI.bmp``,
ground truth 255 positive, 0 and 50 (shadow) negative, 85 and 170 not scored; the mask
is ``alpha > 0.5``.  Each frame is decoded once and handed to every method in turn
(the order rotating), and only ``process`` is timed, so drifts in machine speed hit all
rows alike; compare rows of one run, not runs.  One process, OpenCV's default threads.

Rows: ``mog2`` and ``knn`` are OpenCV's defaults (automatic learning rate, varThreshold
16 / dist2Threshold 400, shadow detection, shadows counted as background);
``consensus`` is ``bgsub.algorithm: consensus`` at the parameter defaults, changed by
``--param bgsub.consensus.threshold=25`` and the like.

``--speed 360x240 640x480`` instead times every method on the pedestrians frames
resized to each size (the frames of each size interleaved between methods as above,
stamps at 30 Hz), for the README's speed rows: compare ratios of one run.

Example::

    .venv/bin/python tools/bench_bgsub.py
    .venv/bin/python tools/bench_bgsub.py --last 700 --methods consensus
    .venv/bin/python tools/bench_bgsub.py --speed 360x240 640x480 --last 600
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from matte_ros import params  # noqa: E402
from matte_ros.measure import datasets  # noqa: E402
from matte_ros.measure.scoring import CdnetScore  # noqa: E402
from matte_ros.segmenters.bgsub import BackgroundSubtractor  # noqa: E402

SHARED = os.path.join(ROOT, '..', 'shared')
SEQUENCES = ('pedestrians', 'highway')

#: method name → bgsub parameter changes from the defaults.
METHODS = {
    'mog2': {'bgsub.algorithm': 'mog2', 'bgsub.learn_rate': -1.0,
             'bgsub.variance_threshold': 16.0, 'bgsub.detect_shadows': True},
    'knn': {'bgsub.algorithm': 'knn', 'bgsub.learn_rate': -1.0,
            'bgsub.variance_threshold': 400.0, 'bgsub.detect_shadows': True},
    'consensus': {'bgsub.algorithm': 'consensus'},
}


def run_sequence(seqdir: str, methods, last=None):
    """Run every method over one sequence; return {method: (score result, fps, size)}."""
    roi = datasets.cdnet_roi(seqdir)
    segmenters = {name: BackgroundSubtractor(cfg, 'cpu') for name, cfg in methods.items()}
    scores = {name: CdnetScore(roi) for name in methods}
    seconds = dict.fromkeys(methods, 0.0)
    order = list(methods)
    frames = 0
    size = None
    for _, frame, gt, scored in datasets.iter_cdnet(seqdir, last=last):
        size = '%dx%d' % (frame.shape[1], frame.shape[0])
        order = order[1:] + order[:1]
        for name in order:
            start = time.perf_counter()
            matte = segmenters[name].process(frame)
            seconds[name] += time.perf_counter() - start
            scores[name].add(matte.alpha > 0.5, gt, scored)
        frames += 1
    return {name: (scores[name].result(), frames / max(seconds[name], 1e-9), size)
            for name in methods}


def speed(seqdir: str, methods, sizes, last=None):
    """Return {size: {method: fps}} over a sequence's frames resized to each size."""
    import cv2
    frames = [frame for _, frame, _, _ in datasets.iter_cdnet(seqdir, last=last)]
    table = {}
    for size in sizes:
        width, height = (int(v) for v in size.split('x'))
        segmenters = {name: BackgroundSubtractor(cfg, 'cpu') for name, cfg in methods.items()}
        seconds = dict.fromkeys(methods, 0.0)
        order = list(methods)
        for index, frame in enumerate(frames):
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)
            order = order[1:] + order[:1]
            for name in order:
                start = time.perf_counter()
                segmenters[name].process(frame, index / 30.0, 'bench')
                seconds[name] += time.perf_counter() - start
        table[size] = {name: len(frames) / max(seconds[name], 1e-9) for name in methods}
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--shared', default=SHARED, help='the ../shared folder')
    parser.add_argument('--sequences', nargs='+', default=list(SEQUENCES))
    parser.add_argument('--methods', nargs='+', default=list(METHODS), choices=list(METHODS))
    parser.add_argument('--last', type=int, default=None,
                        help='stop after this frame number (default: whole sequences)')
    parser.add_argument('--param', action='append', default=[], metavar='KEY=VALUE',
                        help='parameter change for the consensus row (repeatable)')
    parser.add_argument('--speed', nargs='+', default=None, metavar='WxH',
                        help='time the methods at these sizes on pedestrians instead')
    args = parser.parse_args(argv)

    overrides = params.parse_assignments(args.param)
    methods = {}
    for name in args.methods:
        cfg = params.defaults()
        cfg.update(METHODS[name])
        if name == 'consensus':
            cfg.update(overrides)
        methods[name] = cfg

    if args.speed:
        seqdir = os.path.join(args.shared, 'data', 'cdnet2014', 'baseline', 'pedestrians')
        table = speed(seqdir, methods, args.speed, args.last)
        print('| method |' + ''.join(' fps %s |' % size for size in args.speed))
        print('|---' * (1 + len(args.speed)) + '|')
        for name in args.methods:
            print('| %s |' % name + ''.join(' %.0f |' % table[size][name]
                                            for size in args.speed))
        return 0

    results = {}
    for seq in args.sequences:
        seqdir = os.path.join(args.shared, 'data', 'cdnet2014', 'baseline', seq)
        if not os.path.isdir(seqdir):
            sys.exit('no CDnet sequence at %s' % seqdir)
        results[seq] = run_sequence(seqdir, methods, args.last)

    header = '| method |' + ''.join(' F %s | P | R |' % s for s in args.sequences) + \
        ''.join(' fps %s (%s) |' % (s, results[s][args.methods[0]][2])
                for s in args.sequences)
    print(header)
    print('|---' * (1 + 4 * len(args.sequences)) + '|')
    for name in args.methods:
        cells = []
        for seq in args.sequences:
            r = results[seq][name][0]
            cells += ['%.4f' % r['f_measure'], '%.3f' % r['precision'], '%.3f' % r['recall']]
        cells += ['%.0f' % results[seq][name][1] for seq in args.sequences]
        print('| %s | %s |' % (name, ' | '.join(cells)))
    if overrides:
        print('consensus changes: %s' % ', '.join('%s=%s' % kv for kv in overrides.items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())

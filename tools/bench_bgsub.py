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

``--errors`` instead runs consensus alone and splits every sequence's errors by kind
(:func:`error_classes`), over the whole temporal ROI and over its first and second
halves, so that a change can be chosen on one half and reported on the other.

Example::

    .venv/bin/python tools/bench_bgsub.py
    .venv/bin/python tools/bench_bgsub.py --last 700 --methods consensus
    .venv/bin/python tools/bench_bgsub.py --speed 360x240 640x480 --last 600
    .venv/bin/python tools/bench_bgsub.py --errors --sequences highway
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


#: Error kinds counted by :func:`error_classes`, in print order.
ERROR_KINDS = ('FP shadow', 'FP object margin', 'FP elsewhere',
               'FN object rim', 'FN camouflage', 'FN other')
#: Pixels within this distance (px, chessboard) of an object are its margin or rim.
MARGIN = 3
#: Camouflage: an object pixel whose L1 colour distance (B + G + R) to the background
#: image is at most this (the consensus default threshold).
CAMOUFLAGE_L1 = 30


def error_classes(mask, gt, roi, frame, background):
    """
    Return {kind: pixel count} of one frame's errors, by :data:`ERROR_KINDS`.

    ``mask`` is the predicted foreground (bool), ``gt`` CDnet's ground truth (0 static,
    50 shadow, 85 outside the ROI, 170 unknown, 255 moving), ``roi`` a bool mask or
    None, ``frame`` and ``background`` BGR images (the model's background image).  Only
    the pixels CDnet scores count.  False positives: on cast shadow (truth 50); on static
    background within :data:`MARGIN` px of an object (its margin); elsewhere.  False
    negatives: within :data:`MARGIN` px of the object's edge (its rim); inside it where
    the frame's colour is within :data:`CAMOUFLAGE_L1` of the background image
    (camouflage); other.
    """
    import cv2
    import numpy as np
    mask = np.asarray(mask, bool)
    scored = (gt == 0) | (gt == 50) | (gt == 255)
    if roi is not None:
        scored &= np.asarray(roi, bool)
    obj = (gt == 255).astype(np.uint8)
    kernel = np.ones((2 * MARGIN + 1, 2 * MARGIN + 1), np.uint8)
    near = cv2.dilate(obj, kernel) > 0
    rim = (obj > 0) & (cv2.erode(obj, kernel, borderType=cv2.BORDER_REPLICATE) == 0)
    fp = mask & scored & (gt != 255)
    fn = ~mask & scored & (gt == 255)
    distance = np.abs(frame.astype(np.int16) - background.astype(np.int16)).sum(axis=2)
    camouflage = fn & ~rim & (distance <= CAMOUFLAGE_L1)
    counts = (fp & (gt == 50), fp & (gt == 0) & near, fp & (gt == 0) & ~near,
              fn & rim, camouflage, fn & ~rim & ~camouflage)
    return {kind: int(np.count_nonzero(part)) for kind, part in zip(ERROR_KINDS, counts)}


def error_table(seqdir: str, config, last=None):
    """
    Run consensus over one sequence; return {window: (score result, error counts)}.

    Windows: ``whole`` (the temporal ROI), ``first half`` and ``second half`` of it
    (frame numbers up to and after its middle).
    """
    roi = datasets.cdnet_roi(seqdir)
    first, final = datasets.cdnet_temporal_roi(seqdir) or (1, 10 ** 9)
    middle = (first + final) // 2
    windows = ('whole', 'first half', 'second half')
    scores = {name: CdnetScore(roi) for name in windows}
    errors = {name: dict.fromkeys(ERROR_KINDS, 0) for name in windows}
    segmenter = BackgroundSubtractor(config, 'cpu')
    for stem, frame, gt, scored in datasets.iter_cdnet(seqdir, last=last):
        matte = segmenter.process(frame)
        if not scored:
            continue
        mask = matte.alpha > 0.5
        counts = error_classes(mask, gt, roi, frame, matte.background)
        number = int(''.join(c for c in stem if c.isdigit()))
        for name in ('whole', 'first half' if number <= middle else 'second half'):
            scores[name].add(mask, gt, True)
            for kind, value in counts.items():
                errors[name][kind] += value
    return {name: (scores[name].result(), errors[name]) for name in windows}


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
    parser.add_argument('--errors', action='store_true',
                        help='split consensus errors by kind, per half of the temporal ROI')
    args = parser.parse_args(argv)
    if args.errors:
        args.methods = ['consensus']

    overrides = params.parse_assignments(args.param)
    methods = {}
    for name in args.methods:
        cfg = params.defaults()
        cfg.update(METHODS[name])
        if name == 'consensus':
            cfg.update(overrides)
        methods[name] = cfg

    if args.errors:
        print('| sequence | frames | F | P | R | TP | ' + ' | '.join(ERROR_KINDS) + ' |')
        print('|---' * (6 + len(ERROR_KINDS)) + '|')
        for seq in args.sequences:
            seqdir = os.path.join(args.shared, 'data', 'cdnet2014', 'baseline', seq)
            if not os.path.isdir(seqdir):
                sys.exit('no CDnet sequence at %s' % seqdir)
            for window, (r, counts) in error_table(seqdir, methods['consensus'],
                                                   args.last).items():
                print('| %s %s | %d | %.4f | %.4f | %.4f | %d | %s |'
                      % (seq, window, r['frames'], r['f_measure'], r['precision'],
                         r['recall'], r['TP'],
                         ' | '.join('%d' % counts[k] for k in ERROR_KINDS)))
        if overrides:
            print('consensus changes: %s' % ', '.join('%s=%s' % kv for kv in overrides.items()))
        return 0

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

#!/usr/bin/env python3
"""
Print a table: straight ONNX Runtime loop vs matte_ros's rvm segmenter on DAVIS frames.

Both run the official ``rvm_mobilenetv3_fp32.onnx`` on the CPU at the same downsample
ratio over the DAVIS 2016 480p frames (854×480) in ``../shared``.  The straight loop is
the model's documented usage: default session, NumPy preprocessing, recurrent state
fed back as NumPy arrays.  The matte_ros rows go through ``Segmenter.process`` (BGR
frame in, alpha and BGR foreground out).  Runners take turns frame by frame (the order
rotating), each with its own recurrent state, so drifts in machine speed hit all rows
alike; compare rows of one run, not runs.  Every extra session's thread pool competes
for the same cores, so ``--variants`` rows slow their neighbours.  J is the mean
Jaccard index of ``alpha > 0.5`` against the DAVIS annotations; the last column is the
largest alpha difference from the straight loop.

Example::

    .venv/bin/python tools/bench_rvm.py --frames 20
"""

import argparse
import glob
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cv2  # noqa: E402
from matte_ros import params  # noqa: E402
from matte_ros.segmenters import rvm  # noqa: E402
from matte_ros.segmenters import rvm_model  # noqa: E402
import numpy as np  # noqa: E402

SHARED = os.path.join(ROOT, '..', 'shared')
SEQUENCES = ('parkour', 'kite-surf', 'dance-twirl')
#: CDnet pedestrians: people are in view from frame 307 on (its ground truth).
CALIBRATION_SKIP = 300


def load(shared: str, sequences, count: int):
    """Return {sequence: [(bgr frame, ground-truth mask), ...]} from DAVIS 480p."""
    out = {}
    for seq in sequences:
        names = sorted(glob.glob(os.path.join(shared, 'data', 'davis2016', 'JPEGImages',
                                              '480p', seq, '*.jpg')))[:count]
        if not names:
            sys.exit('no DAVIS frames for %s under %s' % (seq, shared))
        out[seq] = [(cv2.imread(n), cv2.imread(n.replace('JPEGImages', 'Annotations')
                                               .replace('.jpg', '.png'),
                                               cv2.IMREAD_GRAYSCALE) > 127)
                    for n in names]
    return out


class Project:
    """matte_ros's rvm segmenter with the given session tuning."""

    def __init__(self, model: str, ratio: float, threads: int, spinning: bool, **extra):
        config = params.defaults()
        config.update({'models.model_path': model, 'rvm.downsample_ratio': ratio})
        config.update(extra)
        self.segmenter = rvm.RobustVideoMatting(config, 'cpu', threads=threads,
                                                spinning=spinning)

    def reset(self):
        """Start a new sequence."""
        self.segmenter.reset('new sequence')

    def __call__(self, frame):
        """Return alpha for one BGR frame."""
        return self.segmenter.process(frame).alpha


def main(argv=None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    parser.add_argument('--shared', default=SHARED, help='the shared data directory')
    parser.add_argument('--model', default='', help='RVM ONNX (default: shared reference)')
    parser.add_argument('--frames', type=int, default=20, help='frames per sequence')
    parser.add_argument('--warmup', type=int, default=2, help='untimed frames per sequence')
    parser.add_argument('--ratio', type=float, default=0.0,
                        help='downsample ratio (0 = rvm automatic rule: 0.562 at 854x480)')
    parser.add_argument('--openvino', action='store_true',
                        help='also time rvm.runtime openvino in fp32 and int8 (the int8 '
                        'model derived first, if absent, from CDnet pedestrians frames)')
    parser.add_argument('--model-dir', default='',
                        help='model cache holding derived int8 models (default: the usual)')
    parser.add_argument('--variants', action='store_true',
                        help='also time session variants (no spin-waiting, one thread)')
    args = parser.parse_args(argv)
    model = args.model or os.path.join(args.shared, 'models', 'rvm_mobilenetv3_fp32.onnx')
    if not os.path.exists(model):
        sys.exit('model %s absent' % model)
    data = load(args.shared, SEQUENCES, args.frames)
    height, width = next(iter(data.values()))[0][0].shape[:2]
    ratio = rvm.downsample_ratio(height, width, args.ratio)
    runners = [
        ('straight ORT loop (reference)', rvm_model.reference_loop(model, ratio)),
        ('matte_ros rvm (default session)', Project(model, ratio, 0, True)),
    ]
    if args.openvino:
        extra = {'rvm.runtime': 'openvino', 'models.model_dir': args.model_dir}
        ensure_int8(model, ratio, (width, height), args)
        runners += [('matte_ros rvm, OpenVINO fp32', Project(model, ratio, 0, True, **extra)),
                    ('matte_ros rvm, OpenVINO int8', Project(model, ratio, 0, True,
                                                             **extra,
                                                             **{'rvm.precision': 'int8'}))]
    if args.variants:
        runners += [('matte_ros rvm, no spin-waiting', Project(model, ratio, 0, False)),
                    ('matte_ros rvm, 1 thread', Project(model, ratio, 1, True))]
    seconds = [0.0] * len(runners)
    per_sequence = {}
    timed = 0
    scores = [[] for _ in runners]
    worst = [0.0] * len(runners)
    for seq, frames in data.items():
        first = [len(score) for score in scores]
        for _, runner in runners:
            runner.reset()
        for index, (frame, truth) in enumerate(frames):
            alphas = [None] * len(runners)
            for turn in range(len(runners)):
                k = (index + turn) % len(runners)
                start = time.perf_counter()
                alphas[k] = runners[k][1](frame)
                if index >= args.warmup:
                    seconds[k] += time.perf_counter() - start
            for k, alpha in enumerate(alphas):
                mask = alpha > 0.5
                scores[k].append((mask & truth).sum() / max(1, (mask | truth).sum()))
                worst[k] = max(worst[k], float(np.abs(alpha - alphas[0]).max()))
            timed += index >= args.warmup
        per_sequence[seq] = [float(np.mean(score[start:]))
                             for score, start in zip(scores, first)]
    print('RVM mobilenetv3 fp32, CPU, %dx%d, downsample ratio %.3f, %d timed frames '
          '(%s)' % (width, height, ratio, timed, ', '.join(data)))
    print('| runner | fps | ms/frame | speed-up | J | ΔJ | max abs Δalpha |')
    print('|---|---|---|---|---|---|---|')
    base_fps = timed / seconds[0]
    base_j = float(np.mean(scores[0]))
    for k, (label, _) in enumerate(runners):
        fps = timed / seconds[k]
        j = float(np.mean(scores[k]))
        print('| %s | %.2f | %.1f | %.2f× | %.4f | %+.4f | %.1e |' % (
            label, fps, 1000.0 / fps, fps / base_fps, j, j - base_j, worst[k]))
    print()
    print('| J per sequence | %s |' % ' | '.join(label for label, _ in runners))
    print('|---|%s' % ('---|' * len(runners)))
    for seq, values in per_sequence.items():
        print('| %s | %s |' % (seq, ' | '.join('%.4f (%+.4f)' % (v, v - values[0])
                                               for v in values)))
    return 0


def ensure_int8(model: str, ratio: float, size, args) -> None:
    """Derive the int8 model for ``ratio`` from CDnet pedestrians (people in view) if absent."""
    from matte_ros import models
    from matte_ros.segmenters import rvm_int8
    from matte_ros.segmenters import rvm_openvino
    calibration = os.path.join(args.shared, 'data', 'cdnet2014', 'baseline', 'pedestrians',
                               'input')
    directory = rvm_openvino.openvino_dir({'models.model_dir': args.model_dir})
    rvm_int8.ensure(model, models.sha256_file(model), ratio, directory, calibration, size,
                    skip=CALIBRATION_SKIP, alpha_only=True)   # rvm without publish_foreground


if __name__ == '__main__':
    sys.exit(main())

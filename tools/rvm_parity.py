#!/usr/bin/env python3
"""
Compare rvm in matte_ros with a straight ONNX Runtime loop on DAVIS: J per sequence.

For each DAVIS sequence both run over the same frames with the same weights and
downsample ratio, frame by frame in lock-step:

* **plain**: the loop RVM's documentation describes
  (:func:`matte_ros.segmenters.rvm_model.reference_loop`, which shares nothing with the
  segmenter's runtimes: ``fgr, pha, *rec = session.run(src, *rec, ratio)``), mask =
  ``pha > 0.5``;
* **project**: :class:`matte_ros.pipeline.Pipeline` with ``segmenter=rvm`` — the core
  ``matte-ros process``, ``matte-ros eval`` and the node all run — mask = its ``~/mask``
  (alpha > ``threshold`` 0.5), state reset at the start of each sequence, with
  ``rvm.settle_frames`` 0 (settling after a reset is a step on top of the loop, measured
  by ``tools/rvm_reset.py``).

It prints J (mask IoU, DAVIS convention: first and last frame left out) for both, their
difference, and the largest per-pixel difference between the project's mono8 alpha and
the plain loop's alpha scaled to 0-255.  The target is |ΔJ| ≤ 0.005 everywhere.

Example (about 10 minutes on a busy 2-core machine for both ratios)::

    nice .venv/bin/python tools/rvm_parity.py --ratio 0.6 --ratio 0
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from matte_ros.measure import datasets  # noqa: E402
from matte_ros.measure import scoring  # noqa: E402
from matte_ros.pipeline import Pipeline  # noqa: E402
from matte_ros.segmenters import rvm_model  # noqa: E402
import numpy as np  # noqa: E402

SHARED = os.path.join(ROOT, '..', 'shared')
DAVIS = os.path.join(SHARED, 'data', 'davis2016')
MODEL = os.path.join(SHARED, 'models', 'rvm_mobilenetv3_fp32.onnx')


def auto_ratio(height: int, width: int) -> float:
    """Return the ratio the project picks for ``rvm.downsample_ratio`` 0 (for the plain loop)."""
    from matte_ros.segmenters.rvm import auto_downsample_ratio
    return auto_downsample_ratio(height, width)


def compare(seq: str, ratio: float, max_frames: int = 0, root: str = DAVIS,
            model: str = MODEL) -> dict:
    """
    Run both on one DAVIS sequence; return J of each, ΔJ and the max mono8 alpha difference.

    ``ratio`` 0 gives the project its automatic ratio and the plain loop the same value.
    """
    pipeline = Pipeline({'segmenter': 'rvm', 'models.model_path': model,
                         'rvm.downsample_ratio': float(ratio), 'rvm.settle_frames': 0,
                         'composite.mode': 'none'},
                        backend='cpu')
    plain = None  # made at the first frame: the ratio follows its size
    plain_score, project_score = scoring.DavisScore(), scoring.DavisScore()
    alpha_diff = 0
    frames = 0
    used_ratio = ratio
    t0 = time.perf_counter()
    for _, frame, gt in datasets.iter_davis(root, seq):
        if max_frames and frames >= max_frames:
            break
        if ratio <= 0:
            used_ratio = auto_ratio(*frame.shape[:2])
        if plain is None:
            plain = rvm_model.reference_loop(model, used_ratio)
        pha = plain(frame)
        result = pipeline.process(frame, None, seq)
        plain_score.add(pha > 0.5, gt)
        project_score.add(result.mask > 127, gt)
        plain8 = np.clip(pha, 0.0, 1.0) * 255.0
        alpha_diff = max(alpha_diff, float(np.abs(result.alpha.astype(np.float32)
                                                  - plain8).max()))
        frames += 1
    pipeline.close()
    j_plain, j_project = plain_score.result()['J'], project_score.result()['J']
    return {'sequence': seq, 'ratio': used_ratio, 'frames': frames, 'J_plain': j_plain,
            'J_project': j_project, 'dJ': j_project - j_plain, 'alpha_diff': alpha_diff,
            'seconds': time.perf_counter() - t0}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--ratio', type=float, action='append',
                        help='downsample ratio (repeatable; 0 = automatic); default 0.6 and 0')
    parser.add_argument('--sequence', action='append', help='DAVIS sequence (default: all)')
    parser.add_argument('--max-frames', type=int, default=0, help='0 = whole sequence')
    parser.add_argument('--davis', default=DAVIS, help='DAVIS 2016 root')
    parser.add_argument('--model', default=MODEL, help='rvm_mobilenetv3_fp32.onnx')
    args = parser.parse_args(argv)
    ratios = args.ratio or [0.6, 0.0]
    names = args.sequence or datasets.davis_sequences(args.davis)
    print('| sequence | ratio | frames | J plain ORT | J matte_ros | ΔJ | max Δalpha (mono8) |')
    print('|---|---|---|---|---|---|---|')
    worst = 0.0
    for ratio in ratios:
        for seq in names:
            row = compare(seq, ratio, args.max_frames, args.davis, args.model)
            worst = max(worst, abs(row['dJ']))
            label = '%.3f%s' % (row['ratio'], ' (auto)' if ratio <= 0 else '')
            print('| %s | %s | %d | %.4f | %.4f | %+.4f | %.1f |' % (
                seq, label, row['frames'], row['J_plain'], row['J_project'], row['dJ'],
                row['alpha_diff']), flush=True)
    print('largest |ΔJ|: %.4f (issue limit 0.005)' % worst)
    return 0 if worst <= 0.005 else 1


if __name__ == '__main__':
    sys.exit(main())

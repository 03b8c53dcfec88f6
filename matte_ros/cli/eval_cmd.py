"""
``matte-ros eval``: run a segmenter over a DAVIS or CDnet data set and score its masks.

Each sequence starts from a reset pipeline; compositing is switched off
(``composite.mode=none``) so that only the segmenter and mask post-processing run.
The table shows per-sequence scores (see :mod:`matte_ros.measure.scoring` for the
definitions), the mean over sequences, and speed: ``fps`` counts only the time spent
in ``Pipeline.process``; ``wall fps`` counts everything (reading frames from disk, scoring).
Beside J and F (DAVIS) or the CDnet metrics, every sequence gets the two temporal
scores of :class:`matte_ros.measure.scoring.TemporalScore`: dtSSD of the alpha output and mask
flicker, both ×100 (lower is steadier).

CDnet sequences begin with frames meant for initialising background models (before
``temporalROI.txt``'s first frame): they are processed but not scored, and
``--max-frames`` counts only scored frames there (``--warmup`` limits the frames run
before them).
"""

import argparse
import json
import math
import os
import sys
import time
from typing import Any
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional

from matte_ros import params
from matte_ros.measure import datasets
from matte_ros.measure import scoring

FORMATS = ('davis', 'cdnet')

TEMPORAL_KEYS = ('dtSSD', 'flicker')
DAVIS_KEYS = ('J', 'F', 'JF', 'J_recall', 'F_recall') + TEMPORAL_KEYS
CDNET_KEYS = ('precision', 'recall', 'f_measure', 'pwc', 'specificity', 'fpr',
              'fnr') + TEMPORAL_KEYS


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``eval`` subcommand to an argparse ``subparsers`` object and return it."""
    parser = subparsers.add_parser(
        'eval', help='score a segmenter on a DAVIS or CDnet data set',
        description=__doc__.strip().split('\n\n')[0].replace('\n', ' '),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='examples:\n'
               '  matte-ros eval --format cdnet --data ~/data/cdnet2014/baseline '
               '--segmenter bgsub\n'
               '  matte-ros eval --format davis --data ~/data/davis2016 '
               '--segmenter rvm --max-frames 30 --json rvm.json')
    parser.add_argument('--format', dest='data_format', choices=FORMATS, required=True,
                        help='layout of --data')
    parser.add_argument('--data', required=True, metavar='DIR',
                        help='DAVIS root (holding JPEGImages/), or a CDnet sequence, '
                             'category or dataset directory')
    parser.add_argument('--segmenter', required=True, choices=params.SEGMENTERS)
    parser.add_argument('--param', action='append', default=[], metavar='KEY=VALUE',
                        help='parameter override (repeatable), see `matte-ros params`')
    parser.add_argument('--sequences', default='', metavar='A,B',
                        help='comma-separated sequence names (default: all)')
    parser.add_argument('--max-frames', type=int, default=0, metavar='N',
                        help='score at most N frames per sequence (0 = all)')
    parser.add_argument('--warmup', type=int, default=-1, metavar='K',
                        help='CDnet: run at most K frames before the temporal ROI '
                             '(default: all of them)')
    parser.add_argument('--json', default='', metavar='FILE',
                        help='also write the results as JSON to FILE')
    parser.add_argument('--backend', default='cpu', choices=params.BACKENDS,
                        help='compute backend (default: cpu)')
    return parser


def config_values(segmenter: str, assignments: Optional[List[str]] = None) -> Dict[str, Any]:
    """Return the full parameter values for an evaluation run (raises ParamError)."""
    values = params.defaults()
    values.update(params.parse_assignments(assignments or []))
    values['segmenter'] = params.validate('segmenter', segmenter)
    values['composite.mode'] = 'none'
    return values


def _default_pipeline(values: Dict[str, Any], backend: str):
    from matte_ros.pipeline import Pipeline
    return Pipeline(values, backend=backend)


def _select(names: List[str], wanted: List[str], what: str) -> List[str]:
    if not wanted:
        return names
    missing = [w for w in wanted if w not in names]
    if missing:
        raise ValueError('no %s sequence named %s (have: %s)'
                         % (what, ', '.join(missing), ', '.join(names)))
    return [n for n in names if n in wanted]


class _Clock:
    """Frame counts and seconds spent processing vs. overall for one sequence."""

    def __init__(self):
        self.frames = 0
        self.process_s = 0.0
        self.start = time.perf_counter()

    def run(self, pipeline, frame, frame_id):
        """Process one frame; return ``(mask as bool, alpha as uint8)``."""
        t0 = time.perf_counter()
        result = pipeline.process(frame, None, frame_id)
        self.process_s += time.perf_counter() - t0
        self.frames += 1
        mask = result.mask
        if mask.shape != frame.shape[:2]:
            raise ValueError('the pipeline returned a %dx%d mask for a %dx%d frame'
                             % (mask.shape[1], mask.shape[0], frame.shape[1], frame.shape[0]))
        return mask > 127, result.alpha

    def speed(self) -> Dict[str, Any]:
        wall = time.perf_counter() - self.start
        return {'processed': self.frames, 'process_s': self.process_s, 'wall_s': wall,
                'fps': _rate(self.frames, self.process_s), 'wall_fps': _rate(self.frames, wall)}


def _rate(frames: int, seconds: float) -> float:
    return frames / seconds if seconds > 0 else float('nan')


def _eval_davis(pipeline, root: str, names: List[str], max_frames: int,
                progress) -> List[Dict[str, Any]]:
    rows = []
    for seq in names:
        pipeline.reset('new sequence')
        score = scoring.DavisScore()
        temporal = scoring.TemporalScore(skip_ends=score.skip_ends)
        clock = _Clock()
        for stem, frame, gt in datasets.iter_davis(root, seq):
            if max_frames and clock.frames >= max_frames:
                break
            mask, alpha = clock.run(pipeline, frame, seq)
            score.add(mask, gt)
            temporal.add(alpha, mask, gt)
        row = {'sequence': seq}
        row.update(score.result())
        row.update(temporal.result())
        row.update(clock.speed())
        rows.append(row)
        progress(row)
    return rows


def _eval_cdnet(pipeline, seqdirs: List[str], max_frames: int, warmup: int,
                progress) -> List[Dict[str, Any]]:
    rows = []
    for seqdir in seqdirs:
        name = os.path.basename(os.path.normpath(seqdir))
        window = datasets.cdnet_temporal_roi(seqdir)
        first_run, last_run = 1, None
        if window is not None:
            last_run = window[1]
            if warmup >= 0:
                first_run = max(1, window[0] - warmup)
        pipeline.reset('new sequence')
        roi = datasets.cdnet_roi(seqdir)
        score = scoring.CdnetScore(roi)
        temporal = scoring.TemporalScore()
        clock = _Clock()
        for stem, frame, gt, scored in datasets.iter_cdnet(seqdir, first_run, last_run):
            if max_frames and score.frames >= max_frames:
                break
            mask, alpha = clock.run(pipeline, frame, name)
            score.add(mask, gt, scored)
            if scored:
                positive, valid = scoring.cdnet_truth(gt, roi)
                temporal.add(alpha, mask, positive, valid)
            else:
                temporal.add(alpha, mask, None)
        row = {'sequence': name}
        row.update(score.result())
        row.update(temporal.result())
        row.update(clock.speed())
        rows.append(row)
        progress(row)
    return rows


def evaluate(data_format: str, data: str, values: Dict[str, Any], backend: str = 'cpu',
             sequences: Optional[List[str]] = None, max_frames: int = 0, warmup: int = -1,
             pipeline_factory: Optional[Callable] = None,
             progress: Optional[Callable] = None) -> Dict[str, Any]:
    """
    Run one configuration over a data set; return ``{'sequences': rows, 'mean': {...}, ...}``.

    ``pipeline_factory(values, backend)`` builds the pipeline (default
    :class:`matte_ros.pipeline.Pipeline`); ``progress(row)`` is called after each
    sequence.  Raises ``FileNotFoundError``/``ValueError`` for bad data or sequence
    names, and whatever building the pipeline raises (SegmenterError, ParamError).
    """
    if data_format not in FORMATS:
        raise ValueError('unknown format %r (choose from %s)' % (data_format, ', '.join(FORMATS)))
    wanted = [s.strip() for s in (sequences or []) if s.strip()]
    if data_format == 'davis':
        names = _select(datasets.davis_sequences(data), wanted, 'DAVIS')
        seqdirs = []
    else:
        seqdirs = datasets.cdnet_sequences(data)
        by_name = [os.path.basename(os.path.normpath(d)) for d in seqdirs]
        names = _select(by_name, wanted, 'CDnet')
        seqdirs = [d for d, n in zip(seqdirs, by_name) if n in names]
    factory = pipeline_factory or _default_pipeline
    pipeline = factory(values, backend)
    report = progress or (lambda row: None)
    try:
        if data_format == 'davis':
            rows = _eval_davis(pipeline, data, names, max_frames, report)
            keys = DAVIS_KEYS
        else:
            rows = _eval_cdnet(pipeline, seqdirs, max_frames, warmup, report)
            keys = CDNET_KEYS
    finally:
        pipeline.close()
    frames = sum(r['processed'] for r in rows)
    process_s = sum(r['process_s'] for r in rows)
    wall_s = sum(r['wall_s'] for r in rows)
    mean = scoring.mean_of(rows, keys)
    mean.update({'frames': sum(r['frames'] for r in rows), 'processed': frames,
                 'process_s': process_s, 'wall_s': wall_s,
                 'fps': _rate(frames, process_s), 'wall_fps': _rate(frames, wall_s)})
    return {'format': data_format, 'data': data, 'segmenter': values.get('segmenter'),
            'backend': getattr(pipeline, 'backend', backend), 'sequences': rows, 'mean': mean}


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 'n/a'
    if isinstance(value, int):
        return str(value)
    return '%.*f' % (digits, value)


def format_table(results: Dict[str, Any]) -> str:
    """Return the results as an aligned text table, one row per sequence plus the mean."""
    if results['format'] == 'davis':
        header = ['sequence', 'frames', 'J', 'F', 'J&F', 'dtSSD', 'flicker', 'fps',
                  'wall fps']
        keys = [('frames', 0), ('J', 3), ('F', 3), ('JF', 3), ('dtSSD', 2), ('flicker', 3),
                ('fps', 1), ('wall_fps', 1)]
    else:
        header = ['sequence', 'frames', 'precision', 'recall', 'F-measure', 'PWC', 'dtSSD',
                  'flicker', 'fps', 'wall fps']
        keys = [('frames', 0), ('precision', 3), ('recall', 3), ('f_measure', 3),
                ('pwc', 2), ('dtSSD', 2), ('flicker', 3), ('fps', 1), ('wall_fps', 1)]
    lines = [header]
    for row in results['sequences'] + [dict(results['mean'], sequence='mean')]:
        lines.append([row['sequence']] + [_fmt(row[k], d) for k, d in keys])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = []
    for index, line in enumerate(lines):
        text.append('  '.join(cell.ljust(w) if i == 0 else cell.rjust(w)
                              for i, (cell, w) in enumerate(zip(line, widths))))
        if index == 0 or index == len(lines) - 2:
            text.append('  '.join('-' * w for w in widths))
    return '\n'.join(text)


def _json_safe(value):
    """Turn NaN into None so the JSON file is standard JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def run(args, pipeline_factory: Optional[Callable] = None) -> int:
    """Run ``matte-ros eval`` with parsed arguments; return the exit status."""
    from matte_ros.segmenters import SegmenterError
    try:
        values = config_values(args.segmenter, args.param)
    except params.ParamError as exc:
        print('matte-ros eval: %s' % exc, file=sys.stderr)
        return 2
    if args.max_frames < 0:
        print('matte-ros eval: --max-frames must be ≥ 0', file=sys.stderr)
        return 2

    def progress(row):
        print('%s: %d frames processed, %d scored, %.1f fps'
              % (row['sequence'], row['processed'], row['frames'], row['fps']),
              file=sys.stderr, flush=True)

    try:
        results = evaluate(args.data_format, args.data, values, args.backend,
                           args.sequences.split(',') if args.sequences else None,
                           args.max_frames, args.warmup, pipeline_factory, progress)
    except (FileNotFoundError, ValueError, IOError) as exc:
        print('matte-ros eval: %s' % exc, file=sys.stderr)
        return 2
    except SegmenterError as exc:
        print('matte-ros eval: cannot build segmenter %r: %s' % (args.segmenter, exc),
              file=sys.stderr)
        return 1
    results['params'] = params.parse_assignments(args.param)
    print('%s on %s (%s, backend %s)' % (args.segmenter, args.data, args.data_format,
                                         results['backend']))
    print(format_table(results))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(_json_safe(results), f, indent=2)
            f.write('\n')
    return 0

#!/usr/bin/env python3
"""
Print the quality table (docs/quality.md): every segmenter variant scored on DAVIS and CDnet.

Runs :func:`matte_ros.cli.eval_cmd.evaluate` for each variant the segmenters declare on the
read-only data beside the repo (``../shared/data``): DAVIS 2016 (J, boundary F) and
CDnet 2014 baseline (precision, recall, F-measure), the temporal scores (dtSSD and
mask flicker, ×100, see :mod:`matte_ros.measure.scoring`), with speed (frames per second
spent in ``Pipeline.process``).  Every configuration runs twice: as configured and
with the temporal stabiliser on (``stabilizer.enabled=true`` at the schema's
defaults); a second table gives the stabiliser's effect on the sequences its
defaults were chosen on (:data:`TUNED`) and on the others.  Segmenters that cannot
be built here (missing model or library) are listed with the reason instead of
numbers.  Neural models are taken from ``../shared/models`` when present
(``models.model_path``).

A second table scores the background-subtraction rows (:data:`STILL_SEGMENTERS`) on the
composited still-person scenes of :mod:`matte_ros.measure.still_scene` (whole scenes, CDnet's
rules): ``still-a`` is dev data (defaults were chosen on it), ``still-b`` and ``still-c``
are held out.

Example (4-8 minutes on 2 cores, mostly rvm)::

    .venv/bin/python tools/quality_table.py --max-frames 40 --warmup 100
"""

import argparse
import math
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from matte_ros import models  # noqa: E402
from matte_ros import params  # noqa: E402
from matte_ros.cli import eval_cmd  # noqa: E402
from matte_ros.measure import still_scene  # noqa: E402
from matte_ros.segmenters import registry  # noqa: E402

SHARED = os.path.join(ROOT, '..', 'shared')


def configs():
    """
    Return (label, segmenter, overrides, model file name or '') for every row.

    The rows are the variants each segmenter declares (``SegmenterSpec.variants``), in
    registry order; a variant's model is looked for in ``<shared>/models`` under its
    registry file name.
    """
    out = []
    for spec in registry.specs().values():
        for variant in spec.variants:
            filename = models.get(variant.model).filename if variant.model else ''
            out.append((variant.label, spec.name, list(variant.overrides), filename))
    return out


#: Segmenters scored on the still-person scenes (the others are slow over 1400 frames).
STILL_SEGMENTERS = ('bgsub', 'framediff')


def still_table(args) -> str:
    """Return the markdown table of the still-person scenes (F, precision, recall, fps)."""
    from matte_ros.pipeline import Pipeline
    from matte_ros.measure.scoring import CdnetScore
    only = [s for s in args.only.split(',') if s]
    names = list(still_scene.DEV_SCENES + still_scene.REPORT_SCENES)
    scenes = [still_scene.StillScene(still_scene.SCENES[n], args.shared) for n in names]
    lines = ['| segmenter | %s |' % ' | '.join(
                 'F %s (%s) | P | R | fps' % (n, 'dev' if n in still_scene.DEV_SCENES
                                              else 'held out') for n in names),
             '|---' * (1 + 4 * len(names)) + '|']
    for label, segmenter, overrides, _ in configs():
        if segmenter not in STILL_SEGMENTERS or (only and segmenter not in only):
            continue
        cells = []
        for scene in scenes:
            pipeline = Pipeline(eval_cmd.config_values(segmenter, overrides + args.param),
                                backend=args.backend)
            score, seconds = CdnetScore(scene.roi), 0.0
            for index, (_, frame, gt, scored) in enumerate(scene):
                start = time.perf_counter()
                result = pipeline.process(frame, scene.stamp(index), 'still')
                seconds += time.perf_counter() - start
                score.add(result.mask > 0, gt, scored)
            pipeline.close()
            r = score.result()
            cells += [_fmt(r['f_measure']), _fmt(r['precision']), _fmt(r['recall']),
                      _fmt(len(scene) / max(seconds, 1e-9), 1)]
        lines.append('| %s | %s |' % (label, ' | '.join(cells)))
    return '\n'.join(lines)


#: Sequences the stabiliser's defaults were chosen on (their first 40 scored frames);
#: the other sequences of ../shared were not looked at while choosing.
TUNED = {'davis': ('parkour',), 'cdnet': ('pedestrians',)}

STABILISER = ['stabilizer.enabled=true']


def _fmt(value, digits=3):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 'n/a'
    return '%.*f' % (digits, value)


def _run(fmt, data, segmenter, overrides, args):
    values = eval_cmd.config_values(segmenter, overrides + args.param)
    return eval_cmd.evaluate(fmt, data, values, args.backend, max_frames=args.max_frames,
                             warmup=args.warmup)


def _split_mean(result, key, tuned):
    """Return the mean of ``key`` over the tuned sequences and over the others."""
    rows = result['sequences']
    inside = [r[key] for r in rows if r['sequence'] in tuned]
    outside = [r[key] for r in rows if r['sequence'] not in tuned]
    return _mean(inside), _mean(outside)


def _mean(values):
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return sum(kept) / len(kept) if kept else float('nan')


def _change(before, after):
    """Return the relative change in % (NaN when ``before`` is 0 or NaN)."""
    if before is None or after is None or math.isnan(before) or math.isnan(after) \
            or before == 0:
        return float('nan')
    return 100.0 * (after - before) / before


def _effect_row(label, plain, stable):
    """Return the stabiliser-effect row of one configuration (both data sets)."""
    cells = [label]
    for fmt, score in (('davis', 'J'), ('cdnet', 'f_measure')):
        flick0 = _split_mean(plain[fmt], 'flicker', TUNED[fmt])
        flick1 = _split_mean(stable[fmt], 'flicker', TUNED[fmt])
        score0 = _split_mean(plain[fmt], score, TUNED[fmt])
        score1 = _split_mean(stable[fmt], score, TUNED[fmt])
        for part in (0, 1):
            cells.append('%s %%' % _fmt(_change(flick0[part], flick1[part]), 0))
            cells.append('%+.3f' % (score1[part] - score0[part])
                         if not math.isnan(score1[part] - score0[part]) else 'n/a')
    return '| %s |' % ' | '.join(cells)


def main(argv=None) -> int:
    """Run every configuration and print the markdown table; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n\n')[0])
    parser.add_argument('--shared', default=SHARED,
                        help='directory holding data/ and models/ (default: ../shared)')
    parser.add_argument('--max-frames', type=int, default=40,
                        help='scored frames per sequence (0 = all; default 40)')
    parser.add_argument('--warmup', type=int, default=100,
                        help='CDnet frames run before the temporal ROI (-1 = all; default 100)')
    parser.add_argument('--only', default='',
                        help='comma-separated segmenter names to run (default: all)')
    parser.add_argument('--param', action='append', default=[], metavar='KEY=VALUE',
                        help='extra override applied to every configuration')
    parser.add_argument('--backend', default='cpu', choices=params.BACKENDS)
    parser.add_argument('--no-still', action='store_true',
                        help='skip the still-person scenes table')
    parser.add_argument('--still-only', action='store_true',
                        help='print only the still-person scenes table')
    args = parser.parse_args(argv)
    if args.still_only:
        print(still_table(args))
        return 0

    davis = os.path.join(args.shared, 'data', 'davis2016')
    cdnet = os.path.join(args.shared, 'data', 'cdnet2014', 'baseline')
    models = os.path.join(args.shared, 'models')
    if not os.path.isdir(davis) or not os.path.isdir(cdnet):
        print('no data at %s (need data/davis2016 and data/cdnet2014/baseline)' % args.shared,
              file=sys.stderr)
        return 2
    only = [s for s in args.only.split(',') if s]

    rows, effects, notes = [], [], []
    for label, segmenter, overrides, model in configs():
        if only and segmenter not in only:
            continue
        overrides = list(overrides)
        if model and os.path.exists(os.path.join(models, model)):
            overrides.append('models.model_path=%s' % os.path.join(models, model))
        started = time.perf_counter()
        runs = []
        try:
            for extra in ([], STABILISER):
                runs.append({'davis': _run('davis', davis, segmenter, overrides + extra, args),
                             'cdnet': _run('cdnet', cdnet, segmenter, overrides + extra,
                                           args)})
        except Exception as exc:  # noqa: B902 — any failure is reported, the table goes on
            notes.append('%s: not run (%s)' % (label, str(exc).splitlines()[0]))
            print('%s: skipped: %s' % (label, exc), file=sys.stderr)
            continue
        for run, name in zip(runs, (label, label + ' + stabiliser')):
            d, c = run['davis'], run['cdnet']
            dm, cm = d['mean'], c['mean']
            per_seq = {r['sequence']: r['f_measure'] for r in c['sequences']}
            rows.append('| %s |' % ' | '.join([
                name, _fmt(dm['J']), _fmt(dm['F']), _fmt(dm['dtSSD'], 2),
                _fmt(dm['flicker'], 3), _fmt(dm['fps'], 1), _fmt(cm['precision']),
                _fmt(cm['recall']), _fmt(per_seq.get('pedestrians')),
                _fmt(per_seq.get('highway')), _fmt(cm['f_measure']), _fmt(cm['dtSSD'], 2),
                _fmt(cm['flicker'], 3), _fmt(cm['fps'], 1), d['backend']]))
        effects.append(_effect_row(label, runs[0], runs[1]))
        print('%s: done in %.0f s' % (label, time.perf_counter() - started), file=sys.stderr)

    print('| segmenter | DAVIS J | DAVIS boundary F | DAVIS dtSSD | DAVIS flicker | DAVIS fps '
          '| CDnet precision | CDnet recall | F pedestrians | F highway | CDnet F '
          '| CDnet dtSSD | CDnet flicker | CDnet fps | backend |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')
    print('\n'.join(rows))
    print()
    print('Stabiliser effect (on vs off): change of mask flicker, and of DAVIS J / CDnet F, '
          'on the sequences its defaults were chosen on (%s) and on the others (%s).'
          % (', '.join(TUNED['davis'] + TUNED['cdnet']), 'kite-surf, dance-twirl, highway'))
    print()
    print('| segmenter | DAVIS flicker, tuned | J, tuned | DAVIS flicker, others | J, others '
          '| CDnet flicker, tuned | F, tuned | CDnet flicker, others | F, others |')
    print('|---|---|---|---|---|---|---|---|---|')
    print('\n'.join(effects))
    print()
    if args.max_frames:
        davis_frames = 'the first %d frames of each sequence' % args.max_frames
        cdnet_frames = 'the first %d frames of each temporal ROI' % args.max_frames
    else:
        davis_frames, cdnet_frames = 'all frames', 'the whole temporal ROI'
    print('DAVIS 2016 (parkour, kite-surf, dance-twirl; 854×480): %s, the first and last '
          'not scored. CDnet 2014 baseline (highway, pedestrians): %s, after %s frames of '
          'warm-up. fps = frames / time in Pipeline.process (2 cores, no GPU).'
          % (davis_frames, cdnet_frames,
             'all its' if args.warmup < 0 else 'up to %d' % args.warmup))
    for note in notes:
        print('- %s' % note)
    if not args.no_still and still_scene.available(args.shared):
        print()
        print(still_table(args))
        print()
        print('Still-person scenes (matte_ros.measure.still_scene): a DAVIS person '
              'composited into '
              'a CDnet background with sensor noise and brightness drift, standing still '
              'for 30-60 s; still-a: walks in, stands, leaves; still-b: in the first frame, '
              'leaves (ghost), another stands; still-c: walks in, stands 60 s moving his '
              'arms a little, leaves. Whole scenes, stamps at 30 Hz.')
    return 0


if __name__ == '__main__':
    sys.exit(main())

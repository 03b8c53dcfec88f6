"""
``matte-ros bench``: bare segmenter loop vs the live node over DDS, on the same frames.

For each segmenter and size: the bare ``Pipeline.process`` loop's fps (before and after
the node runs); the node in its own process, fed by a player process and watched by a
recorder process, first overloaded (3x the bare rate: output rate = node capacity,
bounded latency, flat RSS), then paced (half the node's overload output rate, at most
30 Hz: latency p50/p95/p99 from header stamp to receipt, time per stage, CPU %, peak
RSS); for rvm also a straight ONNX Runtime loop over the same
model.  Writes a markdown report with the targets as ratios (pass/fail) and a PNG plot.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from typing import Any
from typing import Dict

from matte_ros import params
from matte_ros.measure import benchmark
from matte_ros.measure import multi_bench

DEFAULT_SEGMENTERS = 'rvm,selfie,bgsub'
PACED_MAX_HZ = 30.0
#: Frame size of the DAVIS 2016 480p sequences (the rvm quality comparison).
DAVIS_SIZE = (854, 480)
#: Frames every measurement gets at least (slow segmenters run longer than --seconds),
#: up to MAX_SECONDS per live run.
MIN_FRAMES = 20
QUICK_MIN_FRAMES = 5
MAX_SECONDS = 120.0


def _repeats(text: str) -> int:
    """Return ``--repeats`` as an int from 1 to 20 (argparse refuses anything else)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 20:
        raise argparse.ArgumentTypeError('must be a whole number from 1 to 20, got %r'
                                         % text[:40])
    return value


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to an argparse ``subparsers`` object and return it."""
    parser = subparsers.add_parser(
        'bench', help='measure fps, latency, stage times, CPU and memory of the node',
        description=__doc__.strip().split('\n\n')[0].replace('\n', ' '),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='examples:\n'
               '  matte-ros bench                      # rvm, selfie, bgsub at 640x480 '
               'and 1280x720\n'
               '  matte-ros bench --segmenter rvm --sizes 640x480 --seconds 20\n'
               '  matte-ros bench --quick --segmenter bgsub --out /tmp/b.md')
    parser.add_argument('--segmenter', action='append', default=[], metavar='S[,S...]',
                        help='segmenters to measure (repeatable; default %s)'
                             % DEFAULT_SEGMENTERS)
    parser.add_argument('--sizes', default='', metavar='WxH[,WxH...]',
                        help='frame sizes (default 640x480,1280x720; with --cameras 640x480)')
    parser.add_argument('--seconds', type=float, default=10.0,
                        help='seconds per measurement (bare loop, paced, overload)')
    parser.add_argument('--backend', default='cpu', choices=params.BACKENDS)
    parser.add_argument('--param', action='append', default=[], metavar='KEY=VALUE',
                        help='parameter override for every segmenter (repeatable)')
    parser.add_argument('--quick', action='store_true',
                        help='reduced run: 2 s per measurement (checks the command works)')
    parser.add_argument('--no-node', action='store_true',
                        help='bare loops only (no DDS graph)')
    parser.add_argument('--mediapipe-python', default='', metavar='PYTHON',
                        help='python of an environment with mediapipe==0.10.14 (make '
                             "setup-mediapipe): selfie is then compared with MediaPipe's "
                             'own solution in this run (speed, and DAVIS J with --davis)')
    parser.add_argument('--davis', default='', metavar='DIR',
                        help='DAVIS 2016 root for the selfie vs MediaPipe J comparison')
    parser.add_argument('--rvm-calibration', default='', metavar='PATH',
                        help='with --param rvm.precision=int8: frames (video or image '
                        'directory) to derive missing int8 models from')
    parser.add_argument('--rvm-calibration-skip', type=int, default=0, metavar='N',
                        help='calibration frames to pass over first')
    parser.add_argument('--cameras', default='', metavar='N[,N...]',
                        help='instead of the single-camera runs: N cameras in one process '
                             '(matte_multi_node) against one process per camera, for each '
                             'count (e.g. 1,2,4; segmenters default %s); the section is '
                             'written into --out, the rest of it kept'
                             % multi_bench.DEFAULT_SEGMENTERS)
    parser.add_argument('--camera-rate', type=float, default=15.0, metavar='HZ',
                        help="with --cameras: each camera's frame rate")
    parser.add_argument('--repeats', type=_repeats, default=1, metavar='R',
                        help='with --cameras: run both layouts of each count R times, '
                             'alternating (the targets use the means)')
    parser.add_argument('--warmup', type=float, default=5.0, metavar='S',
                        help='with --cameras: seconds sent before the measured window')
    parser.add_argument('--out', default='docs/benchmarks.md', help='markdown report')
    parser.add_argument('--plot', default='', help='PNG plot (default: beside --out)')
    parser.add_argument('--json', default='', metavar='FILE',
                        help='also write all measurements as JSON')
    parser.add_argument('--workdir', default='', help='logs of the processes (default: temp)')
    return parser


def _segmenters(args) -> list:
    names = []
    default = multi_bench.DEFAULT_SEGMENTERS if args.cameras else DEFAULT_SEGMENTERS
    for item in args.segmenter or [default]:
        for name in item.split(','):
            name = name.strip()
            if name and name not in names:
                names.append(params.validate('segmenter', name))
    return names


def _min_frames(args) -> int:
    return QUICK_MIN_FRAMES if args.quick else MIN_FRAMES


def _seconds(args, output_hz: float) -> float:
    """Return how long a live run lasts: --seconds, longer if it would output too few frames."""
    if not output_hz > 0:
        return args.seconds
    return max(args.seconds, min(MAX_SECONDS, _min_frames(args) / output_hz))


def _idle(output_hz: float) -> float:
    """Return how long the recorder waits for the next output before it calls the run over."""
    return max(5.0, 4.0 / output_hz) if output_hz > 0 else 30.0


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _meta(args, argv_text: str) -> Dict[str, Any]:
    try:
        import onnxruntime
        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = 'absent'
    try:
        load = ', '.join('%.1f' % v for v in os.getloadavg())
    except OSError:
        load = 'n/a'
    return {'command': argv_text,
            'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
            'machine': '%s %s, Python %s' % (platform.system(), platform.machine(),
                                             platform.python_version()),
            'cpus': os.cpu_count() or 0, 'loadavg': load, 'backend': args.backend,
            'onnxruntime': ort_version, 'seconds': args.seconds, 'quick': args.quick}


def measure(args, values: Dict[str, Any], names, sizes, workdir: str) -> Dict[str, Any]:
    """Run every measurement; return the results tree that the report is made from."""
    entries = []
    frames = {size: benchmark.bench_frames(size) for size in sizes}
    for name in names:
        seg_values = dict(values, segmenter=name)
        if name == 'rvm' and seg_values.get('rvm.precision') == 'int8':
            _ensure_int8(args, seg_values, sizes)
        entry = {'segmenter': name, 'selfie_model': seg_values.get('selfie.model'),
                 'sizes': []}
        for size in sizes:
            _progress('bench: %s %s bare loop' % (name, benchmark.size_label(size)))
            run = {'size': list(size),
                   'bare': benchmark.bare_loop(seg_values, frames[size], args.seconds,
                                               args.backend, min_frames=_min_frames(args))}
            if name == 'rvm' and args.backend in ('cpu', 'auto'):
                _progress('bench: rvm %s vs straight ORT loop' % benchmark.size_label(size))
                run['rvm_vs_ort'] = benchmark.rvm_vs_straight_ort(
                    seg_values, frames[size], args.seconds, min_frames=_min_frames(args))
                if size == sizes[0] and os.path.isdir(args.davis):
                    _progress('bench: rvm DAVIS J vs straight ORT loop')
                    run['rvm_davis_vs_ort'] = benchmark.rvm_davis_vs_ort(seg_values,
                                                                         args.davis)
            if name == 'selfie' and args.mediapipe_python:
                _progress('bench: selfie %s vs MediaPipe solution' % benchmark.size_label(size))
                run['selfie_vs_mediapipe'] = benchmark.selfie_vs_mediapipe(
                    seg_values, frames[size], args.seconds, args.mediapipe_python,
                    davis_root=(args.davis if size == sizes[0] and os.path.isdir(args.davis)
                                else ''),
                    workdir=os.path.join(workdir, 'mediapipe'))
            entry['sizes'].append(run)
        if not args.no_node:
            _node_runs(args, seg_values, entry, os.path.join(workdir, name))
            for run in entry['sizes']:
                size = tuple(run['size'])
                _progress('bench: %s %s bare loop again' % (name, benchmark.size_label(size)))
                run['bare_after'] = benchmark.bare_loop(seg_values, frames[size], args.seconds,
                                                        args.backend,
                                                        min_frames=_min_frames(args))
        entries.append(entry)
    return {'segmenters': entries}


def _ensure_int8(args, values: Dict[str, Any], sizes) -> None:
    """
    Derive rvm's int8 models the run needs (each size's ratio, DAVIS's) if absent.

    Calibration frames come from ``--rvm-calibration`` (``make bench``: CDnet's
    pedestrians, so that no DAVIS frame is seen), resized to each size.
    """
    from matte_ros import models
    from matte_ros.segmenters import rvm
    from matte_ros.segmenters import rvm_int8
    from matte_ros.segmenters import rvm_openvino
    path = models.locate(rvm.MODEL, values)
    sha256 = models.get(rvm.MODEL).sha256
    alpha_only = not values.get('publish_foreground')
    directory = rvm_openvino.openvino_dir(values)
    wanted = list(sizes)
    if os.path.isdir(args.davis):
        wanted.append(DAVIS_SIZE)
    for width, height in wanted:
        ratio = rvm.downsample_ratio(height, width, float(values.get('rvm.downsample_ratio',
                                                                     0.0)))
        stem = rvm_openvino.int8_stem(path, sha256, ratio, directory, alpha_only)
        if os.path.isfile(stem + '.json'):
            continue
        if not args.rvm_calibration:
            raise SystemExit('rvm.precision int8: no int8 model for ratio %.6f; give '
                             '--rvm-calibration' % ratio)
        _progress('bench: deriving rvm int8 for %dx%d (ratio %.3f)' % (width, height, ratio))
        rvm_int8.ensure(path, sha256, ratio, directory, args.rvm_calibration, (width, height),
                        skip=args.rvm_calibration_skip, log=_progress, alpha_only=alpha_only)


def _node_runs(args, values: Dict[str, Any], entry: Dict[str, Any], workdir: str) -> None:
    import rclpy
    from matte_ros.measure import bench_graph
    from matte_ros.measure import processes
    env = processes.apply_isolation()
    rclpy.init()
    client = rclpy.create_node('matte_bench')
    node = None
    try:
        node_params = {k: v for k, v in values.items()
                       if params.BY_NAME[k].default != v or k == 'segmenter'}
        node_params['backend'] = args.backend
        node = bench_graph.NodeUnderTest(client, node_params, env, workdir)
        for run in entry['sizes']:
            size = tuple(run['size'])
            label = benchmark.size_label(size)
            bare_fps = run['bare']['fps']   # the run after the node is not there yet
            # overload first: it measures what the node can do, and the paced run then
            # sends at half of that, so that frames never queue and latency is the node's
            rate = benchmark.OVERLOAD_FACTOR * bare_fps
            _progress('bench: %s %s node, overloaded at %.1f Hz'
                      % (entry['segmenter'], label, rate))
            run['overload'] = node.run(label + '-overload', size, rate,
                                       _seconds(args, bare_fps), _idle(bare_fps))
            rate = benchmark.SATURATED_FACTOR * bare_fps
            _progress('bench: %s %s node, saturated at %.1f Hz'
                      % (entry['segmenter'], label, rate))
            run['saturated'] = node.run(label + '-saturated', size, rate,
                                        _seconds(args, bare_fps), _idle(bare_fps))
            achieved = run['overload']['output_fps']
            rate = min(PACED_MAX_HZ, 0.5 * (achieved if achieved == achieved else bare_fps))
            _progress('bench: %s %s node, paced at %.1f Hz' % (entry['segmenter'], label, rate))
            paced = node.run(label + '-paced', size, rate, _seconds(args, rate), _idle(rate))
            # What the node adds (DDS in, waiting, conversion, publishing), per frame in the
            # node: its stamp-to-published time minus its pipeline stages (the target) ...
            paced['node_added_ms'] = paced['in_node_ms'].get('node_added', float('nan'))
            # ... and to the recorder's receipt (also the hop out), against the echo node.
            pipeline_ms = sum(paced['stage_ms'].get(s, 0.0) for s in benchmark.PIPELINE_STAGES)
            paced['receipt_added_ms'] = (paced['latency_ms']['mean'] - pipeline_ms
                                         if paced['stage_ms'] else float('nan'))
            paced['rate_hz'] = rate
            run['paced'] = paced
        node.stop()
        node = bench_graph.EchoUnderTest(client, env, os.path.join(workdir, 'echo'))
        for run in entry['sizes']:
            size = tuple(run['size'])
            rate = run['paced']['rate_hz']
            _progress('bench: %s transport floor (echo node), paced at %.1f Hz'
                      % (benchmark.size_label(size), rate))
            run['transport_floor'] = node.run('echo-' + benchmark.size_label(size), size,
                                              rate, _seconds(args, rate), _idle(rate))
    finally:
        if node is not None:
            node.stop()
        client.destroy_node()
        rclpy.try_shutdown()


def _command_line(argv) -> str:
    """Return the command as the report shows it (without the options that only place logs)."""
    words = ['matte-ros', 'bench']
    rest = list(argv[2:]) if len(argv) > 1 and argv[1] == 'bench' else []
    skip = False
    for word in rest:
        if skip:
            skip = False
        elif word in ('--workdir', '--json'):
            skip = True
        elif not word.startswith(('--workdir=', '--json=')):
            words.append(shlex.quote(word))
    return ' '.join(words)


def _json_safe(value):
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def run(args) -> int:
    """Run ``matte-ros bench`` with parsed arguments; return the exit status."""
    try:
        names = _segmenters(args)
        sizes = benchmark.parse_sizes(args.sizes or ('640x480' if args.cameras
                                                     else '640x480,1280x720'))
        counts = multi_bench.parse_counts(args.cameras) if args.cameras else []
        if args.camera_rate <= 0 or args.warmup < 0 or not args.seconds > 0:
            raise ValueError('--camera-rate and --seconds must be positive, --warmup >= 0')
        values = params.defaults()
        values.update(params.parse_assignments(args.param))
    except (params.ParamError, ValueError) as exc:
        print('matte-ros bench: %s' % exc, file=sys.stderr)
        return 2
    if args.quick:
        args.seconds = min(args.seconds, 2.0)
    meta = _meta(args, _command_line(sys.argv))
    workdir = args.workdir or tempfile.mkdtemp(prefix='matte_bench_')
    if counts:
        return _run_cameras(args, values, names, sizes, counts, meta, workdir)
    from matte_ros.segmenters import SegmenterError
    try:
        results = measure(args, values, names, sizes, workdir)
    except SegmenterError as exc:
        print('matte-ros bench: cannot build a segmenter: %s' % exc, file=sys.stderr)
        return 1
    except RuntimeError as exc:
        print('matte-ros bench: %s (logs in %s)' % (exc, workdir), file=sys.stderr)
        return 1
    results['meta'] = meta
    results['targets'] = benchmark.targets(results)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    plot_path = args.plot or os.path.splitext(args.out)[0] + '.png'
    benchmark.plot(results, plot_path)
    rel_plot = os.path.relpath(os.path.abspath(plot_path), out_dir)
    text = benchmark.markdown(results, rel_plot)
    with open(args.out, 'w', encoding='utf-8') as f:
        f.write(text)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(_json_safe(results), f, indent=2)
            f.write('\n')
    print(text, end='')
    print('\nwrote %s and %s (process logs in %s)' % (args.out, plot_path, workdir))
    return 0


def _run_cameras(args, values, names, sizes, counts, meta, workdir) -> int:
    """Run ``bench --cameras``: the many-camera layouts; write their section into --out."""
    import rclpy
    from matte_ros.measure import processes
    node_values = {k: v for k, v in values.items()
                   if k != 'segmenter' and params.BY_NAME[k].default != v}
    node_values['backend'] = args.backend
    env = processes.apply_isolation()
    rclpy.init()
    client = rclpy.create_node('matte_bench')

    def spin(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(client, timeout_sec=max(0.0, min(0.05, end - time.monotonic())))

    try:
        results = multi_bench.measure(names, sizes, counts, node_values, env, workdir,
                                      args.camera_rate, args.warmup, args.seconds,
                                      client=client, spin=spin, progress=_progress,
                                      repeats=args.repeats)
    except RuntimeError as exc:
        print('matte-ros bench: %s (logs in %s)' % (exc, workdir), file=sys.stderr)
        return 1
    finally:
        client.destroy_node()
        rclpy.try_shutdown()
    results['meta'] = meta
    results['targets'] = multi_bench.targets(results)
    section = multi_bench.markdown(results, meta)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    multi_bench.write_section(args.out, section)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(_json_safe(results), f, indent=2)
            f.write('\n')
    print(section, end='')
    print('\nwrote the many-camera section of %s (process logs in %s)' % (args.out, workdir))
    return 0

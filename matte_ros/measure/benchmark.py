"""
The ROS-free half of ``matte-ros bench``: timing loops, process sampling, targets, report.

The bare loop runs :class:`~matte_ros.pipeline.Pipeline` on the same frames the
player sends to the node (the demo sequence rendered at each size), so that node and
bare numbers compare like for like.  For ``rvm`` a straight ONNX Runtime loop over the
same model file runs interleaved, frame by frame, with the project's segmenter, so that
drifts in machine speed hit both alike.  :class:`ProcessMonitor` reads the node's CPU
time and resident memory from ``/proc``.  :func:`targets` turns one run's measurements
into the target ratios with pass/fail; :func:`markdown` and :func:`plot` write them.
"""

import math
import os
import time
from typing import Any
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

import cv2
from matte_ros.measure import demo_sequence
from matte_ros.measure import process_probe
import numpy as np

DEFAULT_SIZES = ((640, 480), (1280, 720))
#: Order of the stages in the tables (the node's ``stage_ms[...]`` diagnostics keys).
STAGES = ('convert_in', 'segment', 'postprocess', 'composite', 'convert_out', 'publish')
#: Stages that the bare Pipeline also runs; the rest is what the node adds.
PIPELINE_STAGES = ('segment', 'postprocess', 'composite')
#: MediaPipe's own Python selfie solution (``mp.solutions.selfie_segmentation``), fps
#: measured on this kind of machine in a separate venv (mediapipe needs NumPy < 2), so
#: NOT measured in the same run: orientation only.
MEDIAPIPE_FPS = {('general', (640, 480)): 210.0, ('landscape', (640, 480)): 306.0,
                 ('general', (1280, 720)): 132.0, ('landscape', (1280, 720)): 201.0}
#: Thresholds of the performance targets (docs/benchmarks.md lists them with pass/fail).
NODE_VS_BARE_MIN = 0.9
NODE_ADDED_MS_MAX = 3.0
RVM_VS_ORT_MIN = 1.5
RVM_J_DROP_MAX = 0.01
OVERLOAD_FACTOR = 3.0
#: Input rate (× the bare loop's fps) of the *saturated* run: always a frame waiting,
#: without the player flooding the CPU the node needs (the node fps / bare fps target).
SATURATED_FACTOR = 1.25
OVERLOAD_LATENCY_FACTOR = 2.0
#: RSS growth (MiB) over an overload run still called flat.
RSS_FLAT_MB = 8.0


def parse_sizes(text: str) -> List[Tuple[int, int]]:
    """Return [(width, height), ...] from ``640x480,1280x720``; ValueError if malformed."""
    sizes = []
    for item in text.split(','):
        item = item.strip().lower()
        if not item:
            continue
        try:
            width, height = (int(v) for v in item.split('x'))
        except ValueError:
            raise ValueError('bad size %r (expected WIDTHxHEIGHT, e.g. 640x480)' % item)
        if width < 16 or height < 16:
            raise ValueError('size %r is too small' % item)
        sizes.append((width, height))
    if not sizes:
        raise ValueError('no sizes given')
    return sizes


def size_label(size: Tuple[int, int]) -> str:
    """Return ``640x480``."""
    return '%dx%d' % tuple(size)


def bench_frames(size: Tuple[int, int], count: int = 60) -> List[np.ndarray]:
    """Return the frames both the bare loop and the player use (the demo sequence)."""
    return [frame for _, frame, _ in demo_sequence.frames(count, tuple(size))]


def latency_summary(values_ms: List[float]) -> Dict[str, float]:
    """Return count, mean, p50, p95, p99 and max of latencies in ms (NaN when empty)."""
    if not values_ms:
        nan = float('nan')
        return {'count': 0, 'mean': nan, 'p50': nan, 'p95': nan, 'p99': nan, 'max': nan}
    arr = np.asarray(values_ms, np.float64)
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {'count': int(arr.size), 'mean': float(arr.mean()), 'p50': float(p50),
            'p95': float(p95), 'p99': float(p99), 'max': float(arr.max())}


def bare_loop(values: Dict[str, Any], frames: List[np.ndarray], seconds: float,
              backend: Optional[str] = None, warmup: int = 3,
              min_frames: int = 10) -> Dict[str, Any]:
    """
    Run ``Pipeline.process`` over ``frames`` (cycling) for ``seconds``; return its speed.

    At least ``min_frames`` frames are timed, however long they take.

    The first ``warmup`` frames are not timed (model load, first-inference costs).
    ``stage_ms`` holds the mean of the pipeline's own stage timings.
    """
    from matte_ros.pipeline import Pipeline
    pipeline = Pipeline(values, backend=backend)
    try:
        for frame in frames[:warmup]:
            pipeline.process(frame)
        while pipeline.status().busy:  # a TensorRT engine being built: time the engine
            time.sleep(0.5)
            pipeline.process(frames[0])
        stage_total = {}
        count = 0
        busy = 0.0
        end = time.perf_counter() + seconds
        index = warmup
        while count < min_frames or time.perf_counter() < end:
            frame = frames[index % len(frames)]
            index += 1
            start = time.perf_counter()
            result = pipeline.process(frame)
            busy += time.perf_counter() - start
            count += 1
            for stage, value in result.timings.items():
                stage_total[stage] = stage_total.get(stage, 0.0) + value
        return {'frames': count, 'fps': count / busy, 'ms': 1000.0 * busy / count,
                'backend': pipeline.backend,
                'stage_ms': {k: 1000.0 * v / count for k, v in stage_total.items()}}
    finally:
        pipeline.close()


def rvm_vs_straight_ort(values: Dict[str, Any], frames: List[np.ndarray], seconds: float,
                        warmup: int = 2, min_frames: int = 10) -> Dict[str, Any]:
    """
    Time the project's rvm segmenter and a straight ORT loop, taking turns per frame.

    Both run the same model file at the same downsample ratio on the CPU, each with
    its own recurrent state.  Returns both fps, their ratio, and the largest alpha
    difference between them (a quality check: the same model should agree; the segmenter
    runs without settling after a reset, ``rvm.settle_frames`` 0, as the loop has none).
    """
    from matte_ros.segmenters import create
    from matte_ros.segmenters import rvm
    from matte_ros.segmenters import rvm_model
    segmenter = create('rvm', dict(values, **{'rvm.settle_frames': 0}), 'cpu')
    try:
        height, width = frames[0].shape[:2]
        ratio = rvm.downsample_ratio(height, width, float(values.get('rvm.downsample_ratio', 0)))
        straight = rvm_model.reference_loop(segmenter.model_path, ratio)
        runners = [straight, lambda f: segmenter.process(f).alpha]
        for frame in frames[:warmup]:
            for runner in runners:
                runner(frame)
        busy = [0.0, 0.0]
        worst = 0.0
        count = 0
        end = time.perf_counter() + seconds
        while count < min_frames or time.perf_counter() < end:
            frame = frames[(warmup + count) % len(frames)]
            alphas = [None, None]
            for turn in range(2):
                k = (count + turn) % 2   # alternate who goes first
                start = time.perf_counter()
                alphas[k] = runners[k](frame)
                busy[k] += time.perf_counter() - start
            worst = max(worst, float(np.abs(alphas[0] - alphas[1]).max()))
            count += 1
        ort_fps, project_fps = count / busy[0], count / busy[1]
        return {'frames': count, 'ratio': ratio, 'straight_ort_fps': ort_fps,
                'project_fps': project_fps, 'speedup': project_fps / ort_fps,
                'max_alpha_diff': worst}
    finally:
        segmenter.close()


def rvm_davis_vs_ort(values: Dict[str, Any], davis_root: str) -> Dict[str, Any]:
    """
    Return DAVIS J per sequence of the project's rvm and of a straight ORT loop.

    Both run every frame of every sequence at RVM's automatic ratio for the DAVIS
    frame size (or ``rvm.downsample_ratio``), each with its own recurrent state, and are
    scored alike (:class:`~matte_ros.measure.scoring.DavisScore`, ``alpha > 0.5``).  This is
    the quality side of the rvm speed target: J must stay within 0.01 per sequence.
    """
    from matte_ros.measure import datasets
    from matte_ros.measure import scoring
    from matte_ros.segmenters import create
    from matte_ros.segmenters import rvm
    from matte_ros.segmenters import rvm_model
    segmenter = create('rvm', values, 'cpu')
    setting = float(values.get('rvm.downsample_ratio', 0.0))
    out: Dict[str, Any] = {'sequences': {}}
    try:
        for seq in datasets.davis_sequences(davis_root):
            straight = None   # made at the first frame: the ratio follows its size
            scores = [scoring.DavisScore(), scoring.DavisScore()]
            segmenter.reset('new sequence')
            for _, frame, truth in datasets.iter_davis(davis_root, seq):
                if straight is None:
                    out['ratio'] = rvm.downsample_ratio(*frame.shape[:2], setting)
                    straight = rvm_model.reference_loop(segmenter.model_path, out['ratio'])
                scores[0].add(straight(frame) > 0.5, truth)
                scores[1].add(segmenter.process(frame).alpha > 0.5, truth)
            j_ort, j_project = (score.result()['J'] for score in scores)
            out['sequences'][seq] = {'straight_ort_J': j_ort, 'project_J': j_project,
                                     'delta': j_project - j_ort}
    finally:
        segmenter.close()
    deltas = [v['delta'] for v in out['sequences'].values()]
    out['worst_delta'] = min(deltas) if deltas else float('nan')
    return out


def _reference_json(python: str, args: List[str], timeout: float) -> Dict[str, Any]:
    """Run mediapipe_reference.py with another environment's ``python``; return its JSON."""
    import json
    import subprocess
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'mediapipe_reference.py')
    done = subprocess.run([python, script] + args, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ['exit status %d' % done.returncode])[-1]
        raise RuntimeError('MediaPipe reference failed (%s): %s' % (python, last))
    return json.loads(done.stdout.strip().splitlines()[-1])


def segmenter_fps(values: Dict[str, Any], frames: List[np.ndarray], seconds: float,
                  warmup: int = 5) -> float:
    """Return the fps of ``Segmenter.process`` alone (frame in, alpha at frame size out)."""
    from matte_ros.segmenters import create
    segmenter = create(values['segmenter'], values, 'cpu')
    try:
        for frame in frames[:warmup]:
            segmenter.process(frame)
        count, busy = 0, 0.0
        while count < 10 or busy < seconds:
            start = time.perf_counter()
            segmenter.process(frames[count % len(frames)])
            busy += time.perf_counter() - start
            count += 1
        return count / busy
    finally:
        segmenter.close()


def davis_j(values: Dict[str, Any], davis_root: str, mask_dir: str = '') -> Dict[str, float]:
    """
    Return DAVIS J per sequence and their ``mean``.

    J of the segmenter in ``values``, or of the masks stored in
    ``mask_dir/<sequence>/<stem>.png`` when it is given.
    """
    from matte_ros.measure import datasets
    from matte_ros.measure import scoring
    from matte_ros.cli import eval_cmd
    if not mask_dir:
        result = eval_cmd.evaluate('davis', davis_root, dict(values, **{'composite.mode': 'none'}),
                                   'cpu')
        scores = {r['sequence']: r['J'] for r in result['sequences']}
    else:
        scores = {}
        for seq in datasets.davis_sequences(davis_root):
            score = scoring.DavisScore()
            for stem, _, gt in datasets.iter_davis(davis_root, seq):
                mask = cv2.imread(os.path.join(mask_dir, seq, stem + '.png'), cv2.IMREAD_GRAYSCALE)
                if mask is None:
                    raise FileNotFoundError('no MediaPipe mask for %s/%s' % (seq, stem))
                score.add(mask > 127, gt)
            scores[seq] = score.result()['J']
    scores['mean'] = float(np.mean(list(scores.values())))
    return scores


def selfie_vs_mediapipe(values: Dict[str, Any], frames: List[np.ndarray], seconds: float,
                        python: str, davis_root: str = '', workdir: str = '') -> Dict[str, Any]:
    """
    Compare ``selfie`` with MediaPipe's own Python solution in this run, on these frames.

    MediaPipe runs in its own environment (``python``; see
    :mod:`matte_ros.measure.mediapipe_reference`).  Speed: ``Segmenter.process`` (frame in,
    alpha at frame size out, what the solution returns) timed before and after the
    solution, averaged, against the solution's ``process``.  Quality, when
    ``davis_root`` is given: DAVIS J of both at probability 0.5.
    """
    import tempfile
    variant = values.get('selfie.model', 'general')
    work = workdir or tempfile.mkdtemp(prefix='matte_mediapipe_')
    os.makedirs(work, exist_ok=True)
    stack = os.path.join(work, 'frames_%dx%d.npy' % (frames[0].shape[1], frames[0].shape[0]))
    np.save(stack, np.stack(frames))
    before = segmenter_fps(values, frames, seconds)
    theirs = _reference_json(python, ['--model', variant, '--frames', stack,
                                      '--seconds', str(seconds)], timeout=120 + 4 * seconds)
    after = segmenter_fps(values, frames, seconds)
    ours = (before + after) / 2.0
    result = {'variant': variant, 'mediapipe_fps': theirs['fps'], 'project_fps': ours,
              'project_fps_before_after': [before, after], 'speedup': ours / theirs['fps']}
    if davis_root:
        masks = os.path.join(work, 'davis_' + variant)
        _reference_json(python, ['--model', variant, '--davis', davis_root, '--out', masks],
                        timeout=900)
        result['mediapipe_J'] = davis_j(values, davis_root, masks)
        result['project_J'] = davis_j(values, davis_root)
    return result


class ProcessMonitor:
    """Samples a process's CPU time and resident memory from ``/proc/<pid>``."""

    def __init__(self, pid: int):
        self.pid = pid
        self.tick = float(os.sysconf('SC_CLK_TCK'))
        self.samples: List[Tuple[float, float, float]] = []   # (time s, cpu s, rss MiB)

    def cpu_seconds(self) -> float:
        """Return user + system CPU seconds the process used so far."""
        with open('/proc/%d/stat' % self.pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
        # after "pid (comm)": state is field 3, utime 14 and stime 15 (1-based, man proc)
        return (int(fields[11]) + int(fields[12])) / self.tick

    def sample(self) -> None:
        """Record one sample now (ignored once the process is gone)."""
        try:
            self.samples.append((time.monotonic(), self.cpu_seconds(),
                                 process_probe.rss_kb(self.pid) / 1024.0))
        except (OSError, ValueError, IndexError):
            pass

    def summary(self) -> Dict[str, float]:
        """
        Return CPU % (100 = one core), peak RSS and RSS growth.

        Growth compares the mean RSS of the last third of the samples with the middle
        third (the first third is warm-up: buffers sized for the new stream).
        """
        if len(self.samples) < 3:
            nan = float('nan')
            return {'cpu_percent': nan, 'rss_peak_mb': nan, 'rss_growth_mb': nan}
        t0, c0, _ = self.samples[0]
        t1, c1, _ = self.samples[-1]
        rss = [s[2] for s in self.samples]
        third = max(1, len(rss) // 3)
        return {'cpu_percent': 100.0 * (c1 - c0) / max(t1 - t0, 1e-9),
                'rss_peak_mb': max(rss),
                'rss_growth_mb': float(np.mean(rss[-third:]) - np.mean(rss[third:-third]
                                                                       or rss[:third]))}


def _windows(diagnostics: List[Dict[str, str]]):
    """
    Yield ``(frames, values)`` for each diagnostics message after the first.

    Each message holds values over its own window and the running ``processed`` count;
    ``frames`` is how many frames its window processed (windows without any are skipped).
    """
    previous = None
    for values in diagnostics:
        try:
            processed = int(float(values.get('processed', 0)))
        except ValueError:
            continue
        if previous is not None and processed > previous:
            yield processed - previous, values
        previous = processed


def _weighted(diagnostics: List[Dict[str, str]], name_of) -> Dict[str, float]:
    """Average window values, weighted by frames; ``name_of(key)`` names a key or skips it."""
    totals: Dict[str, float] = {}
    weights: Dict[str, int] = {}
    for frames, values in _windows(diagnostics):
        for key, text in values.items():
            name = name_of(key)
            if name is not None:
                totals[name] = totals.get(name, 0.0) + float(text) * frames
                weights[name] = weights.get(name, 0) + frames
    return {k: v / weights[k] for k, v in totals.items()}


def _stage_name(key: str) -> Optional[str]:
    if key.startswith('stage_ms['):
        return key[len('stage_ms['):-1]
    return 'processing' if key == 'mean_processing_ms' else None


def weighted_stage_means(diagnostics: List[Dict[str, str]]) -> Dict[str, float]:
    """
    Return mean ms per frame of each stage and ``processing`` over diagnostics messages.

    Each message holds means over its own window (``stage_ms[...]``,
    ``mean_processing_ms``); they are weighted by the frames of each window.  The first
    message only sets the baseline.
    """
    return _weighted(diagnostics, _stage_name)


def weighted_window_medians(diagnostics: List[Dict[str, str]]) -> Dict[str, float]:
    """
    Return the node's per-frame latency medians over diagnostics messages (ms).

    ``latency``: stamp to outputs published; ``node_added``: that minus the segmenter
    pipeline.  Each message holds the medians of its window; they are averaged weighted
    by frames (for a steady stream, close to the median of all frames).
    """
    return _weighted(diagnostics, {'latency_ms[p50]': 'latency',
                                   'node_added_ms[p50]': 'node_added'}.get)


def bare_fps(run: Dict[str, Any]) -> float:
    """
    Return the bare loop's fps for one case: the mean of the runs before and after the node.

    The machine's speed drifts over minutes; measuring the bare loop on both sides of
    the node runs and averaging keeps the node / bare ratio from riding on that drift.
    """
    values = [run[k]['fps'] for k in ('bare', 'bare_after') if run.get(k)]
    return float(np.mean(values))


def _nan(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _verdict(value, ok) -> Optional[bool]:
    return None if _nan(value) else bool(ok(value))


def targets(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Return the performance targets as rows: name, value, threshold, pass (None = n/a)."""
    rows = []
    for entry in results['segmenters']:
        name = entry['segmenter']
        for run in entry['sizes']:
            size = tuple(run['size'])
            label = '%s %s' % (name, size_label(size))
            bare = bare_fps(run)
            over = run.get('overload') or {}
            paced = run.get('paced') or {}
            saturated = run.get('saturated') or {}
            if saturated:
                ratio = saturated['output_fps'] / bare if bare else float('nan')
                target = 'node fps / bare fps (input %sx bare)' % SATURATED_FACTOR
                if (name, size) == ('rvm', (640, 480)):
                    target += ', rvm at 640x480'
                rows.append({'target': target, 'case': label, 'measured': ratio,
                             'unit': 'x', 'threshold': '>= %.1f' % NODE_VS_BARE_MIN,
                             'passed': _verdict(ratio, lambda v: v >= NODE_VS_BARE_MIN),
                             'primary': (name, size) == ('rvm', (640, 480))})
            if over:
                ratio = over['output_fps'] / bare if bare else float('nan')
                target = ('node fps / bare fps (input %.0fx), rvm at 640x480' % OVERLOAD_FACTOR
                          if (name, size) == ('rvm', (640, 480)) else
                          'node fps / bare fps (input %.0fx)' % OVERLOAD_FACTOR)
                rows.append({'target': target, 'case': label, 'measured': ratio,
                             'unit': 'x', 'threshold': '>= %.1f' % NODE_VS_BARE_MIN,
                             'passed': _verdict(ratio, lambda v: v >= NODE_VS_BARE_MIN),
                             'primary': (name, size) == ('rvm', (640, 480))})
                capacity = over.get('capacity_fps', float('nan'))
                share = over['output_fps'] / capacity if capacity else float('nan')
                rows.append({'target': 'overload: output fps / node capacity',
                             'case': '%s (input %s x capacity)' % (
                                 label, _f(over['input_fps'] / capacity if capacity
                                           else None)),
                             'measured': share, 'unit': 'x', 'threshold': '>= 0.9',
                             'passed': _verdict(share, lambda v: v >= 0.9)})
                processing = over['stage_ms'].get('processing', float('nan'))
                factor = (over['latency_ms']['p99'] / processing if processing
                          else float('nan'))
                rows.append({'target': 'overload: latency p99 / processing time',
                             'case': label, 'measured': factor, 'unit': 'x',
                             'threshold': '<= %.0f' % OVERLOAD_LATENCY_FACTOR,
                             'passed': _verdict(factor,
                                                lambda v: v <= OVERLOAD_LATENCY_FACTOR)})
                growth = over['process'].get('rss_growth_mb', float('nan'))
                rows.append({'target': 'overload: RSS growth (MiB)', 'case': label,
                             'measured': growth, 'unit': 'MiB',
                             'threshold': '<= %.0f' % RSS_FLAT_MB,
                             'passed': _verdict(growth, lambda v: v <= RSS_FLAT_MB)})
            if paced and size == (640, 480):
                added = paced.get('node_added_ms', float('nan'))
                echo = run.get('transport_floor') or {}
                floor = echo.get('latency_ms', {}).get('mean')
                echo_in = echo.get('in_node_ms', {}).get('latency')
                case = label
                if echo_in is not None:
                    case += ' (echo node at the same rate, stamp to published: %s ms)' % (
                        _f(echo_in, 2))
                case += ' (to the recorder: %s ms mean' % _f(paced.get('receipt_added_ms'), 2)
                case += ')' if floor is None else '; echo node: %s ms)' % _f(floor, 2)
                rows.append({'target': 'latency added by the node (median per frame: DDS in, '
                                       'conversion, outputs published)',
                             'case': case,
                             'measured': added, 'unit': 'ms',
                             'threshold': '<= %.0f' % NODE_ADDED_MS_MAX,
                             'passed': _verdict(added, lambda v: v <= NODE_ADDED_MS_MAX),
                             'primary': True})
            quality = run.get('rvm_davis_vs_ort')
            if quality:
                rows.append({'target': 'rvm DAVIS J - straight ORT loop J (worst sequence)',
                             'case': '%s config, DAVIS 854x480 ratio %.3f' % (
                                 label, quality.get('ratio', float('nan'))),
                             'measured': quality['worst_delta'], 'unit': '', 'digits': 4,
                             'threshold': '>= -%.2f' % RVM_J_DROP_MAX,
                             'passed': _verdict(quality['worst_delta'],
                                                lambda v: v >= -RVM_J_DROP_MAX),
                             'primary': True})
            versus = run.get('rvm_vs_ort')
            if versus:
                rows.append({'target': 'rvm fps / straight ORT loop fps (same model, CPU)',
                             'case': label, 'measured': versus['speedup'], 'unit': 'x',
                             'threshold': '>= %.1f' % RVM_VS_ORT_MIN,
                             'passed': _verdict(versus['speedup'],
                                                lambda v: v >= RVM_VS_ORT_MIN),
                             'primary': size == (640, 480)})
            measured = run.get('selfie_vs_mediapipe')
            if name == 'selfie' and measured:
                label_v = '%s (%s)' % (label, measured['variant'])
                rows.append({'target': 'selfie fps / MediaPipe solution fps (this run)',
                             'case': label_v, 'measured': measured['speedup'], 'unit': 'x',
                             'threshold': '>= 1.0',
                             'passed': _verdict(measured['speedup'], lambda v: v >= 1.0),
                             'primary': size == (640, 480)})
                if 'project_J' in measured:
                    gain = measured['project_J']['mean'] - measured['mediapipe_J']['mean']
                    rows.append({'target': 'selfie DAVIS J - MediaPipe solution DAVIS J',
                                 'case': label_v, 'measured': gain, 'unit': '',
                                 'threshold': '>= 0', 'passed': _verdict(gain, lambda v: v >= 0),
                                 'primary': size == (640, 480)})
            elif name == 'selfie':
                variant = entry.get('selfie_model', 'general')
                reference = MEDIAPIPE_FPS.get((variant, size))
                if reference:
                    rows.append({'target': 'selfie bare fps / MediaPipe solution fps '
                                           '(reference %.0f fps, not this run)' % reference,
                                 'case': '%s (%s)' % (label, variant),
                                 'measured': bare / reference, 'unit': 'x',
                                 'threshold': '>= 1.0',
                                 'passed': _verdict(bare / reference, lambda v: v >= 1.0),
                                 'primary': size == (640, 480)})
    return rows


def _f(value, digits: int = 1) -> str:
    if _nan(value):
        return 'n/a'
    return '%.*f' % (digits, value)


def _verdict_text(passed: Optional[bool]) -> str:
    return 'n/a' if passed is None else ('pass' if passed else '**FAIL**')


def markdown(results: Dict[str, Any], plot_name: str = '') -> str:
    """Return ``docs/benchmarks.md``: how it was made, the tables, the targets."""
    meta = results['meta']
    lines = [
        '# Benchmarks',
        '',
        'Made by `%s` on %s (%s, %d CPUs, load average %s at the start; backend %s, '
        'onnxruntime %s).' % (meta['command'], meta['date'], meta['machine'], meta['cpus'],
                              meta['loadavg'], meta['backend'], meta['onnxruntime']),
        'Each segmenter and size: a bare `Pipeline.process` loop in one process, then the '
        'node in its own process fed by a player process over DDS (Fast DDS, shared '
        'memory) while a recorder process measures latency from the header stamp (set '
        'at publish by the player) to receipt of `~/composite`.  '
        '*overload* runs first, at %.0fx the bare loop rate; *saturated* at %sx (a frame '
        'always waits, but the player does not flood the CPU: the node fps / bare fps '
        'target); *paced* runs then send at half '
        'the rate the node output under overload (at most 30 Hz), so that frames do not '
        'queue.  Speeds drift on a shared machine: compare rows of one run, and rerun the '
        'command on a quiet machine before quoting absolute numbers.'
        % (OVERLOAD_FACTOR, SATURATED_FACTOR),
        '',
    ]
    if meta.get('note'):
        lines += ['> %s' % meta['note'], '']
    lines += ['## Speed and cost', '',
              '| segmenter | size | backend used | bare fps (before / after node) | '
              'node fps (saturated / overload) | node / bare (saturated / overload) | '
              'latency p50 / p95 / p99 ms (paced) | node-added ms (in node p50 / to '
              'receipt mean) | node CPU % | '
              'node peak RSS MiB |',
              '|---|---|---|---|---|---|---|---|---|---|']
    for entry in results['segmenters']:
        for run in entry['sizes']:
            bare = bare_fps(run)
            over = run.get('overload') or {}
            paced = run.get('paced') or {}
            lat = paced.get('latency_ms', {})
            sat = run.get('saturated') or {}
            row = ('| %s | %s | %s | %s (%s / %s) | %s / %s | %s / %s | %s / %s / %s | %s / %s '
                   '| %s | %s |')
            lines.append(row % (
                entry['segmenter'], size_label(run['size']), run['bare'].get('backend', '?'),
                _f(bare), _f(run['bare']['fps']),
                _f((run.get('bare_after') or {}).get('fps')),
                _f(sat.get('output_fps')), _f(over.get('output_fps')),
                _f(sat['output_fps'] / bare if sat and bare else None, 2),
                _f(over['output_fps'] / bare if over and bare else None, 2),
                _f(lat.get('p50')), _f(lat.get('p95')), _f(lat.get('p99')),
                _f(paced.get('node_added_ms'), 2), _f(paced.get('receipt_added_ms'), 2),
                _f(over.get('process', {}).get('cpu_percent'), 0),
                _f(max(paced.get('process', {}).get('rss_peak_mb', float('nan')),
                       over.get('process', {}).get('rss_peak_mb', float('nan'))), 0)))
    floors = [(entry, run) for entry in results['segmenters'] for run in entry['sizes']
              if run.get('transport_floor')]
    if floors:
        lines += ['', '## Transport floor', '',
                  'The same player and recorder with an echo node in place of matte_node '
                  '(`matte_ros/measure/echo.py`: each frame republished as mono8 mask and alpha '
                  'and bgr8 composite, no work), at the paced rate of each row: what rclpy '
                  'and DDS alone cost.  In the node: the median time from the player stamp '
                  'to the three outputs published, on the echo node clock as the node does, '
                  'beside the in-node figure of the node (the same minus its pipeline '
                  'stages).  To receipt: from the stamp to the receipt of the composite by '
                  'the recorder, beside the latency of the node to the same receipt minus '
                  'its segment, postprocess and composite stages.', '',
                  '| segmenter | size | rate Hz | echo in node p50 ms | node-added in node '
                  'p50 ms | echo to receipt p50 / mean ms | node-added to receipt (mean) ms |',
                  '|---|---|---|---|---|---|---|']
        for entry, run in floors:
            floor = run['transport_floor']
            lines.append('| %s | %s | %s | %s | %s | %s / %s | %s |' % (
                entry['segmenter'], size_label(run['size']),
                _f(run['paced'].get('rate_hz')),
                _f(floor.get('in_node_ms', {}).get('latency'), 2),
                _f(run['paced'].get('node_added_ms'), 2),
                _f(floor['latency_ms'].get('p50'), 2), _f(floor['latency_ms'].get('mean'), 2),
                _f(run['paced'].get('receipt_added_ms'), 2)))
    lines += ['', '## Time per stage in the node (ms per frame, paced run)', '',
              '| segmenter | size | %s | total | bare loop total |' % ' | '.join(STAGES),
              '|---|---|%s---|---|' % ('---|' * len(STAGES))]
    for entry in results['segmenters']:
        for run in entry['sizes']:
            stages = (run.get('paced') or {}).get('stage_ms', {})
            lines.append('| %s | %s | %s | %s | %s |' % (
                entry['segmenter'], size_label(run['size']),
                ' | '.join(_f(stages.get(s), 2) for s in STAGES),
                _f(stages.get('processing'), 2), _f(run['bare']['ms'], 2)))
    lines += ['', '`segment` covers the segmenter as a whole (its preprocessing, inference and '
              'postprocessing are not timed apart); `postprocess` is mask threshold and alpha '
              'to mono8; `convert_out` builds the three output messages, `publish` hands them '
              'to DDS.  Node-added latency *in node*: for each frame, the node clock '
              'when its outputs are published minus the frame stamp, minus its '
              '`segment + postprocess + composite` time (DDS in, waiting for the worker, '
              'conversion, publishing); the median of each 1 s diagnostics window, '
              'averaged over the windows weighted by frames.  *To receipt*: mean paced '
              'latency at the recorder minus the mean of those stages, so also the hop '
              'out and the recorder taking the message.', '',
              '## Overload (input at %.0fx the bare loop rate)' % OVERLOAD_FACTOR, '',
              '| segmenter | size | input fps | output fps | node capacity fps | '
              'latency p50 / p99 ms | processing ms | RSS growth MiB |',
              '|---|---|---|---|---|---|---|---|']
    for entry in results['segmenters']:
        for run in entry['sizes']:
            over = run.get('overload')
            if not over:
                continue
            lines.append('| %s | %s | %s | %s | %s | %s / %s | %s | %s |' % (
                entry['segmenter'], size_label(run['size']), _f(over['input_fps']),
                _f(over['output_fps']), _f(over.get('capacity_fps')),
                _f(over['latency_ms']['p50']), _f(over['latency_ms']['p99']),
                _f(over['stage_ms'].get('processing'), 1),
                _f(over['process'].get('rss_growth_mb'), 1)))
    lines += ['', 'Node capacity = 1000 / the mean processing ms per frame in the node '
              '(convert in to publish).  The node keeps only the latest frame, so under '
              'overload a frame waits at most one processing time.', '',
              '## Targets', '',
              '| target | case | measured | threshold | result |', '|---|---|---|---|---|']
    for row in results['targets']:
        lines.append('| %s | %s | %s %s | %s | %s |' % (
            row['target'], row['case'], _f(row['measured'], row.get('digits', 2)), row['unit'],
            row['threshold'], _verdict_text(row['passed'])))
    if any(r.get('rvm_vs_ort') for e in results['segmenters'] for r in e['sizes']):
        lines += ['', 'rvm vs straight ORT: the matte_ros segmenter and a plain '
                  '`InferenceSession` over the same fp32 model, same downsample ratio, '
                  'taking turns per frame:', '',
                  '| size | ratio | straight ORT fps | matte_ros rvm fps | speed-up | '
                  'max abs alpha diff |', '|---|---|---|---|---|---|']
        for entry in results['segmenters']:
            for run in entry['sizes']:
                v = run.get('rvm_vs_ort')
                if v:
                    lines.append('| %s | %.3f | %s | %s | %s | %.1e |' % (
                        size_label(run['size']), v['ratio'], _f(v['straight_ort_fps']),
                        _f(v['project_fps']), _f(v['speedup'], 2), v['max_alpha_diff']))
    quality = [(entry, run) for entry in results['segmenters'] for run in entry['sizes']
               if run.get('rvm_davis_vs_ort')]
    for entry, run in quality:
        v = run['rvm_davis_vs_ort']
        lines += ['', 'rvm DAVIS J (DAVIS scoring: every frame but the first and last, '
                  'alpha > 0.5, ratio %.3f) of '
                  'the straight ORT loop and of matte_ros rvm as configured for this run:'
                  % v.get('ratio', float('nan')), '',
                  '| sequence | straight ORT J | matte_ros rvm J | ΔJ |', '|---|---|---|---|']
        for seq, j in v['sequences'].items():
            lines.append('| %s | %.4f | %.4f | %+.4f |' % (
                seq, j['straight_ort_J'], j['project_J'], j['delta']))
    versus = [(entry, run) for entry in results['segmenters'] for run in entry['sizes']
              if run.get('selfie_vs_mediapipe')]
    if versus:
        lines += ['', "selfie vs MediaPipe's own Python solution (`mediapipe==0.10.14` in its "
                  'own environment, `SelfieSegmentation.process`), same frames, same run; '
                  'matte_ros timed as `Segmenter.process` (frame in, alpha at frame size out, '
                  'what the solution returns) before and after it.  DAVIS J: all frames of '
                  'the three sequences, probability >= 0.5:', '',
                  '| size | model | MediaPipe fps | matte_ros fps | speed-up | MediaPipe J '
                  '| matte_ros J |', '|---|---|---|---|---|---|---|']
        for entry, run in versus:
            v = run['selfie_vs_mediapipe']
            lines.append('| %s | %s | %s | %s | %s | %s | %s |' % (
                size_label(run['size']), v['variant'], _f(v['mediapipe_fps']),
                _f(v['project_fps']), _f(v['speedup'], 2),
                _f(v.get('mediapipe_J', {}).get('mean'), 3),
                _f(v.get('project_J', {}).get('mean'), 3)))
    if plot_name:
        lines += ['', '![fps and latency](%s)' % plot_name]
    return '\n'.join(lines) + '\n'


def plot(results: Dict[str, Any], path: str) -> str:
    """Draw bare vs node fps and paced latency percentiles per case as a PNG (OpenCV)."""
    cases = [(e['segmenter'], r) for e in results['segmenters'] for r in e['sizes']]
    width, height, margin = max(640, 150 * len(cases) + 120), 620, 60
    canvas = np.full((height, width, 3), 255, np.uint8)
    panels = [('fps: bare (blue) / node under overload (orange)',
               lambda r: [bare_fps(r), (r.get('overload') or {}).get('output_fps')],
               [(200, 120, 40), (40, 140, 240)]),
              ('latency ms, paced: p50 / p95 / p99',
               lambda r: [(r.get('paced') or {}).get('latency_ms', {}).get(k)
                          for k in ('p50', 'p95', 'p99')],
               [(90, 170, 60), (60, 120, 200), (60, 60, 200)])]
    panel_h = (height - 2 * margin) // 2
    for p, (title, values_of, colours) in enumerate(panels):
        top = margin // 2 + p * (panel_h + margin)
        base = top + panel_h - 20
        values = [[v if not _nan(v) else 0.0 for v in values_of(r)] for _, r in cases]
        vmax = max([max(v) for v in values] + [1e-9])
        cv2.putText(canvas, title, (margin, top), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                    (0, 0, 0), 1, cv2.LINE_AA)
        cv2.line(canvas, (margin, base), (width - 20, base), (0, 0, 0), 1)
        slot = (width - margin - 20) // max(1, len(cases))
        for i, ((name, run), bars) in enumerate(zip(cases, values)):
            bar_w = max(6, (slot - 20) // len(bars))
            for j, value in enumerate(bars):
                x0 = margin + i * slot + 10 + j * bar_w
                h = int((panel_h - 50) * value / vmax)
                cv2.rectangle(canvas, (x0, base - h), (x0 + bar_w - 3, base), colours[j], -1)
                cv2.putText(canvas, _f(value, 0), (x0, base - h - 4),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
            cv2.putText(canvas, '%s %s' % (name, size_label(run['size'])),
                        (margin + i * slot + 10, base + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        (0, 0, 0), 1, cv2.LINE_AA)
    if not cv2.imwrite(path, canvas):
        raise OSError('cannot write %s' % path)
    return path

"""
Many cameras: one process for all of them against one process per camera, same machine.

``matte-ros bench --cameras 1,2,4`` measures, for each segmenter, size and camera count,
two layouts one after the other on an isolated DDS graph:

- **one process**: ``matte_multi_node`` (:mod:`matte_ros.ros.multi`) with every camera's
  node, the model loaded once (:mod:`matte_ros.shared_models`);
- **per camera**: one ``matte_node`` process per camera, each configured and activated
  through its lifecycle services.

One :mod:`~matte_ros.measure.camera_rig` process feeds both: each camera at the same
rate (15 Hz by default, phases spread), all three outputs subscribed.  While the rig
measures, the node processes are sampled from ``/proc`` every 0.25 s: resident memory
(``VmRSS``; the sum over processes counts shared library pages once per process, as
``ps`` and a robot's memory budget see it) and proportional memory (``Pss`` of
``smaps_rollup``: shared pages split between the processes that map them), and CPU
time.  A row gives total output fps (composites of frames stamped in the window, per
second), each camera's output fps and stamp-to-receipt latency p50/p99, and the
totals.  The targets of the many-camera design are ratios of one run's rows.
"""

import json
import os
import sys
import time
from typing import Any
from typing import Dict
from typing import List
from typing import Tuple

from matte_ros.measure import benchmark
from matte_ros.measure import process_probe
from matte_ros.measure import processes
import numpy as np

ONE_PROCESS = 'one process'
PER_CAMERA = 'per camera'
LAYOUTS = (ONE_PROCESS, PER_CAMERA)
DEFAULT_SEGMENTERS = 'rvm,selfie'
DEFAULT_CAMERAS = '1,2,4'
#: The segmenter the targets are set for: at 15 Hz per camera it cannot keep up with
#: four cameras on 2 cores, so the layouts differ in throughput, not only in memory.
TARGET_SEGMENTER = 'rvm'
#: Targets at the largest camera count: RSS ratio at most, fps ratio at least, and the
#: slowest camera's output rate against the fastest's, at least.
RSS_RATIO_MAX = 0.5
FPS_RATIO_MIN = 1.2
FAIRNESS_MIN = 0.8
SAMPLE_PERIOD = 0.25


def parse_counts(text: str) -> List[int]:
    """Return camera counts from ``'1,2,4'``; raise ValueError for anything else."""
    counts = []
    for item in str(text).split(','):
        item = item.strip()
        if not item.isdigit() or not 1 <= int(item) <= 16:
            raise ValueError('--cameras takes counts from 1 to 16, comma separated '
                             '(got %r)' % item[:40])
        if int(item) not in counts:
            counts.append(int(item))
    return counts


def pss_kb(pid: int) -> int:
    """Return ``Pss`` of ``pid`` in KiB from ``/proc/pid/smaps_rollup`` (0 where absent)."""
    try:
        with open('/proc/%d/smaps_rollup' % pid) as stream:
            for line in stream:
                if line.startswith('Pss:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def machine_cpu_seconds() -> Tuple[float, float]:
    """Return the machine's busy and stolen CPU seconds so far (``/proc/stat``, all CPUs)."""
    with open('/proc/stat') as stream:
        fields = [int(v) for v in stream.readline().split()[1:]]
    fields += [0] * (8 - len(fields))
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    tick = float(os.sysconf('SC_CLK_TCK'))
    return (user + nice + system + irq + softirq) / tick, steal / tick


class MachineSampler:
    """The whole machine's busy and stolen CPU over time, to show what else ran."""

    def __init__(self):
        self.samples: List[Tuple[float, float, float]] = []

    def sample(self) -> None:
        """Record busy and stolen CPU seconds now."""
        try:
            busy, steal = machine_cpu_seconds()
        except (OSError, ValueError):
            return
        self.samples.append((time.monotonic(), busy, steal))

    def summary(self, start: float, end: float) -> Dict[str, float]:
        """Return busy and stolen CPU % (100 = one core) within [start, end]."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return {'busy_percent': float('nan'), 'steal_percent': float('nan')}
        span = inside[-1][0] - inside[0][0]
        return {'busy_percent': 100.0 * (inside[-1][1] - inside[0][1]) / span,
                'steal_percent': 100.0 * (inside[-1][2] - inside[0][2]) / span}


class Sampler:
    """Memory and CPU of a set of processes over time (``/proc``, no cooperation)."""

    def __init__(self, pids: List[int]):
        self.monitors = [benchmark.ProcessMonitor(pid) for pid in pids]
        self.samples: List[Dict[str, float]] = []

    def sample(self) -> None:
        """Record the processes' summed RSS and PSS (MiB) and CPU seconds now."""
        rss = pss = cpu = 0.0
        for monitor in self.monitors:
            try:
                cpu += monitor.cpu_seconds()
                rss += process_probe.rss_kb(monitor.pid) / 1024.0
                pss += pss_kb(monitor.pid) / 1024.0
            except (OSError, ValueError, IndexError):
                return   # a process is gone: no complete sample
        self.samples.append({'t': time.monotonic(), 'rss': rss, 'pss': pss, 'cpu': cpu})

    def summary(self, start: float, end: float) -> Dict[str, float]:
        """Return mean/peak RSS, mean PSS and CPU % (100 = one core) within [start, end]."""
        inside = [s for s in self.samples if start <= s['t'] <= end]
        nan = float('nan')
        if len(inside) < 2:
            return {'rss_mean_mb': nan, 'rss_peak_mb': nan, 'pss_mean_mb': nan,
                    'cpu_percent': nan, 'samples': len(inside)}
        span = inside[-1]['t'] - inside[0]['t']
        return {'rss_mean_mb': float(np.mean([s['rss'] for s in inside])),
                'rss_peak_mb': max(s['rss'] for s in inside),
                'pss_mean_mb': float(np.mean([s['pss'] for s in inside])),
                'cpu_percent': 100.0 * (inside[-1]['cpu'] - inside[0]['cpu']) / span
                if span > 0 else nan,
                'samples': len(inside)}


def _node_params_argv(values: Dict[str, Any]) -> List[str]:
    return processes.node_command(params=values)[4:]   # after python -m module --ros-args


def start_layout(layout: str, namespaces: List[str], values: Dict[str, Any],
                 env: Dict[str, str], workdir: str, client=None,
                 timeout: float = 120.0) -> List[processes.ManagedProcess]:
    """
    Start ``layout`` for ``namespaces`` with node parameters ``values``; return its processes.

    Per camera, each node is configured and activated through ``client`` (an rclpy node
    on the same graph); the container activates its cameras itself (``autostart``).
    """
    os.makedirs(workdir, exist_ok=True)
    started: List[processes.ManagedProcess] = []
    try:
        if layout == ONE_PROCESS:
            argv = [sys.executable, '-m', 'matte_ros.ros.multi', '--ros-args',
                    '-p', 'cameras:=[%s]' % ','.join(namespaces),
                    '-p', 'autostart:=true'] + _node_params_argv(values)
            started.append(processes.ManagedProcess(
                argv, env, os.path.join(workdir, 'matte_multi_node.log')))
            return started
        for namespace in namespaces:
            started.append(processes.ManagedProcess(
                processes.node_command(namespace=namespace, params=values), env,
                os.path.join(workdir, 'matte_node%s.log' % namespace.replace('/', '_'))))
        from matte_ros.ros.lifecycle_client import LifecycleClient   # ROS only here
        for namespace, process in zip(namespaces, started):
            lifecycle = LifecycleClient(client, namespace + '/matte', timeout=timeout)
            for transition in ('configure', 'activate'):
                if not lifecycle.change_state(transition):
                    raise RuntimeError('%s/matte refused to %s; see %s'
                                       % (namespace, transition, process.log_path))
        return started
    except BaseException:
        for process in started:
            process.stop()
        raise


def measure_layout(layout: str, namespaces: List[str], values: Dict[str, Any],
                   env: Dict[str, str], workdir: str, size, rate: float, warmup: float,
                   seconds: float, client=None, spin=None) -> Dict[str, Any]:
    """
    Run one layout: start it, feed and measure it with the rig, stop it; return one row.

    ``spin`` (seconds → None) keeps ``client`` serviced while waiting (rclpy futures of
    the lifecycle client); without it the wait sleeps.
    """
    nodes = start_layout(layout, namespaces, values, env, workdir, client)
    rig_out = os.path.join(workdir, 'rig.json')
    rig = processes.ManagedProcess(
        [sys.executable, '-m', 'matte_ros.measure.camera_rig', '--namespaces'] + namespaces
        + ['--rate', '%.3f' % rate, '--size', benchmark.size_label(size),
           '--warmup', str(warmup), '--seconds', str(seconds), '--out', rig_out],
        env, os.path.join(workdir, 'rig.log'))
    sampler = Sampler([p.proc.pid for p in nodes])
    rig_sampler = Sampler([rig.proc.pid])
    machine = MachineSampler()
    limit = time.monotonic() + warmup + seconds + 300.0
    try:
        while rig.alive() and time.monotonic() < limit:
            sampler.sample()
            rig_sampler.sample()
            machine.sample()
            if spin is not None:
                spin(SAMPLE_PERIOD)
            else:
                time.sleep(SAMPLE_PERIOD)
            dead = [p.log_path for p in nodes if not p.alive()]
            if dead:
                raise RuntimeError('a node process exited during the run; see %s'
                                   % ', '.join(dead))
    finally:
        rig.stop()
        for process in nodes:
            process.stop()
    if not os.path.exists(rig_out):
        raise RuntimeError('the camera rig wrote no report: %s' % rig.output()[-500:])
    with open(rig_out) as stream:
        report = json.load(stream)
    if 'error' in report:
        raise RuntimeError('camera rig (%s, %d cameras): %s; logs in %s'
                           % (layout, len(namespaces), report['error'], workdir))
    row = summarise(layout, report, sampler.summary(*report['window_monotonic']))
    row['rig_cpu_percent'] = rig_sampler.summary(*report['window_monotonic'])['cpu_percent']
    whole = machine.summary(*report['window_monotonic'])
    # what else used the CPUs in the window: the machine less the nodes and the rig
    row['other_cpu_percent'] = (whole['busy_percent'] - row['process']['cpu_percent']
                                - row['rig_cpu_percent'])
    row['steal_percent'] = whole['steal_percent']
    return row


def summarise(layout: str, report: Dict[str, Any], usage: Dict[str, float]) -> Dict[str, Any]:
    """Turn the rig's report and the process samples into one row."""
    seconds = float(report['seconds'])
    cameras = []
    pooled: List[float] = []
    for camera in report['cameras']:
        cameras.append({'namespace': camera['namespace'], 'sent': camera['sent'],
                        'complete': camera.get('complete', 0),
                        'received': camera['received'],
                        'input_fps': camera['sent'] / seconds,
                        'output_fps': camera['received'] / seconds,
                        'latency_ms': benchmark.latency_summary(camera['latency_ms'])})
        pooled += camera['latency_ms']
    rates = [c['output_fps'] for c in cameras]
    return {'layout': layout, 'cameras': cameras, 'count': len(cameras),
            'rate_hz': report['rate_hz'], 'seconds': seconds,
            'total_output_fps': float(sum(rates)),
            'fairness': (min(rates) / max(rates)) if rates and max(rates) > 0
            else float('nan'),
            'latency_ms': benchmark.latency_summary(pooled),
            'process': usage}


def measure(names: List[str], sizes, counts: List[int], base_values: Dict[str, Any],
            env: Dict[str, str], workdir: str, rate: float, warmup: float, seconds: float,
            client=None, spin=None, progress=None, repeats: int = 1) -> Dict[str, Any]:
    """
    Measure every segmenter × size × camera count × layout; return the results tree.

    With ``repeats`` > 1 each count runs its two layouts that many times, alternating
    (one process, per camera, one process, ...), so that a drift of the machine's speed
    over minutes affects both layouts alike; each row records its repeat.
    """
    rows = []
    run = 0
    for name in names:
        values = dict(base_values, segmenter=name)
        for size in sizes:
            for count in counts:
                for repeat in range(1, max(1, int(repeats)) + 1):
                    for layout in LAYOUTS:
                        run += 1
                        # a fresh prefix per run: no stale discovery data of an earlier run
                        namespaces = ['/mc%d_cam%d' % (run, i) for i in range(count)]
                        if progress:
                            progress('bench: %s %s, %d camera(s), %s, run %d'
                                     % (name, benchmark.size_label(size), count, layout,
                                        repeat))
                        row = measure_layout(layout, namespaces, values, env,
                                             os.path.join(workdir, 'run%d' % run), size,
                                             rate, warmup, seconds, client, spin)
                        row.update(segmenter=name, size=list(size), repeat=repeat)
                        rows.append(row)
    return {'rows': rows, 'rate_hz': rate, 'seconds': seconds, 'warmup': warmup,
            'repeats': max(1, int(repeats))}


def _find_all(rows, segmenter, size, count, layout) -> List[Dict[str, Any]]:
    return [row for row in rows
            if (row['segmenter'], tuple(row['size']), row['count'], row['layout']) == (
                segmenter, tuple(size), count, layout)]


def _mean(values: List[float]) -> float:
    return float(np.mean(values)) if values else float('nan')


def targets(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    """
    Return the design targets at the largest camera count of rvm, per size.

    Memory: the one process's mean RSS over the per-camera processes' summed mean RSS;
    throughput: total output fps, the same way; fairness: the one process's slowest
    camera against its fastest.  Over repeated runs the ratios are those of the means
    over the runs (fairness: the worst run); ``runs`` lists each run's own value.
    """
    out = []
    rows = results['rows']
    keys = sorted({(r['segmenter'], tuple(r['size'])) for r in rows
                   if r['segmenter'] == TARGET_SEGMENTER})
    for segmenter, size in keys:
        count = max(r['count'] for r in rows
                    if (r['segmenter'], tuple(r['size'])) == (segmenter, size))
        ones = _find_all(rows, segmenter, size, count, ONE_PROCESS)
        eachs = _find_all(rows, segmenter, size, count, PER_CAMERA)
        if not ones or not eachs:
            continue
        case = '%s %s, %d cameras' % (segmenter, benchmark.size_label(size), count)
        pairs = list(zip(ones, eachs))

        def ratio(one_value: float, each_value: float) -> float:
            return one_value / each_value if each_value > 0 else float('nan')

        rss = ratio(_mean([r['process']['rss_mean_mb'] for r in ones]),
                    _mean([r['process']['rss_mean_mb'] for r in eachs]))
        fps = ratio(_mean([r['total_output_fps'] for r in ones]),
                    _mean([r['total_output_fps'] for r in eachs]))
        fairness = min(r['fairness'] for r in ones)
        out.append({'case': case, 'target': 'total RSS, one process / per camera',
                    'value': rss, 'threshold': '<= %.1f' % RSS_RATIO_MAX,
                    'passed': rss <= RSS_RATIO_MAX if rss == rss else None,
                    'runs': [ratio(a['process']['rss_mean_mb'], b['process']['rss_mean_mb'])
                             for a, b in pairs]})
        out.append({'case': case, 'target': 'total output fps, one process / per camera',
                    'value': fps, 'threshold': '>= %.1f' % FPS_RATIO_MIN,
                    'passed': fps >= FPS_RATIO_MIN if fps == fps else None,
                    'runs': [ratio(a['total_output_fps'], b['total_output_fps'])
                             for a, b in pairs]})
        out.append({'case': case, 'target': 'one process: slowest / fastest camera fps',
                    'value': fairness, 'threshold': '>= %.1f' % FAIRNESS_MIN,
                    'passed': fairness >= FAIRNESS_MIN if fairness == fairness else None,
                    'runs': [r['fairness'] for r in ones]})
    return out


def _f(value, digits: int = 1) -> str:
    return 'n/a' if value is None or value != value else '%.*f' % (digits, value)


def markdown(results: Dict[str, Any], meta: Dict[str, Any]) -> str:
    """Return the many-camera section of the benchmark report (markdown)."""
    lines = ['## Many cameras: one process or one process per camera', '',
             'Made by `%s` on %s (%s, %d CPUs, load average %s at the start; backend %s).'
             % (meta['command'], meta['date'], meta['machine'], meta['cpus'],
                meta['loadavg'], meta['backend']),
             'Each camera at %.0f Hz (phases spread over a period), all three outputs '
             'subscribed by one rig process (`matte_ros/measure/camera_rig.py`); %.0f s '
             'of warm-up, then %.0f s measured.  *one process*: `matte_multi_node`, the '
             'model loaded once; *per camera*: one `matte_node` each.  fps: composites of '
             'frames sent in the window, per second; latency: header stamp (publish time) '
             "to receipt of the composite.  RSS: sum of the node processes' `VmRSS` "
             '(shared libraries counted in each), PSS: the same with shared pages split '
             '(`smaps_rollup`), both mean over the window; CPU %%: the node processes, '
             '100 = one core; rig CPU %%: the rig process feeding and reading every '
             'camera (the same work in both layouts, growing with the outputs delivered); '
             'other CPU %%: the whole machine less the nodes and the rig (the benchmark '
             "itself and anything else that ran), steal %%: the hypervisor's."
             % (results['rate_hz'], results['warmup'], results['seconds'])]
    repeats = int(results.get('repeats', 1))
    if repeats > 1:
        lines.append('Each count ran its layouts %d times, alternating (the run in the layout '
                     "column); the targets use the means over the runs, each run's own "
                     'value in brackets.' % repeats)
    lines += ['',
              '| segmenter | size | cameras | layout | total output fps | per-camera fps '
              '(each) | slowest / fastest | latency p50 / p99 ms (all) | latency p50 / p99 '
              'ms (each camera) | total RSS MiB (mean / peak) | total PSS MiB | CPU % | '
              'rig CPU % | other CPU % | steal % |',
              '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    for row in results['rows']:
        layout = row['layout']
        if repeats > 1:
            layout = '%s, run %d' % (layout, row.get('repeat', 1))
        cams = row['cameras']
        cells = (
            row['segmenter'], benchmark.size_label(tuple(row['size'])), row['count'],
            layout, _f(row['total_output_fps']),
            ' · '.join(_f(c['output_fps']) for c in cams), _f(row['fairness'], 2),
            _f(row['latency_ms']['p50'], 0), _f(row['latency_ms']['p99'], 0),
            ' · '.join('%s/%s' % (_f(c['latency_ms']['p50'], 0), _f(c['latency_ms']['p99'], 0))
                       for c in cams),
            _f(row['process']['rss_mean_mb'], 0), _f(row['process']['rss_peak_mb'], 0),
            _f(row['process']['pss_mean_mb'], 0), _f(row['process']['cpu_percent'], 0),
            _f(row.get('rig_cpu_percent'), 0), _f(row.get('other_cpu_percent'), 0),
            _f(row.get('steal_percent'), 0))
        lines.append('| %s | %s | %d | %s | %s | %s | %s | %s / %s | %s | %s / %s | %s | %s '
                     '| %s | %s | %s |' % cells)
    lines += ['', 'Targets (rvm at the largest camera count; a segmenter that keeps up with '
              'every camera in both layouts has equal fps by construction):', '',
              '| case | target | value | threshold | result |', '|---|---|---|---|---|']
    for target in results['targets']:
        verdict = {True: 'pass', False: '**fail**', None: 'n/a'}[target['passed']]
        value = _f(target['value'], 2)
        if len(target.get('runs', ())) > 1:
            value += ' (%s)' % ', '.join(_f(v, 2) for v in target['runs'])
        lines.append('| %s | %s | %s | %s | %s |' % (
            target['case'], target['target'], value, target['threshold'], verdict))
    return '\n'.join(lines) + '\n'


BEGIN = '<!-- many cameras: written by matte-ros bench --cameras -->'
END = '<!-- end of many cameras -->'


def write_section(path: str, section: str) -> str:
    """
    Put ``section`` into the report at ``path`` between the section markers; return the text.

    The single-camera report around it is kept; a file without the markers gets the
    section at its end (a missing file: the section alone).
    """
    text = ''
    if os.path.exists(path):
        with open(path, encoding='utf-8') as stream:
            text = stream.read()
    block = BEGIN + '\n' + section + END + '\n'
    if BEGIN in text and END in text and text.index(BEGIN) < text.index(END):
        head = text[:text.index(BEGIN)]
        tail = text[text.index(END) + len(END):].lstrip('\n')
        text = head + block + ('\n' + tail if tail else '')
    else:
        text = (text.rstrip('\n') + '\n\n' if text else '') + block
    with open(path, 'w', encoding='utf-8') as stream:
        stream.write(text)
    return text

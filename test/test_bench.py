"""
``matte-ros bench``: its pieces, and a reduced run of the real command so that it cannot rot.

The reduced run (``--quick``: 2 s per measurement, bgsub at 640x480) starts the real
node, player and recorder processes over DDS.  It checks that the report and JSON hold
every field with sane values; speeds are not asserted (they belong to the benchmark).
"""

import json
import os
import subprocess
import sys
import time

import cv2
from matte_ros.measure import benchmark
import numpy as np
import pytest


def test_parse_sizes_accepts_lists_and_refuses_garbage():
    assert benchmark.parse_sizes('640x480, 1280X720') == [(640, 480), (1280, 720)]
    for bad in ('', '640', '640x', 'ax480', '8x8'):
        with pytest.raises(ValueError):
            benchmark.parse_sizes(bad)


def test_latency_summary_percentiles():
    summary = benchmark.latency_summary([float(v) for v in range(1, 101)])
    assert summary['count'] == 100 and summary['mean'] == pytest.approx(50.5)
    assert summary['p50'] == pytest.approx(50.5)
    assert summary['p95'] == pytest.approx(95.05)
    assert summary['p99'] == pytest.approx(99.01)
    assert summary['max'] == 100.0
    assert np.isnan(benchmark.latency_summary([])['p50'])


def test_stage_means_are_weighted_by_the_frames_of_each_window():
    diagnostics = [
        {'processed': '10', 'stage_ms[segment]': '99.0', 'mean_processing_ms': '99.0'},
        {'processed': '13', 'stage_ms[segment]': '2.0', 'mean_processing_ms': '3.0'},
        {'processed': '13', 'stage_ms[segment]': '0.000', 'mean_processing_ms': '0.000'},
        {'processed': '14', 'stage_ms[segment]': '6.0', 'mean_processing_ms': '7.0'},
    ]
    means = benchmark.weighted_stage_means(diagnostics)
    # the first message is the baseline; the empty window weighs nothing
    assert means['segment'] == pytest.approx((3 * 2.0 + 6.0) / 4)
    assert means['processing'] == pytest.approx((3 * 3.0 + 7.0) / 4)
    assert benchmark.weighted_stage_means(diagnostics[:1]) == {}


def test_window_latency_medians_are_weighted_by_frames():
    diagnostics = [
        {'processed': '10', 'latency_ms[p50]': '99.0', 'node_added_ms[p50]': '9.0'},
        {'processed': '13', 'latency_ms[p50]': '20.0', 'node_added_ms[p50]': '2.0'},
        {'processed': '14', 'latency_ms[p50]': '40.0', 'node_added_ms[p50]': '6.0'},
        {'processed': '14'},   # an idle window carries no medians
    ]
    medians = benchmark.weighted_window_medians(diagnostics)
    assert medians == {'latency': pytest.approx((3 * 20.0 + 40.0) / 4),
                       'node_added': pytest.approx((3 * 2.0 + 6.0) / 4)}


def test_process_monitor_sees_cpu_time_and_memory_of_a_process():
    monitor = benchmark.ProcessMonitor(os.getpid())
    monitor.sample()
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    monitor.sample()
    monitor.sample()
    usage = monitor.summary()
    assert usage['cpu_percent'] > 10.0
    assert usage['rss_peak_mb'] > 1.0
    gone = benchmark.ProcessMonitor(2 ** 22 + 7)   # above pid_max's default: no such process
    gone.sample()
    assert gone.samples == [] and np.isnan(gone.summary()['cpu_percent'])


ADDED = 'latency added by the node (median per frame: DDS in, conversion, outputs published)'


def _results(node_fps, latency_p99, processing_ms, node_added_ms, speedup, growth):
    run = {'size': [640, 480], 'bare': {'fps': 10.0, 'ms': 100.0},
           'paced': {'latency_ms': {'p50': 1.0, 'p95': 1.0, 'p99': 1.0},
                     'node_added_ms': node_added_ms, 'stage_ms': {}, 'process': {}},
           'overload': {'output_fps': node_fps, 'input_fps': 30.0,
                        'capacity_fps': 1000.0 / processing_ms,
                        'latency_ms': {'p50': 1.0, 'p99': latency_p99},
                        'stage_ms': {'processing': processing_ms},
                        'process': {'rss_growth_mb': growth}},
           'saturated': {'output_fps': node_fps},
           'rvm_vs_ort': {'speedup': speedup}}
    return {'segmenters': [{'segmenter': 'rvm', 'sizes': [run]}]}


def _verdicts(results):
    return {row['target']: row['passed'] for row in benchmark.targets(results)}


def test_targets_pass_and_fail_from_the_measurements():
    good = _verdicts(_results(9.5, 150.0, 100.0, 2.0, 1.6, 1.0))
    assert good == {'node fps / bare fps (input 1.25x bare), rvm at 640x480': True,
                    'node fps / bare fps (input 3x), rvm at 640x480': True,
                    'overload: output fps / node capacity': True,
                    'overload: latency p99 / processing time': True,
                    'overload: RSS growth (MiB)': True,
                    ADDED: True,
                    'rvm fps / straight ORT loop fps (same model, CPU)': True}
    bad = _verdicts(_results(5.0, 250.0, 100.0, 4.0, 1.03, 50.0))
    assert set(bad) == set(good) and not any(bad.values())
    unknown = _verdicts(_results(9.5, 150.0, 100.0, float('nan'), 1.6, 1.0))
    assert unknown[ADDED] is None


def test_rvm_davis_quality_target_and_table():
    results = _results(9.5, 150.0, 100.0, 2.0, 1.6, 1.0)
    run = results['segmenters'][0]['sizes'][0]
    run['rvm_davis_vs_ort'] = {
        'ratio': 0.562, 'worst_delta': -0.012,
        'sequences': {'parkour': {'straight_ort_J': 0.92, 'project_J': 0.915, 'delta': -0.005},
                      'kite-surf': {'straight_ort_J': 0.66, 'project_J': 0.648,
                                    'delta': -0.012}}}
    name = 'rvm DAVIS J - straight ORT loop J (worst sequence)'
    assert _verdicts(results)[name] is False
    run['rvm_davis_vs_ort']['worst_delta'] = -0.009
    assert _verdicts(results)[name] is True
    results['targets'] = benchmark.targets(results)
    run['rvm_vs_ort'] = {'ratio': 0.75, 'straight_ort_fps': 9.0, 'project_fps': 14.4,
                         'speedup': 1.6, 'max_alpha_diff': 0.5}
    results['meta'] = {'command': 'x', 'date': 'd', 'machine': 'm', 'cpus': 2, 'loadavg': '0',
                       'backend': 'cpu', 'onnxruntime': '1', 'seconds': 1, 'quick': True}
    text = benchmark.markdown(results)
    assert '| kite-surf | 0.6600 | 0.6480 | -0.0120 |' in text


@pytest.fixture(scope='module')
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('bench')
    argv = [sys.executable, '-m', 'matte_ros.cli.main', 'bench', '--quick',
            '--segmenter', 'bgsub', '--sizes', '640x480', '--out', str(out / 'bench.md'),
            '--json', str(out / 'bench.json'), '--workdir', str(out / 'work')]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(out / 'bench.json') as f:
        results = json.load(f)
    with open(out / 'bench.md') as f:
        text = f.read()
    return out, results, text, done.stdout


def test_quick_run_measures_bare_loop_and_live_node(quick_run):
    _, results, _, _ = quick_run
    run = results['segmenters'][0]['sizes'][0]
    assert results['segmenters'][0]['segmenter'] == 'bgsub' and run['size'] == [640, 480]
    assert run['bare']['frames'] >= 3 and run['bare']['fps'] > 0
    assert set(run['bare']['stage_ms']) == set(benchmark.PIPELINE_STAGES)
    assert run['bare_after']['frames'] >= 3 and run['bare_after']['fps'] > 0
    assert benchmark.bare_fps(run) == pytest.approx(
        (run['bare']['fps'] + run['bare_after']['fps']) / 2)
    for name in ('paced', 'overload', 'saturated'):
        live = run[name]
        assert live['sent'] > 0 and 0 < live['received'] <= live['sent'], name
        assert live['input_fps'] > 0 and live['output_fps'] > 0, name
        lat = live['latency_ms']
        assert 0 < lat['p50'] <= lat['p95'] <= lat['p99'] <= lat['max'], name
        assert set(benchmark.STAGES) | {'processing'} <= set(live['stage_ms']), name
        assert sum(live['stage_ms'][s] for s in benchmark.STAGES) == pytest.approx(
            live['stage_ms']['processing'], rel=0.2), name
        assert live['process']['cpu_percent'] > 0 and live['process']['rss_peak_mb'] > 20
    floor = run['transport_floor']   # the echo node: republished every frame, no stages
    assert floor['received'] > 0 and floor['latency_ms']['p50'] > 0
    assert set(floor['stage_ms']) <= {'processing'}   # echo has no stages (0 per frame)
    # its own stamp-to-published median (no pipeline: all of it "added"), under receipt
    echo = floor['in_node_ms']
    assert 0 < echo['node_added'] == pytest.approx(echo['latency'])
    assert echo['latency'] < floor['latency_ms']['max']
    paced = run['paced']
    in_pipeline = sum(paced['stage_ms'][s] for s in benchmark.PIPELINE_STAGES)
    assert paced['receipt_added_ms'] == pytest.approx(paced['latency_ms']['mean'] - in_pipeline)
    # the node's own per-frame medians: stamp to published, and that minus its pipeline
    node = paced['in_node_ms']
    assert 0 < node['node_added'] < node['latency'] < paced['latency_ms']['max']
    assert paced['node_added_ms'] == node['node_added']


def test_quick_run_writes_report_with_targets_and_plot(quick_run):
    out, results, text, stdout = quick_run
    targets = {row['target'] for row in results['targets']}
    assert {'node fps / bare fps (input 1.25x bare)', 'node fps / bare fps (input 3x)',
            'overload: output fps / node capacity',
            'overload: latency p99 / processing time', 'overload: RSS growth (MiB)',
            ADDED} <= targets
    assert all(row['passed'] in (True, False) for row in results['targets'])
    for heading in ('## Speed and cost', '## Transport floor', '## Time per stage',
                    '## Overload', '## Targets'):
        assert heading in text
    assert '`matte-ros bench --quick --segmenter bgsub --sizes 640x480 --out %s`' % (
        out / 'bench.md') in text   # the logs' and JSON's places are left out
    assert '| bgsub | 640x480 |' in text
    assert text in stdout
    image = cv2.imread(str(out / 'bench.png'))
    assert image is not None and image.shape[0] > 100 and image.std() > 0
    assert '![fps and latency](bench.png)' in text


FAKE_MEDIAPIPE = '''
"""Stand-in for the mediapipe package (test only): person = bright pixels."""
import types

import numpy as np


class _Result:
    def __init__(self, mask):
        self.segmentation_mask = mask


class SelfieSegmentation:
    def __init__(self, model_selection=0):
        self.model_selection = model_selection

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def process(self, rgb):
        return _Result((rgb.mean(axis=2) > 128).astype(np.float32))


solutions = types.SimpleNamespace(
    selfie_segmentation=types.SimpleNamespace(SelfieSegmentation=SelfieSegmentation))
'''


def test_selfie_vs_mediapipe_runs_the_reference_in_another_python(tmp_path, monkeypatch):
    """
    The comparison's plumbing, with a stand-in ``mediapipe`` (the real one needs NumPy < 2).

    The stand-in marks bright pixels as the person; the tiny DAVIS tree made here has
    truth equal to that rule on the middle frame only, so its J is known exactly.  The
    project side runs the real selfie model from ../shared/models.
    """
    model = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'models',
                         'selfie_segmentation.tflite')
    if not os.path.exists(model):
        pytest.skip('../shared/models/selfie_segmentation.tflite is absent')
    fake = tmp_path / 'fake'
    (fake / 'mediapipe').mkdir(parents=True)
    (fake / 'mediapipe' / '__init__.py').write_text(FAKE_MEDIAPIPE)
    monkeypatch.setenv('PYTHONPATH', str(fake))
    davis = tmp_path / 'davis'
    (davis / 'JPEGImages' / '480p' / 'seq').mkdir(parents=True)
    (davis / 'Annotations' / '480p' / 'seq').mkdir(parents=True)
    for i in range(3):
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[10:30, 20 + 5 * i:40 + 5 * i] = 250
        truth = (frame[:, :, 0] > 128).astype(np.uint8) * 255
        if i != 1:
            truth[:] = 0
            truth[0:20, 0:10] = 255  # disjoint from the bright block: J 0
        cv2.imwrite(str(davis / 'JPEGImages' / '480p' / 'seq' / ('%05d.png' % i)), frame)
        cv2.imwrite(str(davis / 'Annotations' / '480p' / 'seq' / ('%05d.png' % i)), truth)
    values = {p.name: p.default for p in __import__('matte_ros.params').params.PARAMS}
    values.update({'segmenter': 'selfie', 'models.model_path': model})
    frames = [np.full((48, 64, 3), 200, np.uint8)] * 4
    result = benchmark.selfie_vs_mediapipe(values, frames, 0.05, sys.executable,
                                           davis_root=str(davis), workdir=str(tmp_path / 'w'))
    assert result['variant'] == 'general'
    assert result['mediapipe_fps'] > 0 and result['project_fps'] > 0
    assert result['speedup'] == pytest.approx(result['project_fps'] / result['mediapipe_fps'])
    # DAVIS 2016 leaves out the first and last frame (J 0 here): only frame 1 (J 1) counts.
    assert result['mediapipe_J'] == {'seq': 1.0, 'mean': 1.0}
    assert 0.0 <= result['project_J']['mean'] <= 1.0
    rows = benchmark.targets({'segmenters': [{'segmenter': 'selfie', 'selfie_model': 'general',
                                              'sizes': [{'size': [640, 480],
                                                         'bare': {'fps': 1.0},
                                                         'selfie_vs_mediapipe': result}]}]})
    assert any(r['target'].startswith('selfie fps / MediaPipe') for r in rows)

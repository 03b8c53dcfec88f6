"""
``matte-ros bench --cameras``: one process for N cameras against one process per camera.

The arithmetic (rows, targets, the report section) is checked on hand-made rig reports;
one short real run (framediff, 1 and 2 cameras, about a second each) starts the real
container, the real per-camera nodes and the camera rig on an isolated DDS graph and
must write its section into an existing report without touching the rest of it.
"""

import json
import os
import subprocess
import sys
import time

from matte_ros.measure import camera_rig
from matte_ros.measure import multi_bench
import pytest


def test_parse_counts_accepts_lists_and_refuses_garbage():
    assert multi_bench.parse_counts('1,2,4') == [1, 2, 4]
    assert multi_bench.parse_counts(' 4 , 4,1') == [4, 1]
    for bad in ('', '0', '17', 'two', '1,,2', '-1', 'x' * 10 ** 6):
        with pytest.raises(ValueError):
            multi_bench.parse_counts(bad)


def _report(received, seconds=10.0, latency=50.0):
    return {'seconds': seconds, 'rate_hz': 15.0, 'window_monotonic': [0.0, seconds],
            'cameras': [{'namespace': '/c%d' % i, 'sent': 150, 'received': n,
                         'complete': n, 'latency_ms': [latency] * n}
                        for i, n in enumerate(received)]}


def _row(segmenter, count, layout, received, rss):
    row = multi_bench.summarise(layout, _report(received),
                                {'rss_mean_mb': rss, 'rss_peak_mb': rss + 1,
                                 'pss_mean_mb': rss - 10, 'cpu_percent': 190.0,
                                 'samples': 40})
    row.update(segmenter=segmenter, size=[640, 480])
    assert row['count'] == count
    return row


def test_summarise_rates_fairness_and_latency():
    row = _row('rvm', 4, multi_bench.ONE_PROCESS, [40, 40, 36, 44], 600.0)
    assert row['total_output_fps'] == pytest.approx(16.0)
    assert [c['output_fps'] for c in row['cameras']] == pytest.approx([4.0, 4.0, 3.6, 4.4])
    assert row['fairness'] == pytest.approx(3.6 / 4.4)
    assert row['latency_ms']['count'] == 160
    assert row['latency_ms']['p50'] == pytest.approx(50.0)
    starved = _row('rvm', 2, multi_bench.ONE_PROCESS, [40, 0], 500.0)
    assert starved['fairness'] == 0.0


def test_targets_are_ratios_at_the_largest_count_for_rvm_only():
    rows = [_row('rvm', 1, multi_bench.ONE_PROCESS, [20], 340.0),
            _row('rvm', 1, multi_bench.PER_CAMERA, [20], 340.0),
            _row('rvm', 4, multi_bench.ONE_PROCESS, [40, 40, 40, 40], 600.0),
            _row('rvm', 4, multi_bench.PER_CAMERA, [30, 30, 30, 30], 1400.0),
            _row('selfie', 4, multi_bench.ONE_PROCESS, [150] * 4, 200.0),
            _row('selfie', 4, multi_bench.PER_CAMERA, [150] * 4, 600.0)]
    found = multi_bench.targets({'rows': rows})
    assert [t['case'] for t in found] == ['rvm 640x480, 4 cameras'] * 3
    rss, fps, fair = found
    assert rss['value'] == pytest.approx(600.0 / 1400.0) and rss['passed'] is True
    assert fps['value'] == pytest.approx(16.0 / 12.0) and fps['passed'] is True
    assert fair['value'] == pytest.approx(1.0) and fair['passed'] is True
    rows[2] = _row('rvm', 4, multi_bench.ONE_PROCESS, [40, 40, 40, 20], 800.0)
    rss, fps, fair = multi_bench.targets({'rows': rows})
    assert rss['passed'] is False      # 800 / 1400 = 0.57
    assert fps['passed'] is False      # 14 / 12 = 1.17
    assert fair['passed'] is False     # 2 / 4 = 0.5


def test_camera_summary_counts_only_frames_stamped_in_the_window():
    camera = camera_rig.Camera.__new__(camera_rig.Camera)
    camera.namespace = '/c0'
    camera.sent = [5, 10, 20, 30, 40]
    camera.received = {'mask': {10: 12, 20: 25}, 'alpha': {10: 12, 20: 25, 30: 31},
                       'composite': {5: 6, 10: 13_000_010, 20: 20_000_020, 30: 31}}
    out = camera.summary(10, 40)   # the window holds stamps 10, 20, 30
    assert out['sent'] == 3
    assert out['received'] == 3
    assert out['complete'] == 2    # 30 has no mask
    assert out['latency_ms'] == pytest.approx([13.0, 20.0, 1e-6 * 1])


def test_write_section_replaces_its_own_block_and_keeps_the_rest(tmp_path):
    path = str(tmp_path / 'report.md')
    with open(path, 'w') as f:
        f.write('# Benchmarks\n\nsingle-camera rows\n')
    multi_bench.write_section(path, 'first\n')
    text = multi_bench.write_section(path, 'second\n')
    assert text.startswith('# Benchmarks\n\nsingle-camera rows\n')
    assert 'second\n' in text and 'first' not in text
    assert text.count(multi_bench.BEGIN) == 1 and text.count(multi_bench.END) == 1
    with open(path, 'a') as f:
        f.write('\n## After\n')
    text = multi_bench.write_section(path, 'third\n')
    assert text.rstrip().endswith('## After') and 'third' in text and 'second' not in text


def test_markdown_has_a_row_per_layout_and_the_verdicts():
    rows = [_row('rvm', 4, multi_bench.ONE_PROCESS, [40, 40, 40, 40], 600.0),
            _row('rvm', 4, multi_bench.PER_CAMERA, [30, 30, 30, 30], 1400.0)]
    results = {'rows': rows, 'rate_hz': 15.0, 'seconds': 10.0, 'warmup': 5.0}
    results['targets'] = multi_bench.targets(results)
    meta = {'command': 'matte-ros bench --cameras 4', 'date': 'now', 'machine': 'm',
            'cpus': 2, 'loadavg': '0.1', 'backend': 'cpu'}
    text = multi_bench.markdown(results, meta)
    assert '| rvm | 640x480 | 4 | one process | 16.0 | 4.0 · 4.0 · 4.0 · 4.0 | 1.00 |' in text
    assert '| rvm | 640x480 | 4 | per camera | 12.0 |' in text
    assert '| 0.43 | <= 0.5 | pass |' in text and '| 1.33 | >= 1.2 | pass |' in text


def test_repeated_runs_give_targets_from_the_means_and_each_run():
    rows = []
    for repeat, (one_fps, each_fps) in enumerate(((40, 30), (30, 30)), 1):
        for layout, fps, rss in ((multi_bench.ONE_PROCESS, one_fps, 600.0),
                                 (multi_bench.PER_CAMERA, each_fps, 1400.0)):
            row = _row('rvm', 4, layout, [fps] * 4, rss)
            row.update(repeat=repeat, other_cpu_percent=3.0, steal_percent=1.0)
            rows.append(row)
    rows[2] = dict(_row('rvm', 4, multi_bench.ONE_PROCESS, [30, 30, 30, 15], 600.0),
                   repeat=2)
    results = {'rows': rows, 'rate_hz': 15.0, 'seconds': 10.0, 'warmup': 5.0, 'repeats': 2}
    rss, fps, fair = multi_bench.targets(results)
    # means: one process (16 + 10.5) / 2 fps against (12 + 12) / 2
    assert fps['value'] == pytest.approx(13.25 / 12.0) and fps['passed'] is False
    assert fps['runs'] == pytest.approx([16.0 / 12.0, 10.5 / 12.0])
    assert fair['value'] == pytest.approx(0.5) and fair['runs'] == pytest.approx([1.0, 0.5])
    assert rss['value'] == pytest.approx(600.0 / 1400.0)
    results['targets'] = [rss, fps, fair]
    meta = {'command': 'c', 'date': 'now', 'machine': 'm', 'cpus': 2, 'loadavg': '0.1',
            'backend': 'cpu'}
    text = multi_bench.markdown(results, meta)
    assert '| one process, run 2 | 10.5 |' in text
    assert '| 1.10 (1.33, 0.88) | >= 1.2 | **fail** |' in text


def test_machine_sampler_reads_busy_and_stolen_cpu():
    sampler = multi_bench.MachineSampler()
    sampler.sample()
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        sum(range(1000))   # keep this process busy
    sampler.sample()
    out = sampler.summary(0.0, time.monotonic())
    assert out['busy_percent'] > 10.0 and out['steal_percent'] >= 0.0
    assert multi_bench.MachineSampler().summary(0.0, 1.0)['busy_percent'] != \
        multi_bench.MachineSampler().summary(0.0, 1.0)['busy_percent']   # nan: no samples


@pytest.fixture(scope='module')
def camera_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('bench_cameras')
    out = str(tmp / 'benchmarks.md')
    with open(out, 'w') as f:
        f.write('# Benchmarks\n\nthe single-camera report\n')
    json_path = str(tmp / 'cameras.json')
    argv = [sys.executable, '-m', 'matte_ros.cli.main', 'bench', '--cameras', '1,2',
            '--segmenter', 'framediff', '--sizes', '320x240', '--seconds', '1.5',
            '--warmup', '0.5', '--out', out, '--json', json_path,
            '--workdir', str(tmp / 'work')]
    env = dict(os.environ)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    with open(out) as f:
        text = f.read()
    with open(json_path) as f:
        results = json.load(f)
    return text, results


def test_real_run_serves_every_camera_in_both_layouts(camera_run):
    _, results = camera_run
    rows = results['rows']
    assert [(r['count'], r['layout']) for r in rows] == [
        (1, multi_bench.ONE_PROCESS), (1, multi_bench.PER_CAMERA),
        (2, multi_bench.ONE_PROCESS), (2, multi_bench.PER_CAMERA)]
    for row in rows:
        assert len(row['cameras']) == row['count']
        for camera in row['cameras']:
            # framediff at 320x240 keeps up with 15 Hz: most frames of the window come back
            assert camera['sent'] >= 15
            assert camera['received'] >= 0.5 * camera['sent']
            assert camera['latency_ms']['p50'] > 0
        assert row['process']['rss_mean_mb'] > 20
        assert row['process']['samples'] >= 2
    two_each = rows[3]['process']['rss_mean_mb']
    one_alone = rows[1]['process']['rss_mean_mb']
    assert two_each > 1.5 * one_alone   # two processes hold about twice one's memory


def test_real_run_writes_its_section_into_the_report(camera_run):
    text, _ = camera_run
    assert text.startswith('# Benchmarks\n\nthe single-camera report\n')
    assert multi_bench.BEGIN in text and multi_bench.END in text
    assert '| framediff | 320x240 | 2 | one process |' in text
    assert '| framediff | 320x240 | 2 | per camera |' in text
    assert '--cameras 1,2 --segmenter framediff' in text


@pytest.mark.parametrize('value', ['0', '-1', '21', 'two'])
def test_repeats_outside_1_to_20_are_refused(value, capsys):
    from matte_ros.cli.main import main
    with pytest.raises(SystemExit) as err:
        main(['bench', '--cameras', '4', '--repeats', value])
    assert err.value.code == 2
    assert 'must be a whole number from 1 to 20' in capsys.readouterr().err

"""
tools/gpu_check.py dry-run on the CPU: the GPU check works before it meets a GPU.

The same script a GPU machine runs (``run``), here with ``--device cpu``, tiny frames and
one timed frame per row, on the real RVM model and DAVIS frames from ../shared; and its
``bundle`` step, which must list what travels and refuse a bundle over 64 MiB.  Needs
torch, torchvision and onnx2torch (skips otherwise).  The figures are not speeds.
"""

import json
import os
import subprocess
import sys

import pytest

from conftest import shared_path  # noqa: I100 (test helper, not a package)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'tools', 'gpu_check.py')


def _env():
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    return env


def test_dry_run_on_the_cpu_prints_every_row(tmp_path):
    pytest.importorskip('torch')
    from matte_ros.segmenters import torchvision_ops
    torchvision_ops.import_torchvision()
    pytest.importorskip('onnx2torch')
    bundle = tmp_path / 'bundle'
    (bundle / 'frames').mkdir(parents=True)
    os.symlink(shared_path('models', 'rvm_mobilenetv3_fp32.onnx'),
               bundle / 'rvm_mobilenetv3_fp32.onnx')
    davis = shared_path('data', 'davis2016', 'JPEGImages', '480p', 'parkour')
    for name in sorted(os.listdir(davis))[:2]:
        os.symlink(os.path.join(davis, name), bundle / 'frames' / name)
    out = tmp_path / 'out'
    done = subprocess.run(
        [sys.executable, SCRIPT, 'run', '--device', 'cpu', '--bundle', str(bundle),
         '--sizes', '96x64', '--parity-size', '96x64', '--frames', '2', '--count', '1',
         '--instance-min-size', '64', '--out', str(out)],
        capture_output=True, text=True, timeout=600,
        env=dict(_env(), XDG_CACHE_HOME=str(tmp_path / 'xdg')))   # its traces go there
    assert done.returncode == 0, done.stdout + done.stderr
    assert os.listdir(tmp_path / 'xdg' / 'matte_ros' / 'models') == []   # and are removed
    assert '| check | fps | peak MiB |' in done.stdout
    with open(out / 'gpu_check.json', encoding='utf-8') as stream:
        report = json.load(stream)
    rows = {row['row']: row for row in report['rows']}
    assert report['head']['device'] == 'cpu' and 'DAVIS parkour' in report['head']['frames']
    fp32 = rows['rvm torchscript fp32 on cpu vs ONNX Runtime CPU, DAVIS parkour (2 frames) '
                'at 96x64']
    assert fp32['max_dalpha'] < 1e-3 and fp32['iou'] > 0.99
    fp16 = rows['rvm torchscript fp16 on cpu vs ONNX Runtime CPU, DAVIS parkour (2 frames) '
                'at 96x64']
    assert fp16['max_dalpha'] < 0.2 and 'in fp16' in fp16['runs_on']
    for precision in ('fp32', 'fp16'):
        speed = rows['rvm torchscript %s on cpu fps at 96x64' % precision]
        assert speed['fps'] > 0 and speed['state_on_device'] is True
    instance = rows['instance (random Mask R-CNN) fps on cpu at 96x64']
    assert instance['fps'] > 0 and 'maskrcnn_resnet50_fpn' in instance['runs_on']
    assert (out / 'gpu_check.md').read_text().startswith('GPU check, ')


def test_bundle_lists_what_travels_and_checks_the_limit(tmp_path):
    model = shared_path('models', 'rvm_mobilenetv3_fp32.onnx')
    wheels = tmp_path / 'wheels'
    wheels.mkdir()
    (wheels / 'onnx2torch-1.5.15-py3-none-any.whl').write_bytes(b'PK' + b'\0' * 1000)
    out = tmp_path / 'bundle'
    done = subprocess.run(
        [sys.executable, SCRIPT, 'bundle', '--out', str(out), '--frames', '3',
         '--wheels-from', str(wheels), '--shared', os.path.dirname(os.path.dirname(model))],
        capture_output=True, text=True, timeout=120, env=_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'fits' in done.stdout and 'repository (tracked files)' in done.stdout
    assert os.path.getsize(out / 'rvm_mobilenetv3_fp32.onnx') == os.path.getsize(model)
    assert len(os.listdir(out / 'frames')) == 3
    assert os.listdir(out / 'wheels') == ['onnx2torch-1.5.15-py3-none-any.whl']
    # a bundle over the limit is refused
    (out / 'too_much.bin').write_bytes(b'\0' * (64 * 1024 * 1024))
    done = subprocess.run(
        [sys.executable, SCRIPT, 'bundle', '--out', str(out), '--frames', '3',
         '--wheels-from', str(wheels), '--shared', os.path.dirname(os.path.dirname(model))],
        capture_output=True, text=True, timeout=120, env=_env())
    assert done.returncode == 1 and 'TOO LARGE' in done.stdout

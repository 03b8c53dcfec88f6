"""
``matte-ros doctor``: the report users paste into bug reports, checked against the real libraries.

The versions and providers come from the installed CPU builds of ONNX Runtime and torch;
the model cache is a temporary directory with links to ../shared/models files; one test
fakes the probe result (a GPU machine's answer) to check the backend rows.
"""

import importlib.metadata
import os
import sys

from matte_ros import backends
from matte_ros import models
from matte_ros.cli import doctor_cmd
from matte_ros.cli import main as cli_main
import pytest

from conftest import shared_path  # noqa: I100 (test helper, not a package)


def rows_of(sections):
    """Return {section title: {key: value}}."""
    return {title: dict(rows) for title, rows in sections}


def test_report_names_the_real_libraries_and_providers():
    import cv2
    import numpy
    import onnxruntime
    import torch
    report = rows_of(doctor_cmd.collect())
    assert report['libraries']['onnxruntime'] == onnxruntime.__version__
    assert report['libraries']['torch'] == torch.__version__
    assert report['libraries']['numpy'] == numpy.__version__
    assert report['libraries']['opencv'] == cv2.__version__
    for provider in onnxruntime.get_available_providers():
        assert provider in report['accelerators']['onnxruntime providers']
    # a provider counts only when a tiny session ran on it (this CPU build has neither)
    if 'CUDAExecutionProvider' not in onnxruntime.get_available_providers():
        assert report['accelerators']['onnxruntime CUDA'] == \
            'no - CUDAExecutionProvider not in this onnxruntime build'
    cuda = report['accelerators']['torch CUDA']
    assert cuda.startswith('yes' if torch.cuda.is_available() else 'no')
    assert report['matte_ros']['python'].split()[0] in sys.version
    assert report['ROS']['rmw'].startswith('rmw_')
    assert set(report['backend auto (backend_strict false)']) == {
        'bgsub', 'framediff', 'rvm', 'selfie', 'instance', 'onnx', 'composite blur'}


def test_model_cache_rows_show_state_and_checksums(tmp_path):
    spec = models.get('selfie_general')
    source = shared_path('models', spec.filename)
    os.symlink(source, tmp_path / spec.filename)
    (tmp_path / models.get('rvm_mobilenetv3_fp32').filename).write_bytes(b'not a model')
    (tmp_path / 'tensorrt').mkdir()
    (tmp_path / 'tensorrt' / 'engine').write_bytes(b'x')
    rows = doctor_cmd.model_rows(str(tmp_path))
    table = dict(rows[1:4])
    assert rows[0] == ('directory', str(tmp_path))
    assert table['selfie_general'].startswith('ok ')
    assert models.sha256_file(source) in table['selfie_general']
    assert table['rvm_mobilenetv3_fp32'].startswith('corrupt ')
    assert table['selfie_landscape'].startswith('missing ') and 'sha256 -' in \
        table['selfie_landscape']
    assert ('other', 'tensorrt/ (1 entries)') in rows


def test_backend_rows_on_a_gpu_machine_and_with_a_fallback():
    # Faked: the probe result of a Jetson with TensorRT and VPI (no GPU here).
    jetson = backends.Probe({'cpu': (True, ''), 'ort_cuda': (True, 'faked'),
                             'ort_tensorrt': (True, 'faked'), 'torch_cuda': (False, 'faked'),
                             'vpi': (True, 'faked'), 'vpi_cuda': (True, 'faked')})
    rows = dict(doctor_cmd.backend_rows('auto', {'bgsub.algorithm': 'mog2'}, jetson))
    assert rows['rvm'] == 'cuda' and rows['bgsub'] == 'vpi'  # auto never picks tensorrt
    assert rows['instance'] == 'cpu' and rows['composite blur'] == 'vpi/cuda'
    rows = dict(doctor_cmd.backend_rows('tensorrt', {'bgsub.algorithm': 'mog2'}, jetson))
    assert rows['rvm'] == 'tensorrt'
    rows = dict(doctor_cmd.backend_rows('cuda', {'bgsub.algorithm': 'mog2'}, jetson))
    assert rows['rvm'] == 'cuda'
    assert rows['instance'].startswith('cpu  (backend cuda for instance needs torch with CUDA')


def test_cli_prints_the_report_and_rejects_bad_params(capsys):
    assert cli_main.main(['doctor', '--backend', 'tensorrt']) == 0
    out = capsys.readouterr().out
    for title in ('[matte_ros]', '[ROS]', '[libraries]', '[accelerators]', '[model cache]',
                  '[backend tensorrt (backend_strict false)]'):
        assert title in out
    if not backends.probe().has('ort_tensorrt'):
        assert 'TensorrtExecutionProvider' in out.split('[backend tensorrt')[1]
    assert cli_main.main(['doctor', '--param', 'bgsub.algorithm=bogus']) == 2
    assert 'bgsub.algorithm must be one of' in capsys.readouterr().out


@pytest.mark.parametrize('distro_env,expected', [('humble', 'humble (ROS_DISTRO)')])
def test_ros_distribution_prefers_ros_distro(monkeypatch, distro_env, expected):
    monkeypatch.setenv('ROS_DISTRO', distro_env)
    assert doctor_cmd.ros_distribution() == expected
    monkeypatch.delenv('ROS_DISTRO')
    wheels = [d.metadata['Name'] for d in importlib.metadata.distributions()
              if (d.metadata['Name'] or '').lower().startswith('ros-')
              and d.metadata['Name'].lower().endswith('-rclpy')]
    if wheels:
        assert doctor_cmd.ros_distribution().startswith(wheels[0].lower().split('-')[1])
    else:
        assert doctor_cmd.ros_distribution().startswith('unknown')


def test_doctor_takes_ros_layer_parameters_without_a_traceback():
    sections = dict(doctor_cmd.collect('cpu', {'qos.depth': 2, 'segmenter': 'framediff'}))
    assert sections   # ROS-layer keys are the node's business; the core report still comes

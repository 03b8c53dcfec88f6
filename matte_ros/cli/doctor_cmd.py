"""
``matte-ros doctor``: what this machine offers matte_ros, for bug reports.

Prints Python, the ROS distribution and rmw, OpenCV, NumPy, ONNX Runtime and its
execution providers, torch and its CUDA devices, NVIDIA VPI and its backends, the model
cache (each file's state and sha256) and the backend every segmenter would get.  What it
calls working has run: ONNX Runtime's CUDA and TensorRT providers count only when a
tiny session created on each really runs on it (a listed provider that fails to start
is shown with what the session fell back to), VPI's CUDA backend only when a test
conversion read back on the CPU is right.  It
needs no ROS graph and never downloads anything; a missing library is reported, not an
error.
"""

import importlib
import importlib.metadata
import os
import platform
import sys
from typing import List
from typing import Tuple

from matte_ros import __version__
from matte_ros import backends
from matte_ros import models
from matte_ros import params
from matte_ros.segmenters import registry

Section = Tuple[str, List[Tuple[str, str]]]


def add_parser(subparsers):
    """Add the ``doctor`` subcommand."""
    parser = subparsers.add_parser('doctor', help='report libraries, GPUs, models, backends',
                                   description=__doc__.strip().split('\n')[0])
    parser.add_argument('--backend', choices=params.BACKENDS, default='auto',
                        help='backend to resolve for every segmenter (default: auto)')
    parser.add_argument('--param', action='append', default=[], metavar='KEY=VALUE',
                        help='parameter values that affect the choice (bgsub.algorithm, '
                        'models.model_dir)')
    return parser


def _version(module_name: str) -> str:
    """Return a module's ``__version__``, or why it cannot be imported."""
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: B902 - report any import failure, do not crash
        return 'not available (%s)' % exc
    return str(getattr(module, '__version__', 'unknown version'))


def ros_distribution() -> str:
    """Return ROS_DISTRO, else the distro named by the pip-installed ``ros-<distro>-rclpy``."""
    distro = os.environ.get('ROS_DISTRO', '')
    if distro:
        return '%s (ROS_DISTRO)' % distro
    for dist in importlib.metadata.distributions():
        name = (dist.metadata['Name'] or '').lower()
        if name.startswith('ros-') and name.endswith('-rclpy'):
            return '%s (from the %s wheel)' % (name.split('-')[1], name)
    return 'unknown (ROS_DISTRO not set; source your ROS setup file)'


def rclpy_version() -> str:
    """Return rclpy's version, or why it is unknown."""
    try:
        return importlib.metadata.version('rclpy')
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        module = importlib.import_module('rclpy')
    except Exception as exc:  # noqa: B902
        return 'not importable (%s)' % exc
    return 'importable from %s (no package metadata)' % os.path.dirname(module.__file__)


def rmw() -> str:
    """Return the rmw implementation rclpy would use."""
    chosen = os.environ.get('RMW_IMPLEMENTATION', '')
    try:
        from rclpy.utilities import get_rmw_implementation_identifier
        actual = get_rmw_implementation_identifier()
    except Exception as exc:  # noqa: B902
        return '%s (rclpy cannot say: %s)' % (chosen or 'default', exc)
    return '%s%s' % (actual, ' (RMW_IMPLEMENTATION)' if chosen else ' (default)')


def _found(probe: backends.Probe, key: str) -> str:
    return '%s - %s' % ('yes' if probe.has(key) else 'no', probe.detail(key))


def model_rows(directory: str) -> List[Tuple[str, str]]:
    """Return one row per known model (state, sha256 of the cached file) and extra files."""
    rows = [('directory', directory + ('' if os.path.isdir(directory) else ' (absent)'))]
    known = set()
    for spec in models.known():
        path = models.cached_path(spec, directory)
        known.add(os.path.basename(path))
        state = models.status(spec, directory)
        digest = models.sha256_file(path) if os.path.isfile(path) else '-'
        rows.append((spec.name, '%s  %s  sha256 %s' % (state, spec.filename, digest)))
    if os.path.isdir(directory):
        for name in sorted(os.listdir(directory)):
            if name in known:
                continue
            path = os.path.join(directory, name)
            if os.path.isdir(path):
                rows.append(('other', '%s/ (%d entries)' % (name, len(os.listdir(path)))))
            else:
                rows.append(('other', '%s (%d bytes)' % (name, os.path.getsize(path))))
    return rows


def backend_rows(requested: str, config, probe: backends.Probe) -> List[Tuple[str, str]]:
    """Return what each segmenter would run on for ``requested`` (and why, on a fallback)."""
    rows = []
    for segmenter in params.SEGMENTERS:
        choice = backends.choose(segmenter, requested, strict=False, found=probe,
                                 config=config)
        text = choice.backend
        if choice.warning:
            text += '  (%s)' % choice.warning
        rows.append((segmenter, text))
    rows.append(('composite blur', 'vpi/cuda' if backends.wants_gpu_blur(requested, probe)
                 else 'cpu (opencv)'))
    rows.extend(('plugin left out', why) for why in registry.problems())
    return rows


def collect(requested: str = 'auto', values=None,
            probe: backends.Probe = None) -> List[Section]:
    """Gather the report as (section title, [(key, value)]) pairs."""
    config = params.Config().with_updates(params.split(values or {})[0]).values
    probe = probe or backends.probe()
    return [
        ('matte_ros', [('version', __version__),
                       ('python', '%s (%s)' % (platform.python_version(), sys.executable)),
                       ('platform', '%s %s' % (platform.platform(), platform.machine()))]),
        ('ROS', [('distribution', ros_distribution()), ('rclpy', rclpy_version()),
                 ('rmw', rmw()),
                 ('ROS_DOMAIN_ID', os.environ.get('ROS_DOMAIN_ID', '(unset: 0)'))]),
        ('libraries', [('numpy', _version('numpy')), ('opencv', _version('cv2')),
                       ('onnxruntime', _version('onnxruntime')),
                       ('torch', _version('torch')), ('onnx', _version('onnx'))]),
        ('accelerators', [('onnxruntime providers', probe.detail('onnxruntime')),
                          ('onnxruntime CUDA', _found(probe, 'ort_cuda')),
                          ('onnxruntime TensorRT', _found(probe, 'ort_tensorrt')),
                          ('torch CUDA', _found(probe, 'torch_cuda')),
                          ('NVIDIA VPI', _found(probe, 'vpi')),
                          ('VPI CUDA backend', _found(probe, 'vpi_cuda'))]),
        ('model cache', model_rows(models.model_dir(config))),
        ('backend %s (backend_strict false)' % requested,
         backend_rows(requested, config, probe)),
    ]


def format_report(sections: List[Section]) -> str:
    """Return the report as aligned plain text (paste it into a bug report)."""
    lines = []
    for title, rows in sections:
        lines.append('[%s]' % title)
        width = max((len(key) for key, _ in rows), default=0)
        lines.extend('  %-*s  %s' % (width, key, value) for key, value in rows)
        lines.append('')
    return '\n'.join(lines)


def run(args) -> int:
    """Print the report; 2 on a bad ``--param``."""
    try:
        values = params.parse_assignments(args.param)
    except params.ParamError as exc:
        print('error: %s' % exc)
        return 2
    print(format_report(collect(args.backend, values)), end='')
    return 0

"""
``colcon build`` and ``colcon test`` of the package in a fresh workspace, as a user would.

The package sources are copied into ``<tmp>/ws/src/matte_ros``; colcon (from PyPI, in the
same environment as the ROS wheels) builds it, the installed layout is checked (entry
points, ament index marker, launch/config/rviz files), the installed ``matte-ros`` runs,
and ``colcon test`` runs the linters and a few fast core tests of the copied package.
Takes ~10 s; deselect with ``-m 'not colcon'``.
"""

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest

pytestmark = pytest.mark.colcon

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = 'matte_ros'
#: What a source checkout of the package holds (copied into the workspace).
SOURCES = ('package.xml', 'setup.py', 'setup.cfg', 'resource', 'matte_ros', 'launch',
           'config', 'rviz', 'test', 'tools', 'README.md', 'LICENSE')
#: Tests ``colcon test`` runs: the ament linters and fast ROS-free / message tests.
COLCON_TESTS = ('test/test_flake8.py', 'test/test_pep257.py', 'test/test_encodings.py',
                'test/test_image_msgs.py', 'test/test_launch.py')
COLCON = os.path.join(os.path.dirname(sys.executable), 'colcon')


def _colcon(ws, *args, timeout=300):
    if not os.path.exists(COLCON):
        pytest.skip('colcon is not installed beside %s (pip install -r requirements.txt)'
                    % sys.executable)
    env = dict(os.environ)
    env.pop('PYTEST_ADDOPTS', None)
    proc = subprocess.run([COLCON, '--log-base', os.path.join(ws, 'log')] + list(args),
                          cwd=ws, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout)
    output = proc.stdout.decode('utf-8', 'replace')
    assert proc.returncode == 0, 'colcon %s failed:\n%s' % (' '.join(args), output)
    return output


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """Copy the package into a fresh workspace and ``colcon build`` it; return the path."""
    ws = str(tmp_path_factory.mktemp('ws'))
    dst = os.path.join(ws, 'src', PACKAGE)
    os.makedirs(dst)
    ignore = shutil.ignore_patterns('__pycache__', '*.egg-info', '*.pyc')
    for name in SOURCES:
        src = os.path.join(ROOT, name)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(dst, name), ignore=ignore)
        elif os.path.exists(src):
            shutil.copy2(src, dst)
    _colcon(ws, 'build', '--event-handlers', 'console_direct-')
    return ws


def test_build_installs_entry_points_and_share_files(workspace):
    prefix = os.path.join(workspace, 'install', PACKAGE)
    for rel in ('lib/matte_ros/matte_node', 'lib/matte_ros/matte-ros',
                'lib/matte_ros/matte_multi_node',
                'share/ament_index/resource_index/packages/matte_ros',
                'share/matte_ros/package.xml', 'share/matte_ros/launch/matte.launch.py',
                'share/matte_ros/launch/multi_camera.launch.py',
                'share/matte_ros/config/matte.yaml', 'share/matte_ros/config/fastdds.xml',
                'share/matte_ros/rviz/matte.rviz'):
        assert os.path.exists(os.path.join(prefix, rel)), 'colcon build did not install ' + rel


def test_installed_cli_runs_from_the_install_space(workspace):
    prefix = os.path.join(workspace, 'install', PACKAGE)
    site = os.path.join(prefix, 'lib', 'python%d.%d' % sys.version_info[:2], 'site-packages')
    env = dict(os.environ, PYTHONPATH=site + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run(
        [sys.executable, '-c', 'import matte_ros, sys; print(matte_ros.__file__); '
         'from matte_ros.cli.main import main; sys.exit(main(["params", "--format", "yaml"]))'],
        env=env, cwd=workspace, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert lines[0].startswith(site), 'imported %s, not the installed copy' % lines[0]
    assert any('ros__parameters' in line for line in lines)


def test_colcon_test_passes(workspace):
    _colcon(workspace, 'test', '--event-handlers', 'console_direct-',
            '--return-code-on-test-failure',
            '--pytest-args', *COLCON_TESTS, timeout=600)
    result = os.path.join(workspace, 'build', PACKAGE, 'pytest.xml')
    suite = ElementTree.parse(result).getroot()
    if suite.tag == 'testsuites':
        suite = suite[0]
    tests = int(suite.get('tests'))
    assert int(suite.get('failures')) == 0 and int(suite.get('errors')) == 0
    assert tests - int(suite.get('skipped', 0)) >= 5, 'colcon test ran only %d tests' % tests

"""
Shared fixtures: isolation of DDS tests, the node in its own process, a client node.

Importing this module isolates the test process before anything calls ``rclpy.init``:
its own ``ROS_DOMAIN_ID`` and localhost-only discovery, plus the large-frame profile.
"""

import os
import time

from matte_ros.measure import processes
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.abspath(os.path.join(ROOT, '..', 'shared'))
DOMAIN_ID = 1 + os.getpid() % 200
ENV = processes.apply_isolation(DOMAIN_ID)


def shared_path(*parts):
    """Return a path under ../shared, or skip the test saying what is missing."""
    path = os.path.join(SHARED, *parts)
    if not os.path.exists(path):
        pytest.skip('needs %s (the read-only ../shared folder beside the repo)' % path)
    return path


def davis_frames(sequence, count, size):
    """Return the first ``count`` DAVIS 480p frames of ``sequence`` resized to ``size`` (W, H)."""
    import glob
    import cv2
    folder = shared_path('data', 'davis2016', 'JPEGImages', '480p', sequence)
    paths = sorted(glob.glob(os.path.join(folder, '*.jpg')))[:count]
    return [cv2.resize(cv2.imread(p), size, interpolation=cv2.INTER_AREA) for p in paths]


@pytest.fixture(scope='session')
def ros_context():
    """Initialise rclpy once for the test process (on the isolated domain)."""
    import rclpy
    rclpy.init()
    yield
    rclpy.try_shutdown()


@pytest.fixture
def client_node(ros_context):
    """Return a plain rclpy node for the test to publish, subscribe and call services."""
    import rclpy
    node = rclpy.create_node('matte_test_client_%d' % int(time.monotonic() * 1000))
    yield node
    node.destroy_node()


@pytest.fixture
def start_node(tmp_path):
    """Start ``matte_node`` processes (argv from processes.node_command); stop them after."""
    started = []

    def start(**kwargs):
        log = str(tmp_path / ('node%d.log' % len(started)))
        proc = processes.ManagedProcess(processes.node_command(**kwargs), ENV, log)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def load_tool(name):
    """Import ``tools/<name>.py`` (the tools are scripts, not a package) and return it."""
    import importlib.util
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(name, os.path.join(root, 'tools', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def temporary_user_cache(tmp_path_factory):
    """Make a temporary folder the user cache ($XDG_CACHE_HOME); yield its matte_ros folder."""
    with pytest.MonkeyPatch.context() as patch:
        xdg = tmp_path_factory.mktemp('xdg')
        patch.setenv('XDG_CACHE_HOME', str(xdg))
        yield xdg / 'matte_ros'

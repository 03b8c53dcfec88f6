"""ament_flake8 over the package, as colcon test runs it on a robot."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: flake8 checks files in forked workers: forked from this test process, whose earlier
#: tests may have left rclpy or ONNX Runtime threads holding locks, a worker can wait
#: on such a lock for ever; a fresh interpreter has none.
RUN = ('import sys; from ament_flake8.main import main_with_errors; '
       'rc, errors = main_with_errors(argv=sys.argv[1:]); '
       'print(len(errors)); print("\\n".join(errors)); sys.exit(rc)')


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8():
    paths = [os.path.join(ROOT, p) for p in ('matte_ros', 'test', 'launch', 'setup.py', 'tools')
             if os.path.exists(os.path.join(ROOT, p))]
    done = subprocess.run([sys.executable, '-c', RUN] + paths, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, 'code style errors / warnings:\n' + done.stdout[-20000:] \
        + done.stderr[-2000:]

"""ament_flake8 over the package, as colcon test runs it on a robot."""

import os

from ament_flake8.main import main_with_errors
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8():
    rc, errors = main_with_errors(argv=[os.path.join(ROOT, p) for p in
                                        ('matte_ros', 'test', 'launch', 'setup.py', 'tools')
                                        if os.path.exists(os.path.join(ROOT, p))])
    assert rc == 0, 'Found %d code style errors / warnings:\n' % len(errors) + '\n'.join(errors)

"""ament_pep257 (docstring conventions) over the package."""

import os

from ament_pep257.main import main
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257():
    rc = main(argv=[os.path.join(ROOT, 'matte_ros'), os.path.join(ROOT, 'test')])
    assert rc == 0, 'Found docstring style errors'

"""
The robot's package apart from the rigs that measure it.

``matte_node`` must start without loading benchmark, evaluation, data-set, demo or
reliability code (nor torch or ONNX Runtime when the default segmenter runs), and the
installed package must not look for the development data beside the repository.
"""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, 'matte_ros')

#: Modules the node must not import: the rigs, the demo, the command line.
RIGS = re.compile(r'^matte_ros\.(measure|demo|cli)(\.|$)')
HEAVY = ('torch', 'onnxruntime', 'openvino', 'hypothesis')

PROBE = """
import json, sys
import matte_ros.ros.node
from matte_ros import params
params.PARAMS  # the node declares every parameter at start
print(json.dumps(sorted(sys.modules)))
"""


def test_the_node_imports_no_rig_and_no_heavy_library():
    done = subprocess.run([sys.executable, '-c', PROBE], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)
    assert done.returncode == 0, done.stderr
    modules = done.stdout.strip().splitlines()[-1]
    loaded = set(__import__('json').loads(modules))
    assert 'matte_ros.ros.node' in loaded and 'matte_ros.segmenters.rvm' in loaded
    assert sorted(m for m in loaded if RIGS.match(m)) == []
    assert sorted(m for m in loaded if m.split('.')[0] in HEAVY) == []


def test_the_package_does_not_refer_to_the_shared_data_folder():
    found = []
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(folder, name)
                with open(path, encoding='utf-8') as f:
                    for number, line in enumerate(f, 1):
                        if re.search(r"\.\./shared|'shared'", line):
                            found.append('%s:%d' % (os.path.relpath(path, ROOT), number))
    assert found == []


def test_models_and_the_onnx_runtime_layer_do_not_import_the_segmenters():
    probe = ('import sys, matte_ros.models, matte_ros.onnx_runtime; '
             'print(sorted(m for m in sys.modules if m.startswith("matte_ros.segmenters")))')
    done = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT), timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '[]'


def test_segmenter_error_is_one_class_everywhere():
    from matte_ros import errors
    from matte_ros import models
    from matte_ros import segmenters
    from matte_ros.segmenters import base
    assert segmenters.SegmenterError is base.SegmenterError is errors.SegmenterError
    assert issubclass(models.ModelError, errors.SegmenterError)

"""
Third-party segmenters: a plugin package registered through the entry-point group.

The test writes a tiny installed distribution into a temporary folder (a package with
one Segmenter subclass and its ``SPEC``, plus a ``.dist-info`` whose
``entry_points.txt`` names it under ``matte_ros.segmenters``), puts the folder on
``PYTHONPATH`` and checks that the plugin appears in ``matte-ros params`` and in the
generated yaml, runs through ``matte-ros process --segmenter``, and is declared and
served by a live node over DDS.  The registry's refusals (bad declarations, a plugin
that fails to import) are checked too: they leave the plugin out, never the others.
"""

import os
import subprocess
import sys
import textwrap

import cv2
from matte_ros import models
from matte_ros import params
from matte_ros.params import FLOAT
from matte_ros.params import Param
from matte_ros.segmenters import registry
from matte_ros.segmenters.spec import BackendUse
from matte_ros.segmenters.spec import SegmenterSpec
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PLUGIN = textwrap.dedent('''
    """A matte_ros segmenter plugin: bright pixels are foreground."""

    from matte_ros.params import FLOAT
    from matte_ros.params import Param
    from matte_ros.segmenters.base import Matte
    from matte_ros.segmenters.base import Segmenter
    from matte_ros.segmenters.spec import SegmenterSpec
    import numpy as np


    class Brightness(Segmenter):
        """Foreground = pixels whose mean colour is above brightness.level."""

        name = 'brightness'

        def _segment(self, frame):
            level = float(self.config['brightness.level']) * 255.0
            return Matte(alpha=(frame.mean(axis=2) > level).astype(np.float32))


    SPEC = SegmenterSpec(
        name='brightness',
        summary='bright pixels',
        description='pixels brighter than brightness.level (a plugin)',
        factory=Brightness,
        params=(Param('brightness.level', FLOAT, 0.5,
                      'Mean grey level (0-1) above which a pixel is foreground.',
                      low=0.0, high=1.0),),
    )
''')

ENTRY_POINTS = textwrap.dedent("""
    [matte_ros.segmenters]
    brightness = matte_brightness:SPEC
    broken = matte_brightness_missing:SPEC
""")


@pytest.fixture(scope='module')
def plugin_path(tmp_path_factory):
    """Return a folder holding the installed plugin distribution (and a broken entry)."""
    site = tmp_path_factory.mktemp('site')
    (site / 'matte_brightness.py').write_text(PLUGIN, encoding='utf-8')
    info = site / 'matte_brightness-0.1.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text('Metadata-Version: 2.1\nName: matte-brightness\n'
                                   'Version: 0.1\n', encoding='utf-8')
    (info / 'entry_points.txt').write_text(ENTRY_POINTS, encoding='utf-8')
    return str(site)


def plugin_env(plugin_path):
    """Return this process's environment with the worktree and the plugin importable."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([ROOT, plugin_path])
    return env


def cli(plugin_path, *argv):
    """Run ``matte-ros ARGV`` with the plugin installed; return the finished process."""
    return subprocess.run([sys.executable, '-m', 'matte_ros.cli.main'] + list(argv),
                          env=plugin_env(plugin_path), capture_output=True, text=True,
                          timeout=120)


def scene():
    """Return a dark noisy frame with a bright square, and the square's mask."""
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 60, size=(48, 64, 3), dtype=np.uint8)
    frame[10:30, 20:44] = 250
    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 20:44] = 255
    return frame, mask


# --- the command line -------------------------------------------------------------------------

def test_plugin_appears_in_params_and_the_yaml(plugin_path):
    table = cli(plugin_path, 'params')
    assert table.returncode == 0, table.stderr
    assert '| `brightness.level` | float | `0.5` | 0.0 … 1.0 | yes |' in table.stdout
    segmenter_row = next(line for line in table.stdout.splitlines()
                         if line.startswith('| `segmenter` |'))
    assert 'brightness' in segmenter_row and 'bright pixels' in segmenter_row
    yaml_text = cli(plugin_path, 'params', '--format', 'yaml').stdout
    assert '    brightness.level: 0.5' in yaml_text
    # The broken entry point is left out, with its reason, and the rest still works.
    assert 'broken' not in segmenter_row
    assert 'matte_brightness_missing' in table.stderr


def test_plugin_runs_through_process(plugin_path, tmp_path):
    frame, expected = scene()
    frames = tmp_path / 'in'
    frames.mkdir()
    for i in range(2):
        cv2.imwrite(str(frames / ('%03d.png' % i)), frame)
    out = tmp_path / 'out'
    done = cli(plugin_path, 'process', '--segmenter', 'brightness', '--input', str(frames),
               '--output', str(out), '--quiet', '--param', 'brightness.level=0.5')
    assert done.returncode == 0, done.stdout + done.stderr
    masks = sorted((out / 'mask').glob('*.png'))
    assert len(masks) == 2
    np.testing.assert_array_equal(cv2.imread(str(masks[0]), cv2.IMREAD_GRAYSCALE), expected)
    refused = cli(plugin_path, 'process', '--segmenter', 'brightness', '--input', str(frames),
                  '--output', str(out), '--quiet', '--param', 'brightness.level=2')
    assert refused.returncode != 0 and 'brightness.level' in refused.stderr


def test_without_the_plugin_the_name_is_refused(tmp_path):
    done = subprocess.run([sys.executable, '-m', 'matte_ros.cli.main', 'params'],
                          env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and 'brightness' not in done.stdout
    with pytest.raises(params.ParamError):
        params.validate('segmenter', 'brightness')


# --- the live node ----------------------------------------------------------------------------

@pytest.mark.dds
@pytest.mark.ros_integration
def test_live_node_declares_and_serves_the_plugin(plugin_path, client_node, tmp_path):
    from matte_ros.measure import processes
    from rcl_interfaces.msg import ParameterType
    from rcl_interfaces.srv import DescribeParameters
    from test_node_dds import activate
    from test_node_dds import Graph
    from test_node_dds import NS
    from test_node_dds import TARGET
    import rclpy

    argv = processes.node_command(
        namespace=NS, params={'segmenter': 'brightness', 'brightness.level': 0.5})
    node = processes.ManagedProcess(argv, plugin_env(plugin_path), str(tmp_path / 'node.log'))
    try:
        g = Graph(client_node)
        assert g.lifecycle.state() == 'unconfigured', node.output()
        client = client_node.create_client(DescribeParameters, TARGET + '/describe_parameters')
        assert client.wait_for_service(timeout_sec=20.0)
        future = client.call_async(DescribeParameters.Request(
            names=['brightness.level', 'segmenter']))
        rclpy.spin_until_future_complete(client_node, future, timeout_sec=20.0)
        level, segmenter = future.result().descriptors
        assert level.type == ParameterType.PARAMETER_DOUBLE
        assert 'Mean grey level' in level.description
        assert (level.floating_point_range[0].from_value,
                level.floating_point_range[0].to_value) == (0.0, 1.0)
        assert 'brightness' in segmenter.additional_constraints
        assert g.lifecycle.set_parameters({'brightness.level': 1.5})[0][0] is False
        activate(g)
        frame, expected = scene()
        g.send(frame, 7)
        mask = g.outputs_for(7)['mask']
        assert mask is not None, node.output()
        got = np.frombuffer(bytes(mask.data), np.uint8).reshape(mask.height, mask.step)
        np.testing.assert_array_equal(got[:, :mask.width], expected)
    finally:
        node.stop()


# --- the registry's refusals ------------------------------------------------------------------

def _spec(**changes):
    values = {'name': 'mine', 'summary': 's', 'description': 'd',
              'factory': lambda c, b: None, 'params': (Param('mine.x', FLOAT, 0.0, 'X.'),)}
    values.update(changes)
    return SegmenterSpec(**values)


@pytest.mark.parametrize('changes, why', [
    ({'name': 'Bad Name'}, 'lower case'),
    ({'name': 'rvm'}, 'registered already'),
    ({'factory': 'not callable'}, 'not callable'),
    ({'backends': (BackendUse('cuda', 'torch_cuda'),)}, 'include cpu'),
    ({'backends': (BackendUse('npu'), BackendUse('cpu'))}, 'must be among'),
    ({'params': (Param('threshold', FLOAT, 0.5, 'Shadows a core one.'),)}, 'declared already'),
    ({'params': (Param('other.x', FLOAT, 0.0, 'Outside its section.'),)}, 'mine.<key>'),
    ({'params': ('mine.x',)}, 'not a matte_ros.params.Param'),
])
def test_invalid_plugin_declarations_are_refused(changes, why):
    taken = set(params.BY_NAME) | set(registry.specs())
    with pytest.raises(registry.SpecError, match=why):
        registry.check(_spec(**changes), taken, plugin=True)
    assert registry.check(_spec(), taken, plugin=True).name == 'mine'


def test_not_a_spec_is_refused():
    with pytest.raises(registry.SpecError, match='expected a SegmenterSpec'):
        registry.check(object())


def test_builtin_declarations_agree_with_their_classes():
    for name, spec in registry.specs().items():
        assert spec.factory.name == name
        assert spec.backend_names()[-1] == 'cpu'
        for model in spec.models:
            assert models.get(model).name == model
        for param in spec.params:
            assert params.BY_NAME[param.name] is param

"""
The launch files: what they declare everywhere, and a real run where ``launch_ros`` exists.

``launch`` and ``launch_ros`` are not on PyPI, so on this development machine the files are
loaded as modules (they import ``launch`` only inside their functions) and what they
declare is checked against the node and the parameter schema: every argument has a
description, defaults are valid values, the node builder takes exactly the declared
arguments, the remapped names are the node's topic names.  Nothing is launched there.
On a robot (``launch_ros`` importable and ``matte_ros`` in the ament index) the launch
descriptions are also built and run: each node must reach *active*.
"""

import ast
import asyncio
import importlib.util
import inspect
import os
import threading
import time

from matte_ros import params
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH_DIR = os.path.join(ROOT, 'launch')
#: What the issue asks matte.launch.py to expose.
REQUIRED = ('namespace', 'camera_topic', 'params_file', 'segmenter', 'backend', 'log_level')


def _load(name):
    path = os.path.join(LAUNCH_DIR, name)
    spec = importlib.util.spec_from_file_location(name.replace('.', '_'), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _has(module):
    # The repo's own launch/ folder is a namespace package (no origin) when the repo root
    # is on sys.path: it is not the ROS launch library.
    spec = importlib.util.find_spec(module)
    return spec is not None and spec.origin is not None


@pytest.fixture(scope='module')
def matte():
    """Return launch/matte.launch.py loaded as a module."""
    return _load('matte.launch.py')


@pytest.fixture(scope='module')
def multi():
    """Return launch/multi_camera.launch.py loaded as a module."""
    return _load('multi_camera.launch.py')


# --- what the files declare (runs everywhere) -------------------------------------------------

def test_matte_launch_declares_every_required_argument_with_a_description(matte):
    for name in REQUIRED:
        assert name in matte.ARGUMENTS, 'matte.launch.py lacks argument ' + name
    for name, (default, description) in matte.ARGUMENTS.items():
        assert isinstance(default, str), name
        assert len(description) > 15 and description[0].isupper(), (name, description)


def test_argument_defaults_and_help_follow_the_parameter_schema(matte):
    args = matte.ARGUMENTS
    for name in ('segmenter', 'backend', 'input_transport'):
        default, description = args[name]
        spec = params.BY_NAME[name]
        assert default == '', '%s must default to "not given" (the params file decides)' % name
        assert 'schema default %s' % spec.default in description
        for choice in spec.choices:
            assert choice in description, '%s help omits %s' % (name, choice)
    params_file = args['params_file'][0].format(share=ROOT)
    assert os.path.isfile(params_file), params_file


def test_node_builder_takes_exactly_the_declared_arguments(matte, multi):
    takes = set(inspect.signature(matte.node_actions).parameters)
    assert takes == set(matte.ARGUMENTS)
    assert set(multi.SHARED_ARGUMENTS) | {'namespace'} == takes
    assert set(multi.ARGUMENTS) == set(multi.SHARED_ARGUMENTS) | set(multi.CAMERA_ARGUMENTS)
    for name, (_, description) in multi.ARGUMENTS.items():
        assert description, name


def _yaml_value(path, name):
    """Return the node parameter ``name`` as a params file (/**/matte) sets it."""
    import yaml
    with open(path, encoding='utf-8') as stream:
        document = yaml.safe_load(stream)
    (section,) = document.values()
    return section['ros__parameters'].get(name)


def _effective(parameters, name, default):
    """Return the value launch_ros gives the node: the last entry that sets it wins."""
    value = default
    for entry in parameters:
        if isinstance(entry, dict):
            value = entry.get(name, value)
        else:
            file_value = _yaml_value(entry, name)
            value = value if file_value is None else file_value
    return value


def test_the_params_file_decides_unless_the_command_line_overrides(matte, tmp_path):
    user = tmp_path / 'robot.yaml'
    user.write_text('/**/matte:\n  ros__parameters:\n    segmenter: rvm\n'
                    '    backend: tensorrt\n')
    not_given = {name: default for name, (default, _) in matte.ARGUMENTS.items()}
    parameters = matte.node_parameters(str(user), not_given)
    assert parameters == [str(user)]
    assert _effective(parameters, 'segmenter', params.BY_NAME['segmenter'].default) == 'rvm'
    assert _effective(parameters, 'backend', params.BY_NAME['backend'].default) == 'tensorrt'
    # not in the file: the schema default stays in charge
    assert _effective(parameters, 'input_transport',
                      params.BY_NAME['input_transport'].default) == 'raw'
    given = dict(not_given, backend='cpu', input_transport='compressed')
    parameters = matte.node_parameters(str(user), given)
    assert parameters == [str(user), {'backend': 'cpu', 'input_transport': 'compressed'}]
    assert _effective(parameters, 'backend', 'auto') == 'cpu'
    assert _effective(parameters, 'segmenter', 'bgsub') == 'rvm'  # still the file's
    # only the overridable arguments become parameters
    assert matte.node_parameters('f.yaml', {'log_level': 'debug', 'namespace': '/x'}) == \
        ['f.yaml']


def test_the_shipped_params_file_is_what_the_launch_runs_by_default(matte):
    shipped = matte.ARGUMENTS['params_file'][0].format(share=ROOT)
    not_given = {name: default for name, (default, _) in matte.ARGUMENTS.items()}
    parameters = matte.node_parameters(shipped, not_given)
    for name in matte.OVERRIDES:
        assert _effective(parameters, name, None) == params.BY_NAME[name].default


def _remapped_names(path):
    """Return the first element of each tuple in the ``remappings=`` list of a launch file."""
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == 'remappings':
            for item in node.value.elts:
                names.add(ast.literal_eval(item.elts[0]))
    return names


def test_remapped_names_are_the_node_input_topics():
    from matte_ros.ros import node
    remapped = _remapped_names(os.path.join(LAUNCH_DIR, 'matte.launch.py'))
    assert remapped == {node.INPUT_TOPIC, node.COMPRESSED_INPUT_TOPIC, node.CAMERA_INFO_TOPIC}


def test_launch_files_are_installed_by_setup_py():
    with open(os.path.join(ROOT, 'setup.py'), encoding='utf-8') as f:
        text = f.read()
    assert "glob('launch/*.launch.py')" in text
    assert {'matte.launch.py', 'multi_camera.launch.py'} <= set(os.listdir(LAUNCH_DIR))


@pytest.mark.parametrize('text, expected', [
    ('[/front, /rear]', ['/front', '/rear']),
    ("['front', 'rear']", ['/front', '/rear']),
    ('front,rear,front', ['/front', '/rear']),
    ('robot1/cam_left', ['/robot1/cam_left']),
    ('[camera]', ['/camera']),
])
def test_camera_list_argument_is_parsed(multi, text, expected):
    assert multi.parse_cameras(text) == expected


@pytest.mark.parametrize('text', ['', '[]', '[1cam]', 'front,re-ar'])
def test_bad_camera_lists_are_refused(multi, text):
    with pytest.raises(ValueError):
        multi.parse_cameras(text)


@pytest.mark.skipif(_has('launch'), reason='launch is importable: the run tests below apply')
def test_without_launch_the_files_load_but_do_not_run(matte, multi):
    """Where launch is absent the modules load (above) and say so when asked to run."""
    for module in (matte, multi):
        with pytest.raises(ImportError) as info:
            module.generate_launch_description()
        assert info.value.name in ('launch', 'launch_ros', 'ament_index_python')


# --- real runs (robots: launch_ros importable, matte_ros built and sourced) -------------------

def _share_or_skip():
    if not (_has('launch') and _has('launch_ros')):
        pytest.skip('launch / launch_ros are not installed (not on PyPI; robots have them)')
    from ament_index_python.packages import get_package_share_directory
    from ament_index_python.packages import PackageNotFoundError
    try:
        return get_package_share_directory('matte_ros')
    except PackageNotFoundError:
        pytest.skip('matte_ros is not in the ament index (colcon build and source it)')


def _declared(description):
    from launch.actions import DeclareLaunchArgument
    return {e.name: e for e in description.entities if isinstance(e, DeclareLaunchArgument)}


def test_built_descriptions_declare_the_arguments():
    _share_or_skip()
    for name in ('matte.launch.py', 'multi_camera.launch.py'):
        module = _load(name)
        declared = _declared(module.generate_launch_description())
        assert set(declared) == set(module.ARGUMENTS)
        for arg, action in declared.items():
            assert action.description == module.ARGUMENTS[arg][1]


def _run_until_active(launch_file, launch_args, targets, client_node, timeout=90.0):
    """Run ``launch_file`` with ``launch_args``; return the lifecycle states of ``targets``."""
    from launch import LaunchDescription
    from launch import LaunchService
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from matte_ros.ros.lifecycle_client import LifecycleClient

    service = LaunchService()
    service.include_launch_description(LaunchDescription([IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(LAUNCH_DIR, launch_file)),
        launch_arguments=list(launch_args.items()))]))
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=lambda: loop.run_until_complete(service.run_async()),
                              daemon=True)
    runner.start()
    states = {}
    try:
        clients = {t: LifecycleClient(client_node, t, timeout=5.0) for t in targets}
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for target, client in clients.items():
                try:
                    states[target] = client.state()
                except Exception:  # noqa: B902 - the node may not be up yet
                    states[target] = 'unreachable'
            if all(s == 'active' for s in states.values()):
                break
            time.sleep(0.5)
    finally:
        loop.call_soon_threadsafe(service.shutdown)
        runner.join(30.0)
    return states


def test_matte_launch_brings_the_node_to_active(client_node):
    _share_or_skip()
    states = _run_until_active('matte.launch.py',
                               {'namespace': '/launch_cam', 'segmenter': 'framediff',
                                'backend': 'cpu', 'log_level': 'warn'},
                               ['/launch_cam/matte'], client_node)
    assert states == {'/launch_cam/matte': 'active'}


def test_multi_camera_launch_brings_one_node_per_camera_to_active(client_node):
    _share_or_skip()
    states = _run_until_active('multi_camera.launch.py',
                               {'cameras': '[/left, /right]', 'segmenter': 'framediff',
                                'backend': 'cpu'},
                               ['/left/matte', '/right/matte'], client_node)
    assert states == {'/left/matte': 'active', '/right/matte': 'active'}


# --- one process for every camera (multi_camera.launch.py one_process) ------------------------

def test_one_process_is_the_default_and_only_true_or_false_is_taken(multi):
    assert multi.one_process(multi.ARGUMENTS['one_process'][0]) is True
    assert multi.one_process(' False ') is False
    for bad in ('', 'yes', '1'):
        with pytest.raises(ValueError):
            multi.one_process(bad)


def test_container_builder_takes_the_shared_arguments_and_the_cameras(multi):
    takes = set(inspect.signature(multi.container_action).parameters)
    assert takes == set(multi.SHARED_ARGUMENTS) | {'cameras'}


def test_container_parameters_are_the_nodes_then_the_containers_own(multi, tmp_path):
    from matte_ros.ros import multi as container
    user = str(tmp_path / 'robot.yaml')
    got = multi.container_parameters(['/a', '/b'], user, {'segmenter': 'rvm', 'backend': ''})
    assert got[:-1] == [user, {'segmenter': 'rvm'}]
    assert got[-1] == {'cameras': ['/a', '/b'], 'autostart': True}
    assert set(got[-1]) == set(container.PARAMETERS)
    # what the camera nodes get must not collide with the container's own parameters
    assert not set(container.PARAMETERS) & set(params.BY_NAME)


def test_container_remappings_are_the_node_input_topics(multi):
    from matte_ros.ros import node
    remapped = multi.container_remappings('image_raw', 'info')
    inputs = {node.INPUT_TOPIC, node.COMPRESSED_INPUT_TOPIC, node.CAMERA_INFO_TOPIC}
    assert {name for name, _ in remapped} == inputs
    assert dict(remapped)[node.COMPRESSED_INPUT_TOPIC] == 'image_raw/compressed'


def test_the_container_executable_is_a_console_script():
    with open(os.path.join(ROOT, 'setup.py'), encoding='utf-8') as f:
        text = f.read()
    assert "'matte_multi_node = matte_ros.ros.multi:main'" in text


def test_multi_camera_launch_in_separate_processes_brings_each_camera_to_active(client_node):
    _share_or_skip()
    states = _run_until_active('multi_camera.launch.py',
                               {'cameras': '[/left2, /right2]', 'segmenter': 'framediff',
                                'backend': 'cpu', 'one_process': 'false'},
                               ['/left2/matte', '/right2/matte'], client_node)
    assert states == {'/left2/matte': 'active', '/right2/matte': 'active'}

"""
The core and the CLI import without ROS 2: only the ROS layer and the node rigs need it.

A robot or a laptop may run ``matte-ros process`` / ``eval`` / ``models`` / ``params``
without a sourced ROS distribution.  Each check runs in a fresh interpreter in which the
ROS packages cannot be imported (``sys.modules[name] = None`` makes any import of them
fail), so a top-level ROS import anywhere outside :data:`ROS_MODULES` shows.
"""

import subprocess
import sys
import textwrap

#: Python packages of ROS 2 that matte_ros uses.
ROS_PACKAGES = ('rclpy', 'lifecycle_msgs', 'sensor_msgs', 'std_msgs', 'diagnostic_msgs',
                'rcl_interfaces', 'builtin_interfaces', 'std_srvs', 'ament_index_python')
#: Modules that are the ROS layer, or rigs and demos that drive the node over DDS.
ROS_MODULES = {'matte_ros.demo.__main__', 'matte_ros.measure.bench_graph',
               'matte_ros.measure.camera_rig', 'matte_ros.measure.echo',
               'matte_ros.measure.player', 'matte_ros.measure.recorder'}

BLOCK = 'import sys\nfor name in %r:\n    sys.modules[name] = None\n' % (ROS_PACKAGES,)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', BLOCK + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300)


def test_every_core_module_imports_without_ros():
    done = _run("""
        import importlib, pkgutil
        import matte_ros
        for info in pkgutil.walk_packages(matte_ros.__path__, 'matte_ros.'):
            if info.name.startswith('matte_ros.ros.') or info.name in %r:
                continue
            try:
                importlib.import_module(info.name)
            except ImportError as exc:   # optional libraries (torch ...) may be absent
                if (exc.name or '').split('.')[0] in %r:
                    print('needs ROS:', info.name, exc)
        """ % (ROS_MODULES, ROS_PACKAGES))
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'needs ROS' not in done.stdout, done.stdout
    # the block works: the ROS layer itself does not import
    assert _run('import matte_ros.ros.node').returncode != 0


def test_cli_commands_start_without_ros():
    for command in ('process', 'eval', 'models', 'params', 'doctor', 'bench'):
        done = _run("""
            sys.argv = ['matte-ros', %r, '--help']
            from matte_ros.cli.main import main
            main()
            """ % command)
        assert done.returncode == 0, '%s: %s' % (command, done.stderr[-2000:])
        assert 'usage:' in done.stdout

"""
Launch one ``matte`` node per camera namespace, each brought to *active*.

    ros2 launch matte_ros multi_camera.launch.py cameras:='[/front, /rear]'
    ros2 launch matte_ros multi_camera.launch.py cameras:=front,rear segmenter:=framediff

Camera ``/front`` gets ``/front/matte`` reading ``/front/image`` (``camera_topic`` and
``camera_info_topic`` are relative names, resolved in each camera's namespace) and
publishing ``/front/matte/{mask,alpha,composite,roi,camera_info}``.  All nodes share the
other arguments of ``matte.launch.py``.  Like that file, it imports ``launch`` only inside
functions, so its argument table can be inspected without a ROS installation.
"""

import importlib.util
import os

#: Arguments of this file beyond the shared ones of matte.launch.py: name → (default, help).
CAMERA_ARGUMENTS = {
    'cameras': ('[camera]', 'Camera namespaces, one node each: a YAML list such as '
                            '"[/front, /rear]" or comma-separated "front,rear".'),
}
#: Arguments of matte.launch.py that every camera's node shares (not ``namespace``).
SHARED_ARGUMENTS = ('camera_topic', 'camera_info_topic', 'input_transport', 'params_file',
                    'segmenter', 'backend', 'log_level')


def _load_matte_launch():
    """Import ``matte.launch.py`` from beside this file (share/matte_ros/launch)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'matte.launch.py')
    spec = importlib.util.spec_from_file_location('matte_launch', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


matte_launch = _load_matte_launch()
ARGUMENTS = dict(CAMERA_ARGUMENTS, **{name: matte_launch.ARGUMENTS[name]
                                      for name in SHARED_ARGUMENTS})


def parse_cameras(text):
    """
    Return the absolute camera namespaces named in ``text``, in order, without repeats.

    Accepts ``[/a, b]``, ``['a', 'b']`` and ``a,b``; raises ValueError for an empty list
    or a name that is not a valid ROS namespace.
    """
    names = []
    for item in text.strip().strip('[]').split(','):
        name = item.strip().strip('\'"').strip()
        if not name:
            continue
        name = '/' + name.strip('/')
        valid = all(part and (part[0].isalpha() or part[0] == '_') and
                    all(c.isalnum() or c == '_' for c in part)
                    for part in name[1:].split('/'))
        if not valid:
            raise ValueError('camera namespace %r is not a valid ROS namespace' % name)
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError('cameras lists no namespace (got %r)' % text)
    return names


def _nodes_for_cameras(context):
    from launch.substitutions import LaunchConfiguration
    cameras = parse_cameras(LaunchConfiguration('cameras').perform(context))
    shared = matte_launch.resolved(context, SHARED_ARGUMENTS)
    actions = []
    for namespace in cameras:
        actions += matte_launch.node_actions(namespace=namespace, **shared)
    return actions


def generate_launch_description():
    """Declare the arguments; one node per camera is made when ``cameras`` is known."""
    from ament_index_python.packages import get_package_share_directory
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument
    from launch.actions import OpaqueFunction
    share = get_package_share_directory(matte_launch.PACKAGE)
    cameras = [DeclareLaunchArgument(name, default_value=default, description=description)
               for name, (default, description) in CAMERA_ARGUMENTS.items()]
    return LaunchDescription(
        cameras + matte_launch.declare_arguments(share, SHARED_ARGUMENTS)
        + [matte_launch.fastdds_profile(share), OpaqueFunction(function=_nodes_for_cameras)])

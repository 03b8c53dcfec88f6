"""
Launch the ``matte`` nodes of several cameras: in one process (default) or one each.

    ros2 launch matte_ros multi_camera.launch.py cameras:='[/front, /rear]'
    ros2 launch matte_ros multi_camera.launch.py cameras:=front,rear segmenter:=framediff
    ros2 launch matte_ros multi_camera.launch.py cameras:=front,rear one_process:=false

Camera ``/front`` gets ``/front/matte`` reading ``/front/image`` (``camera_topic`` and
``camera_info_topic`` are relative names, resolved in each camera's namespace) and
publishing ``/front/matte/{mask,alpha,composite,roi,camera_info}``.  All nodes share the
other arguments of ``matte.launch.py``.

``one_process:=true`` starts one ``matte_multi_node`` (:mod:`matte_ros.ros.multi`): one
lifecycle node per camera in one process, which loads the model once and brings every
camera to *active* itself (``autostart``; launch_ros' lifecycle events address one node
per process).  ``one_process:=false`` starts one ``matte_node`` per camera, each
configured and activated by launch events as in ``matte.launch.py``.  Like that file,
this one imports ``launch`` only inside functions, so its argument table and the pure
functions below can be inspected and tested without a ROS installation.
"""

import importlib.util
import os

#: Arguments of this file beyond the shared ones of matte.launch.py: name → (default, help).
CAMERA_ARGUMENTS = {
    'cameras': ('[camera]', 'Camera namespaces, one node each: a YAML list such as '
                            '"[/front, /rear]" or comma-separated "front,rear".'),
    'one_process': ('true', 'True: one matte_multi_node process serves every camera and loads '
                            'the model once; false: one matte_node process per camera.'),
}
#: The container's executable (matte_ros.ros.multi).
CONTAINER_EXECUTABLE = 'matte_multi_node'
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


def one_process(text):
    """Return the ``one_process`` argument as a bool (ValueError for anything else)."""
    value = text.strip().lower()
    if value not in ('true', 'false'):
        raise ValueError('one_process must be true or false (got %r)' % text)
    return value == 'true'


def container_parameters(cameras, params_file, given):
    """
    Return the container's ``parameters`` list: what each camera's node gets, then its own.

    The params file and the overrides (:func:`matte.launch.node_parameters`) reach every
    camera node of the process; ``cameras`` and ``autostart`` are the container's (the
    camera nodes do not declare them).
    """
    return matte_launch.node_parameters(params_file, given) + [
        {'cameras': list(cameras), 'autostart': True}]


def container_remappings(camera_topic, camera_info_topic):
    """
    Return the container's remappings: the node's input names onto the camera's.

    They apply to every node of the process, so relative names resolve in each camera's
    namespace (``image_raw`` → ``/front/image_raw``); an absolute name would point every
    camera at one topic.
    """
    return [('image', camera_topic), ('image/compressed', camera_topic + '/compressed'),
            ('camera_info', camera_info_topic)]


def container_action(cameras, camera_topic, camera_info_topic, input_transport, params_file,
                     segmenter, backend, log_level):
    """
    Return the one ``matte_multi_node`` process serving ``cameras``.

    No ``name`` is given: launch_ros would pass it as ``__node``, which renames every node
    of the process.
    """
    from launch_ros.actions import Node
    return Node(
        package=matte_launch.PACKAGE, executable=CONTAINER_EXECUTABLE, output='screen',
        parameters=container_parameters(cameras, params_file, {
            'segmenter': segmenter, 'backend': backend, 'input_transport': input_transport}),
        remappings=container_remappings(camera_topic, camera_info_topic),
        arguments=['--ros-args', '--log-level', log_level])


def _nodes_for_cameras(context):
    from launch.substitutions import LaunchConfiguration
    cameras = parse_cameras(LaunchConfiguration('cameras').perform(context))
    shared = matte_launch.resolved(context, SHARED_ARGUMENTS)
    if one_process(LaunchConfiguration('one_process').perform(context)):
        return [container_action(cameras, **shared)]
    actions = []
    for namespace in cameras:
        actions += matte_launch.node_actions(namespace=namespace, **shared)
    return actions


def generate_launch_description():
    """Declare the arguments; the camera nodes are made when ``cameras`` is known."""
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

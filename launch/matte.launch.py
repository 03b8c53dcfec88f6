"""
Launch the ``matte`` lifecycle node and bring it to *active*.

Works on Humble and newer: the node is configured by an event once the process
starts, and activated by an event handler when it reaches *inactive* (no reliance on
newer distributions' ``autostart``).  The Fast DDS large-frame profile shipped in
``config/fastdds.xml`` is exported unless one is set already; the camera side needs
the same profile for best-effort frames above ~512 KB.

    ros2 launch matte_ros matte.launch.py namespace:=/cam camera_topic:=/cam/image_raw
    ros2 launch matte_ros matte.launch.py input_transport:=compressed camera_topic:=/cam/raw
    (the node then reads /cam/raw/compressed)

**Which value wins**: the params file (``params_file``, by default the shipped
``config/matte.yaml``) is in charge, and the schema's defaults behind it.  ``segmenter``,
``backend`` and ``input_transport`` given on the command line override it; not given
(their launch default is empty) they leave it alone (:func:`node_parameters`).

``launch`` and ``launch_ros`` are imported inside the functions, so that this module's
table of arguments can be read (and tested) where they are not installed.  The
``segmenter`` and ``backend`` help lists what the parameter schema offers (plugins
included).
"""

import os

from matte_ros import params

PACKAGE = 'matte_ros'
NODE_NAME = 'matte'
EXECUTABLE = 'matte_node'


def _one_of(name):
    """Return a parameter's choices from the schema as help text: 'a, b or c'."""
    choices = [str(c) for c in params.BY_NAME[name].choices]
    return ', '.join(choices[:-1]) + ' or ' + choices[-1]


#: Launch arguments: name → (default, description).  ``{share}`` is the package's share
#: directory.  Tests read this table.
ARGUMENTS = {
    'namespace': ('', 'Namespace of the node, e.g. /cam (topics become /cam/matte/mask ...).'),
    'camera_topic': ('image', 'Raw image topic to segment (remapped onto the node topic image; '
                              'with input_transport compressed the node reads '
                              '<camera_topic>/compressed).'),
    'camera_info_topic': ('camera_info', 'CameraInfo topic of the camera, republished as '
                                         '~/camera_info with the header of each output frame.'),
    'input_transport': ('', 'Input transport: raw (sensor_msgs/Image) or compressed '
                            '(CompressedImage, jpeg/png, on <camera_topic>/compressed). '
                            'Empty: the params file decides (schema default raw).'),
    'params_file': (os.path.join('{share}', 'config', 'matte.yaml'),
                    'Parameter file (/**/matte: ros__parameters: ...).'),
    'segmenter': ('', 'Segmenter: %s. Empty: the params file decides (schema default %s).'
                  % (_one_of('segmenter'), params.BY_NAME['segmenter'].default)),
    'backend': ('', 'Backend: %s. Empty: the params file decides (schema default %s).'
                % (_one_of('backend'), params.BY_NAME['backend'].default)),
    'log_level': ('info', 'Log level of the node: debug, info, warn, error.'),
}


#: Launch arguments that, when given, override the params file's node parameter.
OVERRIDES = ('segmenter', 'backend', 'input_transport')


def node_parameters(params_file, given):
    """
    Return the node's ``parameters`` list: the params file, then what the command line set.

    ``given`` maps launch argument names to their values as strings; those of
    :data:`OVERRIDES` that are non-empty override the file (later entries win in
    launch_ros), empty ones (not given) leave the file and the schema defaults in charge.
    """
    overrides = {name: given[name] for name in OVERRIDES if given.get(name, '')}
    return [params_file, overrides] if overrides else [params_file]


def profile_variable():
    """Return the Fast DDS profile variable this distribution reads."""
    distro = os.environ.get('ROS_DISTRO', '')
    return ('FASTRTPS_DEFAULT_PROFILES_FILE' if distro in ('humble', 'iron', 'jazzy')
            else 'FASTDDS_DEFAULT_PROFILES_FILE')


def declare_arguments(share, names=None):
    """Return a DeclareLaunchArgument for each entry of ARGUMENTS (or of ``names``)."""
    from launch.actions import DeclareLaunchArgument
    return [DeclareLaunchArgument(name, default_value=default.format(share=share),
                                  description=description)
            for name, (default, description) in ARGUMENTS.items()
            if names is None or name in names]


def fastdds_profile(share):
    """Return the action that exports the shipped Fast DDS profile unless one is set."""
    from launch.actions import SetEnvironmentVariable
    from launch.substitutions import EnvironmentVariable
    variable = profile_variable()
    return SetEnvironmentVariable(variable, EnvironmentVariable(
        variable, default_value=os.path.join(share, 'config', 'fastdds.xml')))


def node_actions(namespace, camera_topic, camera_info_topic, input_transport, params_file,
                 segmenter, backend, log_level):
    """
    Return the node and its configure → activate sequence as launch actions.

    Each argument is a string (the launch arguments' values, resolved by
    :func:`launch_setup`); ``multi_camera.launch.py`` calls it once per camera namespace.
    """
    from launch.actions import EmitEvent
    from launch.actions import RegisterEventHandler
    from launch.events import matches_action
    from launch_ros.actions import LifecycleNode
    from launch_ros.event_handlers import OnStateTransition
    from launch_ros.events.lifecycle import ChangeState
    from lifecycle_msgs.msg import Transition

    node = LifecycleNode(
        package=PACKAGE, executable=EXECUTABLE, name=NODE_NAME, namespace=namespace,
        output='screen',
        parameters=node_parameters(params_file, {'segmenter': segmenter, 'backend': backend,
                                                 'input_transport': input_transport}),
        remappings=[('image', camera_topic),
                    ('image/compressed', [camera_topic, '/compressed']),
                    ('camera_info', camera_info_topic)],
        arguments=['--ros-args', '--log-level', log_level])
    configure = EmitEvent(event=ChangeState(
        lifecycle_node_matcher=matches_action(node),
        transition_id=Transition.TRANSITION_CONFIGURE))
    activate_when_inactive = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=node, start_state='configuring', goal_state='inactive',
        entities=[EmitEvent(event=ChangeState(
            lifecycle_node_matcher=matches_action(node),
            transition_id=Transition.TRANSITION_ACTIVATE))]))
    return [activate_when_inactive, node, configure]


def resolved(context, names):
    """Return {name: the launch argument's value as a string} for ``names``."""
    from launch.substitutions import LaunchConfiguration
    return {name: LaunchConfiguration(name).perform(context) for name in names}


def launch_setup(context):
    """Return the node actions with every launch argument resolved (see node_parameters)."""
    return node_actions(**resolved(context, ARGUMENTS))


def generate_launch_description():
    """Declare the arguments, the node, and the configure → activate sequence."""
    from ament_index_python.packages import get_package_share_directory
    from launch import LaunchDescription
    from launch.actions import OpaqueFunction
    share = get_package_share_directory(PACKAGE)
    return LaunchDescription(declare_arguments(share) + [fastdds_profile(share)]
                             + [OpaqueFunction(function=launch_setup)])

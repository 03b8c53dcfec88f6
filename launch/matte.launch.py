"""
Launch the ``matte`` lifecycle node and bring it to *active*.

Works on Humble and newer: the node is configured by an event once the process
starts, and activated by an event handler when it reaches *inactive* (no reliance on
newer distributions' ``autostart``).  The Fast DDS large-frame profile shipped in
``config/fastdds.xml`` is exported unless one is set already; the camera side needs
the same profile for best-effort frames above ~512 KB.

    ros2 launch matte_ros matte.launch.py namespace:=/cam camera_topic:=/cam/image_raw
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.actions import EmitEvent
from launch.actions import RegisterEventHandler
from launch.actions import SetEnvironmentVariable
from launch.events import matches_action
from launch.substitutions import EnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

PACKAGE = 'matte_ros'

#: Launch arguments: name → (default, description).  Tests read this table.
ARGUMENTS = {
    'namespace': ('', 'Namespace of the node, e.g. /cam (topics become /cam/matte/mask ...).'),
    'camera_topic': ('image', 'Image topic to segment (remapped onto the node\'s "image").'),
    'params_file': (os.path.join('{share}', 'config', 'matte.yaml'),
                    'Parameter file (matte: ros__parameters: ...).'),
    'segmenter': ('bgsub', 'Segmenter: bgsub, framediff, rvm, selfie or instance.'),
    'backend': ('auto', 'Backend: auto, cpu, cuda, tensorrt or vpi.'),
    'log_level': ('info', 'Log level of the node: debug, info, warn, error.'),
}


def _profile_variable():
    distro = os.environ.get('ROS_DISTRO', '')
    return ('FASTRTPS_DEFAULT_PROFILES_FILE' if distro in ('humble', 'iron', 'jazzy')
            else 'FASTDDS_DEFAULT_PROFILES_FILE')


def generate_launch_description():
    """Declare the arguments, the node, and the configure → activate sequence."""
    share = get_package_share_directory(PACKAGE)
    arguments = [DeclareLaunchArgument(name, default_value=default.format(share=share),
                                       description=description)
                 for name, (default, description) in ARGUMENTS.items()]
    profile = _profile_variable()
    node = LifecycleNode(
        package=PACKAGE, executable='matte_node', name='matte',
        namespace=LaunchConfiguration('namespace'), output='screen',
        parameters=[LaunchConfiguration('params_file'),
                    {'segmenter': LaunchConfiguration('segmenter'),
                     'backend': LaunchConfiguration('backend')}],
        remappings=[('image', LaunchConfiguration('camera_topic'))],
        arguments=['--ros-args', '--log-level', LaunchConfiguration('log_level')])
    configure = EmitEvent(event=ChangeState(
        lifecycle_node_matcher=matches_action(node),
        transition_id=Transition.TRANSITION_CONFIGURE))
    activate_when_inactive = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=node, start_state='configuring', goal_state='inactive',
        entities=[EmitEvent(event=ChangeState(
            lifecycle_node_matcher=matches_action(node),
            transition_id=Transition.TRANSITION_ACTIVATE))]))
    return LaunchDescription(arguments + [
        SetEnvironmentVariable(profile, EnvironmentVariable(
            profile, default_value=os.path.join(share, 'config', 'fastdds.xml'))),
        activate_when_inactive,
        node,
        configure,
    ])

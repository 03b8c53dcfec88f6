"""
The matte container: one process, one ``matte`` lifecycle node per camera, one model.

rclpy has no component containers, so this module is the Python counterpart of one: a
small node ``matte_container`` reads the parameter ``cameras`` (camera namespaces) and
creates a full :class:`~matte_ros.ros.node.MatteNode` named ``matte`` in each
namespace, all spun by one executor thread::

    matte_multi_node --ros-args -p cameras:='[front, rear]' -p autostart:=true

Each camera's node is the single-camera node unchanged: its own lifecycle (configure,
activate, deactivate ... through ``/front/matte/change_state``), its topics under its
namespace (``/front/matte/alpha`` reading ``/front/image``), every output with the
input's header, its own worker thread and latest-frame mailbox, its own temporal state
(RVM's recurrent state, the background model, the stabiliser), ``~/reset`` and
parameters, and its own ``/diagnostics`` entry.  What the cameras share is what
:mod:`matte_ros.shared_models` loads once per process: the ONNX Runtime session of rvm,
the LiteRT interpreter of selfie.  The cameras take turns on it, first come first served
(no camera is starved; a slow camera delays the others by at most its own call).

Parameters reach the camera nodes as they reach ``matte_node``: a params file's
``/**/matte:`` section applies to every camera, a ``/front/matte:`` section to one;
``-p name:=value`` and ``-r image:=image_raw`` (relative names, resolved in each
camera's namespace) to all nodes of the process.  The container's own parameters:

- ``cameras`` (string array, read-only): the namespaces, e.g. ``[front, /robot/rear]``;
  empty, repeated or invalid names are refused and the process exits with status 2;
- ``autostart`` (bool, read-only, default false): configure and activate every camera
  at start (what ``multi_camera.launch.py`` asks for; launch_ros' lifecycle events
  address one node per process).  A camera that fails to configure stays
  *unconfigured*, logs why, and the others serve.
"""

import sys
from typing import List
from typing import Optional

from matte_ros import heap
from matte_ros import shared_models
from matte_ros.ros import dds
from matte_ros.ros import executor
from matte_ros.ros.node import MatteNode
from matte_ros.ros.node import NODE_NAME
from rcl_interfaces.msg import ParameterDescriptor
from rcl_interfaces.msg import ParameterType
import rclpy
import rclpy.exceptions
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.validate_namespace import validate_namespace

CONTAINER_NAME = 'matte_container'
#: rclpy's refusal of a parameter override (a wrong type, a value out of range).
_PARAMETER_ERROR = getattr(rclpy.exceptions, 'ParameterException', ValueError)
#: The container's parameters: name → (default, type, description).
PARAMETERS = {
    'cameras': (['camera'], ParameterType.PARAMETER_STRING_ARRAY,
                'Camera namespaces, one matte node each, e.g. [front, /robot/rear].'),
    'autostart': (False, ParameterType.PARAMETER_BOOL,
                  'Configure and activate every camera node at start.'),
}


def camera_namespaces(names) -> List[str]:
    """
    Return ``names`` as absolute ROS namespaces, in order.

    Raises ValueError for an empty list, a repeated namespace or an invalid one (the
    message names it and says why, from rclpy's own validation).
    """
    if isinstance(names, str) or not names:
        raise ValueError('cameras must list at least one namespace (got %r)' % (names,))
    out = []
    for name in names:
        namespace = '/' + str(name).strip().strip('/')
        try:
            validate_namespace(namespace)
        except Exception as exc:  # noqa: B902 - rclpy's InvalidNamespaceException
            raise ValueError('camera namespace %r is invalid: %s' % (name, exc))
        if namespace in out:
            raise ValueError('camera namespace %s is listed twice' % namespace)
        out.append(namespace)
    return out


class MatteContainer(Node):
    """
    The container node: its ``cameras`` parameter, and the camera nodes it made.

    ``camera_overrides`` (in-process use, tests) are parameter overrides given to every
    camera node, as ``-p`` does from the command line.
    """

    def __init__(self, camera_overrides: Optional[list] = None, **kwargs):
        self.cameras: List[MatteNode] = []
        self._counted = 0   # cameras counted in shared_models.CAMERAS
        super().__init__(CONTAINER_NAME, **kwargs)
        values = {}
        for name, (default, kind, description) in PARAMETERS.items():
            descriptor = ParameterDescriptor(description=description, type=kind,
                                             read_only=True)
            try:
                values[name] = self.declare_parameter(name, default, descriptor).value
            except Exception as exc:  # noqa: B902 - a value of the wrong type
                self.destroy_node()
                raise ValueError('parameter %s: %s' % (name, exc))
        try:
            self.namespaces = camera_namespaces(list(values['cameras']))
        except ValueError:
            self.destroy_node()
            raise
        self.autostart = bool(values['autostart'])
        shared_models.add_cameras(len(self.namespaces))   # the memory budget's batch
        self._counted = len(self.namespaces)
        try:
            for namespace in self.namespaces:
                self.cameras.append(MatteNode(
                    NODE_NAME, namespace=namespace, context=self.context,
                    parameter_overrides=list(camera_overrides or [])))
        except BaseException:   # noqa: B902 - a bad override: undo, then report it
            self._uncount()
            for node in self.cameras:
                node.destroy_node()
            self.cameras = []
            self.destroy_node()
            raise

    def start_cameras(self) -> int:
        """Configure and activate every camera (``autostart``); return how many are active."""
        active = 0
        for node in self.cameras:
            name = node.get_fully_qualified_name()
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                self.get_logger().error('%s did not configure (%s): it stays unconfigured'
                                        % (name, node.last_reconfigure_error))
                continue
            if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                self.get_logger().error('%s did not activate' % name)
                continue
            active += 1
        self.get_logger().info('%d of %d cameras active; %d model(s) loaded in this process'
                               % (active, len(self.cameras), shared_models.CACHE.loads))
        return active

    def nodes(self) -> list:
        """Return this node followed by its camera nodes: what the executor spins."""
        return [self] + self.cameras

    def stop(self) -> None:
        """Stop every camera's worker (before the nodes are destroyed)."""
        try:
            for node in self.cameras:
                node.stop()
        finally:
            self._uncount()

    def _uncount(self) -> None:
        shared_models.add_cameras(-self._counted)
        self._counted = 0


def main(args=None):
    """Run the container until SIGINT/SIGTERM (``matte_multi_node --ros-args ...``)."""
    dds.use_large_frame_profile()
    heap.keep_freed_frames()
    rclpy.init(args=args)
    try:
        container = MatteContainer()
    except (ValueError, _PARAMETER_ERROR) as exc:   # a bad camera list or override
        sys.stderr.write('matte_container: %s\n' % exc)
        rclpy.try_shutdown()
        sys.exit(2)
    if container.autostart:
        container.start_cameras()
    executor.spin_nodes(container.nodes(), on_stop=container.stop)


if __name__ == '__main__':
    main()

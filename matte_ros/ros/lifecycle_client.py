"""
A small client for another node's lifecycle, parameter and reset services.

Used by the demo, the benchmarks and the integration tests: what ``ros2 lifecycle set``
and ``ros2 param set`` would do, from Python (ros2cli is not on PyPI).
"""

from typing import Any
from typing import Dict
from typing import Optional

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from lifecycle_msgs.srv import GetState
from rcl_interfaces.msg import Parameter
from rcl_interfaces.msg import ParameterType
from rcl_interfaces.msg import ParameterValue
from rcl_interfaces.srv import SetParameters
import rclpy
from std_srvs.srv import Trigger

TRANSITIONS = {
    'configure': Transition.TRANSITION_CONFIGURE,
    'activate': Transition.TRANSITION_ACTIVATE,
    'deactivate': Transition.TRANSITION_DEACTIVATE,
    'cleanup': Transition.TRANSITION_CLEANUP,
    'shutdown': Transition.TRANSITION_UNCONFIGURED_SHUTDOWN,
}


class ServiceTimeout(RuntimeError):
    """A service did not appear or did not answer in time."""


def parameter_msg(name: str, value: Any) -> Parameter:
    """Build an ``rcl_interfaces/Parameter`` from a Python value."""
    pv = ParameterValue()
    if isinstance(value, bool):
        pv.type, pv.bool_value = ParameterType.PARAMETER_BOOL, value
    elif isinstance(value, int):
        pv.type, pv.integer_value = ParameterType.PARAMETER_INTEGER, value
    elif isinstance(value, float):
        pv.type, pv.double_value = ParameterType.PARAMETER_DOUBLE, value
    elif isinstance(value, str):
        pv.type, pv.string_value = ParameterType.PARAMETER_STRING, value
    elif isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value):
        pv.type, pv.integer_array_value = ParameterType.PARAMETER_INTEGER_ARRAY, list(value)
    else:
        raise TypeError('unsupported parameter value %r' % (value,))
    return Parameter(name=name, value=pv)


class LifecycleClient:
    """Drive the node named ``target`` (fully qualified, e.g. ``/cam/matte``) from ``node``."""

    def __init__(self, node, target: str, timeout: float = 10.0):
        self.node = node
        self.target = target.rstrip('/')
        self.timeout = timeout
        self._clients = {}

    def _call(self, srv_type, suffix: str, request, timeout: Optional[float] = None):
        timeout = self.timeout if timeout is None else timeout
        name = self.target + '/' + suffix
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = self.node.create_client(srv_type, name)
        if not client.wait_for_service(timeout_sec=timeout):
            raise ServiceTimeout('service %s not available after %.1f s' % (name, timeout))
        future = client.call_async(request)
        rclpy.spin_until_future_complete(self.node, future, timeout_sec=timeout)
        if not future.done():
            raise ServiceTimeout('service %s did not answer within %.1f s' % (name, timeout))
        return future.result()

    def change_state(self, transition, label: str = '', timeout: Optional[float] = None) -> bool:
        """Request a transition by name ('configure', ...) or id; return the node's success."""
        request = ChangeState.Request()
        request.transition.id = TRANSITIONS.get(transition, transition) if isinstance(
            transition, str) else transition
        request.transition.label = label
        return self._call(ChangeState, 'change_state', request, timeout).success

    def state(self) -> str:
        """Return the current state's label ('unconfigured', 'inactive', 'active', ...)."""
        return self._call(GetState, 'get_state', GetState.Request()).current_state.label

    def set_parameters(self, values: Dict[str, Any], timeout: Optional[float] = None):
        """Set parameters; return a list of (successful, reason), one per value."""
        request = SetParameters.Request()
        request.parameters = [parameter_msg(k, v) for k, v in values.items()]
        response = self._call(SetParameters, 'set_parameters', request, timeout)
        return [(r.successful, r.reason) for r in response.results]

    def reset(self) -> Trigger.Response:
        """Call ``~/reset``."""
        return self._call(Trigger, 'reset', Trigger.Request())

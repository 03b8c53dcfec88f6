"""
A small client for another node's lifecycle, parameter and reset services.

Used by the demo, the benchmarks and the integration tests: what ``ros2 lifecycle set``
and ``ros2 param set`` would do, from Python (ros2cli is not on PyPI).
"""

import time
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


#: A transition's state once it succeeded (to recognise one whose answer was lost).
GOALS = {
    Transition.TRANSITION_CONFIGURE: 'inactive',
    Transition.TRANSITION_ACTIVATE: 'active',
    Transition.TRANSITION_DEACTIVATE: 'inactive',
    Transition.TRANSITION_CLEANUP: 'unconfigured',
    Transition.TRANSITION_UNCONFIGURED_SHUTDOWN: 'finalized',
}
#: Seconds before a query whose answer did not come is sent again.
RESEND_AFTER = 3.0


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

    def _call(self, srv_type, suffix: str, request, timeout: Optional[float] = None,
              resend: bool = False):
        """
        Call a service and return its response.

        Right after discovery a request or its answer can be lost (``wait_for_service``
        sees the server before the server's endpoints have matched the client's).
        ``resend`` (for queries that may safely run twice) sends the request again every
        :data:`RESEND_AFTER` seconds until ``timeout``.
        """
        timeout = self.timeout if timeout is None else timeout
        name = self.target + '/' + suffix
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = self.node.create_client(srv_type, name)
        if not client.wait_for_service(timeout_sec=timeout):
            raise ServiceTimeout('service %s not available after %.1f s' % (name, timeout))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            future = client.call_async(request)
            rclpy.spin_until_future_complete(
                self.node, future, timeout_sec=min(left, RESEND_AFTER) if resend else left)
            if future.done():
                return future.result()
            client.remove_pending_request(future)
            if not resend or time.monotonic() >= deadline:
                raise ServiceTimeout('service %s did not answer within %.1f s'
                                     % (name, timeout))

    def change_state(self, transition, label: str = '', timeout: Optional[float] = None) -> bool:
        """
        Request a transition by name ('configure', ...) or id; return the node's success.

        When no answer comes, the node's state tells whether the transition happened
        (its answer was lost): then True; otherwise ServiceTimeout.
        """
        request = ChangeState.Request()
        request.transition.id = TRANSITIONS.get(transition, transition) if isinstance(
            transition, str) else transition
        request.transition.label = label
        try:
            return self._call(ChangeState, 'change_state', request, timeout).success
        except ServiceTimeout:
            goal = GOALS.get(request.transition.id)
            if goal is not None and self.state() == goal:
                return True
            raise

    def state(self) -> str:
        """Return the current state's label ('unconfigured', 'inactive', 'active', ...)."""
        return self._call(GetState, 'get_state', GetState.Request(),
                          resend=True).current_state.label

    def set_parameters(self, values: Dict[str, Any], timeout: Optional[float] = None):
        """Set parameters; return a list of (successful, reason), one per value."""
        request = SetParameters.Request()
        request.parameters = [parameter_msg(k, v) for k, v in values.items()]
        response = self._call(SetParameters, 'set_parameters', request, timeout)
        return [(r.successful, r.reason) for r in response.results]

    def reset(self) -> Trigger.Response:
        """Call ``~/reset``."""
        return self._call(Trigger, 'reset', Trigger.Request())

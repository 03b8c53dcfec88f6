"""
Answer a bad service request with a failure instead of letting it kill the node.

An exception raised in a service callback leaves ``executor.spin()`` and ends the node
process.  Some of the callbacks a node serves are rclpy's own, and they raise on
requests any client can send:

- ``change_state`` of Humble's and Jazzy's rclpy raises ``RCLError`` ("Transition is
  not registered") for a transition the current state does not have (``ros2 lifecycle
  set /cam/matte activate`` twice); Kilted answers ``success=False``.
- ``set_parameters`` / ``set_parameters_atomically`` raise ``ValueError`` on every
  distribution for a ``ParameterValue.type`` outside the known types.

:func:`guard_services` wraps the callbacks of all services a node has: an exception is
logged and the caller gets the failure answer of that service type.
"""

from lifecycle_msgs.srv import ChangeState
from matte_ros.text import cut
from rcl_interfaces.msg import SetParametersResult
from rcl_interfaces.srv import SetParameters
from rcl_interfaces.srv import SetParametersAtomically
from std_srvs.srv import Trigger


def _refuse_change_state(request, response, reason):
    response.success = False


def _refuse_set_parameters(request, response, reason):
    response.results = [SetParametersResult(successful=False, reason=reason)
                        for _ in request.parameters]


def _refuse_set_parameters_atomically(request, response, reason):
    response.result = SetParametersResult(successful=False, reason=reason)


def _refuse_trigger(request, response, reason):
    response.success = False
    response.message = reason


#: How each service type says "refused"; other types answer an empty response.
REFUSALS = {
    ChangeState: _refuse_change_state,
    SetParameters: _refuse_set_parameters,
    SetParametersAtomically: _refuse_set_parameters_atomically,
    Trigger: _refuse_trigger,
}


def guarded(callback, srv_type, logger):
    """Return ``callback`` wrapped so that an exception becomes a failure answer."""
    refuse = REFUSALS.get(srv_type)

    def call(request, response):
        try:
            return callback(request, response)
        except Exception as exc:  # noqa: B902 - a client's bad request must not kill the node
            reason = 'refused: %s: %s' % (type(exc).__name__, cut(exc))
            logger.warn('%s request %s' % (srv_type.__name__, reason))
            if refuse is not None:
                refuse(request, response, reason)
            return response

    call.guarded = True
    return call


def guard_services(node) -> int:
    """Guard every service ``node`` has now (call after the last is created); return how many."""
    count = 0
    for service in node.services:
        if getattr(service.callback, 'guarded', False):
            continue
        service.callback = guarded(service.callback, service.srv_type, node.get_logger())
        count += 1
    return count

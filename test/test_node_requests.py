"""
No request a client can send through the node's ROS services kills it.

The node runs in its own process (framediff under ``/cam``); this process sends it what
a careless or hostile client could: lifecycle transitions that the current state does
not have (rclpy of Humble and Jazzy raises inside its own service callback for those),
unknown transition ids and labels, several transitions at once, bursts of state
queries, unknown parameter names, values of the wrong type, NaN, unset values and
changes to read-only parameters.  Every call must get an answer (a failure where the
request was bad), and afterwards the node must still be alive and serve frames.
Runs on Kilted (``.venv``) and on Jazzy (``.venv-jazzy``, ``pytest -m ros_integration``).
"""

import math
import time

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from lifecycle_msgs.srv import GetAvailableStates
from lifecycle_msgs.srv import GetAvailableTransitions
from lifecycle_msgs.srv import GetState
from matte_ros.ros.lifecycle_client import parameter_msg
import pytest
from rcl_interfaces.msg import Parameter
from rcl_interfaces.msg import ParameterType
from rcl_interfaces.msg import ParameterValue
from rcl_interfaces.srv import DescribeParameters
from rcl_interfaces.srv import GetParameters
from rcl_interfaces.srv import SetParameters
from rcl_interfaces.srv import SetParametersAtomically
import rclpy
from test_node_dds import activate
from test_node_dds import frames
from test_node_dds import Graph
from test_node_dds import NS
from test_node_dds import TARGET

pytestmark = [pytest.mark.dds, pytest.mark.ros_integration]

TIMEOUT = 30.0


class Calls:
    """Fire service requests at the node without waiting, then collect every answer."""

    def __init__(self, node):
        self.node = node
        self._clients = []

    def client(self, srv_type, suffix):
        """Return a new client of ``TARGET/suffix`` once the service is there."""
        client = self.node.create_client(srv_type, '%s/%s' % (TARGET, suffix))
        assert client.wait_for_service(timeout_sec=TIMEOUT), suffix
        self._clients.append(client)
        return client

    def answers(self, futures, timeout=TIMEOUT):
        """Spin until every future is done; return the responses (fail if one is missing)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and not all(f.done() for f in futures):
            rclpy.spin_once(self.node, timeout_sec=0.05)
        missing = sum(not f.done() for f in futures)
        assert not missing, '%d of %d requests got no answer' % (missing, len(futures))
        return [f.result() for f in futures]

    def call(self, srv_type, suffix, request):
        """Call one service and return its response."""
        return self.answers([self.client(srv_type, suffix).call_async(request)])[0]


def change_state(transition_id=0, label=''):
    """Build a ChangeState request."""
    request = ChangeState.Request()
    request.transition.id = transition_id
    request.transition.label = label
    return request


def serves_frames(g, first_sec):
    """Tell whether the active node turns two frames into outputs."""
    g.wait_for_subscriber()
    f0, f1 = frames(2)
    g.send(f0, first_sec)
    g.send(f1, first_sec + 1)
    return g.outputs_for(first_sec + 1)['mask'] is not None


@pytest.fixture
def graph(client_node, start_node):
    """Start the node (framediff) and return the test's side of the graph."""
    proc = start_node(namespace=NS, params={'segmenter': 'framediff'})
    g = Graph(client_node)
    g.proc = proc
    g.calls = Calls(client_node)
    assert g.lifecycle.state() == 'unconfigured'
    return g


def test_transitions_the_state_does_not_have_are_refused(graph):
    g = graph
    calls = g.calls
    refused_in = {
        'unconfigured': [
            change_state(Transition.TRANSITION_ACTIVATE),
            change_state(Transition.TRANSITION_DEACTIVATE),
            change_state(Transition.TRANSITION_CLEANUP),
            change_state(Transition.TRANSITION_ACTIVE_SHUTDOWN),
            change_state(Transition.TRANSITION_CREATE),
            change_state(99),
            change_state(label='activate'),
            change_state(label='explode')],
        'inactive': [
            change_state(Transition.TRANSITION_CONFIGURE),
            change_state(Transition.TRANSITION_DEACTIVATE),
            change_state(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN),
            change_state(label='configure')],
        'active': [
            change_state(Transition.TRANSITION_ACTIVATE),
            change_state(Transition.TRANSITION_CONFIGURE),
            change_state(Transition.TRANSITION_CLEANUP),
            change_state(Transition.TRANSITION_INACTIVE_SHUTDOWN),
            change_state(Transition.TRANSITION_ON_ACTIVATE_SUCCESS),
            change_state(label='activate'),
            change_state(label='cleanup')],
    }
    for state, following in (('unconfigured', 'configure'), ('inactive', 'activate'),
                             ('active', None)):
        for request in refused_in[state]:
            response = calls.call(ChangeState, 'change_state', request)
            assert not response.success, (state, request.transition)
            assert g.lifecycle.state() == state, (state, request.transition)
        assert g.proc.alive(), g.proc.output()
        if following:
            assert g.lifecycle.change_state(following)
    assert serves_frames(g, 300)
    assert g.proc.alive()


def test_concurrent_transitions_get_one_success_each_and_queries_are_answered(graph):
    g = graph
    calls = g.calls
    change = [calls.client(ChangeState, 'change_state') for _ in range(3)]
    queries = [(srv_type, calls.client(srv_type, suffix), srv_type.Request())
               for srv_type, suffix in ((GetState, 'get_state'),
                                        (GetAvailableTransitions, 'get_available_transitions'),
                                        (GetAvailableStates, 'get_available_states'))]
    for transition, state in (('configure', 'inactive'), ('activate', 'active')):
        request = change_state(label=transition)
        futures = [client.call_async(request) for client in change]
        # bursts within the services' request queue (KEEP_LAST 10): DDS drops beyond it
        for _ in range(3):
            burst = [(srv_type, client.call_async(req))
                     for srv_type, client, req in queries for _ in range(8)]
            answers = calls.answers([future for _, future in burst])
            assert all(isinstance(a, t.Response) for (t, _), a in zip(burst, answers))
        results = [r.success for r in calls.answers(futures)]
        assert results.count(True) == 1, (transition, results)
        assert g.lifecycle.state() == state
        assert transition not in [t.transition.label for t in calls.call(
            GetAvailableTransitions, 'get_available_transitions',
            GetAvailableTransitions.Request()).available_transitions]
    assert serves_frames(g, 310)
    assert g.proc.alive()


def _value(type_id, **fields):
    return ParameterValue(type=type_id, **fields)


def test_bad_parameter_requests_are_refused(graph):
    g = graph
    calls = g.calls
    activate(g)
    before = calls.call(GetParameters, 'get_parameters', GetParameters.Request(
        names=['threshold', 'segmenter', 'qos.depth'])).values
    bad = [
        parameter_msg('no_such_parameter', 1),
        parameter_msg('segmenter.nonexistent', 'x'),
        parameter_msg('threshold', 'high'),
        parameter_msg('threshold', [1, 2]),
        parameter_msg('threshold', math.nan),
        parameter_msg('threshold', math.inf),
        parameter_msg('segmenter', 3),
        parameter_msg('segmenter', True),
        parameter_msg('composite.color', 'red'),
        parameter_msg('composite.color', [1, 2]),
        parameter_msg('composite.jpeg_quality', 2.5),
        parameter_msg('qos.depth', 5),              # read-only
        Parameter(name='segmenter', value=_value(ParameterType.PARAMETER_NOT_SET)),
        Parameter(name='threshold', value=_value(ParameterType.PARAMETER_BYTE_ARRAY,
                                                 byte_array_value=[b'\x01'])),
        Parameter(name='max_pixels', value=_value(99)),   # no such type
    ]
    response = calls.call(SetParameters, 'set_parameters', SetParameters.Request(parameters=bad))
    assert len(response.results) == len(bad)
    for param, result in zip(bad, response.results):
        assert not result.successful, param
        assert result.reason, param
    atomic = calls.call(SetParametersAtomically, 'set_parameters_atomically',
                        SetParametersAtomically.Request(parameters=[
                            parameter_msg('threshold', 0.25), parameter_msg('nope', 1)]))
    assert not atomic.result.successful
    unknown = ['no_such_parameter', '']
    got = calls.call(GetParameters, 'get_parameters', GetParameters.Request(names=unknown))
    assert all(v.type == ParameterType.PARAMETER_NOT_SET for v in got.values)
    calls.call(DescribeParameters, 'describe_parameters',
               DescribeParameters.Request(names=unknown))
    assert g.proc.alive(), g.proc.output()
    after = calls.call(GetParameters, 'get_parameters', GetParameters.Request(
        names=['threshold', 'segmenter', 'qos.depth'])).values
    assert after == before
    assert serves_frames(g, 320)


def test_shutdown_is_final_and_later_requests_are_refused(graph):
    g = graph
    activate(g)
    assert g.lifecycle.change_state(Transition.TRANSITION_ACTIVE_SHUTDOWN)
    assert g.lifecycle.state() == 'finalized'
    for transition in ('configure', 'activate', 'cleanup', 'shutdown'):
        assert not g.calls.call(ChangeState, 'change_state',
                                change_state(label=transition)).success
    assert not g.lifecycle.change_state('configure')
    assert g.lifecycle.set_parameters({'threshold': 0.3}) == [(True, '')]
    assert g.lifecycle.state() == 'finalized'
    assert g.proc.alive(), g.proc.output()

"""
ROS parameter glue: descriptors and values from the schema in :mod:`matte_ros.params`.

Nothing here knows a parameter by name; the node declares, validates and reads every
parameter through these functions, so the schema stays the single source of truth.
"""

from typing import Any
from typing import Dict
from typing import List
from typing import Tuple

from matte_ros import params
from rcl_interfaces.msg import FloatingPointRange
from rcl_interfaces.msg import IntegerRange
from rcl_interfaces.msg import ParameterDescriptor
from rcl_interfaces.msg import ParameterType

_TYPES = {
    params.BOOL: ParameterType.PARAMETER_BOOL,
    params.INT: ParameterType.PARAMETER_INTEGER,
    params.FLOAT: ParameterType.PARAMETER_DOUBLE,
    params.STRING: ParameterType.PARAMETER_STRING,
    params.INT_ARRAY: ParameterType.PARAMETER_INTEGER_ARRAY,
}


def descriptor(spec: params.Param) -> ParameterDescriptor:
    """Build the ROS ParameterDescriptor of one entry: type, range, description, read_only."""
    text = spec.description
    if spec.choices:
        text += ' One of: %s.' % ', '.join(map(str, spec.choices))
    if spec.reload:
        text += ' Changing it rebuilds the segmenter (the old one serves until then).'
    desc = ParameterDescriptor(name=spec.name, type=_TYPES[spec.kind], description=text,
                               read_only=spec.read_only)
    if spec.choices:
        desc.additional_constraints = 'one of: %s' % ', '.join(map(str, spec.choices))
    if spec.kind == params.FLOAT and (spec.low is not None or spec.high is not None):
        desc.floating_point_range = [FloatingPointRange(
            from_value=float(spec.low), to_value=float(spec.high), step=0.0)]
    elif spec.kind == params.INT and (spec.low is not None or spec.high is not None):
        desc.integer_range = [IntegerRange(
            from_value=int(spec.low), to_value=int(spec.high), step=int(spec.step or 0))]
    return desc


def declare_all(node) -> None:
    """Declare every schema parameter on ``node`` with its default and descriptor."""
    for spec in params.PARAMS:
        node.declare_parameter(spec.name, spec.default, descriptor(spec))


def read_each(node) -> Tuple[Dict[str, Any], List[str]]:
    """Return the node's valid values by name and the reasons of the invalid ones."""
    values, errors = {}, []
    for spec in params.PARAMS:
        try:
            values[spec.name] = params.validate(spec.name,
                                                _plain(node.get_parameter(spec.name).value))
        except params.ParamError as exc:
            errors.append(str(exc))
    return values, errors


def plain_values(parameters: List[Any]) -> Dict[str, Any]:
    """Turn rclpy ``Parameter`` objects into ``{name: plain value}`` (not validated)."""
    return {p.name: _plain(p.value) for p in parameters}


def plain(value):
    """Return an rclpy parameter value as a plain Python value (arrays become lists)."""
    return _plain(value)


def _plain(value):
    """Convert rclpy's array values (array.array, tuples) to lists."""
    if isinstance(value, (str, bytes, bool, int, float)) or value is None:
        return value
    try:
        return list(value)
    except TypeError:
        return value

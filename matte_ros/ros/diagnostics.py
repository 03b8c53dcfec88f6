"""
``/diagnostics`` messages for the node, following diagnostic_updater's conventions.

One ``DiagnosticStatus`` per node, named after it, with key/values for rates, times,
drops, rejections (with the last reason), and what runs (segmenter, backend).
"""

from typing import Dict

from diagnostic_msgs.msg import DiagnosticArray
from diagnostic_msgs.msg import DiagnosticStatus
from diagnostic_msgs.msg import KeyValue

#: Where diagnostic_aggregator and rqt_robot_monitor read statuses.
TOPIC = '/diagnostics'


def status_message(stamp, name: str, level: bytes, message: str,
                   values: Dict[str, object]) -> DiagnosticArray:
    """Build a one-status ``DiagnosticArray``."""
    status = DiagnosticStatus(level=level, name=name, message=message, hardware_id='matte_ros')
    status.values = [KeyValue(key=str(k), value=_text(v)) for k, v in values.items()]
    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status = [status]
    return array


def _text(value) -> str:
    if isinstance(value, float):
        return '%.3f' % value
    return str(value)


def level_for(active: bool, stats: Dict[str, float], rejected_recent: bool,
              failed_recent: bool):
    """Return (level, message) for the node's state and recent counts."""
    if not active:
        return DiagnosticStatus.OK, 'inactive'
    if failed_recent:
        return DiagnosticStatus.WARN, 'frames failed in the segmenter'
    if rejected_recent:
        return DiagnosticStatus.WARN, 'input messages rejected'
    if stats['input_rate_hz'] == 0:
        return DiagnosticStatus.WARN, 'no input'
    return DiagnosticStatus.OK, 'ok'


def with_busy(level: bytes, message: str, busy: str):
    """
    Return (level, message) raised to WARN with ``busy`` as the message when it is set.

    ``busy`` is the pipeline's ``status().busy``, e.g. ``building TensorRT engine for
    640x480 (12 s)``: the node serves, but not at its best, and says why.
    """
    if not busy:
        return level, message
    return max(level, DiagnosticStatus.WARN), busy

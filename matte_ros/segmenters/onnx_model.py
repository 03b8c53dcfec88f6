"""
Segmenter ``onnx``: a user's own ONNX segmentation or matting model, described by parameters.

Nothing about the network is assumed: the ``onnx.*`` parameters (:data:`PARAM_SPECS`)
say how a BGR camera frame becomes the model's image input and which output value is
the foreground, and :class:`OnnxModel` checks them against the model's declared inputs
and outputs at configure time, failing with a message that names the parameter to
change.  Per frame:

1. the frame is resized (OpenCV: ``onnx.resize`` area or bilinear when shrinking,
   bilinear when enlarging) to the input size: the model's fixed size,
   ``onnx.width`` × ``onnx.height``, or for a dynamic input the frame's size scaled to
   ``onnx.long_side`` and rounded to a multiple of ``onnx.multiple_of``;
2. its channels are put in ``onnx.color`` order and scaled by ``onnx.scaling``
   (``unit`` [0, 1], ``symmetric`` [-1, 1], ``meanstd`` ``(x / 255 - mean) / std``,
   ``raw`` 0-255), laid out as ``onnx.layout`` (NCHW or NHWC) in the input's dtype;
3. constant extra inputs (``onnx.constants``, e.g. a downsample ratio) and recurrent
   inputs (``onnx.recurrent``, pairs ``input:output``) are fed beside it;
4. channel ``onnx.channel`` of output ``onnx.output`` becomes the foreground
   probability (``onnx.activation``: as is, sigmoid of a logit, or softmax over the
   classes), resized back to the frame bilinearly: alpha float32 in [0, 1].

Recurrent state is explicit: :meth:`OnnxModel.reset` sets it back to zeros, whose
shape comes from ``onnx.recurrent_shapes`` when declared, else from the input's static
declared shape, else from the paired output's shape seen at the same input size, else
(before any run at this size) ones for every dynamic dimension, which a model that
broadcasts its state (like RVM) accepts.

Backends are rvm's: ONNX Runtime on cpu, cuda or tensorrt through
:func:`matte_ros.onnx_runtime.create_session` (engine cache in
``tensorrt.engine_cache``).  The model file is only ever handed to ONNX Runtime (a
protobuf, no code); :func:`load_model` checks it is a regular file within
:data:`MAX_MODEL_BYTES` and, when ``onnx.sha256`` is set, that it hashes to it.
"""

import math
import os
import re
import stat
from typing import Any
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

import cv2
from matte_ros import models
from matte_ros import onnx_runtime
from matte_ros.params import Param
from matte_ros.segmenters.base import Matte
from matte_ros.segmenters.base import Segmenter
from matte_ros.segmenters.base import SegmenterError
from matte_ros.segmenters.spec import BackendUse
from matte_ros.segmenters.spec import CPU
from matte_ros.segmenters.spec import SegmenterSpec
import numpy as np

LAYOUTS = ('nchw', 'nhwc')
COLORS = ('rgb', 'bgr')
SCALINGS = ('unit', 'symmetric', 'meanstd', 'raw')
ACTIVATIONS = ('none', 'sigmoid', 'softmax')
OUTPUT_LAYOUTS = ('same', 'nchw', 'nhwc')
RESIZES = ('area', 'linear')
#: ONNX protobufs cannot exceed 2 GiB (weights beyond that live in external files,
#: which this segmenter does not load).
MAX_MODEL_BYTES = 2 ** 31 - 1
#: Square side of the configure-time trial run of a dynamic-size model.
TRIAL_SIDE = 256
#: ONNX Runtime type string → NumPy dtype, for the inputs this segmenter can feed.
DTYPES = {'tensor(float)': np.float32, 'tensor(float16)': np.float16,
          'tensor(double)': np.float64, 'tensor(uint8)': np.uint8,
          'tensor(int64)': np.int64, 'tensor(int32)': np.int32}

#: The ``onnx.*`` parameters, as keyword arguments of :class:`matte_ros.params.Param`
#: (``matte_ros.params`` turns them into Params; plain dicts keep this module free of a
#: circular import).  All need a new segmenter when changed, except ``onnx.max_gap``.
PARAM_SPECS: List[Dict[str, Any]] = [
    {'name': 'onnx.model_path', 'kind': 'string', 'default': '', 'reload': True,
     'description': 'segmenter onnx: the ONNX model file (a regular file under 2 GiB; see '
                    'docs/own_models.md and `matte-ros models inspect FILE`).'},
    {'name': 'onnx.sha256', 'kind': 'string', 'default': '', 'reload': True,
     'description': 'Expected sha256 (64 hex digits) of onnx.model_path; empty = not checked.'},
    {'name': 'onnx.input', 'kind': 'string', 'default': '', 'reload': True,
     'description': 'Name of the image input; empty = the one input not named in onnx.recurrent '
                    'or onnx.constants.'},
    {'name': 'onnx.width', 'kind': 'int', 'default': 0, 'low': 0, 'high': 4096, 'reload': True,
     'description': "Input width (px); 0 = the model's fixed width, or for a dynamic input the "
                    'scaled frame width.'},
    {'name': 'onnx.height', 'kind': 'int', 'default': 0, 'low': 0, 'high': 4096, 'reload': True,
     'description': "Input height (px); 0 = the model's fixed height, or for a dynamic input the "
                    'scaled frame height.'},
    {'name': 'onnx.long_side', 'kind': 'int', 'default': 0, 'low': 0, 'high': 4096, 'reload': True,
     'description': 'Dynamic input: scale the frame so its long side is this many px (aspect '
                    'kept); 0 = frame size.'},
    {'name': 'onnx.multiple_of', 'kind': 'int', 'default': 32,
     'low': 1, 'high': 1024, 'reload': True,
     'description': 'Dynamic input: round both sides to a multiple of this (network stride); also'
                    ' required of onnx.width / onnx.height.'},
    {'name': 'onnx.resize', 'kind': 'string', 'default': 'area',
     'choices': RESIZES, 'reload': True,
     'description': 'How the frame is shrunk to the input size: area (OpenCV INTER_AREA, pixel '
                    'averaging) or linear (bilinear, as MediaPipe does); enlarging is always '
                    'bilinear.'},
    {'name': 'onnx.layout', 'kind': 'string', 'default': 'nchw',
     'choices': LAYOUTS, 'reload': True,
     'description': 'Image input layout: nchw [1, 3, H, W] or nhwc [1, H, W, 3].'},
    {'name': 'onnx.color', 'kind': 'string', 'default': 'rgb', 'choices': COLORS, 'reload': True,
     'description': 'Channel order the model expects.'},
    {'name': 'onnx.scaling', 'kind': 'string', 'default': 'unit',
     'choices': SCALINGS, 'reload': True,
     'description': 'Input values: unit [0, 1], symmetric [-1, 1], meanstd ((x / 255 - onnx.mean)'
                    ' / onnx.std), raw 0-255.'},
    {'name': 'onnx.mean', 'kind': 'string', 'default': '0.485,0.456,0.406', 'reload': True,
     'description': 'onnx.scaling meanstd: per-channel mean on the [0, 1] scale, in onnx.color '
                    'order (one value or three, comma-separated).'},
    {'name': 'onnx.std', 'kind': 'string', 'default': '0.229,0.224,0.225', 'reload': True,
     'description': 'onnx.scaling meanstd: per-channel standard deviation (non-zero), like '
                    'onnx.mean.'},
    {'name': 'onnx.output', 'kind': 'string', 'default': '', 'reload': True,
     'description': 'Name of the output holding the foreground; empty = the first output not '
                    'named in onnx.recurrent.'},
    {'name': 'onnx.output_layout', 'kind': 'string', 'default': 'same',
     'choices': OUTPUT_LAYOUTS, 'reload': True,
     'description': 'Layout of a 4-D output: same (as onnx.layout), nchw or nhwc; 3-D outputs are'
                    ' [N, H, W], 2-D [H, W].'},
    {'name': 'onnx.channel', 'kind': 'int', 'default': 0, 'low': 0, 'high': 4095, 'reload': True,
     'description': 'Output channel (class) that is the foreground.'},
    {'name': 'onnx.activation', 'kind': 'string', 'default': 'none',
     'choices': ACTIVATIONS, 'reload': True,
     'description': 'What the output holds: none (a probability or matte in [0, 1]), sigmoid (a '
                    'logit), softmax (class scores; onnx.channel is the class).'},
    {'name': 'onnx.invert', 'kind': 'bool', 'default': False, 'reload': True,
     'description': 'Use 1 - the selected value: for a model whose channel or class is the '
                    'background (e.g. softmax class 0 of a multi-class person parser).'},
    {'name': 'onnx.recurrent', 'kind': 'string', 'default': '', 'reload': True,
     'description': 'Recurrent state as input:output name pairs, comma-separated (e.g. '
                    "r1i:r1o,r2i:r2o); each input gets the previous frame's output, zeros after a"
                    ' reset.'},
    {'name': 'onnx.recurrent_shapes', 'kind': 'string', 'default': '', 'reload': True,
     'description': 'Zero-state shapes as input=AxBxC pairs, comma-separated; empty = from the '
                    'model (its declared shape, else the output seen).'},
    {'name': 'onnx.constants', 'kind': 'string', 'default': '', 'reload': True,
     'description': 'Constant extra inputs as name=number pairs, comma-separated (e.g. '
                    'downsample_ratio=0.25).'},
    {'name': 'onnx.max_gap', 'kind': 'float', 'default': 1.0, 'low': 0.0, 'high': 3600.0,
     'description': 'Recurrent models: reset the state when the stamp jumps forward by more than '
                    'this (s); 0 = never.'},
]


def _bad(param: str, text: str) -> SegmenterError:
    """Return the error for a setting: it starts with the parameter to change."""
    return SegmenterError('%s: %s' % (param, text))


def load_model(path: str, sha256: str = '') -> str:
    """
    Return the absolute path of a model file that may be handed to ONNX Runtime.

    It must be a regular file (no directory, device or FIFO), at most
    :data:`MAX_MODEL_BYTES`, and hash to ``sha256`` when one is given (checked with
    :func:`matte_ros.models.sha256_file`).  Raises SegmenterError naming the parameter.
    """
    if not path:
        raise _bad('onnx.model_path', 'segmenter onnx needs the path of an ONNX model '
                   '(see docs/own_models.md)')
    path = os.path.abspath(os.path.expanduser(path))
    try:
        info = os.stat(path)
    except OSError as exc:
        raise _bad('onnx.model_path', 'cannot read %s: %s' % (path, exc.strerror or exc))
    if not stat.S_ISREG(info.st_mode):
        raise _bad('onnx.model_path', '%s is not a regular file' % path)
    if info.st_size > MAX_MODEL_BYTES:
        raise _bad('onnx.model_path', '%s has %d bytes, more than an ONNX protobuf can '
                   'hold (%d)' % (path, info.st_size, MAX_MODEL_BYTES))
    if info.st_size == 0:
        raise _bad('onnx.model_path', '%s is empty' % path)
    if sha256:
        wanted = sha256.strip().lower()
        if not re.fullmatch('[0-9a-f]{64}', wanted):
            raise _bad('onnx.sha256', 'expected 64 hex digits, got %r' % sha256)
        try:
            digest = models.sha256_file(path)
        except OSError as exc:
            raise _bad('onnx.model_path', 'cannot read %s: %s' % (path, exc))
        if digest != wanted:
            raise _bad('onnx.sha256', '%s has sha256 %s, not %s (wrong file, or set '
                       "onnx.sha256 to the new file's hash)" % (path, digest, wanted))
    return path


def parse_floats(param: str, text: str) -> np.ndarray:
    """Return one or three comma-separated numbers as a float32 [3] array."""
    try:
        values = [float(v) for v in str(text).split(',') if v.strip()]
    except ValueError:
        raise _bad(param, 'expected one or three comma-separated numbers, got %r' % text)
    if len(values) == 1:
        values = values * 3
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise _bad(param, 'expected one or three finite numbers, got %r' % text)
    return np.array(values, np.float32)


def parse_pairs(param: str, text: str, sep: str) -> List[Tuple[str, str]]:
    """Return ``a<sep>b,c<sep>d`` as [(a, b), (c, d)]; names must be unique on the left."""
    pairs = []
    for item in str(text).split(','):
        if not item.strip():
            continue
        if item.count(sep) != 1:
            raise _bad(param, 'expected name%sname pairs separated by commas, got %r'
                       % (sep, item.strip()))
        left, right = (part.strip() for part in item.split(sep))
        if not left or not right:
            raise _bad(param, 'empty name in %r' % item.strip())
        if left in (p[0] for p in pairs):
            raise _bad(param, '%s is named twice' % left)
        pairs.append((left, right))
    return pairs


def parse_shape(param: str, name: str, text: str) -> Tuple[int, ...]:
    """Return ``1x16x64x64`` as a tuple of positive ints (at most 8 dims, 2**26 values)."""
    try:
        shape = tuple(int(d) for d in text.lower().split('x'))
    except ValueError:
        raise _bad(param, '%s: expected a shape like 1x16x64x64, got %r' % (name, text))
    if not shape or len(shape) > 8 or any(d < 1 for d in shape) \
            or int(np.prod(shape, dtype=np.int64)) > 2 ** 26:
        raise _bad(param, '%s: shape %r must have 1-8 positive dimensions and at most '
                   '2**26 values' % (name, text))
    return shape


def _dims(shape) -> List[Optional[int]]:
    """Return a declared ONNX Runtime shape with symbolic dimensions as None."""
    return [d if isinstance(d, int) and d > 0 else None for d in (shape or [])]


def _shape_text(shape) -> str:
    return '[%s]' % ', '.join(str(d) if d is not None else '?' for d in shape)


def round_to(value: float, multiple: int) -> int:
    """Return ``value`` rounded to the nearest positive multiple of ``multiple``."""
    return max(multiple, int(round(value / multiple)) * multiple)


def dynamic_size(height: int, width: int, long_side: int, multiple: int) -> Tuple[int, int]:
    """Return (h, w) for a dynamic input: scaled so the long side is ``long_side``, rounded."""
    scale = long_side / max(height, width) if long_side > 0 else 1.0
    return round_to(height * scale, multiple), round_to(width * scale, multiple)


def foreground_plane(out: np.ndarray, layout: str, channel: int, activation: str,
                     param_output: str = 'onnx.output', invert: bool = False) -> np.ndarray:
    """
    Return the foreground probability plane (float32 h×w in [0, 1]) of a model output.

    ``layout`` (nchw or nhwc) places the channel axis of a 4-D output; a 3-D output is
    [N, H, W] and a 2-D one [H, W] (one channel).  ``activation`` none clips, sigmoid
    squashes a logit, softmax normalises over the channels and keeps ``channel``;
    ``invert`` returns one minus that (the channel is the background).
    """
    out = np.asarray(out)
    if out.ndim == 4:
        if out.shape[0] != 1:
            raise _bad(param_output, 'batch of %d, expected 1' % out.shape[0])
        planes = out[0] if layout == 'nchw' else np.moveaxis(out[0], -1, 0)
    elif out.ndim == 3:
        planes = out[:1]
    elif out.ndim == 2:
        planes = out[None]
    else:
        raise _bad(param_output, 'output of shape %s is not an image (2-4 dimensions)'
                   % (out.shape,))
    if channel >= planes.shape[0]:
        raise _bad('onnx.channel', 'channel %d asked, the output has %d (shape %s, '
                   'onnx.output_layout %s)' % (channel, planes.shape[0], out.shape, layout))
    if activation == 'softmax':
        if planes.shape[0] < 2:
            raise _bad('onnx.activation', 'softmax needs at least two classes; the '
                       'output has one channel (shape %s): use sigmoid or none'
                       % (out.shape,))
        planes = planes.astype(np.float32)
        top = planes.max(axis=0)
        exp = np.exp(planes - top)
        plane = exp[channel] / exp.sum(axis=0)
    else:
        plane = planes[channel].astype(np.float32)
        if activation == 'sigmoid':
            plane = 1.0 / (1.0 + np.exp(-np.clip(plane, -80.0, 80.0)))
    plane = np.clip(np.nan_to_num(plane, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    if invert:
        plane = 1.0 - plane
    return plane.astype(np.float32)


class Settings:
    """
    The ``onnx.*`` parameter values, parsed, with the model's declared I/O checked.

    Built from a config and an ONNX Runtime session's ``get_inputs()`` /
    ``get_outputs()``; every refusal is a SegmenterError naming the parameter.
    """

    def __init__(self, config: Dict[str, Any], inputs, outputs):
        get = config.get
        self.layout = get('onnx.layout', 'nchw')
        self.color = get('onnx.color', 'rgb')
        self.scaling = get('onnx.scaling', 'unit')
        self.activation = get('onnx.activation', 'none')
        self.channel = int(get('onnx.channel', 0))
        self.invert = bool(get('onnx.invert', False))
        self.resize = get('onnx.resize', 'area')
        out_layout = get('onnx.output_layout', 'same')
        self.output_layout = self.layout if out_layout == 'same' else out_layout
        for param, value, allowed in (('onnx.layout', self.layout, LAYOUTS),
                                      ('onnx.color', self.color, COLORS),
                                      ('onnx.scaling', self.scaling, SCALINGS),
                                      ('onnx.activation', self.activation, ACTIVATIONS),
                                      ('onnx.output_layout', self.output_layout, LAYOUTS),
                                      ('onnx.resize', self.resize, RESIZES)):
            if value not in allowed:
                raise _bad(param, 'must be one of %s, got %r' % (', '.join(allowed), value))
        self.multiple = int(get('onnx.multiple_of', 32))
        self.long_side = int(get('onnx.long_side', 0))
        if self.multiple < 1:
            raise _bad('onnx.multiple_of', 'must be at least 1, got %d' % self.multiple)
        self.mean = parse_floats('onnx.mean', get('onnx.mean', '0.485,0.456,0.406'))
        self.std = parse_floats('onnx.std', get('onnx.std', '0.229,0.224,0.225'))
        if self.scaling == 'meanstd' and np.any(self.std == 0):
            raise _bad('onnx.std', 'a standard deviation of 0 divides by zero')
        by_input = {i.name: i for i in inputs}
        by_output = {o.name: o for o in outputs}
        self._check_recurrent(get, by_input, by_output)
        self._check_constants(get, by_input)
        self._check_image_input(get, by_input)
        self._check_output(get, by_output)

    # --- the parts, each naming its parameter ---------------------------------------------

    def _check_recurrent(self, get, by_input, by_output) -> None:
        self.recurrent = parse_pairs('onnx.recurrent', get('onnx.recurrent', ''), ':')
        for name_in, name_out in self.recurrent:
            if name_in not in by_input:
                raise _bad('onnx.recurrent', '%s is not an input of the model (inputs: %s)'
                           % (name_in, ', '.join(by_input)))
            if name_out not in by_output:
                raise _bad('onnx.recurrent', '%s is not an output of the model (outputs: %s)'
                           % (name_out, ', '.join(by_output)))
        outs = [o for _, o in self.recurrent]
        if len(set(outs)) != len(outs):
            raise _bad('onnx.recurrent', 'an output is paired with two inputs')
        self.state_dtypes = {}
        self.state_declared = {}
        for name_in, _ in self.recurrent:
            node = by_input[name_in]
            dtype = DTYPES.get(node.type)
            if dtype is None or dtype not in (np.float32, np.float16, np.float64):
                raise _bad('onnx.recurrent', 'input %s is %s; recurrent state must be a '
                           'float tensor' % (name_in, node.type))
            self.state_dtypes[name_in] = dtype
            self.state_declared[name_in] = _dims(node.shape)
        self.state_shapes = {}
        for name, text in parse_pairs('onnx.recurrent_shapes',
                                      get('onnx.recurrent_shapes', ''), '='):
            if name not in self.state_dtypes:
                raise _bad('onnx.recurrent_shapes', '%s is not a recurrent input named in '
                           'onnx.recurrent' % name)
            shape = parse_shape('onnx.recurrent_shapes', name, text)
            declared = self.state_declared[name]
            if len(declared) != len(shape) or any(
                    d is not None and d != s for d, s in zip(declared, shape)):
                raise _bad('onnx.recurrent_shapes', '%s: %s does not fit the declared '
                           'shape %s' % (name, text, _shape_text(declared)))
            self.state_shapes[name] = shape

    def _check_constants(self, get, by_input) -> None:
        self.constants = {}
        for name, text in parse_pairs('onnx.constants', get('onnx.constants', ''), '='):
            if name not in by_input:
                raise _bad('onnx.constants', '%s is not an input of the model (inputs: %s)'
                           % (name, ', '.join(by_input)))
            if name in self.state_dtypes:
                raise _bad('onnx.constants', '%s is already a recurrent input' % name)
            node = by_input[name]
            dtype = DTYPES.get(node.type)
            if dtype is None:
                raise _bad('onnx.constants', 'input %s is %s, not a number type'
                           % (name, node.type))
            dims = _dims(node.shape)
            if any(d not in (None, 1) for d in dims):
                raise _bad('onnx.constants', 'input %s has shape %s; only scalars (one '
                           'value) can be constants' % (name, _shape_text(dims)))
            try:
                number = float(text)
            except ValueError:
                raise _bad('onnx.constants', '%s=%r is not a number' % (name, text))
            if not math.isfinite(number):
                raise _bad('onnx.constants', '%s=%r is not finite' % (name, text))
            self.constants[name] = np.full([1] * len(dims), number, dtype)

    def _check_image_input(self, get, by_input) -> None:
        named = get('onnx.input', '')
        fed = set(self.state_dtypes) | set(self.constants)
        if named:
            if named not in by_input:
                raise _bad('onnx.input', '%s is not an input of the model (inputs: %s)'
                           % (named, ', '.join(by_input)))
            if named in fed:
                raise _bad('onnx.input', '%s is also named in onnx.recurrent or '
                           'onnx.constants' % named)
        else:
            left = [n for n in by_input if n not in fed]
            if len(left) != 1:
                raise _bad('onnx.input', 'the model has inputs %s; name the image input '
                           '(and the others in onnx.recurrent or onnx.constants)'
                           % ', '.join(left or by_input))
            named = left[0]
        unfed = [n for n in by_input if n != named and n not in fed]
        if unfed:
            raise _bad('onnx.constants', 'model input(s) %s are not fed: name each in '
                       'onnx.constants (a number) or onnx.recurrent' % ', '.join(unfed))
        self.input = named
        node = by_input[named]
        self.dtype = DTYPES.get(node.type)
        if self.dtype not in (np.float32, np.float16, np.float64, np.uint8):
            raise _bad('onnx.input', 'input %s is %s; an image input must be float, '
                       'float16, double or uint8' % (named, node.type))
        if self.dtype == np.uint8 and self.scaling != 'raw':
            raise _bad('onnx.scaling', 'input %s is uint8 (0-255): set onnx.scaling raw'
                       % named)
        dims = _dims(node.shape)
        if len(dims) != 4:
            raise _bad('onnx.input', 'input %s has shape %s; an image input must be 4-D '
                       '([1, 3, H, W] or [1, H, W, 3])' % (named, _shape_text(dims)))
        if dims[0] not in (None, 1):
            raise _bad('onnx.input', 'input %s has a fixed batch of %d; only batch 1 is run'
                       % (named, dims[0]))
        c_axis = 1 if self.layout == 'nchw' else 3
        other = 3 if self.layout == 'nchw' else 1
        if dims[c_axis] not in (None, 3) or (dims[c_axis] is None and dims[other] == 3):
            hint = (' (it looks %s: set onnx.layout %s)'
                    % (LAYOUTS[other == 3].upper(), LAYOUTS[other == 3])
                    if dims[other] == 3 else '')
            raise _bad('onnx.layout', 'input %s has shape %s, which is not %s with 3 '
                       'channels%s' % (named, _shape_text(dims), self.layout.upper(), hint))
        self.declared = dims
        h_axis, w_axis = (2, 3) if self.layout == 'nchw' else (1, 2)
        self.fixed_h, self.fixed_w = dims[h_axis], dims[w_axis]
        width, height = int(get('onnx.width', 0)), int(get('onnx.height', 0))
        for param, value, fixed in (('onnx.width', width, self.fixed_w),
                                    ('onnx.height', height, self.fixed_h)):
            if value and fixed is not None and value != fixed:
                raise _bad(param, "the model's input %s is fixed at %s; set %s to %d or 0"
                           % (named, _shape_text(dims), param, fixed))
            if value and fixed is None and value % self.multiple:
                raise _bad(param, '%d is not a multiple of onnx.multiple_of (%d)'
                           % (value, self.multiple))
        if bool(width) != bool(height) and (self.fixed_w is None or self.fixed_h is None):
            raise _bad('onnx.width' if not width else 'onnx.height',
                       'set both onnx.width and onnx.height, or neither (dynamic)')
        self.size = None
        h = self.fixed_h or height or None
        w = self.fixed_w or width or None
        if h and w:
            self.size = (h, w)
        elif h or w:
            raise _bad('onnx.width' if h else 'onnx.height',
                       'the model fixes only one side of input %s %s; set the other'
                       % (named, _shape_text(dims)))

    def _check_output(self, get, by_output) -> None:
        named = get('onnx.output', '')
        states = {o for _, o in self.recurrent}
        if named:
            if named not in by_output:
                raise _bad('onnx.output', '%s is not an output of the model (outputs: %s)'
                           % (named, ', '.join(by_output)))
        else:
            left = [n for n in by_output if n not in states]
            if not left:
                raise _bad('onnx.output', 'every output is recurrent state; name the '
                           'foreground output')
            named = left[0]
        self.output = named
        node = by_output[named]
        if DTYPES.get(node.type) not in (np.float32, np.float16, np.float64):
            raise _bad('onnx.output', 'output %s is %s; a foreground output must be float'
                       % (named, node.type))
        dims = _dims(node.shape)
        if node.shape and len(dims) not in (2, 3, 4):
            raise _bad('onnx.output', 'output %s has shape %s, not an image (2-4 '
                       'dimensions)' % (named, _shape_text(dims)))
        channels = None
        if len(dims) == 4:
            channels = dims[1] if self.output_layout == 'nchw' else dims[3]
        elif len(dims) in (2, 3):
            channels = 1
        if channels is not None and self.channel >= channels:
            raise _bad('onnx.channel', 'output %s has shape %s: %d channel(s) on the '
                       '%s channel axis, so onnx.channel must be below %d'
                       % (named, _shape_text(dims), channels, self.output_layout.upper(),
                          channels))
        if self.activation == 'softmax' and channels == 1:
            raise _bad('onnx.activation', 'softmax needs two or more classes; output %s '
                       '%s has one: use sigmoid (logit) or none (probability)'
                       % (named, _shape_text(dims)))

    # --- per frame ------------------------------------------------------------------------

    def input_size(self, height: int, width: int) -> Tuple[int, int]:
        """Return the (h, w) the frame is resized to."""
        if self.size is not None:
            return self.size
        return dynamic_size(height, width, self.long_side, self.multiple)


class OnnxModel(Segmenter):
    """Segmenter ``onnx``: runs the model of ``onnx.model_path`` as the parameters describe."""

    name = 'onnx'
    #: ONNX Runtime intra-op threads (0 = one per physical core).
    threads = 0
    #: The session's weights and arenas, per byte of the model file.
    MODEL_FILE_FACTOR = 2

    @classmethod
    def memory_bytes(cls, config: Dict[str, Any], pixels: int) -> int:
        """
        Return the per-pixel need plus twice the model file (weights and runtime arenas).

        The file's size comes from ``os.stat`` (which never blocks); a path that is not a
        regular file counts 0 here and is refused when the model is opened.
        """
        try:
            info = os.stat(config.get('onnx.model_path', '') or '.')
            size = info.st_size if stat.S_ISREG(info.st_mode) else 0
        except OSError:
            size = 0
        return super().memory_bytes(config, pixels) + cls.MODEL_FILE_FACTOR * size

    def __init__(self, config: Dict[str, Any], backend: str = 'cpu'):
        super().__init__(config, backend)
        self.model_path = load_model(config['onnx.model_path'],
                                     config['onnx.sha256'])
        strict = bool(config['backend_strict'])
        self.settings: Optional[Settings] = None
        self.session, self.session_info = self._open(config, backend, strict)
        self.settings = Settings(config, self.session.get_inputs(),
                                 self.session.get_outputs())
        self._outputs = [self.settings.output] + [
            o for _, o in self.settings.recurrent if o != self.settings.output]
        #: input size (h, w) → recurrent input → the shape its output had there.
        self._learned: Dict[Tuple[int, int], Dict[str, Tuple[int, ...]]] = {}
        self.state: Optional[Dict[str, np.ndarray]] = None
        # What the session runs on, not what was asked: ONNX Runtime drops a provider
        # that fails to start without raising.
        self.backend = self.session_info.in_use
        self.warning = self.session_info.note()
        on_trt = self.session_info.providers[0] == onnx_runtime.TENSORRT
        if not on_trt:   # a TensorRT trial would build the engine here, for minutes
            self._trial()

    def describe(self) -> str:
        """Return the model file and the providers the session runs on."""
        return '%s: %s' % (os.path.basename(self.model_path), self.session_info.summary())

    def _open(self, config, backend: str, strict: bool):
        """Create the session (TensorRT: engines and timing caches kept, fp16 as asked)."""
        from matte_ros.segmenters.rvm import make_engine_cache
        cache = make_engine_cache(config) if backend == 'tensorrt' else ''
        try:
            return onnx_runtime.create_session(
                self.model_path, backend, threads=self.threads, strict=strict,
                cache_dir=cache, fp16=bool(config['tensorrt.fp16']))
        except SegmenterError as exc:
            if str(exc).startswith('onnxruntime cannot load'):
                raise _bad('onnx.model_path', str(exc))
            raise

    @staticmethod
    def _max_gap(config) -> float:
        """Reset the state when the stamp jumps forward by more than ``onnx.max_gap`` s."""
        return float(config['onnx.max_gap'])

    def _trial(self) -> None:
        """
        Run the model once on a grey frame before the first camera frame.

        A setting that only fails at run time (an output without the named channel, a
        state that does not broadcast) then fails configure instead of every frame.
        """
        size = self.settings.size or (round_to(TRIAL_SIDE, self.settings.multiple),) * 2
        frame = np.full(size + (3,), 128, np.uint8)
        try:
            self._segment(frame)
        except SegmenterError:
            raise
        except Exception as exc:  # noqa: B902 - onnxruntime raises its own types
            hint = ('; set onnx.recurrent_shapes' if self.settings.recurrent
                    and not self.settings.state_shapes else '')
            raise _bad('onnx.model_path', 'a trial run at %dx%d failed: %s%s'
                       % (size[1], size[0], str(exc).strip().splitlines()[0], hint))
        self.state = None

    def reset(self, reason: str = 'requested') -> None:
        """Forget the recurrent state (zeros at the next frame)."""
        super().reset(reason)
        self.state = None

    def close(self) -> None:
        """Release the session (and its device memory)."""
        self.session = None
        self.state = None

    def zero_state(self, size: Tuple[int, int]) -> Dict[str, np.ndarray]:
        """Return zeros for every recurrent input at input size ``size`` (see the module)."""
        s = self.settings
        learned = self._learned.get(size, {})
        out = {}
        for name, _ in s.recurrent:
            shape = s.state_shapes.get(name) or learned.get(name)
            if shape is None:
                shape = tuple(d if d is not None else 1 for d in s.state_declared[name])
            out[name] = np.zeros(shape, s.state_dtypes[name])
        return out

    def to_input(self, frame: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
        """Return the BGR frame as the model's image input (resized, ordered, scaled, laid out)."""
        s = self.settings
        height, width = size
        if frame.shape[:2] != (height, width):
            area = s.resize == 'area' and height * width < frame.shape[0] * frame.shape[1]
            frame = cv2.resize(frame, (width, height),
                               interpolation=cv2.INTER_AREA if area else cv2.INTER_LINEAR)
        image = frame[:, :, ::-1] if s.color == 'rgb' else frame
        if s.dtype == np.uint8:
            values = np.ascontiguousarray(image)
        else:
            values = image.astype(np.float32)
            if s.scaling == 'unit':
                values *= np.float32(1.0 / 255.0)
            elif s.scaling == 'symmetric':
                values *= np.float32(2.0 / 255.0)
                values -= np.float32(1.0)
            elif s.scaling == 'meanstd':
                values *= np.float32(1.0 / 255.0)
                values -= s.mean
                values /= s.std
        if s.layout == 'nchw':
            values = values.transpose(2, 0, 1)
        return np.ascontiguousarray(values[None], dtype=s.dtype)

    def _segment(self, frame: np.ndarray) -> Matte:
        s = self.settings
        height, width = frame.shape[:2]
        size = s.input_size(height, width)
        feed = dict(s.constants)
        feed[s.input] = self.to_input(frame, size)
        if s.recurrent:
            if self.state is None:
                self.state = self.zero_state(size)
            feed.update(self.state)
        results = dict(zip(self._outputs, self.session.run(self._outputs, feed)))
        if s.recurrent:
            learned = self._learned.setdefault(size, {})
            state = {}
            for name_in, name_out in s.recurrent:
                value = np.asarray(results[name_out]).astype(s.state_dtypes[name_in],
                                                             copy=False)
                learned[name_in] = value.shape
                state[name_in] = value
            self.state = state
        plane = foreground_plane(results[s.output], s.output_layout, s.channel,
                                 s.activation, invert=s.invert)
        if plane.shape != (height, width):
            plane = cv2.resize(plane, (width, height), interpolation=cv2.INTER_LINEAR)
        return Matte(alpha=np.clip(plane, 0.0, 1.0))


def describe(path: str) -> Dict[str, Any]:
    """
    Return a model's inputs and outputs and the parameters they suggest.

    ``{'inputs': [(name, shape, type)], 'outputs': [...], 'suggest': {param: value},
    'notes': [str]}``; shapes use None for dynamic dimensions.  Suggestions are guesses
    from names and shapes (3 channels → layout, one other float input → recurrent or
    constant); the notes say what a person must still decide (scaling, activation).
    """
    path = load_model(path)
    session, _ = onnx_runtime.create_session(path, 'cpu')
    inputs = [(i.name, _dims(i.shape), i.type) for i in session.get_inputs()]
    outputs = [(o.name, _dims(o.shape), o.type) for o in session.get_outputs()]
    suggest: Dict[str, Any] = {'segmenter': 'onnx', 'onnx.model_path': path}
    notes: List[str] = []
    image = [i for i in inputs if len(i[1]) == 4 and 3 in (i[1][1], i[1][3])]
    if image:
        name, dims, kind = image[0]
        layout = 'nchw' if dims[1] == 3 else 'nhwc'
        suggest['onnx.input'] = name
        suggest['onnx.layout'] = layout
        h, w = (dims[2], dims[3]) if layout == 'nchw' else (dims[1], dims[2])
        if h is None or w is None:
            notes.append('input %s is dynamic: pick onnx.long_side and onnx.multiple_of '
                         '(the network stride, often 32)' % name)
        if kind == 'tensor(uint8)':
            suggest['onnx.scaling'] = 'raw'
        else:
            notes.append("onnx.scaling and onnx.color: take them from the model's "
                         'documentation (see docs/own_models.md)')
    else:
        notes.append('no 4-D input with 3 channels: set onnx.input and onnx.layout')
    names_in = {i[0] for i in inputs}
    names_out = [o[0] for o in outputs]
    pairs = []
    for name in sorted(names_in):
        for out in names_out:
            if name != out and _paired(name, out):
                pairs.append('%s:%s' % (name, out))
                break
    if pairs:
        suggest['onnx.recurrent'] = ','.join(pairs)
    state_out = {p.split(':')[1] for p in pairs}
    state_in = {p.split(':')[0] for p in pairs}
    others = [i for i in inputs if i[0] not in state_in and (not image or i is not image[0])]
    if others:
        suggest['onnx.constants'] = ','.join('%s=?' % i[0] for i in others)
        notes.append('input(s) %s need a value in onnx.constants'
                     % ', '.join(i[0] for i in others))
    layout = suggest.get('onnx.layout', 'nchw')

    def channels_of(dims):
        if len(dims) != 4:
            return 1
        return dims[1] if layout == 'nchw' else dims[3]
    # a 3-channel output is most likely colours (RVM's fgr): prefer any other
    fg = sorted((o for o in outputs if o[0] not in state_out and len(o[1]) in (2, 3, 4)),
                key=lambda o: channels_of(o[1]) == 3)
    if fg:
        name, dims, _ = fg[0]
        suggest['onnx.output'] = name
        channels = channels_of(dims)
        if channels is not None and channels >= 2:
            suggest['onnx.activation'] = 'softmax'
            suggest['onnx.channel'] = 1
            notes.append('output %s has %d channels: softmax with the person class as '
                         'onnx.channel (1 is a guess)' % (name, channels))
        else:
            notes.append('output %s: onnx.activation none if it is a probability or '
                         'matte, sigmoid if it is a logit' % name)
    return {'inputs': inputs, 'outputs': outputs, 'suggest': suggest, 'notes': notes}


def _paired(name_in: str, name_out: str) -> bool:
    """Tell whether two names look like a recurrent pair (r1i/r1o, state_in/state_out)."""
    for a, b in (('i', 'o'), ('_in', '_out'), ('in', 'out'), ('_i', '_o')):
        if name_in.endswith(a) and name_out.endswith(b) \
                and name_in[:-len(a)] == name_out[:-len(b)] and name_in[:-len(a)]:
            return True
    return False


SPEC = SegmenterSpec(
    name='onnx',
    summary='your own ONNX model, described by the onnx.* parameters',
    description='your own ONNX segmentation or matting model, described by the `onnx.*` '
                'parameters',
    state='optional recurrent inputs (`onnx.recurrent`)',
    factory=OnnxModel,
    params=tuple(Param(**spec) for spec in PARAM_SPECS),
    backends=(BackendUse('tensorrt', 'ort_tensorrt',
                         not_auto='its first engine build per input size takes minutes'),
              BackendUse('cuda', 'ort_cuda'), CPU),
)

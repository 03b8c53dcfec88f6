"""
What RVM's ONNX graph is, and the copies of it the runtimes run.

Names (defined here once): inputs ``src`` [1, 3, H, W] RGB in [0, 1], the recurrent
state ``r1i..r4i`` and ``downsample_ratio`` [1]; outputs ``fgr``, ``pha`` and the
successor state ``r1o..r4o``.  :func:`state_shapes` gives the state's real shapes for a
frame size and ratio.

**Fixed ratio**: RVM's graph takes the ratio as a runtime tensor that decides the size of
internal tensors (it feeds a Resize).  TensorRT needs those sizes when it builds an
engine, a TorchScript trace freezes them and OpenVINO runs static shapes best, so those
runtimes run a copy in which ``downsample_ratio`` is an initializer (a constant)
holding the ratio that :func:`matte_ros.segmenters.rvm.downsample_ratio` picks for the
stream's resolution (:func:`fixed_ratio_proto`, :func:`fixed_ratio_model`), rounded to
:func:`ratio_tag`'s 6 decimals.  On the CPU this transformation is exact (the fixed
model's outputs equal the original's fed the same ratio; tested).  The alpha-only copy
(:func:`alpha_only_proto`) drops the foreground colours' full-resolution work.

:func:`reference_loop` is RVM's documented usage (a default session, NumPy in and out,
the state fed back): what benchmarks, tools and tests compare the runtimes against.
"""

import logging
import math
import os
from typing import Dict
from typing import List
from typing import Tuple

from matte_ros import models
from matte_ros.segmenters.base import SegmenterError
import numpy as np

#: The frame input and the ratio input.
SRC = 'src'
RATIO = 'downsample_ratio'
#: The recurrent state: inputs, and the outputs that become the next frame's inputs.
STATE_INPUTS = ('r1i', 'r2i', 'r3i', 'r4i')
STATE_OUTPUTS = ('r1o', 'r2o', 'r3o', 'r4o')
#: Every output, in the graph's order.
OUTPUTS = ('fgr', 'pha') + STATE_OUTPUTS
#: ConvGRU channels of RVM MobileNetV3's four recurrent tensors.
STATE_CHANNELS = (16, 20, 40, 64)

LOG = logging.getLogger(__name__)
#: Names fixed-ratio copies in refusals and logs.
FIXED_RATIO = 'fixed-ratio RVM model'


def state_shapes(height: int, width: int, ratio: float) -> List[Tuple[int, int, int, int]]:
    """
    Return the shapes of RVM MobileNetV3's ``r1..r4`` for a frame size and ratio.

    The encoder sees ``floor(size * ratio)`` px (ONNX Resize with scales, in float32);
    the state tensors sit at 1/2, 1/4, 1/8 and 1/16 of that, each halving rounding up.
    Checked against the real model's outputs in test/test_backends.py.
    """
    ratio32 = np.float32(ratio)
    h = int(np.floor(np.float32(height) * ratio32))
    w = int(np.floor(np.float32(width) * ratio32))
    shapes = []
    for channels in STATE_CHANNELS:
        h, w = int(math.ceil(h / 2.0)), int(math.ceil(w / 2.0))
        shapes.append((1, channels, h, w))
    return shapes


def input_shapes(height: int, width: int, ratio: float) -> Dict[str, Tuple[int, ...]]:
    """Return the fixed-ratio model's input shapes (one TensorRT profile)."""
    shapes = {SRC: (1, 3, height, width)}
    shapes.update(zip(STATE_INPUTS, state_shapes(height, width, ratio)))
    return shapes


def ratio_tag(ratio: float) -> str:
    """Return the ratio as written in file names (6 decimals, so 480/854 is stable)."""
    return '%.6f' % ratio


#: File name mark of the alpha-only copies (:func:`alpha_only_proto`).
ALPHA_SUFFIX = '.alpha'


def fixed_ratio_model(model_path: str, ratio: float, directory: str,
                      alpha_only: bool = False) -> str:
    """
    Return a copy of the RVM model with ``downsample_ratio`` fixed to ``ratio``.

    The file ``<directory>/<model>.ratio-<r>[.alpha].onnx`` is written once (atomically
    and sealed, :func:`matte_ros.models.write_sealed`: ``directory`` must lie inside the
    model cache) and reused while its seal matches; a copy without a matching seal is
    logged and written again.  ``alpha_only`` gives the copy of :func:`alpha_only_proto`.
    Needs the ``onnx`` package (see :func:`fixed_ratio_proto`).  The ratio is stored
    rounded to :func:`ratio_tag`'s 6 decimals, the value the caller must also use.
    """
    base = os.path.splitext(os.path.basename(model_path))[0]
    target = os.path.join(directory, '%s.ratio-%s%s.onnx' % (
        base, ratio_tag(ratio), ALPHA_SUFFIX if alpha_only else ''))
    if os.path.lexists(target):
        try:
            return models.check_sealed(target, FIXED_RATIO)
        except models.DerivedFileError as exc:
            LOG.warning('%s; writing it again', exc)
    model = fixed_ratio_proto(model_path, ratio, 'rvm on tensorrt')
    if alpha_only:
        model = alpha_only_proto(model)
    data = model.SerializeToString()

    def write(temporary: str) -> None:
        with open(temporary, 'wb') as stream:
            stream.write(data)
    return models.write_sealed(target, write, FIXED_RATIO + ' folder')


def fixed_ratio_proto(model_path: str, ratio: float, user: str = 'rvm'):
    """
    Return the RVM model as an in-memory ``onnx.ModelProto`` with the ratio fixed.

    ``downsample_ratio`` becomes an initializer holding ``ratio`` rounded to
    :func:`ratio_tag`'s 6 decimals (see :func:`fixed_ratio_model`, which writes it to a
    file; the TorchScript runtime converts it in memory).  ``user`` names who needs the
    ``onnx`` package in the error raised when it is missing.
    """
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:
        raise SegmenterError('%s needs the onnx package to fix the downsample ratio '
                             '(pip install onnx): %s' % (user, exc))
    model = onnx.load(model_path)
    inputs = [i for i in model.graph.input if i.name != RATIO]
    if len(inputs) == len(model.graph.input):
        raise SegmenterError('%s has no downsample_ratio input; is it RVM?' % model_path)
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    value = np.array([float(ratio_tag(ratio))], np.float32)
    model.graph.initializer.append(numpy_helper.from_array(value, RATIO))
    return model


def alpha_only_proto(model):
    """
    Return ``model`` (RVM's ONNX graph) rewritten to output ``pha`` and the state only.

    RVM's refiner (a deep guided filter) computes four channels of coefficients ``A``
    and ``b`` at the low resolution, upsamples both to the frame and forms
    ``A * [src, mean(src)] + b``, then splits off three channels of foreground and one
    of alpha.  Alpha needs only the fourth channel: here ``A`` and ``b`` are sliced to it
    before upsampling (the upsampling is per channel, so alpha is unchanged bit for bit)
    and everything that only fed ``fgr`` is dropped.  At 1280x720 the full-resolution
    work is most of what int8 cannot speed up (int8 model: 64 -> 53 ms per frame).
    Raises SegmenterError when the graph is not laid out as RVM's official export.
    """
    from onnx import helper
    from onnx import numpy_helper
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}

    def made_by(name, op_type):
        node = producer.get(name)
        if node is None or node.op_type != op_type:
            raise SegmenterError('alpha-only RVM: %s is not made by %s; not the official '
                                 'RVM export' % (name, op_type))
        return node

    clip = made_by('pha', 'Clip')
    split = made_by(clip.input[0], 'Split')
    combine = made_by(split.input[0], 'Add')            # A_up * fine_x + b_up
    scale = made_by(combine.input[0], 'Mul')            # A_up * fine_x
    resize_b = made_by(combine.input[1], 'Resize')
    resize_a = made_by(scale.input[0], 'Resize')
    fine_x = made_by(scale.input[1], 'Concat')          # [src, mean over channels]
    sizes = made_by(resize_a.input[3], 'Concat')        # [N, C of A] + frame H, W
    mean, frame_hw = fine_x.input[1], sizes.input[1]

    def const(name, values):
        return helper.make_node('Constant', [], [name], value=numpy_helper.from_array(
            np.array(values, np.int64), name))

    def resize(like, source, output):
        node = helper.make_node('Resize', [source, like.input[1], like.input[2],
                                           'alpha_sizes'], [output])
        node.attribute.extend(like.attribute)
        return node

    added = [
        const('alpha_c0', [0]), const('alpha_c1', [1]), const('alpha_c2', [2]),
        const('alpha_c3', [3]), const('alpha_c4', [4]),
        helper.make_node('Slice', [resize_a.input[0], 'alpha_c3', 'alpha_c4', 'alpha_c1'],
                         ['alpha_A']),
        helper.make_node('Slice', [resize_b.input[0], 'alpha_c3', 'alpha_c4', 'alpha_c1'],
                         ['alpha_b']),
        helper.make_node('Shape', ['alpha_A'], ['alpha_A_shape']),
        helper.make_node('Slice', ['alpha_A_shape', 'alpha_c0', 'alpha_c2', 'alpha_c0'],
                         ['alpha_nc']),
        helper.make_node('Concat', ['alpha_nc', frame_hw], ['alpha_sizes'], axis=0),
        resize(resize_a, 'alpha_A', 'alpha_A_up'),
        resize(resize_b, 'alpha_b', 'alpha_b_up'),
        helper.make_node('Mul', ['alpha_A_up', mean], ['alpha_Ax']),
        helper.make_node('Add', ['alpha_Ax', 'alpha_b_up'], ['alpha_raw']),
        helper.make_node('Clip', ['alpha_raw'] + list(clip.input[1:]), ['pha']),
    ]
    outputs = [o for o in graph.output if o.name != 'fgr']
    nodes = [n for n in graph.node if n is not clip] + added
    # keep only what the remaining outputs need (nodes stay in topological order)
    needed = {o.name for o in outputs}
    kept = []
    for node in reversed(nodes):
        if any(out in needed for out in node.output):
            kept.append(node)
            needed.update(node.input)
    used = {name for node in kept for name in node.input}
    initializers = [i for i in graph.initializer if i.name in used]
    del graph.node[:]
    graph.node.extend(reversed(kept))
    del graph.output[:]
    graph.output.extend(outputs)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    return model


def zero_state() -> List[np.ndarray]:
    """Return the start-of-stream state: four [1, 1, 1, 1] zero tensors (RVM broadcasts them)."""
    return [np.zeros((1, 1, 1, 1), np.float32) for _ in STATE_INPUTS]


def full_zero_state(height: int, width: int, ratio: float) -> List[np.ndarray]:
    """Return zero state arrays of their real shapes (static-shape runtimes start there)."""
    return [np.zeros(shape, np.float32) for shape in state_shapes(height, width, ratio)]


def reference_src(frame: np.ndarray) -> np.ndarray:
    """Return a BGR uint8 frame as ``src`` the way RVM's documentation prepares it."""
    return frame[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0


def reference_loop(model_path: str, ratio: float, session=None):
    """
    Return a function ``alpha(frame)``: RVM run as its documentation shows.

    A default CPU InferenceSession (or ``session``), the frame as NumPy ``src``, the
    ratio as a NumPy input, zero state at the start and each returned state fed back.
    ``alpha.reset()`` starts a new stream.  This is the baseline the benchmarks and the
    parity tests compare every runtime with.
    """
    if session is None:
        import onnxruntime
        session = onnxruntime.InferenceSession(model_path, providers=['CPUExecutionProvider'])
    ratio_input = np.array([ratio], np.float32)
    state = zero_state()

    def alpha(frame: np.ndarray) -> np.ndarray:
        feed = {SRC: reference_src(frame), RATIO: ratio_input}
        feed.update(zip(STATE_INPUTS, state))
        _, pha, *state[:] = session.run(list(OUTPUTS), feed)
        return pha[0, 0]

    def reset() -> None:
        state[:] = zero_state()

    alpha.reset = reset
    alpha.session = session
    return alpha

"""
Small ONNX models the tests build with ``onnx.helper``, each with a known answer.

Every model computes its foreground from one input channel (or two, for softmax), so
the test can say exactly what alpha a frame must give.  All run on ONNX Runtime's CPU.
"""

import onnx
from onnx import helper
from onnx import TensorProto

FLOAT = TensorProto.FLOAT


def _const(name, values, dims=None, kind=TensorProto.INT64):
    dims = [len(values)] if dims is None else dims
    return helper.make_tensor(name, kind, dims, values)


def save(path, nodes, inputs, outputs, initializers=(), opset=17):
    """Check and save a graph; return ``str(path)``."""
    graph = helper.make_graph(nodes, 'test', inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def _slice(src, out, index, axis, prefix):
    """Return (Slice node, its constants) taking channel ``index`` of ``src`` on ``axis``."""
    consts = [_const(prefix + '_s', [index]), _const(prefix + '_e', [index + 1]),
              _const(prefix + '_a', [axis])]
    return helper.make_node('Slice', [src, prefix + '_s', prefix + '_e', prefix + '_a'],
                            [out]), consts


def channel_model(path, layout='nchw', size=('h', 'w'), channel=0, name_in='image',
                  name_out='prob', scale=1.0, offset=0.0):
    """
    Model ``prob = scale * image[channel] + offset``, one output channel.

    ``size`` is (h, w): ints for a fixed input, strings for dynamic dimensions.
    """
    h, w = size
    axis = 1 if layout == 'nchw' else 3
    in_shape = [1, 3, h, w] if layout == 'nchw' else [1, h, w, 3]
    out_shape = [1, 1, h, w] if layout == 'nchw' else [1, h, w, 1]
    pick, consts = _slice(name_in, 'picked', channel, axis, 'c')
    consts += [_const('scale', [scale], [], FLOAT), _const('offset', [offset], [], FLOAT)]
    nodes = [pick, helper.make_node('Mul', ['picked', 'scale'], ['scaled']),
             helper.make_node('Add', ['scaled', 'offset'], [name_out])]
    return save(path, nodes, [helper.make_tensor_value_info(name_in, FLOAT, in_shape)],
                [helper.make_tensor_value_info(name_out, FLOAT, out_shape)], consts)


def two_class_model(path, layout='nhwc', size=(32, 32)):
    """Model ``scores = concat(image[B-position 2], image[0])``: 2 classes (softmax)."""
    h, w = size
    axis = 1 if layout == 'nchw' else 3
    in_shape = [1, 3, h, w] if layout == 'nchw' else [1, h, w, 3]
    out_shape = [1, 2, h, w] if layout == 'nchw' else [1, h, w, 2]
    first, c1 = _slice('image', 'ch2', 2, axis, 'a')
    second, c2 = _slice('image', 'ch0', 0, axis, 'b')
    nodes = [first, second, helper.make_node('Concat', ['ch2', 'ch0'], ['scores'], axis=axis)]
    return save(path, nodes, [helper.make_tensor_value_info('image', FLOAT, in_shape)],
                [helper.make_tensor_value_info('scores', FLOAT, out_shape)], c1 + c2)


def recurrent_model(path, state_shape=(1, 1, 'h', 'w'), size=('h', 'w'), concat=False):
    """
    Model ``alpha = 0.5 * state + 0.5 * image[0]``, ``state_out = alpha``.

    With ``concat`` the state is concatenated with the channel and averaged, which
    needs the exact shape (no broadcasting): zeros must come in the right shape.
    """
    h, w = size
    pick, consts = _slice('src', 'red', 0, 1, 'c')
    if concat:
        nodes = [pick, helper.make_node('Concat', ['state_in', 'red'], ['both'], axis=1),
                 helper.make_node('ReduceMean', ['both'], ['alpha'], axes=[1], keepdims=1)]
    else:
        consts.append(_const('half', [0.5], [], FLOAT))
        nodes = [pick, helper.make_node('Add', ['state_in', 'red'], ['sum']),
                 helper.make_node('Mul', ['sum', 'half'], ['alpha'])]
    nodes.append(helper.make_node('Identity', ['alpha'], ['state_out']))
    inputs = [helper.make_tensor_value_info('src', FLOAT, [1, 3, h, w]),
              helper.make_tensor_value_info('state_in', FLOAT, list(state_shape))]
    outputs = [helper.make_tensor_value_info('alpha', FLOAT, [1, 1, h, w]),
               helper.make_tensor_value_info('state_out', FLOAT, [1, 1, h, w])]
    return save(path, nodes, inputs, outputs, consts)


def gain_model(path):
    """Model ``out = image[0] * gain`` with a scalar input ``gain`` ([1]), dynamic size."""
    pick, consts = _slice('image', 'red', 0, 1, 'c')
    nodes = [pick, helper.make_node('Mul', ['red', 'gain'], ['out'])]
    inputs = [helper.make_tensor_value_info('image', FLOAT, [1, 3, 'h', 'w']),
              helper.make_tensor_value_info('gain', FLOAT, [1])]
    return save(path, nodes, inputs,
                [helper.make_tensor_value_info('out', FLOAT, [1, 1, 'h', 'w'])], consts)


def uint8_model(path):
    """Model ``out = float(image[0]) / 255`` with a uint8 NCHW input."""
    pick, consts = _slice('image', 'red8', 0, 1, 'c')
    consts.append(_const('k', [1.0 / 255.0], [], FLOAT))
    nodes = [pick, helper.make_node('Cast', ['red8'], ['red'], to=FLOAT),
             helper.make_node('Mul', ['red', 'k'], ['out'])]
    inputs = [helper.make_tensor_value_info('image', TensorProto.UINT8, [1, 3, 'h', 'w'])]
    return save(path, nodes, inputs,
                [helper.make_tensor_value_info('out', FLOAT, [1, 1, 'h', 'w'])], consts)

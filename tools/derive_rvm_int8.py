#!/usr/bin/env python3
"""
Derive int8 (static QDQ) variants of RVM and compare them with the official fp32 ONNX.

Each variant is the official ``rvm_mobilenetv3_fp32.onnx`` converted to opset 13 and
quantised by ONNX Runtime's ``quantize_static`` (QDQ format, per-channel int8 weights,
uint8 activations, Conv only, some Conv nodes kept in float: see :func:`variant`) after
``quant_pre_process`` (symbolic shape inference — which RVM's broadcast state defeats,
so plain ONNX shape inference — and ONNX Runtime graph optimisation).  ``-pad``
variants first pad four decoder convolutions to a channel count ONNX Runtime's
blocked kernels take (:func:`pad_concat_convs`, exact); ``fp32-pad`` is that alone.
Calibration runs the fp32 model over real frames with its recurrent state carried from
frame to frame, and records every input the quantiser then replays.  Frames are chosen
deterministically (every n-th frame, sorted names), so the same inputs give the same
model; the sha256 of the source and of each derived file is printed.

Calibration frames come from CDnet 2014 baseline (``--calib cdnet``, default: DAVIS is
then unseen by the quantiser and J on every DAVIS sequence is a held-out score) or from
one DAVIS sequence (``--calib davis:SEQ``; J on that sequence is then optimistic and is
marked ``(calibration)`` in the table).  Percentile/entropy calibration uses the
854×480 frames only (ONNX Runtime's histogram collector needs one shape per tensor).

Speed: a straight ONNX Runtime loop (default InferenceSession, NumPy preprocessing, the
state fed back as NumPy arrays) over the fp32 model and over each variant, at 640×480
(downsample ratio 0.75) and 854×480 (0.5625), on the same DAVIS frames, the runners
taking turns frame by frame in one run; compare ratios, not absolute fps.  Quality: J of
``alpha > 0.5`` per DAVIS 2016 sequence at 854×480 (whole sequences, the first and last
scored frame left out as DAVIS does).

Example::

    nice -n 10 .venv/bin/python tools/derive_rvm_int8.py --out /tmp/rvm_int8
"""

import argparse
import glob
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cv2  # noqa: E402
from matte_ros import datasets  # noqa: E402
from matte_ros import scoring  # noqa: E402
from matte_ros.models import sha256_file as sha256  # noqa: E402
from matte_ros.segmenters import rvm  # noqa: E402
from matte_ros.segmenters import rvm_model  # noqa: E402
import numpy as np  # noqa: E402

SHARED = os.path.join(ROOT, '..', 'shared')
SIZES = ((640, 480), (854, 480))

#: Conv nodes (names of the official export) at the full downsampled resolution or
#: above: the decoder's last block, the projection to fgr/pha and the guided filter.
FULL_RES_CONVS = ('Conv_290', 'Conv_292', 'Conv_294', 'Conv_301', 'Conv_302', 'Conv_304',
                  'Conv_308', 'Conv_312', 'Conv_314', 'Conv_316')
#: The decoder's 3×3 convolutions fed by a Concat ending with the 3-channel image.
UPSAMPLE_CONVS = ('Conv_200', 'Conv_230', 'Conv_260', 'Conv_290')
#: The ConvGRU gate convolutions of the four recurrent decoder blocks.
GRU_CONVS = ('Conv_176', 'Conv_181', 'Conv_206', 'Conv_211', 'Conv_236', 'Conv_241',
             'Conv_266', 'Conv_271')


def calibration_frames(shared: str, calib: str, count: int):
    """Return [(bgr frame, ratio)] for calibration, deterministically chosen."""
    if calib == 'cdnet':
        names = []
        for seq in ('pedestrians', 'highway'):
            files = sorted(glob.glob(os.path.join(shared, 'data', 'cdnet2014', 'baseline',
                                                  seq, 'input', '*.jpg')))
            step = max(1, len(files) // (count // 2))
            # Consecutive runs of frames, so the recurrent state is realistic.
            names += files[::step][:count // 2]
    elif calib.startswith('davis:'):
        seq = calib.split(':', 1)[1]
        files = sorted(glob.glob(os.path.join(shared, 'data', 'davis2016', 'JPEGImages',
                                              '480p', seq, '*.jpg')))
        step = max(1, len(files) // count)
        names = files[::step][:count]
    else:
        sys.exit('unknown --calib %r (cdnet or davis:SEQ)' % calib)
    if not names:
        sys.exit('no calibration frames for %s under %s' % (calib, shared))
    out = []
    for width, height in SIZES:
        ratio = rvm.auto_downsample_ratio(height, width)
        out += [(cv2.resize(cv2.imread(n), (width, height), interpolation=cv2.INTER_AREA),
                 ratio) for n in names]
    return out, names


def to_src(frame: np.ndarray) -> np.ndarray:
    """Return a BGR frame as RVM's ``src`` [1, 3, H, W] RGB in [0, 1]."""
    return frame[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0


def record_feeds(model: str, frames):
    """Run the fp32 model over the frames, state carried; return every input feed."""
    import onnxruntime as ort
    session = ort.InferenceSession(model, providers=['CPUExecutionProvider'])
    feeds = []
    state = [np.zeros((1, 1, 1, 1), np.float32)] * 4
    shape = None
    for frame, ratio in frames:
        if frame.shape != shape:
            state = [np.zeros((1, 1, 1, 1), np.float32)] * 4
            shape = frame.shape
        feed = {'src': to_src(frame), 'downsample_ratio': np.array([ratio], np.float32)}
        feed.update(zip(rvm_model.STATE_INPUTS, state))
        feeds.append(feed)
        state = session.run(list(rvm_model.STATE_OUTPUTS), feed)
    return feeds


class FeedReader:
    """CalibrationDataReader over recorded feeds (ONNX Runtime's reader protocol)."""

    def __init__(self, feeds):
        self.feeds = feeds
        self.index = 0

    def get_next(self):
        """Return the next feed, or None at the end."""
        if self.index >= len(self.feeds):
            return None
        self.index += 1
        return self.feeds[self.index - 1]

    def rewind(self):
        """Start over (the quantiser may read twice)."""
        self.index = 0


def conv_nodes(model_path: str):
    """Return the names of the Conv nodes in graph order."""
    import onnx
    graph = onnx.load(model_path).graph
    return [n.name for n in graph.node if n.op_type == 'Conv']


def derive(pre: str, out: str, feeds, method: str, exclude, per_channel=True,
           activation='uint8', op_types=('Conv',)):
    """Quantise ``pre`` into ``out`` (static QDQ) with the recorded calibration feeds."""
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization import QuantFormat
    from onnxruntime.quantization import quantize_static
    from onnxruntime.quantization import QuantType
    methods = {'minmax': CalibrationMethod.MinMax, 'percentile': CalibrationMethod.Percentile,
               'entropy': CalibrationMethod.Entropy}
    quantize_static(
        pre, out, FeedReader(feeds), quant_format=QuantFormat.QDQ,
        op_types_to_quantize=list(op_types) if op_types else None,
        per_channel=per_channel,
        activation_type=QuantType.QUInt8 if activation == 'uint8' else QuantType.QInt8,
        weight_type=QuantType.QInt8, nodes_to_exclude=list(exclude),
        calibrate_method=methods[method],
        extra_options={'CalibMovingAverage': False, 'CalibPercentile': 99.999})


class Loop:
    """A straight ONNX Runtime loop: default session, NumPy feed, state fed back."""

    def __init__(self, model: str, threads: int = 0):
        import onnxruntime as ort
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(model, sess_options=options,
                                            providers=['CPUExecutionProvider'])
        self.reset()

    def reset(self):
        """Start a new sequence."""
        self.state = [np.zeros((1, 1, 1, 1), np.float32)] * 4

    def __call__(self, frame, ratio):
        """Return alpha for one BGR frame."""
        feed = {'src': to_src(frame), 'downsample_ratio': np.array([ratio], np.float32)}
        feed.update(zip(rvm_model.STATE_INPUTS, self.state))
        _, pha, *self.state = self.session.run(None, feed)
        return pha[0, 0]


def time_runners(runners, frames, ratio, warmup=2):
    """Return seconds per runner over the frames, runners taking turns (order rotating)."""
    for runner in runners:
        runner.reset()
    seconds = [0.0] * len(runners)
    for index, frame in enumerate(frames):
        for turn in range(len(runners)):
            k = (index + turn) % len(runners)
            start = time.perf_counter()
            runners[k](frame, ratio)
            if index >= warmup:
                seconds[k] += time.perf_counter() - start
    return [max(0, len(frames) - warmup) / s for s in seconds]


def davis_j(runners, shared: str, sequences):
    """Return {seq: [J per runner]} at the DAVIS resolution (854×480, automatic ratio)."""
    root = os.path.join(shared, 'data', 'davis2016')
    out = {}
    for seq in sequences:
        scores = [scoring.DavisScore() for _ in runners]
        for runner in runners:
            runner.reset()
        for _, frame, truth in datasets.iter_davis(root, seq):
            ratio = rvm.auto_downsample_ratio(*frame.shape[:2])
            for runner, score in zip(runners, scores):
                score.add(runner(frame, ratio) > 0.5, truth)
        out[seq] = [s.result()['J'] for s in scores]
    return out


def variant(pre: str, name: str):
    """
    Return derive()'s keyword arguments for a variant name.

    A name is ``int8-<method>[-keepfull][-keepgru][-s8act]``: calibration method
    (minmax, percentile, entropy); Conv nodes kept in float (``keepfull``: the
    decoder's last block at the downsampled resolution, the fgr/pha projection and the
    deep guided filter, :data:`FULL_RES_CONVS`; ``keepgru``: the ConvGRU gates,
    :data:`GRU_CONVS`); int8 instead of uint8 activations.  (``-pad``, handled by the
    caller, quantises the channel-padded model, see :func:`pad_concat_convs`.)
    """
    convs = set(conv_nodes(pre))
    parts = name.split('-')
    if parts[0] != 'int8' or len(parts) < 2:
        sys.exit('unknown variant %r' % name)
    kwargs = {'method': parts[1], 'exclude': ()}
    for part in parts[2:]:
        if part in ('keepfull', 'keepgru'):
            group = FULL_RES_CONVS if part == 'keepfull' else GRU_CONVS
            missing = [n for n in group if n not in convs]
            if missing:
                sys.exit('model has no Conv nodes %s' % ', '.join(missing))
            kwargs['exclude'] = tuple(kwargs['exclude']) + group
        elif part == 's8act':
            kwargs['activation'] = 'int8'
        else:
            sys.exit('unknown variant %r' % name)
    return kwargs


def pad_concat_convs(model, block: int = 16):
    """
    Pad the input channels of the decoder's concat-fed 3×3 convolutions to a multiple of ``block``.

    Conv_200/230/260/290 take a Concat whose last member is the 3-channel source
    image at that scale, so they have 171, 107, 59 and 35 input channels; ONNX
    Runtime's blocked (NCHWc) convolution needs a multiple of its block size and
    falls back to a slower im2col path for them.  A Pad appends zero channels to the
    last Concat member and the weights get matching zero columns: the output is the
    same (up to float summation order).
    """
    from onnx import helper
    from onnx import numpy_helper
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    weights = {init.name: init for init in graph.initializer}
    for name in UPSAMPLE_CONVS:
        conv = next(node for node in graph.node if node.name == name)
        concat = producer[conv.input[0]]
        if concat.op_type != 'Concat':
            raise ValueError('%s is not fed by a Concat' % name)
        weight = numpy_helper.to_array(weights[conv.input[1]])
        extra = (-weight.shape[1]) % block
        if not extra:
            continue
        pads = numpy_helper.from_array(np.array([0, 0, 0, 0, 0, extra, 0, 0], np.int64),
                                       name + '_chpad_pads')
        padded = concat.input[-1] + '_chpad_' + name
        graph.initializer.append(pads)
        graph.node.insert(list(graph.node).index(concat), helper.make_node(
            'Pad', [concat.input[-1], pads.name], [padded], name=name + '_chpad',
            mode='constant'))
        concat.input[len(concat.input) - 1] = padded
        zeros = np.zeros((weight.shape[0], extra) + weight.shape[2:], weight.dtype)
        new = numpy_helper.from_array(np.concatenate([weight, zeros], 1),
                                      conv.input[1] + '_chpad')
        graph.initializer.append(new)
        conv.input[1] = new.name
    return model


def prepare(source: str, out_dir: str, pad: bool):
    """
    Return (opset-13 fp32 model, quantisation-ready model) derived from ``source``.

    Per-channel QDQ needs opset 13 (DequantizeLinear's ``axis``); the export is 12.
    ``pad``: also :func:`pad_concat_convs`.  Then ONNX Runtime's ``quant_pre_process``.
    """
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization.shape_inference import quant_pre_process
    tag = '_pad' if pad else ''
    opset13 = os.path.join(out_dir, 'rvm_fp32_opset13%s.onnx' % tag)
    pre = os.path.join(out_dir, 'rvm_fp32_pre%s.onnx' % tag)
    if not os.path.exists(opset13):
        model = version_converter.convert_version(onnx.load(source), 13)
        if pad:
            model = pad_concat_convs(model)
        onnx.checker.check_model(model)
        onnx.save(model, opset13)
    if not os.path.exists(pre):
        try:
            quant_pre_process(opset13, pre, skip_symbolic_shape=False)
        except Exception as exc:  # noqa: B902 - ONNX Runtime raises a bare Exception
            # RVM's state inputs ([1, 1, 1, 1] broadcast) defeat symbolic inference.
            print('symbolic shape inference failed (%s); ONNX shape inference only' % exc)
            quant_pre_process(opset13, pre, skip_symbolic_shape=True)
    return opset13, pre


def main(argv=None) -> int:
    """Derive the variants, time them against fp32 and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    parser.add_argument('--shared', default=SHARED, help='the shared data directory')
    parser.add_argument('--out', default='/tmp/rvm_int8', help='where derived models go')
    parser.add_argument('--calib', default='cdnet', help='cdnet or davis:SEQ')
    parser.add_argument('--calib-frames', type=int, default=24,
                        help='calibration frames per size')
    parser.add_argument('--variants',
                        default=('fp32-pad,int8-minmax,int8-minmax-keepfull,'
                                 'int8-minmax-keepfull-pad,int8-percentile-keepfull'),
                        help='comma-separated variant names')
    parser.add_argument('--frames', type=int, default=20, help='timed frames per size')
    parser.add_argument('--no-quality', action='store_true', help='skip the J table')
    args = parser.parse_args(argv)
    source = os.path.join(args.shared, 'models', 'rvm_mobilenetv3_fp32.onnx')
    if not os.path.exists(source):
        sys.exit('model %s absent' % source)
    os.makedirs(args.out, exist_ok=True)
    print('source %s sha256 %s' % (os.path.basename(source), sha256(source)))
    frames, names = calibration_frames(args.shared, args.calib, args.calib_frames)
    print('calibration: %s, %d frames (%s … %s) at %s' % (
        args.calib, len(frames), os.path.basename(names[0]), os.path.basename(names[-1]),
        ', '.join('%dx%d' % s for s in SIZES)))
    feeds = None
    models = [('fp32 (official)', source)]
    for name in args.variants.split(','):
        pad = '-pad' in name
        opset13, pre = prepare(source, args.out, pad)
        if name.startswith('fp32'):
            models.append((name, opset13))
            print('%s sha256 %s' % (os.path.basename(opset13), sha256(opset13)))
            continue
        kwargs = variant(pre, name.replace('-pad', ''))
        path = os.path.join(args.out, 'rvm_%s_%s_%d.onnx' % (
            name, args.calib.replace(':', '-'), args.calib_frames))
        if not os.path.exists(path):
            if feeds is None:
                feeds = record_feeds(source, frames)
            start = time.perf_counter()
            used = feeds
            if kwargs['method'] != 'minmax':
                # The histogram calibrators need one tensor shape per node: one size only.
                used = [f for f in feeds if f['src'].shape[3] == SIZES[-1][0]]
            derive(pre, path, used, **kwargs)
            print('derived %s in %.0f s' % (name, time.perf_counter() - start))
        print('%s sha256 %s' % (os.path.basename(path), sha256(path)))
        models.append((name, path))
    runners = [Loop(path) for _, path in models]
    davis = os.path.join(args.shared, 'data', 'davis2016', 'JPEGImages', '480p')
    files = sorted(glob.glob(os.path.join(davis, '*', '*.jpg')))
    files = files[::max(1, len(files) // args.frames)][:args.frames]
    images = [cv2.imread(n) for n in files]
    fps = {}
    for width, height in SIZES:
        ratio = rvm.auto_downsample_ratio(height, width)
        batch = [cv2.resize(im, (width, height), interpolation=cv2.INTER_AREA)
                 for im in images]
        fps[(width, height)] = time_runners(runners, batch, ratio)
    print('| model | ' + ' | '.join('fps %dx%d (×fp32)' % s for s in SIZES) + ' |')
    print('|---|' + '---|' * len(SIZES))
    for k, (name, _) in enumerate(models):
        print('| %s | %s |' % (name, ' | '.join('%.2f (%.2f×)' % (
            fps[size][k], fps[size][k] / fps[size][0]) for size in SIZES)), flush=True)
    if args.no_quality:
        return 0
    calib_seq = args.calib.split(':', 1)[1] if args.calib.startswith('davis:') else ''
    seqs = datasets.davis_sequences(os.path.join(args.shared, 'data', 'davis2016'))
    print('\nJ (alpha > 0.5) per DAVIS sequence at 854x480, ΔJ against fp32')
    print('| sequence | ' + ' | '.join(name for name, _ in models) + ' |')
    print('|---|' + '---|' * len(models))
    for seq in seqs:
        values = davis_j(runners, args.shared, [seq])[seq]
        print('| %s%s | %s |' % (seq, ' (calibration)' if seq == calib_seq else '', ' | '.join(
            '%.4f (%+.4f)' % (j, j - values[0]) for j in values)), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())

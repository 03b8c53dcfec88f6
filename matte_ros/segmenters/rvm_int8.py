"""
Derive RVM's int8 OpenVINO model for one downsample ratio (``matte-ros models derive-int8``).

No registry ships an int8 RVM, so the project derives it from the checksummed fp32 ONNX:

1. the ratio is fixed in a copy of the model
   (:func:`matte_ros.segmenters.rvm_model.fixed_ratio_model`), which OpenVINO reads
   with static shapes at the calibration frames' size;
2. the fp32 model runs over the calibration frames **in order**, its recurrent state
   carried from frame to frame, and every input it was fed is recorded, so the
   quantiser sees realistic states, not zeros;
3. NNCF's post-training quantisation (``nncf.quantize``, preset *mixed*: symmetric int8
   weights, asymmetric activations; full bias correction) turns it into an int8 model.
   Activation ranges are the observed min/max, not NNCF's default quantiles: clipping
   the recurrent state's rare large values compounds from frame to frame (measured on
   DAVIS: worst-sequence J loss 0.010 instead of 0.037 with the same calibration frames);
4. quality check: on held-out frames (every ``holdout_every``-th frame, never used for
   calibration) the int8 model runs beside the fp32 one, each with its own state; the
   mean IoU of their ``alpha > 0.5`` masks must reach ``min_iou``, else nothing is
   written and :class:`~matte_ros.segmenters.base.SegmenterError` says by how much it
   missed (frames without foreground are not scored; too few scored frames is also a
   rejection);
5. the ``.xml``/``.bin`` and a JSON manifest (source sha256, derived files' sha256,
   calibration frames' digest, quality, versions) are written atomically beside each
   other; :func:`.rvm_openvino.int8_model` verifies them before every use.

Calibrate on frames of the camera the model will serve: int8 ranges follow the data,
and RVM's recurrent state carries quantisation error from frame to frame, so the result
depends on the calibration set more than for a feed-forward network.  Measured on DAVIS
2016 (``tools/bench_rvm.py --openvino``, calibrated on frames with no DAVIS frame among
them): about 1.4-1.6× a straight ONNX Runtime loop, with the worst sequence's J 0.010
(CDnet pedestrians) to 0.016 (the demo's astronaut sequence) below fp32.  The held-out
check guards against a broken model, not against such a loss: judge on your own footage
before relying on int8.
"""

import hashlib
import json
import os
import tempfile
from typing import Dict
from typing import Iterable
from typing import List
from typing import Optional

import cv2
from matte_ros import models
from matte_ros.segmenters import rvm
from matte_ros.segmenters import rvm_model
from matte_ros.segmenters import rvm_openvino
from matte_ros.segmenters.base import SegmenterError
import numpy as np

#: Default count of calibration frames read from the source.
DEFAULT_FRAMES = 100
#: Every n-th frame is held out for the quality check.
HOLDOUT_EVERY = 5
#: Default minimum mean IoU between int8 and fp32 masks on the held-out frames.
MIN_IOU = 0.9
#: Held-out frames are scored when their masks cover at least this share of the frame ...
MIN_FOREGROUND = 0.005
#: ... and at least this many must be.
MIN_SCORED = 3
#: NNCF bias correction: the full method (False) is slower and more accurate.
FAST_BIAS_CORRECTION = False


def import_nncf():
    """Return the ``nncf`` module, or raise SegmenterError saying how to get it."""
    try:
        import nncf
    except ImportError as exc:
        raise SegmenterError('deriving the int8 model needs NNCF (pip install nncf): %s'
                             % exc)
    return nncf


def read_frames(path: str, count: int = DEFAULT_FRAMES, size=None,
                skip: int = 0) -> List[np.ndarray]:
    """
    Return up to ``count`` consecutive BGR frames from a video file or an image directory.

    Images of a directory are taken in name order; the first ``skip`` frames are passed
    over.  ``size`` (width, height) resizes every frame; otherwise all frames must share
    the first one's size.
    """
    frames: List[np.ndarray] = []
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path)
                       if n.lower().endswith(('.jpg', '.jpeg', '.png', '.bmp')))
        for name in names[skip:skip + count]:
            image = cv2.imread(os.path.join(path, name), cv2.IMREAD_COLOR)
            if image is not None:
                frames.append(image)
    elif os.path.isfile(path):
        capture = cv2.VideoCapture(path)
        try:
            skipped = 0
            while len(frames) < count:
                ok, image = capture.read()
                if not ok:
                    break
                if skipped < skip:
                    skipped += 1
                    continue
                frames.append(image)
        finally:
            capture.release()
    else:
        raise SegmenterError('calibration source %s does not exist' % path)
    if not frames:
        raise SegmenterError('no frames could be read from %s' % path)
    if size is not None:
        frames = [cv2.resize(f, tuple(size), interpolation=cv2.INTER_AREA) for f in frames]
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise SegmenterError('calibration frames from %s differ in size (%s); give --size'
                             % (path, ', '.join(sorted('%dx%d' % (s[1], s[0]) for s in shapes))))
    return frames


class _Loop:
    """One compiled RVM model run over frames with its own carried state."""

    def __init__(self, compiled, height: int, width: int, ratio: float):
        self.request = compiled.create_infer_request()
        self.ports = {port.get_any_name(): port for port in compiled.outputs}
        self.state = rvm_model.full_zero_state(height, width, ratio)

    def __call__(self, frame: np.ndarray):
        """Return (the feed, alpha H×W) for one BGR frame and advance the state."""
        feed, _, pha, self.state = rvm_openvino.run_frame(self.request, self.ports,
                                                          rvm.to_src(frame), self.state)
        return feed, pha[0, 0]


def _digest(frames: Iterable[np.ndarray]) -> str:
    """Return the sha256 of the frames' pixels (identifies the calibration set)."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(np.ascontiguousarray(frame).tobytes())
    return digest.hexdigest()


def derive(model_path: str, sha256: str, ratio: float, frames: List[np.ndarray],
           directory: str, source: str = '', holdout_every: int = HOLDOUT_EVERY,
           min_iou: float = MIN_IOU, log=print, alpha_only: bool = False) -> Dict:
    """
    Derive, check and write the int8 model for ``ratio``; return its manifest.

    ``frames`` are consecutive BGR frames of one size; ``source`` says where they came
    from (recorded in the manifest).  ``alpha_only`` quantises the model without
    foreground colours (:func:`.rvm_model.alpha_only_proto`), the one the segmenter runs
    unless ``publish_foreground`` is set.  Raises SegmenterError (writing nothing) when
    OpenVINO or NNCF lack, there are too few frames, or the quality check fails.
    """
    openvino = rvm_openvino.import_openvino()
    nncf = import_nncf()
    ratio = float(rvm_model.ratio_tag(ratio))
    if holdout_every < 2 or len(frames) < 2 * holdout_every:
        raise SegmenterError('need at least %d calibration frames (got %d)'
                             % (2 * holdout_every, len(frames)))
    height, width = frames[0].shape[:2]
    fixed = rvm_model.fixed_ratio_model(model_path, ratio, directory, alpha_only)
    shapes = rvm_model.input_shapes(height, width, ratio)
    core = openvino.Core()
    fp32 = rvm_openvino.compile_model(core, fixed, shapes)

    # 2. Record the inputs the fp32 model is fed along the sequence (state carried), and
    # its alpha on the held-out frames for the quality check.
    reference = _Loop(fp32, height, width, ratio)
    calibration, holdout = [], {}
    for index, frame in enumerate(frames):
        feed, alpha = reference(frame)
        if index % holdout_every == holdout_every - 1:
            holdout[index] = alpha
        else:
            calibration.append(feed)
    log('calibrating on %d frames of %dx%d at ratio %s (%d held out)'
        % (len(calibration), width, height, rvm_model.ratio_tag(ratio), len(holdout)))

    # 3. Quantise.
    model = core.read_model(fixed)
    model.reshape({name: openvino.PartialShape(list(shape)) for name, shape in shapes.items()})
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet
    advanced = nncf.AdvancedQuantizationParameters(
        activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX)
    quantized = nncf.quantize(model, nncf.Dataset(calibration),
                              preset=nncf.QuantizationPreset.MIXED,
                              subset_size=len(calibration),
                              fast_bias_correction=FAST_BIAS_CORRECTION,
                              advanced_parameters=advanced)

    # 4. Quality check on the held-out frames: int8 with its own state carried over every
    # frame (held-out frames are scored against fp32's alpha, the others advance the state).
    int8 = core.compile_model(quantized, 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'})
    loop = _Loop(int8, height, width, ratio)
    ious, diffs = [], []
    for index, frame in enumerate(frames):
        _, alpha8 = loop(frame)
        alpha32 = holdout.get(index)
        if alpha32 is not None:
            a, b = alpha32 > 0.5, alpha8 > 0.5
            diffs.append(float(np.abs(alpha32 - alpha8).mean()))
            union = int((a | b).sum())
            # Frames without foreground would score a meaningless IoU of 1: left out.
            if union >= MIN_FOREGROUND * a.size:
                ious.append(int((a & b).sum()) / union)
    if len(ious) < MIN_SCORED:
        raise SegmenterError(
            'the quality check cannot judge the int8 model: only %d of %d held-out frames '
            'show foreground (>= %.1f %% of the pixels); calibrate on frames with people in '
            'view; nothing written' % (len(ious), len(holdout), 100 * MIN_FOREGROUND))
    quality = {'holdout_frames': len(holdout), 'scored_frames': len(ious),
               'mean_iou_vs_fp32': float(np.mean(ious)),
               'min_iou_vs_fp32': float(np.min(ious)),
               'mean_abs_alpha_diff': float(np.mean(diffs)), 'required_mean_iou': min_iou}
    log('quality on held-out frames: mean IoU vs fp32 %.4f (min %.4f), mean |Δalpha| %.4f'
        % (quality['mean_iou_vs_fp32'], quality['min_iou_vs_fp32'],
           quality['mean_abs_alpha_diff']))
    if quality['mean_iou_vs_fp32'] < min_iou:
        raise SegmenterError('int8 model rejected: mean IoU vs fp32 on %d held-out frames '
                             'is %.4f < %.4f; nothing written'
                             % (len(holdout), quality['mean_iou_vs_fp32'], min_iou))

    # 5. Write model and manifest.
    stem = rvm_openvino.int8_stem(model_path, sha256, ratio, directory, alpha_only)
    manifest = {
        'format': rvm_openvino.MANIFEST_FORMAT,
        'source': os.path.basename(model_path), 'source_sha256': sha256,
        'ratio': rvm_model.ratio_tag(ratio),
        'outputs': 'alpha only' if alpha_only else 'alpha and foreground',
        'calibration': {'source': source, 'frames': len(calibration),
                        'size': [width, height], 'sha256': _digest(frames)},
        'quantization': 'nncf.quantize, preset mixed, min-max activation ranges '
                        '(OpenVINO IR, int8)',
        'quality': quality,
        'versions': {'openvino': openvino.__version__, 'nncf': nncf.__version__},
    }
    _write(openvino, quantized, stem, manifest)
    return manifest


def _write(openvino, model, stem: str, manifest: Dict) -> None:
    """
    Write ``stem``.xml/.bin/.json; the manifest (written last, sealed) makes them valid.

    The folder is made inside the model cache only (:func:`models.make_writable`).
    """
    directory = models.make_writable(os.path.dirname(stem), 'int8 model folder')
    stem = os.path.join(directory, os.path.basename(stem))
    temporary = tempfile.mkdtemp(prefix='.int8-', dir=directory)
    try:
        xml = os.path.join(temporary, 'model.xml')
        openvino.save_model(model, xml, compress_to_fp16=False)
        manifest['files'] = {ext: models.sha256_file(os.path.join(temporary, 'model.' + ext))
                             for ext in ('xml', 'bin')}
        for ext in ('xml', 'bin'):
            os.replace(os.path.join(temporary, 'model.' + ext), '%s.%s' % (stem, ext))

        def write(path: str) -> None:
            with open(path, 'w', encoding='utf-8') as stream:
                json.dump(manifest, stream, indent=2, sort_keys=True)
        models.write_sealed(stem + '.json', write, 'int8 model folder')
    finally:
        for name in os.listdir(temporary):
            os.unlink(os.path.join(temporary, name))
        os.rmdir(temporary)


def ensure(model_path: str, sha256: str, ratio: float, directory: str, calibration: str,
           size, count: int = DEFAULT_FRAMES, skip: int = 0, log=print,
           alpha_only: bool = False) -> str:
    """
    Return the verified int8 model for ``ratio``, deriving it first when there is none.

    ``calibration`` frames (see :func:`read_frames`) are resized to ``size`` (width,
    height).  A model that exists but fails its checksum is an error, not re-derived.
    """
    stem = rvm_openvino.int8_stem(model_path, sha256, ratio, directory, alpha_only)
    if not os.path.isfile(stem + '.json'):
        frames = read_frames(calibration, count, size, skip)
        derive(model_path, sha256, ratio, frames, directory, source=calibration, log=log,
               alpha_only=alpha_only)
    return rvm_openvino.int8_model(model_path, sha256, ratio, directory, alpha_only)


def summary(manifest: Optional[Dict]) -> str:
    """Return one line describing a manifest (for ``matte-ros models list``)."""
    if not manifest:
        return ''
    quality = manifest.get('quality', {})
    return ('int8 ratio %s (%s): %d calibration frames (%s), IoU vs fp32 %.4f'
            % (manifest.get('ratio'), manifest.get('outputs', 'alpha and foreground'),
               manifest.get('calibration', {}).get('frames', 0),
               manifest.get('calibration', {}).get('source', '?'),
               quality.get('mean_iou_vs_fp32', float('nan'))))

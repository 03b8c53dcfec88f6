"""
MediaPipe selfie segmentation (general 256×256 or landscape 144×256) on LiteRT.

The ``.tflite`` files come from the MediaPipe wheel (:mod:`matte_ros.models`) and run as
they are in LiteRT (``ai-edge-litert``) with its default XNNPACK delegate, which also
implements the model's custom ``Convolution2DTransposeBias`` op.  No conversion step:
what runs is byte for byte the checksummed registry file.

Per frame: BGR → resized (stretched, as MediaPipe does) to the model's input, RGB in
[0, 1] NHWC → person probability at model resolution → optional temporal smoothing
(``selfie.smoothing``: exponential moving average, weight of the previous
probability; cleared by :meth:`SelfieSegmenter.reset`) → resized back to the frame.
"""

import os
from typing import Any
from typing import Dict
from typing import Optional

import cv2
from matte_ros import models
from matte_ros import shared_models
from matte_ros.params import FLOAT
from matte_ros.params import Param
from matte_ros.params import STRING
from matte_ros.segmenters.base import Matte
from matte_ros.segmenters.base import Segmenter
from matte_ros.segmenters.base import SegmenterError
from matte_ros.segmenters.spec import SegmenterSpec
from matte_ros.segmenters.spec import Variant
import numpy as np

#: ``selfie.model`` value → registry model name.
MODELS = {'general': 'selfie_general', 'landscape': 'selfie_landscape'}


#: LiteRT (XNNPACK) threads: up to four; two already cut inference by about a quarter
#: against one, and more cores (a Jetson Orin has 6-12) help little on a 256×256 model.
THREADS = max(1, min(4, os.cpu_count() or 1))


def load_interpreter(path: str, threads: Optional[int] = THREADS):
    """
    Return a LiteRT Interpreter for a ``.tflite`` file with tensors allocated.

    Raises SegmenterError when LiteRT is missing or cannot load the file.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise SegmenterError('segmenter selfie needs LiteRT: pip install ai-edge-litert (%s)'
                             % exc)
    try:
        interpreter = Interpreter(model_path=path, num_threads=threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise SegmenterError('LiteRT cannot load %s: %s' % (path, exc))
    return interpreter


def to_input(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """
    Return a BGR frame as the model input: [1, height, width, 3] RGB float32 in [0, 1].

    Bilinear, as MediaPipe's own image-to-tensor step: several times cheaper than
    INTER_AREA (whose non-integer shrink is slow), and as good or better on DAVIS J.
    """
    small = cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)
    rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    return (rgb.astype(np.float32) * np.float32(1.0 / 255.0))[None]


class SelfieSegmenter(Segmenter):
    """Segmenter ``selfie``: person probability from MediaPipe's selfie model."""

    name = 'selfie'
    #: Resized input, full-size float32 probability and its smoothed copy (~16 B/px); the
    #: 256×256 model and its interpreter (~60 MB).
    bytes_per_pixel = 16
    fixed_bytes = 60 * 1024 * 1024

    def __init__(self, config: Dict[str, Any], backend: str = 'cpu'):
        super().__init__(config, backend)
        variant = config['selfie.model']
        if variant not in MODELS:
            raise SegmenterError('selfie.model must be one of %s, got %r'
                                 % (', '.join(MODELS), variant))
        if backend in ('cuda', 'tensorrt') and config['backend_strict']:
            raise SegmenterError('segmenter selfie runs on LiteRT (cpu) only; backend %s '
                                 'was requested with backend_strict true' % backend)
        self.model_name = MODELS[variant]
        self.model_path = models.locate(self.model_name, config)
        # One interpreter per model file in the process, shared by the cameras in turn;
        # the smoothed probability (this camera's state) stays here.
        self._lease = shared_models.CACHE.acquire(
            ('selfie', self.model_path, models.get(self.model_name).sha256, THREADS),
            lambda: load_interpreter(self.model_path))
        self.interpreter = self._lease.value
        detail_in = self.interpreter.get_input_details()[0]
        self._input = detail_in['index']
        self._output = self.interpreter.get_output_details()[0]['index']
        self.input_size = (int(detail_in['shape'][1]), int(detail_in['shape'][2]))
        self.variant = variant
        self.previous: Optional[np.ndarray] = None

    def describe(self) -> str:
        """Return the runtime, model variant and its input size."""
        return 'LiteRT (XNNPACK) on cpu, %s %dx%d' % (self.variant, self.input_size[1],
                                                      self.input_size[0])

    def reset(self, reason: str = 'requested') -> None:
        """Forget the smoothed probability of earlier frames."""
        super().reset(reason)
        self.previous = None

    def close(self) -> None:
        """Drop the interpreter (it goes with the last camera that shares it)."""
        self.interpreter = None
        self._lease.release()

    def probability(self, frame: np.ndarray) -> np.ndarray:
        """Return the raw person probability at model resolution (no smoothing)."""
        data = to_input(frame, *self.input_size)
        with self._lease.lock:   # get_tensor copies: the result is this camera's own
            self.interpreter.set_tensor(self._input, data)
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self._output)[0, :, :, 0]

    def _segment(self, frame: np.ndarray) -> Matte:
        prob = self.probability(frame)
        weight = float(self.config['selfie.smoothing'])
        if weight > 0 and self.previous is not None:
            prob = weight * self.previous + (1.0 - weight) * prob
        self.previous = prob
        alpha = cv2.resize(prob, (frame.shape[1], frame.shape[0]),
                           interpolation=cv2.INTER_LINEAR)
        return Matte(alpha=np.clip(alpha, 0.0, 1.0, out=alpha))


SPEC = SegmenterSpec(
    name='selfie',
    summary='MediaPipe selfie segmentation',
    description='MediaPipe selfie segmentation, general 256×256 or landscape 144×256 (LiteRT)',
    state='optional EMA',
    factory=SelfieSegmenter,
    params=(
        Param('selfie.model', STRING, 'general',
              'MediaPipe selfie model: general (256x256) or landscape (144x256).',
              choices=tuple(MODELS), reload=True),
        Param('selfie.smoothing', FLOAT, 0.0,
              'Temporal smoothing: weight of the previous probability (EMA); 0 = off.',
              low=0.0, high=0.99),
    ),
    models=tuple(MODELS.values()),
    variants=tuple(Variant('selfie (%s)' % key, ('selfie.model=%s' % key,), model)
                   for key, model in MODELS.items()),
)

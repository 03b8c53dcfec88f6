"""
Background subtraction for a static camera: sample consensus, OpenCV MOG2 / KNN, or VPI.

The background model is the segmenter's temporal state: :meth:`BackgroundSubtractor.reset`
throws it away and the next frame starts a new one.  Alpha is the foreground mask as
0/1 float32; pixels the model classifies as shadow count as background (not in alpha).
The model's current background estimate is returned as ``Matte.background``.

Parameters (see ``matte_ros/params.py``):

* ``bgsub.algorithm`` -- ``consensus`` (per-pixel colour samples, see
  :mod:`matte_ros.segmenters.bgsub_consensus`; the default: F 0.977 / 0.960 on CDnet
  pedestrians / highway against 0.76 / 0.69 for MOG2 at OpenCV's defaults, at about
  MOG2's speed), ``mog2`` (Gaussian mixture,
  Zivkovic 2004/2006) or ``knn`` (K nearest neighbours, Zivkovic & van der Heijden 2006).
* ``bgsub.learn_rate`` -- per-frame learning rate in [0, 1]; -1 lets the model choose.
  OpenCV: passed as ``learningRate`` to ``apply()`` (automatic: 1 / min(2 × frames seen,
  history)).  consensus: the fraction of the samples refreshed per frame.  Dynamic:
  :meth:`BackgroundSubtractor.configure` applies it from the next frame, as it does the
  ``bgsub.consensus.*`` knobs except ``samples``.
* ``bgsub.variance_threshold`` -- MOG2: ``varThreshold``, the squared Mahalanobis
  distance above which a pixel does not match a Gaussian (default 16 = 4 sigma).
  KNN: ``dist2Threshold``, the squared Euclidean colour distance (in 0..255 units)
  below which a sample counts as a neighbour (OpenCV's default is 400, i.e. 20 grey
  levels); the same number therefore means very different things for the two models.
  VPI: ``threshold``, the squared Mahalanobis distance, as MOG2.
* ``bgsub.detect_shadows`` -- (OpenCV, VPI) mark shadows (OpenCV / VPI mask value 127)
  and keep them out of alpha.  Without it shadows are usually foreground.  consensus
  has a cast-shadow test of its own: ``bgsub.consensus.shadow_darkest`` (0 = off; see
  :mod:`~matte_ros.segmenters.bgsub_consensus`).

On the ``vpi`` backend the model is VPI's ``BackgroundSubtractor`` (a Gaussian mixture,
MOG2-like) on its CUDA backend; it has neither KNN nor consensus, so only
``bgsub.algorithm: mog2`` runs there: the others run on the CPU, with ``backend`` set to
``cpu`` and ``warning`` saying why (``backend: auto`` picks vpi on a Jetson, and the
default algorithm must keep working there).  NVIDIA VPI
is imported only on that backend.  Beware: the PyPI package called ``vpi`` is an
unrelated Raspberry Pi library; it is detected by its missing ``BackgroundSubtractor`` /
``Backend`` attributes.
"""

from typing import Any
from typing import Dict
from typing import Optional

import cv2
from matte_ros import backends
from matte_ros.params import BOOL
from matte_ros.params import FLOAT
from matte_ros.params import INT
from matte_ros.params import Param
from matte_ros.params import STRING
from matte_ros.segmenters.base import Matte
from matte_ros.segmenters.base import Segmenter
from matte_ros.segmenters.base import SegmenterError
from matte_ros.segmenters.bgsub_consensus import SampleConsensus
from matte_ros.segmenters.spec import BackendUse
from matte_ros.segmenters.spec import CPU
from matte_ros.segmenters.spec import SegmenterSpec
from matte_ros.segmenters.spec import Variant
import numpy as np

#: OpenCV's default history (frames); also the horizon of VPI's automatic learning rate.
HISTORY = 500
#: Mask value OpenCV and VPI give shadow pixels.
SHADOW_VALUE = 127
#: Mask value of a foreground pixel.
FOREGROUND_VALUE = 255

#: OpenCV's KNN stops updating at a learning rate of exactly 1 (its sample-update period
#: becomes log(0)); rates are capped just below.
KNN_MAX_RATE = 0.99

OPENCV_ALGORITHMS = ('mog2', 'knn')
ALGORITHMS = ('consensus',) + OPENCV_ALGORITHMS
#: Algorithms VPI implements (its BackgroundSubtractor is a MOG2-like mixture).
VPI_ALGORITHMS = ('mog2',)


def load_vpi():
    """Return NVIDIA VPI's module, or raise SegmenterError saying why it is missing."""
    vpi, why = backends.find_vpi()
    if vpi is None:
        raise SegmenterError('bgsub on backend vpi: %s; install VPI from JetPack '
                             '(python3-vpi*) or use backend cpu' % why)
    return vpi


def vpi_arguments(learn_rate: float, frames: int, variance_threshold: float,
                  detect_shadows: bool) -> Dict[str, Any]:
    """
    Map the bgsub parameters onto ``vpi.BackgroundSubtractor.__call__``'s keywords.

    ``learnrate``: ``bgsub.learn_rate``, or when it is -1 OpenCV MOG2's automatic rate
    1 / min(2 × (frames seen + 1), :data:`HISTORY`), the rate MOG2 applies when given -1
    (VPI's own default is a fixed 0.001,
    which would take minutes to learn a first background).  ``threshold``:
    ``bgsub.variance_threshold`` (squared Mahalanobis distance, as MOG2's varThreshold).
    ``shadow``: the mask value for shadows (127, as OpenCV) or None to not detect them.
    """
    rate = float(learn_rate)
    if rate < 0:
        rate = 1.0 / min(2 * (frames + 1), HISTORY)
    return {'learnrate': rate, 'threshold': float(variance_threshold),
            'shadow': SHADOW_VALUE if detect_shadows else None}


class BackgroundSubtractor(Segmenter):
    """Foreground = pixels the background model does not explain (static camera)."""

    name = 'bgsub'
    #: Bytes per pixel of the float32 alpha this segmenter returns, beside its model.
    ALPHA_BYTES = 4
    #: OpenCV MOG2 (5 Gaussians × weight, mean BGR, variance in float32, + modes) and KNN
    #: (3 × 7 samples of BGR + flag, + indexes); VPI's mixture counted like MOG2.
    MIXTURE_BYTES = 110

    @classmethod
    def memory_bytes(cls, config: Dict[str, Any], pixels: int) -> int:
        """
        Return the model's memory for frames of ``pixels`` pixels (bytes).

        consensus: what :meth:`SampleConsensus.bytes_per_pixel` states (uint8 BGR samples,
        per-pixel state and a frame's working planes); mog2 / knn: ``MIXTURE_BYTES``; both
        plus the returned alpha.
        """
        if config['bgsub.algorithm'] == 'consensus':
            per_pixel = SampleConsensus.bytes_per_pixel(config['bgsub.consensus.samples'])
        else:
            per_pixel = cls.MIXTURE_BYTES
        return (per_pixel + cls.ALPHA_BYTES) * int(pixels)

    def __init__(self, config: Dict[str, Any], backend: str = 'cpu'):
        super().__init__(config, backend)
        self.algorithm = config['bgsub.algorithm']
        self.variance_threshold = float(config['bgsub.variance_threshold'])
        self.detect_shadows = bool(config['bgsub.detect_shadows'])
        self.learn_rate = float(config['bgsub.learn_rate'])
        self._vpi = None
        #: Why the segmenter runs on another backend than asked ('' when as asked).
        self.warning = ''
        if backend == 'vpi' and self.algorithm != 'mog2':
            self.backend = 'cpu'
            self.warning = ('bgsub.algorithm %s has no VPI implementation (VPI offers a '
                            'Gaussian mixture: bgsub.algorithm mog2); running on cpu'
                            % self.algorithm)
        elif backend == 'vpi':
            self._vpi = load_vpi()
        if self.algorithm not in ALGORITHMS:
            raise SegmenterError('unknown bgsub.algorithm %r (choose from %s)'
                                 % (self.algorithm, ', '.join(ALGORITHMS)))
        self._model = None
        self._frames = 0
        self._stamp: Optional[float] = None
        self._build()

    # -- model ------------------------------------------------------------------------

    @staticmethod
    def _consensus_knobs(config: Dict[str, Any]) -> Dict[str, Any]:
        """Return the dynamic SampleConsensus arguments from ``config``."""
        return {'threshold': config['bgsub.consensus.threshold'],
                'min_matches': config['bgsub.consensus.min_matches'],
                'adapt': config['bgsub.consensus.adapt'],
                'smooth': config['bgsub.consensus.smooth'],
                'learn_rate': config['bgsub.learn_rate'],
                'still_seconds': config['bgsub.consensus.still_seconds'],
                'shadow_darkest': config['bgsub.consensus.shadow_darkest'],
                'hole_share': config['bgsub.consensus.hole_share']}

    def _build(self, size: Optional[tuple] = None) -> None:
        """Create a fresh model (VPI needs the frame size, so it waits for a frame)."""
        self._frames = 0
        if self._vpi is not None:
            self._model = None
            if size is not None:
                vpi = self._vpi
                with vpi.Backend.CUDA:
                    self._model = vpi.BackgroundSubtractor(size, vpi.Format.BGR8)
                self._size = size
            return
        if self.algorithm == 'consensus':
            try:
                self._model = SampleConsensus(self.config['bgsub.consensus.samples'],
                                              **self._consensus_knobs(self.config))
            except ValueError as exc:
                raise SegmenterError('bgsub consensus: %s' % exc)
        elif self.algorithm == 'mog2':
            self._model = cv2.createBackgroundSubtractorMOG2(
                history=HISTORY, varThreshold=self.variance_threshold,
                detectShadows=self.detect_shadows)
        else:
            self._model = cv2.createBackgroundSubtractorKNN(
                history=HISTORY, dist2Threshold=self.variance_threshold,
                detectShadows=self.detect_shadows)

    def reset(self, reason: str = 'requested') -> None:
        """Forget the background: the next frame starts a new model."""
        super().reset(reason)
        self._build()

    def configure(self, config: Dict[str, Any]) -> None:
        """Apply the dynamic bgsub keys from the next frame (the others need a reload)."""
        super().configure(config)
        self.learn_rate = float(config['bgsub.learn_rate'])
        if isinstance(self._model, SampleConsensus):
            try:
                self._model.configure(**self._consensus_knobs(config))
            except ValueError as exc:
                raise SegmenterError('bgsub consensus: %s' % exc)

    def process(self, frame: np.ndarray, stamp: Optional[float] = None,
                frame_id: Optional[str] = None) -> Matte:
        """Segment one frame; consensus measures time as foreground in ``stamp`` seconds."""
        self._stamp = stamp
        return super().process(frame, stamp, frame_id)

    def _segment(self, frame: np.ndarray) -> Matte:
        if self._vpi is not None:
            mask, background = self._segment_vpi(frame)
        elif self.algorithm == 'consensus':
            mask = self._model.apply(frame, self._stamp)
            background = self._model.background_image()
        else:
            rate = self.learn_rate
            if self.algorithm == 'knn':
                rate = min(rate, KNN_MAX_RATE)
            mask = self._model.apply(frame, learningRate=rate)
            background = self._model.getBackgroundImage()
        self._frames += 1
        alpha = (mask == FOREGROUND_VALUE).astype(np.float32)
        return Matte(alpha=alpha, background=background)

    def _segment_vpi(self, frame: np.ndarray):
        """Run VPI's subtractor on CUDA; return (mask uint8, background BGR uint8)."""
        vpi = self._vpi
        height, width = frame.shape[:2]
        if self._model is None or self._size != (width, height):
            self._build((width, height))
        with vpi.Backend.CUDA:
            fgmask, bgimage = self._model(
                vpi.asimage(np.ascontiguousarray(frame), vpi.Format.BGR8),
                **vpi_arguments(self.learn_rate, self._frames, self.variance_threshold,
                                self.detect_shadows))
        with fgmask.rlock_cpu() as mask, bgimage.rlock_cpu() as background:
            return np.array(mask, dtype=np.uint8), np.array(background, dtype=np.uint8)

    def close(self) -> None:
        """Drop the model (on VPI its GPU buffers go with it)."""
        self._model = None


def _vpi_unless(config) -> str:
    """Say why backend vpi cannot run these values ('' when it can)."""
    if config.get('bgsub.algorithm') in VPI_ALGORITHMS:
        return ''
    return ('bgsub.algorithm %s has no VPI implementation (VPI offers a Gaussian mixture: '
            'bgsub.algorithm mog2)' % config.get('bgsub.algorithm'))


SPEC = SegmenterSpec(
    name='bgsub',
    summary='background subtraction, static camera',
    description='background subtraction for a static camera: pixel-sample consensus '
                '(default; keeps still people), OpenCV MOG2/KNN, NVIDIA VPI on a Jetson',
    state='background model',
    factory=BackgroundSubtractor,
    params=(
        Param('bgsub.algorithm', STRING, 'consensus',
              'Background model: consensus (per-pixel colour samples with adaptive thresholds '
              'and a majority filter; best on CDnet), mog2 or knn (OpenCV; VPI '
              'BackgroundSubtractor, a Gaussian mixture, on the vpi backend with mog2).',
              choices=ALGORITHMS, reload=True),
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
              'mog2/knn/VPI: mark shadows (and exclude them from the mask); consensus: see '
              'bgsub.consensus.shadow_darkest.', reload=True),
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
        Param('bgsub.consensus.still_seconds', FLOAT, 300.0,
              'consensus: seconds (of stamp time; 30 frames per second for files without '
              'stamps) that a foreground pixel which is not blinking keeps its model: an '
              'object that stops stays foreground this long, then becomes background. 0 = '
              'refresh foreground like background. Ghosts, ~/reset and a change of most of '
              'the frame (lights) re-learn at once.',
              low=0.0, high=86400.0),
        Param('bgsub.consensus.shadow_darkest', FLOAT, 0.5,
              'consensus: cast-shadow test, the darkest shadow as the ratio of its grey '
              'level to the background one: a region on the outline of an object that is '
              'darker than the background by a nearly constant factor, with its texture, '
              'is background. 0 = no shadow test.',
              low=0.0, high=0.95),
        Param('bgsub.consensus.hole_share', FLOAT, 0.05,
              'consensus: a background region enclosed by one foreground region, smaller '
              'than this share of its area and coloured like the foreground around it is '
              'foreground (part of an object coloured like the background behind it); '
              'background seen between arms or legs is larger or unlike the person. 0 = no '
              'filling.',
              low=0.0, high=1.0),
    ),
    backends=(BackendUse('vpi', 'vpi_cuda', unless=_vpi_unless), CPU),
    variants=(
        Variant('bgsub (default: consensus)'),
        # OpenCV's own defaults: MOG2 varThreshold 16, KNN dist2Threshold 400, shadows on,
        # automatic learning rate (the usual baselines).
        Variant('bgsub mog2 (OpenCV defaults)', ('bgsub.algorithm=mog2',
                'bgsub.variance_threshold=16', 'bgsub.learn_rate=-1')),
        Variant('bgsub knn (OpenCV defaults)', ('bgsub.algorithm=knn',
                'bgsub.variance_threshold=400', 'bgsub.learn_rate=-1')),
    ),
)

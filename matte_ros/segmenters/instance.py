"""
Person instance masks from torchvision Mask R-CNN, with user-supplied weights.

No weights ship with matte_ros: ``instance.weights`` names a torchvision state dict
(``maskrcnn_resnet50_fpn`` or ``maskrcnn_resnet50_fpn_v2``, told apart by their keys;
the class count comes from the box predictor), loaded with ``torch.load(...,
weights_only=True)`` so the file can hold tensors only, never pickled code.  Class 1
is the person (COCO's numbering in torchvision, and the one foreground class of a
person-only model).

``instance.weights: torchvision`` (or ``torchvision_v2``) takes torchvision's published
COCO weights instead, through torchvision's own weights API
(``MaskRCNN_ResNet50_FPN_Weights.COCO_V1.get_state_dict``: its URL, and torch.hub's
sha256-prefix check of the download), cached in ``<model cache>/torchvision`` (see
:func:`torchvision_target`: never a ``models.model_dir`` outside the user's cache).  A
cached file is read through :mod:`matte_ros.safe_files`, hashed and loaded only when
its sha256 starts with the prefix in its name (the check torch.hub makes of a download
only), ``weights_only`` as above; one that does not is refused, naming the file to
delete.  When it is missing and the robot is offline (or ``models.auto_fetch`` is
false) the error names the URL and the exact path to place the file at.

Per frame the model returns scored instances with soft masks; persons scoring at
least ``instance.confidence`` are candidates and ``instance.select`` picks which form
the matte: ``best`` (highest score), ``largest`` (most pixels above
``instance.mask_threshold``) or ``all``.  alpha is the pixel-wise maximum of the chosen
soft masks, remapped monotonically so that ``instance.mask_threshold`` lands on the
pipeline's ``threshold``: the published mask is then exactly "mask probability above
``instance.mask_threshold``" while alpha keeps the network's soft edges.
No temporal state: each frame stands alone.
"""

import hashlib
import os
import re
from typing import Any
from typing import Dict
from typing import Tuple
from urllib.parse import urlparse

from matte_ros import models
from matte_ros import safe_files
from matte_ros.params import FLOAT
from matte_ros.params import Param
from matte_ros.params import STRING
from matte_ros.segmenters.base import Matte
from matte_ros.segmenters.base import Segmenter
from matte_ros.segmenters.base import SegmenterError
from matte_ros.segmenters.spec import BackendUse
from matte_ros.segmenters.spec import CPU
from matte_ros.segmenters.spec import SegmenterSpec
from matte_ros.segmenters.spec import Variant
from matte_ros.text import cut
import numpy as np

#: Label of a person in torchvision's detection models.
PERSON = 1
SELECT = ('best', 'largest', 'all')
#: State-dict keys: the class count, and a key only the v2 architecture has.
CLASSES_KEY = 'roi_heads.box_predictor.cls_score.weight'
V2_KEY = 'roi_heads.box_head.0.0.weight'  # v1 has box_head.fc6
#: ``instance.weights`` values that mean torchvision's published COCO weights: the
#: weights enum in ``torchvision.models.detection`` and its member.
TORCHVISION = {'torchvision': ('MaskRCNN_ResNet50_FPN_Weights', 'COCO_V1'),
               'torchvision_v2': ('MaskRCNN_ResNet50_FPN_V2_Weights', 'COCO_V1')}
#: The sha256 prefix in a published weights file's name (torch.hub's own pattern).
HASH_IN_NAME = re.compile(r'-([a-f0-9]+)\.')


def select_instances(scores: np.ndarray, masks: np.ndarray, confidence: float,
                     mask_threshold: float, select: str) -> np.ndarray:
    """
    Return the chosen persons' soft masks merged (float32 H×W, pixel-wise max).

    ``scores`` [N] and ``masks`` [N, H, W] (probabilities) are the person detections;
    those below ``confidence`` never count.  Zeros when no person qualifies.
    """
    if select not in SELECT:
        raise SegmenterError('instance.select must be one of %s, got %r'
                             % (', '.join(SELECT), select))
    keep = np.flatnonzero(np.asarray(scores) >= confidence)
    if keep.size == 0:
        return np.zeros(masks.shape[1:], np.float32)
    if select == 'best':
        keep = keep[[int(np.argmax(scores[keep]))]]
    elif select == 'largest':
        areas = [(masks[i] > mask_threshold).sum() for i in keep]
        keep = keep[[int(np.argmax(areas))]]
    return masks[keep].max(axis=0).astype(np.float32)


def remap(prob: np.ndarray, mask_threshold: float, threshold: float) -> np.ndarray:
    """
    Return alpha from probabilities: piecewise linear, 0→0, mask_threshold→threshold, 1→1.

    So ``alpha > threshold`` holds exactly where ``prob > mask_threshold``.
    """
    prob = prob.astype(np.float32)
    t, s = float(mask_threshold), float(threshold)
    low = prob * np.float32(s / t) if t > 0 else np.zeros_like(prob)
    high = np.float32(s) + (prob - np.float32(t)) * np.float32((1.0 - s) / max(1.0 - t, 1e-6))
    alpha = np.where(prob > t, np.maximum(high, np.nextafter(np.float32(s), np.float32(2))),
                     np.minimum(low, np.float32(s)))
    return np.clip(alpha, 0.0, 1.0).astype(np.float32)


def load_state_dict(path: str) -> Dict[str, Any]:
    """Return the tensors of a state-dict file (``weights_only``); SegmenterError otherwise."""
    import torch
    if not path:
        raise SegmenterError(
            'segmenter instance needs weights: set instance.weights to a torchvision Mask '
            'R-CNN state dict (.pth, e.g. maskrcnn_resnet50_fpn); none ship with matte_ros')
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.lexists(path):
        raise SegmenterError('instance.weights: no file at %s' % cut(path))
    try:   # a regular file of bounded size, opened without blocking (never a FIFO)
        stream = safe_files.open_regular(path, models.MAX_MODEL_BYTES, 'instance.weights')
    except safe_files.UnsafeFileError as exc:
        raise SegmenterError(str(exc))
    try:
        with stream:
            state = torch.load(stream, map_location='cpu', weights_only=True)
    except Exception as exc:  # noqa: B902 - torch raises many types for a bad file
        raise SegmenterError('instance.weights %s is not a tensors-only state dict: %s'
                             % (path, str(exc).splitlines()[0] if str(exc) else exc))
    for key in ('model', 'state_dict'):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or CLASSES_KEY not in state:
        raise SegmenterError('instance.weights %s is not a torchvision Mask R-CNN state dict '
                             '(no %s)' % (path, CLASSES_KEY))
    return state


def torchvision_weights(choice: str):
    """Return torchvision's weights enum member for ``torchvision`` / ``torchvision_v2``."""
    from torchvision.models import detection
    enum_name, member = TORCHVISION[choice]
    return getattr(getattr(detection, enum_name), member)


def torchvision_target(url: str, config) -> Tuple[str, str]:
    """Return (cache directory, file path) where torch.hub keeps the weights of ``url``."""
    directory = models.derived_dir(config, 'torchvision')
    return directory, os.path.join(directory, os.path.basename(urlparse(url).path))


def load_cached_torchvision(target: str, what: str) -> Dict[str, Any]:
    """
    Return the state dict of a cached torchvision weights file, checked before loading.

    The file's folder must be this user's, inside the cache (:func:`models.check_writable`);
    the file is opened with :mod:`matte_ros.safe_files`, its sha256 must start with the
    hex after the last "-" of its name (torchvision's published name) and it is loaded
    ``weights_only`` from the same descriptor.  SegmenterError naming ``what`` otherwise.
    """
    import torch
    name = os.path.basename(target)
    prefix = HASH_IN_NAME.search(name)
    if prefix is None:
        raise SegmenterError('%s: %s has no sha256 prefix in its name' % (what, cut(target)))
    try:
        models.check_writable(os.path.dirname(target), what)
        stream = safe_files.open_regular(target, models.MAX_MODEL_BYTES, what)
    except (models.ModelError, safe_files.UnsafeFileError) as exc:
        raise SegmenterError('%s: the cached file is unusable: %s' % (what, exc))
    with stream:
        digest = hashlib.sha256()
        for block in iter(lambda: stream.read(1 << 20), b''):
            digest.update(block)
        if not digest.hexdigest().startswith(prefix.group(1)):
            raise SegmenterError(
                '%s: the cached file %s is not the published one (its sha256 does not start '
                'with %s), not loaded; delete it (models.auto_fetch downloads it again)'
                % (what, cut(target), prefix.group(1)))
        stream.seek(0)
        try:
            return torch.load(stream, map_location='cpu', weights_only=True)
        except Exception as exc:  # noqa: B902 - torch raises many types for a bad file
            raise SegmenterError('%s: the cached file %s is not a tensors-only state dict: '
                                 '%s' % (what, cut(target), str(exc).splitlines()[0]
                                         if str(exc) else type(exc).__name__))


def load_torchvision_state(choice: str, config) -> Tuple[Dict[str, Any], str]:
    """
    Return (state dict, file) of torchvision's COCO Mask R-CNN weights, from the cache.

    A cached file goes through :func:`load_cached_torchvision`.  When it is missing and
    ``models.auto_fetch`` is true, the weights' own ``get_state_dict`` (``check_hash=True``,
    ``weights_only=True``) downloads it into ``<model cache>/torchvision`` (made with
    :func:`models.make_writable`); SegmenterError naming URL and path otherwise.
    """
    weights = torchvision_weights(choice)
    directory, target = torchvision_target(weights.url, config)
    what = 'instance.weights %s' % choice
    place = ('place %s (from %s; its sha256 starts with the hex after the last "-" of the '
             'name) at %s, or set instance.weights to a local state dict'
             % (os.path.basename(target), weights.url, target))
    if os.path.lexists(target):   # torch.hub would open what lies there unchecked
        state = load_cached_torchvision(target, what)
    elif not (config or {}).get('models.auto_fetch', True):
        raise SegmenterError('%s: not in the model cache and models.auto_fetch is false: %s'
                             % (what, place))
    else:
        try:
            models.make_writable(directory, 'torchvision weights folder')
            state = weights.get_state_dict(model_dir=directory, map_location='cpu',
                                           progress=False, check_hash=True,
                                           weights_only=True)
        except Exception as exc:  # noqa: B902 - urllib, OSError, hash, unpickling
            raise SegmenterError('%s: could not get %s (%s); offline: %s'
                                 % (what, weights.url, str(exc).splitlines()[0] if str(exc)
                                    else type(exc).__name__, place))
    if not isinstance(state, dict) or CLASSES_KEY not in state:
        raise SegmenterError('%s: %s is not a Mask R-CNN state dict (no %s)'
                             % (what, target, CLASSES_KEY))
    return state, target


class InstanceSegmenter(Segmenter):
    """Segmenter ``instance``: union of person masks chosen by ``instance.select``."""

    name = 'instance'
    #: float32 input tensor and the per-person masks pasted at full size (~64 B/px);
    #: Mask R-CNN's weights and activations (~600 MB).
    bytes_per_pixel = 64
    fixed_bytes = 600 * 1024 * 1024
    #: Input scaling of torchvision's detection transform (its defaults; the weights
    #: were trained at these sizes).  Tests lower them for speed.
    min_size = 800
    max_size = 1333

    def __init__(self, config: Dict[str, Any], backend: str = 'cpu'):
        super().__init__(config, backend)
        try:
            import torch
            from matte_ros.segmenters import torchvision_ops
            torchvision_ops.import_torchvision()
            from torchvision.models.detection import maskrcnn_resnet50_fpn
            from torchvision.models.detection import maskrcnn_resnet50_fpn_v2
        except ImportError as exc:
            raise SegmenterError('segmenter instance needs torch and torchvision: %s' % exc)
        self._torch = torch
        self.weights = config['instance.weights']
        if self.weights in TORCHVISION:
            state, self.weights_file = load_torchvision_state(self.weights, config)
        else:
            state = load_state_dict(self.weights)
            self.weights_file = os.path.abspath(os.path.expanduser(self.weights))
        classes = int(state[CLASSES_KEY].shape[0])
        v2 = V2_KEY in state
        build = maskrcnn_resnet50_fpn_v2 if v2 else maskrcnn_resnet50_fpn
        model = build(weights=None, weights_backbone=None, num_classes=classes,
                      min_size=self.min_size, max_size=self.max_size)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            why = ' '.join(line.strip() for line in str(exc).splitlines()[1:])
            raise SegmenterError('instance.weights %s does not fit %s (%d classes): %s'
                                 % (self.weights_file, build.__name__, classes,
                                    why if len(why) <= 400 else why[:400] + ' ...'))
        cuda = backend in ('cuda', 'tensorrt') and torch.cuda.is_available()
        self.device = 'cuda' if cuda else 'cpu'
        self.backend = self.device
        self.model = model.to(self.device).eval()
        self._built = (build.__name__, classes, self.weights_file, torchvision_ops.FALLBACK)
        self.configure(config)

    def describe(self) -> str:
        """Return the torchvision model, its classes and device (and NMS in use)."""
        name, classes, weights, fallback = self._built
        return 'torchvision %s (%d classes, %s) on %s%s' % (
            name, classes, weights, self.device,
            ', pure-torch NMS/RoIAlign' if fallback else '')

    def configure(self, config: Dict[str, Any]) -> None:
        """Take new thresholds; detections below ``instance.confidence`` are not even kept."""
        super().configure(config)
        self.model.roi_heads.score_thresh = float(config['instance.confidence'])

    def detect(self, frame: np.ndarray):
        """Return ``(scores [N], masks [N, H, W])`` of the persons found in a BGR frame."""
        torch = self._torch
        rgb = np.ascontiguousarray(frame[:, :, ::-1].transpose(2, 0, 1))
        image = torch.from_numpy(rgb).to(self.device, torch.float32).div_(255.0)
        with torch.inference_mode():
            out = self.model([image])[0]
        person = out['labels'] == PERSON
        return (out['scores'][person].cpu().numpy(),
                out['masks'][person][:, 0].cpu().numpy())

    def close(self) -> None:
        """Drop the model (and its device memory)."""
        self.model = None

    def _segment(self, frame: np.ndarray) -> Matte:
        scores, masks = self.detect(frame)
        if masks.shape[0] == 0:
            return Matte(alpha=np.zeros(frame.shape[:2], np.float32))
        cfg = self.config
        mask_threshold = float(cfg.get('instance.mask_threshold', 0.3))
        prob = select_instances(scores, masks, float(cfg.get('instance.confidence', 0.5)),
                                mask_threshold, cfg.get('instance.select', 'best'))
        return Matte(alpha=remap(prob, mask_threshold, float(cfg.get('threshold', 0.5))))


SPEC = SegmenterSpec(
    name='instance',
    summary='person instance masks',
    description='person instance masks (Mask R-CNN class), user-supplied weights or '
                "torchvision's COCO weights (`instance.weights: torchvision`)",
    state='none',
    factory=InstanceSegmenter,
    params=(
        Param('instance.confidence', FLOAT, 0.5,
              'Minimum detection score of a person.', low=0.0, high=1.0),
        Param('instance.mask_threshold', FLOAT, 0.3,
              'Per-pixel mask probability above which a pixel belongs to the person.',
              low=0.0, high=1.0),
        Param('instance.select', STRING, 'best',
              'Which persons form the mask: best (highest score), largest, all.',
              choices=SELECT),
        Param('instance.weights', STRING, '',
              'Torchvision Mask R-CNN state dict (.pth: maskrcnn_resnet50_fpn or _v2, tensors '
              "only); none ship. torchvision / torchvision_v2: torchvision's published COCO "
              'weights, downloaded (hash-checked) into <model cache>/torchvision.',
              reload=True),
    ),
    backends=(BackendUse('cuda', 'torch_cuda'), CPU),
    variants=(Variant('instance'),),
)

"""
Turn an alpha matte into the published mask, alpha image and composite (ROS-free).

Parameters read from ``config`` (see :mod:`matte_ros.params`): ``threshold``,
``mask.dilate``, ``mask.feather``, ``composite.mode``, ``composite.blur_kernel``,
``composite.color`` and ``composite.image_path``.

How the composite's weight ``a`` is made from the segmenter's alpha:

1. ``mask.dilate`` > 0: ``a = max(alpha, dilated mask)``, i.e. fully opaque inside the
   published (dilated) mask and the segmenter's soft alpha outside it, so the composite
   never hides what the mask shows.  With ``mask.dilate`` = 0 the soft alpha is used as
   is (the threshold only shapes the binary mask).
2. ``mask.feather`` > 0: ``a`` is blurred with a Gaussian of that radius (the edge
   ramp spans about ±radius px around its old position).
3. ``composite = frame·a + background·(1 − a)``, rounded to uint8; in mode
   ``transparent`` the frame itself with ``a`` (0-255) as a fourth channel (BGRA,
   straight alpha: what PNG stores and RViz / Foxglove display over transparency).

Backgrounds: ``blur`` is a Gaussian blur of the frame; for large kernels it runs on a
frame shrunk by up to 8× with the sigma adjusted for the resampling, which looks the
same and is about 5× faster at 640×480 with the default kernel (41).  ``color`` is a solid
``[B, G, R]``.  ``image`` is the picture at ``composite.image_path`` scaled to cover the
frame (aspect ratio kept, centre-cropped), cached per frame size.

The picture's path is a parameter, so :func:`load_picture` treats it as hostile: only a
regular JPEG or PNG file (:mod:`matte_ros.safe_files`; never a FIFO, device or ``/proc``
entry) of at most :data:`MAX_PICTURE_BYTES`, whose header declares at most ``max_pixels``
pixels, is decoded (EXIF orientation ignored, as on compressed input).  Loading is slow
work: the node does it off its service thread and hands the loaded picture to
:meth:`Compositor.configure`.
"""

import math
from typing import Optional
from typing import Tuple

import cv2
from matte_ros import compressed
from matte_ros import image_encodings
from matte_ros import params
from matte_ros import safe_files
from matte_ros.image_encodings import EncodingError
from matte_ros.text import cut
import numpy as np

MODES = ('blur', 'color', 'image', 'transparent', 'none')
#: Largest background picture file read (bytes).
MAX_PICTURE_BYTES = 64 * 1024 * 1024
#: Working memory of compositing per frame pixel (bytes): float32 alpha, weight and its
#: complement, a feather buffer (4 each), the background and the composite (3 each), the
#: blur's shrunk copies (~1), and in mode image up to five cached resized pictures (3 each).
BYTES_PER_PIXEL = {'none': 0, 'color': 26, 'blur': 27, 'image': 41, 'transparent': 14}


class CompositeError(ValueError):
    """A compositing setting or input that cannot work (says which and why)."""


def _float_alpha(alpha: np.ndarray) -> np.ndarray:
    """Return alpha as float32 in [0, 1]; a uint8 alpha (0-255) is scaled."""
    if alpha.dtype == np.uint8:
        return alpha.astype(np.float32) * np.float32(1.0 / 255.0)
    return alpha.astype(np.float32, copy=False)


def alpha_to_mask(alpha: np.ndarray, threshold: float, dilate: int = 0) -> np.ndarray:
    """
    Return the binary mask (uint8 0/255) of pixels whose alpha is above ``threshold``.

    ``dilate`` > 0 grows the mask with an elliptical (disc) kernel of that radius, so an
    isolated foreground pixel becomes a disc of diameter ``2 * dilate + 1``.
    """
    fg = _float_alpha(alpha) > threshold
    mask = fg.view(np.uint8) * np.uint8(255)
    if dilate > 0:
        size = 2 * int(dilate) + 1
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        mask = cv2.dilate(mask, kernel)
    return mask


def feather(alpha: np.ndarray, radius: int) -> np.ndarray:
    """
    Return alpha (float32) with its edges softened by a Gaussian of ``radius`` px.

    Radius 0 returns the alpha itself (as float32).  The kernel is ``2 * radius + 1`` wide
    with sigma ``radius / 2``, so a hard edge becomes a ramp about ±radius px wide; the
    border is replicated so a foreground touching the image edge stays opaque there.
    """
    alpha = _float_alpha(alpha)
    if radius <= 0:
        return alpha
    size = 2 * int(radius) + 1
    return cv2.GaussianBlur(alpha, (size, size), radius / 2.0,
                            borderType=cv2.BORDER_REPLICATE)


def to_mono8(alpha: np.ndarray) -> np.ndarray:
    """Return alpha as a mono8 image: ``round(alpha * 255)``, clipped to 0-255, NaN → 0."""
    if alpha.dtype == np.uint8:
        return alpha
    return cv2.multiply(alpha.astype(np.float32, copy=False), 255.0, dtype=cv2.CV_8U)


def blur_background(frame: np.ndarray, kernel: int) -> np.ndarray:
    """
    Return the frame blurred as ``cv2.GaussianBlur(frame, (kernel, kernel), 0)`` would.

    When OpenCV's sigma for that kernel is 3 or more the blur runs on a frame shrunk by
    ``floor(sigma / 3)`` (at most 8); the small sigma is chosen so that shrink (box),
    blur and bilinear enlarging (tent) add up to the same total variance.
    """
    if kernel <= 1:
        return frame.copy()
    sigma = 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8
    factor = min(8, int(sigma // 3))
    height, width = frame.shape[:2]
    if factor < 2 or min(height, width) < 8 * factor:
        return cv2.GaussianBlur(frame, (kernel, kernel), 0)
    small_size = (max(1, round(width / factor)), max(1, round(height / factor)))
    small = cv2.resize(frame, small_size, interpolation=cv2.INTER_AREA)
    small_sigma = math.sqrt(max(sigma * sigma - factor * factor / 4.0, 0.25)) / factor
    small = cv2.GaussianBlur(small, (0, 0), small_sigma)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def load_picture(path: str, max_pixels: Optional[int] = None) -> np.ndarray:
    """
    Read a background picture as BGR uint8, or raise :class:`CompositeError`.

    Only a regular JPEG/PNG file of at most :data:`MAX_PICTURE_BYTES` whose header
    declares at most ``max_pixels`` pixels is decoded (EXIF orientation ignored).
    """
    if not path:
        raise CompositeError('composite.mode is image but composite.image_path is empty')
    what = 'composite.image_path'
    try:
        data = safe_files.read_regular(path, MAX_PICTURE_BYTES, what)
    except safe_files.UnsafeFileError as exc:
        raise CompositeError(str(exc))
    if max_pixels is None:
        max_pixels = params.BY_NAME['max_pixels'].default
    try:
        picture = compressed.decode(data, max_pixels)
    except EncodingError as exc:
        raise CompositeError('%s %s: %s' % (what, cut(path), exc))
    return picture


def memory_bytes(config, pixels: int) -> int:
    """Return the bytes compositing needs for frames of ``pixels`` pixels (plus the picture)."""
    mode = _value(config, 'composite.mode')
    need = BYTES_PER_PIXEL.get(mode, max(BYTES_PER_PIXEL.values())) * int(pixels)
    if mode == 'image':
        need += 3 * int(_value(config, 'max_pixels'))   # the decoded picture, at most
    return need


def cover(picture: np.ndarray, height: int, width: int) -> np.ndarray:
    """Return ``picture`` scaled to cover height×width (aspect kept) and centre-cropped."""
    ph, pw = picture.shape[:2]
    scale = max(height / ph, width / pw)
    new_w = max(width, int(math.ceil(pw * scale - 1e-6)))
    new_h = max(height, int(math.ceil(ph * scale - 1e-6)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    big = cv2.resize(picture, (new_w, new_h), interpolation=interp)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return np.ascontiguousarray(big[top:top + height, left:left + width])


def _value(config, key: str):
    """Return ``config[key]``, or the schema default when the key is absent."""
    try:
        return config[key]
    except KeyError:
        return params.BY_NAME[key].default


def _count(config, key: str) -> int:
    """Return a non-negative integer parameter, or raise :class:`CompositeError`."""
    value = _value(config, key)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise CompositeError('%s must be an integer ≥ 0, got %r' % (key, value))
    return int(value)


class Compositor:
    """
    Make composites from frames and mattes, following the compositing parameters.

    :meth:`configure` takes parameter changes atomically: on :class:`CompositeError`
    nothing changes, so the node can reject the change with the error's message.
    ``blur`` replaces :func:`blur_background` (same signature), e.g. by the GPU one of
    :mod:`matte_ros.vpi_ops`; when it raises, the CPU blur takes over for good.
    """

    def __init__(self, config, blur=None):
        self._blur = blur
        #: Why the replacement blur was abandoned ('' while it works or was never set).
        self.blur_error = ''
        self._path = None
        self._picture = None
        self._sized = {}
        self._solid = None
        self.configure(config)

    def needs_picture(self, config) -> bool:
        """Tell whether ``config`` needs a picture not loaded yet (slow: load it first)."""
        path = _value(config, 'composite.image_path')
        return _value(config, 'composite.mode') == 'image' and (
            path != self._path or self._picture is None)

    def configure(self, config, picture: Optional[np.ndarray] = None):
        """
        Apply parameter values; load the picture only when its path changed.

        ``picture`` is the picture of ``composite.image_path`` already loaded with
        :func:`load_picture` (the node loads it off its service thread).
        """
        mode = _value(config, 'composite.mode')
        if mode not in MODES:
            raise CompositeError('composite.mode must be one of %s, got %r'
                                 % (', '.join(MODES), mode))
        kernel = _value(config, 'composite.blur_kernel')
        if isinstance(kernel, bool) or not isinstance(kernel, (int, np.integer)) \
                or kernel < 1 or kernel % 2 == 0:
            raise CompositeError('composite.blur_kernel must be a positive odd integer, '
                                 'got %r' % (kernel,))
        try:
            color = tuple(int(c) for c in _value(config, 'composite.color'))
        except (TypeError, ValueError):
            color = ()
        if len(color) != 3 or any(c < 0 or c > 255 for c in color):
            raise CompositeError('composite.color must be [B, G, R] in 0-255, got %r'
                                 % (_value(config, 'composite.color'),))
        dilate = _count(config, 'mask.dilate')
        radius = _count(config, 'mask.feather')
        try:
            threshold = float(_value(config, 'threshold'))
        except (TypeError, ValueError):
            raise CompositeError('threshold must be a number, got %r'
                                 % (_value(config, 'threshold'),))
        path = _value(config, 'composite.image_path')
        if picture is None:
            picture = self._picture if path == self._path else None
        if mode == 'image' and picture is None:
            picture = load_picture(path, _value(config, 'max_pixels'))
        # Everything checked: commit.
        if path != self._path or picture is not self._picture:
            self._sized = {}
        self._path = path
        self._picture = picture
        self.mode = mode
        self.blur_kernel = kernel
        self.color = color
        self.threshold = threshold
        self.dilate = dilate
        self.feather = radius

    def _solid_color(self, shape: Tuple[int, int]) -> np.ndarray:
        key = (shape, self.color)
        if self._solid is None or self._solid[0] != key:
            self._solid = (key, np.full(shape + (3,), self.color, np.uint8))
        return self._solid[1]

    def background(self, frame_bgr: np.ndarray) -> Optional[np.ndarray]:
        """Return the background to composite ``frame_bgr`` onto (``None`` in mode none)."""
        height, width = frame_bgr.shape[:2]
        if self.mode == 'blur':
            if self._blur is not None:
                try:
                    return self._blur(frame_bgr, self.blur_kernel)
                except Exception as exc:  # noqa: B902 - a GPU failure must not stop output
                    self._blur, self.blur_error = None, 'GPU blur failed, using cpu: %s' % exc
            return blur_background(frame_bgr, self.blur_kernel)
        if self.mode == 'color':
            return self._solid_color((height, width))
        if self.mode == 'image':
            sized = self._sized.get((height, width))
            if sized is None:
                if len(self._sized) > 4:
                    self._sized.clear()
                sized = cover(self._picture, height, width)
                self._sized[(height, width)] = sized
            return sized
        return None

    def weight(self, alpha: np.ndarray, mask: Optional[np.ndarray] = None) -> np.ndarray:
        """
        Return the composite weight of the frame (float32 H×W in [0, 1]).

        ``mask`` is the dilated mask already computed for publishing, if any; it is used
        only when ``mask.dilate`` > 0 (otherwise the soft alpha is kept as is).
        """
        a = _float_alpha(alpha)
        if self.dilate > 0:
            if mask is None:
                mask = alpha_to_mask(a, self.threshold, self.dilate)
            a = np.maximum(a, (mask > 0).view(np.uint8).astype(np.float32))
        return feather(a, self.feather)

    def composite(self, frame_bgr: np.ndarray, alpha: np.ndarray,
                  mask: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        """
        Return ``frame·a + background·(1 − a)`` as uint8 BGR, or ``None`` in mode none.

        Mode ``transparent`` returns H×W×4 BGRA: the frame's colours and ``a`` as alpha.
        """
        if self.mode == 'none':
            return None
        if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.dtype != np.uint8:
            raise CompositeError('frame must be H×W×3 uint8 BGR, got %s %s'
                                 % (frame_bgr.dtype, frame_bgr.shape))
        if alpha.shape != frame_bgr.shape[:2]:
            raise CompositeError('alpha is %s but the frame is %s'
                                 % (alpha.shape, frame_bgr.shape[:2]))
        if mask is not None and mask.shape != alpha.shape:
            raise CompositeError('mask is %s but alpha is %s' % (mask.shape, alpha.shape))
        a = self.weight(alpha, mask)
        if self.mode == 'transparent':
            return np.dstack((frame_bgr, to_mono8(a)))
        back = self.background(frame_bgr)
        return cv2.blendLinear(frame_bgr, back, a, np.float32(1.0) - a)


def published(composite: np.ndarray, input_encoding: str) -> Tuple[np.ndarray, str]:
    """
    Return (image, encoding) of a composite as published: rgb8 for rgb8 input, else bgr8.

    A 4-channel composite (``composite.mode`` transparent, BGRA) is ``bgra8`` (``rgba8``
    for rgb8 input), the alpha being its fourth channel either way.
    """
    rgb = input_encoding == 'rgb8'
    if composite.ndim == 3 and composite.shape[2] == 4:
        if rgb:
            return cv2.cvtColor(composite, cv2.COLOR_BGRA2RGBA), 'rgba8'
        return composite, 'bgra8'
    if rgb:
        return image_encodings.from_bgr8(composite, 'rgb8'), 'rgb8'
    return composite, 'bgr8'

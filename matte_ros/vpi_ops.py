"""
GPU image operations through NVIDIA VPI (CUDA backend): the composite's blurred background.

VPI's Gaussian filter takes kernels of 3 to 11 px only, and its Rescale does no
pre-filtering.  A large blur (``composite.blur_kernel`` up to 255) is therefore a small
pyramid, computed by :func:`blur_plan`:

1. ``levels`` times: Gaussian (5 px, sigma 1) and halve (linear interpolation at
   exactly half size averages 2×2 pixels);
2. one Gaussian of ``sigma`` (kernel ≤ 11) at the smallest level;
3. enlarge back with linear interpolation (a tent of the level's width).

The sigmas are chosen so the variances add up to OpenCV's sigma for the same kernel,
as :func:`matte_ros.compositing.blur_background` does on the CPU.  :func:`apply_plan`
runs a plan with any pair of operations: test/test_backends.py runs it with OpenCV's
and compares with ``cv2.GaussianBlur``; :func:`blur_background` runs it with VPI's,
one U8 plane per colour channel (the format every VPI backend filters).
The VPI calls follow VPI 3's Python API and are not verified on hardware here.
"""

from dataclasses import dataclass
import math
from typing import Callable

from matte_ros import backends
import numpy as np

#: Largest sigma a VPI Gaussian of at most 11 px represents (±3 sigma in 5 px).
MAX_SIGMA = 5.0 / 3.0
#: The per-level anti-alias Gaussian before halving.
LEVEL_KSIZE, LEVEL_SIGMA = 5, 1.0
#: More levels than this make frames of a few pixels.
MAX_LEVELS = 6


def opencv_sigma(kernel: int) -> float:
    """Return the sigma OpenCV uses for a Gaussian of ``kernel`` px with sigma 0."""
    return 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8


def ksize_for(sigma: float) -> int:
    """Return the odd kernel size covering ±3 sigma, clamped to VPI's 3 … 11."""
    return int(min(11, max(3, 2 * math.ceil(3 * sigma) + 1)))


@dataclass(frozen=True)
class BlurPlan:
    """How to blur with VPI: ``levels`` halvings, then a Gaussian of ``sigma`` there."""

    levels: int
    sigma: float
    ksize: int


def blur_plan(kernel: int) -> BlurPlan:
    """Return the plan whose total variance equals OpenCV's for ``kernel`` (see above)."""
    sigma = opencv_sigma(kernel)
    target = sigma * sigma
    plan = BlurPlan(0, sigma, kernel if kernel <= 11 else ksize_for(sigma))
    for levels in range(1, MAX_LEVELS + 1):
        if plan.sigma <= MAX_SIGMA:
            break
        factor = 2 ** levels
        spent = sum(4 ** i * (LEVEL_SIGMA ** 2 + 0.25) for i in range(levels))
        spent += factor * factor / 6.0  # the final linear enlarging (a tent)
        if spent >= target:
            break
        sigma = math.sqrt(target - spent) / factor
        plan = BlurPlan(levels, sigma, ksize_for(sigma))
    return plan


def apply_plan(image, size, plan: BlurPlan, gaussian: Callable, resize: Callable):
    """
    Run ``plan`` on ``image`` of ``size`` (width, height) with the given operations.

    ``gaussian(image, ksize, sigma)`` and ``resize(image, (width, height))`` (linear).
    """
    width, height = size
    sizes = [(width, height)]
    for _ in range(plan.levels):
        image = gaussian(image, LEVEL_KSIZE, LEVEL_SIGMA)
        w, h = sizes[-1]
        sizes.append((max(1, (w + 1) // 2), max(1, (h + 1) // 2)))
        image = resize(image, sizes[-1])
    image = gaussian(image, plan.ksize, plan.sigma)
    if plan.levels:
        image = resize(image, (width, height))
    return image


def blur_background(frame: np.ndarray, kernel: int) -> np.ndarray:
    """
    Return the frame blurred like ``cv2.GaussianBlur(frame, (kernel, kernel), 0)``, on VPI.

    Raises RuntimeError when NVIDIA VPI is absent; the compositor then falls back to
    the CPU blur (and says so).
    """
    if kernel <= 1:
        return frame.copy()
    vpi = backends.nvidia_vpi()
    if vpi is None:
        raise RuntimeError('NVIDIA VPI is not available')
    height, width = frame.shape[:2]
    plan = blur_plan(kernel)

    def gaussian(image, ksize, sigma):
        return image.gaussian_filter(ksize, sigma, border=vpi.Border.CLAMP)

    def resize(image, size):
        return image.rescale(size, interp=vpi.Interp.LINEAR, border=vpi.Border.CLAMP)

    out = np.empty_like(frame)
    with vpi.Backend.CUDA:
        for channel in range(frame.shape[2]):
            plane = vpi.asimage(np.ascontiguousarray(frame[:, :, channel]))
            result = apply_plan(plane, (width, height), plan, gaussian, resize)
            with result.rlock_cpu() as data:
                out[:, :, channel] = data
    return out

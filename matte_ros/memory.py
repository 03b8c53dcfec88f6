"""
Memory budget: how much a configuration needs per frame size, and the refusal (ROS-free).

Every segmenter states its need (``Segmenter.memory_bytes(config, pixels)``: bytes per
pixel × pixels + a fixed part), the stabiliser and compositing state their own
(:func:`matte_ros.compositing.memory_bytes`) and the frame path adds
:data:`FRAME_BYTES_PER_PIXEL`.  :func:`check` refuses, with the numbers, a configuration
whose need for a frame of ``pixels`` pixels exceeds ``memory_budget_mb``.  The pipeline
checks at ``max_pixels`` (the largest frame the node accepts) when it is built or
reconfigured, and again at the first frame of each new size.

The default budget (3072 MB) is sized for an 8 GB Jetson, whose CPU and GPU share that
memory with the OS, the camera driver and ROS: with it, every segmenter at its default
settings fits at ``max_pixels`` 3840×2160.
"""

from matte_ros import compositing
from matte_ros import segmenters
from matte_ros import stabilizer

MB = 1024 * 1024
#: The frame path per pixel (bytes): the input message and its BGR frame (3 + 3), the
#: frame waiting in the slot (3), mask, alpha (1 + 1) and the output messages (5).
FRAME_BYTES_PER_PIXEL = 16


class MemoryBudgetError(ValueError):
    """A configuration or frame size that needs more memory than ``memory_budget_mb``."""


def need_bytes(config, pixels: int) -> int:
    """Return the bytes segmenter, stabiliser, compositing and frame path need."""
    segmenter = segmenters.segmenter_class(config['segmenter'])
    return (segmenter.memory_bytes(config, pixels) + stabilizer.memory_bytes(config, pixels)
            + compositing.memory_bytes(config, pixels) + FRAME_BYTES_PER_PIXEL * int(pixels))


def check(config, pixels: int, what: str) -> int:
    """
    Return the need for ``pixels`` pixels, or raise :class:`MemoryBudgetError` with it.

    ``what`` names the size in the message (``max_pixels 8294400``, ``frame 1920×1080``).
    """
    need = need_bytes(config, pixels)
    budget = int(config['memory_budget_mb']) * MB
    if need > budget:
        hint = segmenters.segmenter_class(config['segmenter']).memory_hint(config)
        raise MemoryBudgetError(
            'segmenter %s needs %d MB for %s%s, more than memory_budget_mb %d (lower '
            'max_pixels or the setting that costs memory, or raise the budget)'
            % (config['segmenter'], -(-need // MB), what, ' (%s)' % hint if hint else '',
               config['memory_budget_mb']))
    return need

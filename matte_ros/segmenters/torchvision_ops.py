"""
Import torchvision, with pure-torch NMS and RoIAlign when its C++ operators cannot load.

PyPI's x86_64 torchvision wheels are built against CUDA torch: their ``_C.so`` needs
``libtorch_cuda.so`` and ``libcudart``, so beside the CPU torch that development
machines and CI install, torchvision's own operators are missing and ``import
torchvision`` fails (``operator torchvision::nms does not exist``).  Mask R-CNN needs
two of them: RoIAlign, for which torchvision already falls back to its own pure-torch
implementation (but hands it to ``torch.compile``, which spends minutes compiling C++
at the first frame, and whose eager form takes ~10 s per 1000 boxes here), and
non-maximum suppression.  This module provides both in plain torch: :func:`nms` (same
contract: indices of kept boxes by decreasing score, IoU > threshold suppressed) and
:func:`roi_align` (same sampling points and border rules, sampled with
``grid_sample``: ~1 s per 1000 boxes on a busy 2-core machine, 10× less than the
eager form).

On a robot whose torchvision matches its torch (Jetson builds) the import simply
succeeds and nothing here is used.  :data:`FALLBACK` says which case happened.
"""

import importlib
import sys

import numpy as np
import torch

#: True when torchvision runs with this module's NMS and RoIAlign.
FALLBACK = False
_LIBRARY = None  # keeps the operator definitions alive


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """
    Return the indices (int64) of the boxes kept by greedy non-maximum suppression.

    ``boxes`` are [N, 4] ``(x1, y1, x2, y2)``; a box is dropped when its IoU with a kept
    box of higher score exceeds ``iou_threshold``.  Kept indices come by decreasing score.
    """
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    b = boxes[order].detach().to('cpu', torch.float64).numpy()
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    suppressed = np.zeros(len(b), bool)
    keep = []
    for i in range(len(b)):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = slice(i + 1, None)
        w = np.clip(np.minimum(b[i, 2], b[rest, 2]) - np.maximum(b[i, 0], b[rest, 0]), 0, None)
        h = np.clip(np.minimum(b[i, 3], b[rest, 3]) - np.maximum(b[i, 1], b[rest, 1]), 0, None)
        inter = w * h
        iou = inter / np.maximum(area[i] + area[rest] - inter, 1e-12)
        suppressed[rest] |= iou > iou_threshold
    return order[torch.as_tensor(keep, dtype=torch.int64, device=order.device)]


def roi_align(features: torch.Tensor, rois: torch.Tensor, spatial_scale: float,
              pooled_height: int, pooled_width: int, sampling_ratio: int,
              aligned: bool) -> torch.Tensor:
    """
    Return RoIAlign of ``rois`` [K, 5] (batch index, x1, y1, x2, y2) as [K, C, PH, PW].

    Each bin averages ``sampling_ratio``² bilinear samples, as torchvision's kernel does:
    points within one pixel outside the map take the border value, farther ones count 0.
    Adaptive sampling (``sampling_ratio`` ≤ 0) is left to torchvision's own eager code.
    """
    if sampling_ratio <= 0:
        return _EAGER_ROI_ALIGN(features, rois, spatial_scale, pooled_height, pooled_width,
                                sampling_ratio, aligned)
    _, channels, height, width = features.shape
    count = rois.shape[0]
    out = features.new_zeros((count, channels, pooled_height, pooled_width))
    if count == 0:
        return out
    offset = 0.5 if aligned else 0.0
    start = rois[:, 1:3] * spatial_scale - offset                 # [K, 2] (x, y)
    size = rois[:, 3:5] * spatial_scale - offset - start
    if not aligned:
        size = size.clamp(min=1.0)
    grid = sampling_ratio

    def points(axis: int, bins: int) -> torch.Tensor:
        steps = (torch.arange(bins * grid, device=rois.device, dtype=rois.dtype) + 0.5) / grid
        return start[:, axis, None] + steps[None] * (size[:, axis, None] / bins)  # [K, B*G]

    ys, xs = points(1, pooled_height), points(0, pooled_width)
    inside = (((ys >= -1.0) & (ys <= height))[:, :, None]
              & ((xs >= -1.0) & (xs <= width))[:, None, :])        # [K, PH*G, PW*G]
    gy = ys.clamp(0, height - 1) * (2.0 / max(height - 1, 1)) - 1.0
    gx = xs.clamp(0, width - 1) * (2.0 / max(width - 1, 1)) - 1.0
    sample_grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), -1)
    batch = rois[:, 0].long()
    for index in torch.unique(batch).tolist():
        chosen = torch.nonzero(batch == index).flatten()
        grid_k = sample_grid[chosen].to(features.dtype)             # [k, PH*G, PW*G, 2]
        k = grid_k.shape[0]
        samples = torch.nn.functional.grid_sample(
            features[index:index + 1], grid_k.reshape(1, k * pooled_height * grid, -1, 2),
            mode='bilinear', padding_mode='border', align_corners=True)
        samples = samples.reshape(channels, k, pooled_height * grid, pooled_width * grid)
        samples = samples.permute(1, 0, 2, 3) * inside[chosen, None].to(features.dtype)
        out[chosen] = torch.nn.functional.avg_pool2d(samples, grid)  # bin means
    return out


_EAGER_ROI_ALIGN = None


def _define_operators() -> None:
    """Define ``torchvision::nms`` / ``qnms`` (torchvision registers fake kernels for them)."""
    global _LIBRARY
    if _LIBRARY is not None:
        return
    library = torch.library.Library('torchvision', 'DEF')
    for name in ('nms', 'qnms'):
        library.define('%s(Tensor dets, Tensor scores, float iou_threshold) -> Tensor' % name)
    library.impl('nms', nms, 'CPU')
    _LIBRARY = library


def import_torchvision():
    """Return the torchvision module, patched with :func:`nms` when its operators are missing."""
    global FALLBACK
    try:
        import torchvision
        return torchvision
    except RuntimeError as exc:
        if 'torchvision::' not in str(exc):
            raise
    for name in [n for n in sys.modules if n == 'torchvision' or n.startswith('torchvision.')]:
        del sys.modules[name]
    _define_operators()
    torchvision = importlib.import_module('torchvision')
    boxes = importlib.import_module('torchvision.ops.boxes')
    boxes.nms = nms          # batched_nms (RPN, RoI heads) looks nms up here
    torchvision.ops.nms = nms
    global _EAGER_ROI_ALIGN
    module = importlib.import_module('torchvision.ops.roi_align')
    _EAGER_ROI_ALIGN = getattr(module._roi_align, '__wrapped__', module._roi_align)
    module._roi_align = roi_align  # what torchvision.ops.roi_align runs without its C++ op
    FALLBACK = True
    return torchvision

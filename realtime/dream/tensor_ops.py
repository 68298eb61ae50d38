"""Small reductions and filters the dream's tail runs every frame, in the form that is fast on a CPU.

Measured at 320x180 on one core of an AMD EPYC (CPU time, so a loaded machine does not blur it):
torch's `std` over the last two dims of a 1x3xHxW tensor takes 1.0 ms a call, a two-pass mean and
spread over the flattened channel 0.1 ms; `avg_pool2d` 7x7 without the padding counted takes
2.1 ms, OpenCV's box filter with the same counts 0.1 ms. The anchor's two spreads and the depth
gate's blur were 5 of the tail's 6.7 ms. Every function here computes what the slow form did (to
float32 rounding) and stays plain torch off the CPU, where the tail may be a captured CUDA graph.
"""

from __future__ import annotations

import cv2
import torch
import torch.nn.functional as F


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, spread) of each channel of a 1xCxHxW tensor, each 1xCx1x1: `x.mean((2, 3))` and
    `x.std((2, 3))` (unbiased), in two passes over the flattened channel."""
    flat = x.flatten(2)
    mean = flat.mean(2, keepdim=True)
    spread = torch.linalg.vector_norm(flat - mean, dim=2, keepdim=True) / max(1, flat.shape[-1] - 1) ** 0.5
    return mean.unsqueeze(-1), spread.unsqueeze(-1)


def spread(x: torch.Tensor) -> torch.Tensor:
    """`x.std()` over every element (unbiased), in two passes."""
    return torch.linalg.vector_norm(x - x.mean()) / max(1, x.numel() - 1) ** 0.5


def box_mean(x: torch.Tensor, size: int) -> torch.Tensor:
    """`F.avg_pool2d(x, size, stride=1, padding=size // 2, count_include_pad=False)` of a 1x1xHxW
    tensor (odd `size`): each pixel's mean over the size x size square around it, inside the image."""
    if x.device.type != "cpu" or x.shape[:2] != (1, 1) or x.dtype != torch.float32 or x.requires_grad:
        return F.avg_pool2d(x, size, stride=1, padding=size // 2, count_include_pad=False)
    height, width = x.shape[-2:]
    plane = x[0, 0].contiguous().numpy()
    sums = cv2.boxFilter(plane, -1, (size, size), normalize=False, borderType=cv2.BORDER_CONSTANT)
    return torch.from_numpy(sums).div_(_inside_counts(height, width, size)).view(1, 1, height, width)


def _inside_counts(height: int, width: int, size: int) -> torch.Tensor:
    """How many pixels of each pixel's square lie inside the image (the pooling's divisor)."""

    def along(n: int) -> torch.Tensor:
        index = torch.arange(n)
        return (torch.clamp(index + size // 2, max=n - 1) - torch.clamp(index - size // 2, min=0) + 1).float()

    return along(height)[:, None] * along(width)[None, :]

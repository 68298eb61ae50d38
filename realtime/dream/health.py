"""Is a dream still a picture? The last line of defence after validation.

A dream that went non-finite (NaN spreads through the warm start and never leaves: every later
frame would be black) or collapsed to one colour while the camera shows detail is thrown away:
the caller shows the camera frame and drops the carried dream, so the next frame starts clean.
"""

from __future__ import annotations

import torch

COLLAPSE_RATIO = 0.05  # a dream with under this share of the source's contrast has lost the picture
MIN_SOURCE_STD = 0.02  # a camera frame flatter than this (lens cap, black screen) may dream flat


def dream_fault(dream: torch.Tensor, source: torch.Tensor) -> str | None:
    """Why `dream` (1x3xhxw in [0, 1]) is not a picture of `source`, or None when it is."""
    # one device->host transfer for the three numbers (a GPU sync per dream, not three)
    total, dream_std, source_std = torch.stack([dream.sum(), dream.std(), source.std()]).tolist()
    if total != total or abs(total) == float("inf"):  # NaN or inf somewhere in the dream
        return "the dream went non-finite (NaN)"
    if source_std > MIN_SOURCE_STD and dream_std < COLLAPSE_RATIO * source_std:
        return "the dream collapsed to one colour"
    return None

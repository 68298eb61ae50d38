"""Warm start: the dream of frame t-1 is not thrown away.

Its residual r = dream − source is carried to frame t (times a persistence factor) and added to
the new source frame, so a few steps deepen an existing dream instead of starting over. `warp`
is the seam where optical flow will move the residual along with the scene; today it is identity.
"""

from __future__ import annotations

import torch

from realtime.params import DreamParams


class WarmStart:
    def __init__(self) -> None:
        self.residual: torch.Tensor | None = None

    def reset(self) -> None:
        self.residual = None

    def initial(self, source: torch.Tensor, params: DreamParams) -> torch.Tensor:
        """The image the frame's gradient steps start from."""
        if params.warm_start == "off" or self.residual is None or self.residual.shape != source.shape:
            return source
        carried = self.warp(self.residual, source)
        return (source + params.persistence * carried).clamp_(0.0, 1.0)

    def update(self, source: torch.Tensor, dream: torch.Tensor) -> torch.Tensor:
        """Remember this frame's residual and return it."""
        self.residual = dream - source
        return self.residual

    def warp(self, residual: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        return residual

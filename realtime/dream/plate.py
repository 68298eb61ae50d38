"""The background's dream, remembered while someone stands in front of it (issue 24).

With a still camera the booth's background does not move; what moves is people. Where a pixel moves
with the camera (the flow is glued to it and checks out) its dream is the background's, and the
plate keeps a copy of it, with the grey frame it was dreamt on. When a walker uncovers the
background again, the flow there is wrong (it drags the walker's dream along, which the forward-
backward check cannot see) and the warm start drops it: if the uncovered pixel looks like the plate
again, the plate's dream goes back in, formed and still, instead of a smear or a dream regrown
from nothing. A moving camera clears the plate (its background moves too: the flow carries it).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from realtime.dream import frames
from realtime.dream.flow import PHOTO_BLUR, FlowField, exposure_matched

# the uncovered pixel against the plate's grey (blurred over PHOTO_BLUR px): the same background
# up to MATCH_OK grey levels, another thing from MATCH_BAD on
MATCH_OK, MATCH_BAD = 6.0, 14.0
SETTLED = 0.9  # glued and valid at least this much: the pixel is the background's


class Plate:
    def __init__(self) -> None:
        self.residual: torch.Tensor | None = None  # 1x3xHxW, the background's dream
        self.grey: np.ndarray | None = None  # HxW uint8, the frame it was dreamt on
        self.kept: np.ndarray | None = None  # HxW bool: where the plate holds a dream
        self._settled: np.ndarray | None = None  # HxW float32: this frame's background (`remember`)
        self._staging: frames.Staging | None = None

    def reset(self) -> None:
        self.residual = self.grey = self.kept = self._settled = None

    def restore(
        self, moved: torch.Tensor, field: FlowField, grey: np.ndarray
    ) -> tuple[torch.Tensor, np.ndarray | None]:
        """(residual, restored): `moved` (the carried residual) with the plate's dream put back
        where the flow failed and the frame shows the plate's background again; `restored` HxW in
        [0, 1], None where nothing was. Also notes this frame's background for `remember`."""
        if not field.still or field.glued is None or field.valid is None:
            self.reset()
            return moved, None
        self._settled = ((field.glued * field.valid) >= SETTLED).astype(np.float32)
        if self.residual is None or self.residual.shape != moved.shape or self.grey.shape != grey.shape:
            self.residual, self.grey, self.kept = None, None, None
            return moved, None
        failed = 1.0 - field.valid
        if float(failed.max()) <= 0.0:
            return moved, None
        difference = cv2.absdiff(exposure_matched(self.grey, grey), grey).astype(np.float32)
        difference = cv2.blur(difference, (PHOTO_BLUR, PHOTO_BLUR))
        match = np.clip((MATCH_BAD - difference) / (MATCH_BAD - MATCH_OK), 0.0, 1.0)
        restored = failed * match * self.kept
        if float(restored.max()) <= 0.0:
            return moved, None
        return torch.lerp(moved, self.residual, self._upload(restored, moved)), restored

    def remember(self, residual: torch.Tensor, grey: np.ndarray) -> None:
        """Keep the frame's dream where the pixel was the background (`restore` found where)."""
        settled = self._settled
        self._settled = None
        if settled is None or settled.shape != grey.shape:
            return
        if self.residual is None or self.residual.shape != residual.shape:
            self.residual = torch.zeros_like(residual)
            self.grey = grey.copy()
            self.kept = np.zeros(grey.shape, np.float32)
        self.residual = torch.lerp(self.residual, residual, self._upload(settled, residual))
        np.copyto(self.grey, grey, where=settled > 0)
        np.maximum(self.kept, settled, out=self.kept)

    def _upload(self, weights: np.ndarray, like: torch.Tensor) -> torch.Tensor:
        """HxW weights as a 1x1xHxW tensor beside `like`."""
        if like.device.type == "cpu":
            return torch.from_numpy(weights[None, None]).to(like.dtype)
        if self._staging is None or self._staging.device != like.device:
            self._staging = frames.Staging(like.device)
        return self._staging.upload(weights[None, None]).to(like.dtype)

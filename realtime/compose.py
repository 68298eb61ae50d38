"""Compose: the small dream residual, upscaled, on top of the full-resolution camera frame.

Upscaling the residual rather than the dreamed image keeps the camera's detail sharp while the
dream itself runs at a fraction of the resolution.
"""

from __future__ import annotations

import cv2
import numpy as np


def compose(frame: np.ndarray, residual: np.ndarray | None) -> np.ndarray:
    """frame: HxWx3 uint8; residual: hxwx3 float32 in pixel units. Returns HxWx3 uint8."""
    if residual is None:
        return frame
    height, width = frame.shape[:2]
    if residual.shape[:2] != (height, width):
        residual = cv2.resize(residual, (width, height), interpolation=cv2.INTER_LINEAR)
    # a saturating add straight into uint8: no float copy of the full-resolution frame
    return cv2.add(frame, residual, dtype=cv2.CV_8U)

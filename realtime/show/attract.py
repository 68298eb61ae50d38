"""Unattended mode's attract loop: when nobody has moved for a while, dream something else.

A camera pointed at an empty room would dream the same still picture for hours and look frozen.
`MotionDetector` measures frame-to-frame change on a tiny grey copy of each camera frame (cheap,
and blind to sensor noise); `AttractMode` switches to a slow dream of the synthetic scene after
`idle_s` seconds without motion, and back to the camera on the first frame that moves.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

log = logging.getLogger(__name__)

MOTION_SIZE = (64, 36)  # the grey thumbnail motion is measured on
MOTION_THRESHOLD = 3.0  # mean absolute grey-level change (0-255) that counts as someone moving


class MotionDetector:
    def __init__(self, threshold: float = MOTION_THRESHOLD):
        self.threshold = threshold
        self._previous: np.ndarray | None = None
        self.level = 0.0  # the last measure, for the HUD

    def moved(self, image: np.ndarray) -> bool:
        grey = cv2.cvtColor(cv2.resize(image, MOTION_SIZE, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        grey = grey.astype(np.float32)
        previous, self._previous = self._previous, grey
        if previous is None:
            return False
        self.level = float(np.abs(grey - previous).mean())
        return self.level > self.threshold


class AttractMode:
    """Decides, frame by frame, whether the show should be in its attract loop."""

    def __init__(self, idle_s: float, detector: MotionDetector | None = None):
        self.idle_s = idle_s
        self.detector = detector or MotionDetector()
        self.active = False
        self._last_motion: float | None = None

    def update(self, image: np.ndarray, now: float) -> bool:
        """Feed one new camera frame; True while the attract loop should run."""
        if self._last_motion is None:
            self._last_motion = now
        if self.detector.moved(image):
            self._last_motion = now
            if self.active:
                log.info("motion: back to the camera")
            self.active = False
        elif not self.active and now - self._last_motion >= self.idle_s:
            log.info("no motion for %.0f s: attract loop", now - self._last_motion)
            self.active = True
        return self.active

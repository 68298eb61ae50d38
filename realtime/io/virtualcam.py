"""The composed show as a virtual camera (pyvirtualcam) for OBS, Zoom, Resolume or TouchDesigner.

A virtual camera has one fixed size, so frames are scaled to it. Where pyvirtualcam or its
platform backend is missing, opening fails with one line saying what to install.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from realtime.errors import DreamcamError

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "on Linux install v4l2loopback (sudo apt install v4l2loopback-dkms && "
    "sudo modprobe v4l2loopback exclusive_caps=1); on Windows or macOS install OBS Studio 26+ "
    "and start its virtual camera once"
)


class VirtualCameraError(DreamcamError):
    """No virtual camera can be opened on this machine (missing package or driver)."""


class VirtualCamera:
    def __init__(self, width: int, height: int, fps: float):
        try:
            import pyvirtualcam
        except ImportError:
            raise VirtualCameraError("--virtual-cam needs pyvirtualcam: pip install 'dreamcam[vj]'") from None
        try:
            self._camera = pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.RGB)
        except (RuntimeError, ValueError, OSError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise VirtualCameraError(f"no virtual camera backend ({first}); {INSTALL_HINT}") from None
        self.size = (width, height)
        self.frames_sent = 0
        log.info("virtual camera %s (%dx%d)", self._camera.device, width, height)

    def send(self, image: np.ndarray) -> None:
        width, height = self.size
        if image.shape[1] != width or image.shape[0] != height:
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        self._camera.send(np.ascontiguousarray(image))
        self.frames_sent += 1

    @property
    def device(self) -> str:
        return str(self._camera.device)

    def close(self) -> None:
        self._camera.close()

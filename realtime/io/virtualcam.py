"""The composed show as a virtual camera (pyvirtualcam) for OBS, Zoom, Resolume or TouchDesigner.

A virtual camera has one fixed size, so frames are scaled to it (by the link's thread: see
realtime.io.links). Where pyvirtualcam or its platform backend is missing, opening fails with one
line saying what to install.
"""

from __future__ import annotations

import logging

import numpy as np

from realtime.io.links import Link, LinkError

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "on Linux install v4l2loopback (sudo apt install v4l2loopback-dkms && "
    "sudo modprobe v4l2loopback exclusive_caps=1); on Windows or macOS install OBS Studio 26+ "
    "and start its virtual camera once"
)


class VirtualCameraError(LinkError):
    """No virtual camera can be opened on this machine (missing package or driver)."""


class VirtualCamera(Link):
    kind = "virtual camera"

    def __init__(self, width: int, height: int, fps: float):
        try:
            import pyvirtualcam
        except ImportError:
            raise VirtualCameraError("--virtual-cam needs pyvirtualcam: pip install 'dreamcam[vj]'") from None
        self._pyvirtualcam = pyvirtualcam
        self._camera = None
        super().__init__("", fps, (width, height))  # opens now: a missing driver is a start-up error

    def _open(self, width: int, height: int) -> None:
        pyvirtualcam = self._pyvirtualcam
        try:
            self._camera = pyvirtualcam.Camera(width, height, self.fps, fmt=pyvirtualcam.PixelFormat.RGB)
        except (RuntimeError, ValueError, OSError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise VirtualCameraError(f"no virtual camera backend ({first}); {INSTALL_HINT}") from None
        self.name = self.device
        log.info("virtual camera %s (%dx%d)", self.device, width, height)

    def _publish(self, image: np.ndarray) -> None:
        self._camera.send(image)

    def _close(self) -> None:
        if self._camera is not None:
            self._camera.close()
            self._camera = None

    @property
    def device(self) -> str:
        return str(self._camera.device) if self._camera is not None else "(closed)"

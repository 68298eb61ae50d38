"""`--spout NAME`: the composed output as a Spout sender (Windows; SpoutGL, in the `vj` extra).

Written against SpoutGL's documented API and examples (SpoutSender, setSenderName, sendImage,
setFrameSync, releaseSender); untested on hardware, since dreamcam is developed on Linux. Spout
shares an OpenGL texture: the link's own thread makes the GL context and does every call.
"""

from __future__ import annotations

import importlib

import numpy as np

from realtime.io.links import Link, LinkError, check_link_name, require_platform


class SpoutSender(Link):
    kind = "Spout"

    def __init__(self, name: str, fps: float):
        name = check_link_name("--spout", name)
        require_platform("--spout")
        try:
            self._spoutgl = importlib.import_module("SpoutGL")
        except ImportError:
            raise LinkError("--spout needs SpoutGL: pip install 'dreamcam[vj]'") from None
        self._sender = None
        super().__init__(name, fps)

    def _open(self, width: int, height: int) -> None:
        sender = self._spoutgl.SpoutSender()
        sender.createOpenGL()  # the link thread has no GL context of its own
        sender.setSenderName(self.name)
        self._sender = sender

    def _publish(self, image: np.ndarray) -> None:
        height, width = image.shape[:2]
        # SpoutGL's sendImage(buffer, width, height, format, invert, host_fbo); GL_RGB: no alpha copy
        if not self._sender.sendImage(image, width, height, self._spoutgl.enums.GL_RGB, False, 0):
            raise LinkError("Spout refused the frame")
        self._sender.setFrameSync(self.name)  # receivers that wait for frames get woken

    def _close(self) -> None:
        if self._sender is not None:
            self._sender.releaseSender()
            self._sender.closeOpenGL()
            self._sender = None

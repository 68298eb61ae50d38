"""`--syphon NAME`: the composed output as a Syphon server (macOS; syphon-python, in the `vj` extra).

Written against syphon-python's documented API and examples (SyphonMetalServer, a Metal texture
filled from numpy, publish_frame_texture); untested on hardware, since dreamcam is developed on
Linux. Every call happens on the link's own thread.
"""

from __future__ import annotations

import importlib

import numpy as np

from realtime.io.links import Link, LinkError, check_link_name, require_platform


class SyphonSender(Link):
    kind = "Syphon"

    def __init__(self, name: str, fps: float):
        name = check_link_name("--syphon", name)
        require_platform("--syphon")
        try:
            self._syphon = importlib.import_module("syphon")
            self._numpy_utils = importlib.import_module("syphon.utils.numpy")
            self._raw_utils = importlib.import_module("syphon.utils.raw")
        except ImportError:
            raise LinkError("--syphon needs syphon-python: pip install 'dreamcam[vj]'") from None
        self._server = self._texture = self._rgba = None
        super().__init__(name, fps)

    def _open(self, width: int, height: int) -> None:
        self._server = self._syphon.SyphonMetalServer(self.name)
        self._texture = self._raw_utils.create_mtl_texture(self._server.device, width, height)
        self._rgba = np.full((height, width, 4), 255, np.uint8)  # Metal's RGBA8 texture; opaque

    def _publish(self, image: np.ndarray) -> None:
        self._rgba[..., :3] = image
        self._numpy_utils.copy_image_to_mtl_texture(self._rgba, self._texture)
        # numpy rows run top to bottom, Metal's texture origin is bottom-left: flipped, as in
        # syphon-python's video example
        self._server.publish_frame_texture(self._texture, is_flipped=True)

    def _poll(self) -> str:
        return "client connected" if self._server.has_clients else "no client yet"

    def _close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = self._texture = None

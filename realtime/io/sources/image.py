"""A still image as a source: loaded once, handed out as a stream of new frames."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np

from realtime.errors import SourceError
from realtime.io.sources.base import DEFAULT_FPS, Frame, Pacer, Source, to_rgb

log = logging.getLogger(__name__)


def _read_image(path: Path) -> np.ndarray:
    try:
        # imdecode of the bytes rather than imread(path): imread cannot open non-ASCII paths on Windows.
        data = np.fromfile(path, np.uint8)
    except OSError as exc:
        raise SourceError(
            f"cannot read image '{path}': {exc.strerror}; check the path and its permissions"
        ) from exc
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None  # imdecode asserts on empty input
    if image is None:
        raise SourceError(f"cannot read image '{path}': not an image file OpenCV can decode")
    return to_rgb(image, f"image '{path}'")


class ImageSource(Source):
    """A still image, loaded once and handed out as a stream of new frames."""

    def __init__(
        self,
        path: str | Path,
        *,
        paced: bool = True,
        fps: float = DEFAULT_FPS,
        max_size: tuple[int, int] | None = None,
    ) -> None:
        self.path = Path(path)
        super().__init__(f"image {self.path.name}", fps, max_size)
        self._image = self._fit(_read_image(self.path))  # once, not per frame
        self._pacer = Pacer(fps, paced, self._closed)
        h, w = self._image.shape[:2]
        log.info("opened %s (%dx%d)", self.name, w, h)

    def read(self, timeout: float = 0.5) -> Frame | None:
        index = self._pacer.next_index(timeout)
        if index is None:
            return None
        # A copy per frame: the receiver owns its image and may draw on it.
        return Frame(self._image.copy(), time.perf_counter(), index)

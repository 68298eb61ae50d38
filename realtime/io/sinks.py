"""Outputs besides the window: a video recorder and PNG snapshots.

A slow disk must never stall the dream loop, so the recorder encodes on its own thread from a
bounded queue and counts the frames it had to drop when the queue was full.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Collection

import cv2
import numpy as np

from realtime.errors import ConfigError

log = logging.getLogger(__name__)

_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTS = tuple(sorted(_FOURCC))


def check_output_path(path: str, extensions: tuple[str, ...] = VIDEO_EXTS) -> None:
    """Fail before the work starts if the output file could not be written."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ConfigError(f"output folder '{folder}' does not exist; create it or choose another path")
    if os.path.splitext(path)[1].lower() not in extensions:
        raise ConfigError(f"cannot write '{path}': use one of {', '.join(extensions)}")


class VideoRecorder:
    """Writes RGB frames to a video file from a background thread."""

    def __init__(self, path: str, fps: float, queue_size: int = 64):
        check_output_path(path)
        self.path, self.fps = path, fps
        self.frames_written = 0
        self.frames_dropped = 0
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=queue_size)
        self._writer: cv2.VideoWriter | None = None
        self._thread = threading.Thread(target=self._encode, name="recorder", daemon=True)
        self._thread.start()

    def write(self, image: np.ndarray) -> None:
        try:
            self._queue.put_nowait(image)
        except queue.Full:
            self.frames_dropped += 1

    def close(self) -> None:
        """Finish writing every queued frame, then close the file."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self.frames_dropped:
            log.warning("recorder dropped %d frames (disk too slow)", self.frames_dropped)
        log.info("recorded %d frames to %s", self.frames_written, self.path)

    def _encode(self) -> None:
        while (image := self._queue.get()) is not None:
            if self._writer is None:
                height, width = image.shape[:2]
                fourcc = cv2.VideoWriter_fourcc(*_FOURCC[os.path.splitext(self.path)[1].lower()])
                self._writer = cv2.VideoWriter(self.path, fourcc, self.fps, (width, height))
                if not self._writer.isOpened():
                    log.error("cannot open %s for writing; recording stopped", self.path)
                    self._drain()
                    return
            self._writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            self.frames_written += 1
        if self._writer is not None:
            self._writer.release()

    def _drain(self) -> None:
        while self._queue.get() is not None:
            self.frames_dropped += 1


def unique_path(folder: str, stem: str, ext: str, taken: Collection[str] = ()) -> str:
    """A path in `folder` that does not exist yet: stem-YYYYmmdd-HHMMSS[-N].ext (never overwrites).

    `taken` names paths already promised to writers that may not have created their file yet.
    """
    os.makedirs(folder, exist_ok=True)
    base = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, n = os.path.join(folder, base + ext), 1
    while os.path.exists(candidate) or candidate in taken:
        candidate, n = os.path.join(folder, f"{base}-{n}{ext}"), n + 1
    return candidate


def save_snapshot(image: np.ndarray, folder: str = "snapshots") -> str:
    """Save an RGB frame as a new PNG file and return its path."""
    path = unique_path(folder, "dreamcam", ".png")
    if not cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        log.error("could not write snapshot %s", path)
    else:
        log.info("snapshot saved: %s", path)
    return path

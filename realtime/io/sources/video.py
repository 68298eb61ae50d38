"""A video file as a source: it loops at its end; paced by a reader thread, or frame by frame."""

from __future__ import annotations

import logging
import shlex
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from realtime.errors import SourceError
from realtime.io.sources.base import (
    DEFAULT_FPS,
    JOIN_TIMEOUT,
    CaptureLike,
    Frame,
    Mailbox,
    Source,
    grab,
    release_capture,
    sane_fps,
    to_rgb,
)

log = logging.getLogger(__name__)


class VideoSource(Source):
    """A video file that loops at its end.

    Paced: a reader thread decodes at the file's frame rate and keeps only the newest frame, as a
    camera would. Unpaced: read() decodes the next frame itself, so every frame is seen exactly once.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        paced: bool = True,
        retry_delay: float = 0.25,
        max_size: tuple[int, int] | None = None,
    ) -> None:
        self.path = Path(path)
        super().__init__(f"video {self.path.name}", DEFAULT_FPS, max_size)
        self._retry_delay = retry_delay
        self._status = ""
        self._index = 0
        self._lock = threading.Lock()  # unpaced: read() may be called from more than one thread
        # Open and decode the first frame here, synchronously: a bad file fails at once, not later.
        self._capture: CaptureLike = cv2.VideoCapture(str(self.path))
        first, _ = grab(self._capture) if self._capture.isOpened() else (None, "")
        if first is None:
            release_capture(self._capture)
            quoted = shlex.quote(str(self.path))
            raise SourceError(
                f"cannot read video '{self.path}': the file is empty, corrupt or in a format OpenCV "
                f"cannot decode; re-encode it (e.g. ffmpeg -i {quoted} out.mp4)"
            )
        self.fps = sane_fps(self._capture.get(cv2.CAP_PROP_FPS))
        h, w = first.shape[:2]
        log.info("opened %s (%dx%d @ %g fps, %s)", self.name, w, h, self.fps, "paced" if paced else "unpaced")
        self._pending: np.ndarray | None = first
        self._mailbox: Mailbox | None = None
        self._thread: threading.Thread | None = None
        if paced:
            self._mailbox = Mailbox()
            self._mailbox.put(self._frame(first))
            self._pending = None
            self._thread = threading.Thread(target=self._run, name=f"dreamcam {self.name}", daemon=True)
            self._thread.start()

    @property
    def status(self) -> str:
        return self._status

    def _frame(self, bgr: np.ndarray) -> Frame:
        t_capture = time.perf_counter()
        frame = Frame(to_rgb(self._fit(bgr), self.name), t_capture, self._index)
        self._index += 1
        return frame

    def _decode_next(self) -> np.ndarray | None:
        """The next frame, starting over at the end of the file; None if the file became unreadable."""
        image, _ = grab(self._capture)
        if image is not None:
            return image
        # End of file (or a damaged tail): reopen rather than seek to frame 0, because seeking is
        # unreliable in some containers and codecs while reopening always lands on the first frame.
        log.debug("%s: end of file, looping", self.name)
        release_capture(self._capture)
        self._capture = cv2.VideoCapture(str(self.path))
        image, _ = grab(self._capture)
        if image is None and not self._status:
            log.warning("%s became unreadable (moved or deleted?); retrying", self.name)
            self._status = f"{self.name} unreadable: retrying"
        elif image is not None and self._status:
            log.info("%s readable again", self.name)
            self._status = ""
        return image

    def read(self, timeout: float = 0.5) -> Frame | None:
        if self._mailbox is not None:
            return self._mailbox.take(timeout)
        with self._lock:
            if self.closed:
                return None
            image, self._pending = self._pending, None
            if image is None:
                image = self._decode_next()
            if image is not None:
                return self._frame(image)
        self._closed.wait(max(timeout, 0.0))  # unreadable: honour the timeout instead of spinning the caller
        return None

    def _run(self) -> None:
        period = 1.0 / self.fps
        due = time.perf_counter() + period  # the first frame was posted at open
        delay = self._retry_delay
        while not self._closed.wait(max(due - time.perf_counter(), 0.0)):
            image = self._decode_next()
            if image is None:
                if self._closed.wait(delay):
                    break
                delay = min(delay * 2.0, 5.0)
                due = time.perf_counter()
                continue
            delay = self._retry_delay
            assert self._mailbox is not None
            self._mailbox.put(self._frame(image))
            due += period
            now = time.perf_counter()
            if due < now - period:  # decoding fell behind (slow codec, a loop's reopen): resync, no burst
                due = now
        release_capture(self._capture)

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        if self._mailbox is not None:
            self._mailbox.close()
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT)  # the thread releases the capture: it is the one using it
        else:
            with self._lock:
                release_capture(self._capture)

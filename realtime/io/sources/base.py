"""The source contract every kind of source builds on: `Frame`, `Source` (`read() -> Frame | None`,
always the newest frame, so that a slow dream never works through a backlog of stale ones), the
one-slot `Mailbox` a reader thread overwrites, the `Pacer` that hands out frames in real time, and
the few helpers the OpenCV-backed kinds share (BGR to RGB, a safe grab, a sane frame rate).

Each kind lives in a module of its own beside this one (camera, video, image, synthetic, ndi);
`realtime.io.sources.opener.open_source` picks one for what the user typed after --source.
"""

from __future__ import annotations

import abc
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from realtime.errors import SourceError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
DEFAULT_FPS = 30.0
# close() waits this long for a reader thread; a driver stuck in a blocking read cannot be interrupted,
# and a program that will not quit is worse than a daemon thread left to finish on its own.
JOIN_TIMEOUT = 1.0


@dataclass(frozen=True, eq=False)  # eq=False: comparing or hashing the pixel array is never what you want
class Frame:
    image: np.ndarray  # HxWx3 uint8 RGB, C-contiguous, owned by the receiver (safe to modify)
    t_capture: float  # time.perf_counter() when the frame was captured or generated
    index: int  # 0, 1, 2... per source; gaps mean frames the consumer was too slow to see


class CaptureLike(Protocol):
    """The part of cv2.VideoCapture a camera source uses; tests inject fakes."""

    def isOpened(self) -> bool: ...

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...

    def get(self, prop_id: int) -> float: ...


CaptureFactory = Callable[[int | str], CaptureLike]


class Source(abc.ABC):
    """A stream of frames. `read()` returns the newest frame not returned before, or None."""

    name: str  # human description for the HUD and logs, e.g. "camera 0"
    fps: float  # nominal frame rate; DEFAULT_FPS when the source does not say

    def __init__(self, name: str, fps: float, max_size: tuple[int, int] | None = None) -> None:
        self.name = name
        self.fps = fps
        self.max_size = max_size  # (width, height) the show can use; larger frames are reduced here
        self._reduced_to: tuple[int, int] | None = None
        # One event serves as "closed" flag and as the interruptible sleep of every wait in a source.
        self._closed = threading.Event()

    @property
    def status(self) -> str:
        """ "" when all is well, else one short line for the HUD (e.g. a camera reconnecting)."""
        return ""

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @abc.abstractmethod
    def read(self, timeout: float = 0.5) -> Frame | None:
        """The newest frame not returned before; waits up to `timeout` s for one, else None."""

    def close(self) -> None:
        """Stop threads and release devices; idempotent. read() returns None afterwards."""
        self._closed.set()

    def _fit(self, image: np.ndarray) -> np.ndarray:
        """`image` reduced to fit within `max_size` (aspect kept), said once in the log: an 8000x8000
        photo would otherwise cost 190 MB and tens of ms in every stage of every frame."""
        if self.max_size is None:
            return image
        height, width = image.shape[:2]
        scale = min(self.max_size[0] / width, self.max_size[1] / height)
        if scale >= 1.0:
            return image
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if self._reduced_to != size:
            self._reduced_to = size
            log.info(
                "%s: %dx%d frames are larger than the show needs; reduced to %dx%d at the source",
                self.name,
                width,
                height,
                *size,
            )
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.fps:g} fps{' closed' if self.closed else ''}>"


class Mailbox:
    """One slot holding the newest frame: the producer overwrites, the consumer takes; nothing queues."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._closed = False

    def put(self, frame: Frame) -> None:
        with self._cond:
            self._frame = frame
            self._cond.notify_all()

    def take(self, timeout: float) -> Frame | None:
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or self._closed, max(timeout, 0.0))
            if self._closed:
                return None
            frame, self._frame = self._frame, None
            return frame

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class Pacer:
    """Which frame index a generated source hands out next: in real time, or one per read."""

    def __init__(self, fps: float, paced: bool, stop: threading.Event) -> None:
        self._period = 1.0 / fps
        self._paced = paced
        self._stop = stop
        self._t0 = time.perf_counter()
        self._next = 0

    def next_index(self, timeout: float) -> int | None:
        if self._stop.is_set():
            return None
        index = self._next
        if self._paced:
            now = time.perf_counter()
            # Like a camera: a consumer that fell behind gets the frame due now, not the ones it missed.
            index = max(index, int((now - self._t0) / self._period))
            wait = self._t0 + index * self._period - now
            if wait > timeout:
                self._stop.wait(max(timeout, 0.0))
                return None
            if wait > 0 and self._stop.wait(wait):
                return None
        self._next = index + 1
        return index


def to_rgb(image: np.ndarray, name: str) -> np.ndarray:
    """OpenCV's BGR (or gray, or BGRA) frame as a fresh C-contiguous RGB uint8 array."""
    if image.dtype != np.uint8:
        raise SourceError(f"{name} delivers {image.dtype} frames; only 8-bit video is supported")
    channels = 1 if image.ndim == 2 else image.shape[2]
    codes = {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}
    if image.ndim not in (2, 3) or channels not in codes:
        raise SourceError(f"{name} delivers frames of shape {image.shape}; expected gray, BGR or BGRA")
    return np.ascontiguousarray(cv2.cvtColor(image, codes[channels]))


def grab(capture: CaptureLike) -> tuple[np.ndarray | None, str]:
    """One frame from a capture, or None and why; never raises (drivers do, mid-run)."""
    try:
        ok, image = capture.read()
    except Exception as exc:  # cv2.error, or whatever a misbehaving backend throws: must not kill a thread
        return None, f"read failed: {exc}"
    if not ok or image is None or image.size == 0:
        return None, "no frame"
    return image, ""


def release_capture(capture: CaptureLike | None) -> None:
    if capture is None:
        return
    try:
        capture.release()
    except Exception:  # releasing a device that already vanished may raise; there is nothing left to do
        log.debug("release failed", exc_info=True)


def sane_fps(value: float) -> float:
    # Cameras often report 0, some files report nonsense (90000, NaN): fall back to the usual rate.
    return float(value) if math.isfinite(value) and 1.0 <= value <= 1000.0 else DEFAULT_FPS


def redact(url: str) -> str:
    """The URL without its password, fit for logs and the HUD (rtsp://user:secret@cam is common)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))

"""Frame sources: one `read() -> Frame | None` interface over webcams, stream URLs, video files, still
images and a synthetic moving scene (realtime/io/synthetic.py), always handing out the newest frame
so that a slow dream never works through a backlog of stale ones.

Cameras and paced videos run a reader thread that overwrites a one-slot mailbox; generated sources
(synthetic scene, still image) compute the frame that is due when asked. A camera that goes away is
reopened with back-off inside its thread while `read()` keeps returning None and the show goes on.
"""

from __future__ import annotations

import abc
import logging
import math
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from realtime.errors import SourceError
from realtime.io.paths import check_name_encoding

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
DEFAULT_FPS = 30.0
# close() waits this long for a reader thread; a driver stuck in a blocking read cannot be interrupted,
# and a program that will not quit is worse than a daemon thread left to finish on its own.
_JOIN_TIMEOUT = 1.0


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


def __getattr__(name: str):
    """`SyntheticSource` and `SYNTHETIC_SIZE` moved to realtime.io.synthetic (which builds on this
    module); the old import path keeps working."""
    if name in ("SyntheticSource", "SYNTHETIC_SIZE"):
        from realtime.io import synthetic

        return getattr(synthetic, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_source(
    spec: str,
    *,
    paced: bool = True,
    size: tuple[int, int] | None = None,
    capture_factory: CaptureFactory | None = None,
    max_size: tuple[int, int] | None = None,
) -> Source:
    """Open what the user typed after --source: "synthetic", a camera index, a stream URL or a file.

    paced=True delivers files and generated scenes in real time, like a camera; paced=False hands out
    a new frame on every read (benchmarks, offline renders). `size` (width, height) is for synthetic.
    `max_size` (width, height): larger camera, video and image frames are reduced to fit, at the source.
    """
    spec = spec.strip()
    if not spec:
        raise SourceError("empty source; give a camera index (0), a video or image file, a URL or synthetic")
    if spec.lower() == "synthetic":
        from realtime.io.synthetic import SYNTHETIC_SIZE, SyntheticSource  # it builds on this module

        return SyntheticSource(size or SYNTHETIC_SIZE, paced=paced)
    if size is not None:
        log.debug("size %s applies only to the synthetic source; ignored for %r", size, spec)
    if spec.isascii() and spec.isdigit():
        return CameraSource(int(spec), capture_factory=capture_factory, max_size=max_size)
    if spec.lower().startswith("ndi:"):
        from realtime.io.ndi import NdiSource  # the `ndi` extra: imported only when asked for

        return NdiSource(spec[4:])
    if "://" in spec:
        return CameraSource(spec, capture_factory=capture_factory, max_size=max_size)
    check_name_encoding(spec, "source")  # OpenCV crashes the process on such a name
    path = Path(spec).expanduser()
    if not path.exists():
        raise SourceError(f"source file '{spec}' does not exist; check the path or use --source synthetic")
    if path.is_dir():
        raise SourceError(f"source '{spec}' is a directory; give a video or image file inside it")
    if not path.is_file() and not path.name.startswith("video"):  # /dev/video2 is a camera by path
        # a FIFO blocks OpenCV's open forever, /dev/zero decodes forever: neither is a video file
        raise SourceError(
            f"source '{spec}' is not a regular file (a pipe or a device); give a video or image file, "
            "or a camera by its index"
        )
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageSource(path, paced=paced, max_size=max_size)
    return VideoSource(path, paced=paced, max_size=max_size)


# ---------------------------------------------------------------------------------------------------
# Shared machinery


class _Mailbox:
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


def _to_rgb(image: np.ndarray, name: str) -> np.ndarray:
    """OpenCV's BGR (or gray, or BGRA) frame as a fresh C-contiguous RGB uint8 array."""
    if image.dtype != np.uint8:
        raise SourceError(f"{name} delivers {image.dtype} frames; only 8-bit video is supported")
    channels = 1 if image.ndim == 2 else image.shape[2]
    codes = {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}
    if image.ndim not in (2, 3) or channels not in codes:
        raise SourceError(f"{name} delivers frames of shape {image.shape}; expected gray, BGR or BGRA")
    return np.ascontiguousarray(cv2.cvtColor(image, codes[channels]))


def _grab(capture: CaptureLike) -> tuple[np.ndarray | None, str]:
    """One frame from a capture, or None and why; never raises (drivers do, mid-run)."""
    try:
        ok, image = capture.read()
    except Exception as exc:  # cv2.error, or whatever a misbehaving backend throws: must not kill a thread
        return None, f"read failed: {exc}"
    if not ok or image is None or image.size == 0:
        return None, "no frame"
    return image, ""


def _release(capture: CaptureLike | None) -> None:
    if capture is None:
        return
    try:
        capture.release()
    except Exception:  # releasing a device that already vanished may raise; there is nothing left to do
        log.debug("release failed", exc_info=True)


def _sane_fps(value: float) -> float:
    # Cameras often report 0, some files report nonsense (90000, NaN): fall back to the usual rate.
    return float(value) if math.isfinite(value) and 1.0 <= value <= 1000.0 else DEFAULT_FPS


def _redact(url: str) -> str:
    """The URL without its password, fit for logs and the HUD (rtsp://user:secret@cam is common)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


# ---------------------------------------------------------------------------------------------------
# Still image


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
    return _to_rgb(image, f"image '{path}'")


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


# ---------------------------------------------------------------------------------------------------
# Video file


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
        first, _ = _grab(self._capture) if self._capture.isOpened() else (None, "")
        if first is None:
            _release(self._capture)
            quoted = shlex.quote(str(self.path))
            raise SourceError(
                f"cannot read video '{self.path}': the file is empty, corrupt or in a format OpenCV "
                f"cannot decode; re-encode it (e.g. ffmpeg -i {quoted} out.mp4)"
            )
        self.fps = _sane_fps(self._capture.get(cv2.CAP_PROP_FPS))
        h, w = first.shape[:2]
        log.info("opened %s (%dx%d @ %g fps, %s)", self.name, w, h, self.fps, "paced" if paced else "unpaced")
        self._pending: np.ndarray | None = first
        self._mailbox: _Mailbox | None = None
        self._thread: threading.Thread | None = None
        if paced:
            self._mailbox = _Mailbox()
            self._mailbox.put(self._frame(first))
            self._pending = None
            self._thread = threading.Thread(target=self._run, name=f"dreamcam {self.name}", daemon=True)
            self._thread.start()

    @property
    def status(self) -> str:
        return self._status

    def _frame(self, bgr: np.ndarray) -> Frame:
        t_capture = time.perf_counter()
        frame = Frame(_to_rgb(self._fit(bgr), self.name), t_capture, self._index)
        self._index += 1
        return frame

    def _decode_next(self) -> np.ndarray | None:
        """The next frame, starting over at the end of the file; None if the file became unreadable."""
        image, _ = _grab(self._capture)
        if image is not None:
            return image
        # End of file (or a damaged tail): reopen rather than seek to frame 0, because seeking is
        # unreliable in some containers and codecs while reopening always lands on the first frame.
        log.debug("%s: end of file, looping", self.name)
        _release(self._capture)
        self._capture = cv2.VideoCapture(str(self.path))
        image, _ = _grab(self._capture)
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
        _release(self._capture)

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        if self._mailbox is not None:
            self._mailbox.close()
        if self._thread is not None:
            self._thread.join(_JOIN_TIMEOUT)  # the thread releases the capture: it is the one using it
        else:
            with self._lock:
                _release(self._capture)


# ---------------------------------------------------------------------------------------------------
# Camera or stream


def _default_capture(device: int | str) -> CaptureLike:
    return cv2.VideoCapture(device)


class CameraSource(Source):
    """A webcam (by index) or a stream URL, read continuously by a thread that keeps the newest frame.

    A mid-run failure does not end the show: the thread reopens the device with back-off (retry_delay,
    doubling, up to max_retry_delay) while read() returns None and `status` says what is going on.
    """

    def __init__(
        self,
        device: int | str,
        *,
        capture_factory: CaptureFactory | None = None,
        open_timeout: float = 2.0,
        retry_delay: float = 0.25,
        max_retry_delay: float = 5.0,
        stall_after: float = 2.0,
        name: str | None = None,
        fix: str | None = None,
        max_size: tuple[int, int] | None = None,
    ) -> None:
        is_camera = isinstance(device, int)
        if name is None:
            name = f"camera {device}" if is_camera else f"stream '{_redact(str(device))}'"
        super().__init__(name, DEFAULT_FPS, max_size)
        self.device = device
        self._factory = capture_factory or _default_capture
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._stall_after = stall_after
        self._mailbox = _Mailbox()
        self._status = ""
        self._connected = False
        self._index = 0
        self._last_frame_t = time.perf_counter()
        self._opened = threading.Event()  # set by the thread once its first attempt is over...
        self._open_ok = False  # ...and this says how it went (not _connected: that may flip right after)
        # Opening happens in the thread too: cv2.VideoCapture(url) and the first read can block far
        # longer than open_timeout, and only a thread lets us give up on them.
        self._thread = threading.Thread(target=self._run, name=f"dreamcam {name}", daemon=True)
        self._thread.start()
        if not self._opened.wait(open_timeout) or not self._open_ok:
            # No join: the thread may be stuck in the driver; it releases the device when it returns.
            super().close()
            self._mailbox.close()
            if fix is None:
                fix = (
                    "check it is connected and not used by another program"
                    if is_camera
                    else "check the URL and that the stream is running"
                )
            raise SourceError(f"{name} does not answer; {fix}, or use --source synthetic / a video file")
        log.info("opened %s (%g fps)", self.name, self.fps)

    @property
    def status(self) -> str:
        if self._status:
            return self._status
        age = time.perf_counter() - self._last_frame_t
        if self._connected and not self.closed and age > self._stall_after:
            return f"{self.name} stalled: no frame for {age:.0f} s"
        return ""

    def read(self, timeout: float = 0.5) -> Frame | None:
        return self._mailbox.take(timeout)

    def _post(self, bgr: np.ndarray) -> None:
        t_capture = time.perf_counter()
        self._mailbox.put(Frame(_to_rgb(self._fit(bgr), self.name), t_capture, self._index))
        self._index += 1
        self._last_frame_t = t_capture

    def _connect(self) -> tuple[CaptureLike | None, str]:
        """One attempt: open the device and post its first frame. The capture, or None and why."""
        try:
            capture = self._factory(self.device)
        except Exception as exc:  # a factory (or driver) that raises is just a device that does not answer
            return None, f"open failed: {exc}"
        try:
            if not capture.isOpened():
                _release(capture)
                return None, "does not open"
        except Exception as exc:
            _release(capture)
            return None, f"open failed: {exc}"
        image, why = _grab(capture)
        if image is None:
            _release(capture)
            return None, why
        try:
            self._post(image)
        except SourceError as exc:
            _release(capture)
            return None, str(exc)
        if not self._opened.is_set():  # the first open: the rate the recorder will use, fixed from now on
            try:
                self.fps = _sane_fps(capture.get(cv2.CAP_PROP_FPS))
            except Exception:
                self.fps = DEFAULT_FPS
        self._connected = True
        return capture, ""

    def _reconnect(self) -> CaptureLike | None:
        delay = self._retry_delay
        attempt = 1
        while True:
            self._status = f"{self.name} lost: reconnecting (attempt {attempt})"
            if self._closed.wait(delay):  # the back-off sleep, cut short by close()
                return None
            capture, why = self._connect()
            if capture is not None:
                self._status = ""
                return capture
            log.debug("%s: reconnect attempt %d: %s", self.name, attempt, why)
            attempt += 1
            delay = min(delay * 2.0, self._max_retry_delay)

    def _run(self) -> None:
        capture, why = self._connect()
        if capture is None:
            log.debug("%s: %s", self.name, why)
        self._open_ok = capture is not None
        self._opened.set()
        while capture is not None and not self.closed:
            image, why = _grab(capture)
            if image is not None:
                try:
                    self._post(image)
                    continue
                except SourceError as exc:
                    why = str(exc)
            if self.closed:  # a read cut short by close() is not an outage
                break
            # One warning per outage; the attempts themselves are logged at debug level.
            log.warning("%s lost (%s); reconnecting", self.name, why)
            self._connected = False
            _release(capture)
            capture = self._reconnect()
            if capture is not None:
                log.info("%s back", self.name)
        _release(capture)

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        self._mailbox.close()
        if self._thread is not threading.current_thread():
            self._thread.join(_JOIN_TIMEOUT)
            if self._thread.is_alive():
                log.warning(
                    "%s: the driver is stuck in a read; leaving its thread to end on its own", self.name
                )

"""A webcam (by index or device path) or a stream URL as a source: a reader thread keeps the newest
frame, and a device that goes away is reopened with back-off while the show goes on."""

from __future__ import annotations

import logging
import threading
import time

import cv2
import numpy as np

from realtime.errors import SourceError
from realtime.io.sources.base import (
    DEFAULT_FPS,
    JOIN_TIMEOUT,
    CaptureFactory,
    CaptureLike,
    Frame,
    Mailbox,
    Source,
    grab,
    redact,
    release_capture,
    sane_fps,
    to_rgb,
)

log = logging.getLogger(__name__)


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
            name = f"camera {device}" if is_camera else f"stream '{redact(str(device))}'"
        super().__init__(name, DEFAULT_FPS, max_size)
        self.device = device
        self._factory = capture_factory or _default_capture
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._stall_after = stall_after
        self._mailbox = Mailbox()
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
        self._mailbox.put(Frame(to_rgb(self._fit(bgr), self.name), t_capture, self._index))
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
                release_capture(capture)
                return None, "does not open"
        except Exception as exc:
            release_capture(capture)
            return None, f"open failed: {exc}"
        image, why = grab(capture)
        if image is None:
            release_capture(capture)
            return None, why
        try:
            self._post(image)
        except SourceError as exc:
            release_capture(capture)
            return None, str(exc)
        if not self._opened.is_set():  # the first open: the rate the recorder will use, fixed from now on
            try:
                self.fps = sane_fps(capture.get(cv2.CAP_PROP_FPS))
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
            image, why = grab(capture)
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
            release_capture(capture)
            capture = self._reconnect()
            if capture is not None:
                log.info("%s back", self.name)
        release_capture(capture)

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        self._mailbox.close()
        if self._thread is not threading.current_thread():
            self._thread.join(JOIN_TIMEOUT)
            if self._thread.is_alive():
                log.warning(
                    "%s: the driver is stuck in a read; leaving its thread to end on its own", self.name
                )

"""`--source ndi:NAME`: an NDI feed as a camera-like source (the `ndi` extra, cyndilib). A reader
thread keeps only the newest frame, and a feed that disappears is found and reconnected with back-off,
exactly as a camera is. Discovery and the sender side are in realtime/io/ndi.py."""

from __future__ import annotations

import logging
import threading
import time

import cv2
import numpy as np

from realtime.errors import SourceError
from realtime.io.links import check_link_name
from realtime.io.ndi import CONNECT_TIMEOUT_S, FIND_TIMEOUT_S, FRAME_TIMEOUT_S, POLL_S, import_cyndilib
from realtime.io.sources.camera import CameraSource

log = logging.getLogger(__name__)


class NdiCapture:
    """One connection to a named NDI sender, shaped like cv2.VideoCapture (what CameraSource reads).

    Frames come through NDI's frame-sync, which receives on NDI's own threads and always holds the
    newest frame: `read()` polls it (GIL free between polls) until a frame with a new timestamp
    arrives and hands it out as BGRA, which the camera source turns into RGB like any OpenCV frame.
    (Not `Receiver.receive`: it keeps the GIL while it blocks, which starved the dream thread to
    7 ticks of a 1 ms sleep loop per second, and with a zero timeout its first frame often took
    more than 4 s.)
    """

    def __init__(
        self,
        name: str,
        stop: threading.Event,
        find_timeout: float,
        frame_timeout: float,
        seen: list[str] | None = None,
    ):
        from cyndilib.finder import Finder
        from cyndilib.receiver import Receiver
        from cyndilib.video_frame import VideoFrameSync
        from cyndilib.wrapper.ndi_recv import RecvBandwidth, RecvColorFormat

        self._stop, self._frame_timeout = stop, frame_timeout
        self._seen = seen if seen is not None else []  # the names visible at the last look, for errors
        self._receiver = None
        self._finder = Finder()
        self._finder.open()  # kept open while connected: the source it found belongs to it
        source = self._find(name, find_timeout)
        if source is None:
            return
        self._frame = VideoFrameSync()
        receiver = Receiver(color_format=RecvColorFormat.BGRX_BGRA, bandwidth=RecvBandwidth.highest)
        receiver.frame_sync.set_video_frame(self._frame)
        receiver.set_source(source)
        self._receiver = receiver
        self._connecting = True
        self._last_stamp: tuple[float, float] | None = None
        self.fps = 0.0

    def _find(self, name: str, timeout: float):
        deadline = time.monotonic() + timeout
        while not self._stop.is_set():
            for source in self._finder.iter_sources():
                # a source that went away stays listed as invalid (its stream_name then raises)
                if source.valid and name in (source.name, source.stream_name):
                    return source
            left = deadline - time.monotonic()
            if left <= 0:
                self._seen[:] = self._finder.get_source_names()
                log.debug("NDI '%s' not found; visible: %s", name, self._seen)
                return None
            self._finder.wait(min(left, 0.25))
        return None

    def isOpened(self) -> bool:  # noqa: N802  (cv2.VideoCapture's spelling)
        return self._receiver is not None

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self._receiver is None:
            return False, None
        timeout = max(self._frame_timeout, CONNECT_TIMEOUT_S) if self._connecting else self._frame_timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (image := self._newest()) is not None:
                self._connecting = False
                return True, image
            if self._stop.wait(POLL_S):
                break
        return False, None

    def _newest(self) -> np.ndarray | None:
        """The frame-sync's frame if it is one not handed out before, else None."""
        frame = self._frame
        self._receiver.frame_sync.capture_video()
        width, height = frame.get_resolution()
        if min(width, height) <= 0 or frame.get_data_size() <= 0:
            return None  # nothing received yet
        stamp = (frame.get_timestamp_posix(), frame.get_timecode_posix())
        if stamp == self._last_stamp:
            return None  # the same frame again: the sender has not sent a new one yet
        self._last_stamp = stamp
        rate = frame.get_frame_rate()
        self.fps = float(rate) if rate else 0.0
        stride = frame.get_line_stride() or width * 4
        data = frame.get_array()[: stride * height].reshape(height, stride)[:, : width * 4]
        return data.reshape(height, width, 4).copy()  # the frame-sync reuses its buffer

    def get(self, prop_id: int) -> float:
        return self.fps if prop_id == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        if self._receiver is not None:
            self._receiver.disconnect()
            self._receiver = None
        self._finder.close()


class NdiSource(CameraSource):
    """`--source ndi:NAME`: dream on an NDI feed ("Resolume Arena" or "MACHINE (Resolume Arena)")."""

    def __init__(
        self,
        name: str,
        *,
        find_timeout: float = FIND_TIMEOUT_S,
        frame_timeout: float = FRAME_TIMEOUT_S,
        retry_delay: float = 0.25,
        max_retry_delay: float = 5.0,
    ):
        name = check_link_name("--source ndi:", name)
        import_cyndilib()
        seen: list[str] = []

        def connect(_device: str) -> NdiCapture:
            return NdiCapture(name, self._closed, find_timeout, frame_timeout, seen)

        try:
            super().__init__(
                f"ndi:{name}",
                capture_factory=connect,
                open_timeout=find_timeout + max(frame_timeout, CONNECT_TIMEOUT_S) + 1.0,
                retry_delay=retry_delay,
                max_retry_delay=max_retry_delay,
                name=f"NDI '{name}'",
                fix=(
                    "check the sender is running and its name (NDI Studio Monitor lists them); across "
                    "subnets name its IP in NDI's config (docs/VJ.md)"
                ),
            )
        except SourceError as exc:  # the names NDI does see are most of the fix
            visible = ", ".join(f"'{n}'" for n in seen) or "none"
            raise SourceError(f"{exc}; NDI sources visible now: {visible}") from None

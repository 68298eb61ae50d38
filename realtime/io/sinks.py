"""Outputs besides the window: a video recorder and PNG snapshots.

A slow disk must never stall the dream loop, so the recorder encodes on its own thread from a
bounded queue and counts the frames it had to drop when the queue was full. A disk that refuses
the file (full, read-only, gone) ends that recording: `failure` names the cause, once, in the log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Collection

import cv2
import numpy as np

from realtime.errors import DreamcamError
from realtime.io.paths import check_output_path
from realtime.io.videofile import RecordingError, VideoFileWriter, check_codec, write_error_cause

log = logging.getLogger(__name__)

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class VideoRecorder:
    """Writes RGB frames to a video file (PyAV, `realtime.io.videofile`) from a background thread.

    The path is checked here (a folder that cannot take it fails at once), but the file is opened
    only with the first frame: a show that fails before its first dream leaves no empty take, and
    an existing file named with --overwrite is kept until there is something to replace it with.
    Whether `path` may be replaced is the caller's decision (`check_output_path`).
    """

    def __init__(self, path: str, fps: float, queue_size: int = 64, codec: str = "h264"):
        check_output_path(path, overwrite=True)
        check_codec(codec, path)
        self.path, self.fps, self.codec = path, fps, codec
        self.frames_dropped = 0
        self.failure: str | None = None  # why the file stopped taking frames (disk full...), or None
        self._file: VideoFileWriter | None = None  # opened by the encoder thread with the first frame
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._encode, name="recorder", daemon=True)
        self._thread.start()

    @property
    def frames_written(self) -> int:
        return self._file.frames_written if self._file is not None else 0

    def write(self, image: np.ndarray) -> None:
        if self.failure is not None:
            return  # the recording has ended; the switch stops it
        try:
            self._queue.put_nowait(image)
        except queue.Full:
            self.frames_dropped += 1

    def wait_until_written(self) -> None:
        """Block until every frame queued so far is encoded (or dropped by a failure)."""
        self._queue.join()

    def close(self) -> None:
        """Finish writing every queued frame, then close the file."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self.frames_dropped:
            log.warning("recorder dropped %d frames (disk too slow)", self.frames_dropped)
        if self.failure is None and self._file is None:
            log.info("no frame reached %s: not written", self.path)
        elif self.failure is None and not os.path.exists(self.path):
            # its folder removed mid-take (rm -rf): the encoder wrote on into a deleted file
            self.failure = f"take '{self.path}' was lost: its file was deleted while recording"
            log.error("%s (%d frames)", self.failure, self.frames_written)
        elif self.failure is None:
            log.info("recorded %d frames to %s", self.frames_written, self.path)

    def _encode(self) -> None:
        closing = False
        try:
            while (image := self._queue.get()) is not None:
                if self._file is None:
                    if os.path.islink(self.path):  # one rule with render: the link is replaced,
                        os.unlink(self.path)  # its target never written through (docs/SAFETY.md)
                    self._file = VideoFileWriter(self.path, self.fps, self.codec, live=True)
                self._file.write(image)
                if self._file.frames_written == 1 and self._file.note:
                    log.info("recording %s: %s", self.path, self._file.note)  # odd sides padded
                self._queue.task_done()
            closing = True
            if self._file is not None:
                self._file.close()
        except RecordingError as exc:
            self._fail(str(exc), closing)
        except Exception as exc:  # an encoder fault must not kill the show either
            self._fail(f"recording '{self.path}' failed: {type(exc).__name__}: {exc}", closing)
        finally:
            if closing:
                self._queue.task_done()

    def _fail(self, message: str, closing: bool) -> None:
        self.failure = message
        if self._file is not None:
            self._file.abort()
        log.error("%s; recording stopped after %d frames (the show goes on)", message, self.frames_written)
        if closing:
            return
        self._queue.task_done()  # the frame that failed
        while self._queue.get() is not None:  # let queued frames go until close() sends None
            self._queue.task_done()
        self._queue.task_done()


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


class SnapshotError(DreamcamError):
    """A snapshot the disk refused (the folder is a file, read-only, full): the show goes on."""


def save_snapshot(image: np.ndarray, folder: str = "snapshots") -> str:
    """Save an RGB frame as a new PNG file and return its path; SnapshotError says why not."""
    try:
        path = write_new_file(folder, "dreamcam", ".png", encode_png(image))
    except OSError as exc:
        raise SnapshotError(f"snapshot not saved in '{folder}': {write_error_cause(exc)}") from None
    log.info("snapshot saved: %s", path)
    return path


def encode_png(image: np.ndarray, compression: int = 1) -> bytes:
    """An RGB frame as PNG bytes (OpenCV lets go of the GIL while it encodes). Level 1 is the fast
    one: a 1080p frame in ~0.1 s against ~0.3 s at level 9, for a file about a quarter larger."""
    ok, data = cv2.imencode(
        ".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, compression]
    )
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.shape} frame as PNG")
    return data.tobytes()


def write_new_file(folder: str, stem: str, ext: str, data: bytes) -> str:
    """Write `data` into a new file stem-TIME[-N].ext in `folder` (never replacing one) and return
    its path; on an OSError (a full disk...) no half-written file is left behind."""
    created = False
    path = ""
    try:
        path = unique_path(folder, stem, ext)
        with open(path, "xb") as f:  # "x": never replaces a file
            created = True
            f.write(data)
    except OSError:
        if created:  # a full disk: no broken half file left behind
            with contextlib.suppress(OSError):
                os.remove(path)
        raise
    return path

"""Snapshots taken during a show: written on a thread of their own, capped, never the disk's last space.

A PNG of a 1280x720 frame takes tens of milliseconds to encode, and a disk can be slow or full: the
show's thread only hands a copy of the frame over (`take`) and never waits. What a finger, a key or
a controller can ask for is capped: two snapshots a second, two waiting to be written (more are
refused, with one line a second), and none that would leave less than KEEP_FREE_BYTES on the
folder's disk, which a recording of the same show needs more (20 snapshots a second were 22 MB/s
and ended the take). A refused or failed snapshot is a red HUD line until the next one is saved.
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable

import numpy as np

from realtime.control.ratelimit import WarnLimit
from realtime.io.sinks import SnapshotError, save_snapshot

log = logging.getLogger(__name__)

SNAPSHOT_EVERY_S = 0.5  # two a second: a press of a button, not a flood
WAITING = 2  # frames handed over and not yet written; beyond, a snapshot is refused, never queued
KEEP_FREE_BYTES = 512 * 2**20  # a few minutes of a recording: snapshots never take the disk's last space


def free_bytes(folder: str) -> int:
    return shutil.disk_usage(folder).free


class SnapshotWriter:
    """Saves RGB frames as new PNG files in `folder`, on its own thread (started on first use)."""

    def __init__(
        self,
        folder: str,
        clock: Callable[[], float] = time.monotonic,
        free: Callable[[str], int] = free_bytes,
        save: Callable[[np.ndarray, str], str] = save_snapshot,
    ):
        self.folder, self.clock, self._free, self._save = folder, clock, free, save
        self.saved: list[str] = []  # every file written, in order
        self.refused = 0  # asked for but not taken (too often, too many waiting, disk nearly full)
        self.failure = ""  # why the last snapshot was not saved; "" once one is
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=WAITING)
        self._taken_at = -float("inf")
        self._warnings = WarnLimit()  # one line a second, whatever the flood
        self._thread: threading.Thread | None = None

    def take(self, image: np.ndarray) -> bool:
        """Hand a frame over to be saved (the show's thread: never waits); False if refused."""
        now = self.clock()
        if now - self._taken_at < SNAPSHOT_EVERY_S:
            return self._refuse(f"snapshot not taken: at most one every {SNAPSHOT_EVERY_S:g} s")
        try:
            self._queue.put_nowait(image.copy())  # the composer reuses the frame's memory
        except queue.Full:
            return self._refuse("snapshot not taken: the last ones are still being written")
        self._taken_at = now
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="snapshots", daemon=True)
            self._thread.start()
        return True

    def flush(self) -> None:
        """Wait until every frame handed over is written (or has failed)."""
        self._queue.join()

    def close(self) -> None:
        """Write what is waiting, then stop the thread (a later `take` starts it again)."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _refuse(self, why: str) -> bool:
        self.refused += 1
        self._warnings.warn(log, "%s", why)
        return False

    def _run(self) -> None:
        while (image := self._queue.get()) is not None:
            try:
                self._write(image)
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _write(self, image: np.ndarray) -> None:
        try:
            free = self._free_space()
            if free is not None and free < KEEP_FREE_BYTES + image.nbytes:
                raise SnapshotError(
                    f"snapshot not saved in '{self.folder}': the disk is nearly full "
                    f"({free // 2**20} MB free; snapshots leave {KEEP_FREE_BYTES // 2**20} MB for recordings)"
                )
            path = self._save(image, self.folder)
        except SnapshotError as exc:  # a folder that is a file, read-only, full: the show goes on
            self.failure = str(exc)
            self._warnings.warn(log, "%s", exc)
            return
        except Exception as exc:  # an encoder fault must not end the thread: the next one may work
            self.failure = f"snapshot not saved: {type(exc).__name__}: {exc}"
            self._warnings.warn(log, "%s", self.failure)
            return
        self.failure = ""
        self.saved.append(path)

    def _free_space(self) -> int | None:
        try:
            return self._free(self.folder)
        except OSError:  # no folder yet (save_snapshot makes it, or says why it cannot)
            return None

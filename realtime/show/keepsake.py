"""Keepsakes: a visitor's picture, kept for a while under a link that only they are shown (issue 29).

`KeepsakeStore` gives each picture an id of its own (128 random bits: the link's only key), writes
it as a PNG on a thread of its own (a 1080p frame takes ~0.1-0.9 s to encode: never on the show's
thread, and at a lower CPU priority, so the show's threads go first), deletes it once its time
is up (`ttl_s`), and copies it into an archive folder only where the operator asked for one. The
ids live in this process's memory only: files are named by the time they were taken, so nothing on
disk leads to a link, and a restarted show has no link to an old picture. An expired id is
remembered (as a hash) for a day, so its link can say "expired" (410) rather than "unknown" (404).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import queue
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from realtime.errors import DreamcamError
from realtime.io.paths import cache_dir
from realtime.io.sinks import encode_png, write_new_file
from realtime.io.videofile import write_error_cause

log = logging.getLogger(__name__)

ID_BYTES = 16  # 128 random bits: guessing one of a day's 500 links takes ~2^119 tries
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{22,64}")  # what secrets.token_urlsafe makes; anything else: 404
DEFAULT_TTL_S = 30 * 60.0
MAX_TTL_MIN = 7 * 24 * 60
GONE_KEPT_S = 24 * 3600.0  # an expired link says so (410) for a day, then it is unknown (404)
MAX_GONE = 20_000  # expired ids remembered at most (a month of a busy booth's hashes: ~1 MB)
MAX_WAITING = 4  # captures waiting for the disk; a press beyond is refused (a disk that far behind)
SWEEP_EVERY_S = 5.0  # how often the writer looks for expired files when it has nothing to write
STEM = "keepsake"
# the writer's CPU priority (Linux nice): below the show's threads, which preempt it, yet not 19,
# whose ~1.5% share of a saturated CPU left 4 pictures waiting and refused the next presses when
# the machine was loaded (tools/keepsake_bench.py, docs/BENCHMARKS.md)
WRITER_NICE = 10


class KeepsakeError(DreamcamError):
    """A keepsake that cannot be taken or kept (a disk that is full or far behind): the show goes on."""


class Status(Enum):
    LIVE = "live"  # its link works (the file may still be on its way: `ready`)
    EXPIRED = "expired"  # its time is up and its file deleted: 410
    UNKNOWN = "unknown"  # never made here (a guess, a typo, another show's): 404


@dataclass(eq=False)
class Keepsake:
    id: str
    taken_at: float  # the store's clock
    expires_at: float
    width: int
    height: int
    number: int  # the day's count when it was taken (1 = the day's first)
    path: str | None = None  # the served copy, once written
    archived: str | None = None  # the archive's copy (--keepsake-dir), once written
    failure: str | None = None  # why it was not written (then the link is unknown)
    ready: threading.Event = field(default_factory=threading.Event)  # written, or failed

    @property
    def name(self) -> str:
        """The file name a phone saves it under."""
        return os.path.basename(self.path) if self.path else f"{STEM}.png"


_Job = tuple[Keepsake, np.ndarray, Callable[[Keepsake], None] | None]  # what the store's thread writes


def ttl_seconds(minutes: float) -> float:
    """--keepsake-ttl MINUTES in seconds, checked: above 0, at most a week."""
    if not 0 < minutes <= MAX_TTL_MIN:
        raise KeepsakeError(
            f"--keepsake-ttl must be above 0 and at most {MAX_TTL_MIN} minutes (a week), got {minutes:g}"
        )
    return minutes * 60.0


def id_key(keepsake_id: str) -> bytes:
    """What the store looks ids up by: a hash, so a lookup takes the same time however many of a
    guess's characters match a real id."""
    return hashlib.sha256(keepsake_id.encode()).digest()


def default_folder() -> str:
    """Where keepsakes wait for their visitors: dreamcam's cache (~/.cache/dreamcam/keepsakes)."""
    return str(cache_dir() / "keepsakes")


class KeepsakeStore:
    """Keepsakes in a private folder of their own under `root` (mode 0700, removed with `close()`).

    `take` is called on the show's thread and returns at once; the picture is written by the
    store's thread. `find` is called by the web server's thread. `archive`: a folder that keeps a
    copy of each (never replacing a file) after its link has expired."""

    def __init__(
        self,
        root: str | None = None,
        ttl_s: float = DEFAULT_TTL_S,
        archive: str | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], str] = lambda: time.strftime("%Y-%m-%d"),
    ):
        ttl_seconds(ttl_s / 60.0)
        self.ttl_s, self.archive, self.clock, self.today = ttl_s, archive, clock, today
        self.root = root or default_folder()
        if archive is not None:
            try:
                os.makedirs(archive, exist_ok=True)
            except OSError as exc:
                raise KeepsakeError(
                    f"cannot archive keepsakes in '{archive}' ({write_error_cause(exc)}); choose another "
                    "--keepsake-dir"
                ) from None
        try:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            os.chmod(self.root, 0o700)  # pictures of people: this user's only
            self._remove_leftovers()
            self.folder = tempfile.mkdtemp(prefix="show-", dir=self.root)  # 0700, as mkdtemp makes them
        except OSError as exc:
            raise KeepsakeError(
                f"cannot keep keepsakes in '{self.root}' ({write_error_cause(exc)}); free it, or set "
                "DREAMCAM_CACHE to a folder that can take them"
            ) from None
        self._live: dict[bytes, Keepsake] = {}
        self._gone: OrderedDict[bytes, float] = OrderedDict()  # id hash -> when it expired
        self._lock = threading.Lock()  # the web thread looks up, the show adds, the writer expires
        self._day, self.taken_today = today(), 0
        self.failure: str | None = None  # the last write that failed (a full disk), until one succeeds
        self._waiting: queue.Queue[_Job | None] = queue.Queue(MAX_WAITING)
        self._thread = threading.Thread(target=self._write_loop, name="keepsakes", daemon=True)
        self._thread.start()

    # --- the show's side ---------------------------------------------------------------------------

    def take(self, image: np.ndarray, then: Callable[[Keepsake], None] | None = None) -> Keepsake:
        """A new keepsake of `image` (an HxWx3 RGB frame the store may keep: pass a copy); its id at
        once, its file on the store's thread (`ready`), where `then(keepsake)` runs once it is written
        (work the show's thread should not do). KeepsakeError if the disk is far behind."""
        now = self.clock()
        day = self.today()
        height, width = image.shape[:2]
        with self._lock:
            if day != self._day:
                self._day, self.taken_today = day, 0
            keepsake = Keepsake(new_id(), now, now + self.ttl_s, width, height, number=self.taken_today + 1)
            try:
                self._waiting.put_nowait((keepsake, image, then))
            except queue.Full:
                raise KeepsakeError(
                    f"keepsake not taken: {MAX_WAITING} pictures are still being written (a slow disk?)"
                ) from None
            self.taken_today += 1
            self._live[id_key(keepsake.id)] = keepsake
        return keepsake

    def counts(self) -> dict[str, int]:
        """For the operator's page: taken today, links alive now."""
        with self._lock:
            if self.today() != self._day:
                self._day, self.taken_today = self.today(), 0
            return {"taken_today": self.taken_today, "live": len(self._live)}

    # --- the web's side ----------------------------------------------------------------------------

    def find(self, keepsake_id: str) -> tuple[Status, Keepsake | None]:
        """What a link's id leads to. Expired ones are deleted here too, not only by the sweep."""
        if not ID_PATTERN.fullmatch(keepsake_id):
            return Status.UNKNOWN, None
        key = id_key(keepsake_id)
        with self._lock:
            keepsake = self._live.get(key)
            if keepsake is None:
                return (Status.EXPIRED if key in self._gone else Status.UNKNOWN), None
            if self.clock() >= keepsake.expires_at:
                if keepsake.ready.is_set():  # (one still being written is deleted by the sweep after)
                    self._expire(key, keepsake)
                return Status.EXPIRED, None
            return Status.LIVE, keepsake

    # --- housekeeping --------------------------------------------------------------------------------

    def sweep(self) -> int:
        """Delete every keepsake whose time is up; how many."""
        now = self.clock()
        with self._lock:
            due = [(k, v) for k, v in self._live.items() if now >= v.expires_at and v.ready.is_set()]
            for key, keepsake in due:
                self._expire(key, keepsake)
            while self._gone and (len(self._gone) > MAX_GONE or now - self._oldest_gone() > GONE_KEPT_S):
                self._gone.popitem(last=False)
        return len(due)

    def _oldest_gone(self) -> float:
        return next(iter(self._gone.values()))

    def files(self) -> list[str]:
        """The pictures on disk now (the served copies)."""
        return sorted(os.listdir(self.folder))

    def close(self) -> None:
        """Stop writing (what is queued is written first, for the archive) and delete every served
        copy: a link dies with the show. The archive stays."""
        if self._thread.is_alive():
            self._waiting.put(None)
            self._thread.join(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rmdir(self.root)  # empty unless another show is running beside this one

    def _expire(self, key: bytes, keepsake: Keepsake) -> None:  # holding the lock
        del self._live[key]
        self._gone[key] = self.clock()
        if keepsake.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(keepsake.path)
        log.info("keepsake %d expired: deleted", keepsake.number)

    def _remove_leftovers(self) -> None:
        """Another show's pictures (one that crashed) older than this show's time to live: their
        links died with that show, so nobody can fetch them; they go now rather than never."""
        cutoff = time.time() - self.ttl_s
        for entry in os.scandir(self.root):
            if not entry.is_dir(follow_symlinks=False) or not entry.name.startswith("show-"):
                continue
            for picture in os.scandir(entry.path):
                if picture.stat(follow_symlinks=False).st_mtime < cutoff:
                    with contextlib.suppress(OSError):
                        os.remove(picture.path)
            with contextlib.suppress(OSError):
                os.rmdir(entry.path)  # only if empty

    # --- the store's thread ----------------------------------------------------------------------

    def _write_loop(self) -> None:
        with contextlib.suppress(AttributeError, OSError):  # Linux: this thread yields to the show's
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WRITER_NICE)
        while True:
            try:
                job = self._waiting.get(timeout=SWEEP_EVERY_S)
            except queue.Empty:
                self.sweep()
                continue
            if job is None:
                return
            self._write(*job)
            self.sweep()

    def _write(self, keepsake: Keepsake, image: np.ndarray, then: Callable[[Keepsake], None] | None) -> None:
        try:
            data = encode_png(image)
            keepsake.path = write_new_file(self.folder, STEM, ".png", data)
        except OSError as exc:
            self._failed(keepsake, f"keepsake not saved: {write_error_cause(exc)} in '{self.root}'")
            return
        if self.archive is not None:
            try:
                keepsake.archived = write_new_file(self.archive, STEM, ".png", data)
            except OSError as exc:  # the link works; only the archive's copy is missing
                self._failed(None, f"keepsake not archived: {write_error_cause(exc)} in '{self.archive}'")
        if self.archive is None or keepsake.archived is not None:
            self.failure = None  # the disk takes pictures again: the line on screen goes
        if then is not None:
            try:
                then(keepsake)
            except Exception:  # the picture is kept whatever its caller's extra work did
                log.exception("after keepsake %d", keepsake.number)
        keepsake.ready.set()
        log.info("keepsake %d saved (%dx%d)", keepsake.number, keepsake.width, keepsake.height)

    def _failed(self, keepsake: Keepsake | None, text: str) -> None:
        if text != self.failure:  # one line per kind of trouble, not one per press on a full disk
            log.warning("%s", text)
        self.failure = text
        if keepsake is not None:  # its link was never usable: it is unknown from now on
            keepsake.failure = text
            with self._lock:
                self._live.pop(id_key(keepsake.id), None)
            keepsake.ready.set()


def new_id() -> str:
    return secrets.token_urlsafe(ID_BYTES)

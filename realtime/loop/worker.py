"""The dream worker: a thread that dreams the newest camera frame it was handed, over and over,
and the supervisor that replaces it when it hangs or keeps failing.

The display loop never waits for it. It hands in each new camera frame (a one-slot mailbox: a
slow dream skips frames rather than queueing them) and composes every frame it shows with the
newest residual the worker has published, so the window moves at the camera's rate even when the
dream updates at 10 Hz. Parameter changes and the governor's cap are applied by the worker
itself, between dreams.

On a GPU (PyTorch's CUDA semantics notes and the torch.cuda.graph docs, followed to the letter):
- the worker dreams on a CUDA stream of its own and publishes, with each residual, an event
  recorded on that stream after the residual was written; the composer's stream waits on that
  event alone, never on the whole device;
- everything that builds (a backend's export or graph capture, a first run at a new shape, the
  watchdog's replacement dreamer) runs on the worker's thread while it holds the `BuildLock`.
  `torch.cuda.graph` captures in "global" mode: a CUDA call from any other thread during the
  capture (an allocation, a sync) would invalidate it. The display takes the same lock, without
  waiting, around all its CUDA work, and shows the camera alone while a build holds it;
- builds are reported as `building`, never as stalls, so the watchdog does not start a second one.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from realtime.control.ratelimit import WarnLimit
from realtime.dream.dreamer import FrameDreamer, Shape, fresh_dreamer
from realtime.io.sources.base import Frame
from realtime.loop.governor import QualityGovernor
from realtime.params import DreamParams

log = logging.getLogger(__name__)

WATCHDOG_S = 2.0  # a dream worker without a finished dream for this long (hung or failing) is replaced
BUILD_LIMIT_S = 300.0  # a build (export, capture) taking longer than this is treated as hung


class BuildLock:
    """Between CUDA builds on the worker's thread and the display's CUDA work: the worker holds it
    for a build (blocking), the display only ever tries it (never waits for the dream)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def building(self) -> Iterator[None]:
        with self._lock:
            yield

    @contextlib.contextmanager
    def display_turn(self) -> Iterator[bool]:
        """True when the display may use the GPU now; False while a build runs."""
        acquired = self._lock.acquire(blocking=False)
        try:
            yield acquired
        finally:
            if acquired:
                self._lock.release()


@dataclass(frozen=True, eq=False)
class DreamResult:
    residual: torch.Tensor  # 1x3xhxw at dream size on the dream's device, in pixel units
    frame: Frame  # the camera frame it was dreamed from
    dream_ms: float
    finished: float  # perf_counter() when it was published
    count: int  # 1, 2, 3... dreams published so far
    ready: torch.cuda.Event | None = None  # CUDA: recorded on the worker's stream after the residual


class DreamWorker:
    def __init__(
        self,
        dreamer: FrameDreamer | Callable[[], FrameDreamer],
        clock: Callable[[], float] = time.perf_counter,
        on_dream: Callable[[DreamResult], None] | None = None,
        governor: QualityGovernor | None = None,
        build_lock: BuildLock | None = None,
        prepare: list[Shape] | Callable[[FrameDreamer], list[Shape]] | None = None,
    ):
        """`dreamer`, or a function that builds one (then built on this worker's thread, as a
        build); `prepare`: shapes to build ahead, on this thread, before the first dream and
        after every rebuild (a list, or a function of the dreamer)."""
        self._build_dreamer = dreamer if callable(dreamer) else None
        self.dreamer: FrameDreamer | None = None if self._build_dreamer else dreamer
        self._last_failure = ""  # the last dream failure logged with its traceback
        self._failure_limit = WarnLimit()
        self.clock, self.on_dream, self.governor = clock, on_dream, governor
        self.build_lock = build_lock or BuildLock()
        self._prepare = prepare
        self._lock = threading.Condition()
        self._frame: Frame | None = None  # newest frame not dreamed yet
        self._params: DreamParams | None = None  # newest parameters not applied yet
        self._result: DreamResult | None = None
        self._stop = False
        self._busy = False
        self._count = 0
        self._stream: torch.cuda.Stream | None = None
        self.error: str = ""  # last failure, for the HUD
        self.abandoned = False  # set by the watchdog: this worker's results are no longer wanted
        self.building = False  # an export, a capture, a first run: slow on purpose, not a stall
        self.build_started = 0.0
        self.last_progress = clock()  # start, or the last published dream
        self._thread = threading.Thread(target=self._run, name="dream worker", daemon=True)
        self._thread.start()

    def submit(self, frame: Frame) -> None:
        dreamer = self.dreamer
        if dreamer is not None:  # its flow starts now on the flow's thread, beside the current dream
            dreamer.look_ahead(frame.image)
        with self._lock:
            if self._frame is None and not self._busy:
                self.last_progress = self.clock()  # idle until now: the clock starts with this work
            self._frame = frame
            self._lock.notify()

    def set_params(self, params: DreamParams) -> None:
        with self._lock:
            self._params = params
            self._lock.notify()

    @property
    def latest(self) -> DreamResult | None:
        return self._result

    def wait_for(self, count: int, timeout: float) -> DreamResult | None:
        """Block until at least `count` dreams are published (tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._count < count and not self._stop:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            return self._result

    def stop(self) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify_all()
        self._thread.join(timeout=5.0)
        if self.dreamer is not None:
            self.dreamer.close()

    def stalled_for(self, now: float) -> float:
        """Seconds without a finished dream while work was waiting (0 while idle or building,
        unless a build runs past BUILD_LIMIT_S)."""
        if self.building:
            return max(0.0, now - self.build_started - BUILD_LIMIT_S)
        waiting = self._busy or self._frame is not None
        if not waiting:
            return 0.0
        return max(0.0, now - self.last_progress)

    def abandon(self) -> None:
        """Stop waiting for this worker (it may be stuck inside a driver call and never return)."""
        self.abandoned = True
        with self._lock:
            self._stop = True
            self._lock.notify_all()
        if self.dreamer is not None:
            self.dreamer.close()  # a worker waiting on the flow's thread is released, not leaked

    # --- on the worker's thread ---------------------------------------------------------------

    def _run(self) -> None:
        if not self._start():
            return
        while True:
            with self._lock:
                while self._frame is None and self._params is None and not self._stop:
                    self._lock.wait()
                if self._stop:
                    return
                frame, self._frame = self._frame, None
                params, self._params = self._params, None
            try:
                if params is not None:
                    self._apply(params)
                if frame is not None:
                    self._dream(frame)
            except Exception as exc:  # nothing may end this thread: the watchdog replaces a failing one
                self.error = f"dream worker: {type(exc).__name__}: {exc}"
                log.exception("dream worker error")

    def _start(self) -> bool:
        """Build the dreamer (when handed a builder) and prepare its shapes, as builds."""
        try:
            with self._build():
                if self.dreamer is None:
                    self.dreamer = self._build_dreamer()
                self.dreamer.flow_on_thread()  # the worker makes no DIS call itself
                if self.dreamer.device.type == "cuda":
                    self._stream = torch.cuda.Stream(self.dreamer.device)
                if self._prepare:
                    with self._on_stream():
                        self.dreamer.prepare(self._shapes())
        except Exception as exc:
            self.error = f"dreamer could not be built: {type(exc).__name__}: {exc}"
            log.exception("dreamer could not be built")
            self._busy = True  # work is stuck: the watchdog will try a fresh worker
            return False
        return True

    @contextlib.contextmanager
    def _build(self) -> Iterator[None]:
        """A build: holds the build lock (the display keeps off the GPU) and is not a stall."""
        self.building, self.build_started = True, self.clock()
        try:
            with self.build_lock.building():
                yield
        finally:
            self.building = False
            self.last_progress = self.clock()

    def _on_stream(self):
        return torch.cuda.stream(self._stream) if self._stream is not None else contextlib.nullcontext()

    def _apply(self, params: DreamParams) -> None:
        """Apply new parameters. Whether they rebuild is decided before locking: a change that
        builds nothing (every frame, with audio on) never takes the build lock, so the display
        keeps its turn. One that rebuilds (a new model or layer) then prepares every shape the
        show can reach in the same build, so no capture or precision probe lands mid-show."""
        try:
            if not self.dreamer.needs_rebuild(params):
                with self._on_stream():
                    self.dreamer.set_params(params)
                return
            with self._build(), self._on_stream():
                self.dreamer.set_params(params)
                if self._prepare:
                    self.dreamer.prepare(self._shapes())
        except Exception as exc:  # a rejected look or a failed build: keep dreaming the last one
            log.warning("parameter change rejected: %s", exc)

    def _shapes(self) -> list[Shape]:
        """The shapes to prepare: a list, or a function of the dreamer (its params may change)."""
        return self._prepare(self.dreamer) if callable(self._prepare) else list(self._prepare)

    def _dream(self, frame: Frame) -> None:
        started = self.clock()
        self._busy = True
        ready = None
        try:
            first_run = self.dreamer.needs_build()
            with self._build() if first_run else contextlib.nullcontext(), self._on_stream():
                residual = self.dreamer.residual(frame.image)
                if self._stream is not None:
                    ready = torch.cuda.Event()
                    ready.record(self._stream)
        except Exception as exc:  # a failing dream must never take the show down with it
            self.error = f"dream failed: {type(exc).__name__}: {exc}"
            if self.error != self._last_failure:  # a new kind of failure: its traceback, once
                self._last_failure = self.error
                log.exception("dream failed; showing the camera until the next frame")
            else:  # the same failure every frame is one line a second, not 30 tracebacks
                self._failure_limit.warn(log, "%s (again); showing the camera", self.error)
            return
        finally:
            self._busy = False
        finished = self.clock()
        if self.abandoned:
            return
        self.last_progress = finished
        result = DreamResult(residual, frame, (finished - started) * 1000.0, finished, self._count + 1, ready)
        with self._lock:
            self._count += 1
            self._result = result
            self.error = ""
            self._lock.notify_all()
        if self.on_dream is not None:
            self.on_dream(result)
        if self.governor is not None and not first_run:
            self._govern(finished - started)

    def _govern(self, seconds: float) -> None:
        quality = self.governor.update(seconds * 1000.0)
        if quality is not None:
            log.info("%s", self.governor.last_change)
            with self._on_stream():  # the cap resizes the carried residual: the dream's stream
                self.dreamer.set_cap(quality.steps, quality.size)


class DreamSupervisor:
    """Keeps one dream worker running: starts it, and replaces it when it stalls (a hung driver)
    or keeps failing; the show goes on with the camera meanwhile. The replacement dreamer (a
    fresh engine on the same network) is built on the new worker's thread, never the display's."""

    def __init__(
        self,
        dreamer: FrameDreamer,
        on_dream: Callable[[DreamResult], None],
        clock: Callable[[], float] = time.perf_counter,
        governor: QualityGovernor | None = None,
        watchdog_s: float = WATCHDOG_S,
        respawn: Callable[[FrameDreamer], FrameDreamer] = fresh_dreamer,
        prepare: list[Shape] | Callable[[FrameDreamer], list[Shape]] | None = None,
    ):
        self._dreamer, self.on_dream, self.clock = dreamer, on_dream, clock
        self.governor, self.watchdog_s, self.respawn = governor, watchdog_s, respawn
        self.prepare = prepare
        self.build_lock = BuildLock()
        self.restarts = 0
        self.worker: DreamWorker | None = None

    @property
    def dreamer(self) -> FrameDreamer:
        """The dreamer in use (the current worker's, once it has built one)."""
        if self.worker is not None and self.worker.dreamer is not None:
            self._dreamer = self.worker.dreamer
        return self._dreamer

    def start(self) -> DreamWorker:
        if self.worker is None:
            self.worker = self._worker(self._dreamer)
        return self.worker

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    def watch(self) -> None:
        """Replace the worker if it has stalled for longer than the watchdog allows."""
        stalled = self.worker.stalled_for(self.clock())
        if stalled <= self.watchdog_s:
            return
        self.restarts += 1
        log.error(
            "dream worker stalled for %.1f s (%s); restarting it (restart %d)",
            stalled,
            self.worker.error or "no dream finished",
            self.restarts,
        )
        self.worker.abandon()
        hung = self.dreamer
        self.worker = self._worker(lambda: self.respawn(hung))

    def _worker(self, dreamer: FrameDreamer | Callable[[], FrameDreamer]) -> DreamWorker:
        return DreamWorker(dreamer, self.clock, self.on_dream, self.governor, self.build_lock, self.prepare)

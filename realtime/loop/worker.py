"""The dream worker: a thread that dreams the newest camera frame it was handed, over and over,
and the supervisor that replaces it when it hangs or keeps failing.

The display loop never waits for it. It hands in each new camera frame (a one-slot mailbox: a
slow dream skips frames rather than queueing them) and composes every frame it shows with the
newest residual the worker has published, so the window moves at the camera's rate even when the
dream updates at 10 Hz. Parameter changes and the governor's cap are applied by the worker
itself, between dreams.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from realtime.dream.dreamer import FrameDreamer, fresh_dreamer
from realtime.io.sources import Frame
from realtime.loop.governor import QualityGovernor
from realtime.params import DreamParams

log = logging.getLogger(__name__)

WATCHDOG_S = 2.0  # a dream worker without a finished dream for this long (hung or failing) is replaced


@dataclass(frozen=True, eq=False)
class DreamResult:
    residual: torch.Tensor  # 1x3xhxw at dream size on the dream's device, in pixel units
    frame: Frame  # the camera frame it was dreamed from
    dream_ms: float
    finished: float  # perf_counter() when it was published
    count: int  # 1, 2, 3... dreams published so far


class DreamWorker:
    def __init__(
        self,
        dreamer: FrameDreamer,
        clock: Callable[[], float] = time.perf_counter,
        on_dream: Callable[[DreamResult], None] | None = None,
        governor: QualityGovernor | None = None,
    ):
        self.dreamer, self.clock, self.on_dream = dreamer, clock, on_dream
        self.governor = governor
        self._lock = threading.Condition()
        self._frame: Frame | None = None  # newest frame not dreamed yet
        self._params: DreamParams | None = None  # newest parameters not applied yet
        self._result: DreamResult | None = None
        self._stop = False
        self._busy = False
        self._count = 0
        self.error: str = ""  # last failure, for the HUD
        self.abandoned = False  # set by the watchdog: this worker's results are no longer wanted
        self.rebuilding = False  # applying parameters (maybe a slow re-export): not a stall
        self.last_progress = clock()  # start, or the last published dream
        self._thread = threading.Thread(target=self._run, name="dream worker", daemon=True)
        self._thread.start()

    def submit(self, frame: Frame) -> None:
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

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._frame is None and self._params is None and not self._stop:
                    self._lock.wait()
                if self._stop:
                    return
                frame, self._frame = self._frame, None
                params, self._params = self._params, None
            if params is not None:
                self._apply(params)
            if frame is not None:
                self._dream(frame)

    def stalled_for(self, now: float) -> float:
        """Seconds without a finished dream while work was waiting (0 while idle or rebuilding)."""
        waiting = self._busy or self._frame is not None
        if self.rebuilding or not waiting:
            return 0.0
        return max(0.0, now - self.last_progress)

    def abandon(self) -> None:
        """Stop waiting for this worker (it may be stuck inside a driver call and never return)."""
        self.abandoned = True
        with self._lock:
            self._stop = True
            self._lock.notify_all()

    def _apply(self, params: DreamParams) -> None:
        self.rebuilding = True
        try:
            self.dreamer.set_params(params)
        except Exception as exc:  # a rejected look or a failed build: keep dreaming the last one
            log.warning("parameter change rejected: %s", exc)
        finally:
            self.rebuilding = False
            self.last_progress = self.clock()

    def _dream(self, frame: Frame) -> None:
        started = self.clock()
        self._busy = True
        try:
            residual = self.dreamer.residual(frame.image)
        except Exception as exc:  # a failing dream must never take the show down with it
            self.error = f"dream failed: {type(exc).__name__}: {exc}"
            log.exception("dream failed; showing the camera until the next frame")
            return
        finally:
            self._busy = False
        finished = self.clock()
        if self.abandoned:
            return
        self.last_progress = finished
        with self._lock:
            self._count += 1
            self._result = DreamResult(residual, frame, (finished - started) * 1000.0, finished, self._count)
            self.error = ""
            self._lock.notify_all()
        if self.on_dream is not None:
            self.on_dream(self._result)
        if self.governor is not None:
            self._govern(finished - started)

    def _govern(self, seconds: float) -> None:
        quality = self.governor.update(seconds * 1000.0)
        if quality is not None:
            log.info("%s", self.governor.last_change)
            self.dreamer.set_cap(quality.steps, quality.size)


class DreamSupervisor:
    """Keeps one dream worker running: starts it, and replaces it when it stalls (a hung driver)
    or keeps failing; the show goes on with the camera meanwhile, and the new worker gets a
    fresh dreamer on the same network."""

    def __init__(
        self,
        dreamer: FrameDreamer,
        on_dream: Callable[[DreamResult], None],
        clock: Callable[[], float] = time.perf_counter,
        governor: QualityGovernor | None = None,
        watchdog_s: float = WATCHDOG_S,
        respawn: Callable[[FrameDreamer], FrameDreamer] = fresh_dreamer,
    ):
        self.dreamer, self.on_dream, self.clock = dreamer, on_dream, clock
        self.governor, self.watchdog_s, self.respawn = governor, watchdog_s, respawn
        self.restarts = 0
        self.worker: DreamWorker | None = None

    def start(self) -> DreamWorker:
        if self.worker is None:
            self.worker = DreamWorker(self.dreamer, self.clock, self.on_dream, self.governor)
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
        try:
            self.dreamer = self.respawn(self.dreamer)
        except Exception as exc:  # cannot rebuild now: keep showing the camera, try again later
            log.error("could not rebuild the dreamer: %s", exc)
        self.worker = DreamWorker(self.dreamer, self.clock, self.on_dream, self.governor)

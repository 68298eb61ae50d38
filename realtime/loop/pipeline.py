"""The show loop: newest source frame -> dream -> compose -> window and recorder, with timing.

Two ways to run it:
- threaded (the window): a dream worker thread dreams the newest frame while this loop shows
  every camera frame composed with the newest residual, so the display never waits for the dream;
- in step (`--headless` recording, tests): every delivered frame is dreamed before it is shown.
A source that has no new frame (a lost camera, a paused file) does not stop the show: the last
frame is dreamed again, so the window keeps showing (and deepening) the last picture.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from realtime.control.plane import ShowState
from realtime.dream.dreamer import FrameDreamer
from realtime.dream.flow import ResidualTracker
from realtime.errors import DreamcamError
from realtime.io.sources.base import Frame, Source
from realtime.loop import hud
from realtime.loop.compose import Composer
from realtime.loop.governor import QualityGovernor
from realtime.loop.showio import ShowIO
from realtime.loop.stats import PipelineStats
from realtime.loop.worker import WATCHDOG_S, DreamResult, DreamSupervisor, DreamWorker
from realtime.params import DreamParams
from realtime.show.attract import AttractMode

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.1  # how long to wait for a new frame before dreaming the last one again
HOLD_S = 0.5  # a build younger than this keeps the last composed picture; an older one shows the camera


@dataclass
class AttractLoop:
    """Kiosk mode's attract loop: after a while without motion, the scene's frames are dreamt."""

    mode: AttractMode
    scene: Source
    _frame: Frame | None = None

    def frame_or(self, frame: Frame, fresh: bool, now: float) -> Frame:
        """The camera frame, or while nobody moves the scene's."""
        if fresh:
            self.mode.update(frame.image, now)
        if not self.mode.active:
            return frame
        self._frame = self.scene.read(timeout=0.0) or self._frame
        return self._frame or frame


class Pipeline:
    def __init__(
        self,
        source: Source,
        dreamer: FrameDreamer,
        state: ShowState,
        io: ShowIO | None = None,
        *,
        threaded: bool = False,
        governor: QualityGovernor | None = None,
        watchdog_s: float = WATCHDOG_S,
        attract: AttractLoop | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.source, self.state, self.io = source, state, io or ShowIO()
        self.threaded, self.attract, self.clock = threaded, attract, clock
        self.dreams = DreamSupervisor(
            dreamer,
            self._on_dream,
            clock,
            governor,
            watchdog_s,
            prepare=lambda d: _reachable_shapes(d, governor),
        )
        self.composer = Composer(dreamer.device)
        # threaded: moves the shown residual with each camera frame between dreams
        self.tracker = ResidualTracker(dreamer.device)
        self.stats = PipelineStats()
        self.last_frame: Frame | None = None
        self.last_output: np.ndarray | None = None
        self._composed: np.ndarray | None = None  # the last frame composed with a dream
        self.residual: torch.Tensor | np.ndarray | None = None  # an array: the CPU tracker's
        self._shown_dream: DreamResult | None = None  # the newest dream already on screen
        self._last_delivery: float | None = None
        self._sent: DreamParams = dreamer.params  # what the dreamer was last handed

    @property
    def dreamer(self) -> FrameDreamer:
        """The dreamer in use (the watchdog may have replaced the first one)."""
        return self.dreams.dreamer

    @property
    def worker(self) -> DreamWorker | None:
        return self.dreams.worker

    @property
    def restarts(self) -> int:
        return self.dreams.restarts

    def run(self, max_frames: int | None = None) -> None:
        if self.threaded:
            self.start_worker()
        try:
            while not self.state.quit and (max_frames is None or self.stats.frames < max_frames):
                self.tick()
        finally:
            self.stop_worker()
            self.io.close()
            log.info("%s", "; ".join(hud.figures_lines(self.stats)))

    def start_worker(self) -> None:
        """Dream on the worker thread from now on (`run` does this when `threaded`)."""
        self.dreams.start()

    def stop_worker(self) -> None:
        self.dreams.stop()

    def tick(self) -> np.ndarray | None:
        """One display turn; returns the composed frame (None before any frame arrived)."""
        frame = self.source.read(timeout=READ_TIMEOUT_S)
        started = self.clock()
        fresh = frame is not None
        frame = frame or self.last_frame
        if frame is None:  # nothing ever arrived yet: stay responsive
            self._handle_events()
            return None
        self.last_frame = frame
        if self.attract is not None:
            frame = self.attract.frame_or(frame, fresh, self.clock())
        if self.worker is not None:
            self._show_newest_dream(frame)
        else:
            self._dream_then_show(frame, fresh)
        self._deliver(self.last_output, frame, fresh)
        self.stats.display_ms.add((self.clock() - started) * 1000.0)
        return self.last_output

    def _show_newest_dream(self, frame: Frame) -> None:
        """Threaded: hand the frame to the worker, compose with the newest residual, never wait."""
        self.dreams.watch()
        if self.state.frozen:
            if self.last_output is None:
                self.last_output = frame.image
            return
        self.worker.submit(frame)  # a lost camera: the last frame is dreamed again
        with self.composer.turn(self.dreams.build_lock) as device_free:
            if not device_free:  # a build (capture, export) holds the GPU
                self.last_output = self._while_building(frame)
                return
            result = self.worker.latest
            if result is not None and result is not self._shown_dream:
                self._shown_dream = result
                self.composer.wait_for(result.ready, result.residual)
                self.residual = self.io.shown_residual(result.residual)
                self.tracker.new_dream(self.residual, result.frame.image, result.frame.index)
                self.stats.dream_latency_ms.add((self.clock() - result.frame.t_capture) * 1000.0)
            if self.dreamer.params.warm_start == "flow":  # ride the residual on the moving scene
                self.residual = self.tracker.follow(frame.image, frame.index)
            gain = self.io.shown_gain()  # per display frame: the beat shows even between dreams
            self.last_output = self._composed = self.composer.compose(frame.image, self.residual, gain)

    def _while_building(self, frame: Frame) -> np.ndarray:
        """What to show while a build holds the GPU: the last composed picture for a short one
        (no flicker between dream and camera), the live camera once it has run HOLD_S."""
        worker = self.worker
        long_build = worker.building and self.clock() - worker.build_started >= HOLD_S
        if self._composed is None or long_build:
            return frame.image
        return self._composed

    def _dream_then_show(self, frame: Frame, fresh: bool) -> None:
        """In step: dream this frame now, then compose it."""
        if self.state.frozen and self.last_output is not None:
            return
        started = self.clock()
        self.residual = self.dreamer.residual(frame.image)
        finished = self.clock()
        self.stats.dream_ms.add((finished - started) * 1000.0)
        self.stats.dream_rate.tick(finished)
        self.stats.dreams += 1
        shown = self.io.shown_residual(self.residual)
        self.last_output = self.composer.compose(frame.image, shown, self.io.shown_gain())
        if fresh:
            self.stats.dream_latency_ms.add((finished - frame.t_capture) * 1000.0)

    def _on_dream(self, result: DreamResult) -> None:  # on the worker's thread
        self.stats.dreams += 1  # counted here, not copied from the worker: the stats may be reset
        self.stats.dream_ms.add(result.dream_ms)
        self.stats.dream_rate.tick(result.finished)

    def _deliver(self, output: np.ndarray, frame: Frame, fresh: bool) -> None:
        self.io.deliver(output, self.state.hud, self.hud_lines())
        self._account(frame, fresh)
        self._handle_events()

    def _account(self, frame: Frame, fresh: bool) -> None:
        now = self.clock()
        if fresh:
            self.stats.latency_ms.add((now - frame.t_capture) * 1000.0)
        if self._last_delivery is not None:
            self.stats.frame_ms.add((now - self._last_delivery) * 1000.0)
        self._last_delivery = now
        self.stats.output_rate.tick(now)
        self.stats.frames += 1

    def _handle_events(self) -> None:
        before = self.state.params
        self.io.handle_events(self.state, self.last_output)
        if self.state.params is not before:
            self.apply_params()
        elif (wanted := self.io.dream_params(self.state.params)) != self._sent:
            self.apply_params(wanted)  # only the sound moved the parameters (every frame, with audio on)

    def apply_params(self, params: DreamParams | None = None) -> None:
        """Hand the parameters (default: the state's, as the show modulates them) to the dreamer; a
        rejected change restores the last good ones. The governor's cap stays on top of them."""
        params = params or self.io.dream_params(self.state.params)
        try:
            self.dreamer.check(params)
            self._sent = params
            if self.worker is not None:
                self.worker.set_params(params)  # applied by the worker, between dreams
            else:
                self.dreamer.set_params(params)
        except DreamcamError as exc:
            self.state.warnings.warn(log, "parameter change rejected: %s", exc)
            self.state.params = self.dreamer.params

    def figures(self) -> dict[str, object]:
        """The loop's own figures for a remote (the web page, GET /api/state)."""
        return {
            "dreams_per_s": round(self.stats.dream_rate.rate, 1),
            "backend": self.dreamer.backend.name,
            "device": self.dreamer.device.type,
            "frames": self.stats.frames,
        }

    def hud_lines(self) -> list[str]:
        lines = hud.figures_lines(self.stats) + hud.dream_lines(self.state.params, self.dreamer)
        if self.source.status:
            lines.append(self.source.status)
        if self.worker is not None and self.worker.building:
            lines.append("building the dream (export, capture or first run): the camera goes on meanwhile")
        if self.worker is not None and self.worker.error:
            lines.append(self.worker.error)
        if self.restarts:
            lines.append(f"dream worker restarted {self.restarts}x (see log)")
        governor = self.dreams.governor
        if governor is not None and governor.last_change:
            lines.append(governor.last_change)
        if self.state.frozen:
            lines.append("FROZEN (space)")
        if self.attract is not None and self.attract.mode.active:
            lines.append("attract loop (no motion)")
        return lines + self.io.hud_lines()


def _reachable_shapes(dreamer: FrameDreamer, governor: QualityGovernor | None) -> list:
    """Every backend run the show can reach: the governor's sizes x steps x the octave sizes."""
    if governor is None:
        return dreamer.frame_shapes()
    sizes, steps = governor.reachable()
    return dreamer.reachable_shapes(sizes, steps)

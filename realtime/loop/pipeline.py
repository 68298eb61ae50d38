"""The show loop: newest source frame -> dream -> compose -> window and recorder, with timing.

Two ways to run it:
- live (the window): a `DreamWorker` thread dreams the newest frame while this loop shows every
  camera frame composed with the newest residual, so the display never waits for the dream;
- in step (`--headless` recording, tests): every delivered frame is dreamed before it is shown.
A source that has no new frame (a lost camera, a paused file) does not stop the show: the last
frame is dreamed again, so the window keeps showing (and deepening) the last picture.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from realtime.dream.dreamer import FrameDreamer
from realtime.dream.flow import ResidualTracker
from realtime.errors import DreamcamError
from realtime.io.sinks import VideoRecorder, save_snapshot
from realtime.io.sources import Frame, Source
from realtime.loop.compose import Composer
from realtime.loop.governor import QualityGovernor
from realtime.loop.stats import RateMeter, Rolling
from realtime.loop.worker import DreamResult, DreamWorker
from realtime.params import DreamParams
from realtime.show.attract import AttractMode
from realtime.show.control import Action, Intent, ShowState, action_of, apply_action

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.1  # how long to wait for a new frame before dreaming the last one again
WATCHDOG_S = 2.0  # a dream worker without a finished dream for this long (hung or failing) is replaced


class ShowHooks(Protocol):
    """Show control beyond the window's keys (realtime.show.plan.ShowControl): OSC, MIDI, playlists,
    presets, recording toggle, virtual camera. Called between frames, on the loop's thread."""

    def intents(self, from_window: list[Intent]) -> list[Intent]: ...
    def residual(self, residual: torch.Tensor) -> torch.Tensor: ...
    def output(self, image: np.ndarray) -> None: ...
    def handle(self, intent: Intent) -> None: ...
    def hud_lines(self) -> list[str]: ...
    def dream_params(self, params: DreamParams) -> DreamParams: ...


class Display(Protocol):
    hud_visible: bool

    def show(self, image: np.ndarray, hud_lines: list[str]) -> None: ...
    def poll(self) -> list[Action]: ...
    def toggle_fullscreen(self) -> None: ...


@dataclass
class PipelineStats:
    frames: int = 0  # composed frames delivered
    dreams: int = 0  # dreams finished (in step mode, one per frame)
    dream_ms: Rolling = field(default_factory=Rolling)  # the kernel's time per dream
    frame_ms: Rolling = field(default_factory=Rolling)  # interval between delivered frames
    latency_ms: Rolling = field(default_factory=Rolling)  # capture to display, new frames only
    dream_latency_ms: Rolling = field(default_factory=Rolling)  # capture to first display of its dream
    output_rate: RateMeter = field(default_factory=RateMeter)  # display fps
    dream_rate: RateMeter = field(default_factory=RateMeter)  # dream fps


class Pipeline:
    def __init__(
        self,
        source: Source,
        dreamer: FrameDreamer,
        state: ShowState,
        window: Display | None = None,
        recorder: VideoRecorder | None = None,
        snapshot_dir: str = "snapshots",
        clock: Callable[[], float] = time.perf_counter,
        live: bool = False,
        governor: QualityGovernor | None = None,
        watchdog_s: float = WATCHDOG_S,
        attract: AttractMode | None = None,
        attract_source: Source | None = None,
        show: ShowHooks | None = None,
    ):
        self.source, self.dreamer, self.state = source, dreamer, state
        self.live = live
        self.watchdog_s = watchdog_s
        self.attract, self.attract_source = attract, attract_source
        self._attract_frame: Frame | None = None
        self.restarts = 0
        self.governor = governor
        self.worker: DreamWorker | None = None
        self.composer = Composer(dreamer.device)
        self.tracker = ResidualTracker()
        self._shown_dream = 0  # count of the newest dream already on screen
        self.window, self.recorder = window, recorder
        self.snapshot_dir = snapshot_dir
        self.clock = clock
        self.show = show
        self.stats = PipelineStats()
        self.last_frame: Frame | None = None
        self.last_output: np.ndarray | None = None
        self.residual: torch.Tensor | None = None
        self._last_delivery: float | None = None
        self._sent: DreamParams = dreamer.params  # what the dreamer was last handed

    def run(self, max_frames: int | None = None) -> None:
        if self.live:
            self.start_worker()
        try:
            while not self.state.quit and (max_frames is None or self.stats.frames < max_frames):
                if self.live:
                    self.show_tick()
                else:
                    self.tick()
        finally:
            if self.live:
                self.stop_worker()

    def start_worker(self) -> None:
        if self.worker is None:
            self.worker = DreamWorker(self.dreamer, self.clock, self._on_dream, self.governor)

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    def _watchdog(self) -> None:
        """Replace a worker that has stalled (a hung driver) or keeps failing: the show goes on
        with the camera meanwhile, and the new worker gets a fresh dreamer on the same network."""
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
            self.dreamer = self.dreamer.spawn()
        except Exception as exc:  # cannot rebuild now: keep showing the camera, try again later
            log.error("could not rebuild the dreamer: %s", exc)
        self.worker = DreamWorker(self.dreamer, self.clock, self._on_dream, self.governor)

    def _on_dream(self, result: DreamResult) -> None:  # on the worker's thread
        self.stats.dreams = result.count
        self.stats.dream_ms.add(result.dream_ms)
        self.stats.dream_rate.tick(result.finished)

    def show_tick(self) -> np.ndarray | None:
        """One display turn of the live loop: never waits for the dream worker."""
        assert self.worker is not None, "start_worker() first"
        self._watchdog()
        frame = self.source.read(timeout=READ_TIMEOUT_S)
        fresh = frame is not None
        frame = frame or self.last_frame
        if frame is None:
            self._handle_events()
            return None
        self.last_frame = frame
        frame = self._attract_or(frame, fresh)
        if not self.state.frozen:
            self.worker.submit(frame)  # a lost camera: the last frame is dreamed again
            result = self.worker.latest
            if result is not None and result.count != self._shown_dream:
                self._shown_dream = result.count
                self.residual = self._shown(result.residual)
                self.tracker.new_dream(self.residual, result.frame.image, result.frame.index)
                self.stats.dream_latency_ms.add((self.clock() - result.frame.t_capture) * 1000.0)
            if self.dreamer.params.warm_start == "flow":  # ride the residual on the moving scene
                self.residual = self.tracker.follow(frame.image, frame.index)
            self.last_output = self.composer.compose(frame.image, self.residual)
        elif self.last_output is None:
            self.last_output = frame.image
        self._deliver(self.last_output, frame, fresh)
        return self.last_output

    def _attract_or(self, frame: Frame, fresh: bool) -> Frame:
        """The camera frame, or in the attract loop (nobody moved for a while) the scene's."""
        if self.attract is None or self.attract_source is None:
            return frame
        if fresh:
            self.attract.update(frame.image, self.clock())
        if not self.attract.active:
            return frame
        self._attract_frame = self.attract_source.read(timeout=0.0) or self._attract_frame
        return self._attract_frame or frame

    def tick(self) -> np.ndarray | None:
        """One turn in step: dream the newest frame, then show it; returns the composed frame."""
        frame = self.source.read(timeout=READ_TIMEOUT_S)
        fresh = frame is not None
        frame = frame or self.last_frame
        if frame is None:  # nothing ever arrived yet: stay responsive
            self._handle_events()
            return None
        self.last_frame = frame
        if not self.state.frozen or self.last_output is None:
            started = self.clock()
            self.residual = self.dreamer.dream_residual(frame.image)
            finished = self.clock()
            self.stats.dream_ms.add((finished - started) * 1000.0)
            self.stats.dream_rate.tick(finished)
            self.stats.dreams += 1
            self.last_output = self.composer.compose(frame.image, self._shown(self.residual))
            if fresh:
                self.stats.dream_latency_ms.add((finished - frame.t_capture) * 1000.0)
        self._deliver(self.last_output, frame, fresh)
        return self.last_output

    def _shown(self, residual: torch.Tensor) -> torch.Tensor:
        """The residual as the show wants it (a playlist crossfade may blend an old one out)."""
        return residual if self.show is None else self.show.residual(residual)

    def _deliver(self, output: np.ndarray, frame: Frame, fresh: bool) -> None:
        if self.window is not None:
            self.window.hud_visible = self.state.hud
            self.window.show(output, self.hud_lines())
        if self.recorder is not None:
            self.recorder.write(output)
        if self.show is not None:
            self.show.output(output)
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
        intents: list[Intent] = self.window.poll() if self.window is not None else []
        if self.show is not None:
            intents = self.show.intents(intents)  # adds OSC / MIDI / playlist intents
        for intent in intents:
            apply_action(self.state, intent)
        for intent in self.state.pending:
            action = action_of(intent)
            if action is Action.SNAPSHOT:
                if self.last_output is not None:
                    save_snapshot(self.last_output, self.snapshot_dir)
            elif action is Action.TOGGLE_FULLSCREEN:
                if self.window is not None:
                    self.window.toggle_fullscreen()
            elif self.show is not None:
                self.show.handle(intent)
        self.state.pending.clear()
        if self.state.params is not before:
            self.apply_params()
        elif self.show is not None and (wanted := self._dream_params()) != self._sent:
            # only the sound moved the parameters (every frame, with audio on): keep the governor's steps
            self.apply_params(wanted.replace(steps=self.dreamer.params.steps) if self.governor else wanted)

    def _dream_params(self) -> DreamParams:
        """The look as the show wants it dreamed (audio, when on, modulates it every frame)."""
        return self.state.params if self.show is None else self.show.dream_params(self.state.params)

    def apply_params(self, params: DreamParams | None = None) -> None:
        """Hand the parameters (default: the state's, as the show modulates them) to the dreamer; a
        rejected change restores the last good ones."""
        params = params or self._dream_params()
        try:
            self.dreamer.check(params)
            self._sent = params
            if self.worker is not None:
                self.worker.set_params(params)  # applied by the worker, between dreams
            else:
                self.dreamer.set_params(params)
        except DreamcamError as exc:
            log.warning("parameter change rejected: %s", exc)
            self.state.params = self.dreamer.params

    def hud_lines(self) -> list[str]:
        s, p, d = self.stats, self.state.params, self.dreamer
        lines = [
            f"{s.output_rate.rate:5.1f} fps  latency {s.latency_ms.p50:4.0f} ms",
            f"dream {s.dream_rate.rate:4.1f} fps  {s.dream_ms.p50:4.0f} ms each",
            f"{p.model}  {d.layer_name}",
            f"steps {d.params.steps}  octaves {p.octaves}  lr {p.lr:.3g}  warm {p.warm_start}"
            f"  motion {d.warm.motion:.1f}",
            f"{d.backend.name} ({getattr(d.backend, 'provider', 'torch')}) on {d.device.type}"
            f"  dream {d.dream_size[0]}x{d.dream_size[1]}",
        ]
        if self.source.status:
            lines.append(self.source.status)
        if self.worker is not None and self.worker.error:
            lines.append(self.worker.error)
        if self.restarts:
            lines.append(f"dream worker restarted {self.restarts}x (see log)")
        if self.governor is not None and self.governor.last_change:
            lines.append(self.governor.last_change)
        if self.state.frozen:
            lines.append("FROZEN (space)")
        if self.attract is not None and self.attract.active:
            lines.append("attract loop (no motion)")
        if self.show is not None:
            lines.extend(self.show.hud_lines())
        return lines

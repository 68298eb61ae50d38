"""The live loop: newest source frame -> dream -> compose -> window and recorder, with timing.

The loop is the same with or without a window (`--headless`, benchmarks, tests). A source that
has no new frame (a lost camera, a paused file) does not stop the show: the last frame is dreamed
again, so the window keeps showing (and deepening) the last picture until frames resume.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from realtime.compose import compose
from realtime.control import Action, Intent, ShowState, action_of, apply_action
from realtime.dreamer import FrameDreamer
from realtime.errors import DreamcamError
from realtime.sinks import VideoRecorder, save_snapshot
from realtime.sources import Frame, Source
from realtime.stats import RateMeter, Rolling

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.1  # how long to wait for a new frame before dreaming the last one again


class ShowHooks(Protocol):
    """Show control beyond the window's keys (realtime.show.ShowControl): OSC, MIDI, playlists,
    presets, recording toggle, virtual camera. Called between frames, on the loop's thread."""

    def intents(self, from_window: list[Intent]) -> list[Intent]: ...
    def residual(self, residual: np.ndarray) -> np.ndarray: ...
    def output(self, image: np.ndarray) -> None: ...
    def handle(self, intent: Intent) -> None: ...
    def hud_lines(self) -> list[str]: ...


class Display(Protocol):
    hud_visible: bool

    def show(self, image: np.ndarray, hud_lines: list[str]) -> None: ...
    def poll(self) -> list[Action]: ...
    def toggle_fullscreen(self) -> None: ...


@dataclass
class PipelineStats:
    frames: int = 0  # composed frames delivered
    dream_ms: Rolling = field(default_factory=Rolling)  # the kernel's time per frame
    frame_ms: Rolling = field(default_factory=Rolling)  # interval between delivered frames
    latency_ms: Rolling = field(default_factory=Rolling)  # capture to display, new frames only
    output_rate: RateMeter = field(default_factory=RateMeter)


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
        show: ShowHooks | None = None,
    ):
        self.source, self.dreamer, self.state = source, dreamer, state
        self.window, self.recorder = window, recorder
        self.snapshot_dir = snapshot_dir
        self.clock = clock
        self.show = show
        self.stats = PipelineStats()
        self.last_frame: Frame | None = None
        self.last_output: np.ndarray | None = None
        self.residual: np.ndarray | None = None
        self._last_delivery: float | None = None

    def run(self, max_frames: int | None = None) -> None:
        while not self.state.quit and (max_frames is None or self.stats.frames < max_frames):
            self.tick()

    def tick(self) -> np.ndarray | None:
        """One turn of the loop; returns the composed frame it delivered (None if it had none)."""
        frame = self.source.read(timeout=READ_TIMEOUT_S)
        fresh = frame is not None
        frame = frame or self.last_frame
        if frame is None:  # nothing ever arrived yet: stay responsive
            self._handle_events()
            return None
        self.last_frame = frame
        if not self.state.frozen or self.last_output is None:
            started = self.clock()
            self.residual = self.dreamer.dream_frame(frame.image)
            self.stats.dream_ms.add((self.clock() - started) * 1000.0)
            shown = self.residual if self.show is None else self.show.residual(self.residual)
            self.last_output = compose(frame.image, shown)
        output = self.last_output
        if self.window is not None:
            self.window.hud_visible = self.state.hud
            self.window.show(output, self.hud_lines())
        if self.recorder is not None:
            self.recorder.write(output)
        if self.show is not None:
            self.show.output(output)
        self._account(frame, fresh)
        self._handle_events()
        return output

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

    def apply_params(self) -> None:
        """Hand the state's parameters to the dreamer; a rejected change restores the last good ones."""
        try:
            self.dreamer.set_params(self.state.params)
        except DreamcamError as exc:
            log.warning("parameter change rejected: %s", exc)
            self.state.params = self.dreamer.params

    def hud_lines(self) -> list[str]:
        s, p, d = self.stats, self.state.params, self.dreamer
        lines = [
            f"{s.output_rate.rate:5.1f} fps  latency {s.latency_ms.p50:4.0f} ms",
            f"dream {s.dream_ms.p50:4.0f} ms per frame",
            f"{p.model}  {d.layer_name}",
            f"steps {p.steps}  octaves {p.octaves}  lr {p.lr:.3g}  warm {p.warm_start}",
            f"{d.backend.name} on {d.device.type}  dream {d.dream_size[0]}x{d.dream_size[1]}",
        ]
        if self.source.status:
            lines.append(self.source.status)
        if self.state.frozen:
            lines.append("FROZEN (space)")
        if self.show is not None:
            lines.extend(self.show.hud_lines())
        return lines

"""What the loop talks to besides the camera and the dream: the window (picture out, keys in),
the recorder, snapshots, and the show hooks (OSC, MIDI, playlists, presets, virtual camera)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from realtime.control.plane import Action, Intent, ShowState, action_of, apply_action
from realtime.io.hud import alert
from realtime.io.sinks import VideoRecorder
from realtime.io.snapshots import SnapshotWriter
from realtime.params import DreamParams

log = logging.getLogger(__name__)


class ShowHooks(Protocol):
    """Show control beyond the window's keys (realtime.show.plan.ShowControl): OSC, MIDI, playlists,
    presets, recording toggle, virtual camera. Called between frames, on the loop's thread."""

    def intents(self, from_window: list[Intent]) -> list[Intent]: ...
    def residual(self, residual: torch.Tensor) -> torch.Tensor: ...
    def output(self, image: np.ndarray) -> None: ...
    def frame(self, image: np.ndarray) -> np.ndarray: ...
    def handle(self, intent: Intent) -> None: ...
    def hud_lines(self) -> list[str]: ...
    def dream_params(self, params: DreamParams) -> DreamParams: ...
    def shown_gain(self) -> float: ...


class Display(Protocol):
    hud_visible: bool

    def show(self, image: np.ndarray, hud_lines: list[str]) -> None: ...
    def poll(self) -> list[Action]: ...
    def toggle_fullscreen(self) -> None: ...


@dataclass
class ShowIO:
    window: Display | None = None
    recorder: VideoRecorder | None = None
    show: ShowHooks | None = None
    snapshot_dir: str = "snapshots"
    # written on their own thread, capped: the show's thread hands a copy over and goes on
    snapshots: SnapshotWriter = field(init=False)

    def __post_init__(self) -> None:
        self.snapshots = SnapshotWriter(self.snapshot_dir)

    def shown_residual(self, residual: torch.Tensor) -> torch.Tensor:
        """The residual as the show wants it (a playlist crossfade may blend an old one out)."""
        return residual if self.show is None else self.show.residual(residual)

    def dream_params(self, params: DreamParams) -> DreamParams:
        """The look as the show wants it dreamed (audio, when on, modulates it every frame)."""
        return params if self.show is None else self.show.dream_params(params)

    def shown_gain(self) -> float:
        """What the dream is shown multiplied by this display frame (audio's swell on the beat)."""
        return 1.0 if self.show is None else self.show.shown_gain()

    def deliver(self, image: np.ndarray, hud: bool, hud_lines: list[str]) -> None:
        """One composed frame to the window, the recorder and the show's outputs (the show may put
        another in its place: a keepsake's captured frame while it is held)."""
        if self.show is not None:
            image = self.show.frame(image)
        if self.window is not None:
            self.window.hud_visible = hud
            self.window.show(image, hud_lines)
        if self.recorder is not None:
            self.recorder.write(image)
        if self.show is not None:
            self.show.output(image)

    def handle_events(self, state: ShowState, last_output: np.ndarray | None) -> None:
        """Apply what keys, OSC, MIDI and playlists asked for to `state`; perform the side effects."""
        intents: list[Intent] = self.window.poll() if self.window is not None else []
        if self.show is not None:
            intents = self.show.intents(intents)  # adds OSC / MIDI / playlist intents
        for intent in intents:
            apply_action(state, intent)
        for intent in state.pending:
            action = action_of(intent)
            if action is Action.SNAPSHOT:
                if last_output is not None:
                    self.snapshots.take(last_output)
            elif action is Action.TOGGLE_FULLSCREEN:
                if self.window is not None:
                    self.window.toggle_fullscreen()
            elif self.show is not None:
                self.show.handle(intent)
        state.pending.clear()

    def hud_lines(self) -> list[str]:
        failure = self.snapshots.failure  # a red line until a snapshot is saved again
        lines = [alert(failure)] if failure else []
        return lines + ([] if self.show is None else self.show.hud_lines())

    def close(self) -> None:
        """Write the snapshots still waiting (nothing taken is lost at the end of the show)."""
        self.snapshots.close()

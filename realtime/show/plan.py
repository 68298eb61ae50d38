"""ShowControl: the pipeline's one hook into show control beyond the window's keys.

It gathers intents from OSC, MIDI and a playlist, carries out the intents with side effects
(recording toggle, saving a preset, MIDI learn), feeds the composed output to the recording
switch and the virtual camera, and adds their lines to the HUD. Each part is optional.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import os
from dataclasses import dataclass

import numpy as np

from models.registry import ModelSpec
from realtime.dream.objectives import parse_objective
from realtime.errors import ConfigError, DreamcamError
from realtime.io.hud import alert
from realtime.io.recording import RecordingSwitch
from realtime.io.sinks import VideoRecorder
from realtime.io.virtualcam import VirtualCamera
from realtime.params import DreamParams, parse_size
from realtime.show.control import Action, Command, Intent, Preset, ShowState, action_of
from realtime.show.midi import Mapping, MidiInput, MidiMapper, load_mapping
from realtime.show.osc import OscControl
from realtime.show.playlist import Item, PlaylistPlayer, load_playlist
from realtime.show.presets import bundled_dir, load_folder, load_preset, save_preset

log = logging.getLogger(__name__)


class ShowControl:
    def __init__(
        self,
        state: ShowState,
        *,
        preset_save_dir: str = "presets",
        preset_dir: str | None = None,
        recording: RecordingSwitch | None = None,
        playlist: PlaylistPlayer | None = None,
        osc: OscControl | None = None,
        midi: MidiInput | None = None,
        midi_mapper: MidiMapper | None = None,
        virtual_cam: VirtualCamera | None = None,
    ):
        self.state = state
        self.preset_save_dir, self.preset_dir = preset_save_dir, preset_dir
        self.recording, self.playlist = recording, playlist
        self.osc, self.midi, self.virtual_cam = osc, midi, virtual_cam
        self.midi_mapper = midi_mapper or (midi.mapper if midi is not None else None)
        self._playlist_params = None  # what the playlist last asked for: re-sent only when it moves
        self.quit_on_record_failure = False  # headless: a recording the disk refused ends the run
        self._notice = ""  # a one-off red HUD line (L with no controller)

    # --- the pipeline's hooks -----------------------------------------------------------------

    def intents(self, from_window: list[Intent]) -> list[Intent]:
        intents = list(from_window)
        if self.midi_mapper is not None:
            intents = self.midi_mapper.intercept(intents)  # learn mode consumes the key it waits for
        if self.osc is not None:
            intents.extend(self.osc.drain())
        if self.midi is not None:
            intents.extend(self.midi.drain())
        if self.quit_on_record_failure and self.recording is not None and self.recording.failure:
            intents.append(Action.QUIT)
        if self.playlist is not None:
            params = self.playlist.update()
            if params is not self._playlist_params:
                self._playlist_params = params
                changes = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
                intents.insert(0, Command(Action.SET, changes, "playlist"))  # live input comes after it
        return intents

    def residual(self, residual: np.ndarray) -> np.ndarray:
        return residual if self.playlist is None else self.playlist.residual(residual)

    def output(self, image: np.ndarray) -> None:
        if self.recording is not None:
            self.recording.write(image)
        if self.virtual_cam is not None:
            self.virtual_cam.send(image)

    def handle(self, intent: Intent) -> None:
        action = action_of(intent)
        value = intent.value if isinstance(intent, Command) else None
        if action is Action.TOGGLE_RECORD:
            if self.recording is None:
                log.warning("recording is not set up")
            else:
                self.recording.toggle(value)
        elif action is Action.SAVE_PRESET:
            self._save_preset()
        elif action is Action.MIDI_LEARN:
            if self.midi_mapper is None:
                self._notice = "no MIDI controller: L (MIDI learn) needs --midi PORT"
                log.warning("%s", self._notice)
            else:
                self._notice = ""
                self.midi_mapper.start_learn()

    def hud_lines(self) -> list[str]:
        lines = [alert(self._notice)] if self._notice else []
        if self.state.preset_index >= 0 and self.state.presets:
            preset = self.state.presets[self.state.preset_index]
            lines.append(f"preset {self.state.preset_index + 1} {preset.name}")
        if self.playlist is not None:
            lines.append(self.playlist.hud_line())
        if self.recording is not None and (line := self.recording.hud_line()):
            lines.append(line)
        if self.osc is not None:
            lines.append(self.osc.hud_line())
        if self.midi_mapper is not None and (line := self.midi_mapper.hud_line()):
            lines.append(line)
        if self.virtual_cam is not None:
            lines.append(f"virtual camera {self.virtual_cam.device}")
        return lines

    # --- side effects -------------------------------------------------------------------------

    def _save_preset(self) -> None:
        try:
            save_preset(self.state.params, self.preset_save_dir)
        except (OSError, DreamcamError) as exc:
            log.warning("could not save the preset: %s", exc)
            return
        if self.preset_dir is not None and _same_dir(self.preset_dir, self.preset_save_dir):
            try:  # the new look becomes recallable by its number at once
                self.state.presets = load_folder(self.preset_dir)
            except DreamcamError as exc:
                log.warning("could not reload the preset folder: %s", exc)

    def close(self) -> None:
        """Stop listening and finish every file (safe to call once at the end of the show)."""
        for part in (self.osc, self.midi, self.virtual_cam):
            if part is not None:
                part.close()
        if self.recording is not None:
            self.recording.close()
        if self.midi_mapper is not None and (path := self.midi_mapper.save_learned()):
            log.warning(
                "learned MIDI mappings saved to %s; start with --midi-map %s to keep them", path, path
            )


def _same_dir(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


@dataclass
class ShowPlan:
    """`dreamcam run`'s show options, read and checked before anything opens (fail fast, one line)."""

    params: DreamParams  # the starting look: --preset, or the playlist's first item, or the options
    presets: list[Preset]
    preset_dir: str
    preset_save_dir: str
    playlist: list[Item] | None
    record_first: str | None
    record_dir: str
    osc: tuple[str, int] | None
    midi_port: str | None
    midi_map: dict[int, Mapping]
    virtual_cam_size: tuple[int, int] | None

    def start(self, state: ShowState, spec: ModelSpec, fps: float, record_codec: str = "h264") -> ShowControl:
        """Open the listeners and outputs; whatever opened is closed again if a later one fails."""
        state.presets = self.presets
        show = ShowControl(state, preset_save_dir=self.preset_save_dir, preset_dir=self.preset_dir)
        try:
            if self.midi_port is not None:  # without a controller there is nothing to map or learn
                show.midi_mapper = MidiMapper(self.midi_map, spec.layers)
                show.midi = MidiInput(self.midi_port, show.midi_mapper)
            if self.osc is not None:
                host, port = self.osc
                show.osc = OscControl(port, host, check_layer=lambda layer: parse_objective(layer, spec))
            if self.virtual_cam_size is not None:
                show.virtual_cam = VirtualCamera(*self.virtual_cam_size, fps)
            if self.playlist is not None:
                show.playlist = PlaylistPlayer(self.playlist)
            recorder = functools.partial(VideoRecorder, codec=record_codec)
            show.recording = RecordingSwitch(self.record_dir, fps, self.record_first, recorder)
        except BaseException:
            show.close()
            raise
        return show


def plan_show(args: argparse.Namespace, params: DreamParams) -> ShowPlan:
    preset_dir = args.preset_dir or bundled_dir()
    presets = load_folder(preset_dir)
    if args.preset:
        params = load_preset(args.preset)
    playlist = load_playlist(args.playlist, presets) if args.playlist else None
    if playlist:
        params = playlist[0].params
    osc = None
    if args.osc_port is not None:
        if not 0 <= args.osc_port <= 65535:
            raise ConfigError(f"--osc-port must be 0-65535, got {args.osc_port}")
        osc = (args.osc_host, args.osc_port)
    if args.midi_map and not args.midi:
        raise ConfigError("--midi-map needs --midi PORT (the controller to read)")
    return ShowPlan(
        params=params,
        presets=presets,
        preset_dir=preset_dir,
        # saving into the bundled (installed) folder would write into site-packages
        preset_save_dir=args.preset_dir or "presets",
        playlist=playlist,
        record_first=args.record,
        record_dir=args.record_dir,
        osc=osc,
        midi_port=args.midi,
        midi_map=load_mapping(args.midi_map) if args.midi_map else {},
        virtual_cam_size=parse_size(args.virtual_cam_size) if args.virtual_cam else None,
    )

"""ShowControl: the pipeline's one hook into show control beyond the window's keys.

It gathers intents from OSC, MIDI and a playlist, carries out the intents with side effects
(recording toggle, saving a preset, MIDI learn), feeds the composed output to the recording
switch and the video links (virtual camera, NDI, Spout, Syphon), sends the live state back over
OSC, and adds their lines to the HUD. Each part is optional.
"""

from __future__ import annotations

import argparse
import collections.abc
import dataclasses
import functools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from models.registry import ModelSpec
from realtime.audio.mapping import DEFAULT_MAPPING, AudioMapping
from realtime.audio.show import AudioShow
from realtime.control.plane import Action, Command, Intent, Preset, ShowState, action_of
from realtime.control.ratelimit import WarnLimit
from realtime.control.rates import RateMeter
from realtime.dream.objectives import parse_objective
from realtime.errors import ConfigError, DreamcamError
from realtime.io.hud import alert
from realtime.io.links import Link, check_link_name, require_platform
from realtime.io.qrline import QrLine
from realtime.io.recording import RecordingSwitch
from realtime.io.sinks import VideoRecorder
from realtime.io.virtualcam import VirtualCamera
from realtime.params import DreamParams, parse_size
from realtime.show.midi import Mapping, MidiInput, MidiMapper, load_mapping
from realtime.show.osc import OscControl, OscFeedback, OscRules, parse_host_port
from realtime.show.playlist import Item, PlaylistPlayer, load_playlist
from realtime.show.presets import (
    bundled_dir,
    load_audio_mapping,
    load_folder,
    load_look,
    look_path,
    preset_name,
    save_preset,
    with_preset,
)

if TYPE_CHECKING:
    from realtime.show.booth import KeepsakeBooth
    from realtime.show.web import WebRemote

log = logging.getLogger(__name__)

SAVE_EVERY_S = 1.0  # presets saved from keys, OSC or MIDI: at most one a second


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
        links: list[Link] | None = None,
        feedback: OscFeedback | None = None,
        default_layer: str = "",
        audio: AudioShow | None = None,
        web: WebRemote | None = None,
        booth: KeepsakeBooth | None = None,
    ):
        self.state = state
        self.preset_save_dir, self.preset_dir = preset_save_dir, preset_dir
        self.recording, self.playlist = recording, playlist
        self.osc, self.midi = osc, midi
        self.links: list[Link] = links or []  # virtual camera, NDI, Spout, Syphon: each on its own thread
        self.feedback, self.default_layer = feedback, default_layer
        self.audio, self.web = audio, web
        self.booth = booth  # keepsakes: only with the web remote, which delivers them
        # the loop's own figures for the web remote (fps, dreams/s, backend): set once the pipeline is
        self.figures: Callable[[], collections.abc.Mapping[str, object]] = dict
        self.midi_mapper = midi_mapper or (midi.mapper if midi is not None else None)
        self._playlist_params = None  # what the playlist last asked for: re-sent only when it moves
        # headless: a recording the disk refused ends the run, unless a remote can start another take
        self.quit_on_record_failure = False
        self._notice = ""  # a one-off red HUD line (L with no controller)
        # a save a second at most, and never the same look twice in a row: a controller repeating
        # its save button would otherwise fill the operator's folder (and the page) with files
        self.save_limit = WarnLimit(every_s=SAVE_EVERY_S)
        self._last_saved: tuple[DreamParams, dict | None] | None = None
        self.output_rate = RateMeter()  # the show's frame rate, for the OSC feedback

    # --- the pipeline's hooks -----------------------------------------------------------------

    def intents(self, from_window: list[Intent]) -> list[Intent]:
        intents = list(from_window)
        if self.midi_mapper is not None:
            intents = self.midi_mapper.intercept(intents)  # learn mode consumes the key it waits for
        if self.osc is not None:
            intents.extend(self.osc.drain())
        if self.midi is not None:
            intents.extend(self.midi.drain())
        if self.web is not None:
            intents.extend(self.web.drain())
        if self.quit_on_record_failure and self.recording is not None and self.recording.failure:
            self.quit_on_record_failure = False  # decided once
            if self._remote_controlled:  # a remote can start another take: the show goes on, as logged
                log.warning("the show goes on: start another take from the remote once the disk is fixed")
            else:
                log.info("nothing can start another take (no OSC, MIDI or web remote): the show ends")
                intents.append(Action.QUIT)
        if self.playlist is not None:
            params = self.playlist.update()
            if params is not self._playlist_params:
                self._playlist_params = params
                changes = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
                intents.insert(0, Command(Action.SET, changes, "playlist"))  # live input comes after it
        if self.audio is not None:
            intents.extend(self.audio.intents(self.state))  # "every N beats": next layer or preset
        return intents

    @property
    def _remote_controlled(self) -> bool:
        """Whether an operator can reach the show (and start a take) without a window."""
        return any(part is not None for part in (self.osc, self.midi, self.web))

    def dream_params(self, params: DreamParams) -> DreamParams:
        """What the dream runs with: the look, modulated by the sound when audio is on."""
        return params if self.audio is None else self.audio.dream_params(params)

    def residual(self, residual: np.ndarray) -> np.ndarray:
        return residual if self.playlist is None else self.playlist.residual(residual)

    def shown_gain(self) -> float:
        """The dream as shown swells on the beat when audio is on (docs/AUDIO.md, `swell`)."""
        return 1.0 if self.audio is None else self.audio.shown_gain()

    def frame(self, image: np.ndarray) -> np.ndarray:
        """The picture to show for the composed one (a keepsake's capture, while it is held)."""
        return image if self.booth is None else self.booth.frame(image)

    def output(self, image: np.ndarray) -> None:
        self.output_rate.tick(time.perf_counter())
        if self.recording is not None:
            self.recording.write(image)
        for link in self.links:
            link.send(image)  # never blocks: the link's thread takes the newest frame
        if self.feedback is not None:
            self.feedback.update(self.live_state())
        if self.web is not None:
            self.web.offer_frame(image)
            self.web.publish(self.web_state)

    def live_state(self) -> dict[str, object]:
        """What OSC feedback reports, under the input's addresses (docs/OSC.md)."""
        p, s = self.state.params, self.state
        preset = s.presets[s.preset_index].name if 0 <= s.preset_index < len(s.presets) else ""
        return {
            "layer": p.layer or self.default_layer,
            "strength": p.lr,
            "steps": p.steps,
            "persistence": p.persistence,
            "preset": preset,
            "record": int(self.recording is not None and self.recording.recording),
            "fps": round(self.output_rate.rate, 1),
        }

    def web_state(self) -> dict[str, object]:
        """What the web remote shows (and GET /api/state serves): the live state and the figures."""
        from realtime.show.web import web_state

        self.web.presets = self.state.presets  # a saved preset is recallable from the page too
        keepsake = {"keepsake": self.booth.state()} if self.booth is not None else {}
        return web_state(
            self.live_state(),
            self.state.params,
            frozen=self.state.frozen,
            looks=[preset.name for preset in self.state.presets],
            figures={**self.figures(), **keepsake},
        )

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
        elif action is Action.KEEPSAKE:
            if self.booth is None:  # (in kiosk every key asks: at most one line a second)
                self.state.warnings.warn(log, "no keepsakes: they need the web remote (--web HOST:PORT)")
            else:
                self.booth.press()
        elif action is Action.AUDIO:
            if self.audio is None:
                log.warning("audio mapping change ignored: start with --audio to listen")
            else:
                self.audio.change(*value)

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
        lines.extend(link.hud_line() for link in self.links)
        if self.feedback is not None:
            lines.append(self.feedback.hud_line())
        if self.audio is not None:
            lines.extend(self.audio.hud_lines())
        overlay = self.booth.overlay() if self.booth is not None else []
        if self.web is not None:
            # one QR code on the screen at a time: while a keepsake's is up, the remote's (the
            # operator's, with its token) is not, so a visitor cannot scan the wrong one
            lines.extend(line for line in self.web.hud_lines() if not (overlay and isinstance(line, QrLine)))
        return lines + overlay  # (a keepsake the disk refused: one line, the booth's banner)

    # --- side effects -------------------------------------------------------------------------

    def _save_preset(self) -> None:
        mapping = self.audio.reactor.mapping if self.audio is not None else None
        audio = mapping and mapping.to_table()  # with audio on, the mapping as tuned is part of the look
        look = (self.state.params, audio)
        if look == self._last_saved:
            log.info("preset not saved: this look was just saved")
            return
        if not self.save_limit.allow():
            self.state.warnings.warn(log, "preset not saved: one save a second at most; press again")
            return
        try:
            path = save_preset(self.state.params, self.preset_save_dir, audio=audio)
        except (OSError, DreamcamError) as exc:
            log.warning("could not save the preset: %s", exc)
            return
        self._last_saved = look
        if mapping is not None:
            self.audio.mappings[path] = mapping
        if self.preset_dir is not None and _same_dir(self.preset_dir, self.preset_save_dir):
            # the new look becomes recallable by its number at once (the folder is not read again)
            saved = Preset(preset_name(path), path, self.state.params)
            self.state.presets = with_preset(self.state.presets, saved)

    def close(self) -> None:
        """Stop listening and finish every file (safe to call once at the end of the show)."""
        for part in (self.osc, self.midi, self.feedback, *self.links, self.audio, self.web):
            if part is not None:
                part.close()
        if self.booth is not None:  # after the web: no link is served while its file goes
            self.booth.store.close()
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
    links: list[tuple[str, str]] = field(default_factory=list)  # (flag, name): --ndi-out, --spout...
    ndi_format: str = "uyvy"
    osc_feedback: tuple[str, int] | None = None
    audio_input: str | None = None  # --audio DEVICE ("default": the default input); None: no audio
    audio_mappings: dict[str, AudioMapping] = field(default_factory=dict)  # preset path ->
    audio_start: AudioMapping = DEFAULT_MAPPING  # the starting look's [audio] table
    web: tuple[str, int] | None = None  # --web [HOST:]PORT
    snapshot_dir: str = "snapshots"
    keepsakes: KeepsakePlan | None = None  # with --web: the booth's keepsakes

    def start(self, state: ShowState, spec: ModelSpec, fps: float, record_codec: str = "h264") -> ShowControl:
        """Open the listeners and outputs; whatever opened is closed again if a later one fails."""
        state.presets = self.presets
        show = ShowControl(
            state,
            preset_save_dir=self.preset_save_dir,
            preset_dir=self.preset_dir,
            default_layer=spec.default_layer,
        )
        try:
            if self.midi_port is not None:  # without a controller there is nothing to map or learn
                show.midi_mapper = MidiMapper(self.midi_map, spec.layers)
                show.midi = MidiInput(self.midi_port, show.midi_mapper)

            def check_layer(layer: str) -> None:
                parse_objective(layer, spec)

            if self.osc is not None:
                host, port = self.osc
                show.osc = OscControl(port, host, check_layer=check_layer)
            if self.web is not None:  # the same rules as OSC's: one validation for every remote
                store = self.keepsakes.open_store() if self.keepsakes is not None else None
                try:
                    show.web = web_module().WebRemote(
                        *self.web,
                        OscRules(check_layer),
                        presets=self.presets,
                        snapshot_dir=self.snapshot_dir,
                        keepsakes=store,
                    )
                except BaseException:
                    if store is not None:
                        store.close()
                    raise
                if store is not None:
                    show.booth = self.keepsakes.open_booth(store, show.web)
            if self.virtual_cam_size is not None:
                show.links.append(VirtualCamera(*self.virtual_cam_size, fps))
            for flag, name in self.links:
                show.links.append(open_link(flag, name, fps, self.ndi_format))
            if self.osc_feedback is not None:
                show.feedback = OscFeedback(*self.osc_feedback)
            if self.playlist is not None:
                show.playlist = PlaylistPlayer(self.playlist)
            recorder = functools.partial(VideoRecorder, codec=record_codec)
            show.recording = RecordingSwitch(self.record_dir, fps, self.record_first, recorder)
            if self.audio_input is not None:
                from realtime.audio.live import open_live_audio  # PortAudio only when asked for

                live = open_live_audio(
                    self.audio_input
                )  # None: one line said why; no sound, the show goes on
                if live is not None:
                    show.audio = AudioShow(live, self.audio_mappings, self.audio_start)
        except BaseException:
            show.close()
            raise
        return show


@dataclass(frozen=True)
class KeepsakePlan:
    """The booth's keepsakes (issue 29): how long a link lives, where copies are archived, the
    countdown and how long the link stays on the screen."""

    ttl_s: float = 30 * 60.0
    archive: str | None = None
    countdown: int = 3
    card_s: float = 10.0

    def open_store(self):
        from realtime.show.keepsake import KeepsakeStore

        return KeepsakeStore(ttl_s=self.ttl_s, archive=self.archive)

    def open_booth(self, store, web: WebRemote):
        from realtime.show.booth import BoothTimes, KeepsakeBooth
        from realtime.show.webguard import is_loopback

        if is_loopback(web.host):
            log.warning(
                "keepsake links open on this machine only: --web listens on %s; for visitors' phones "
                "start with --web 0.0.0.0:%d on the booth's network (docs/REMOTE.md)",
                web.host,
                web.port,
            )
        log.info(
            "keepsakes kept %g min in %s%s",
            self.ttl_s / 60,
            store.folder,
            f", archived in {self.archive}" if self.archive else "",
        )
        return KeepsakeBooth(store, web.keepsake_url, BoothTimes(self.countdown, card_s=self.card_s))


def plan_keepsakes(args: argparse.Namespace) -> KeepsakePlan:
    """--keepsake-ttl MIN, --keepsake-dir DIR, --keepsake-countdown S, --keepsake-qr-s S, checked."""
    from realtime.show.keepsake import ttl_seconds

    ttl_s = ttl_seconds(getattr(args, "keepsake_ttl", 30.0))
    countdown = getattr(args, "keepsake_countdown", 3)
    card_s = getattr(args, "keepsake_qr_s", 10.0)
    if not 0 <= countdown <= 10:
        raise ConfigError(f"--keepsake-countdown must be 0-10 seconds (0: none), got {countdown}")
    if not 1 <= card_s <= 600:
        raise ConfigError(f"--keepsake-qr-s must be 1-600 seconds, got {card_s:g}")
    return KeepsakePlan(ttl_s, getattr(args, "keepsake_dir", None), countdown, card_s)


def _virtual_cam_size(text: str) -> tuple[int, int]:
    from realtime.dream.budget import check_virtual_cam_size

    size = parse_size(text)
    check_virtual_cam_size(size)
    return size


def plan_show(args: argparse.Namespace, params: DreamParams) -> ShowPlan:
    preset_dir = args.preset_dir or bundled_dir()
    presets = load_folder(preset_dir)
    if args.preset:
        params = load_look(args.preset)
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
    links = plan_links(args)
    feedback = parse_host_port("--osc-feedback", args.osc_feedback) if args.osc_feedback else None
    if osc is not None and feedback is not None and _same_endpoint(osc, feedback):
        raise ConfigError(
            f"--osc-feedback {args.osc_feedback} is dreamcam's own --osc-port: the show would read its "
            "own state back; point it at the controller's port"
        )
    audio_input = getattr(args, "audio", None)
    audio_mappings, audio_start = {}, DEFAULT_MAPPING
    if audio_input is not None:
        audio_mappings = {p.path: load_audio_mapping(p.path) or DEFAULT_MAPPING for p in presets}
        if args.preset:
            audio_start = load_audio_mapping(look_path(args.preset)) or DEFAULT_MAPPING
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
        virtual_cam_size=_virtual_cam_size(args.virtual_cam_size) if args.virtual_cam else None,
        links=links,
        ndi_format=args.ndi_format,
        osc_feedback=feedback,
        audio_input=audio_input,
        audio_mappings=audio_mappings,
        audio_start=audio_start,
        web=web_module().parse_web_address(args.web) if getattr(args, "web", None) else None,
        keepsakes=plan_keepsakes(args) if getattr(args, "web", None) else None,
    )


_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_ANY = ("0.0.0.0", "::", "")


def _same_endpoint(listen: tuple[str, int], send: tuple[str, int]) -> bool:
    """Whether feedback sent to `send` would arrive at the OSC input listening on `listen`."""
    (listen_host, listen_port), (send_host, send_port) = listen, send
    if listen_port != send_port:
        return False
    local = listen_host in _ANY or listen_host in _LOOPBACK
    return send_host == listen_host or (local and send_host in _LOOPBACK)


def plan_links(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The video links asked for, names and platforms checked (one line, exit 2, before the camera)."""
    links = []
    for flag, value in (("--ndi-out", args.ndi_out), ("--spout", args.spout), ("--syphon", args.syphon)):
        if value is None:
            continue
        require_platform(flag)
        links.append((flag, check_link_name(flag, value)))
    return links


def open_link(flag: str, name: str, fps: float, ndi_format: str = "uyvy") -> Link:
    """Open one video link; its library is imported only here (they are optional extras)."""
    if flag == "--ndi-out":
        from realtime.io.ndi import NdiSender

        return NdiSender(name, fps, ndi_format)
    if flag == "--spout":
        from realtime.io.spout import SpoutSender

        return SpoutSender(name, fps)
    from realtime.io.syphon import SyphonSender

    return SyphonSender(name, fps)


def web_module():
    """realtime.show.web, whose libraries (aiohttp, segno) are the `web` extra: imported for --web only."""
    try:
        from realtime.show import web
    except ImportError as exc:
        raise ConfigError(
            f"--web needs the web remote's libraries ({exc.name} is missing): pip install 'dreamcam[web]'"
        ) from None
    return web

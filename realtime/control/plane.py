"""Controls: user intents (`Action`, or a `Command` that carries a value) and how they change the show.

Input devices (the window's keys, OSC, MIDI, playlists) only translate their events into intents;
`apply_action` is the one place that turns an intent into new, validated `DreamParams` or a change
of show state (freeze, HUD, preset recall, quit). Intents with side effects outside the state
(snapshot, recording, saving a preset, MIDI learn) are queued in `ShowState.pending` for the sinks.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import Any

from realtime.control.ratelimit import WarnLimit
from realtime.errors import DreamcamError
from realtime.params import MAX_LIVE_STEPS, DreamParams

log = logging.getLogger(__name__)


class Action(enum.Enum):
    QUIT = "quit"
    FREEZE = "freeze"  # toggle: keep showing the current dream, stop dreaming
    PREV_LAYER = "prev_layer"
    NEXT_LAYER = "next_layer"
    STRONGER = "stronger"
    WEAKER = "weaker"
    FEWER_STEPS = "fewer_steps"
    MORE_STEPS = "more_steps"
    SNAPSHOT = "snapshot"
    TOGGLE_HUD = "toggle_hud"
    TOGGLE_FULLSCREEN = "toggle_fullscreen"
    PRESET = "preset"  # Command value: 1-based index into the preset folder, or a preset's name
    NEXT_PRESET = "next_preset"
    PREV_PRESET = "prev_preset"
    SAVE_PRESET = "save_preset"  # the current look as a new TOML file
    SET = "set"  # Command value: {field: value} for DreamParams.replace (OSC, MIDI, playlists)
    TOGGLE_RECORD = "toggle_record"  # Command value: None toggles, True/False starts/stops
    MIDI_LEARN = "midi_learn"
    AUDIO = "audio"  # Command value: (key, value) of the look's [audio] table, set live (docs/AUDIO.md)
    KEEPSAKE = "keepsake"  # the booth's countdown, then the picture and its link (realtime.show.booth)


@dataclass(frozen=True)
class Command:
    """An intent with a value (`Action.SET` with its changes, `Action.PRESET` with its index...)."""

    action: Action
    value: Any = None
    origin: str = "key"  # who asked (key, osc, midi, playlist): named in the log line


Intent = Action | Command


def action_of(intent: Intent) -> Action:
    return intent.action if isinstance(intent, Command) else intent


@dataclass(frozen=True)
class Preset:
    name: str  # the file's stem, without a leading "N-" ordering prefix
    path: str
    params: DreamParams


STRENGTH_FACTOR = 1.25  # one ↑ press multiplies the step size by this


@dataclass
class ShowState:
    """What the controls can change: the dream parameters plus the show's own switches."""

    params: DreamParams
    layers: tuple[str, ...]  # the model's dreamable layers, for ←/→
    frozen: bool = False
    hud: bool = True
    quit: bool = False
    pending: list[Intent] = field(default_factory=list)  # for the sinks: SNAPSHOT, TOGGLE_RECORD...
    presets: list[Preset] = field(default_factory=list)  # what keys 1-9, OSC and next/prev recall
    preset_index: int = -1  # the last recalled preset, for next/prev
    warnings: WarnLimit = field(default_factory=WarnLimit, repr=False)  # a repeated bad intent: 1/s


def apply_action(state: ShowState, intent: Intent) -> None:
    """Change `state` for one intent; a change that would be invalid is logged and ignored."""
    command = intent if isinstance(intent, Command) else Command(intent)
    action, value = command.action, command.value
    p = state.params
    try:
        if action is Action.QUIT:
            state.quit = True
        elif action is Action.FREEZE:
            state.frozen = (not state.frozen) if value is None else bool(value)
        elif action is Action.TOGGLE_HUD:
            state.hud = (not state.hud) if value is None else bool(value)
        elif action in (Action.PREV_LAYER, Action.NEXT_LAYER):
            state.params = p.replace(layer=_next_layer(state.layers, p.layer, action is Action.NEXT_LAYER))
        elif action is Action.STRONGER:
            state.params = p.replace(lr=min(1.0, p.lr * STRENGTH_FACTOR))
        elif action is Action.WEAKER:
            state.params = p.replace(lr=p.lr / STRENGTH_FACTOR)
        elif action is Action.MORE_STEPS:
            state.params = p.replace(steps=min(MAX_LIVE_STEPS, p.steps + 1))
        elif action is Action.FEWER_STEPS:
            state.params = p.replace(steps=max(1, p.steps - 1))
        elif action is Action.SET:
            state.params = p.replace(**value)
            if command.origin != "playlist":  # a playlist's crossfade changes them every frame
                for name, new in value.items():
                    log.info("%s: %s -> %s", command.origin, name, new)
            return
        elif action in (Action.PRESET, Action.NEXT_PRESET, Action.PREV_PRESET):
            _recall_preset(state, command)
        else:
            state.pending.append(intent)
    except DreamcamError as exc:
        state.warnings.warn(log, "ignored %s from %s: %s", action.value, command.origin, exc)
        return
    if state.params is not p and action not in (Action.PRESET, Action.NEXT_PRESET, Action.PREV_PRESET):
        log.info(
            "%s -> layer=%s lr=%.4g steps=%d",
            action.value,
            state.params.layer,
            state.params.lr,
            state.params.steps,
        )


def find_preset(presets: list[Preset], key: int | str) -> int:
    """The list index of preset `key` (1-based number or name); a one-line error if there is none."""
    if isinstance(key, int) and not isinstance(key, bool):
        if 1 <= key <= len(presets):
            return key - 1
        raise DreamcamError(f"there is no preset {key}: the preset folder has {len(presets)}")
    names = [preset.name for preset in presets]
    if key in names:
        return names.index(key)
    raise DreamcamError(f"there is no preset '{key}'; choose one of: {', '.join(names) or '(none)'}")


def _recall_preset(state: ShowState, command: Command) -> None:
    if not state.presets:
        raise DreamcamError("no presets to recall: the preset folder is empty")
    if command.action is Action.PRESET:
        index = find_preset(state.presets, command.value)
    else:
        forward = command.action is Action.NEXT_PRESET
        if state.preset_index < 0:  # nothing recalled yet: next is the first, previous the last
            index = 0 if forward else len(state.presets) - 1
        else:
            index = (state.preset_index + (1 if forward else -1)) % len(state.presets)
    preset = state.presets[index]
    state.params, state.preset_index = preset.params, index
    log.info("%s: preset %d '%s' (%s)", command.origin, index + 1, preset.name, preset.path)


def _next_layer(layers: tuple[str, ...], current: str | None, forward: bool) -> str:
    """Step through the dreamable layers; a composite objective steps from its first layer."""
    dreamable = [name for name in layers if name != "logits"]
    head = (current or "").split("+")[0].split("*")[-1].split(":")[0]
    index = dreamable.index(head) if head in dreamable else 0
    return dreamable[(index + (1 if forward else -1)) % len(dreamable)]

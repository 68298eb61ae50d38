"""MIDI control (mido + python-rtmidi, the optional `vj` extra): CC messages -> intents.

`MidiMapper` is the pure part (a mapping of CC numbers to parameters or buttons, and the learn
mode); `MidiInput` opens a port and queues messages from mido's thread for the loop to translate
between frames. Mapping file format: docs/MIDI.md.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
from dataclasses import dataclass

from realtime.control.plane import Action, Command, Intent, action_of
from realtime.errors import ConfigError, DreamcamError
from realtime.io.cstderr import quiet_c_stderr
from realtime.io.sinks import unique_path
from realtime.params import LIVE_RANGES, plain_digits
from realtime.show.presets import read_toml

log = logging.getLogger(__name__)

# A knob sweeps a useful live range, not the whole valid range (100 steps per frame is no show).
KNOB_RANGES: dict[str, tuple[float, float]] = {
    "lr": (0.0, 0.15),
    "steps": (1, 8),
    "octaves": (1, 3),
    "octave_scale": (1.2, 2.0),
    "jitter": (0, 32),
    "tv_weight": (0.0, 2.0),
    "persistence": (0.0, 1.0),
}
ALIASES = {"strength": "lr"}
BUTTONS = {
    "freeze": Action.FREEZE,
    "snapshot": Action.SNAPSHOT,
    "record": Action.TOGGLE_RECORD,
    "next": Action.NEXT_PRESET,
    "prev": Action.PREV_PRESET,
    "save_preset": Action.SAVE_PRESET,
    "hud": Action.TOGGLE_HUD,
    "keepsake": Action.KEEPSAKE,
}
# learn mode: the key pressed after moving a control says what the control will drive
LEARN_KEYS: dict[Action, str] = {
    Action.STRONGER: "lr",
    Action.WEAKER: "lr",
    Action.MORE_STEPS: "steps",
    Action.FEWER_STEPS: "steps",
    Action.NEXT_LAYER: "layer",
    Action.PREV_LAYER: "layer",
    **{action: name for name, action in BUTTONS.items()},
}
PRESS = 64  # a button is pressed when its value crosses this from below (MIDI's on/off convention)
INSTALL_HINT = "pip install 'dreamcam[vj]' (mido and python-rtmidi)"


@dataclass(frozen=True)
class Mapping:
    target: str  # a DreamParams field, "layer", a button name, or "preset:N"
    low: float = 0.0
    high: float = 1.0


def _check_target(target: object, where: str) -> str:
    target = ALIASES.get(target, target) if isinstance(target, str) else target
    ok = isinstance(target, str) and (
        target in KNOB_RANGES
        or target == "layer"
        or target in BUTTONS
        or (target.startswith("preset:") and plain_digits(target[7:]))
    )
    if not ok:
        valid = [*KNOB_RANGES, "strength", "layer", *BUTTONS, "preset:N"]
        raise ConfigError(f"{where}: unknown target {target!r}; use one of: {', '.join(valid)}")
    return target


def _finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def make_mapping(target: str, low: float | None = None, high: float | None = None) -> Mapping:
    target = _check_target(target, "MIDI mapping")
    default_low, default_high = KNOB_RANGES.get(target, (0.0, 1.0))
    return Mapping(target, default_low if low is None else low, default_high if high is None else high)


def load_mapping(path: str) -> dict[int, Mapping]:
    """A mapping file: a [cc] table of CC number -> target name or {target, min, max}."""
    data = read_toml(path, "MIDI mapping")
    unknown = [key for key in data if key != "cc"]
    if unknown or not isinstance(data.get("cc"), dict):
        raise ConfigError(f"MIDI mapping '{path}': expected only a [cc] table (see docs/MIDI.md)")
    mappings = {}
    for key, value in data["cc"].items():
        where = f"MIDI mapping '{path}' cc {key}"
        if not plain_digits(key) or not 0 <= int(key) <= 127:
            raise ConfigError(f"{where}: a CC number is 0-127; fix the key '{key}'")
        if isinstance(value, dict):
            extra = [k for k in value if k not in ("target", "min", "max")]
            if extra or "target" not in value:
                raise ConfigError(f'{where}: write {{target = "lr", min = 0.0, max = 0.1}}')
            bounds = [value.get("min"), value.get("max")]
            if any(b is not None and not _finite_number(b) for b in bounds):
                raise ConfigError(f"{where}: min and max must be numbers (finite ones), got {bounds}")
            target = _check_target(value["target"], where)
            mappings[int(key)] = make_mapping(target, *bounds)
        else:
            mappings[int(key)] = make_mapping(_check_target(value, where))
    return mappings


def dumps_mapping(mappings: dict[int, Mapping]) -> str:
    lines = ["[cc]"]
    for cc, m in sorted(mappings.items()):
        if m.target in KNOB_RANGES:
            lines.append(f'{cc} = {{ target = "{m.target}", min = {m.low!r}, max = {m.high!r} }}')
        else:
            lines.append(f'{cc} = "{m.target}"')
    return "\n".join(lines) + "\n"


class MidiMapper:
    """CC messages -> intents, and the learn mode (L, move a control, press a parameter's key)."""

    def __init__(self, mappings: dict[int, Mapping] | None = None, layers: tuple[str, ...] = ()):
        self.mappings = dict(mappings or {})
        self.layers = tuple(name for name in layers if name != "logits")
        self.learned: dict[int, Mapping] = {}
        self.learning = False
        self.learn_cc: int | None = None  # the control moved in learn mode, waiting for its key
        self._last: dict[int, int] = {}  # last value per CC, to see a button's press edge

    def start_learn(self) -> None:
        """L: toggles learn mode on (or off again)."""
        self.learning, self.learn_cc = not self.learning, None
        log.info("MIDI learn %s", "on: move a control" if self.learning else "cancelled")

    def translate(self, message) -> Intent | None:
        """A mido message -> an intent (None for messages that do nothing)."""
        if message.type != "control_change":
            return None
        cc, value = message.control, message.value
        previous, self._last[cc] = self._last.get(cc, 0), value
        if self.learning:
            if self.learn_cc != cc:
                self.learn_cc = cc
                log.info("MIDI learn: CC %d; now press the key of the parameter", cc)
            return None
        mapping = self.mappings.get(cc)
        if mapping is None:
            return None
        return self._intent(mapping, value, previous)

    def _intent(self, m: Mapping, value: int, previous: int) -> Intent | None:
        u = value / 127.0
        if m.target in KNOB_RANGES:
            low, high, kind = LIVE_RANGES[m.target]
            x = min(high, max(low, m.low + u * (m.high - m.low)))
            return Command(Action.SET, {m.target: int(round(x)) if kind is int else x}, "midi")
        if m.target == "layer":
            if not self.layers:
                return None
            index = min(len(self.layers) - 1, int(u * len(self.layers)))
            return Command(Action.SET, {"layer": self.layers[index]}, "midi")
        if not (previous < PRESS <= value):  # buttons act on the press only
            return None
        if m.target.startswith("preset:"):
            return Command(Action.PRESET, int(m.target[7:]), "midi")
        return Command(BUTTONS[m.target], None, "midi")

    def intercept(self, intents: list[Intent]) -> list[Intent]:
        """In learn mode with a control moved, the first parameter key binds it and is consumed."""
        if not self.learning or self.learn_cc is None:
            return intents
        rest = []
        for intent in intents:
            target = self._learn_target(intent)
            if target is not None and self.learning:
                self._bind(self.learn_cc, target)
                continue
            rest.append(intent)
        return rest

    def _learn_target(self, intent: Intent) -> str | None:
        action = action_of(intent)
        if action is Action.PRESET and isinstance(intent, Command):
            return f"preset:{intent.value}"
        return LEARN_KEYS.get(action)

    def _bind(self, cc: int, target: str) -> None:
        mapping = make_mapping(target)
        self.mappings[cc] = self.learned[cc] = mapping
        self.learning, self.learn_cc = False, None
        log.info("MIDI learn: CC %d -> %s", cc, target)

    def hud_line(self) -> str | None:
        if not self.learning:
            return None
        if self.learn_cc is None:
            return "MIDI learn: move a control (L cancels)"
        return f"MIDI learn: CC {self.learn_cc} -> press the key of a parameter"

    def save_learned(self, folder: str = ".") -> str | None:
        """Learned mappings as a new mapping file (never overwrites); None if nothing was learned."""
        if not self.learned:
            return None
        path = unique_path(folder, "midi-map", ".toml")
        with open(path, "x", encoding="utf-8") as f:
            f.write(dumps_mapping(self.mappings))
        return path


def open_port(name: str):
    """A mido input port by exact name, or by a unique part of its name; one clear line otherwise."""
    try:
        import mido
        import rtmidi  # noqa: F401  (mido's default backend; checked here for a clear message)
    except ImportError:
        raise DreamcamError(f"--midi: MIDI input needs the vj extra: {INSTALL_HINT}") from None
    try:
        with quiet_c_stderr():
            names = mido.get_input_names()
    except Exception as exc:  # rtmidi raises its own SystemError subclasses when ALSA/CoreMIDI is absent
        raise DreamcamError(
            f"no MIDI system on this machine ({str(exc).splitlines()[0]}); on Linux load ALSA's sequencer "
            "(sudo modprobe snd-seq) and connect a controller"
        ) from None
    matches = [n for n in names if n == name] or [n for n in names if name.lower() in n.lower()]
    if len(matches) != 1:
        listing = ", ".join(repr(n) for n in names) or "none (is the controller plugged in?)"
        problem = "matches several" if matches else "is not there"
        raise DreamcamError(f"MIDI port '{name}' {problem}; ports: {listing}")
    with quiet_c_stderr():
        return mido.open_input(matches[0])


class MidiInput:
    """A MIDI port whose messages mido's thread queues; `drain()` turns them into intents."""

    def __init__(self, port_name: str, mapper: MidiMapper):
        self.mapper = mapper
        self._messages: queue.Queue = queue.Queue(maxsize=1024)
        self._port = open_port(port_name)
        self._port.callback = self._receive
        log.info("listening for MIDI on '%s'", self._port.name)

    def _receive(self, message) -> None:
        with contextlib.suppress(queue.Full):  # a knob flood: keep the show going, drop the excess
            self._messages.put_nowait(message)

    def drain(self) -> list[Intent]:
        intents = []
        for _ in range(self._messages.maxsize):  # bounded: a flood arriving while we drain waits a frame
            try:
                message = self._messages.get_nowait()
            except queue.Empty:
                return intents
            intent = self.mapper.translate(message)
            if intent is not None:
                intents.append(intent)
        return intents

    def close(self) -> None:
        self._port.close()

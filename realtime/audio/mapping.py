"""A look's `[audio]` table: which sound features drive which `DreamParams` fields, and how.

    [audio]
    lr = { from = "level", range = [0.02, 0.05], curve = "exponential" }   # loudness -> step size
    pulse = { field = "lr", amount = 1.5, decay = 0.25, on = "beat" }      # x2.5 on each beat, eases back
    every = { beats = 16, action = "next_layer" }                          # or "next_preset"

`AudioMapping.parse` checks a table and names the bad key in one line; `AudioReactor` applies a
mapping to the show's parameters once per frame, identically live and in an offline render. Every
value it produces is clamped to the field's range and validated by `DreamParams` like any control's.
Schema and OSC addresses: docs/AUDIO.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from realtime.audio.analysis import AudioFeatures
from realtime.control.plane import Action, Intent
from realtime.errors import ConfigError
from realtime.params import RANGES, SHAPE_QUANTA, DreamParams, clamp

FEATURES = ("level", "tempo")  # level: loudness 0-1; tempo: 60-180 BPM as 0-1
CURVES = ("linear", "exponential")
TRIGGERS = ("beat", "onset")
EVERY_ACTIONS = {"next_layer": Action.NEXT_LAYER, "next_preset": Action.NEXT_PRESET}
TEMPO_RANGE = (60.0, 180.0)
MAX_EVERY = 1024


@dataclass(frozen=True)
class FieldMap:
    """`field` follows `feature` (0-1) from range[0] (silence) to range[1] (full), along `curve`."""

    field: str
    feature: str = "level"
    low: float = 0.0
    high: float = 1.0
    curve: str = "linear"

    def value(self, x: float) -> float:
        x = min(1.0, max(0.0, x))
        if self.curve == "exponential":  # equal ratios for equal steps of loudness, as the ear hears
            return self.low * (self.high / self.low) ** x
        return self.low + (self.high - self.low) * x


@dataclass(frozen=True)
class Pulse:
    """On each beat (or onset) `field` is multiplied by 1 + amount, easing back with a half-life of
    `decay` seconds."""

    field: str = "lr"
    amount: float = 1.0
    decay: float = 0.25
    on: str = "beat"

    def factor(self, since_s: float) -> float:
        if not math.isfinite(since_s):  # no beat yet
            return 1.0
        return 1.0 + self.amount * 0.5 ** (max(0.0, since_s) / self.decay)


@dataclass(frozen=True)
class Every:
    beats: int
    action: str  # a key of EVERY_ACTIONS


@dataclass(frozen=True)
class AudioMapping:
    maps: tuple[FieldMap, ...] = ()
    pulse: Pulse | None = None
    every: Every | None = None

    @classmethod
    def parse(cls, table: object, origin: str = "[audio]") -> AudioMapping:
        """A checked mapping from an `[audio]` table; a mistake is one ConfigError naming the key."""
        if not isinstance(table, dict):
            raise ConfigError(f"{origin}: [audio] must be a table of mappings; fix 'audio'")
        mapping = cls()
        for key, value in table.items():
            mapping = mapping.with_entry(key, value, origin)
        return mapping

    def with_entry(self, key: str, value: object, origin: str = "[audio]") -> AudioMapping:
        """This mapping with one key of the table set (OSC changes it this way, live). `false`
        removes the key's mapping."""
        where = f"{origin}: audio.{key}"
        if value is False:
            if key == "pulse":
                return replace(self, pulse=None)
            if key == "every":
                return replace(self, every=None)
            if key in RANGES:
                return replace(self, maps=tuple(m for m in self.maps if m.field != key))
        if key == "pulse":
            return replace(self, pulse=_parse_pulse(value, where))
        if key == "every":
            return replace(self, every=_parse_every(value, where))
        if key in RANGES:
            new = _parse_map(key, value, where)
            return replace(self, maps=tuple(m for m in self.maps if m.field != key) + (new,))
        raise ConfigError(
            f"{where} is not a setting; use a parameter ({', '.join(RANGES)}), 'pulse' or 'every'"
        )

    def to_table(self) -> dict:
        """The `[audio]` table that `parse` reads back as this mapping (for saving a look)."""
        table: dict = {}
        for m in self.maps:
            table[m.field] = {"from": m.feature, "range": [m.low, m.high], "curve": m.curve}
        if self.pulse is not None:
            p = self.pulse
            table["pulse"] = {"field": p.field, "amount": p.amount, "decay": p.decay, "on": p.on}
        if self.every is not None:
            table["every"] = {"beats": self.every.beats, "action": self.every.action}
        return table

    def describe(self) -> str:
        parts = [f"{m.field}<-{m.feature}" for m in self.maps]
        if self.pulse is not None:
            parts.append(f"{self.pulse.field} pulse on {self.pulse.on}")
        if self.every is not None:
            parts.append(f"{self.every.action} every {self.every.beats} beats")
        return ", ".join(parts) or "nothing mapped"


# The mapping a look without an [audio] table gets: the step size swells with the loudness and
# jumps x4 on the beat. The persistence comes down from the look's ~0.9: a warm-started dream that
# carries 90 % of itself sits at the contrast cap the anchor allows, where a beat cannot deepen it
# (measured: beat frames 1 % deeper than the others); carrying 50-75 % it fades between beats and
# swells on each (39 % deeper at 0.5, 18 % at 0.7; docs/BENCHMARKS.md).
DEFAULT_MAPPING = AudioMapping(
    maps=(FieldMap("lr", "level", 0.02, 0.05, "exponential"), FieldMap("persistence", "level", 0.5, 0.75)),
    pulse=Pulse("lr", 3.0, 0.15, "beat"),
)


def _table(value: object, where: str, keys: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(
            f"{where} must be a table such as {{ {keys[0]} = ... }}; fix '{where.split(': ')[-1]}'"
        )
    unknown = [k for k in value if k not in keys]
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]} is not a setting; use {', '.join(keys)}")
    return value


def _number(value: object, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{where} must be between {low} and {high}, got {value}")
    return float(value)


def _choice(value: object, where: str, choices) -> str:
    if value not in choices:
        raise ConfigError(f"{where} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _parse_map(name: str, value: object, where: str) -> FieldMap:
    t = _table(value, where, ("from", "range", "curve"))
    feature = _choice(t.get("from", "level"), f"{where}.from", FEATURES)
    curve = _choice(t.get("curve", "linear"), f"{where}.curve", CURVES)
    span = t.get("range")
    if not isinstance(span, list) or len(span) != 2:
        raise ConfigError(f"{where}.range must be two numbers [quiet, loud], got {span!r}")
    low, high, _ = RANGES[name]
    a, b = (_number(v, f"{where}.range", low, high) for v in span)
    if curve == "exponential" and (a <= 0 or b <= 0):
        raise ConfigError(f"{where}.range must be above 0 for an exponential curve, got {span!r}")
    return FieldMap(name, feature, a, b, curve)


def _parse_pulse(value: object, where: str) -> Pulse:
    t = _table(value, where, ("field", "amount", "decay", "on"))
    name = _choice(t.get("field", "lr"), f"{where}.field", tuple(RANGES))
    amount = _number(t.get("amount", 1.0), f"{where}.amount", 0.0, 10.0)
    decay = _number(t.get("decay", 0.25), f"{where}.decay", 0.01, 10.0)
    on = _choice(t.get("on", "beat"), f"{where}.on", TRIGGERS)
    return Pulse(name, amount, decay, on)


def _parse_every(value: object, where: str) -> Every:
    t = _table(value, where, ("beats", "action"))
    beats = t.get("beats")
    if isinstance(beats, bool) or not isinstance(beats, int) or not 1 <= beats <= MAX_EVERY:
        raise ConfigError(f"{where}.beats must be a whole number 1-{MAX_EVERY}, got {beats!r}")
    return Every(beats, _choice(t.get("action", "next_layer"), f"{where}.action", tuple(EVERY_ACTIONS)))


@dataclass
class AudioReactor:
    """Turns the newest features into parameter changes, once per frame (`update`, then `modulate`).

    Beat counting works on the analyser's counters, so a beat is never lost between two frames,
    and the pulse's decay runs on the sound's own clock, so an offline render is deterministic."""

    mapping: AudioMapping = DEFAULT_MAPPING
    features: AudioFeatures | None = None
    beat: bool = False  # a beat since the previous frame (the HUD's flash)
    _beats_seen: int | None = None
    _every_count: int = 0
    modulated: dict[str, float] = field(default_factory=dict)  # field -> value sent, for the HUD
    _held: dict[str, float] = field(default_factory=dict)  # shape fields' snapped values (`_snap`)

    def update(self, features: AudioFeatures | None) -> list[Intent]:
        """Take the newest features; return the intents "every N beats" asks for (next layer...)."""
        self.features = features
        if features is None:
            self.beat = False
            return []
        new_beats = 0 if self._beats_seen is None else max(0, features.beats - self._beats_seen)
        self._beats_seen = features.beats
        self.beat = new_beats > 0
        every = self.mapping.every
        if every is None or not new_beats:
            return []
        self._every_count += new_beats
        if self._every_count < every.beats:
            return []
        self._every_count %= every.beats
        return [EVERY_ACTIONS[every.action]]

    def set_mapping(self, mapping: AudioMapping) -> None:
        if mapping.every != self.mapping.every:
            self._every_count = 0
        self.mapping = mapping

    def modulate(self, params: DreamParams) -> DreamParams:
        """`params` with the mapped fields driven by the sound (no features yet: unchanged)."""
        f = self.features
        if f is None:
            self.modulated = {}
            return params
        values: dict[str, float] = {}
        for m in self.mapping.maps:
            values[m.field] = m.value(_feature(f, m.feature))
        pulse = self.mapping.pulse
        if pulse is not None:
            last = f.last_beat_t if pulse.on == "beat" else f.last_onset_t
            base = values.get(pulse.field, getattr(params, pulse.field))
            values[pulse.field] = base * pulse.factor(f.t - last)
        changes = {}
        for name, value in values.items():
            if not math.isfinite(value):
                continue  # cannot happen with a parsed mapping; never hand the dream a NaN anyway
            changes[name] = self._snap(name, value) if name in SHAPE_QUANTA else clamp(name, value)
        self.modulated = changes
        return params.replace(**changes) if changes else params

    def _snap(self, name: str, value: float) -> float:
        """A shape field (steps, octaves, octave_scale) on its grid, with hysteresis: it moves only
        when the sound takes it 3/4 of a grid step past the held value, so a level hovering at a
        boundary does not switch shapes (each a graph capture on a GPU) every frame."""
        low, high, _ = RANGES[name]
        value, quantum = min(high, max(low, value)), SHAPE_QUANTA[name]
        held = self._held.get(name)
        if held is None or abs(value - held) >= 0.75 * quantum:
            held = clamp(name, round(round(value / quantum) * quantum, 6))
            self._held[name] = held
        return held


def _feature(f: AudioFeatures, name: str) -> float:
    if name == "tempo":
        low, high = TEMPO_RANGE
        return (f.bpm - low) / (high - low) if f.bpm > 0 else 0.0
    return f.level


def osc_entry(key: str, args: list) -> tuple[str, object]:
    """An OSC message under /dreamcam/audio/KEY -> (KEY, the table value), checked like the TOML:
    `lr level 0.02 0.05 exponential`, `pulse lr 1.5 0.25 beat`, `every 16 next_layer`, `KEY 0` (off)."""
    if len(args) == 1 and not isinstance(args[0], str) and not args[0]:
        value: object = False
    elif key == "pulse":
        value = dict(zip(("field", "amount", "decay", "on"), args, strict=False))
        if len(args) > 4:
            raise ConfigError("/dreamcam/audio/pulse takes field, amount, decay[, beat|onset]")
    elif key == "every":
        value = dict(zip(("beats", "action"), args, strict=False))
        if len(args) > 2:
            raise ConfigError("/dreamcam/audio/every takes beats[, next_layer|next_preset]")
    else:
        if not 3 <= len(args) <= 4:
            raise ConfigError(f"/dreamcam/audio/{key} takes feature, quiet, loud[, curve]")
        value = {
            "from": args[0],
            "range": [args[1], args[2]],
            **({"curve": args[3]} if len(args) > 3 else {}),
        }
    AudioMapping().with_entry(key, value, "osc")  # checked on the server thread: a bad one is Rejected
    return key, value

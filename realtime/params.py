"""`DreamParams`: every knob of a dream in one validated dataclass.

Controls (keys, OSC, MIDI, presets, playlists) only ever produce a new DreamParams through
`replace()`, which validates, so the dream loop never sees a bad value.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from realtime.errors import ConfigError

WARM_START_MODES = ("off", "residual", "flow")

# The valid range of every numeric field: validation, OSC/MIDI clamping and preset checks read it here.
RANGES: dict[str, tuple[float, float, type]] = {
    "steps": (1, 100, int),
    "octaves": (1, 8, int),
    "octave_scale": (1.05, 3.0, float),
    "lr": (0.0, 1.0, float),
    "jitter": (0, 64, int),
    "tv_weight": (0.0, 100.0, float),
    "persistence": (0.0, 1.0, float),
    "stillness_boost": (0.0, 4.0, float),
    "depth": (0.01, 1.0, float),
}

# What a live controller (keys, OSC, MIDI, the web remote, sound) may set: the same ranges, but a
# show's steps stop at MAX_LIVE_STEPS (100 steps a frame from one OSC message took the display from
# 30 to 2.4 fps). Presets, playlists and the command line keep the whole range: a look chosen ahead.
MAX_LIVE_STEPS = 8
LIVE_RANGES: dict[str, tuple[float, float, type]] = {**RANGES, "steps": (1, MAX_LIVE_STEPS, int)}

# The fields that set the backend's shapes (each new value may capture a CUDA graph or build an
# export): run-time modulation snaps them (realtime.show.playlist, realtime.audio.mapping) rather
# than sweeping them through every value, and SHAPE_QUANTA is the grid they snap to.
SHAPE_FIELDS = ("steps", "octaves", "octave_scale")
SHAPE_QUANTA = {"steps": 1.0, "octaves": 1.0, "octave_scale": 0.1}


@dataclass(frozen=True)
class DreamParams:
    model: str = "efficientnet_lite0"
    layer: str | None = None  # objective spec ("block5", "block5:12", "class:tabby"...); None: default
    steps: int = 1  # gradient steps per frame: the warm-started dream accumulates across frames
    octaves: int = 1
    octave_scale: float = 1.4
    # step size, in [0, 1] pixel units per normalised gradient step; 0.05 with depth 0.3 and
    # persistence 0.998 grows a dream nearly as deep as a classic still DeepDream (BENCHMARKS)
    lr: float = 0.05
    jitter: int = 8  # max random shift in pixels before each step (hides the conv grid)
    tv_weight: float = 0.0  # total-variation penalty, relative to the objective
    warm_start: str = "flow"  # keeps the dream on moving things; ~1/5 of the dream rate on 2 CPU cores
    # fraction of the last frame's dream carried into the next; 0.998 (was 0.995) brought a mature
    # dream under a slow pan from 0.89-0.90 to 0.93-0.98 of a classic still one of the same frames,
    # with momentum 0.8 then (BENCHMARKS, "Held to a classic dream of the same frames")
    persistence: float = 0.998
    stillness_boost: float = 0.0  # how much stillness deepens the dream (and motion clears it); 0: off
    # warm steps fade out where the dream is this deep (mean |residual|); 1: no limit. 0.5 met every
    # strength goal but turned a smiling face into a snout within a second; 0.3 keeps it a face
    depth: float = 0.3

    def __post_init__(self) -> None:
        for name, (low, high, kind) in RANGES.items():
            _check_range(name, getattr(self, name), low, high, kind)
        if self.layer is not None and not isinstance(self.layer, str):
            raise ConfigError(f"layer must be a text such as 'block5', got {self.layer!r}")
        if self.layer:
            check_layer_spec(self.layer)
        if not isinstance(self.model, str):
            raise ConfigError(f"model must be a name such as 'efficientnet_lite0', got {self.model!r}")
        if self.warm_start not in WARM_START_MODES:
            raise ConfigError(f"warm start '{self.warm_start}' is not one of: {', '.join(WARM_START_MODES)}")

    def replace(self, **changes) -> DreamParams:
        unknown = [name for name in changes if name not in FIELD_NAMES]
        if unknown:  # dataclasses.replace would raise a bare TypeError
            raise ConfigError(f"unknown parameter '{unknown[0]}'; use one of: {', '.join(FIELD_NAMES)}")
        return dataclasses.replace(self, **changes)


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(DreamParams))

MAX_LAYER_WEIGHT = 100.0  # |weight| in 'a+0.5*b': the gradient is normalised, so more only overflows


def layer_weight(text: str, spec: str) -> float:
    """The weight of one term of a layer spec ('0.5' in 'block5+0.5*block8'): finite and at most
    MAX_LAYER_WEIGHT in size ('nan*', 'inf*' and '1e39*', which overflows float32, are refused)."""
    try:
        weight = float(text)
    except ValueError:
        raise ConfigError(f"weight '{text.strip()}' in layer '{spec}' is not a number") from None
    if not math.isfinite(weight) or abs(weight) > MAX_LAYER_WEIGHT:
        raise ConfigError(
            f"weight '{text.strip()}' in layer '{spec}' must be a finite number between "
            f"-{MAX_LAYER_WEIGHT:g} and {MAX_LAYER_WEIGHT:g}"
        )
    return weight


MAX_LAYER_CHARS = 200  # a spec longer than this is a paste gone wrong (and would flood the log)
MAX_LAYER_TERMS = 8  # each term is another objective per gradient step: 400 would stall the show


def check_layer_spec(spec: str) -> None:
    """What can be checked without the model: length, number of terms, and the weights."""
    if len(spec) > MAX_LAYER_CHARS:
        raise ConfigError(f"layer '{spec[:40]}...' is {len(spec)} characters long; at most {MAX_LAYER_CHARS}")
    terms = spec.split("+")
    if len(terms) > MAX_LAYER_TERMS:
        raise ConfigError(f"layer '{spec[:40]}...' has {len(terms)} terms; combine at most {MAX_LAYER_TERMS}")
    weights = [layer_weight(term.split("*", 1)[0], spec) if "*" in term else 1.0 for term in terms]
    if not any(weights):
        raise ConfigError(f"layer '{spec}' has only zero weights: it would dream nothing; give one a weight")


def plain_digits(text: str) -> bool:
    """Whether `text` is a whole number in 0-9 digits. str.isdigit() alone also takes '²' (which
    int() refuses with a traceback) and '١٢' (which int() reads as 12): a spec must mean one thing."""
    return text.isascii() and text.isdigit()


def clamp(name: str, value: float) -> int | float:
    """`value` forced into the live range of numeric field `name` (rounded for whole-number fields):
    what OSC, MIDI, the web remote and sound may set (LIVE_RANGES)."""
    low, high, kind = LIVE_RANGES[name]
    value = min(high, max(low, value))
    return int(round(value)) if kind is int else float(value)


def _check_range(name: str, value, low, high, kind: type) -> None:
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number between {low} and {high}, got {value}")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")


def parse_size(text: str) -> tuple[int, int]:
    """'320x180' -> (320, 180); anything else is a one-line ConfigError."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        if not all(plain_digits(p.strip()) for p in parts):  # int() would read '３２０' as 320
            raise ValueError(text)
        width, height = (int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"size '{text}' is not WIDTHxHEIGHT (for example 320x180)") from None
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise ConfigError(f"size '{text}' is out of range: each side must be 16..8192 pixels")
    return width, height

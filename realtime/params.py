"""`DreamParams`: every knob of a dream in one validated dataclass.

Controls (keys now; OSC, MIDI and presets later) only ever produce a new DreamParams through
`replace()`, which validates, so the dream loop never sees a bad value.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from realtime.errors import ConfigError

WARM_START_MODES = ("off", "residual", "flow")


@dataclass(frozen=True)
class DreamParams:
    model: str = "efficientnet_lite0"
    layer: str | None = None  # objective spec ("block5", "block5:12", "class:tabby"...); None: default
    steps: int = 2  # gradient steps per frame (per octave)
    octaves: int = 1
    octave_scale: float = 1.4
    lr: float = 0.03  # step size, in [0, 1] pixel units per normalised gradient step
    jitter: int = 8  # max random shift in pixels before each step (hides the conv grid)
    tv_weight: float = 0.0  # total-variation penalty, relative to the objective
    warm_start: str = "flow"  # costs ~2-5 ms of a ~50 ms frame on a 2-core CPU: within budget
    persistence: float = 0.9  # fraction of the last frame's dream carried into the next
    stillness_boost: float = 0.5  # how much stillness deepens the dream (and motion clears it); 0: off

    def __post_init__(self) -> None:
        _check_range("steps", self.steps, 1, 100, int)
        _check_range("octaves", self.octaves, 1, 8, int)
        _check_range("octave_scale", self.octave_scale, 1.05, 3.0, float)
        _check_range("lr", self.lr, 0.0, 1.0, float)
        _check_range("jitter", self.jitter, 0, 64, int)
        _check_range("tv_weight", self.tv_weight, 0.0, 100.0, float)
        _check_range("persistence", self.persistence, 0.0, 1.0, float)
        _check_range("stillness_boost", self.stillness_boost, 0.0, 4.0, float)
        if self.warm_start not in WARM_START_MODES:
            raise ConfigError(f"warm start '{self.warm_start}' is not one of: {', '.join(WARM_START_MODES)}")

    def replace(self, **changes) -> DreamParams:
        return dataclasses.replace(self, **changes)


def _check_range(name: str, value, low, high, kind: type) -> None:
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")


def parse_size(text: str) -> tuple[int, int]:
    """'320x180' -> (320, 180); anything else is a one-line ConfigError."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"size '{text}' is not WIDTHxHEIGHT (for example 320x180)") from None
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise ConfigError(f"size '{text}' is out of range: each side must be 16..8192 pixels")
    return width, height

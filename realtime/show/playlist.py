"""Playlists: presets with durations, cycled forever with smooth crossfades.

Pure logic driven by an injectable clock (tests use a fake one). During a crossfade the numeric
parameters move from the old look to the new one; a layer (or model) change cannot be
interpolated, so the new layer is dreamed at once and `ResidualFade` blends the old look's last
residual out while the new layer's residual grows in. Because residuals are added to the camera
frame, this is exactly a linear crossfade of the two dreamed pictures. File format: docs/PRESETS.md.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from realtime.control.plane import Preset, find_preset
from realtime.errors import ConfigError, DreamcamError
from realtime.params import RANGES, SHAPE_FIELDS, DreamParams
from realtime.show.presets import load_preset, preset_name, read_toml

log = logging.getLogger(__name__)

DEFAULT_FADE_S = 5.0
MIN_DURATION_S = 0.1  # an item shorter than a few frames is never seen, and 1e-300 spun forever
MAX_DURATION_S = 7 * 24 * 3600.0  # longer is a typo (and 1e308 s printed 300 digits on the HUD)
# switched at the start of a fade, not interpolated: names, and the fields that set the dream's
# shapes (a fade through every step count would capture a graph per frame)
_DISCRETE = ("model", "layer", "warm_start", *SHAPE_FIELDS)


@dataclass(frozen=True)
class Item:
    name: str
    params: DreamParams
    duration: float  # seconds on screen, its fade-in included
    fade: float  # seconds of crossfade from the previous item


def load_playlist(path: str, presets: list[Preset]) -> list[Item]:
    """Items of a playlist file; `preset` is a name from the preset folder or a .toml path
    (relative to the playlist file)."""
    data = read_toml(path, "playlist")
    origin = f"playlist '{path}'"
    unknown = [key for key in data if key not in ("fade", "item")]
    if unknown:
        raise ConfigError(f"{origin}: unknown key '{unknown[0]}'; a playlist has 'fade' and [[item]] tables")
    default_fade = _seconds(data.get("fade", DEFAULT_FADE_S), "fade", origin, allow_zero=True)
    entries = data.get("item")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{origin}: no [[item]] tables; add at least one with preset and duration")
    items = []
    for number, entry in enumerate(entries, 1):
        where = f"{origin} item {number}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: write items as [[item]] tables")
        extra = [key for key in entry if key not in ("preset", "duration", "fade")]
        if extra:
            raise ConfigError(f"{where}: unknown key '{extra[0]}'; an item has preset, duration and fade")
        if "preset" not in entry or "duration" not in entry:
            raise ConfigError(f"{where}: needs both 'preset' (a name or file) and 'duration' (seconds)")
        name, params = _resolve(entry["preset"], path, presets, where)
        duration = _seconds(entry["duration"], "duration", where)
        if not MIN_DURATION_S <= duration <= MAX_DURATION_S:
            raise ConfigError(
                f"{where}: 'duration' must be {MIN_DURATION_S:g} s (a few frames) to {MAX_DURATION_S:g} s "
                f"(a week), got {duration:g}"
            )
        fade = _seconds(entry.get("fade", default_fade), "fade", where, allow_zero=True)
        if fade > duration:
            raise ConfigError(f"{where}: fade {fade} s is longer than duration {duration} s; shorten 'fade'")
        items.append(Item(name, params, float(duration), float(fade)))
    return items


def _resolve(ref: object, playlist_path: str, presets: list[Preset], where: str) -> tuple[str, DreamParams]:
    if not isinstance(ref, str) or not ref:
        raise ConfigError(f"{where}: 'preset' must be a preset name or a .toml file, got {ref!r}")
    if ref.endswith(".toml"):
        path = os.path.join(os.path.dirname(os.path.abspath(playlist_path)), ref)
        return preset_name(path), load_preset(path)
    try:
        preset = presets[find_preset(presets, ref)]
    except DreamcamError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return preset.name, preset.params


def _seconds(value: object, key: str, where: str, allow_zero: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{where}: '{key}' must be a positive number of seconds, got {value!r}")
    return float(value)


def blend_params(a: DreamParams, b: DreamParams, u: float) -> DreamParams:
    """The look a fraction u (0..1) of the way from a to b: numbers interpolate; names and the
    shape fields (steps, octaves, octave_scale) switch at once."""
    if u >= 1.0:
        return b
    changes = {}
    for name, (_, _, kind) in RANGES.items():
        value = (1.0 - u) * getattr(a, name) + u * getattr(b, name)
        changes[name] = int(round(value)) if kind is int else value
    changes.update({name: getattr(b, name) for name in _DISCRETE})
    return dataclasses.replace(a, **changes)


def ease(u: float) -> float:
    """Smoothstep: a fade starts and ends gently instead of with a visible kink."""
    u = min(1.0, max(0.0, u))
    return u * u * (3.0 - 2.0 * u)


class ResidualFade:
    """Blends a frozen old residual out while the live (new layer's) one grows in."""

    def __init__(self) -> None:
        self.old: np.ndarray | None = None
        self.u = 1.0  # 1: no fade in progress
        self._frozen = True  # whether `old` is already a copy of its own

    def start(self, old) -> None:
        """Begin the fade from `old` (a numpy array or a torch tensor residual). No copy here:
        this runs from the event handling, outside the composer's turn, where a GPU copy could
        land during a graph capture; `mix` (inside the turn) freezes it on first use."""
        self.old, self.u, self._frozen = old, 0.0, old is None

    def mix(self, residual: np.ndarray) -> np.ndarray:
        if self.old is None or self.u >= 1.0 or self.old.shape != residual.shape:
            self.old = None
            return residual
        if not self._frozen:
            self.old = self.old.clone() if hasattr(self.old, "clone") else self.old.copy()
            self._frozen = True
        return (1.0 - self.u) * self.old + self.u * residual


class PlaylistPlayer:
    """Which look is on screen at the clock's time; `update()` once per frame."""

    def __init__(self, items: list[Item], clock: Callable[[], float] = time.monotonic):
        if not items:
            raise ConfigError("a playlist needs at least one item")
        self.items, self.clock = items, clock
        self.index = 0
        self.started = clock()
        self.fade = ResidualFade()
        self.last_residual: np.ndarray | None = None  # the residual last shown, for the next layer fade
        self._previous = items[0].params
        self._fading = False

    @property
    def current(self) -> Item:
        return self.items[self.index]

    def update(self) -> DreamParams:
        """The parameters for this frame (advancing to the next item when its time is up)."""
        now = self.clock()
        lap = sum(item.duration for item in self.items)
        if now - self.started >= lap:  # a long stall: skip whole laps at once, keeping the rhythm
            self.started += (now - self.started) // lap * lap
        for _ in range(len(self.items)):  # bounded: at most one lap of the list per frame
            if now - self.started < self.current.duration:
                break
            self._advance(self.started + self.current.duration)
        else:
            if now - self.started >= self.current.duration:  # the clock jumped (a stall, a suspend)
                self.started = now
        item = self.current
        u = 1.0 if item.fade <= 0 else ease((now - self.started) / item.fade)
        self.fade.u = u
        self._fading = u < 1.0
        return blend_params(self._previous, item.params, u)

    def _advance(self, at: float) -> None:
        # what is on screen at the end of this item becomes the start of the next one's fade
        self._previous = self.current.params
        self.index = (self.index + 1) % len(self.items)
        self.started = at
        new = self.current
        log.info(
            "playlist: item %d '%s' for %g s (fade %g s)", self.index + 1, new.name, new.duration, new.fade
        )
        if _look_changes(self._previous, new.params) and new.fade > 0:
            self.fade.start(self.last_residual)

    @property
    def fading(self) -> bool:
        return self._fading

    def residual(self, residual: np.ndarray) -> np.ndarray:
        """The residual to show this frame (old layer fading out, new growing in)."""
        shown = self.fade.mix(residual)
        self.last_residual = shown
        return shown

    def hud_line(self) -> str:
        left = self.current.duration - (self.clock() - self.started)
        fade = "  fading" if self._fading else ""
        return f"playlist {self.index + 1}/{len(self.items)} {self.current.name}  {left:.0f} s left{fade}"


def _look_changes(a: DreamParams, b: DreamParams) -> bool:
    return a.model != b.model or a.layer != b.layer

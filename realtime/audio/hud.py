"""The HUD's audio line: text that also carries the level and the beat flash for the window to draw."""

from __future__ import annotations

import math

from realtime.audio.analysis import AudioFeatures
from realtime.io.hud import MeterLine

FLASH_HALF_LIFE_S = 0.08  # the beat lamp fades within a few frames: visible at 30 fps, gone by the next beat


def meter_line(features: AudioFeatures | None, status: str = "") -> MeterLine:
    if features is None:
        return MeterLine(status or "audio: waiting for sound")
    since = features.t - features.last_beat_t
    flash = 0.5 ** (max(0.0, since) / FLASH_HALF_LIFE_S) if math.isfinite(since) else 0.0
    db = 20.0 * math.log10(features.rms) if features.rms > 1e-6 else -120.0
    tempo = f"{features.bpm:5.1f} BPM" if features.bpm > 0 else "--- BPM"
    return MeterLine(f"audio {tempo} {db:4.0f} dB", features.level, flash)

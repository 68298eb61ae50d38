"""HUD line conventions shared by whoever writes a line and the window that draws it.

A line made with `alert()` is drawn red: something the operator must act on (a recording that
stopped, a control that is not there), as opposed to the white status lines. A `MeterLine` also
carries a level and a beat flash that the window draws as a bar and a lamp (audio's HUD line).
"""

from __future__ import annotations

ALERT_MARK = "! "


def alert(text: str) -> str:
    return ALERT_MARK + text


def is_alert(line: str) -> bool:
    return line.startswith(ALERT_MARK)


class MeterLine(str):
    """A HUD line ("audio 120 BPM -12 dB") that the window draws with a level bar and a beat lamp.
    It is a plain string to everything else (logs, tests, a window that knows no meters)."""

    level: float  # 0-1
    flash: float  # 0-1: 1 on a beat, fading

    def __new__(cls, text: str, level: float = 0.0, flash: float = 0.0) -> MeterLine:
        line = super().__new__(cls, text)
        line.level = min(1.0, max(0.0, level))
        line.flash = min(1.0, max(0.0, flash))
        return line

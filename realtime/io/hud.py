"""HUD line conventions shared by whoever writes a line and the window that draws it.

A line made with `alert()` is drawn red: something the operator must act on (a recording that
stopped, a control that is not there), as opposed to the white status lines.
"""

from __future__ import annotations

ALERT_MARK = "! "


def alert(text: str) -> str:
    return ALERT_MARK + text


def is_alert(line: str) -> bool:
    return line.startswith(ALERT_MARK)

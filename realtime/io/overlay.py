"""Lines for the visitor, drawn over the picture whether the HUD is shown or not (kiosk hides it).

Like `QrLine`, each is a plain string to logs and tests, and carries what the window needs to draw
it: a keepsake's countdown numeral, its card (QR code, short address, a caption) and a banner (a
keepsake the disk refused). The window draws them; `realtime.show.booth` decides when.
"""

from __future__ import annotations


class Overlay(str):
    """A line the window draws over the picture instead of into the HUD's text box."""


class Countdown(Overlay):
    """A big numeral (3, 2, 1), at the left: the visitor poses in the middle."""

    def __new__(cls, number: int) -> Countdown:
        line = super().__new__(cls, f"keepsake in {number}")
        line.number = number
        return line


class KeepsakeCard(Overlay):
    """The link to a keepsake: its QR code (`modules`, rows of 0/1, dark = 1), the address to type
    (`short`, without http://), a title and a caption, on a white card at the right of the screen."""

    modules: tuple[tuple[int, ...], ...]

    def __new__(
        cls, url: str, modules: tuple[tuple[int, ...], ...], title: str, caption: str
    ) -> KeepsakeCard:
        line = super().__new__(cls, f"keepsake: {url}")
        line.url, line.modules, line.title, line.caption = url, modules, title, caption
        line.short = url.removeprefix("http://")
        return line


class Banner(Overlay):
    """One line at the bottom of the screen, red: what went wrong, for the operator and the visitor."""

"""A HUD line that carries a QR code: the text for logs and tests, the modules for the window to draw.

The web remote's address (with its token) is shown this way for its first seconds, so a phone can
scan the screen and be in (docs/REMOTE.md).
"""

from __future__ import annotations


class QrLine(str):
    """A plain string to everything else; `Window` also draws `modules` (rows of 0/1, dark = 1)."""

    modules: tuple[tuple[int, ...], ...]

    def __new__(cls, text: str, modules: tuple[tuple[int, ...], ...]) -> QrLine:
        line = super().__new__(cls, text)
        line.modules = modules
        return line


def qr_modules(text: str) -> tuple[tuple[int, ...], ...]:
    """The QR code of `text` as rows of 0/1, without its quiet zone (the window draws one)."""
    import segno  # pure Python; only a show with --web imports it

    return tuple(tuple(int(bool(m)) for m in row) for row in segno.make(text, error="l").matrix)

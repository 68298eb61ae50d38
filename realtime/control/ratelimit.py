"""At most one warning a second from anything a controller can repeat (docs/OSC.md's promise).

A bad message repeated by a controller, a feedback loop or a fuzzer must not fill the log: the
first warning is shown, the next ones within `every_s` go to debug level and are counted, and the
next warning shown says how many were held back. `PythonOscLogFilter` puts python-osc's own
warnings (it logs raw packet bytes through the root logger) through the same limit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from realtime.untrusted import printable

WARN_EVERY_S = 1.0


@dataclass
class WarnLimit:
    every_s: float = WARN_EVERY_S
    clock: Callable[[], float] = time.monotonic
    held: int = 0  # warnings turned into debug lines since the last one shown
    _shown_at: float = field(default=-float("inf"), repr=False)

    def allow(self) -> bool:
        """Whether a warning may be shown now (False: log it at debug level instead)."""
        now = self.clock()
        if now - self._shown_at >= self.every_s:
            self._shown_at = now
            return True
        self.held += 1
        return False

    def warn(self, logger: logging.Logger, message: str, *args: object) -> None:
        if not self.allow():
            logger.debug(message, *args)
            return
        held, self.held = self.held, 0
        suffix = f" (and {held} more like it in the last seconds)" if held else ""
        logger.warning(message + suffix, *args)


class PythonOscLogFilter(logging.Filter):
    """On the root logger while OSC listens: python-osc's warnings (`logging.warning(...)` on the
    root logger, one per malformed datagram, with its raw bytes) at most one a second, shortened."""

    MAX_CHARS = 160

    def __init__(self, limit: WarnLimit | None = None):
        super().__init__()
        self.limit = limit or WarnLimit()

    def filter(self, record: logging.LogRecord) -> bool:
        if "pythonosc" not in record.pathname.replace("\\", "/").split("/"):
            return True
        if record.levelno < logging.WARNING or not self.limit.allow():
            return False
        text = record.getMessage()
        record.msg = "osc ignored (python-osc): " + (
            text[: self.MAX_CHARS] + "..." if len(text) > self.MAX_CHARS else text
        )
        record.args = ()
        return True


class QuietLibraryLog(logging.Filter):
    """On a library's logger (aiohttp's server, which logs every malformed request with a traceback
    before any middleware sees it): at most one line a second, one line each, no traceback, the
    control characters of what a client sent escaped. `attach()` / `detach()` around a server's life."""

    MAX_CHARS = 160

    def __init__(self, logger_name: str, label: str, limit: WarnLimit | None = None):
        super().__init__()
        self.logger_name, self.label = logger_name, label
        self.limit = limit or WarnLimit()

    def attach(self) -> None:
        logging.getLogger(self.logger_name).addFilter(self)

    def detach(self) -> None:
        logging.getLogger(self.logger_name).removeFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.limit.allow():
            return False
        held, self.limit.held = self.limit.held, 0
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f": {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        text = printable(" ".join(text.split()))
        if len(text) > self.MAX_CHARS:
            text = text[: self.MAX_CHARS] + "..."
        suffix = f" (and {held} more like it in the last seconds)" if held else ""
        record.msg, record.args = f"{self.label}: {text}{suffix}", ()
        record.exc_info = record.exc_text = record.stack_info = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True

"""What comes from outside, handled safely: text printed to the operator's terminal (a file name, an
OSC string, a request line) and config files opened for reading. Standard library only: the show's
control plane and every floor above it import it (it sits beside errors, on the ground floor), and
it must not pull in OpenCV to do so.
"""

from __future__ import annotations

import logging
import os
import stat
from typing import BinaryIO

from realtime.errors import ConfigError


def printable(text: str) -> str:
    """`text` from outside (a file name, an OSC string, a request line) as it can be printed to a
    terminal: bytes that were not UTF-8 (kept by the OS as lone surrogates) as \\xNN, and control
    characters (an escape that clears the screen or retitles it, a bell) as escapes too."""
    if text.isprintable() and text.isascii():
        return text
    return "".join(c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF else _escape(c) for c in text)


def _escape(c: str) -> str:
    if 0xDC80 <= ord(c) <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
        return f"\\x{ord(c) - 0xDC00:02x}"
    return c.encode("unicode_escape").decode("ascii")


def open_regular(path: str, what: str) -> BinaryIO:
    """`path` opened for reading if it is a regular file; a one-line ConfigError if it is a FIFO, a
    device or a folder. Opened without blocking: a FIFO nobody writes to would hang the open itself
    (and SIGTERM could not end the show), and it is checked as opened, not by name beforehand."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a pipe or a device)"
            raise ConfigError(f"{what} '{printable(path)}' is {kind}; give a {what} file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class TerminalFormatter(logging.Formatter):
    """The log's formatter for a terminal: every message passes `printable`, so a string a client
    sent (an OSC layer name, a preset name, a file name) cannot clear the operator's screen, retitle
    it or forge a line of its own. A traceback, which is ours, keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)

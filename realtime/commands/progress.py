"""A progress line on stderr (`\\r`-rewritten) that ends itself before anything else is printed.

While it is open, every log record first ends the line, and leaving the `with` block (done, an
error, an interrupt) ends it too, so a message never runs into the bar.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO


class ProgressLine(logging.Filter):
    def __init__(self, stream: TextIO | None = None):
        super().__init__()
        self.stream = stream or sys.stderr
        self.open = False

    def update(self, text: str) -> None:
        print(f"\r{text}", end="", file=self.stream, flush=True)
        self.open = True

    def end(self) -> None:
        if self.open:
            print(file=self.stream, flush=True)
            self.open = False

    def filter(self, record: logging.LogRecord) -> bool:
        self.end()
        return True

    def __enter__(self) -> ProgressLine:
        for handler in logging.getLogger().handlers:
            handler.addFilter(self)
        return self

    def __exit__(self, *exc) -> None:
        self.end()
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self)

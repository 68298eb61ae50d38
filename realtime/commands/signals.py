"""SIGTERM and SIGHUP (what `systemctl stop`, `kill` and a closed terminal send) end a run cleanly.

The first signal asks for the same ending as the Q key: the loop stops between frames and every
recording is finished. A second signal exits at once, for a run that is stuck.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

STOP_SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s)


class Interrupted(BaseException):
    """Raised in the main thread by the first stop signal when a command has no gentler way to end
    (render): its `finally` blocks clean up. Not a DreamcamError: it is not the user's mistake. A
    BaseException, as KeyboardInterrupt is, so that no `except Exception` it passes through (the
    video writer turns FFmpeg's errors into RecordingError) mistakes the signal for a write error."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals(on_stop: Callable[[int], None] | None = None) -> Iterator[None]:
    """Within the block, the first SIGTERM/SIGHUP calls `on_stop(signum)` (or raises `Interrupted`
    when there is none); a second one exits at once with status 128 + signum."""
    received: list[int] = []

    def handler(signum: int, _frame) -> None:
        if received:
            _exit_at_once(signum, _frame)
        received.append(signum)
        name = signal.Signals(signum).name
        if on_stop is None:
            raise Interrupted(signum)
        log.warning("%s: finishing the show (recordings are closed); send it again to exit at once", name)
        on_stop(signum)

    try:
        previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    except ValueError:  # not the main thread (a test calling main() from a worker): no handlers
        yield
        return
    try:
        yield
    finally:
        for s, old in previous.items():
            # once a stop was asked for the command is ending: a second signal after the block (while
            # it cleans up) still exits at once with 128 + signum, not by the default action
            signal.signal(s, _exit_at_once if received else old)


def _exit_at_once(signum: int, _frame) -> None:
    name = signal.Signals(signum).name
    print(f"dreamcam: {name} again: exiting at once", file=sys.stderr, flush=True)
    os._exit(128 + signum)

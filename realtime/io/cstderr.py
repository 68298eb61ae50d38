"""C libraries' own complaints (ALSA, SDL) printed straight to file descriptor 2, kept off the
terminal while they run: our one-line error or doctor's finding says it better."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_c_stderr() -> Iterator[None]:
    """Within the block, whatever C code writes to fd 2 goes to /dev/null (Python's own stderr is
    flushed first, so nothing of ours is lost)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)

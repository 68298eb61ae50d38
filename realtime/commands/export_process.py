"""The background export's own process: `dreamcam export`, tied to the show that started it.

`--backend auto` exports the ONNX step in a separate process (dream/backends/auto.py says why): it
must never outlive the show, however the show ends: SIGTERM, a second SIGTERM (`os._exit`), a
crash or SIGKILL, where no cleanup of the show's runs. So before it exports anything it asks
Linux to send it SIGTERM when its parent dies (prctl PR_SET_PDEATHSIG), and elsewhere watches
its parent from a thread; and a SIGTERM ends it through Python's `finally` blocks, so its
partial file is removed, never left in the cache. It lives outside `realtime.dream.backends`,
whose package imports torch and every backend (seconds): the tie is made before anything heavy
is imported, so a show that dies in those seconds takes its export with it. A command, on the
commands floor: the dream (auto.py) names it in a command line and never imports it.

    python -m realtime.commands.export_process PARENT_PID export --model ... --dream-size WxH
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # linux/prctl.h
WATCH_S = 0.5  # how often the watching thread (off Linux) looks for its parent


def _exit_on_sigterm(signum: int, _frame) -> None:
    raise SystemExit(128 + signum)  # through every `finally`: export_step removes its partial file


def die_with_parent(parent: int) -> None:
    """End this process when `parent` ends (at once if it already has)."""
    tied = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            tied = libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0
        except (OSError, AttributeError):
            tied = False
    if os.getppid() != parent:  # the parent ended before the tie was made
        sys.exit(0)
    if not tied:

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(WATCH_S)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch, name="parent watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parent, command = int(argv[0]), argv[1:]
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    die_with_parent(parent)
    from realtime.commands.cli import main as cli_main

    return cli_main(command)


if __name__ == "__main__":
    sys.exit(main())

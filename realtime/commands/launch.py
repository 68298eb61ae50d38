"""The `dreamcam` entry point: Ctrl+C while torch and the models load (seconds on a busy machine)
ends quietly with status 130, as it does once the command runs, not with an import traceback."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    try:
        from realtime.commands import cli  # torch, OpenCV, the model registry: the slow part

        return cli.main(argv)
    except KeyboardInterrupt:
        print("dreamcam: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The `dreamcam` command line: assembles the parser from the commands' own modules, sets up
logging and signals, and turns every user mistake into one line on stderr (exit status 2), never
a traceback.

Each command is one module with `add_arguments(parser)` and `run(args)`; this file only knows their
names, their one-line summaries and where they live. Only the command asked for is imported, so
`dreamcam --help` and `dreamcam looks` start without torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from typing import NoReturn

from realtime.commands.signals import Interrupted, stop_on_signals
from realtime.errors import DreamcamError
from realtime.untrusted import TerminalFormatter

# name -> (its module in realtime.commands, the summary `dreamcam --help` lists); in help order
COMMAND_MODULES = {
    "run": ("run", "dream live (camera, video, image, synthetic)"),
    "dream": ("still", "dream one still image at full quality"),
    "bench": ("bench", "time the live window's loop; prints JSON"),
    "render": ("render", "dream every frame of a video file"),
    "eval": ("evaluate", "quality figures of a clip's dream (JSON)"),
    "export": ("export", "export the gradient step to ONNX"),
    "soak": ("soak", "headless endurance run; prints JSON"),
    "models": ("networks", "list networks, layers and weights"),
    "looks": ("looks", "list the bundled looks (for --preset NAME)"),
    "doctor": ("doctor", "what this machine can run, and what to fix"),
}
COMMANDS = tuple(COMMAND_MODULES)
LOG_LEVELS = ("debug", "info", "warning", "error")
# commands that install their own SIGTERM/SIGHUP handling: the show finishes like Q, render cleans up
OWN_SIGNAL_HANDLING = ("run", "render")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr (exit 2) like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def command_module(name: str):
    """The module that owns command `name`'s options and entry (imported now, not before)."""
    return importlib.import_module(f"realtime.commands.{COMMAND_MODULES[name][0]}")


def build_parser(commands: Iterable[str] = COMMANDS) -> argparse.ArgumentParser:
    """The whole parser; the options of `commands` only (the others are listed, and parse nothing),
    so that a command's heavy imports are paid by that command alone."""
    wanted = set(commands)
    parser = OneLineParser(prog="dreamcam", description="Real-time webcam DeepDream.")
    parser.add_argument("--log-level", default="warning", choices=LOG_LEVELS)
    # accepted after the command too (`dreamcam bench --log-level info`), without overriding the default
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default=argparse.SUPPRESS, choices=LOG_LEVELS)
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser)
    for name, (_, summary) in COMMAND_MODULES.items():
        command = sub.add_parser(name, parents=[common], help=summary)
        if name in wanted:
            command_module(name).add_arguments(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--log-level")):
        argv.insert(0, "run")  # `dreamcam [run] ...`
    elif argv[0] == "--log-level" and (len(argv) < 3 or argv[2] not in COMMANDS):
        argv.insert(2, "run")
    # the command is the first word or follows `--log-level LEVEL`; the top help needs none
    args = build_parser([word for word in argv[:3] if word in COMMANDS]).parse_args(argv)
    _quiet_opencv()
    terminal = logging.StreamHandler(sys.stderr)
    # every message printable: a client's text (an OSC string, a file name) cannot drive the terminal
    terminal.setFormatter(TerminalFormatter("dreamcam: %(message)s"))
    logging.basicConfig(level=args.log_level.upper(), handlers=[terminal])
    # Python warnings (torch's about a pickle's protocol, a library's deprecations) are not ours to
    # show before our one-line error: they go to the log, shown with --log-level debug only
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.DEBUG if args.log_level == "debug" else logging.ERROR)
    for chatty in ("onnxscript", "onnx_ir", "torch.onnx"):  # the exporter's internals, not ours
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        run = command_module(args.command).run
        if args.command in OWN_SIGNAL_HANDLING:
            return run(args)
        # every other command holds SIGTERM/SIGHUP too (Interrupted, below): left to the default,
        # SDL takes them for a bench's window and posts a quit event nothing reads, and a `kill`
        # left the bench running
        with stop_on_signals():
            return run(args)
    except DreamcamError as exc:
        print(f"dreamcam: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Interrupted as exc:  # SIGTERM/SIGHUP where the command cannot finish its work (render)
        print(f"dreamcam: stopped by {exc}", file=sys.stderr)
        return 128 + exc.signum
    except BrokenPipeError:  # `dreamcam models | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0


def _quiet_opencv() -> None:
    """OpenCV's and FFmpeg's own warnings (a camera probe, a broken file) would break our one-line
    error promise; our errors say what went wrong instead."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read when FFmpeg starts
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


if __name__ == "__main__":
    sys.exit(main())

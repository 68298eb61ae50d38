"""`render --workers N` against the unsplit render on the same clip, side by side (issue 26).

    python tools/split_bench.py [--frames 300] [--size 480x270] [--dream-size 192x108] [--workers 2]
        [--rounds 2] [--motion subpan] [--json OUT.json]

Each round runs both commands in turn as a user would (`python -m realtime.commands.cli render
...`, a fresh process each: Ray's start-up and the workers' imports are part of the split's time),
the order alternating from round to round so a change in the machine's load hits both alike. The
unsplit render dreams with torch's default threads (one per core); the split one with N workers of
one thread each: the same total threads on an N-core machine. Both use the reference step (eager
fp32, what a split render's CPU chunks use). Prints one JSON object: each run's wall time and
frames a second, each round's ratio (split over unsplit, frames a second) and their median.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from realtime.params import parse_size
from tools.make_clip import write_clip


def run(command: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    started = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", default="480x270")
    parser.add_argument("--dream-size", default="192x108")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--motion", default="subpan")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="split-bench-"))
    clip = write_clip(str(folder / "clip.mkv"), args.motion, args.frames, parse_size(args.size), 30.0)
    base = [sys.executable, "-m", "realtime.commands.cli", "render", clip, "--overwrite"]
    base += ["--dream-size", args.dream_size, "--backend", "eager", "--precision", "fp32", "--seed", "1"]
    commands = {
        "unsplit": [*base, "-o", str(folder / "whole.mp4")],
        "split": [*base, "-o", str(folder / "split.mp4"), "--workers", str(args.workers)],
    }
    runs: list[dict] = []
    ratios = []
    for round_ in range(args.rounds):
        order = ["unsplit", "split"] if round_ % 2 == 0 else ["split", "unsplit"]
        rates = {}
        for name in order:
            seconds = run(commands[name])
            rates[name] = args.frames / seconds
            runs.append(
                {"round": round_, "run": name, "seconds": round(seconds, 1), "fps": round(rates[name], 3)}
            )
            print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
        ratios.append(rates["split"] / rates["unsplit"])
    result = {
        "frames": args.frames,
        "size": args.size,
        "dream_size": args.dream_size,
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
        "runs": runs,
        "ratios": [round(r, 3) for r in ratios],
        "median_ratio": round(statistics.median(ratios), 3),
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

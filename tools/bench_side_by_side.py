"""Side-by-side `dreamcam bench` runs: variants interleaved round by round, medians in a table.

On a shared machine absolute speeds drift with everyone else's load; running the variants in
turn, several rounds, and comparing their medians keeps the comparison fair.

    python tools/bench_side_by_side.py --rounds 3 \\
        "2 steps: --steps 2" "1 step: --steps 1" "old main@/path/to/checkout: --steps 2"

A variant is `LABEL[@CHECKOUT]: BENCH ARGS`; with @CHECKOUT it runs that checkout's code; an
argument NAME=VALUE in capitals sets an environment variable for that variant only.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys

KEYS = (
    "dream_fps",
    "display_fps",
    "dream_latency_ms_p50",
    "dream_latency_ms_p99",
    "kernel_ms_p50",
    "display_ms_p50",
    "frame_ms_p99",
)


def parse_variant(text: str) -> tuple[str, str | None, list[str]]:
    label, _, args = text.partition(":")
    label, _, checkout = label.partition("@")
    return label.strip(), checkout.strip() or None, shlex.split(args)


def run_once(checkout: str | None, args: list[str], frames: int) -> dict:
    cwd = checkout or os.getcwd()
    env = dict(os.environ, PYTHONPATH=cwd)
    settings = [a for a in args if "=" in a and a.split("=")[0].isupper()]
    env.update(a.split("=", 1) for a in settings)
    args = [a for a in args if a not in settings]
    command = [sys.executable, "-m", "realtime.commands.cli", "bench", "--json", "--frames", str(frames)]
    out = subprocess.run(command + args, cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _median(values) -> str:
    present = [v for v in values if v is not None]  # an older checkout may not report a figure
    return f"{statistics.median(present):.1f}" if present else "-"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("variants", nargs="+", help="LABEL[@CHECKOUT]: BENCH ARGS")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=120, help="dreams timed per run")
    parser.add_argument("--json", action="store_true", help="print every run as JSON lines too")
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variants]
    runs: dict[str, list[dict]] = {label: [] for label, _, _ in variants}
    for round_ in range(args.rounds):
        for label, checkout, bench_args in variants:
            result = run_once(checkout, bench_args, args.frames)
            runs[label].append(result)
            print(
                f"round {round_ + 1} {label}: " + json.dumps({k: result.get(k) for k in KEYS}),
                file=sys.stderr,
            )
            if args.json:
                print(json.dumps({"variant": label, **result}))
    print("| variant | " + " | ".join(KEYS) + " |")
    print("|---" * (len(KEYS) + 1) + "|")
    for label, results in runs.items():
        cells = [_median(r.get(k) for r in results) for k in KEYS]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

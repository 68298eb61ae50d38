"""Kernel steps per second of several backends side by side: the dream step alone, no loop.

Each round runs every variant in turn, each in a fresh process (so a variant may be another
checkout's code), and each process times `--steps` single gradient steps after two warm-up steps;
the table gives the median over all rounds, and each variant's rate as a multiple of the first's.
Interleaving rounds keeps the comparison fair on a machine whose load drifts.

    python tools/kernel_race.py --size 320x180 --rounds 5 \\
        "today eager fp32@/path/to/main: eager fp32" "eager fp32: eager fp32" \\
        "eager bf16: eager bf16" "onnx fp32: onnx fp32" "auto: auto auto"

A variant is `LABEL[@CHECKOUT]: BACKEND PRECISION`; `--threads 1` compares the backends' work
per core, which a busy shared machine disturbs far less than a team of threads. Each step is timed
twice: by the wall clock, and by the CPU time its process spent (every thread's, so a team that
spins pays for it): on a machine loaded by others a step waits for a core for longer than it
computes, and only the CPU time still says what it costs. The ONNX exports
live in the dreamcam cache ($DREAMCAM_CACHE); no export is timed (the backend is built before the
timing), but a first export takes a while: run `dreamcam export` ahead. `auto` reads its cached
choice, or measures first (its first 40 steps are untimed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, os, sys, time, torch
backend, precision, width, height, steps, layer, threads = sys.argv[1:8]
if int(threads):  # torch's team and onnxruntime's (which sizes itself by os.cpu_count)
    torch.set_num_threads(int(threads))
    os.cpu_count = lambda: int(threads)
from models.registry import load_network
from realtime.dream.backends import create_backend
from realtime.dream.objectives import parse_objective
from realtime.params import DreamParams
width, height, steps = int(width), int(height), int(steps)
network = load_network("efficientnet_lite0")
objective = parse_objective(layer, network.spec)
generator = torch.Generator().manual_seed(0)
dream = create_backend(backend, network, objective, DreamParams(layer=layer), generator, (width, height),
                       precision=precision)
x = torch.rand(1, 3, height // 8, width // 8)
x = torch.nn.functional.interpolate(x, size=(height, width), mode="bilinear")
for _ in range(2 if backend != "auto" else 40):  # auto: its trials (or cached choice) first
    x = dream.run(x, 1)
times, cpu = [], []
for _ in range(steps):
    started, started_cpu = time.perf_counter(), time.process_time()
    x = dream.run(x, 1)
    times.append(time.perf_counter() - started)
    cpu.append(time.process_time() - started_cpu)
ran = f"{dream.name} {dream.precision}"
print(json.dumps({"times": times, "cpu": cpu, "ran": ran, "threads": torch.get_num_threads()}))
"""


def parse_variant(text: str) -> tuple[str, str | None, str, str]:
    label, _, spec = text.partition(":")
    label, _, checkout = label.partition("@")
    backend, precision = spec.split()
    return label.strip(), checkout.strip() or None, backend, precision


def run_once(checkout: str | None, backend: str, precision: str, size: tuple[int, int], args) -> dict:
    cwd = checkout or os.getcwd()
    env = dict(os.environ, PYTHONPATH=cwd)
    command = [sys.executable, "-c", CHILD, backend, precision, str(size[0]), str(size[1])]
    command += [str(args.steps), args.layer, str(args.threads)]
    out = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("variants", nargs="+", help="LABEL[@CHECKOUT]: BACKEND PRECISION")
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per variant and round")
    parser.add_argument("--layer", default="block10")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads for torch and onnxruntime (0: their defaults). 1 on a shared machine: a "
        "team of 2 threads on 2 busy cores spends most of its time waiting at its barriers",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    variants = [parse_variant(v) for v in args.variants]
    times: dict[str, list[float]] = {v[0]: [] for v in variants}
    cpu: dict[str, list[float]] = {v[0]: [] for v in variants}
    ran: dict[str, str] = {}
    for round_ in range(args.rounds):
        for label, checkout, backend, precision in variants:
            result = run_once(checkout, backend, precision, size, args)
            times[label] += result["times"]
            cpu[label] += result["cpu"]
            ran[label] = result["ran"]
            print(
                f"round {round_ + 1}: {label}: {len(result['times']) / sum(result['times']):.1f} steps/s",
                file=sys.stderr,
            )
    first, first_cpu = statistics.median(times[variants[0][0]]), statistics.median(cpu[variants[0][0]])
    rows = [
        {
            "variant": label,
            "ran": ran[label],
            "steps_per_s": round(1.0 / statistics.median(times[label]), 2),
            "ms_p50": round(1000 * statistics.median(times[label]), 1),
            "ratio": round(first / statistics.median(times[label]), 2),
            "cpu_ms_p50": round(1000 * statistics.median(cpu[label]), 1),
            "cpu_ratio": round(first_cpu / statistics.median(cpu[label]), 2),
        }
        for label, *_ in variants
    ]
    if args.json:
        print(json.dumps({"size": args.size, "layer": args.layer, "rounds": args.rounds, "rows": rows}))
        return
    head = f"| variant ({args.size}, {args.layer}) | ran | steps/s | ms p50 | x first"
    print(f"{head} | CPU ms p50 | x first (CPU) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        wall = f"{r['steps_per_s']} | {r['ms_p50']} | {r['ratio']}"
        print(f"| {r['variant']} | {r['ran']} | {wall} | {r['cpu_ms_p50']} | {r['cpu_ratio']} |")


if __name__ == "__main__":
    main()

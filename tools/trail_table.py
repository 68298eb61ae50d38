"""The trail table (issue 24): clips with per-pixel motion (tools/motion_clips.py) x looks, dreamt
frame by frame in memory as the live loop does (never encoded), with boil (whole frame, on the
object, on the background away from it), trail streakiness and trail size behind a moving
cut-out, and the judge's strength.

    python tools/trail_table.py [--clips walker:coffee:right:3,deform:astronaut,grainflicker:chelsea]
        [--looks default,subtle,...] [--size 480x270] [--dream-size 320x180] [--frames 150]
        [--strength] [--json OUT.json]

A clip is `KIND[:PHOTO[:DIRECTION[:SPEED]]]`. Each walker's clean reference (the same photo with
nothing crossing it, dreamt with the same look and seed) is dreamt once per look. Prints a markdown
table, one row per look and clip.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from realtime.commands.evaluate import BOIL_FROM, boil, dream_clip, strength, strength_frame
from realtime.commands.judge import Judge
from realtime.commands.trail import motions, region_motions, trail
from realtime.dream.dreamer import build_dreamer
from realtime.params import DreamParams, parse_size
from tools.boil_table import look_params
from tools.motion_clips import motion_clip

FPS = 30.0
DEFAULT_CLIPS = "walker:coffee:right:3,deform:astronaut,grainflicker:chelsea"
COLUMNS = (
    "boil",
    "boil_object",
    "boil_background",
    "trail_streak_05_1s",
    "trail_streak",
    "trail_size",
    "strength_3_5s",
)


def parse_clip(spec: str) -> dict:
    parts = spec.split(":")
    kind = parts[0]
    photo = parts[1] if len(parts) > 1 else "coffee"
    direction = parts[2] if len(parts) > 2 else "right"
    speed = float(parts[3]) if len(parts) > 3 else 3.0
    return {"kind": kind, "photo": photo, "direction": direction, "speed": speed}


class Dreams:
    """Builds dreamers sharing one loaded network."""

    def __init__(self, dream_size: tuple[int, int], seed: int) -> None:
        self.dream_size, self.seed, self.network = dream_size, seed, None

    def dream(self, params: DreamParams, frames: list, judge: Judge | None = None, gain_at=None):
        dreamer = build_dreamer(
            params,
            self.dream_size,
            torch.device("cpu"),
            "eager",
            None,
            self.seed,
            self.network,
            precision="fp32",
        )
        if params.model == DreamParams.model:
            self.network = dreamer.network
        outputs, _, judged, _ = dream_clip(dreamer, frames, self.dream_size, None, gain_at, judge)
        return outputs, judged


def measure_cell(
    dreams: Dreams, params: DreamParams, clip_spec: dict, size, frames: int, judge, clean_cache: dict
) -> dict:
    clip = motion_clip(
        clip_spec["kind"], frames, size, clip_spec["photo"], clip_spec["direction"], clip_spec["speed"]
    )
    gain_at = (lambda n: strength_frame(n, FPS)) if judge is not None else (lambda n: False)
    started = time.perf_counter()
    outputs, judged = dreams.dream(params, clip.frames, judge, gain_at)
    seconds = time.perf_counter() - started
    truth = clip.truth
    figures: dict = {"dream_s_per_frame": round(seconds / frames, 3)}
    figures.update(boil(clip.frames, outputs, motions(truth), BOIL_FROM))
    regions = region_motions(truth, FPS)
    if regions is not None:
        for name, region in zip(("object", "background"), regions, strict=True):
            figures[f"boil_{name}"] = boil(clip.frames, outputs, region, BOIL_FROM).get("boil")
        key = (clip_spec["photo"], id(params))
        if key not in clean_cache:
            background = motion_clip("background", frames, size, clip_spec["photo"])
            clean_cache[key] = (background.frames, dreams.dream(params, background.frames)[0])
        clean_inputs, clean = clean_cache[key]
        figures.update(trail(clip.frames, outputs, truth, FPS, clean, clean_inputs))
    if judge is not None:
        figures.update(strength(judged, FPS))
    return figures


def table(cells: list[dict]) -> str:
    rows = ["| look | clip | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 2) + "|"]
    for cell in cells:
        values = [f"{cell[c]:.3g}" if isinstance(cell.get(c), float) else "-" for c in COLUMNS]
        rows.append(f"| {cell['look']} | {cell['clip']} | " + " | ".join(values) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", default=DEFAULT_CLIPS)
    parser.add_argument("--looks", default="default")
    parser.add_argument("--size", default="480x270")
    parser.add_argument("--dream-size", default="320x180")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--strength", action="store_true", help="also the judge's strength (slower)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    size, dream_size = parse_size(args.size), parse_size(args.dream_size)
    dreams = Dreams(dream_size, args.seed)
    judge = Judge() if args.strength else None
    cells, clean_cache = [], {}
    for look in args.looks.split(","):
        params = look_params(look)
        for spec in args.clips.split(","):
            figures = measure_cell(dreams, params, parse_clip(spec), size, args.frames, judge, clean_cache)
            cell = {"look": look, "clip": spec, **figures}
            print(json.dumps(cell), file=sys.stderr, flush=True)
            cells.append(cell)
    if args.json:
        Path(args.json).write_text(json.dumps(cells, indent=1))
    print(table(cells))


if __name__ == "__main__":
    main()

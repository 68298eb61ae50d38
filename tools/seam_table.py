"""The split render's seams, measured (issue 26): boil and strength at each seam against the frames
away from seams, for warm-up and crossfade lengths, on clips tools/make_clip.py makes.

    python tools/seam_table.py [--motions subpan,zoomrot,grain] [--photo chelsea] [--size 480x270]
        [--dream-size 320x180] [--frames 150] [--chunk 50] [--warm-ups 30] [--crossfades 0,8,24]
        [--json OUT.json] [--sheet docs/images/split-seam.jpg]

The chunks run here one after another, in-process (realtime.cluster.chunk.run_chunk, the very
function a Ray worker runs; no Ray needed), and are stitched as the driver stitches them
(realtime.cluster.seams); the frames are measured as dreamt, never from an encoded file:
- a seam's boil: evaluate.boil over the frames from the one before the seam to the crossfade's end
  (the last round's measure: the warping error the dream adds, over its size);
- away: the median of every single frame's boil from frame 30 on, more than crossfade + 5 frames
  from any seam;
- strength: the judge's gain (EfficientNet-Lite2) on the seam's frames, over its mean on frames
  away from seams.
Goal: every seam's boil <= 1.5x away's, strength >= 0.9. `--sheet` writes frames around the first
seam, split (top) and unsplit (bottom), for the eye.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from realtime.cluster.chunk import ChunkInput, run_chunk
from realtime.cluster.job import DreamRecipe
from realtime.cluster.plan import Chunk, plan_chunks
from realtime.cluster.seams import stitched, tail
from realtime.commands.evaluate import BOIL_FROM, boil, read_known_motion
from realtime.commands.judge import Judge
from realtime.commands.render import video_frames
from realtime.dream.frames import resized
from realtime.params import parse_size
from tools.boil_table import clip_path, look_params

GOAL_BOIL, GOAL_STRENGTH = 1.5, 0.9


def render_chunks(
    path: str, chunks: list[Chunk], recipe: DreamRecipe, linear: bool = False
) -> list[np.ndarray]:
    """The split render's frames as the driver writes them, the chunks dreamt one after another."""
    out, carry = [], None
    for chunk in chunks:
        result = run_chunk(chunk, recipe, ChunkInput(os.path.basename(path), path=path))
        out += list(stitched(chunk, result.frames, carry, None if linear else result.fade_sources))
        carry = tail(chunk, result.frames)
    return out


def measure(inputs, outputs, motions, chunks: list[Chunk], dream_size, judge: Judge, fade: int) -> dict:
    seams = [c.start for c in chunks if c.start > 0]
    width = max(1, fade)
    per_frame = {
        t: _boil(inputs[t - 1 : t + 1], outputs[t - 1 : t + 1], motions[t - 1 : t])
        for t in range(BOIL_FROM, len(inputs))
    }
    away = [t for t in per_frame if all(abs(t - s) > width + 5 for s in seams)]
    away_boil = float(np.median([per_frame[t] for t in away]))

    def strength(frames: list[int]) -> float:
        gains = [judge.gain(resized(outputs[t], dream_size), resized(inputs[t], dream_size)) for t in frames]
        return float(np.mean(gains))

    away_strength = strength(away[::4])
    rows = []
    for s in seams:
        window = slice(s - 1, s + width + 1)
        seam = _boil(inputs[window], outputs[window], motions[s - 1 : s + width])
        rows.append(
            {
                "seam": s,
                "boil": round(seam, 4),
                "boil_vs_away": round(seam / away_boil, 2),
                "strength_vs_away": round(strength(list(range(s, s + width))) / away_strength, 3),
            }
        )
    return {"away_boil": round(away_boil, 4), "away_strength": round(away_strength, 3), "seams": rows}


def _boil(inputs, outputs, motions) -> float:
    """evaluate.boil from its second frame on, from its unrounded parts (a still scene's boil is
    ~0.002: its own 3-decimal rounding would be the figure's error)."""
    parts = boil(inputs, outputs, motions, start=1)
    return (parts["warping_error_out"] - parts["warping_error_in"]) / parts["dream_size"]


def sheet(path: str, split: list[np.ndarray], whole: list[np.ndarray], seam: int, fade: int) -> None:
    """Frames around a seam: split on top, unsplit below, each frame labelled with its number."""
    picks = [seam - 2, seam, seam + fade // 2, seam + max(fade - 1, 0), seam + fade + 2]
    rows = []
    for frames, label in ((split, "split"), (whole, "whole")):
        tiles = []
        for t in picks:
            tile = cv2.cvtColor(frames[t], cv2.COLOR_RGB2BGR).copy()
            cv2.putText(tile, f"{label} {t}", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
            tiles.append(tile)
        rows.append(np.hstack(tiles))
    cv2.imwrite(path, np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 88])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--motions", default="subpan,zoomrot,grain")
    parser.add_argument("--photo", default="chelsea")
    parser.add_argument("--look", default="default")
    parser.add_argument("--size", default="480x270")
    parser.add_argument("--dream-size", default="320x180")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--chunk", type=int, default=50, help="frames a chunk writes")
    parser.add_argument("--warm-ups", default="30")
    parser.add_argument("--crossfades", default="0,8,24")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--clips", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "dreamcam-boil-clips")
    )
    parser.add_argument("--json", default=None)
    parser.add_argument("--linear", action="store_true", help="mix the seam's frames evenly (not its dreams)")
    parser.add_argument("--sheet", default=None, help="a JPEG of the frames around the first seam")
    args = parser.parse_args()
    size, dream_size = parse_size(args.size), parse_size(args.dream_size)
    Path(args.clips).mkdir(parents=True, exist_ok=True)
    judge = Judge()
    recipe = DreamRecipe(look_params(args.look), dream_size, seed=args.seed, threads=args.threads)
    cells = []
    for motion in args.motions.split(","):
        path = clip_path(Path(args.clips), motion, args.photo, size, args.frames)
        inputs = list(video_frames(path)[0])
        motions = read_known_motion(path, len(inputs), size)
        whole = None
        for warm_up in map(int, args.warm_ups.split(",")):
            for fade in map(int, args.crossfades.split(",")):
                started = time.perf_counter()
                chunks = plan_chunks(
                    len(inputs),
                    [],
                    1,
                    warm_up=warm_up,
                    crossfade=fade,
                    min_chunk=args.chunk,
                    max_chunk=args.chunk,
                )
                outputs = render_chunks(path, chunks, recipe, args.linear)
                cell = {"motion": motion, "warm_up": warm_up, "crossfade": fade}
                cell.update(measure(inputs, outputs, motions, chunks, dream_size, judge, fade))
                cell["seconds"] = round(time.perf_counter() - started, 1)
                print(json.dumps(cell), file=sys.stderr, flush=True)
                cells.append(cell)
                if (
                    args.sheet
                    and motion == args.motions.split(",")[0]
                    and fade == max(map(int, args.crossfades.split(",")))
                ):
                    if whole is None:
                        one = plan_chunks(len(inputs), [], 1, min_chunk=len(inputs), max_chunk=len(inputs))
                        whole = render_chunks(path, one, recipe)
                    sheet(args.sheet, outputs, whole, chunks[1].start, fade)
    if args.json:
        Path(args.json).write_text(json.dumps(cells, indent=1))
    print(
        "| motion | warm-up | crossfade | away boil | worst seam boil / away | worst seam strength / away |"
    )
    print("|---|---|---|---|---|---|")
    for c in cells:
        worst_boil = max(s["boil_vs_away"] for s in c["seams"])
        worst_strength = min(s["strength_vs_away"] for s in c["seams"])
        print(
            f"| {c['motion']} | {c['warm_up']} | {c['crossfade']} | {c['away_boil']:.3f} "
            f"| {worst_boil:.2f} | {worst_strength:.2f} |"
        )


if __name__ == "__main__":
    main()

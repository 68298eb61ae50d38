"""The boil table (issue 13): every motion kind x every look, dreamt frame by frame in-process (never
an encoded render), with boil, strength and the flow's error for each cell.

    python tools/boil_table.py [--motions subpan,zoomrot,shake,still,grain] [--looks default,subtle,...]
        [--photos chelsea] [--size 480x270] [--dream-size 320x180] [--frames 150] [--json OUT.json]
        [--precision auto] [--backend eager] [--seed 1]

Clips are made by tools/make_clip.py (lossless, true motion recorded) into a cache folder and
reused; `walker`, `deform` and `grainflicker` by tools/motion_clips.py (per-pixel truth: the
walker's cells add boil on the object and the background, the trail's streakiness and its size
over a clean dream of the background, issue 24). Prints a markdown table (one row per look and
motion, the photos' mean) and, with --json, writes every cell's figures. Each clip's classic
reference (evaluate.classic_strength: a classic still DeepDream of its own frames, judged) is
dreamt once and shared by every look.
`default` is the look with no preset (DreamParams' defaults); the other names are the bundled
looks (realtime/show/looks). A look may be given as `NAME:field=value,...` to measure a variant
(for example `default:depth=0.3`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from models.registry import get_spec
from realtime.commands import trail
from realtime.commands.evaluate import classic_strength, measure_mode, read_known_motion, versus_classic
from realtime.commands.judge import Judge
from realtime.commands.render import video_frames
from realtime.dream.dreamer import build_dreamer
from realtime.params import DreamParams, parse_size
from realtime.show.presets import bundled_looks, load_look
from tools.make_clip import write_clip
from tools.motion_clips import motion_clip, write_motion_clip

MOTIONS = ("subpan", "zoomrot", "shake", "still", "grain", "walker", "deform", "grainflicker")
PER_PIXEL = ("walker", "deform", "grainflicker")  # tools/motion_clips.py's kinds
LOOKS = ("default", "subtle", "eyes", "fur", "architecture", "wild")
FIGURES = (
    "boil",
    "strength_1s",
    "strength_3_5s",
    "lite0_strength_1s",
    "lite0_strength_3_5s",
    "classic_3_5s",
    "vs_classic_3_5s",
    "dream_size",
    "flow_error",
    "boil_object",
    "boil_background",
    "trail_streak",
    "trail_size",
)


def look_params(spec: str) -> DreamParams:
    """`default`, a bundled look's name or a preset file, optionally `:field=value,...` on top."""
    name, _, changes = spec.partition(":")
    if name == "default":
        model = get_spec(DreamParams.model)
        params = DreamParams(layer=model.default_layer)
    else:
        params = load_look(name)
    for change in filter(None, changes.split(",")):
        field, _, value = change.partition("=")
        current = getattr(params, field)
        params = params.replace(**{field: type(current)(value) if not isinstance(current, str) else value})
    return params


def clip_path(folder: Path, motion: str, photo: str, size: tuple[int, int], frames: int) -> str:
    """The cached lossless clip for one motion and photo (made on first use)."""
    path = folder / f"{motion}-{photo}-{size[0]}x{size[1]}-{frames}.mkv"
    if motion in PER_PIXEL:
        if not path.is_file() or not trail.truth_path(path).is_file():
            write_motion_clip(str(path), motion_clip(motion, frames, size, photo))
        return str(path)
    if not path.is_file() or not Path(f"{path}.motion.json").is_file():
        write_clip(str(path), motion, frames, size, 30.0, 3.5 if motion == "subpan" else 3, photo)
    return str(path)


def measure(args: argparse.Namespace) -> list[dict]:
    size, dream_size = parse_size(args.size), parse_size(args.dream_size)
    folder = Path(args.clips)
    folder.mkdir(parents=True, exist_ok=True)
    device = torch.device("cpu")
    network = None
    judge = Judge()
    classics: dict[str, dict] = {}  # per clip: the classic dream's strength (every look's reference)
    cells = []

    def dreamer_for(params: DreamParams):
        return build_dreamer(
            params, dream_size, device, args.backend, None, args.seed, network, precision=args.precision
        )

    for look in args.looks.split(","):
        params = look_params(look)
        for motion in args.motions.split(","):
            for photo in args.photos.split(","):
                path = clip_path(folder, motion, photo, size, args.frames)
                frames = list(video_frames(path)[0])
                motions = read_known_motion(path, len(frames), size)
                truth = trail.read_truth(path, len(frames), size)
                clean = None
                if truth is not None:
                    motions = trail.motions(truth)
                    background = trail.background_path(path)
                    if background.is_file():
                        clean = (list(video_frames(str(background))[0]), dreamer_for(params))
                started = time.perf_counter()
                dreamer = dreamer_for(params)
                network = dreamer.network if params.model == DreamParams.model else network
                figures = measure_mode(
                    dreamer,
                    frames,
                    motions,
                    True,
                    dream_size,
                    30.0,
                    sample_gains=True,
                    judge=judge,
                    truth=truth,
                    clean=clean,
                )
                if path not in classics:
                    classics[path] = classic_strength(frames, dream_size, 30.0, judge)
                figures.update(classics[path], **versus_classic(figures, classics[path]))
                cell = {"look": look, "motion": motion, "photo": photo, **figures}
                cell["seconds"] = round(time.perf_counter() - started, 1)
                print(json.dumps(cell), file=sys.stderr, flush=True)
                cells.append(cell)
    return cells


def table(cells: list[dict]) -> str:
    """Markdown: one row per look and motion, each figure the mean over the photos."""
    rows = [
        "| look | motion | boil | strength 1 s | strength 3-5 s | lite0's 1 s | lite0's 3-5 s "
        "| classic 3-5 s | vs classic 3-5 s | dream size | flow error px | boil object "
        "| boil background | trail streak | trail size |",
        "|---" * (len(FIGURES) + 2) + "|",
    ]
    keys = sorted(
        {(c["look"], c["motion"]) for c in cells}, key=lambda k: [c["look"] for c in cells].index(k[0])
    )
    for look, motion in keys:
        mine = [c for c in cells if c["look"] == look and c["motion"] == motion]
        values = []
        for figure in FIGURES:
            found = [c[figure] for c in mine if c.get(figure) is not None]
            values.append(f"{np.mean(found):.2f}" if found else "-")
        rows.append(f"| {look} | {motion} | " + " | ".join(values) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--motions", default=",".join(MOTIONS))
    parser.add_argument("--looks", default=",".join(LOOKS))
    parser.add_argument("--photos", default="chelsea")
    parser.add_argument("--size", default="480x270")
    parser.add_argument("--dream-size", default="320x180")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", default="eager")
    parser.add_argument("--precision", default="auto")
    parser.add_argument(
        "--clips", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "dreamcam-boil-clips")
    )
    parser.add_argument("--json", default=None, help="write every cell's figures here")
    args = parser.parse_args()
    known = {name for name, _, _ in bundled_looks()} | {"default"}
    for look in args.looks.split(","):
        if look.partition(":")[0] not in known and not os.path.isfile(look.partition(":")[0]):
            parser.error(f"look '{look}' is not one of {', '.join(sorted(known))} nor a preset file")
    cells = measure(args)
    if args.json:
        Path(args.json).write_text(json.dumps(cells, indent=1))
    print(table(cells))


if __name__ == "__main__":
    main()

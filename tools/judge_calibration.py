"""Calibrate `dreamcam eval`'s judge of strength: a classic still DeepDream scored at every Lite2 block.

    python tools/judge_calibration.py [--photos chelsea,astronaut,coffee] [--steps 10,20,40]
        [--size 320x180] [--octaves 4] [--lr 0.02] [--layer block10] [--seed 1] [--clips DIR]

Each photo is the first frame of tools/make_clip.py's still clip (480x270, FFV1, as
tools/boil_table.py caches it), resized to the dream size, dreamt cold by Lite0 as `dreamcam dream`
does (octaves, N steps each), and scored: the mean change in grey levels, Lite0's own gain on the
dreamt layer, and the energy gain of every Lite2 block (realtime.commands.judge picks `block1`: the
layer that puts a classic still inside 2.3-3.6).
Prints one JSON line per photo and step count.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import cv2
import numpy as np
import torch

from models.registry import load_network
from realtime.commands.judge import CLASSIC, JUDGE_MODEL
from realtime.commands.render import video_frames
from realtime.commands.still import dream_still
from realtime.params import DreamParams, parse_size
from tools.boil_table import clip_path


def energies(net: torch.nn.Module, image: np.ndarray) -> dict[str, float]:
    x = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float() / 255.0
    with torch.no_grad():
        return {name: float(a.pow(2).mean()) for name, a in net(x).items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", default="chelsea,astronaut,coffee")
    parser.add_argument("--steps", default="10,20,40")
    parser.add_argument("--size", default="320x180")
    # the defaults are the classic dream `dreamcam eval` holds a live one to (judge.CLASSIC)
    parser.add_argument("--octaves", type=int, default=CLASSIC.octaves)
    parser.add_argument("--lr", type=float, default=CLASSIC.lr)
    parser.add_argument("--layer", default=CLASSIC.layer)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--clips", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "dreamcam-boil-clips")
    )
    args = parser.parse_args()
    judge = load_network(JUDGE_MODEL)
    blocks = judge.truncated([name for name, _ in judge.stages if name.startswith("block")])
    own = load_network("efficientnet_lite0").truncated([args.layer])
    for photo in args.photos.split(","):
        first = next(iter(video_frames(clip_path(Path(args.clips), "still", photo, (480, 270), 150))[0]))
        plain = cv2.resize(first, parse_size(args.size), interpolation=cv2.INTER_AREA)
        base, own_base = energies(blocks, plain), energies(own, plain)[args.layer]
        for steps in (int(n) for n in args.steps.split(",")):
            params = DreamParams(layer=args.layer, steps=steps, octaves=args.octaves, lr=args.lr)
            dreamt = dream_still(plain, params, torch.device("cpu"), seed=args.seed)
            scored = energies(blocks, dreamt)
            line = {
                "photo": photo,
                "steps": steps,
                "mean_change": round(float(np.abs(dreamt.astype(np.float32) - plain).mean()), 1),
                "lite0_gain": round(energies(own, dreamt)[args.layer] / own_base, 2),
                **{name: round(scored[name] / base[name], 2) for name in scored},
            }
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()

"""The default look at several CPU dream sizes side by side (issue 25, goal 5): is a larger dream
visibly sharper once it is upscaled onto the camera's frame?

    python tools/size_sheet.py --sizes 320x180,416x234,480x270 --photo astronaut \\
        --out docs/images/dream-size-320-416-480.jpg

A still photo with a webcam's grain (tools/motion_clips.py) at 960x540 is dreamt frame by frame as
the live loop does (`dream_clip`: warm start, depth gate, upscaled compose; frames kept before any
encoder), every frame dreamt, the same seconds at each size and the same seed. Each row is one
size: the whole frame at `--at` seconds, then a 1:1 crop of the full-size output (where the
difference between sizes shows, if it does).
"""

from __future__ import annotations

import argparse
import os

import cv2
import numpy as np
import torch

from realtime.params import DreamParams, parse_size
from tools.motion_clips import motion_clip

SOURCE = (960, 540)
THUMB = (480, 270)  # the whole frame on the sheet
BAND = 28  # the white label band above each row
CROPS = {  # (x, y, width, height) at SOURCE: the 1:1 detail
    "astronaut": (330, 40, 300, 270),
    "chelsea": (330, 90, 300, 270),
    "coffee": (330, 135, 300, 270),
}


def dream_frames(sizes: list[tuple[int, int]], photo: str, seconds: float) -> dict:
    from realtime.commands.evaluate import dream_clip
    from realtime.dream.dreamer import build_dreamer

    count = int(round(seconds * 30)) + 1
    clip = motion_clip("grain", count, SOURCE, photo)
    out, network = {}, None
    for size in sizes:
        dreamer = build_dreamer(
            DreamParams(), size, torch.device("cpu"), "eager", None, 1, network, precision="fp32"
        )
        network = dreamer.network
        out[size] = dream_clip(dreamer, clip.frames, size, gain_at=lambda n: False)[0][-1]
    return out


def _band(width: int, text: str) -> np.ndarray:
    band = np.full((BAND, width, 3), 255, np.uint8)
    cv2.putText(band, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    return band


def compose(frames: dict, photo: str, seconds: float) -> np.ndarray:
    x, y, w, h = CROPS.get(photo, (330, 135, 300, 270))
    rows = []
    for (width, height), frame in frames.items():
        whole = cv2.resize(frame, THUMB, interpolation=cv2.INTER_AREA)
        crop = cv2.resize(
            frame[y : y + h, x : x + w], (THUMB[1] * w // h, THUMB[1]), interpolation=cv2.INTER_NEAREST
        )
        row = np.hstack([whole, np.full((THUMB[1], 8, 3), 255, np.uint8), crop])
        output = "{}x{}".format(*SOURCE)
        label = f"dream {width}x{height}, {seconds:g} s: whole frame | 1:1 crop of the {output} output"
        rows.append(np.vstack([_band(row.shape[1], label), row]))
    return np.vstack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="320x180,416x234,480x270")
    parser.add_argument("--photo", default="chelsea")
    parser.add_argument("--at", type=float, default=2.0, help="seconds of dreaming (30 frames a second)")
    parser.add_argument("--out", default="docs/images/dream-size-sheet.jpg")
    parser.add_argument(
        "--keep", default=None, help="FILE.npz: keep the frames (and lay out from it if it exists)"
    )
    args = parser.parse_args()
    torch.manual_seed(1)
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    if args.keep and os.path.exists(args.keep):
        kept = np.load(args.keep)
        frames = {parse_size(s): kept[s] for s in args.sizes.split(",")}
    else:
        frames = dream_frames(sizes, args.photo, args.at)
        if args.keep:
            np.savez_compressed(args.keep, **{f"{w}x{h}": f for (w, h), f in frames.items()})
    sheet = compose(frames, args.photo, args.at)
    cv2.imwrite(args.out, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(args.out)


if __name__ == "__main__":
    main()

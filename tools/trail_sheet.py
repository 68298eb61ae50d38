"""A contact sheet of a walker clip per look (issue 24): a cut-out crossing a still photo, dreamt
frame by frame in memory as the live loop does (frames taken before any encoder), today's code
beside the new.

    python tools/trail_sheet.py dream OUT.npz [--looks default,subtle,...] [--frames 60] [--at 1,1.5,2]
    python tools/trail_sheet.py sheet TODAY.npz NEW.npz docs/images/looks-walker-today-vs-new.jpg

`dream` runs with whatever code is on PYTHONPATH (run it once in a checkout of today's main, once
here) and keeps the chosen frames; `sheet` lays them out: one row per look, today's frames on the
left and the new ones on the right, each labelled.
"""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import torch

from tools.boil_table import look_params
from tools.motion_clips import motion_clip

SIZE, DREAM_SIZE = (480, 270), (320, 180)
THUMB = (240, 135)  # each frame on the sheet


def dream(args: argparse.Namespace) -> None:
    from realtime.commands.evaluate import dream_clip
    from realtime.dream.dreamer import build_dreamer

    clip = motion_clip("walker", args.frames, SIZE, args.photo, args.direction, args.speed)
    picks = [min(args.frames - 1, int(round(float(s) * 30))) for s in args.at.split(",")]
    kept, network = {}, None
    for look in args.looks.split(","):
        params = look_params(look)
        dreamer = build_dreamer(
            params, DREAM_SIZE, torch.device("cpu"), "eager", None, 1, network, precision="fp32"
        )
        network = dreamer.network if network is None else network
        outputs = dream_clip(dreamer, clip.frames[: picks[-1] + 1], DREAM_SIZE, gain_at=lambda n: False)[0]
        kept[look] = np.stack([outputs[n] for n in picks])
    np.savez_compressed(args.out, **kept, picks=np.array(picks), meta=np.array(json.dumps(vars(args))))


def _label(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def sheet(args: argparse.Namespace) -> None:
    today, new = np.load(args.today), np.load(args.new)
    picks = [int(n) for n in new["picks"]]
    rows = []
    looks = [k for k in new.files if k not in ("picks", "meta")]
    for look in looks:
        cells = []
        for name, data in (("today", today), ("new", new)):
            for index, n in enumerate(picks):
                frame = cv2.resize(data[look][index], THUMB, interpolation=cv2.INTER_AREA)
                cells.append(_label(frame, f"{look} {name} {n / 30:.1f} s"))
            cells.append(np.full((THUMB[1], 8, 3), 255, np.uint8))
        rows.append(np.hstack(cells[:-1]))
    image = np.vstack([np.vstack([row, np.full((4, row.shape[1], 3), 255, np.uint8)]) for row in rows])
    cv2.imwrite(args.out, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 72])
    print(args.out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    dreaming = commands.add_parser("dream")
    dreaming.add_argument("out")
    dreaming.add_argument("--looks", default="default,subtle,eyes,fur,architecture,wild")
    dreaming.add_argument("--frames", type=int, default=60)
    dreaming.add_argument("--at", default="1,1.5,2")
    dreaming.add_argument("--photo", default="coffee")
    dreaming.add_argument("--direction", default="right")
    dreaming.add_argument("--speed", type=float, default=3.0)
    sheeting = commands.add_parser("sheet")
    sheeting.add_argument("today")
    sheeting.add_argument("new")
    sheeting.add_argument("out")
    args = parser.parse_args()
    torch.manual_seed(1)
    dream(args) if args.command == "dream" else sheet(args)


if __name__ == "__main__":
    main()

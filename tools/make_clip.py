"""Make short test clips from scikit-image photos: a pan, a zoom, a still scene, or a still scene with
an object moving across it. For tests, `dreamcam eval` and benchmarks.

    python tools/make_clip.py pan clip.mp4 [--frames 60] [--size 320x180] [--fps 30] [--speed 3]

Beside the clip goes its true motion, `clip.mp4.motion.json`: for every frame t ≥ 1 a 2x3 affine
matrix that maps a pixel (x, y) of frame t to where the same scene point was in frame t-1 (null for
the first frame, and for every frame of an `object` clip, whose motion is not one transform).
`dreamcam eval` reads it to measure the warping error against the motion that really happened.
"""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import skimage.data

from realtime.commands.evaluate import motion_path

KINDS = ("pan", "zoom", "object", "still")
PAN_DIRECTION = (3, 2)  # a diagonal pan: x and y pixels per frame at --speed 3
IDENTITY = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]


def _pan_step(speed: int) -> tuple[int, int]:
    """Whole pixels per frame (dx, dy) of the diagonal pan: no resampling, so the motion is exact."""
    dx, dy = PAN_DIRECTION
    return speed, max(0, round(speed * dy / dx))


def clip_frames(
    kind: str, frames: int, size: tuple[int, int], speed: int = 3
) -> tuple[list[np.ndarray], list[list[list[float]] | None]]:
    """RGB uint8 frames of `size` (width, height) and each frame's backward affine motion."""
    width, height = size
    photo = skimage.data.astronaut() if kind != "object" else skimage.data.coffee()
    dx, dy = _pan_step(speed)
    # big enough for the pan to never leave it, and at least twice the frame (the zoom crops from it)
    canvas_w = max(width * 2, width + dx * frames + 1)
    canvas_h = max(height * 2, height + dy * frames + 1)
    canvas = cv2.resize(photo, (canvas_w, canvas_h), interpolation=cv2.INTER_AREA)
    cat = cv2.resize(skimage.data.chelsea()[80:220, 120:320], (height // 3, height // 3))
    out, motion = [], []
    for n in range(frames):
        t = n / max(1, frames - 1)
        if kind == "pan":  # a steady diagonal camera pan across the photo, whole pixels per frame
            x0, y0 = n * dx, n * dy
            frame = canvas[y0 : y0 + height, x0 : x0 + width]
            motion.append([[1.0, 0.0, float(dx)], [0.0, 1.0, float(dy)]])
        elif kind == "zoom":  # a slow push-in on the centre
            scale = 1.0 + 0.5 * t
            w, h = int(width * 2 / scale), int(height * 2 / scale)
            x0, y0 = (width * 2 - w) // 2, (height * 2 - h) // 2
            frame = cv2.resize(
                canvas[y0 : y0 + h, x0 : x0 + w], (width, height), interpolation=cv2.INTER_AREA
            )
            previous = 1.0 + 0.5 * max(0, n - 1) / max(1, frames - 1)
            ratio = previous / scale  # frame t's pixel seen from frame t-1: closer to the centre
            cx, cy = (width - 1) / 2, (height - 1) / 2
            motion.append([[ratio, 0.0, cx * (1 - ratio)], [0.0, ratio, cy * (1 - ratio)]])
        else:  # a still background; "object" adds a cat's face gliding left to right
            frame = canvas[height // 2 : height // 2 + height, width // 2 : width // 2 + width].copy()
            motion.append(IDENTITY if kind == "still" else None)
            if kind == "object":
                x = int(t * (width - cat.shape[1]))
                y = (height - cat.shape[0]) // 2
                frame[y : y + cat.shape[0], x : x + cat.shape[1]] = cat
        out.append(np.ascontiguousarray(frame))
    if motion:
        motion[0] = None  # nothing before the first frame
    return out, motion


def write_clip(
    path: str,
    kind: str,
    frames: int = 60,
    size: tuple[int, int] = (320, 180),
    fps: float = 30.0,
    speed: int = 3,
) -> str:
    """Write the clip and its true motion beside it (`motion_path`); returns `path`."""
    images, motion = clip_frames(kind, frames, size, speed)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for frame in images:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    record = {"kind": kind, "size": list(size), "fps": fps, "backward_affine": motion}
    motion_path(path).write_text(json.dumps(record))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("output")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--speed", type=int, default=3, help="pan: x pixels per frame (y: two thirds)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    print(write_clip(args.output, args.kind, args.frames, (width, height), args.fps, args.speed))


if __name__ == "__main__":
    main()

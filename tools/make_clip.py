"""Make short test clips from scikit-image photos: a pan, a zoom, or a still scene with an object
moving across it. For tests, `dreamcam eval` and benchmarks.

    python tools/make_clip.py pan clip.mp4 [--frames 60] [--size 320x180] [--fps 30]
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import skimage.data

KINDS = ("pan", "zoom", "object", "still")


def clip_frames(kind: str, frames: int, size: tuple[int, int]) -> list[np.ndarray]:
    """RGB uint8 frames of `size` (width, height)."""
    width, height = size
    photo = skimage.data.astronaut() if kind != "object" else skimage.data.coffee()
    canvas = cv2.resize(photo, (width * 2, height * 2), interpolation=cv2.INTER_AREA)
    cat = cv2.resize(skimage.data.chelsea()[80:220, 120:320], (height // 3, height // 3))
    out = []
    for n in range(frames):
        t = n / max(1, frames - 1)
        if kind == "pan":  # a steady camera pan across the photo
            x0 = int(t * width * 0.5)
            frame = canvas[height // 2 : height // 2 + height, x0 : x0 + width]
        elif kind == "zoom":  # a slow push-in on the centre
            scale = 1.0 + 0.5 * t
            w, h = int(width * 2 / scale), int(height * 2 / scale)
            x0, y0 = (width * 2 - w) // 2, (height * 2 - h) // 2
            frame = cv2.resize(
                canvas[y0 : y0 + h, x0 : x0 + w], (width, height), interpolation=cv2.INTER_AREA
            )
        else:  # a still background; "object" adds a cat's face gliding left to right
            frame = canvas[height // 2 : height // 2 + height, width // 2 : width // 2 + width].copy()
            if kind == "object":
                x = int(t * (width - cat.shape[1]))
                y = (height - cat.shape[0]) // 2
                frame[y : y + cat.shape[0], x : x + cat.shape[1]] = cat
        out.append(np.ascontiguousarray(frame))
    return out


def write_clip(
    path: str, kind: str, frames: int = 60, size: tuple[int, int] = (320, 180), fps: float = 30.0
) -> str:
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for frame in clip_frames(kind, frames, size):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
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
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    print(write_clip(args.output, args.kind, args.frames, (width, height), args.fps))


if __name__ == "__main__":
    main()

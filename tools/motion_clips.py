"""Clips whose motion is per pixel, not one camera transform, with the truth recorded (issue 24).

    python tools/motion_clips.py KIND clip.mkv [--frames 150] [--size 480x270] [--photo coffee]
        [--direction right] [--speed 3]

Kinds:
- `walker`: a cut-out (a cat's face, an elliptical hard mask) crossing a still photo at --speed px
  a frame in --direction (right, left, down, up, downright, upleft, upright, downleft), entering at
  one edge: the booth's visitor walking past;
- `deform`: a still photo under a slow travelling non-rigid deformation (amplitude DEFORM_PX, at
  most DEFORM_SPEED px a frame): a face turning, breathing, cloth;
- `grainflicker`: a still photo with webcam grain (Gaussian σ 3 grey levels) and a per-frame
  exposure flicker (uniform ±2 %): a cheap webcam under fluorescent light; `grain` and `flicker`
  alone; `background`: the walker's photo with nothing crossing it (the clean dream's reference).

Beside the clip goes `clip.mkv.motion.npz` (`truth_path`): for every frame t ≥ 1 the backward flow
(each pixel of frame t -> where the same scene point was in frame t-1; stored at full size or
smaller, scaled up on reading), `valid` (seen in both frames: not uncovered, not from outside) and,
for a walker, `mask` (the cut-out's pixels). `dreamcam eval` and tools/boil_table.py read it
(realtime.commands.trail) and report boil on the object and the background, trail streakiness and
trail size. Frames come as a list in memory too (`motion_clip`): measure them before any encoder.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import cv2
import numpy as np
import skimage.data

from realtime.commands.trail import Truth, background_path, write_truth
from tools.make_clip import load_photo, write_frames

KINDS = ("walker", "deform", "grainflicker", "grain", "flicker", "still", "background")
DIRECTIONS = {
    "right": (1.0, 0.0),
    "left": (-1.0, 0.0),
    "down": (0.0, 1.0),
    "up": (0.0, -1.0),
    "downright": (0.7071, 0.7071),
    "upleft": (-0.7071, -0.7071),
    "upright": (0.7071, -0.7071),
    "downleft": (-0.7071, 0.7071),
}
CUTOUT_SHARE = 0.4  # the cut-out's height over the frame's (a face close to the camera)
DEFORM_PX, DEFORM_SPEED, DEFORM_WAVELENGTH = 6.0, 0.6, 0.6  # px, px a frame, share of the frame's width
GRAIN_SIGMA, FLICKER = 3.0, 0.02


@dataclass
class MotionClip:
    frames: list[np.ndarray]  # HxWx3 uint8 RGB
    truth: Truth
    meta: dict = field(default_factory=dict)


def _backdrop(photo: str, size: tuple[int, int]) -> np.ndarray:
    """The photo covering `size` (width, height), kept in proportion, centre-cropped."""
    image = load_photo(photo)
    width, height = size
    cover = max(width / image.shape[1], height / image.shape[0])
    scaled = cv2.resize(
        image, None, fx=cover, fy=cover, interpolation=cv2.INTER_AREA if cover < 1 else cv2.INTER_CUBIC
    )
    y0, x0 = (scaled.shape[0] - height) // 2, (scaled.shape[1] - width) // 2
    return np.ascontiguousarray(scaled[y0 : y0 + height, x0 : x0 + width])


def cutout(height: int) -> tuple[np.ndarray, np.ndarray]:
    """The cat's face (chelsea) at `height` px tall and its elliptical hard mask (bool)."""
    face = skimage.data.chelsea()[60:240, 110:330]
    width = int(round(height * face.shape[1] / face.shape[0]))
    face = cv2.resize(face, (width, height), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:height, 0:width]
    mask = ((xx - (width - 1) / 2) / (width / 2)) ** 2 + ((yy - (height - 1) / 2) / (height / 2)) ** 2 <= 1.0
    return face, mask


def walker(
    photo: str, direction: str, speed: float, frames: int, size: tuple[int, int], background: bool = False
) -> MotionClip:
    """The cut-out entering at one edge and crossing in `direction` at `speed` px a frame (whole
    pixels each frame, rounded from an exact path, so the truth is exact)."""
    width, height = size
    base = _backdrop(photo, size)
    face, shape = cutout(max(8, int(height * CUTOUT_SHARE)))
    fh, fw = shape.shape
    dx, dy = DIRECTIONS[direction]
    # the path: starts half outside the frame on the side it comes from, passes the centre
    cx, cy = (width - fw) / 2, (height - fh) / 2
    start_x = cx - dx * (cx + fw / 2)
    start_y = cy - dy * (cy + fh / 2)
    images, backward, valid, masks = [], [], [], []
    previous: tuple[int, int] | None = None
    previous_mask: np.ndarray | None = None
    for n in range(frames):
        x, y = int(round(start_x + dx * speed * n)), int(round(start_y + dy * speed * n))
        frame, mask = base.copy(), np.zeros((height, width), bool)
        if not background:
            _paste(frame, mask, face, shape, x, y)
        images.append(frame)
        masks.append(mask)
        flow = np.zeros((height, width, 2), np.float32)
        seen = np.ones((height, width), bool)
        if previous is not None and not background:
            step = (previous[0] - x, previous[1] - y)  # object pixel now -> where it was
            flow[mask] = step
            grid_x, grid_y = np.meshgrid(np.arange(width), np.arange(height))
            came_from_x, came_from_y = grid_x + step[0], grid_y + step[1]
            inside = (came_from_x >= 0) & (came_from_x < width) & (came_from_y >= 0) & (came_from_y < height)
            seen = np.where(mask, inside, ~previous_mask)  # background just uncovered: not seen before
        backward.append(flow)
        valid.append(seen)
        previous, previous_mask = (x, y), mask
    truth = Truth(np.stack(backward), np.stack(valid), np.stack(masks), (dx, dy))
    return MotionClip(
        images, truth, {"kind": "walker", "photo": photo, "direction": direction, "speed": speed}
    )


def _paste(frame: np.ndarray, mask: np.ndarray, face: np.ndarray, shape: np.ndarray, x: int, y: int) -> None:
    """The cut-out's masked pixels onto `frame` with its top-left at (x, y), clipped to the frame."""
    height, width = mask.shape
    fh, fw = shape.shape
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + fw), min(height, y + fh)
    if x0 >= x1 or y0 >= y1:
        return
    part = shape[y0 - y : y1 - y, x0 - x : x1 - x]
    frame[y0:y1, x0:x1][part] = face[y0 - y : y1 - y, x0 - x : x1 - x][part]
    mask[y0:y1, x0:x1] = part


def _displacement(t: float, grid: np.ndarray, width: int) -> np.ndarray:
    """HxWx2: where the deformation shows the photo's point for each pixel at time t (offsets):
    two travelling waves, one per axis, crossing the frame at DEFORM_SPEED px a frame at most."""
    wavelength = DEFORM_WAVELENGTH * width
    k = 2 * np.pi / wavelength
    omega = DEFORM_SPEED / DEFORM_PX  # peak velocity = amplitude · ω
    x, y = grid[..., 0], grid[..., 1]
    along_x = DEFORM_PX * np.sin(k * (0.8 * x + 0.6 * y) - omega * t)
    along_y = DEFORM_PX * np.sin(k * (-0.5 * x + 0.87 * y) - omega * t + 1.0)
    return np.dstack([along_x, along_y]).astype(np.float32)


TRUTH_SCALE = 2  # the deformation's smooth flow is stored at half size (scaled up on reading)


def deform(photo: str, frames: int, size: tuple[int, int]) -> MotionClip:
    """A still photo seen through a slow travelling deformation; the backward flow solved by a
    fixed-point iteration (x' + D(t-1, x') = x + D(t, x))."""
    width, height = size
    margin = int(DEFORM_PX) + 4
    base = _backdrop(photo, (width + 2 * margin, height + 2 * margin))
    grid = np.dstack(np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)))
    images, backward = [], []
    for n in range(frames):
        where = grid + _displacement(n, grid, width) + margin
        images.append(cv2.remap(base, where, None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT))
        flow = np.zeros((height, width, 2), np.float32)
        if n:
            point = grid + _displacement(n, grid, width)
            source = point - _displacement(n - 1, grid, width)
            for _ in range(6):
                source = point - _displacement(n - 1, source, width)
            flow = source - grid
        small = cv2.resize(flow, (width // TRUTH_SCALE, height // TRUTH_SCALE), interpolation=cv2.INTER_AREA)
        backward.append(small / TRUTH_SCALE)
    valid = np.ones((frames, height, width), bool)
    truth = Truth(np.stack(backward), valid, None, None)
    return MotionClip(images, truth, {"kind": "deform", "photo": photo})


def noisy_still(
    photo: str, frames: int, size: tuple[int, int], grain: bool, flicker: bool, seed: int = 0
) -> MotionClip:
    """A still photo with grain and/or a per-frame exposure flicker (random, uniform ±FLICKER)."""
    width, height = size
    base = _backdrop(photo, size).astype(np.float32)
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(frames):
        frame = base * (1.0 + (rng.uniform(-FLICKER, FLICKER) if flicker else 0.0))
        if grain:
            frame = frame + rng.normal(0.0, GRAIN_SIGMA, frame.shape)
        images.append(np.clip(frame.round(), 0, 255).astype(np.uint8))
    truth = Truth(np.zeros((frames, 1, 1, 2), np.float32), np.ones((frames, height, width), bool), None, None)
    kind = "grainflicker" if grain and flicker else "grain" if grain else "flicker" if flicker else "still"
    return MotionClip(images, truth, {"kind": kind, "photo": photo})


def motion_clip(
    kind: str,
    frames: int = 150,
    size: tuple[int, int] = (480, 270),
    photo: str = "coffee",
    direction: str = "right",
    speed: float = 3.0,
) -> MotionClip:
    if kind not in KINDS:
        raise ValueError(f"kind '{kind}' is not one of: {', '.join(KINDS)}")
    if kind in ("walker", "background"):
        if direction not in DIRECTIONS:
            raise ValueError(f"direction '{direction}' is not one of: {', '.join(DIRECTIONS)}")
        return walker(photo, direction, speed, frames, size, background=kind == "background")
    if kind == "deform":
        return deform(photo, frames, size)
    return noisy_still(photo, frames, size, grain="grain" in kind, flicker="flicker" in kind)


def write_motion_clip(path: str, clip: MotionClip, fps: float = 30.0) -> str:
    """The frames lossless (FFV1 in .mkv/.avi) and the truth beside them (`truth_path`); for a
    walker also its background alone (`background_path`: the trail's clean reference)."""
    write_frames(path, clip.frames, fps)
    write_truth(path, clip.truth, clip.meta)
    if clip.meta.get("kind") == "walker":
        height, width = clip.frames[0].shape[:2]
        background = motion_clip("background", len(clip.frames), (width, height), clip.meta["photo"])
        write_frames(str(background_path(path)), background.frames, fps)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("output")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--size", default="480x270")
    parser.add_argument("--photo", default="coffee")
    parser.add_argument("--direction", default="right", choices=tuple(DIRECTIONS))
    parser.add_argument("--speed", type=float, default=3.0)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    clip = motion_clip(args.kind, args.frames, (width, height), args.photo, args.direction, args.speed)
    print(write_motion_clip(args.output, clip))


if __name__ == "__main__":
    main()

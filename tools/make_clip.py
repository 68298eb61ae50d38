"""Make short test clips from scikit-image photos seen through a moving virtual camera, with the
camera's true motion recorded. For tests, `dreamcam eval` and benchmarks (tools/boil_table.py).

    python tools/make_clip.py KIND clip.mkv [--frames 150] [--size 480x270] [--photo chelsea] [--speed 3.5]

Kinds: `pan` (whole pixels a frame, a crop: no resampling), `zoom` (a push-in), `object` (a cat's
face gliding over a still photo), `still`; and the camera moves a webcam sees, resampled with
sub-pixel accuracy from a large copy of the photo:
- `subpan`: --speed px right and two thirds of it down a frame at output scale (default 3.5 x 2.33:
  fractions of a pixel at any dream size);
- `zoomrot`: a push-in of 0.4 % and a turn of 0.25° a frame;
- `shake`: a hand-held camera, a random walk of ~1 px a frame (and a little roll) held near its start;
- `grain`: a still camera with webcam grain (Gaussian, σ 3 grey levels a frame per pixel) and a
  slow exposure breathing (±2 %).
A `.mkv` or `.avi` name is written lossless (FFV1); `.mp4` with the mp4v codec (lossy).

Beside the clip goes its true motion, `clip.mkv.motion.json`: for every frame t ≥ 1 a 2x3 affine
matrix that maps a pixel (x, y) of frame t to where the same scene point was in frame t-1 (null for
the first frame, and for every frame of an `object` clip, whose motion is not one transform).
`dreamcam eval` reads it to measure the warping error and the boil against the motion that really
happened, and the dream's optical flow against it.
"""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import skimage.data

from realtime.commands.evaluate import motion_path

KINDS = ("pan", "zoom", "object", "still", "subpan", "zoomrot", "shake", "grain")
CAMERA_KINDS = ("subpan", "zoomrot", "shake", "grain")  # resampled through a virtual camera pose
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "cat", "camera")
ZOOM_PER_FRAME, TURN_DEG_PER_FRAME = 1.004, 0.25  # zoomrot: 0.4 % larger and 0.25° turned a frame
SHAKE_STEP_PX, SHAKE_RETURN = 1.0, 0.05  # shake: random-walk step (px, per axis) and pull to the start
SHAKE_ROLL_DEG = 0.05  # shake: the random walk's roll step
GRAIN_SIGMA, BREATHING = 3.0, 0.02  # grain: noise σ (grey levels) and exposure swing (fraction)
PAN_DIRECTION = (3, 2)  # a diagonal pan: x and y pixels per frame at --speed 3
IDENTITY = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]


def _pan_step(speed: int) -> tuple[int, int]:
    """Whole pixels per frame (dx, dy) of the diagonal pan: no resampling, so the motion is exact."""
    dx, dy = PAN_DIRECTION
    return speed, max(0, round(speed * dy / dx))


def load_photo(name: str) -> np.ndarray:
    """A scikit-image bundled photo as HxWx3 uint8 RGB (grey ones made RGB)."""
    if name not in PHOTOS:
        raise ValueError(f"photo '{name}' is not one of: {', '.join(PHOTOS)}")
    image = getattr(skimage.data, name)()
    return np.ascontiguousarray(np.dstack([image] * 3) if image.ndim == 2 else image[..., :3])


def _pose(scale: float, angle_deg: float, centre: tuple[float, float], size: tuple[int, int]) -> np.ndarray:
    """3x3: an output pixel -> the canvas point the camera sees there (the output's centre sees
    `centre`; `scale` canvas pixels per output pixel, turned by `angle_deg`)."""
    a = np.deg2rad(angle_deg)
    rotation = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    middle = np.array([(size[0] - 1) / 2, (size[1] - 1) / 2])
    pose = np.eye(3)
    pose[:2, :2] = rotation
    pose[:2, 2] = np.asarray(centre) - rotation @ middle
    return pose


def _camera_poses(kind: str, frames: int, size: tuple[int, int], speed: float, rng) -> list[np.ndarray]:
    """Each frame's pose (`_pose`) in output-pixel units of a canvas centred on (0, 0)."""
    poses, x, y, roll = [], 0.0, 0.0, 0.0
    step_x, step_y = speed, speed * PAN_DIRECTION[1] / PAN_DIRECTION[0]
    for n in range(frames):
        if kind == "subpan":
            poses.append(_pose(1.0, 0.0, (n * step_x, n * step_y), size))
        elif kind == "zoomrot":
            poses.append(_pose(ZOOM_PER_FRAME**-n, n * TURN_DEG_PER_FRAME, (0.0, 0.0), size))
        elif kind == "shake":
            if n:
                x += rng.normal(0.0, SHAKE_STEP_PX) - SHAKE_RETURN * x
                y += rng.normal(0.0, SHAKE_STEP_PX) - SHAKE_RETURN * y
                roll += rng.normal(0.0, SHAKE_ROLL_DEG) - SHAKE_RETURN * roll
            poses.append(_pose(1.0, roll, (x, y), size))
        else:  # grain: a still camera
            poses.append(_pose(1.0, 0.0, (0.0, 0.0), size))
    return poses


def camera_frames(
    kind: str, frames: int, size: tuple[int, int], speed: float, photo: str, seed: int = 0
) -> tuple[list[np.ndarray], list[list[list[float]] | None]]:
    """`clip_frames` for the CAMERA_KINDS: each frame resampled (bicubic) from the photo through a
    virtual camera pose; the backward motion of frame t is pose(t-1)⁻¹ · pose(t)."""
    rng = np.random.default_rng(seed)
    poses = _camera_poses(kind, frames, size, speed, rng)
    corners = np.array([[0, 0, 1], [size[0] - 1, 0, 1], [0, size[1] - 1, 1], [size[0] - 1, size[1] - 1, 1]]).T
    seen = np.concatenate([(p @ corners)[:2] for p in poses] or [np.zeros((2, 1))], axis=1)
    low, high = seen.min(1) - 4, seen.max(1) + 4  # every point any frame sees, and a margin
    image = load_photo(photo)
    # the photo, kept in proportion, covers the region the camera travels (upscaled if it must)
    cover = max((high[0] - low[0]) / image.shape[1], (high[1] - low[1]) / image.shape[0])
    canvas = cv2.resize(
        image, None, fx=cover, fy=cover, interpolation=cv2.INTER_AREA if cover < 1 else cv2.INTER_CUBIC
    )
    # canvas pixel = output-unit point - low + the centring offset
    offset = (np.array([canvas.shape[1], canvas.shape[0]]) - (high - low)) / 2 - low
    out, motion = [], []
    for n, pose in enumerate(poses):
        to_canvas = pose.copy()
        to_canvas[:2, 2] += offset
        frame = cv2.warpAffine(
            canvas,
            to_canvas[:2],
            size,
            flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )
        if kind == "grain":
            exposure = 1.0 + BREATHING * np.sin(2 * np.pi * n / 90.0)
            noisy = frame.astype(np.float32) * exposure + rng.normal(0.0, GRAIN_SIGMA, frame.shape)
            frame = np.clip(noisy.round(), 0, 255).astype(np.uint8)
        out.append(np.ascontiguousarray(frame))
        backward = np.linalg.inv(poses[n - 1]) @ pose if n else None
        motion.append(None if backward is None else backward[:2].tolist())
    return out, motion


def clip_frames(
    kind: str, frames: int, size: tuple[int, int], speed: float = 3, photo: str | None = None
) -> tuple[list[np.ndarray], list[list[list[float]] | None]]:
    """RGB uint8 frames of `size` (width, height) and each frame's backward affine motion."""
    if kind in CAMERA_KINDS:
        return camera_frames(kind, frames, size, speed, photo or "astronaut")
    speed = int(round(speed))
    width, height = size
    photo_image = load_photo(photo or ("astronaut" if kind != "object" else "coffee"))
    dx, dy = _pan_step(speed)
    # big enough for the pan to never leave it, and at least twice the frame (the zoom crops from it)
    canvas_w = max(width * 2, width + dx * frames + 1)
    canvas_h = max(height * 2, height + dy * frames + 1)
    canvas = cv2.resize(photo_image, (canvas_w, canvas_h), interpolation=cv2.INTER_AREA)
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
    speed: float = 3,
    photo: str | None = None,
) -> str:
    """Write the clip and its true motion beside it (`motion_path`); returns `path`. A `.mkv` or
    `.avi` name is written lossless (FFV1), anything else with mp4v."""
    images, motion = clip_frames(kind, frames, size, speed, photo)
    lossless = str(path).lower().endswith((".mkv", ".avi"))
    write_frames(path, images, fps, "FFV1" if lossless else "mp4v", size)
    record = {"kind": kind, "photo": photo, "size": list(size), "fps": fps, "backward_affine": motion}
    motion_path(path).write_text(json.dumps(record))
    return path


def write_frames(
    path: str, images: list[np.ndarray], fps: float, codec: str = "FFV1", size: tuple[int, int] | None = None
) -> str:
    """RGB frames into a video with this FourCC (FFV1: lossless, in .mkv or .avi); `size` (width,
    height) defaults to the first frame's (an empty clip must name it)."""
    if size is None:
        size = (images[0].shape[1], images[0].shape[0])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, size)
    for frame in images:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("output")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument(
        "--speed", type=float, default=None, help="pan/subpan: x pixels a frame, y two thirds (3; subpan 3.5)"
    )
    parser.add_argument("--photo", default=None, choices=PHOTOS, help="the scikit-image photo to film")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    speed = args.speed if args.speed is not None else 3.5 if args.kind == "subpan" else 3
    print(write_clip(args.output, args.kind, args.frames, (width, height), args.fps, speed, args.photo))


if __name__ == "__main__":
    main()

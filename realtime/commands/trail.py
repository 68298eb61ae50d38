"""Per-pixel truth beside a clip and what it measures: boil on a moving object and on the background,
and the trail a moving object leaves in the dream behind it (issue 24).

A clip made by tools/motion_clips.py carries `clip.mkv.motion.npz`: for every frame its backward
flow (each pixel -> where it was a frame before), `valid` (seen in both frames) and, where
something moves over a still background, `mask` (the moving object's pixels). From those:
- boil_object, boil_background: evaluate.boil restricted to the object's pixels, and to the
  background away from the object (not within TRAIL_MARGIN px of it, not uncovered in the last
  RECENT_S seconds): the dream on a moving person, and on the scene it walks in front of;
- trail streakiness, per window of time since a background pixel was last covered
  (TRAIL_WINDOWS): the residual's (output − input, grey) mean absolute gradient across the object's
  motion over its mean gradient along it. A DeepDream texture scores about 1.0; dream dragged by the
  object into the pixels it uncovers is smeared along the motion and scores far more;
- trail size: the residual's mean size there over a clean dream's (the same photo dreamt with
  nothing crossing it) at the same pixels and frames.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realtime.errors import SourceError

# seconds since a background pixel was uncovered, [from, to): 0.5 s on it must be the background's own
TRAIL_WINDOWS = ((0.5, 1.0), (1.0, 1.6), (1.6, 2.3), (2.3, 3.6))
RECENT_S = 1.0  # background uncovered more recently than this is the trail's, not the boil's
TRAIL_MARGIN = 3  # px around the object left out of the background's figures (its edge's gradient)


@dataclass
class Truth:
    """Per-pixel motion of a clip, frame t from frame t-1 (frame 0's entries are unused)."""

    backward: np.ndarray  # Txhxwx2 float32 offsets; h, w: the clip's size or a fraction of it (scaled)
    valid: np.ndarray  # TxHxW bool: seen in both frames
    mask: np.ndarray | None  # TxHxW bool: the moving object's pixels, or None (no object)
    direction: tuple[float, float] | None  # the object's unit motion (x, y), or None

    def flow(self, t: int) -> np.ndarray:
        """HxWx2 backward flow of frame t at the clip's size."""
        height, width = self.valid.shape[1:]
        flow = self.backward[t].astype(np.float32)
        if flow.shape[:2] == (height, width):
            return flow
        if flow.shape[:2] == (1, 1):
            return np.broadcast_to(flow, (height, width, 2)).copy()
        scale = width / flow.shape[1]
        return cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) * np.float32(scale)


def truth_path(clip_path: str | Path) -> Path:
    """Where a clip's per-pixel truth is kept: `.motion.npz` appended."""
    return Path(f"{clip_path}.motion.npz")


def background_path(clip_path: str | Path) -> Path:
    """Where a walker clip's background alone is kept (the clean dream's clip): `.background.mkv`."""
    return Path(f"{clip_path}.background.mkv")


def write_truth(clip_path: str | Path, truth: Truth, meta: dict | None = None) -> Path:
    path = truth_path(clip_path)
    arrays = {
        "backward": truth.backward.astype(np.float16),
        "valid": np.packbits(truth.valid, axis=-1),
        "shape": np.array(truth.valid.shape),
        "meta": np.array(json.dumps(meta or {})),
    }
    if truth.mask is not None:
        arrays["mask"] = np.packbits(truth.mask, axis=-1)
    if truth.direction is not None:
        arrays["direction"] = np.array(truth.direction, np.float32)
    with open(path, "wb") as handle:  # np.savez_compressed would append .npz to a str path
        np.savez_compressed(handle, **arrays)
    return path


def read_truth(clip_path: str | Path, frames: int, size: tuple[int, int]) -> Truth | None:
    """The per-pixel truth beside a clip, or None (none there, another size, too few frames)."""
    path = truth_path(clip_path)
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            shape = tuple(int(v) for v in data["shape"])
            valid = np.unpackbits(data["valid"], axis=-1, count=shape[2]).astype(bool)
            mask = (
                np.unpackbits(data["mask"], axis=-1, count=shape[2]).astype(bool) if "mask" in data else None
            )
            direction = tuple(float(v) for v in data["direction"]) if "direction" in data else None
            backward = data["backward"]
    except (OSError, ValueError, KeyError) as exc:
        raise SourceError(
            f"motion file '{path}' is unreadable ({exc}); delete it or remake the clip"
        ) from None
    if (shape[2], shape[1]) != tuple(size) or shape[0] < frames:
        return None
    cut = slice(0, frames)
    return Truth(backward[cut], valid[cut], None if mask is None else mask[cut], direction)


def covered_since(mask: np.ndarray) -> np.ndarray:
    """TxHxW float32: frames since each pixel was last under the object (0 while under it,
    inf where it never was)."""
    since = np.full(mask.shape, np.inf, np.float32)
    last = np.full(mask.shape[1:], -np.inf, np.float32)
    for t in range(len(mask)):
        last[mask[t]] = t
        since[t] = t - last
    return since


def _grey_residual(output: np.ndarray, image: np.ndarray) -> np.ndarray:
    return (output.astype(np.float32) - image.astype(np.float32)).mean(-1)


def _gradients(residual: np.ndarray, direction: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """|gradient| across and along a unit direction (central differences)."""
    gx = cv2.Sobel(residual, cv2.CV_32F, 1, 0, ksize=1)
    gy = cv2.Sobel(residual, cv2.CV_32F, 0, 1, ksize=1)
    dx, dy = direction
    return np.abs(-gx * dy + gy * dx), np.abs(gx * dx + gy * dy)


def trail(
    inputs: Sequence[np.ndarray],
    outputs: Sequence[np.ndarray],
    truth: Truth,
    fps: float,
    clean: Sequence[np.ndarray] | None = None,
    clean_inputs: Sequence[np.ndarray] | None = None,
) -> dict:
    """Per TRAIL_WINDOWS window: `trail_streak_A_B` (across over along, module docstring) and, with
    a clean dream of the background (`clean` outputs of `clean_inputs`), `trail_size_A_B` and
    `clean_streak_A_B` on the same pixels; `trail_streak` (the worst window) and `trail_size` (the
    smallest). Empty without an object."""
    if truth.mask is None or truth.direction is None:
        return {}
    since = covered_since(truth.mask)
    sums = {window: np.zeros(5) for window in TRAIL_WINDOWS}  # across, along, size, clean size, pixels
    clean_sums = {window: np.zeros(2) for window in TRAIL_WINDOWS}
    near = np.ones((2 * TRAIL_MARGIN + 1,) * 2, np.uint8)
    for t in range(1, len(inputs)):
        residual = _grey_residual(outputs[t], inputs[t])
        across, along = _gradients(residual, truth.direction)
        away = ~cv2.dilate(truth.mask[t].astype(np.uint8), near).astype(bool)
        clean_residual = None if clean is None else _grey_residual(clean[t], clean_inputs[t])
        for window in TRAIL_WINDOWS:
            region = away & (since[t] >= window[0] * fps) & (since[t] < window[1] * fps)
            if not region.any():
                continue
            sums[window] += (
                across[region].sum(),
                along[region].sum(),
                np.abs(residual[region]).sum(),
                0.0 if clean_residual is None else np.abs(clean_residual[region]).sum(),
                region.sum(),
            )
            if clean_residual is not None:
                clean_across, clean_along = _gradients(clean_residual, truth.direction)
                clean_sums[window] += (clean_across[region].sum(), clean_along[region].sum())
    result: dict = {}
    for window, (across, along, size, clean_size, pixels) in sums.items():
        if pixels == 0 or along == 0:
            continue
        name = f"{window[0]:g}_{window[1]:g}s".replace(".", "")
        result[f"trail_streak_{name}"] = round(float(across / along), 3)
        if clean is not None and clean_size > 0:
            result[f"trail_size_{name}"] = round(float(size / clean_size), 3)
            result[f"clean_streak_{name}"] = round(float(clean_sums[window][0] / clean_sums[window][1]), 3)
    streaks = [v for k, v in result.items() if k.startswith("trail_streak_")]
    if streaks:
        result["trail_streak"] = max(streaks)
    sizes = [v for k, v in result.items() if k.startswith("trail_size_")]
    if sizes:
        result["trail_size"] = min(sizes)
    return result


def region_motions(truth: Truth, fps: float):
    """(object, background) lists of evaluate.Motion per frame pair: the truth's flow with `valid`
    narrowed to the object's pixels, and to the background away from it and from its recent trail
    (None: no object, the whole frame is one region)."""
    from realtime.commands.evaluate import Motion

    if truth.mask is None:
        return None
    since = covered_since(truth.mask)
    near = np.ones((2 * TRAIL_MARGIN + 1,) * 2, np.uint8)
    objects, backgrounds = [], []
    for t in range(1, len(truth.valid)):
        flow = truth.flow(t)
        away = ~cv2.dilate(truth.mask[t].astype(np.uint8), near).astype(bool) & (since[t] >= RECENT_S * fps)
        objects.append(Motion(flow, truth.valid[t] & truth.mask[t]))
        backgrounds.append(Motion(flow, truth.valid[t] & away))
    return objects, backgrounds


def motions(truth: Truth):
    """evaluate.Motion per frame pair (frame t from t-1) over every pixel seen in both."""
    from realtime.commands.evaluate import Motion

    return [Motion(truth.flow(t), truth.valid[t]) for t in range(1, len(truth.valid))]

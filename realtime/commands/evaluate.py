"""`dreamcam eval`: how good is a dream over time? Quality figures for a clip, side by side.

For each warm-start mode (flow, residual, and off = the cold start per frame, for reference),
the clip is dreamed frame by frame at dream size and measured:
- objective gain: the target layer's objective on the dreamed frame over the plain frame's;
- flicker ratio: mean |out_t − out_t−1| over the same on the input (1 = no added flicker);
- for flow: how well the carried residual predicts the next one, warped and unwarped (error
  between residual_t and residual_t−1 moved along the flow, and not moved);
- still-scene depth: the gain after 10 frames of the first frame, against a 10-step cold dream.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch

from realtime.commands.render import video_frames
from realtime.dream import kernel
from realtime.dream.dreamer import FrameDreamer
from realtime.dream.flow import FlowEstimator, to_grey, warp_residual
from realtime.dream.frames import residual_array
from realtime.params import DreamParams

MODES = ("flow", "residual", "off")
STILL_FRAMES = 10


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float() / 255.0


def evaluate(
    path: str,
    make_dreamer: Callable[[DreamParams], FrameDreamer],
    params: DreamParams,
    dream_size: tuple[int, int],
    max_frames: int | None = None,
) -> dict:
    frames_iter, fps, _ = video_frames(path)
    frames = []
    for image in frames_iter:
        frames.append(cv2.resize(image, dream_size, interpolation=cv2.INTER_AREA))
        if max_frames and len(frames) >= max_frames:
            break
    result: dict = {"clip": path, "frames": len(frames), "dream_size": f"{dream_size[0]}x{dream_size[1]}"}
    input_change = _mean_change(frames)
    for mode in MODES:
        dreamer = make_dreamer(params.replace(warm_start=mode))
        outputs, residuals, gains = [], [], []
        for image in frames:
            residual = residual_array(dreamer.residual(image))
            output = np.clip(image + residual, 0, 255).astype(np.uint8)
            outputs.append(output)
            residuals.append(residual)
            gains.append(
                dreamer.backend.objective_value(_tensor(output))
                / dreamer.backend.objective_value(_tensor(image))
            )
        result[mode] = {
            "objective_gain": round(float(np.mean(gains)), 3),
            "flicker_ratio": round(_mean_change(outputs) / input_change, 3) if input_change else None,
        }
        if mode == "flow":
            result[mode].update(_residual_prediction(frames, residuals))
    result["still"] = _still_depth(frames[0], make_dreamer, params)
    return result


def _mean_change(frames: list[np.ndarray]) -> float:
    if len(frames) < 2:
        return 0.0
    return float(
        np.mean([np.abs(b.astype(np.float32) - a).mean() for a, b in zip(frames, frames[1:], strict=False)])
    )


def _residual_prediction(frames: list[np.ndarray], residuals: list[np.ndarray]) -> dict:
    """Mean |r_t − warp(r_t−1)| and |r_t − r_t−1|: does moving the old dream with the scene help?"""
    estimator = FlowEstimator()
    warped_errors, plain_errors = [], []
    for t in range(1, len(frames)):
        field = estimator.estimate(to_grey(_tensor(frames[t - 1])), to_grey(_tensor(frames[t])))
        previous = torch.from_numpy(residuals[t - 1]).permute(2, 0, 1).unsqueeze(0)
        warped = warp_residual(previous, field)[0].permute(1, 2, 0).numpy()
        warped_errors.append(np.abs(residuals[t] - warped).mean())
        plain_errors.append(np.abs(residuals[t] - residuals[t - 1]).mean())
    return {
        "residual_error_warped": round(float(np.mean(warped_errors)), 3) if warped_errors else None,
        "residual_error_unwarped": round(float(np.mean(plain_errors)), 3) if plain_errors else None,
    }


def _still_depth(
    image: np.ndarray, make_dreamer: Callable[[DreamParams], FrameDreamer], params: DreamParams
) -> dict:
    """Gain after STILL_FRAMES live frames of one still picture vs. a STILL_FRAMES-step cold dream."""
    live = make_dreamer(params.replace(warm_start="flow"))
    for _ in range(STILL_FRAMES):
        residual = residual_array(live.residual(image))
    plain = _tensor(image)
    live_gain = live.backend.objective_value(_tensor(np.clip(image + residual, 0, 255).astype(np.uint8)))
    cold = make_dreamer(params.replace(warm_start="off"))
    cold_dream = kernel.dream(plain, cold.backend.run, STILL_FRAMES)
    base = cold.backend.objective_value(plain)
    cold_gain = cold.backend.objective_value(cold_dream)
    return {
        "frames": STILL_FRAMES,
        "warm_gain": round(live_gain / base, 3),
        "cold_gain_10_steps": round(cold_gain / base, 3),
        "warm_vs_cold": round((live_gain / base) / (cold_gain / base), 3),
    }

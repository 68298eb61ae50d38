"""`dreamcam bench`: the live loop on the synthetic scene, no window, timed; one JSON object.

Warm-up frames are dropped before timing. `--compare-cold` runs the classic cold-start loop
(3 octaves x 10 steps per frame, from scratch) on the same frames in the same run, so the
speed-up of warm-started few-step dreaming is measured side by side.
"""

from __future__ import annotations

import time

import torch

from models.onnx_export import print_progress
from realtime import kernel
from realtime.control import ShowState
from realtime.dreamer import FrameDreamer
from realtime.params import DreamParams
from realtime.pipeline import Pipeline
from realtime.sources import open_source

WARMUP_FRAMES = 3
COLD_STEPS, COLD_OCTAVES = 10, 3
SOURCE_SIZE = (640, 360)


def run_bench(
    params: DreamParams,
    dream_size: tuple[int, int],
    device: torch.device,
    backend: str = "auto",
    frames: int = 60,
    compare_cold: bool = False,
    cold_frames: int = 5,
    weights: str | None = None,
    seed: int | None = 0,
) -> dict:
    dreamer = FrameDreamer(params, dream_size, device, backend, weights, seed, progress=print_progress)
    with open_source("synthetic", paced=False, size=SOURCE_SIZE) as source:
        pipeline = Pipeline(source, dreamer, ShowState(params, dreamer.network.spec.layers))
        pipeline.run(WARMUP_FRAMES)
        pipeline.stats = type(pipeline.stats)()
        started = time.perf_counter()
        pipeline.run(frames)
        elapsed = time.perf_counter() - started
    s = pipeline.stats
    result = {
        "model": params.model,
        "layer": dreamer.layer_name,
        "backend": dreamer.backend.name,
        "provider": getattr(dreamer.backend, "provider", "torch"),
        "device": str(device),
        "dream_size": f"{dream_size[0]}x{dream_size[1]}",
        "steps": params.steps,
        "frames": frames,
        "fps": round(frames / elapsed, 2),
        "frame_ms_p50": round(s.frame_ms.p50, 2),
        "frame_ms_p99": round(s.frame_ms.p99, 2),
        "kernel_ms_p50": round(s.dream_ms.p50, 2),
        "latency_ms_p50": round(s.latency_ms.p50, 2),
        "latency_ms_p99": round(s.latency_ms.p99, 2),
    }
    if compare_cold:
        cold_fps = _cold_fps(dreamer, min(cold_frames, frames))
        result.update(cold_frames=min(cold_frames, frames), cold_fps=round(cold_fps, 3))
        result["speedup"] = round(result["fps"] / cold_fps, 1)
    return result


def _cold_fps(dreamer: FrameDreamer, frames: int) -> float:
    """Frames per second of the classic loop: every frame dreamed from scratch, many steps."""
    p = dreamer.params
    with open_source("synthetic", paced=False, size=SOURCE_SIZE) as source:
        for _ in range(WARMUP_FRAMES):  # the same frames the live loop saw first are skipped too
            source.read()
        # one untimed cold frame, as the live loop had warm-up frames: first use of each octave
        # size builds its convolution kernels
        kernel.dream(
            dreamer.to_tensor(source.read().image), dreamer.backend.run, 1, COLD_OCTAVES, p.octave_scale
        )
        started = time.perf_counter()
        for _ in range(frames):
            frame = source.read()
            x = dreamer.to_tensor(frame.image)
            kernel.dream(x, dreamer.backend.run, COLD_STEPS, COLD_OCTAVES, p.octave_scale)
        return frames / (time.perf_counter() - started)

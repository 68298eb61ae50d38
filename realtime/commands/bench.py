"""`dreamcam bench`: the live loop on the synthetic scene, no window, timed; JSON out.

The loop runs as it does behind the window: a synthetic camera at a fixed rate, a display loop
composing every camera frame with the newest residual, and the dream worker. `fps` is the rate of
finished dreams (what the audience sees change), `display_fps` the composed frames, `kernel_fps`
the dream step alone (1000 / kernel_ms_p50): `fps / kernel_fps` says how much the rest of the
loop costs. Warm-up dreams are dropped before timing. `--compare-cold` runs the classic cold-start
loop (3 octaves x 10 steps per frame, from scratch) on the same scene in the same run.
"""

from __future__ import annotations

import time

import torch

from realtime.dream import kernel
from realtime.dream.backends import BACKENDS
from realtime.dream.backends.onnx_export import print_progress
from realtime.dream.dreamer import FrameDreamer, build_dreamer
from realtime.io.sources import SyntheticSource
from realtime.loop.pipeline import Pipeline
from realtime.loop.stats import PipelineStats
from realtime.params import DreamParams
from realtime.show.control import ShowState

WARMUP_DREAMS = 3
COLD_STEPS, COLD_OCTAVES = 10, 3
SOURCE_SIZE = (640, 360)
CPU_CAMERA_FPS, GPU_CAMERA_FPS = 30.0, 240.0


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
    camera_fps: float | None = None,
) -> dict:
    camera_fps = camera_fps or (GPU_CAMERA_FPS if device.type == "cuda" else CPU_CAMERA_FPS)
    dreamer = build_dreamer(params, dream_size, device, backend, weights, seed, progress=print_progress)
    with SyntheticSource(SOURCE_SIZE, paced=True, fps=camera_fps) as source:
        pipeline = Pipeline(source, dreamer, ShowState(params, dreamer.network.spec.layers), threaded=True)
        pipeline.start_worker()
        try:
            _show_until(pipeline, WARMUP_DREAMS)
            pipeline.stats = PipelineStats()
            started = time.perf_counter()
            shown = _show_until(pipeline, frames)
            elapsed = time.perf_counter() - started
        finally:
            pipeline.stop_worker()
    s = pipeline.stats
    result = {
        "model": params.model,
        "layer": dreamer.layer_name,
        "backend": dreamer.backend.name,
        "provider": dreamer.backend.provider,
        "precision": dreamer.backend.precision,
        "device": str(device),
        "dream_size": f"{dream_size[0]}x{dream_size[1]}",
        "steps": params.steps,
        "frames": frames,
        "fps": round(frames / elapsed, 2),
        "dream_fps": round(frames / elapsed, 2),
        "display_fps": round(shown / elapsed, 2),
        "camera_fps": camera_fps,
        "kernel_fps": round(1000.0 / s.dream_ms.p50, 2),
        "frame_ms_p50": round(s.frame_ms.p50, 2),
        "frame_ms_p99": round(s.frame_ms.p99, 2),
        "kernel_ms_p50": round(s.dream_ms.p50, 2),
        "kernel_ms_p99": round(s.dream_ms.p99, 2),
        "latency_ms_p50": round(s.latency_ms.p50, 2),
        "latency_ms_p99": round(s.latency_ms.p99, 2),
        "dream_latency_ms_p50": round(s.dream_latency_ms.p50, 2),
        "dream_latency_ms_p99": round(s.dream_latency_ms.p99, 2),
    }
    if compare_cold:
        cold_fps = _cold_fps(dreamer, min(cold_frames, frames))
        result.update(cold_frames=min(cold_frames, frames), cold_fps=round(cold_fps, 3))
        result["speedup"] = round(result["fps"] / cold_fps, 1)
    return result


def _show_until(pipeline: Pipeline, dreams: int) -> int:
    """Run display turns until `dreams` more dreams have finished; returns the frames shown."""
    target = pipeline.stats.dreams + dreams
    shown_before = pipeline.stats.frames
    while pipeline.stats.dreams < target:
        pipeline.tick()
    return pipeline.stats.frames - shown_before


def bench_backends(device: torch.device) -> list[str]:
    """The backends `--backend all` compares on this device."""
    usable = {"eager": True, "onnx": True, "cudagraph": device.type == "cuda"}
    return [b for b in BACKENDS if usable.get(b, False)]


def _cold_fps(dreamer: FrameDreamer, frames: int) -> float:
    """Frames per second of the classic loop: every frame dreamed from scratch, many steps."""
    p = dreamer.params
    with SyntheticSource(SOURCE_SIZE, paced=False) as source:
        images = [source.read().image for _ in range(frames + 1)]
    # one untimed cold frame, as the live loop had warm-up dreams: the first use of each octave
    # size builds its convolution kernels
    kernel.dream(dreamer.source_tensor(images[0]), dreamer.backend.run, 1, COLD_OCTAVES, p.octave_scale)
    started = time.perf_counter()
    for image in images[1:]:
        source = dreamer.source_tensor(image)
        kernel.dream(source, dreamer.backend.run, COLD_STEPS, COLD_OCTAVES, p.octave_scale)
    return frames / (time.perf_counter() - started)

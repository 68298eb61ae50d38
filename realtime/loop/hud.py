"""The HUD's text: the loop's rates and latencies, and each parameter as asked for and as run.

The requested values are the show's (keys, OSC, presets: `ShowState.params`); the effective
ones are what the dreamer ran the last frame with (the governor's cap, the warm-start step
scale). Where they differ the HUD shows both, `asked→ran`.
"""

from __future__ import annotations

from realtime.dream.dreamer import FrameDreamer
from realtime.loop.stats import PipelineStats
from realtime.params import DreamParams


def _both(asked, ran, fmt: str = "{}") -> str:
    asked_text, ran_text = fmt.format(asked), fmt.format(ran)
    return asked_text if asked_text == ran_text else f"{asked_text}→{ran_text}"


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def figures_lines(stats: PipelineStats) -> list[str]:
    """Display rate and latency, dream rate, its time and its dream-to-display latency."""
    return [
        f"{stats.output_rate.rate:5.1f} fps  latency {stats.latency_ms.p50:4.0f} ms",
        f"dream {stats.dream_rate.rate:4.1f} fps  {stats.dream_ms.p50:4.0f} ms each"
        f"  shown after {stats.dream_latency_ms.p50:4.0f} ms",
    ]


def dream_lines(asked: DreamParams, dreamer: FrameDreamer) -> list[str]:
    """Model, layer, steps, strength, warm start and size: asked for, and as the last frame ran."""
    ran = dreamer.effective
    backend = dreamer.backend
    lines = [
        f"{asked.model}  {dreamer.layer_name}",
        f"steps {_both(asked.steps, ran.steps)}  octaves {asked.octaves}"
        f"  lr {_both(asked.lr, ran.lr, '{:.3g}')}  warm {asked.warm_start}"
        f"  motion {dreamer.warm.motion:.1f}",
        f"{backend.name} ({backend.provider}, {backend.precision}) on {dreamer.device.type}"
        f"  dream {_both(_size(dreamer.requested_size), _size(dreamer.dream_size))}",
    ]
    reason = getattr(backend, "reason", None)  # what `auto` chose and why (auto.py)
    return [*lines, reason] if reason else lines

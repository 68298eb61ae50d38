"""Timing statistics for the HUD and `dreamcam bench`: rolling percentiles and event rates, and
the bundle of them one run of the loop keeps."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from realtime.control.rates import RateMeter


class Rolling:
    """The last `window` samples of a quantity (milliseconds, say), with percentiles; every
    sample when `window` is None (a benchmark's whole run)."""

    def __init__(self, window: int | None = 300):
        self.samples: deque[float] = deque(maxlen=window)

    def add(self, value: float) -> None:
        self.samples.append(value)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.samples, q)) if self.samples else float("nan")

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p99(self) -> float:
        return self.percentile(99)


@dataclass
class PipelineStats:
    frames: int = 0  # composed frames delivered
    dreams: int = 0  # dreams finished (in step mode, one per frame)
    dream_ms: Rolling = field(default_factory=Rolling)  # the kernel's time per dream
    frame_ms: Rolling = field(default_factory=Rolling)  # interval between delivered frames
    display_ms: Rolling = field(default_factory=Rolling)  # the display's work per frame (not waiting)
    latency_ms: Rolling = field(default_factory=Rolling)  # capture to display, new frames only
    dream_latency_ms: Rolling = field(default_factory=Rolling)  # capture to first display of its dream
    output_rate: RateMeter = field(default_factory=RateMeter)  # display fps
    dream_rate: RateMeter = field(default_factory=RateMeter)  # dream fps

"""Event rates: how many frames, dreams or messages a second, over the last few. The loop's figures
(realtime/loop/stats.py) and the show's OSC feedback (realtime/show/plan.py) both count with it."""

from __future__ import annotations

from collections import deque


class RateMeter:
    """Events per second over the last `window` events (frames shown, dreams finished...)."""

    def __init__(self, window: int = 60):
        self.times: deque[float] = deque(maxlen=window)

    def tick(self, now: float) -> None:
        self.times.append(now)

    @property
    def rate(self) -> float:
        if len(self.times) < 2 or self.times[-1] <= self.times[0]:
            return 0.0
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])

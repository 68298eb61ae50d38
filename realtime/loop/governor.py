"""The quality governor (`--target-fps`): trades dream size and steps for a steady dream rate.

After every dream it looks at the recent dream times. Too slow for the target: first one step
fewer, then a smaller dream size. Plenty of headroom: the size grows back first, then the steps,
never beyond what the user asked for and never below the limits they set. A cool-down between
changes keeps it from oscillating; each change comes with a line for the HUD and the log.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from realtime.errors import ConfigError

SHRINK = 0.85  # dream size factor per step down (about 28 % fewer pixels)
SLOW = 1.10  # mean dream time above budget x this: degrade
FAST = 0.65  # mean dream time below budget x this: there is room to improve
COOLDOWN = 8  # dreams to wait after a change (the new setting needs measuring first)


@dataclass(frozen=True)
class Quality:
    steps: int
    size: tuple[int, int]  # (width, height)


@dataclass(frozen=True)
class GovernorLimits:
    best: Quality  # what the user asked for: never exceeded
    worst: Quality  # the floor: never gone below

    def __post_init__(self) -> None:
        if self.worst.steps > self.best.steps or any(
            w > b for w, b in zip(self.worst.size, self.best.size, strict=True)
        ):
            raise ConfigError(
                f"governor floor (steps {self.worst.steps}, {self.worst.size[0]}x{self.worst.size[1]}) is "
                f"above the requested quality; lower --min-steps / --min-dream-size"
            )


class QualityGovernor:
    def __init__(self, target_fps: float, limits: GovernorLimits, window: int = 6):
        if target_fps <= 0:
            raise ConfigError(f"--target-fps must be positive, got {target_fps}")
        self.budget_ms = 1000.0 / target_fps
        self.limits = limits
        self.quality = limits.best
        self.recent: deque[float] = deque(maxlen=window)
        self.cooldown = 0
        self.last_change = ""  # for the HUD

    def update(self, dream_ms: float) -> Quality | None:
        """Record one dream's time; a new Quality when the governor decides to change it."""
        self.recent.append(dream_ms)
        if self.cooldown > 0:
            self.cooldown -= 1
            return None
        if len(self.recent) < self.recent.maxlen:
            return None
        mean = sum(self.recent) / len(self.recent)
        if mean > self.budget_ms * SLOW:
            new = self._degrade()
        elif mean < self.budget_ms * FAST:
            new = self._improve()
        else:
            new = None
        if new is None or new == self.quality:
            return None
        self.last_change = (
            f"governor: {_describe(self.quality)} -> {_describe(new)} "
            f"(dream {mean:.0f} ms, budget {self.budget_ms:.0f} ms)"
        )
        self.quality = new
        self.recent.clear()
        self.cooldown = COOLDOWN
        return new

    def reachable(self) -> tuple[list[tuple[int, int]], range]:
        """Every dream size and the step counts the governor can choose (to build them ahead)."""
        best, worst = self.limits.best, self.limits.worst
        sizes = [best.size]
        while (smaller := _scaled(sizes[-1], SHRINK, worst.size, best.size)) != sizes[-1]:
            sizes.append(smaller)
        grown = [best.size]  # growing back from the floor can land on sizes shrinking did not
        size = sizes[-1]
        while (larger := _scaled(size, 1 / SHRINK, worst.size, best.size)) != size:
            grown.append(larger)
            size = larger
        return sorted(set(sizes + grown)), range(worst.steps, best.steps + 1)

    def _degrade(self) -> Quality | None:
        q, floor = self.quality, self.limits.worst
        if q.steps > floor.steps:
            return Quality(q.steps - 1, q.size)
        size = _scaled(q.size, SHRINK, floor.size, self.limits.best.size)
        return Quality(q.steps, size) if size != q.size else None

    def _improve(self) -> Quality | None:
        q, best = self.quality, self.limits.best
        if q.size != best.size:
            return Quality(q.steps, _scaled(q.size, 1 / SHRINK, self.limits.worst.size, best.size))
        if q.steps < best.steps:
            return Quality(q.steps + 1, q.size)
        return None


def _scaled(
    size: tuple[int, int], factor: float, low: tuple[int, int], high: tuple[int, int]
) -> tuple[int, int]:
    """Scale (w, h) keeping the aspect ratio, clamped to [low, high], sides even."""
    width = min(max(round(size[0] * factor), low[0]), high[0])
    height = min(max(round(width * high[1] / high[0]), low[1]), high[1])
    return width - width % 2, height - height % 2


def _describe(q: Quality) -> str:
    return f"{q.steps} steps {q.size[0]}x{q.size[1]}"

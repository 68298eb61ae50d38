"""The --target-fps quality governor: steps first, then size; never past the user's limits."""

import pytest

from realtime.errors import ConfigError
from realtime.loop.governor import COOLDOWN, GovernorLimits, Quality, QualityGovernor

LIMITS = GovernorLimits(best=Quality(3, (320, 180)), worst=Quality(1, (160, 90)))


def _feed(governor: QualityGovernor, dream_ms: float, dreams: int) -> list[Quality]:
    changes = []
    for _ in range(dreams):
        change = governor.update(dream_ms)
        if change is not None:
            changes.append(change)
    return changes


def test_too_slow_drops_steps_then_size_down_to_the_floor():
    governor = QualityGovernor(target_fps=20, limits=LIMITS)  # 50 ms budget
    changes = _feed(governor, dream_ms=200, dreams=200)
    assert [c.steps for c in changes[:2]] == [2, 1]
    assert all(c.size == (320, 180) for c in changes[:2])  # steps go first
    sizes = [c.size for c in changes[2:]]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] == (160, 90)
    assert governor.quality == LIMITS.worst
    assert all(w % 2 == 0 and h % 2 == 0 for w, h in sizes)
    assert "governor:" in governor.last_change and "budget 50 ms" in governor.last_change


def test_headroom_restores_size_first_then_steps_and_never_exceeds_the_request():
    governor = QualityGovernor(target_fps=20, limits=LIMITS)
    _feed(governor, dream_ms=200, dreams=200)
    changes = _feed(governor, dream_ms=5, dreams=300)
    first_step_up = next(i for i, c in enumerate(changes) if c.steps > 1)
    assert all(c.size == (320, 180) for c in changes[first_step_up:])  # size was back first
    assert governor.quality == LIMITS.best


def test_on_target_changes_nothing_and_changes_wait_for_a_cooldown():
    governor = QualityGovernor(target_fps=20, limits=LIMITS)
    assert _feed(governor, dream_ms=48, dreams=100) == []
    governor = QualityGovernor(target_fps=20, limits=LIMITS, window=1)
    assert governor.update(200) is not None
    assert all(governor.update(200) is None for _ in range(COOLDOWN))
    assert governor.update(200) is not None


def test_a_floor_above_the_request_is_a_config_error():
    with pytest.raises(ConfigError, match="--min-steps"):
        GovernorLimits(best=Quality(2, (320, 180)), worst=Quality(3, (160, 90)))
    with pytest.raises(ConfigError, match="target-fps"):
        QualityGovernor(target_fps=0, limits=LIMITS)


def test_reachable_lists_every_size_and_step_count_the_governor_can_choose():
    limits = GovernorLimits(best=Quality(3, (320, 180)), worst=Quality(1, (160, 90)))
    governor = QualityGovernor(target_fps=10_000, limits=limits, window=1)
    sizes, steps = governor.reachable()
    assert list(steps) == [1, 2, 3] and (320, 180) in sizes and (160, 90) in sizes
    seen = {governor.quality}
    for _ in range(200):  # always too slow: all the way down, then always fast: all the way up
        seen.add(governor.update(1e9) or governor.quality)
    governor.budget_ms = 1e9
    for _ in range(200):
        seen.add(governor.update(0.0) or governor.quality)
    assert {q.size for q in seen} <= set(sizes) and {q.steps for q in seen} <= set(steps)

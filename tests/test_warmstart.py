"""Warm start: carrying the last frame's dream deepens it instead of starting over."""

import torch

from realtime import kernel
from realtime.backends import EagerBackend
from realtime.objectives import LayerObjective
from realtime.params import DreamParams
from realtime.warmstart import WarmStart


def test_warm_start_beats_cold_start_with_the_same_steps_on_a_still_scene(lite0, chelsea_small):
    objective = LayerObjective("block5")
    net = lite0.truncated(["block5"])
    params = DreamParams(steps=2)
    backend = EagerBackend(net, objective, params, torch.Generator().manual_seed(0))

    warm = WarmStart()
    for _ in range(5):  # five frames of the same still picture
        warm_dream = kernel.dream(warm.initial(chelsea_small, params), backend.run, params.steps)
        warm.update(chelsea_small, warm_dream)
    cold_dream = kernel.dream(chelsea_small, backend.run, params.steps)

    warm_value = backend.objective_value(warm_dream)
    cold_value = backend.objective_value(cold_dream)
    assert warm_value > 1.5 * cold_value, (warm_value, cold_value)


def test_residual_is_carried_with_persistence(chelsea_small):
    warm = WarmStart()
    params = DreamParams(persistence=0.5)
    assert warm.initial(chelsea_small, params) is chelsea_small  # nothing to carry yet
    dream = (chelsea_small + 0.1).clamp(0, 1)
    residual = warm.update(chelsea_small, dream)
    torch.testing.assert_close(residual, dream - chelsea_small)
    start = warm.initial(chelsea_small, params)
    torch.testing.assert_close(start, (chelsea_small + 0.5 * residual).clamp(0, 1))


def test_off_and_reset_start_from_the_source(chelsea_small):
    warm = WarmStart()
    warm.update(chelsea_small, chelsea_small * 0.5)
    assert warm.initial(chelsea_small, DreamParams(warm_start="off")) is chelsea_small
    warm.reset()
    assert warm.initial(chelsea_small, DreamParams()) is chelsea_small


def test_a_residual_of_another_size_is_not_carried(chelsea_small):
    warm = WarmStart()
    warm.update(torch.zeros(1, 3, 10, 10), torch.ones(1, 3, 10, 10))
    assert warm.initial(chelsea_small, DreamParams()) is chelsea_small

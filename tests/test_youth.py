"""A young dream grows faster: each pixel's age rides along the flow and sets its step."""

import numpy as np
import torch

from realtime.dream import warmstart
from realtime.dream.dreamer import build_dreamer
from realtime.dream.flow import FlowField
from realtime.dream.warmstart import YOUNG_BOOST, YOUNG_FRAMES, WarmStart
from realtime.params import DreamParams


def test_pixels_the_camera_uncovers_are_young_and_the_rest_keep_their_age():
    warm = WarmStart()
    like = torch.zeros(1, 3, 18, 32)
    warm.youth(like)  # ages start at 0 on the first frame: every pixel young
    for _ in range(2 * YOUNG_FRAMES):
        warm.grow()
    assert warm.youth(like) is None  # all old: no factor, nothing to multiply
    backward = np.zeros((18, 32, 2), np.float32)
    backward[..., 0] = 3.0  # the camera pans: pixel x was at x + 3, the right 3 columns are new
    warm._carry_age(FlowField(backward, None, 3.0))
    factor = warm.youth(like)[0, 0].numpy()
    assert np.all(factor[:, -3:] == 1.0 + YOUNG_BOOST)  # uncovered: the full boost
    assert np.all(factor[:, :-4] == 1.0)  # carried along with their age: no boost


def test_occluded_pixels_are_as_young_as_their_flow_is_untrusted():
    warm = WarmStart()
    warm.age = np.full((8, 8), float(YOUNG_FRAMES), np.float32)
    valid = np.ones((8, 8), np.float32)
    valid[2, 3] = 0.0
    warm._carry_age(FlowField(np.zeros((8, 8, 2), np.float32), valid, 0.0))
    assert warm.age[2, 3] == 0.0 and warm.age[0, 0] == YOUNG_FRAMES


def test_a_young_dream_grows_faster_and_an_old_one_as_before(lite0, chelsea_small, monkeypatch):
    """The first frames of a still scene with and without the boost: deeper with it; with no
    young pixel, exactly as before."""
    image = (chelsea_small[0].permute(1, 2, 0) * 255).round().byte().numpy()

    def residual_after(boost: float, frames: int) -> float:
        monkeypatch.setattr(WarmStart.youth, "__defaults__", (boost,))
        dreamer = build_dreamer(
            DreamParams(layer="block5"), (64, 36), torch.device("cpu"), network=lite0, seed=1
        )
        for _ in range(frames):
            residual = dreamer.residual(image)
        return float(residual.abs().mean())

    assert residual_after(YOUNG_BOOST, 5) > 1.8 * residual_after(0.0, 5)
    monkeypatch.setattr(warmstart, "YOUNG_FRAMES", 0)  # nothing is ever young: exactly the old step
    assert residual_after(YOUNG_BOOST, 5) == residual_after(0.0, 5)

"""Warm start: carrying the last frame's dream deepens it instead of starting over."""

import time

import numpy as np
import pytest
import torch

from realtime.dream import kernel
from realtime.dream.backends import EagerBackend
from realtime.dream.objectives import LayerObjective
from realtime.dream.warmstart import WarmStart
from realtime.params import DreamParams


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
    params = DreamParams(persistence=0.5, warm_start="residual")
    assert warm.initial(chelsea_small, params) is chelsea_small  # nothing to carry yet
    dream = (chelsea_small * 0.9 + 0.05).clamp(0, 1)
    anchored = warm.update(chelsea_small, dream)
    torch.testing.assert_close(warm.residual, anchored - chelsea_small)
    start = warm.initial(chelsea_small, params)  # a still frame: no motion, full persistence
    torch.testing.assert_close(start, (chelsea_small + 0.5 * warm.residual).clamp(0, 1))


def test_off_and_reset_start_from_the_source(chelsea_small):
    warm = WarmStart()
    warm.initial(chelsea_small, DreamParams())
    warm.update(chelsea_small, chelsea_small * 0.5)
    assert warm.initial(chelsea_small, DreamParams(warm_start="off")) is chelsea_small
    warm.reset()
    assert warm.initial(chelsea_small, DreamParams()) is chelsea_small


def test_a_residual_of_another_size_is_not_carried(chelsea_small):
    warm = WarmStart()
    small = torch.rand(1, 3, 16, 16)
    warm.initial(small, DreamParams())
    warm.update(small, small.flip(3))
    assert warm.initial(chelsea_small, DreamParams()) is chelsea_small


def _shifted(image: torch.Tensor, dx: int) -> torch.Tensor:
    """The scene moved dx pixels to the left (a camera pan), edges cropped."""
    return image[..., :, 8 + dx : image.shape[-1] - 8 + dx]


def test_flow_moves_the_residual_with_the_scene_to_within_a_pixel(chelsea_small):
    params = DreamParams(warm_start="flow", persistence=1.0, stillness_boost=0.0)
    frame0, frame1 = _shifted(chelsea_small, 0), _shifted(chelsea_small, 3)
    warm = WarmStart()
    warm.initial(frame0, params)
    pattern = torch.zeros_like(frame0)
    pattern[..., 60:120, 100:110] = 0.3  # a bright bar painted on the scene at x = 100..110
    warm.residual = pattern
    carried = warm.initial(frame1, params) - frame1
    column_profile = carried[0, 0, 70:110].mean(0)
    left_edge = int((column_profile > 0.15).nonzero()[0])
    assert abs(left_edge - 97) <= 1, left_edge  # the bar moved 3 px left with the scene
    assert warm.motion == pytest.approx(3.0, abs=0.5)


def test_a_scene_cut_resets_the_residual_within_one_frame(chelsea_small):
    params = DreamParams(warm_start="flow")
    warm = WarmStart()
    warm.initial(chelsea_small, params)
    warm.update(chelsea_small, chelsea_small.flip(2))
    other_scene = 1.0 - chelsea_small
    assert warm.initial(other_scene, params) is other_scene
    assert warm.residual is None and warm.cuts == 1


@pytest.mark.slow
def test_no_drift_over_600_frames_of_feedback(lite0, chelsea):
    """Minutes of feedback on a still scene: the output keeps the camera's colour and contrast."""
    import cv2
    import numpy as np

    from realtime.dream.dreamer import build_dreamer
    from realtime.dream.frames import residual_array

    params = DreamParams()  # the default look
    dreamer = build_dreamer(params, (96, 54), torch.device("cpu"), network=lite0, seed=0)
    frame = cv2.resize(chelsea, (96, 54), interpolation=cv2.INTER_AREA)
    for _ in range(600):
        residual = residual_array(dreamer.residual(frame))
    output = np.clip(frame + residual, 0, 255)
    source_mean, source_std = frame.reshape(-1, 3).mean(0), frame.reshape(-1, 3).std(0)
    out_mean, out_std = output.reshape(-1, 3).mean(0), output.reshape(-1, 3).std(0)
    assert np.abs(out_mean - source_mean).max() < 6.0, (out_mean, source_mean)
    assert (out_std < 1.3 * source_std).all(), (out_std, source_std)
    assert np.abs(residual).mean() > 3.0  # and it is still dreaming


def test_between_dreams_the_shown_residual_rides_on_the_moving_scene(chelsea):
    """The display's tracker moves the last dream with each new camera frame (no new dream yet)."""
    import cv2

    from realtime.dream.flow import ResidualTracker

    big = cv2.resize(chelsea, (352, 180))
    frame0, frame1 = big[:, 16:336].copy(), big[:, 19:339].copy()  # the camera pans: 3 px left
    residual = torch.zeros(1, 3, 180, 320)
    residual[..., 60:120, 100:110] = 60.0  # a dream stripe at x = 100..110
    tracker = ResidualTracker()
    tracker.new_dream(residual, frame0, frame_index=0)
    moved = tracker.follow(frame1, frame_index=1)
    profile = moved[70:110, :, 0].mean(0)  # on the CPU the tracker keeps an hxwx3 array
    assert abs(int((profile > 30).nonzero()[0][0]) - 97) <= 1
    assert tracker.follow(frame1, frame_index=1) is moved  # the same frame is not warped twice
    assert tracker.follow(255 - frame1, frame_index=2) is None  # a scene cut drops the old dream


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=[
                pytest.mark.gpu,
                pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
            ],
        ),
    ],
)
def test_the_device_warp_matches_the_opencv_warp(chelsea, device):
    """grid_sample (what a GPU runs: only the flow goes up, through reused pinned buffers) moves
    a residual as cv2.remap does."""
    import cv2
    import numpy as np

    from realtime.dream.flow import FlowEstimator, warp_residual, warp_tensor

    big = cv2.resize(chelsea, (336, 190))
    grey0 = cv2.cvtColor(big[5:185, 8:328], cv2.COLOR_RGB2GRAY)
    grey1 = cv2.cvtColor(big[7:187, 11:331], cv2.COLOR_RGB2GRAY)  # a diagonal pan
    field = FlowEstimator().estimate(grey0, grey1)
    residual = torch.from_numpy(cv2.resize(chelsea, (320, 180)).astype(np.float32) - 128.0)
    residual = residual.permute(2, 0, 1).unsqueeze(0)
    on_cpu = warp_residual(residual, field)  # the OpenCV path
    on_device = warp_tensor(residual.to(device), field).cpu()
    assert field.motion > 1.0 and field.valid.mean() > 0.5
    assert (on_device - on_cpu).abs().mean() < 0.05 and (on_device - on_cpu).abs().max() < 1.0
    assert (on_cpu - residual).abs().mean() > 5.0  # and it really moved


def _affine_flow(height: int, width: int, affine) -> np.ndarray:
    from realtime.dream.flow import pixel_grid

    grid = pixel_grid(height, width)
    matrix = np.asarray(affine, np.float32)
    return grid @ matrix[:, :2].T + matrix[:, 2] - grid


def test_the_camera_motion_replaces_noisy_flow_but_a_moving_object_keeps_its_own():
    from realtime.dream.flow import camera_glued

    rng = np.random.default_rng(0)
    height, width = 90, 160
    camera = _affine_flow(height, width, [[0.996, -0.004, 1.3], [0.004, 0.996, -0.7]])  # zoom, turn, pan
    # DIS's noise: the dream's flow (FAST at finest scale 1) misses sub-pixel pans and zooms by
    # 0.10-0.14 px at the 90th percentile
    measured = camera + rng.normal(0, 0.08, camera.shape).astype(np.float32)
    measured[30:60, 40:80] = (-4.0, 2.0)  # an object moving its own way
    glued = camera_glued(measured)[0]
    background = np.ones((height, width), bool)
    background[28:62, 38:82] = False
    error = np.abs(glued - camera)[background].max(-1)
    assert np.percentile(error, 99.5) < 0.05  # the exact camera motion, not DIS's noise
    assert np.abs(glued[32:58, 42:78] - (-4.0, 2.0)).max() < 1e-5  # the object keeps its flow
    noise_only = rng.normal(0, 0.08, camera.shape).astype(np.float32)
    assert (camera_glued(noise_only)[0] != 0).mean() < 0.001  # a still camera: (almost) no resampling


def test_flow_ahead_gives_the_same_flow_computed_on_its_own_thread(chelsea_small):
    import threading

    from realtime.dream.flow import FlowAhead, FlowEstimator, to_grey

    frame0, frame1 = to_grey(_shifted(chelsea_small, 0)), to_grey(_shifted(chelsea_small, 2))
    threads = []

    class Recording(FlowEstimator):
        def estimate(self, previous, current):
            threads.append(threading.current_thread().name)
            return super().estimate(previous, current)

    ahead = FlowAhead(Recording())
    try:
        ahead.ahead(frame0, frame1)
        field = ahead.estimate(frame0, frame1)
        assert np.array_equal(field.backward, FlowEstimator().estimate(frame0, frame1).backward)
        other = ahead.estimate(frame1, frame0)  # never asked ahead: computed now, on its thread
        assert other.backward[..., 0].mean() < -1.0 < 1.0 < field.backward[..., 0].mean()
        assert threads == ["flow ahead", "flow ahead"] and ahead.computed == 2
    finally:
        ahead.close()


def test_a_pair_the_worker_waits_for_is_never_displaced_by_newer_frames_handed_ahead():
    """At 480x270 on a busy CPU the display handed newer pairs ahead while the worker waited for
    its own; the newer pair replaced it, the worker waited for good, and the watchdog's restarts
    ran the machine out of memory. The waited-for pair now comes first."""
    import threading

    from realtime.dream.flow import FlowAhead, FlowField

    release = threading.Event()
    computed = []

    class Slow:
        def estimate(self, previous, current):
            release.wait(60.0)  # the first flow is still running when the worker asks
            computed.append((previous, current))
            return FlowField(np.zeros((2, 2, 2), np.float32), None, 0.0)

    frames = [np.full((2, 2), n, np.uint8) for n in range(4)]
    ahead = FlowAhead(Slow())
    try:
        ahead.ahead(frames[0], frames[1])
        deadline = time.monotonic() + 30.0
        while ahead._running is None:  # the flow thread has taken it up, and is blocked in it
            assert time.monotonic() < deadline, "the flow thread never started"
            threading.Event().wait(0.001)
        got = []
        worker = threading.Thread(target=lambda: got.append(ahead.estimate(frames[1], frames[2])))
        worker.start()
        # the worker's demand is in (a deadline, not a bound wait above: on a loaded machine the
        # first flow must not finish before this thread sees the demand, or it waits for good)
        deadline = time.monotonic() + 30.0
        while ahead._demanded is None:
            assert time.monotonic() < deadline, "the worker's demand never reached the flow thread"
            threading.Event().wait(0.001)
        ahead.ahead(frames[2], frames[3])  # the display hands on a newer frame meanwhile
        release.set()
        worker.join(30.0)
        assert got and not worker.is_alive()
        # the worker's pair next, before the newer one (the very arrays: `is`, as FlowAhead matches)
        assert computed[1][0] is frames[1] and computed[1][1] is frames[2]
    finally:
        release.set()
        ahead.close()


def test_momentum_keeps_a_steady_push_and_cancels_a_re_rolled_one():
    warm = WarmStart()
    push = torch.full((1, 3, 4, 4), 0.01)
    assert torch.allclose(warm.steer(push, 0.8), push)  # the first frame steps at full size
    for _ in range(5):
        steady = warm.steer(push, 0.8)
    assert torch.allclose(steady, push)
    warm.reset()
    rolled = [warm.steer(push * (-1) ** n, 0.8) for n in range(30)]
    assert rolled[-1].abs().max() < 0.2 * push.max()  # a push that flips each frame mostly cancels

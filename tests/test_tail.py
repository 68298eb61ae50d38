"""P3/P4 of the GPU path, on the CPU: the dream's tail after the step as one function (the same
numbers as the op-by-op code it replaced), captured per size where the backend can (a fake capture
here), few ops per dream on a device's path, and per-size buffers the display reuses."""

import collections
import copy
import dataclasses
import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from realtime.dream import frames
from realtime.dream.backends.cudagraph import CudaGraphBackend, GraphCache, describe_tail
from realtime.dream.flow import DeviceWarp, FlowField, ResidualTracker, warp_tensor
from realtime.dream.health import fault_figures
from realtime.dream.tail import TailGraph, gate_depth, warm_tail
from realtime.dream.warmstart import WarmStart, depth_gate
from realtime.params import DreamParams

gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

# ops dispatched per warm dream outside the step on a device's path (meta device, the eager backend,
# the default look at 320x180) before P3, all and not counting views: the flow went up twice with
# the pixel grid each time and the tail ran op by op (after: 31 and 22)
OPS_BEFORE, LAUNCHES_BEFORE = 82, 63
# the young dream's step factor (warmstart.WarmStart.youth), dispatched while any pixel's dream is
# under 1 s old (the first second, an edge a pan uncovers): its pinned buffer's view, one copy up,
# one multiply (2 launches, within the bound's margin)
YOUTH_OPS = 3
# the still camera's plate (realtime.dream.plate, issue 24): where a walker uncovers the background,
# its remembered dream goes back in (one copy up, one lerp), and the frame's background dream is
# remembered (one copy up, one lerp)
PLATE_OPS, PLATE_LAUNCHES = 6, 4


def _old_tail(warm: WarmStart, start, source, change, depth):
    """The tail as FrameDreamer ran it before P3, op by op: steer, gate, clamp, fault figures,
    anchor (WarmStart.update), residual in pixel units."""
    change = warm.steer(change)
    if depth < 1.0:
        change = change * depth_gate(start - source, depth)
    dreamt = (start + change).clamp_(0.0, 1.0)
    figures = fault_figures(dreamt, source)
    dream = warm.update(source, dreamt)
    return warm.push, warm.residual, (dream - source).mul_(255.0), figures


def _frames(count=5, size=(48, 80)):
    generator = torch.Generator().manual_seed(7)
    source = torch.rand(1, 3, *size, generator=generator)
    for _ in range(count):
        start = (source + 0.1 * torch.randn(1, 3, *size, generator=generator)).clamp(0, 1)
        yield start, source, 0.05 * torch.randn(1, 3, *size, generator=generator)


class FakeRecord:
    """Stands in for the CUDA capture (cudagraph.record): runs the function once for its static
    outputs; a replay runs it again and copies the results into them. `replays` counts them, and
    `inside` tells an op counter which ops a real replay would launch as one graph."""

    def __init__(self):
        self.captures = self.replays = 0
        self.inside = False

    def __call__(self, function):
        self.captures += 1
        outputs = function()

        def replay():
            self.replays += 1
            self.inside = True
            try:
                for static, new in zip(outputs, function(), strict=True):
                    static.copy_(new)
            finally:
                self.inside = False

        return SimpleNamespace(replay=replay), outputs


def _record(device: torch.device):
    """The capture a TailGraph gets: CUDA's on a GPU, the stand-in elsewhere."""
    if device.type != "cuda":
        return FakeRecord()
    from realtime.dream.backends.cudagraph import record

    stream, pool = torch.cuda.Stream(device), torch.cuda.graph_pool_handle()
    return lambda function: record(function, stream, pool)


@pytest.mark.parametrize("depth", [0.2, 1.0])
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[gpu, needs_cuda])])
def test_the_tail_gives_the_numbers_the_op_by_op_code_gave(depth, device):
    """Old (steer, gate, clamp, fault figures, anchor, residual) against new (`warm_tail` eager,
    and through a captured graph: a stand-in on the CPU, CUDA's on a GPU) over frames whose
    momentum builds up."""
    device = torch.device(device)
    tolerance = 1e-6 if device.type == "cpu" else 1e-5
    old, new, graphed = WarmStart(), WarmStart(), WarmStart()
    record = _record(device)
    graph = TailGraph(48, 80, device, record)
    for start, source, change in _frames():
        start, source, change = start.to(device), source.to(device), change.to(device)
        expected = _old_tail(old, start, source, change.clone(), depth)
        push, weight = new.momentum(change)
        got = warm_tail(start, source, change.clone(), push, weight, gate_depth(depth))
        new.push = got[0]
        push, weight = graphed.momentum(change)
        replayed = graph(start, source, change, push, weight, gate_depth(depth))
        graphed.push = replayed[0]
        for a, b, c in zip(expected, got, replayed, strict=True):
            torch.testing.assert_close(b, a, rtol=0, atol=tolerance)
            torch.testing.assert_close(c, a, rtol=0, atol=tolerance)
    if isinstance(record, FakeRecord):
        assert record.captures == 1 and record.replays == 5
    assert expected[2].abs().max() > 1.0  # a real dream, not zeros compared with zeros


class Ops(TorchDispatchMode):
    """Counts the torch ops dispatched, except inside the step (`backend.run`) and inside a
    (fake) graph replay: a GPU launches each of those as one graph."""

    def __init__(self, record: FakeRecord):
        super().__init__()
        self.ops: collections.Counter = collections.Counter()
        self.stepping = 0
        self.record = record

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not self.stepping and not self.record.inside:
            self.ops[str(func)] += 1
        return func(*args, **(kwargs or {}))


def _meta_dreamer(lite0, params: DreamParams, size=(320, 180)):
    """A dreamer whose tensors live on torch's meta device: the path a CUDA device takes (the
    device warp, the deferred fault check, pinned-style staging) with no data behind it."""
    from realtime.dream.dreamer import build_dreamer
    from realtime.dream.health import FaultCheck
    from tests.test_gpu_discipline import DoneEvent

    dreamer = build_dreamer(params, size, torch.device("cpu"), network=lite0, precision="fp32")
    meta = torch.device("meta")
    dreamer.engine.recipe = dataclasses.replace(dreamer.engine.recipe, device=meta)
    backend = dreamer.backend
    backend.net, backend.device = copy.deepcopy(backend.net).to(meta), meta  # lite0 stays whole
    dreamer._staging = frames.Staging(meta)

    def download(host, figures):  # a real one is one copy: written here without a torch op
        host.numpy()[:] = (0.0, 1.0, 1.0)  # the verdict reads "a picture"

    dreamer.fault_check = FaultCheck(deferred=True, event=DoneEvent, download=download)
    return dreamer


def test_a_dream_on_a_devices_path_dispatches_few_ops_outside_the_step(lite0):
    """P3: per warm dream outside the step, a device used to launch ~80 small ops (two flow
    uploads with the pixel grid, the tail op by op); with the tail captured per size (here a
    fake capture) and the warp's buffers cached it is under 40 % of that."""
    from realtime.io.sources.synthetic import SyntheticSource

    dreamer = _meta_dreamer(lite0, DreamParams(layer="block3"))
    record = FakeRecord()
    tails: dict[tuple[int, int], TailGraph] = {}
    meta = torch.device("meta")

    def tail(height, width):  # what CudaGraphBackend.tail does, with the fake capture
        if (height, width) not in tails:
            tails[height, width] = TailGraph(height, width, meta, record)
        return tails[height, width]

    dreamer.backend.tail = tail
    counter = Ops(record)
    run = dreamer.backend.run

    def step(x, steps):
        counter.stepping += 1
        try:
            return run(x, steps)
        finally:
            counter.stepping -= 1

    dreamer.backend.run = step
    with SyntheticSource((320, 180), paced=False) as source:
        images = [source.read().image for _ in range(6)]
    for image in images[:3]:  # the first frames make the buffers and the capture
        dreamer.residual(image)
    captures = record.captures
    with counter:
        for image in images[3:]:
            residual = dreamer.residual(image)
    per_dream = sum(counter.ops.values()) / 3
    launches = sum(n for op, n in counter.ops.items() if not _is_view(op)) / 3
    assert residual.device == meta and residual.shape == (1, 3, 180, 320)
    assert record.captures == captures == 1 and record.replays == 6  # one capture, then replays
    assert dreamer.warm.residual is not None and dreamer.warm.push is not None
    print(f"ops per dream outside the step: {per_dream:.0f} ({launches:.0f} not views)", dict(counter.ops))
    assert per_dream <= 0.4 * OPS_BEFORE + YOUTH_OPS + PLATE_OPS, dict(counter.ops)
    assert launches <= 0.4 * LAUNCHES_BEFORE + PLATE_LAUNCHES, dict(counter.ops)


def _is_view(op: str) -> bool:
    return any(
        name in op for name in ("select", "unsqueeze", "permute", "slice", "unbind", "lift_fresh", "detach")
    )


def test_a_failed_tail_capture_runs_eager_and_says_so(caplog):
    """C3 for the tail: a failed capture runs that size's tail eagerly from then on, with one
    line naming it, and `captured` goes false."""

    def failing(key):
        raise RuntimeError("operation not permitted when stream is capturing")

    tails = GraphCache(failing, describe=describe_tail)
    with caplog.at_level(logging.WARNING):
        assert tails.get((180, 320, 0), torch.float32) is None
        assert tails.get((180, 320, 0), torch.float32) is None
    assert "the dream's tail at 320x180" in caplog.text and caplog.text.count("capture failed") == 1
    assert not tails.captured and tails.eager_shapes() == [(180, 320, 0)]
    backend = object.__new__(CudaGraphBackend)  # its labels only: no CUDA behind them
    backend.graphs, backend.tails = GraphCache(lambda key: object()), tails
    backend.graphs.get((180, 320, 1), torch.float32)
    assert not backend.captured and backend.provider == "cuda graph, tail eager at 320x180 (capture failed)"


class Events:
    """Fake CUDA events: each copy's event completes when the test says so."""

    def __init__(self):
        self.made: list = []

    def __call__(self):
        event = type("Event", (), {})()
        event.done, event.waited = False, False
        event.record = lambda: None
        event.query = lambda: event.done
        event.synchronize = lambda: setattr(event, "waited", True)
        self.made.append(event)
        return event


def test_staging_reuses_a_buffer_once_its_copy_has_run():
    pins: list[tuple] = []

    def pin(shape, dtype):
        pins.append(shape)
        return torch.empty(shape, dtype=dtype)

    events = Events()
    staging = frames.Staging(torch.device("meta"), pin=pin, event=events)
    frame = np.zeros((36, 64, 3), np.uint8)
    staging.upload(frame)
    staging.upload(frame)  # the first copy has not run: a second buffer
    assert len(pins) == 2
    for event in events.made:
        event.done = True
    for _ in range(5):  # steady: every copy done before the next frame
        staging.upload(frame)
        events.made[-1].done = True
    assert len(pins) == 2
    for _ in range(frames.STAGING_BUFFERS + 1):  # a GPU far behind: at most STAGING_BUFFERS, then wait
        staging.upload(frame)
    assert len(pins) == frames.STAGING_BUFFERS and any(e.waited for e in events.made)
    staging.upload(np.zeros((18, 32, 3), np.uint8))  # a new size: new buffers
    assert pins[-1] == (18, 32, 3) and staging.made == frames.STAGING_BUFFERS + 1


def test_the_display_tracker_reuses_its_grid_and_pinned_buffer_per_size():
    """P4: a steady display tick on a GPU's path builds no pixel grid and pins no buffer; a new
    dream size builds them once again."""
    rng = np.random.default_rng(3)
    camera = rng.integers(0, 255, (180, 320, 3), dtype=np.uint8)
    tracker = ResidualTracker(torch.device("meta"))
    tracker.new_dream(torch.zeros(1, 3, 90, 160, device="meta"), camera, frame_index=0)
    for index in range(1, 5):
        moved = np.roll(camera, index, axis=1)
        residual = tracker.follow(moved, frame_index=index)
        assert residual.shape == (1, 3, 90, 160) and residual.device.type == "meta"
    assert tracker.warp.grids == 1 and tracker.warp.staging.made == 1
    tracker.new_dream(torch.zeros(1, 3, 180, 320, device="meta"), camera, frame_index=5)
    for index in range(6, 9):
        tracker.follow(np.roll(camera, index, axis=1), frame_index=index)
    assert tracker.warp.grids == 2 and tracker.warp.staging.made == 2


def test_the_cached_device_warp_moves_as_a_fresh_one_does():
    """Reusing the grid and the buffers changes nothing: two different flows through one
    DeviceWarp give what a fresh warp gives each."""
    rng = np.random.default_rng(5)
    residual = torch.from_numpy(rng.normal(0, 30, (1, 3, 36, 64)).astype(np.float32))
    warp = DeviceWarp(torch.device("cpu"))
    for shift in (1.5, -2.25):
        backward = np.full((36, 64, 2), shift, np.float32)
        field = FlowField(backward, np.ones((36, 64), np.float32) * 0.5, abs(shift))
        torch.testing.assert_close(warp.load(field)(residual), warp_tensor(residual, field))
    assert warp.grids == 1

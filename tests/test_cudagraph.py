"""The CUDA-graph backend: its capturable step and re-capture rules on the CPU, the graph on a GPU."""

import pytest
import torch

from realtime.dream import kernel
from realtime.dream.backends import EagerBackend, create_backend
from realtime.dream.backends.cudagraph import CudaGraphBackend, GraphCache
from realtime.dream.objectives import parse_objective
from realtime.errors import BackendError
from realtime.params import DreamParams

gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("shift", [(0, 0), (3, -5), (-5, 17), (12, 8)])
def test_jitter_table_rows_are_a_roll_and_its_inverse(shift):
    x = torch.arange(2 * 3 * 12 * 8, dtype=torch.float32).reshape(2, 3, 12, 8)
    rows, cols, rows_back, cols_back = kernel.jitter_table([shift], 12, 8)[0].split([12, 8, 12, 8])
    rolled = kernel.roll(x, rows, cols)
    torch.testing.assert_close(rolled, torch.roll(x, shift, (2, 3)))
    torch.testing.assert_close(kernel.roll(rolled, rows_back, cols_back), x)


def _reference_step(net, objective, x, shift, lr, tv_weight):
    """The tutorial's step written plainly with torch.roll: what every backend must compute."""
    shifted = torch.roll(x, shift, (2, 3)).requires_grad_(True)
    loss = objective(net(shifted)) - tv_weight * kernel.total_variation(shifted)
    (grad,) = torch.autograd.grad(loss, shifted)
    grad = torch.roll(grad, (-shift[0], -shift[1]), (2, 3))
    return (x + lr * grad / (grad.abs().mean() + 1e-8)).clamp(0.0, 1.0)


def test_the_captured_step_function_matches_the_reference_maths(lite0, chelsea_small):
    """What the GPU captures (and the ONNX export traces) is kernel.gradient_steps with tensor
    inputs: same shifts, same result as the reference on the CPU."""
    objective = parse_objective("block3", lite0.spec)
    net = lite0.truncated(["block3"])
    shifts = [(3, -4), (-2, 6)]
    jitter = kernel.jitter_table(shifts, *chelsea_small.shape[-2:])
    lr, tv = torch.tensor(0.02), torch.tensor(0.5)
    captured, value = kernel.gradient_steps(net, objective, chelsea_small, jitter, lr, tv)
    reference = chelsea_small
    for shift in shifts:
        before = reference
        reference = _reference_step(net, objective, reference, shift, 0.02, 0.5)
    # the same maths; the gathers change the memory layout, so the convolutions' rounding differs
    relative_error = (captured - reference).norm() / (reference - chelsea_small).norm()
    assert relative_error < 1e-3, float(relative_error)
    with torch.no_grad():  # the value is the objective at the last step's (jittered) input
        expected = objective(net(torch.roll(before, shifts[-1], (2, 3))))
    torch.testing.assert_close(value, expected, rtol=1e-3, atol=1e-5)
    assert captured.dtype == torch.float32 and not captured.requires_grad


def test_half_precision_step_keeps_the_image_fp32_and_close(lite0, chelsea_small):
    """The autocast path cudagraph uses for bf16, run on the CPU: the network in bf16, the image
    and its update in fp32, the update pointing the same way as fp32's (bf16 keeps ~3 digits, so
    the pixels differ; whether the dream is as strong is the precision probe's question)."""
    objective = parse_objective("block3", lite0.spec)
    net = lite0.truncated(["block3"])
    jitter = kernel.jitter_table([(2, -3)], *chelsea_small.shape[-2:])
    full, _ = kernel.gradient_steps(net, objective, chelsea_small, jitter, 0.02, 0.0)
    half, _ = kernel.gradient_steps(net, objective, chelsea_small, jitter, 0.02, 0.0, torch.bfloat16)
    assert half.dtype == torch.float32
    alignment = torch.nn.functional.cosine_similarity(
        (half - chelsea_small).flatten(), (full - chelsea_small).flatten(), 0
    )
    assert alignment > 0.85, float(alignment)  # measured 0.91


class _Captures:
    """Stands in for the CUDA capture: records what was captured, fails where it is told to."""

    def __init__(self, failing=()):
        self.failing, self.calls = set(failing), []

    def __call__(self, key):
        self.calls.append(key)
        if key in self.failing:
            raise RuntimeError("CUDA error: operation not permitted when stream is capturing")
        return f"graph{key}"


SHAPE, OTHER_SHAPE = (180, 320, 2), (90, 160, 2)
FP32, BF16 = torch.float32, torch.bfloat16


def test_each_shape_and_precision_is_captured_once():
    captures = _Captures()
    cache = GraphCache(captures)
    assert not cache.is_ready(SHAPE, FP32)
    first = cache.get(SHAPE, FP32)
    assert cache.get(SHAPE, FP32) is first and cache.is_ready(SHAPE, FP32)
    cache.get(OTHER_SHAPE, FP32)
    cache.get((180, 320, 3), FP32)  # another step count is another graph
    cache.get(SHAPE, BF16)
    assert captures.calls == [(*SHAPE, FP32), (*OTHER_SHAPE, FP32), (180, 320, 3, FP32), (*SHAPE, BF16)]


def test_a_failed_capture_falls_back_to_eager_for_that_shape_alone_once(caplog):
    captures = _Captures(failing={(*SHAPE, FP32)})
    cache = GraphCache(captures)
    with caplog.at_level("WARNING"):
        for _ in range(5):  # frame after frame: no retry
            assert cache.get(SHAPE, FP32) is None
    assert captures.calls == [(*SHAPE, FP32)]
    assert [r.getMessage() for r in caplog.records if "capture failed" in r.getMessage()] == [
        "CUDA graph capture failed for 320x180, 2 steps, fp32 (RuntimeError: CUDA error: operation not "
        "permitted when stream is capturing); that shape runs eager from now"
    ]
    assert cache.is_ready(SHAPE, FP32)  # eager needs no build
    assert cache.get(OTHER_SHAPE, FP32) == f"graph{(*OTHER_SHAPE, FP32)}"  # other shapes still graph


def test_a_failed_half_precision_capture_keeps_the_working_fp32_graph():
    captures = _Captures(failing={(*SHAPE, BF16)})
    cache = GraphCache(captures)
    fp32_graph = cache.get(SHAPE, FP32)
    assert cache.get(SHAPE, BF16) is fp32_graph
    assert cache.get(SHAPE, BF16) is fp32_graph
    assert captures.calls == [(*SHAPE, FP32), (*SHAPE, BF16)]  # bf16 tried once, fp32 kept
    # where no fp32 graph exists yet, the fallback captures one; where that fails too, eager
    captures.failing |= {(*OTHER_SHAPE, BF16), (64, 64, 1, BF16), (64, 64, 1, FP32)}
    assert cache.get(OTHER_SHAPE, BF16) == f"graph{(*OTHER_SHAPE, FP32)}"
    assert cache.get((64, 64, 1), BF16) is None
    assert cache.is_ready((64, 64, 1), BF16)


def test_choosing_a_precision_frees_the_graphs_nothing_reaches_any_more():
    cache = GraphCache(_Captures())
    cache.get(SHAPE, FP32)
    cache.get(SHAPE, BF16)
    cache.keep_only(BF16)
    assert list(cache.graphs) == [(*SHAPE, BF16)]
    cache.clear()
    assert not cache.graphs and not cache.is_ready(SHAPE, BF16)


def test_cudagraph_without_a_gpu_is_a_clear_error(lite0):
    objective = parse_objective("block5", lite0.spec)
    with pytest.raises(BackendError, match="eager or onnx"):
        create_backend("cudagraph", lite0, objective, DreamParams(), torch.Generator(), (64, 36))
    if not torch.cuda.is_available():
        with pytest.raises(BackendError, match="CUDA GPU"):
            CudaGraphBackend(lite0.truncated(["block5"]), objective, DreamParams(), torch.Generator())


def _gpu_backend(layer="block5", **params):
    from models.registry import load_network

    network = load_network("efficientnet_lite0", device="cuda")
    objective = parse_objective(layer, network.spec)
    net = network.truncated([layer])
    return network, CudaGraphBackend(net, objective, DreamParams(**params), torch.Generator().manual_seed(1))


@gpu
@needs_cuda
def test_cudagraph_matches_eager_on_the_gpu(chelsea_small):
    network, graph = _gpu_backend(lr=0.02)
    eager = EagerBackend(graph.net, graph.objective, graph.params, torch.Generator().manual_seed(1))
    x = chelsea_small.cuda()
    for _ in range(3):  # replays reuse the captured graph with new jitter
        out_graph, out_eager = graph.run(x, 2), eager.run(x, 2)
        error = (out_graph - out_eager).norm() / (out_eager - x).norm()
        assert error < 0.02, float(error)
    assert list(graph.graphs.graphs) == [(180, 320, 2, torch.float32)]
    convolutions = [p for p in graph.net.parameters() if p.dim() == 4]
    assert convolutions and all(p.is_contiguous(memory_format=torch.channels_last) for p in convolutions)


@gpu
@needs_cuda
def test_recapture_after_a_change_shares_one_pool(chelsea_small):
    """A new step count or size captures a new graph (in the same memory pool); lr changes none."""
    _, graph = _gpu_backend(lr=0.02)
    x = chelsea_small.cuda()
    graph.prepare([(180, 320, 2)])
    first = graph.graphs.graphs[(180, 320, 2, torch.float32)]
    graph.params = graph.params.replace(lr=0.01)
    graph.run(x, 2)
    assert len(graph.graphs.graphs) == 1
    graph.run(x, 3)
    small = torch.nn.functional.interpolate(x, size=(90, 160), mode="bilinear")
    assert graph.run(small, 2).shape == small.shape
    assert len(graph.graphs.graphs) == 3 and graph.graphs.graphs[(180, 320, 2, torch.float32)] is first
    assert {g.graph.pool() for g in graph.graphs.graphs.values()} == {graph.pool}
    # prepare captured the dream's tail at that size too, in the same pool (P3)
    assert list(graph.tails.graphs) == [(180, 320, 0, torch.float32)] and graph.captured
    assert {t.graph.pool() for t in graph.tails.graphs.values()} == {graph.pool}
    graph.close()
    assert not graph.graphs.graphs and not graph.tails.graphs


@gpu
@needs_cuda
def test_a_failed_capture_runs_that_shape_eager_on_the_gpu(chelsea_small, monkeypatch):
    from realtime.dream.backends import cudagraph

    _, graph = _gpu_backend(lr=0.02)
    x = chelsea_small.cuda()
    graph.run(x, 2)  # a working graph for the full size
    real_capture = cudagraph._Capture

    def capture_or_fail(backend, key):
        if key[:2] == (90, 160):
            raise RuntimeError("capture failed on purpose")
        return real_capture(backend, key)

    monkeypatch.setattr(cudagraph, "_Capture", capture_or_fail)
    small = torch.nn.functional.interpolate(x, size=(90, 160), mode="bilinear")
    before = graph.objective_value(small)
    for _ in range(3):
        small = graph.run(small, 2)
    assert graph.objective_value(small) > before  # eager really dreams that shape
    assert (90, 160, 2, torch.float32) in graph.graphs.failed
    assert graph.run(x, 2).shape == x.shape  # the full size still replays its graph


@gpu
@needs_cuda
def test_half_precision_is_chosen_only_within_five_percent(chelsea_small):
    _, graph = _gpu_backend()
    dtype = graph.choose_precision(chelsea_small.cuda(), 2)
    assert dtype in (torch.float32, torch.bfloat16, torch.float16)
    assert {key[3] for key in graph.graphs.graphs} == {dtype}  # the losing precision's graph is freed


@gpu
@needs_cuda
def test_a_frames_steps_never_wait_for_the_gpu(chelsea_small):
    """No host synchronisation inside a frame's steps, eager or replayed (the jitter arrives in a
    pinned non-blocking copy): torch's sync debug mode turns any into an error."""
    _, graph = _gpu_backend(lr=0.02)
    eager = EagerBackend(graph.net, graph.objective, graph.params, torch.Generator().manual_seed(1))
    x = chelsea_small.cuda()
    graph.prepare([(180, 320, 2)])
    eager.run(x, 2)  # first runs may allocate and autotune; the frames after must not sync
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        graph.run(x, 2)
        eager.run(x, 2)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_a_failed_capture_is_visible_in_what_ran():
    """C3: the cache records what really ran each shape, so `captured` and the provider line
    (HUD, bench JSON) never say "cuda graph" for a shape that runs eager."""
    cache = GraphCache(_Captures(failing={(*OTHER_SHAPE, FP32)}))
    cache.get(SHAPE, FP32)
    assert cache.captured and cache.eager_shapes() == []
    cache.get(OTHER_SHAPE, FP32)
    assert not cache.captured and cache.eager_shapes() == [OTHER_SHAPE]
    cache.clear()
    assert cache.captured


def test_the_graph_cache_is_bounded_least_recently_used_first():
    """C2: shapes that keep changing cannot grow the cache without bound."""
    captures = _Captures()
    cache = GraphCache(captures, limit=2)
    a, b, c = (16, 16, 1), (32, 32, 1), (48, 48, 1)
    cache.get(a, FP32)
    cache.get(b, FP32)
    cache.get(a, FP32)  # a is now the most recently used
    cache.get(c, FP32)
    assert list(cache.graphs) == [(*a, FP32), (*c, FP32)]
    cache.get(b, FP32)  # evicted, so captured again (not a failure)
    assert captures.calls.count((*b, FP32)) == 2 and len(cache.graphs) == 2


def test_the_precision_probe_runs_both_precisions_on_the_same_draws_and_spares_the_show():
    """C4: fp32 and half see the very same jitter shifts, averaged over several draws, from a
    generator of the probe's own (the show's generator is not consumed)."""
    from realtime.dream.backends.cudagraph import PRECISION_PROBES, half_is_close, probe_gains

    seen: dict[torch.dtype, list] = {FP32: [], BF16: []}

    def run(x, shifts, dtype):
        seen[dtype].append(list(shifts))
        return x * (2.0 if dtype == FP32 else 1.97)

    show = torch.Generator().manual_seed(7)
    state = show.get_state()
    gains = probe_gains(run, lambda x: float(x.mean()), torch.full((1, 3, 8, 8), 0.25), 2, 4, (FP32, BF16))
    assert seen[FP32] == seen[BF16] and len(seen[FP32]) == PRECISION_PROBES
    assert len({tuple(s) for s in seen[FP32]}) > 1  # several draws, not one repeated
    assert torch.equal(show.get_state(), state)
    assert gains[FP32] == pytest.approx(2.0) and gains[BF16] == pytest.approx(1.97)
    assert half_is_close(gains, BF16) and not half_is_close({FP32: 2.0, BF16: 1.8}, BF16)

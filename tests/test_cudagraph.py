"""The CUDA-graph backend: its capturable step and re-capture rules on the CPU, the graph on a GPU."""

import pytest
import torch

from realtime.dream import kernel
from realtime.dream.backends import EagerBackend, create_backend
from realtime.dream.backends.cudagraph import CudaGraphBackend, capture_key
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


def test_only_shape_changes_need_a_new_capture(lite0):
    objective = parse_objective("block5", lite0.spec)
    key = capture_key(objective, 180, 320, 2, torch.float32)
    # step size, jitter, TV weight, persistence: buffers, not part of the key
    assert key == capture_key(parse_objective("block5", lite0.spec), 180, 320, 2, torch.float32)
    assert key != capture_key(objective, 180, 320, 3, torch.float32)  # steps
    assert key != capture_key(objective, 90, 160, 2, torch.float32)  # dream size
    assert key != capture_key(parse_objective("block6", lite0.spec), 180, 320, 2, torch.float32)
    assert key != capture_key(objective, 180, 320, 2, torch.bfloat16)


def test_cudagraph_without_a_gpu_is_a_clear_error(lite0):
    objective = parse_objective("block5", lite0.spec)
    with pytest.raises(BackendError, match="eager or onnx"):
        create_backend("cudagraph", lite0, objective, DreamParams(), torch.Generator(), (64, 36))
    if not torch.cuda.is_available():
        with pytest.raises(BackendError, match="CUDA GPU"):
            CudaGraphBackend(lite0.truncated(["block5"]), objective, DreamParams(), torch.Generator())


@gpu
@needs_cuda
def test_cudagraph_matches_eager_on_the_gpu(chelsea_small):
    from models.registry import load_network

    network = load_network("efficientnet_lite0", device="cuda")
    objective = parse_objective("block5", network.spec)
    net = network.truncated(["block5"])
    params = DreamParams(lr=0.02)
    graph = CudaGraphBackend(net, objective, params, torch.Generator().manual_seed(1))
    eager = EagerBackend(net, objective, params, torch.Generator().manual_seed(1))
    x = chelsea_small.cuda()
    for _ in range(3):  # replays reuse the captured graph with new jitter
        out_graph, out_eager = graph.run(x, 2), eager.run(x, 2)
        error = (out_graph - out_eager).norm() / (out_eager - x).norm()
        assert error < 0.02, float(error)
    assert len(graph._captures) == 1


@gpu
@needs_cuda
def test_half_precision_is_chosen_only_within_five_percent(chelsea_small):
    from models.registry import load_network

    network = load_network("efficientnet_lite0", device="cuda")
    objective = parse_objective("block5", network.spec)
    graph = CudaGraphBackend(network.truncated(["block5"]), objective, DreamParams(), torch.Generator())
    dtype = graph.choose_precision(chelsea_small.cuda(), 2)
    assert dtype in (torch.float32, torch.bfloat16, torch.float16)

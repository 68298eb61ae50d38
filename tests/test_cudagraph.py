"""The CUDA-graph backend: its capturable step and re-capture rules on the CPU, the graph on a GPU."""

import pytest
import torch

from realtime.dream import kernel
from realtime.dream.backends import EagerBackend, create_backend
from realtime.dream.backends.cudagraph import (
    CudaGraphBackend,
    JitterIndices,
    capture_key,
    jittered_steps,
    shift_indices,
)
from realtime.dream.objectives import parse_objective
from realtime.errors import BackendError
from realtime.params import DreamParams

gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("shift", [0, 3, -5, 17])
def test_shift_indices_are_a_roll(shift):
    x = torch.arange(2 * 3 * 12 * 8, dtype=torch.float32).reshape(2, 3, 12, 8)
    torch.testing.assert_close(x.index_select(2, shift_indices(12, shift)), torch.roll(x, shift, 2))
    torch.testing.assert_close(x.index_select(3, shift_indices(8, shift)), torch.roll(x, shift, 3))


def test_capturable_steps_match_the_reference_kernel(lite0, chelsea_small):
    """The maths captured in the graph is kernel.step's: same shifts, same result (run on the CPU)."""
    objective = parse_objective("block3", lite0.spec)
    net = lite0.truncated(["block3"])
    shifts = [(3, -4), (-2, 6)]
    jitter = JitterIndices.identity(len(shifts), *chelsea_small.shape[-2:], "cpu")
    for k, shift in enumerate(shifts):
        jitter.set(k, shift)
    lr, tv = torch.tensor(0.02), torch.tensor(0.5)
    captured = jittered_steps(net, objective, chelsea_small, jitter, lr, tv, torch.float32)
    reference = chelsea_small
    for shift in shifts:
        reference = kernel.step(net, reference, objective, 0.02, shift, tv_weight=0.5)
    # the same maths; the gathers change the memory layout, so the convolutions' rounding differs
    relative_error = (captured - reference).norm() / (reference - chelsea_small).norm()
    assert relative_error < 1e-3, float(relative_error)


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

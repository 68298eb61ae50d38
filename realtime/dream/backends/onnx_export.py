"""Export a dream's whole gradient step (forward, backward, normalised update) to ONNX.

`torch.onnx.export` cannot export autograd itself, so the step is first traced into a plain aten
graph with `make_fx`, which records the backward ops too. Two backward ops need rewriting on the
way: `convolution_backward` (only the input gradient is wanted: a convolution with the flipped
kernel for stride 1, a transposed convolution otherwise) and `hardtanh_backward` (a mask
multiply, much cheaper in onnxruntime than the default `Where` chain). The traced function is the
kernel's own `gradient_steps`; its jitter table (gather indices), step size and TV weight are graph
inputs, so one exported file serves every frame.

Exported files are cached under the user cache dir, keyed by model, weights, objective, size,
steps and opset, so the export (seconds) happens once per look.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch._decomp import get_decompositions
from torch.fx.experimental.proxy_tensor import make_fx

from models.registry import Network
from realtime.dream import kernel
from realtime.errors import BackendError
from realtime.io.paths import cache_dir

log = logging.getLogger(__name__)
aten = torch.ops.aten

OPSET = 18
EXPORT_FORMAT_VERSION = 3  # bump when the exported graph changes, to invalidate old cache files
INPUT_NAMES = ["x", "jitter", "lr", "tv_weight"]
OUTPUT_NAMES = ["x_new", "objective"]


def cached_path(network: Network, objective_spec: str, size: tuple[int, int], steps: int) -> Path:
    """Where the export for this look lives; the name says what it is, a hash keeps it unique."""
    key = "|".join(
        [network.spec.name, network.weights_origin, objective_spec, f"{size[0]}x{size[1]}", str(steps)]
        + [f"opset{OPSET}", f"v{EXPORT_FORMAT_VERSION}", torch.__version__]
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    safe_objective = "".join(c if c.isalnum() else "_" for c in objective_spec)[:40]
    name = f"{network.spec.name}-{safe_objective}-{size[0]}x{size[1]}-k{steps}-opset{OPSET}-{digest}.onnx"
    return cache_dir() / name


def exported_path(
    network: Network,
    objective,
    size: tuple[int, int],
    progress: Callable[[str], None] | None = None,
) -> Path:
    """The cached one-step export at `size` (width, height), exported now when it is not there yet:
    the one file both the onnx and the openvino backends run."""
    path = cached_path(network, str(objective), size, steps=1)
    if not path.exists():
        export_step(network, objective, size, 1, path, progress)
    return path


# --- decompositions of the backward ops ---------------------------------------------------------


def _convolution_input_gradient(
    grad_output,
    input,
    weight,
    bias_sizes,
    stride,
    padding,
    dilation,
    transposed,
    output_padding,
    groups,
    _mask,
):
    """aten.convolution_backward, input gradient only (the network's weights are frozen).

    For a stride-1 "same" convolution that gradient is a convolution with the flipped kernel, which
    onnxruntime runs on its fast Conv kernels (its grouped ConvTranspose is slow on the CPU); other
    convolutions use the transposed convolution. (A zero-dilation rewrite of the strided ones was
    measured no faster.)
    """
    kernel_size = weight.shape[2:]
    stride_one_same = list(stride) == [1, 1] and list(dilation) == [1, 1] and not transposed
    if stride_one_same and all(2 * p == k - 1 for p, k in zip(padding, kernel_size, strict=True)):
        depthwise = groups > 1 and weight.shape[1] == 1
        if groups == 1 or depthwise:
            flipped = weight.flip(2, 3) if depthwise else weight.transpose(0, 1).flip(2, 3)
            grad_input = aten.convolution.default(
                grad_output, flipped, None, [1, 1], padding, [1, 1], False, [0, 0], groups
            )
            return grad_input, None, None
    out_pad = [
        input.shape[2 + i]
        - (
            (grad_output.shape[2 + i] - 1) * stride[i]
            - 2 * padding[i]
            + dilation[i] * (kernel_size[i] - 1)
            + 1
        )
        for i in range(2)
    ]
    grad_input = aten.convolution.default(
        grad_output, weight, None, stride, padding, dilation, True, out_pad, groups
    )
    return grad_input, None, None


def _hardtanh_gradient(grad_output, x, low, high):
    return grad_output * ((x > low) & (x < high)).to(grad_output.dtype)


def decompositions() -> dict:
    table = get_decompositions(
        [
            aten.max_pool2d_with_indices_backward,
            aten.threshold_backward,
            aten._adaptive_avg_pool2d_backward,
            aten.avg_pool2d_backward,
        ]
    )
    table[aten.convolution_backward.default] = _convolution_input_gradient
    table[aten.hardtanh_backward.default] = _hardtanh_gradient
    return table


# --- the traced step ----------------------------------------------------------------------------


def make_step_function(net: torch.nn.Module, objective: Callable) -> Callable:
    """The kernel's `gradient_steps` as a pure function of the graph's input tensors."""

    def dream_steps(x, jitter, lr, tv_weight):
        return kernel.gradient_steps(net, objective, x, jitter, lr, tv_weight)

    return dream_steps


def example_inputs(size: tuple[int, int], steps: int) -> tuple[torch.Tensor, ...]:
    width, height = size
    return (
        torch.rand(1, 3, height, width),
        kernel.jitter_table([(0, 0)] * steps, height, width),
        torch.tensor(0.02),
        torch.tensor(0.0),
    )


def export_step(
    network: Network,
    objective,
    size: tuple[int, int],
    steps: int,
    path: Path,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Trace and export the k-step update for `objective` at `size` (width, height) to `path`."""
    say = progress or (lambda message: log.info("%s", message))
    # a private CPU copy: the truncated net shares its modules with the live network (maybe on a GPU)
    net = copy.deepcopy(network.truncated(sorted(objective.layers))).cpu()
    net = net.to(memory_format=torch.contiguous_format)
    inputs = example_inputs(size, steps)
    started = time.perf_counter()
    say(f"export [1/3] tracing the gradient step ({network.spec.name} {objective}, {size[0]}x{size[1]})")
    try:
        graph = make_fx(make_step_function(net, objective), decomposition_table=decompositions())(*inputs)
        graph.eval()  # a traced function has no training behaviour; this silences the exporter's warning
        say("export [2/3] converting to ONNX")
        path.parent.mkdir(parents=True, exist_ok=True)
        # a name of its own per writer: two exports of the same look (two processes, or a restarted
        # worker beside a slow one) never write into the same file; the last complete one wins
        fd, partial_name = tempfile.mkstemp(prefix=path.stem + ".", suffix=".partial", dir=path.parent)
        os.close(fd)
        partial = Path(partial_name)
        try:
            # torch.onnx prints its own progress on stdout, which belongs to `bench --json`: keep it off
            with contextlib.redirect_stdout(io.StringIO()):
                torch.onnx.export(
                    graph,
                    inputs,
                    str(partial),
                    dynamo=True,
                    opset_version=OPSET,
                    input_names=INPUT_NAMES,
                    output_names=OUTPUT_NAMES,
                    external_data=False,
                    verbose=False,
                )
            os.replace(partial, path)  # only a complete file ever has the cached name
        finally:
            partial.unlink(missing_ok=True)
    except Exception as exc:  # any tracing/exporter failure means "this backend is unavailable"
        raise BackendError(
            f"ONNX export of {network.spec.name} {objective} failed ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); use --backend eager"
        ) from exc
    say(f"export [3/3] saved {path.name} in {time.perf_counter() - started:.1f} s")
    return path


def print_progress(message: str) -> None:
    print(f"dreamcam: {message}", file=sys.stderr, flush=True)

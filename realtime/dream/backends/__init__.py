"""Compute backends: interchangeable engines behind one contract (`Backend`, in base.py).

Every backend runs the kernel's one step (realtime.dream.kernel.step), in its own way:

    eager   plain PyTorch autograd, any device: the reference
    onnx    the whole step exported to ONNX and run by onnxruntime (TensorRT, CUDA or CPU provider)
    cudagraph  the frame's k steps captured as one CUDA graph and replayed (GPU only)
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from models.registry import Network
from realtime.dream.backends.base import Backend, Shape
from realtime.dream.backends.cudagraph import CudaGraphBackend
from realtime.dream.backends.eager import EagerBackend
from realtime.dream.backends.onnx import OnnxBackend
from realtime.dream.objectives import Objective
from realtime.errors import BackendError
from realtime.params import DreamParams

log = logging.getLogger(__name__)

BACKENDS = ("auto", "eager", "onnx", "cudagraph")


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when a GPU answers, else cpu; asking for cuda without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BackendError("--device cuda asked for, but no CUDA GPU is available; use --device cpu")
    if name not in ("cpu", "cuda"):
        raise BackendError(f"unknown device '{name}'; choose auto, cpu or cuda")
    return torch.device(name)


def check_backend_name(name: str) -> None:
    if name not in BACKENDS:
        raise BackendError(f"unknown backend '{name}'; choose one of: {', '.join(BACKENDS)}")


def create_backend(
    request: str,
    network: Network,
    objective: Objective,
    params: DreamParams,
    generator: torch.Generator,
    size: tuple[int, int],
    progress: Callable[[str], None] | None = None,
) -> Backend:
    """Build the requested backend, ready for `size` (width, height) before the first frame."""
    check_backend_name(request)
    if request == "cudagraph" and network.device.type != "cuda":
        raise BackendError(
            "the cudagraph backend needs a CUDA GPU (--device cuda); use --backend eager or onnx"
        )
    net = network.truncated(sorted(objective.layers))
    if request == "auto" and network.device.type == "cuda":
        try:
            backend = _ready_cudagraph(net, objective, params, generator, size)
        except Exception as exc:  # a driver or capture problem must not stop the show: eager works
            log.warning(
                "backend auto: eager, because CUDA graph capture failed (%s: %s)", type(exc).__name__, exc
            )
            return EagerBackend(net, objective, params, generator)
        log.info("backend auto: cudagraph (one graph replay per frame instead of hundreds of launches)")
        return backend
    if request == "auto":
        # Measured side by side on a 2-core CPU, onnxruntime's exported step was no faster than eager
        # autograd (docs/BENCHMARKS.md) and costs seconds of export per look, so auto stays eager.
        log.info("backend auto: eager (onnx measured no faster on the CPU; see docs/BENCHMARKS.md)")
        return EagerBackend(net, objective, params, generator)
    if request == "cudagraph":
        return _ready_cudagraph(net, objective, params, generator, size)
    if request == "onnx":
        backend = OnnxBackend(network, net, objective, params, generator, progress)
        backend.prepare([(size[1], size[0], params.steps)])  # export (or load the export) now, not mid-show
        return backend
    return EagerBackend(net, objective, params, generator)


def _ready_cudagraph(net, objective, params, generator, size) -> CudaGraphBackend:
    """Choose the precision and capture the frame's graph now, before the first frame is shown."""
    backend = CudaGraphBackend(net, objective, params, generator)
    width, height = size
    # a smooth random picture as the precision probe: noise alone would exaggerate fp16 error
    probe = torch.rand(
        1, 3, max(2, height // 16), max(2, width // 16), generator=torch.Generator().manual_seed(0)
    )
    probe = torch.nn.functional.interpolate(probe, size=(height, width), mode="bilinear").to(backend.device)
    backend.choose_precision(probe, params.steps)
    return backend


__all__ = [
    "CudaGraphBackend",
    "BACKENDS",
    "Backend",
    "EagerBackend",
    "OnnxBackend",
    "check_backend_name",
    "create_backend",
    "resolve_device",
    "Shape",
]

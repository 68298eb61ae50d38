"""Compute backends: interchangeable engines behind one contract.

A backend is built for one DreamNet and objective and offers:
    step(x) -> x          one gradient step (jitter, forward, backward, normalised update, clamp)
    run(x, steps) -> x    k steps, the unit a frame needs
    objective_value(x)    the objective at x, for HUDs and tests
Step size, jitter and TV weight are read from the current DreamParams on every call, so changing
them never rebuilds anything.

    eager   plain PyTorch autograd, any device: the reference
    onnx    the whole step exported to ONNX and run by onnxruntime's CPU provider
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from models.registry import Network
from realtime.backends.eager import EagerBackend
from realtime.backends.onnx import OnnxBackend
from realtime.errors import BackendError
from realtime.objectives import Objective
from realtime.params import DreamParams

log = logging.getLogger(__name__)

BACKENDS = ("auto", "eager", "onnx")
Backend = EagerBackend | OnnxBackend


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
    if request == "onnx" and network.device.type != "cpu":
        raise BackendError("the onnx backend runs on the CPU only in this build; use --backend eager")
    net = network.truncated(sorted(objective.layers))
    if request == "auto":
        # Measured side by side on a 2-core CPU, onnxruntime's exported step was no faster than eager
        # autograd (docs/BENCHMARKS.md) and costs seconds of export per look, so auto stays eager.
        log.info("backend auto: eager (onnx measured no faster on the CPU; see docs/BENCHMARKS.md)")
        return EagerBackend(net, objective, params, generator)
    if request == "onnx":
        backend = OnnxBackend(network, net, objective, params, generator, progress)
        backend.session_for(size[1], size[0])  # export (or load the cached export) now, not mid-show
        return backend
    return EagerBackend(net, objective, params, generator)


__all__ = [
    "BACKENDS",
    "Backend",
    "EagerBackend",
    "OnnxBackend",
    "check_backend_name",
    "create_backend",
    "resolve_device",
]

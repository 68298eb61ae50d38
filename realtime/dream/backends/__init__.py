"""Compute backends: interchangeable engines behind one contract (`Backend`, in base.py).

Every backend runs the kernel's one step (realtime.dream.kernel.step), in its own way:

    eager   plain PyTorch autograd, any device: the reference
    onnx    the whole step exported to ONNX and run by onnxruntime (CUDA or CPU provider)
    openvino   the same exported ONNX step compiled by OpenVINO Runtime (CPU; Intel GPU/NPU unmeasured)
    cudagraph  the frame's k steps captured as one CUDA graph and replayed (GPU only)
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from models.registry import RANDOM_ORIGIN, Network
from realtime.dream import cuda_driver
from realtime.dream.backends.auto import AutoBackend, build_candidates, candidates, cpu_has_native_bf16
from realtime.dream.backends.base import PRECISIONS, Backend, Shape
from realtime.dream.backends.cudagraph import CudaGraphBackend
from realtime.dream.backends.eager import EagerBackend
from realtime.dream.backends.onnx import OnnxBackend, onnxruntime_available
from realtime.dream.backends.openvino import OpenVinoBackend, openvino_available
from realtime.dream.objectives import Objective
from realtime.errors import BackendError
from realtime.params import DreamParams

log = logging.getLogger(__name__)

BACKENDS = ("auto", "eager", "onnx", "openvino", "cudagraph")


DEVICES = ("auto", "cuda", "mps", "cpu")
PRECISION_CHOICES = ("auto", *PRECISIONS)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when a GPU answers, then Apple's mps, else cpu; asking for a device that is
    not there is an error that names the alternatives."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        driver_problem = cuda_driver.too_old(cuda_driver.driver_version(), torch.version.cuda)
        if driver_problem:  # a GPU is there: say why it is not used, never fall back in silence
            log.warning("%s; dreaming on the CPU meanwhile", driver_problem)
        return torch.device("mps" if mps_available() else "cpu")
    if name not in DEVICES:
        raise BackendError(f"unknown device '{name}'; choose one of: {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise BackendError(
            f"--device cuda asked for, but no CUDA GPU is available: "
            f"{cuda_driver.unavailable_reason(torch.version.cuda)}; use --device auto or cpu"
        )
    if name == "mps" and not mps_available():
        raise BackendError(
            "--device mps asked for, but Apple's Metal (MPS) is not available; use --device cpu"
        )
    return torch.device(name)


def check_backend_name(name: str) -> None:
    if name not in BACKENDS:
        raise BackendError(f"unknown backend '{name}'; choose one of: {', '.join(BACKENDS)}")


def check_precision(name: str) -> None:
    if name not in PRECISION_CHOICES:
        raise BackendError(f"unknown precision '{name}'; choose one of: {', '.join(PRECISION_CHOICES)}")


def create_backend(
    request: str,
    network: Network,
    objective: Objective,
    params: DreamParams,
    generator: torch.Generator,
    size: tuple[int, int],
    progress: Callable[[str], None] | None = None,
    precision: str = "auto",
) -> Backend:
    """Build the requested backend, ready for `size` (width, height) before the first frame.

    `precision` (auto, fp32, bf16, fp16) is the precision the network runs in. On CUDA auto means
    fp32, except on cudagraph where a gain probe with the real weights may choose half precision;
    on a CPU `auto` (backend or precision) measures its candidates in the show (auto.py).
    """
    check_backend_name(request)
    check_precision(precision)
    device = network.device
    if request == "cudagraph" and device.type != "cuda":
        raise BackendError(
            "the cudagraph backend needs a CUDA GPU (--device cuda); use --backend eager or onnx"
        )
    if device.type == "cuda":
        # every dream shape is fixed and reused for the whole show: let cuDNN time its convolution
        # algorithms once per shape and keep the fastest
        torch.backends.cudnn.benchmark = True
    net = network.truncated(sorted(objective.layers))
    shape = (size[1], size[0], params.steps)
    if request == "auto" and device.type == "cuda":
        try:
            backend = _ready_cudagraph(network, net, objective, params, generator, shape, precision)
        except BackendError:
            raise
        except Exception as exc:  # a driver or capture problem must not stop the show: eager works
            log.warning(
                "backend auto: eager, because CUDA graph capture failed (%s: %s)", type(exc).__name__, exc
            )
            return _eager(net, objective, params, generator, precision)
        log.info("backend auto: cudagraph (one graph replay per frame instead of hundreds of launches)")
        return backend
    if request == "auto" or (request == "eager" and precision == "auto"):
        # off CUDA: measured in the show's first frames, cached per machine and look (auto.py)
        options = candidates(
            device.type,
            request,
            precision,
            cpu_has_native_bf16(),
            onnxruntime_available(),
            openvino_available(),
        )
        if len(options) == 1:
            only = options[0]
            log.info("backend auto: %s (the only candidate on %s)", only.label, device.type)
            return _eager(net, objective, params, generator, only.precision)
        backends = build_candidates(network, net, objective, params, generator, options, progress)
        return AutoBackend(network, net, objective, params, backends)
    if request == "cudagraph":
        return _ready_cudagraph(network, net, objective, params, generator, shape, precision)
    if request == "onnx":
        if precision not in ("auto", "fp32"):
            raise BackendError("the onnx backend runs fp32 only; use --precision fp32 or --backend cudagraph")
        backend = OnnxBackend(network, net, objective, params, generator, progress)
        backend.prepare([shape])  # export (or load the cached export) now, not mid-show
        return backend
    if request == "openvino":
        if precision not in ("auto", "fp32"):
            raise BackendError(
                "the openvino backend runs fp32 only (its bf16 was slower and strayed, docs/BENCHMARKS.md); "
                "use --precision fp32"
            )
        backend = OpenVinoBackend(network, net, objective, params, generator, progress)
        backend.prepare([shape])  # export (or load the cached export) and compile now, not mid-show
        return backend
    return _eager(net, objective, params, generator, precision)


def _eager(net, objective, params, generator, precision: str) -> EagerBackend:
    dtype = DTYPES.get(precision, torch.float32)
    if (
        dtype == torch.bfloat16
        and next(net.buffers()).device.type == "cuda"
        and not torch.cuda.is_bf16_supported()
    ):
        raise BackendError("this GPU has no bf16; use --precision fp16 or fp32")
    return EagerBackend(net, objective, params, generator, dtype)


def _ready_cudagraph(network, net, objective, params, generator, shape, precision) -> CudaGraphBackend:
    """Choose the precision and capture the frame's graph now, before the first frame is shown."""
    backend = CudaGraphBackend(net, objective, params, generator)
    if precision != "auto":
        backend.use_precision(DTYPES[precision])
    elif network.weights_origin == RANDOM_ORIGIN:
        # the probe asks whether half precision dreams as well as fp32: random weights cannot say
        log.warning(
            "precision auto: fp32, as the weights are random (pin --precision to time half precision)"
        )
    else:
        height, width, steps = shape
        # a smooth random picture as the probe: noise alone would exaggerate half-precision error
        probe = torch.rand(
            1, 3, max(2, height // 16), max(2, width // 16), generator=torch.Generator().manual_seed(0)
        )
        probe = torch.nn.functional.interpolate(probe, size=(height, width), mode="bilinear")
        backend.choose_precision(probe.to(backend.device), steps)
    backend.prepare([shape])
    return backend


__all__ = [
    "AutoBackend",
    "CudaGraphBackend",
    "BACKENDS",
    "Backend",
    "EagerBackend",
    "OnnxBackend",
    "OpenVinoBackend",
    "check_backend_name",
    "check_precision",
    "DEVICES",
    "PRECISION_CHOICES",
    "create_backend",
    "resolve_device",
    "Shape",
]

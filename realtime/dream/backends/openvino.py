"""The OpenVINO backend: the exported gradient step, the same ONNX file onnxruntime runs, compiled by
OpenVINO Runtime (PyPI `openvino`).

Why it earns its place: on a CPU it runs the whole step (jitter gather, forward, backward,
normalised update, clamp) 2-2.4x faster than eager torch or onnxruntime with the same threads and
the same file (docs/BENCHMARKS.md, "OpenVINO"), with the same update (cosine 1.0000 to onnxruntime's).

How it is compiled, and why (OpenVINO's CPU device properties, docs.openvino.ai "CPU Device"):
- INFERENCE_PRECISION_HINT f32: OpenVINO's default on a CPU with AVX-512 BF16 or AMX is bf16, which
  on the AMD EPYC this was measured on ran slower than f32 and strayed (update cosine 0.72-0.88 to
  f32's); fp32 is pinned, other precisions are refused.
- INFERENCE_NUM_THREADS = torch's team (the dream's threads: one core is left to the display and
  the flow, cli's `--threads`), PERFORMANCE_HINT LATENCY and NUM_STREAMS 1 (one request at a time:
  a dream is a chain of steps), ENABLE_CPU_PINNING off and SCHEDULING_CORE_TYPE ANY_CORE, so its
  threads never hold a core the display's or the flow's thread needs.
- Any property the device does not list in SUPPORTED_PROPERTIES is left out (a GPU or NPU has no
  CPU pinning), so one code path serves every OpenVINO device.

Which device: the CPU, unless $DREAMCAM_OPENVINO_DEVICE names another one OpenVINO lists (`dreamcam
doctor` shows them: an Intel integrated GPU "GPU", an NPU "NPU"). Those run the same code, but have
not been measured: the step's tensors go through host memory on every step there.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch

from models.registry import DreamNet, Network
from realtime.dream import kernel
from realtime.dream.backends.base import Shape, objective_value, random_shifts
from realtime.dream.backends.onnx_export import exported_path
from realtime.dream.objectives import Objective
from realtime.errors import BackendError
from realtime.params import DreamParams

log = logging.getLogger(__name__)

DEVICE_VARIABLE = "DREAMCAM_OPENVINO_DEVICE"
MEASURED_DEVICES = ("CPU",)  # the devices whose figures are in docs/BENCHMARKS.md
WHEEL_PLATFORMS = "Linux and Windows on x86-64, Linux on aarch64, macOS on arm64"
INSTALL = "pip install openvino"


def has_wheel(system: str | None = None, machine: str | None = None) -> bool:
    """Whether PyPI has an `openvino` wheel for this platform (pyproject's markers say the same)."""
    system = system or sys.platform
    machine = (machine or platform.machine()).lower()
    if machine in ("x86_64", "amd64"):
        return system.startswith(("linux", "win32"))
    if machine in ("aarch64", "arm64"):
        return system.startswith(("linux", "darwin"))
    return False


def openvino_version() -> str | None:
    """The installed OpenVINO Runtime's version, or None when it cannot be imported."""
    try:
        import openvino
    except Exception:  # an ImportError, or a broken install failing inside its own import
        return None
    return str(getattr(openvino, "__version__", "unknown")).split("-")[0]


def openvino_available() -> bool:
    return openvino_version() is not None


def why_unavailable() -> str:
    """One line on why OpenVINO cannot be used here, with the fix ("" when it can)."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        if not has_wheel():
            return f"openvino has no wheel for this platform (PyPI has them for {WHEEL_PLATFORMS})"
        return f"openvino is not installed; {INSTALL}"
    except Exception as exc:
        broken = f"{type(exc).__name__}: {exc}"
        return f"openvino is installed but does not load ({broken}); reinstall it: {INSTALL}"
    return ""


def requested_device() -> str:
    """The OpenVINO device asked for: $DREAMCAM_OPENVINO_DEVICE, upper case, or the CPU."""
    return os.environ.get(DEVICE_VARIABLE, "").strip().upper() or "CPU"


def available_devices(core=None) -> dict[str, str]:
    """{device: full name} for every device this OpenVINO sees (CPU, GPU, GPU.1, NPU...)."""
    import openvino as ov

    core = core or ov.Core()
    names = {}
    for device in core.available_devices:
        try:
            names[device] = str(core.get_property(device, "FULL_DEVICE_NAME"))
        except Exception:  # a device that lists itself but cannot answer still counts
            names[device] = device
    return names


def compile_config(device: str, threads: int, supported: Iterable[str]) -> dict[str, object]:
    """The compile properties for `device` (see the module docstring), only those it supports."""
    wanted: dict[str, object] = {
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
        "INFERENCE_NUM_THREADS": threads,
        "ENABLE_CPU_PINNING": False,
        "SCHEDULING_CORE_TYPE": "ANY_CORE",
    }
    supported = set(supported)
    if not device.startswith("CPU"):  # threads and pinning are the CPU's business
        wanted = {k: v for k, v in wanted.items() if k in ("INFERENCE_PRECISION_HINT", "PERFORMANCE_HINT")}
    return {k: v for k, v in wanted.items() if k in supported}


class OpenVinoBackend:
    name = "openvino"
    precision = "fp32"  # see the module docstring
    captured = False  # one compiled graph per step, run as a request: no device graph replay

    def __init__(
        self,
        network: Network,
        net: DreamNet,
        objective: Objective,
        params: DreamParams,
        generator: torch.Generator,
        progress: Callable[[str], None] | None = None,
        device: str | None = None,
    ):
        problem = why_unavailable()
        if problem:
            raise BackendError(f"--backend openvino: {problem}; or use --backend eager")
        if network.device.type != "cpu":
            raise BackendError(
                "the openvino backend takes its tensors from the CPU (--device cpu); on a CUDA GPU "
                "use --backend cudagraph"
            )
        import openvino as ov

        self.network, self.net, self.objective = network, net, objective
        self.params, self.generator, self.progress = params, generator, progress
        self.device = network.device
        self.core = ov.Core()
        self.ov_device = device or requested_device()
        known = available_devices(self.core)
        if self.ov_device not in known:
            raise BackendError(
                f"OpenVINO has no device '{self.ov_device}' here (it has: {', '.join(known) or 'none'}); "
                f"set {DEVICE_VARIABLE} to one of those, or unset it for the CPU"
            )
        self.threads = torch.get_num_threads()  # the dream's team, as the show set it
        self._requests: dict[tuple[int, int], object] = {}

    @property
    def provider(self) -> str:
        measured = "" if self.ov_device in MEASURED_DEVICES else ", unmeasured"
        plural = "s" if self.threads != 1 else ""
        threads = f", {self.threads} thread{plural}" if self.ov_device.startswith("CPU") else ""
        return f"OpenVINO {self.ov_device}{threads}{measured}"

    def session_for(self, height: int, width: int):
        """The compiled step's infer request for one image size, exporting the graph the first time
        (the name is onnx's: auto opens either kind of exported step the same way)."""
        if (height, width) not in self._requests:
            path = exported_path(self.network, self.objective, (width, height), self.progress)
            self._requests[(height, width)] = self._compile(path, width, height)
        return self._requests[(height, width)]

    def _compile(self, path: Path, width: int, height: int):
        supported = self.core.get_property(self.ov_device, "SUPPORTED_PROPERTIES")
        config = compile_config(self.ov_device, self.threads, supported)
        try:
            model = self.core.read_model(str(path))
            compiled = self.core.compile_model(model, self.ov_device, config)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise BackendError(
                f"OpenVINO cannot compile {path.name} for {self.ov_device} ({type(exc).__name__}: {first}); "
                "delete the file to re-export it, or use --backend onnx or eager"
            ) from None
        shape = [int(d) for d in compiled.input("x").get_shape()]
        if shape != [1, 3, height, width]:  # a file swapped or left by something else
            other = f"{shape[-1]}x{shape[-2]}"
            raise BackendError(
                f"{path.name} takes {other} images, not {width}x{height}; delete it to re-export"
            )
        log.info("openvino backend: %s compiled for %s (%s)", path.name, self.ov_device, config)
        return compiled.create_infer_request()

    # --- the contract ---------------------------------------------------------------------

    def prepare(self, shapes: Iterable[Shape]) -> None:
        """Export (or load the cached export), compile and run once every image size: the first
        request builds the CPU plugin's kernels."""
        for height, width in sorted({(h, w) for h, w, _ in shapes}):
            if (height, width) in self._requests:
                continue
            request = self.session_for(height, width)
            self._run(request, torch.full((1, 3, height, width), 0.5), [(0, 0)], 0.0, 0.0)

    def is_prepared(self, shape: Shape) -> bool:
        return shape[:2] in self._requests

    def run(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        request = self.session_for(*x.shape[-2:])
        shifts = random_shifts(self.generator, self.params.jitter, steps)
        return self._run(request, x, shifts, self.params.lr, self.params.tv_weight)

    def objective_value(self, x: torch.Tensor) -> float:
        return objective_value(self.net, self.objective, x)

    def close(self) -> None:
        self._requests.clear()  # OpenVINO frees a compiled model with its last reference

    # --- running --------------------------------------------------------------------------

    def _run(self, request, x: torch.Tensor, shifts: list[tuple[int, int]], lr: float, tv_weight: float):
        """numpy in, numpy out, one request per step; the step's output is the next one's input."""
        height, width = x.shape[-2:]
        numbers = {"lr": np.array(lr, dtype=np.float32), "tv_weight": np.array(tv_weight, dtype=np.float32)}
        x_host = x.detach().float().contiguous().cpu().numpy()
        for shift in shifts:
            jitter = kernel.jitter_table([shift], height, width).numpy()
            result = request.infer({"x": x_host, "jitter": jitter, **numbers}, share_inputs=True)
            x_host = result["x_new"]
        return torch.from_numpy(x_host).to(x.device)

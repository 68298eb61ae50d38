"""The ONNX backend: the exported gradient step run by onnxruntime.

One exported graph per image size does a whole step (jitter gather, forward, backward,
normalised update, clamp); it is exported on first use and cached (realtime.dream.backends.onnx_export).

On a CUDA GPU it runs on the TensorRT provider (when TensorRT loads) or the CUDA provider, and
never silently on the CPU: if onnxruntime cannot load its CUDA provider the backend refuses with
the libraries it is missing (they come with `pip install 'onnxruntime-gpu[cuda,cudnn]'`). Written
to onnxruntime's docs:
- I/O Binding (onnxruntime.ai/docs/performance/tune-performance/iobinding.html): inputs and outputs
  are bound to torch tensors on the GPU by data_ptr, so a step never goes through host memory;
- CUDA EP `user_compute_stream`: onnxruntime runs on a torch stream the backend owns (not stream 0,
  which onnxruntime treats as "no stream"), and the run option
  `disable_synchronize_execution_providers` keeps Run() from waiting for the GPU; torch's stream
  and onnxruntime's are ordered with wait_stream, on the GPU;
- TensorRT EP caches (`trt_engine_cache_enable`/`_path`, `trt_timing_cache_*`) under the dreamcam
  cache, so engines are built once, not at every start.
What onnxruntime prints while loading providers ("Failed to load ...") goes to the log, never to
stdout, which belongs to `--json` output.

Whether the graph's scatter ops run on the GPU providers (onnxruntime docs/OperatorKernels.md,
read 2026-11-23): the CUDA provider registers ScatterND (opset 18+, float) and ScatterElements
(opset 18+, reductions none/add/mul/max/min); the exported step uses ScatterND(none) (TV's slice
backward) and, for networks with max pooling (GoogLeNet), ScatterElements(add) (its backward).
Mod no longer appears: the jitter arrives as gather indices. TensorRT runs ScatterND(none) in its
core and ScatterElements with a reduction through its ScatterElements plugin; a node TensorRT
rejects is handed to the CUDA provider by onnxruntime's partitioner, so it still runs on the GPU.
None of this has been run on a GPU yet.

Why the export is fp32 whatever --precision says: onnxruntime's CUDA and CPU providers have no
bf16 Conv kernel (docs/OperatorKernels.md lists float, double, float16 for CUDA Conv), and a
fp16 graph would not run on the CPU provider; cudagraph is the backend for half precision.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.registry import DreamNet, Network
from realtime.dream import kernel
from realtime.dream.backends.base import Shape, objective_value, pinned_jitter_table, random_shifts
from realtime.dream.backends.onnx_export import cache_dir, cached_path, export_step
from realtime.dream.objectives import Objective
from realtime.errors import BackendError
from realtime.params import DreamParams

log = logging.getLogger(__name__)

GPU_EXTRA = "pip install 'onnxruntime-gpu[cuda,cudnn]'"
_MISSING_LIBRARY = re.compile(r"([\w.+-]+\.(?:so[\d.]*|dll)): cannot open shared object file")


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class Printed:
    """What onnxruntime printed: `out` (fd 1 and Python's stdout) and `err` (fd 2)."""

    out: str = ""
    err: str = ""


@contextlib.contextmanager
def native_output_captured() -> Iterator[Printed]:
    """Keep what native libraries print (onnxruntime's "Failed to load ...", from Python prints and
    its C++ logger) off stdout and stderr; the caller logs it or passes stderr's part on."""
    printed = Printed()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        contextlib.redirect_stdout(io.StringIO()) as python_out,
    ):
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            yield printed
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            out.seek(0)
            err.seek(0)
            printed.out = python_out.getvalue() + out.read().decode(errors="replace")
            printed.err = err.read().decode(errors="replace")
            for line in printed.out.splitlines():
                if line.strip():
                    log.debug("onnxruntime: %s", line.strip())


def missing_libraries(text: str) -> list[str]:
    """The shared libraries onnxruntime said it could not open, in order, once each."""
    return list(dict.fromkeys(_MISSING_LIBRARY.findall(text)))


def provider_fix(printed: str) -> tuple[str, str]:
    """From what onnxruntime printed when a GPU provider failed to load: (what is missing, the fix)."""
    missing = missing_libraries(printed)
    if any(name.startswith(("libcuda.so", "nvcuda")) for name in missing):
        return ", ".join(missing), "install the NVIDIA driver"
    if any(name.startswith(("libnvinfer", "nvinfer")) for name in missing):
        return ", ".join(
            missing
        ), "TensorRT 10 is optional (the CUDA provider works without): pip install tensorrt"
    return ", ".join(missing) or "its CUDA libraries", GPU_EXTRA


def providers_for(device: torch.device) -> list[str]:
    """The onnxruntime providers worth asking for on `device`, best first."""
    import onnxruntime as ort

    compiled_in = set(ort.get_available_providers())
    chosen = []
    if device.type == "cuda":
        if "CUDAExecutionProvider" not in compiled_in:
            raise BackendError(
                f"--backend onnx on a GPU needs onnxruntime's GPU build (this one is CPU only); {GPU_EXTRA}, "
                "or use --backend cudagraph or eager"
            )
        if "TensorrtExecutionProvider" in compiled_in and _tensorrt_loads():
            chosen.append("TensorrtExecutionProvider")
        chosen.append("CUDAExecutionProvider")
    chosen.append("CPUExecutionProvider")
    return chosen


def provider_options(providers: list[str], device: torch.device, stream_handle: int) -> list:
    """`providers` with their options: the GPU providers on `device`, on the given CUDA stream,
    TensorRT caching its engines under the dreamcam cache."""
    engines = str(cache_dir() / "tensorrt")
    gpu = {"device_id": str(device.index or 0), "user_compute_stream": str(stream_handle)}
    options = {
        "TensorrtExecutionProvider": {
            **gpu,
            "trt_engine_cache_enable": "True",
            "trt_engine_cache_path": engines,
            "trt_timing_cache_enable": "True",
            "trt_timing_cache_path": engines,
        },
        "CUDAExecutionProvider": gpu,
    }
    return [(name, options[name]) if name in options else name for name in providers]


def _tensorrt_loads() -> bool:
    for name in ("libnvinfer.so.10", "nvinfer_10.dll", "libnvinfer.so"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def open_session(path: Path, device: torch.device, providers: list):
    """An onnxruntime session for the exported graph at `path`. On a CUDA device a session that
    fell back to the CPU provider is refused with the libraries onnxruntime could not load."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings are not the user's business
    options.intra_op_num_threads = os.cpu_count() or 1
    # idle worker threads must not spin between calls: torch's own threads need those cores
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        with native_output_captured() as printed:
            if device.type == "cuda" and hasattr(ort, "preload_dlls"):
                ort.preload_dlls()  # the CUDA libraries of the nvidia-* wheels the [cuda,cudnn] extra brings
            session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:
        raise BackendError(
            f"onnxruntime cannot load {path} ({type(exc).__name__}); delete it to re-export, "
            "or use --backend eager"
        ) from None
    if device.type == "cuda" and session.get_providers()[0] == "CPUExecutionProvider":
        missing, fix = provider_fix(printed.out + printed.err)
        raise BackendError(
            f"--backend onnx on the GPU: onnxruntime could not load its CUDA provider (missing {missing}); "
            f"{fix}, or use --backend cudagraph or eager"
        )
    sys.stderr.write(printed.err)  # what it printed while things worked is still worth seeing
    return session


@dataclass
class _GpuBuffers:
    """Static buffers one image size binds to: the image ping-pongs between `a` and `b`."""

    a: torch.Tensor
    b: torch.Tensor
    jitter: torch.Tensor  # (steps, 2h + 2w) int64, grown when a frame takes more steps
    lr: torch.Tensor
    tv_weight: torch.Tensor
    value: torch.Tensor


class OnnxBackend:
    name = "onnx"
    precision = "fp32"  # see the module docstring

    def __init__(
        self,
        network: Network,
        net: DreamNet,
        objective: Objective,
        params: DreamParams,
        generator: torch.Generator,
        progress: Callable[[str], None] | None = None,
    ):
        if not onnxruntime_available():
            raise BackendError("onnxruntime is not installed; pip install onnxruntime or use --backend eager")
        self.network, self.net, self.objective = network, net, objective
        self.params, self.generator, self.progress = params, generator, progress
        self.device = network.device
        self.providers = providers_for(self.device)
        self._sessions: dict[tuple[int, int], object] = {}
        self._buffers: dict[tuple[int, int], _GpuBuffers] = {}
        self._stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        self._run_options = None

    @property
    def provider(self) -> str:
        """The provider that runs the graph, for the HUD and bench JSON."""
        for session in self._sessions.values():
            return session.get_providers()[0]
        return self.providers[0]

    def session_for(self, height: int, width: int):
        """The inference session for one image size, exporting the graph the first time."""
        if (height, width) not in self._sessions:
            path = cached_path(self.network, str(self.objective), (width, height), steps=1)
            if not path.exists():
                export_step(self.network, self.objective, (width, height), 1, path, self.progress)
            providers = self.providers
            if self._stream is not None:
                providers = provider_options(providers, self.device, self._stream.cuda_stream)
            session = open_session(path, self.device, providers)
            log.info("onnx backend: %s on %s", path.name, session.get_providers()[0])
            self._sessions[(height, width)] = session
        return self._sessions[(height, width)]

    # --- the contract ---------------------------------------------------------------------

    def prepare(self, shapes: Iterable[Shape]) -> None:
        """Export (or load the cached export) and open a session for every image size, and on a GPU
        run it once; the exported graph is one step, so the step count does not matter."""
        for height, width in sorted({(h, w) for h, w, _ in shapes}):
            session = self.session_for(height, width)
            if self.device.type == "cuda":  # one step now: cuDNN's algorithm search, TensorRT's engine
                self._run_bound(session, torch.full((1, 3, height, width), 0.5, device=self.device), [(0, 0)])

    def is_prepared(self, shape: Shape) -> bool:
        return shape[:2] in self._sessions

    def run(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        session = self.session_for(*x.shape[-2:])
        shifts = random_shifts(self.generator, self.params.jitter, steps)
        if self.device.type == "cuda":
            return self._run_bound(session, x, shifts)
        return self._run_host(session, x, shifts)

    def objective_value(self, x: torch.Tensor) -> float:
        return objective_value(self.net, self.objective, x)

    def close(self) -> None:
        self._sessions.clear()  # onnxruntime frees a session with its last reference
        self._buffers.clear()

    # --- running --------------------------------------------------------------------------

    def _run_host(self, session, x: torch.Tensor, shifts: list[tuple[int, int]]) -> torch.Tensor:
        """The CPU provider: numpy in, numpy out."""
        p = self.params
        height, width = x.shape[-2:]
        lr, tv_weight = np.array(p.lr, dtype=np.float32), np.array(p.tv_weight, dtype=np.float32)
        x_host = x.detach().float().contiguous().cpu().numpy()
        for shift in shifts:
            jitter = kernel.jitter_table([shift], height, width).numpy()
            x_host, _ = session.run(None, {"x": x_host, "jitter": jitter, "lr": lr, "tv_weight": tv_weight})
        return torch.from_numpy(x_host).to(x.device)

    def _run_bound(self, session, x: torch.Tensor, shifts: list[tuple[int, int]]) -> torch.Tensor:
        """A GPU provider: every input and output bound to a torch tensor on the GPU (I/O Binding),
        onnxruntime on its own stream, ordered after and before torch's work without a host sync."""
        import onnxruntime as ort

        p, height, width = self.params, x.shape[-2], x.shape[-1]
        buffers = self._buffers_for(height, width, len(shifts))
        current = torch.cuda.current_stream(self.device)
        buffers.a.copy_(x)
        buffers.jitter[: len(shifts)].copy_(
            pinned_jitter_table(shifts, height, width, self.device), non_blocking=True
        )
        buffers.lr.fill_(p.lr)
        buffers.tv_weight.fill_(p.tv_weight)
        if self._run_options is None:
            self._run_options = ort.RunOptions()
            self._run_options.add_run_config_entry("disable_synchronize_execution_providers", "1")
        self._stream.wait_stream(current)
        source, target = buffers.a, buffers.b
        for k in range(len(shifts)):
            binding = session.io_binding()
            self._bind(binding.bind_input, "x", source)
            self._bind(binding.bind_input, "jitter", buffers.jitter[k : k + 1])
            self._bind(binding.bind_input, "lr", buffers.lr)
            self._bind(binding.bind_input, "tv_weight", buffers.tv_weight)
            self._bind(binding.bind_output, "x_new", target)
            self._bind(binding.bind_output, "objective", buffers.value)
            session.run_with_iobinding(binding, self._run_options)
            source, target = target, source
        current.wait_stream(self._stream)
        return source.clone()  # the buffers are the next frame's

    def _bind(self, bind: Callable, name: str, tensor: torch.Tensor) -> None:
        element = np.int64 if tensor.dtype == torch.int64 else np.float32
        bind(name, "cuda", self.device.index or 0, element, tuple(tensor.shape), tensor.data_ptr())

    def _buffers_for(self, height: int, width: int, steps: int) -> _GpuBuffers:
        buffers = self._buffers.get((height, width))
        if buffers is None or buffers.jitter.shape[0] < steps:
            image = torch.zeros(1, 3, height, width, device=self.device)
            scalar = torch.zeros((), device=self.device)
            jitter = torch.zeros(steps, 2 * (height + width), dtype=torch.int64, device=self.device)
            buffers = _GpuBuffers(image, image.clone(), jitter, scalar, scalar.clone(), scalar.clone())
            self._buffers[(height, width)] = buffers
        return buffers

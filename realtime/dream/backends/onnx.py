"""The ONNX backend: the exported gradient step run by onnxruntime.

One exported graph per image size does a whole step (jitter gather, forward, backward,
normalised update, clamp); it is exported on first use and cached (realtime.dream.backends.onnx_export).

On a CUDA GPU it runs on the CUDA provider, and never silently on the CPU: if onnxruntime cannot
load its CUDA provider the backend refuses with the libraries it is missing (they come with
`pip install 'onnxruntime-gpu[cuda,cudnn]'`). Written to onnxruntime's docs:
- I/O Binding (onnxruntime.ai/docs/performance/tune-performance/iobinding.html): one binding per
  image size, made once, to static torch buffers on the GPU: a step never goes through host memory
  and a frame binds nothing (the image moves between the buffers with a device copy);
- CUDA EP `enable_cuda_graph` (CUDA-ExecutionProvider.html, "Using CUDA Graphs"): as every bound
  address is fixed, onnxruntime captures the step once and replays it. A session whose nodes are
  not all on the CUDA provider cannot use it; it then runs op by op and `captured` says so.
  onnxruntime up to 1.31 synchronises the stream after each graph replay (microsoft/onnxruntime
  PR 28686 lifts that): the worker waits for each step, the display still never does;
- CUDA EP `user_compute_stream`: onnxruntime runs on a torch stream the backend owns (not stream 0,
  which onnxruntime treats as "no stream"), and the run option
  `disable_synchronize_execution_providers` keeps Run() from waiting for the GPU; torch's stream
  and onnxruntime's are ordered with wait_stream, on the GPU;
- node placement (`session.record_ep_graph_assignment_info`, read back with
  `get_provider_graph_assignment_info`): every node onnxruntime placed on the CPU provider in a
  GPU session is reported (a warning, and in `provider`: the HUD and the bench JSON), since each
  costs a copy between host and device.
What onnxruntime prints while loading providers ("Failed to load ...") goes to the log, never to
stdout, which belongs to `--json` output.

TensorRT is not offered (decided 2026-11-30, without a GPU to try it on): pip's `tensorrt` wheel
puts libnvinfer under `tensorrt_libs`, where onnxruntime's loader does not look; the exported step
holds MaxPool-with-indices and ScatterElements(add) (the pooling backward), which TensorRT takes
only through a plugin or splits off, so a GoogLeNet step would become many engines with copies
between them; and an engine build takes minutes, far past the dream watchdog. The CUDA provider
with its CUDA graph is the measured path; cudagraph is the fast one.

Whether the graph's scatter ops run on the GPU provider (onnxruntime docs/OperatorKernels.md,
read 2026-11-23): the CUDA provider registers ScatterND (opset 18+, float) and ScatterElements
(opset 18+, reductions none/add/mul/max/min); the exported step uses ScatterND(none) (TV's slice
backward) and, for networks with max pooling (GoogLeNet), ScatterElements(add) (its backward).
Mod no longer appears: the jitter arrives as gather indices. None of this has run on a GPU yet:
the node placement report is how the first run will tell.

Why the export is fp32 whatever --precision says: onnxruntime's CUDA and CPU providers have no
bf16 Conv kernel (docs/OperatorKernels.md lists float, double, float16 for CUDA Conv), and a
fp16 graph would not run on the CPU provider; cudagraph is the backend for half precision.
"""

from __future__ import annotations

import contextlib
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
from realtime.dream.backends.onnx_export import exported_path
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
        return ", ".join(missing), "dreamcam does not use TensorRT: nothing to do"
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
        chosen.append("CUDAExecutionProvider")  # never TensorRT: see the module docstring
    chosen.append("CPUExecutionProvider")
    return chosen


def provider_options(
    providers: list[str], device: torch.device, stream_handle: int, cuda_graph: bool = True
) -> list:
    """`providers` with their options: the CUDA provider on `device`, on the given CUDA stream,
    capturing its work as a CUDA graph when `cuda_graph`."""
    cuda = {"device_id": str(device.index or 0), "user_compute_stream": str(stream_handle)}
    if cuda_graph:
        cuda["enable_cuda_graph"] = "1"
    return [(name, cuda) if name == "CUDAExecutionProvider" else name for name in providers]


def node_placement(session) -> dict[str, list[str]]:
    """{provider: op types of the nodes it runs} as onnxruntime assigned them (empty where this
    onnxruntime cannot tell: before 1.22's `get_provider_graph_assignment_info`)."""
    if not hasattr(session, "get_provider_graph_assignment_info"):
        return {}
    placement: dict[str, list[str]] = {}
    for subgraph in session.get_provider_graph_assignment_info():
        placement.setdefault(subgraph.ep_name, []).extend(n.op_type for n in subgraph.get_nodes())
    return placement


def cpu_fallback(placement: dict[str, list[str]]) -> str:
    """One line on the nodes a GPU session runs on the CPU provider ("" when none do)."""
    cpu = placement.get("CPUExecutionProvider", [])
    if not cpu or len(placement) == 1:
        return ""  # none, or a CPU session (where the CPU is the plan)
    total = sum(len(ops) for ops in placement.values())
    ops = ", ".join(sorted(set(cpu)))
    return f"{len(cpu)} of {total} nodes on the CPU ({ops})"


def open_session(path: Path, device: torch.device, providers: list):
    """An onnxruntime session for the exported graph at `path`. On a CUDA device a session that
    fell back to the CPU provider is refused with the libraries onnxruntime could not load."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    # errors only on stderr: where nodes were placed is read back and reported by node_placement
    options.log_severity_level = 3
    options.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    # every core, even where torch's team leaves one to the display (cli._set_threads): onnxruntime's
    # threads do not spin, and its step ran 31 ms on two threads against 38 on one in the window's loop
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
class _Bound:
    """One image size on the GPU: its session and one I/O binding, made once, to static buffers.
    Each step reads `x` and `row` and writes `out`; between steps `out` is copied into `x` (a
    device copy), so every address stays fixed, as onnxruntime's CUDA graph requires."""

    session: object
    binding: object
    x: torch.Tensor
    out: torch.Tensor
    row: torch.Tensor  # this step's jitter row (1, 2h + 2w)
    jitter: torch.Tensor  # the frame's rows (steps, 2h + 2w), grown when a frame takes more steps
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
        self._bound: dict[tuple[int, int], _Bound] = {}
        self._stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        self._run_options = None
        self.graph_sizes: set[tuple[int, int]] = set()  # sizes onnxruntime runs as a CUDA graph
        self.cpu_nodes = ""  # the nodes a GPU session placed on the CPU (cpu_fallback)

    @property
    def provider(self) -> str:
        """The provider that runs the graph, for the HUD and bench JSON, with any CPU fallback."""
        name = next(iter(self._sessions.values())).get_providers()[0] if self._sessions else self.providers[0]
        return f"{name}, {self.cpu_nodes}" if self.cpu_nodes else name

    @property
    def captured(self) -> bool:
        """Whether every size opened so far runs as onnxruntime's CUDA graph."""
        return bool(self._sessions) and self.graph_sizes == set(self._sessions)

    def session_for(self, height: int, width: int):
        """The inference session for one image size, exporting the graph the first time."""
        if (height, width) not in self._sessions:
            path = exported_path(self.network, self.objective, (width, height), self.progress)
            session = self._open(path, (height, width))
            placement = node_placement(session)
            fallback = cpu_fallback(placement) if self.device.type == "cuda" else ""
            if fallback:
                log.warning(
                    "onnx backend: %s at %dx%d: each is a copy to the host and back", fallback, width, height
                )
                self.cpu_nodes = fallback
            log.info("onnx backend: %s on %s", path.name, session.get_providers()[0])
            self._sessions[(height, width)] = session
        return self._sessions[(height, width)]

    def _open(self, path: Path, size: tuple[int, int]):
        """The session; on a GPU with onnxruntime's CUDA graph when it accepts the graph whole."""
        if self._stream is None:
            return open_session(path, self.device, self.providers)
        stream = self._stream.cuda_stream
        try:
            session = open_session(path, self.device, provider_options(self.providers, self.device, stream))
            self.graph_sizes.add(size)
            return session
        except BackendError as exc:
            log.warning("onnx backend: no CUDA graph at %dx%d (%s); running op by op", *size, exc)
        return open_session(path, self.device, provider_options(self.providers, self.device, stream, False))

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
        self._bound.clear()
        self._sessions.clear()  # onnxruntime frees a session with its last reference

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
        """A GPU provider: every input and output bound once to a static torch buffer on the GPU
        (I/O Binding), onnxruntime on its own stream, ordered after and before torch's work
        without a host sync."""
        import onnxruntime as ort

        p, height, width = self.params, x.shape[-2], x.shape[-1]
        bound = self._bound_for(session, height, width, len(shifts))
        current = torch.cuda.current_stream(self.device)
        bound.x.copy_(x)
        bound.jitter[: len(shifts)].copy_(
            pinned_jitter_table(shifts, height, width, self.device), non_blocking=True
        )
        bound.lr.fill_(p.lr)
        bound.tv_weight.fill_(p.tv_weight)
        if self._run_options is None:
            self._run_options = ort.RunOptions()
            self._run_options.add_run_config_entry("disable_synchronize_execution_providers", "1")
        self._stream.wait_stream(current)
        with torch.cuda.stream(self._stream):  # the copies between steps on onnxruntime's stream
            for k in range(len(shifts)):
                if k:
                    bound.x.copy_(bound.out)
                bound.row.copy_(bound.jitter[k : k + 1])
                session.run_with_iobinding(bound.binding, self._run_options)
        current.wait_stream(self._stream)
        return bound.out.clone()  # the buffers are the next frame's

    def _bind(self, bind: Callable, name: str, tensor: torch.Tensor) -> None:
        element = np.int64 if tensor.dtype == torch.int64 else np.float32
        bind(name, "cuda", self.device.index or 0, element, tuple(tensor.shape), tensor.data_ptr())

    def _bound_for(self, session, height: int, width: int, steps: int) -> _Bound:
        """The size's binding, made on its first run (and its jitter rows grown when needed)."""
        bound = self._bound.get((height, width))
        if bound is None:
            image = torch.zeros(1, 3, height, width, device=self.device)
            scalar = torch.zeros((), device=self.device)
            row = torch.zeros(1, 2 * (height + width), dtype=torch.int64, device=self.device)
            bound = _Bound(
                session,
                session.io_binding(),
                image,
                image.clone(),
                row,
                row.repeat(steps, 1),
                scalar,
                scalar.clone(),
                scalar.clone(),
            )
            self._bind(bound.binding.bind_input, "x", bound.x)
            self._bind(bound.binding.bind_input, "jitter", bound.row)
            self._bind(bound.binding.bind_input, "lr", bound.lr)
            self._bind(bound.binding.bind_input, "tv_weight", bound.tv_weight)
            self._bind(bound.binding.bind_output, "x_new", bound.out)
            self._bind(bound.binding.bind_output, "objective", bound.value)
            self._bound[(height, width)] = bound
        if bound.jitter.shape[0] < steps:  # not bound: only `row` is
            bound.jitter = bound.row.repeat(steps, 1)
        return bound

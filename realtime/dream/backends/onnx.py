"""The ONNX backend: the exported gradient step run by onnxruntime.

One exported graph per image size does a whole step (jitter gather, forward, backward,
normalised update, clamp); it is exported on first use and cached (see realtime.dream.backends.onnx_export).
Providers are asked for only where they can load: TensorRT, then CUDA, when a CUDA GPU is
present, and the CPU provider always (asking for CUDA on a machine without it prints an error
block instead of failing quietly).
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Callable, Iterable

import numpy as np
import torch

from models.registry import DreamNet, Network
from realtime.dream import kernel
from realtime.dream.backends.base import Shape, objective_value, random_shifts
from realtime.dream.backends.onnx_export import cached_path, export_step
from realtime.dream.objectives import Objective
from realtime.errors import BackendError
from realtime.params import DreamParams

log = logging.getLogger(__name__)


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def providers_for(device: torch.device) -> list[str]:
    """The onnxruntime providers worth asking for on `device`, best first."""
    import onnxruntime as ort

    compiled_in = set(ort.get_available_providers())
    chosen = []
    if device.type == "cuda":
        if hasattr(ort, "preload_dlls"):
            ort.preload_dlls()  # find the CUDA/cuDNN libraries that torch's wheel brings along
        if "TensorrtExecutionProvider" in compiled_in and _tensorrt_loads():
            chosen.append("TensorrtExecutionProvider")
        if "CUDAExecutionProvider" in compiled_in:
            chosen.append("CUDAExecutionProvider")
    chosen.append("CPUExecutionProvider")
    return chosen


def _tensorrt_loads() -> bool:
    for name in ("libnvinfer.so.10", "nvinfer_10.dll", "libnvinfer.so"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


class OnnxBackend:
    name = "onnx"
    precision = "fp32"

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

    @property
    def provider(self) -> str:
        """The provider that runs the graph, for the HUD and bench JSON."""
        for session in self._sessions.values():
            return session.get_providers()[0]
        return self.providers[0]

    def session_for(self, height: int, width: int):
        """The inference session for one image size, exporting the graph the first time."""
        if (height, width) not in self._sessions:
            import onnxruntime as ort

            path = cached_path(self.network, str(self.objective), (width, height), steps=1)
            if not path.exists():
                export_step(self.network, self.objective, (width, height), 1, path, self.progress)
            options = ort.SessionOptions()
            options.log_severity_level = 3  # errors only: its warnings are not the user's business
            options.intra_op_num_threads = os.cpu_count() or 1
            # idle worker threads must not spin between calls: torch's own threads need those cores
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            try:
                session = ort.InferenceSession(str(path), options, providers=self.providers)
            except Exception as exc:
                raise BackendError(
                    f"onnxruntime cannot load {path} ({type(exc).__name__}); delete it to re-export, "
                    "or use --backend eager"
                ) from None
            log.info("onnx backend: %s on %s", path.name, session.get_providers()[0])
            self._sessions[(height, width)] = session
        return self._sessions[(height, width)]

    def prepare(self, shapes: Iterable[Shape]) -> None:
        """Export (or load the cached export) and open a session for every image size; the
        exported graph is one step, so the step count does not matter."""
        for height, width in sorted({(h, w) for h, w, _ in shapes}):
            self.session_for(height, width)

    def is_prepared(self, shape: Shape) -> bool:
        return shape[:2] in self._sessions

    def run(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        p = self.params
        session = self.session_for(*x.shape[-2:])
        lr, tv_weight = np.array(p.lr, dtype=np.float32), np.array(p.tv_weight, dtype=np.float32)
        x_host = x.detach().float().contiguous().cpu().numpy()
        for shift in random_shifts(self.generator, p.jitter, steps):
            feeds = {"x": x_host, "jitter": kernel.jitter_table([shift], *x.shape[-2:]).numpy()}
            x_host, _ = session.run(None, {**feeds, "lr": lr, "tv_weight": tv_weight})
        return torch.from_numpy(x_host).to(x.device)

    def objective_value(self, x: torch.Tensor) -> float:
        return objective_value(self.net, self.objective, x)

    def close(self) -> None:
        self._sessions.clear()  # onnxruntime frees a session with its last reference

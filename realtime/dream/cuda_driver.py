"""The NVIDIA driver against what torch's and onnxruntime's CUDA builds need.

torch's CUDA build runs on any driver at or above its CUDA major's floor (NVIDIA's CUDA
minor-version compatibility: CUDA 13.x needs a 580 driver, 12.x 525.60.13, 11.x 450.80.02 on
Linux; the CUDA Toolkit release notes, table 2). Below the floor `torch.cuda.is_available()` is
simply False, which would read as "no CUDA GPU" and a silent fall-back to the CPU: this module
tells the two apart, for the doctor and for `--device`. onnxruntime-gpu loads its own CUDA and
cuDNN libraries into the same process, so its CUDA major must be torch's (`pip install
'dreamcam[cu13]'` pins both).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

# (CUDA major) -> the oldest Linux driver that runs every minor of it
DRIVER_FLOOR = {11: (450, 80, 2), 12: (525, 60, 13), 13: (580, 0, 0)}
_VERSION = re.compile(r"\b(\d{3})\.(\d+)(?:\.(\d+))?\b")


def parse_version(text: str) -> tuple[int, int, int] | None:
    match = _VERSION.search(text)
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


def driver_version() -> tuple[int, int, int] | None:
    """The loaded NVIDIA kernel driver's version, or None where there is none (no NVIDIA GPU)."""
    proc = Path("/proc/driver/nvidia/version")
    try:
        if proc.exists():
            return parse_version(proc.read_text().split("Kernel Module", 1)[-1])
    except OSError:
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run(
            [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_version(out)


def cuda_major(version: str | None) -> int | None:
    return int(version.split(".")[0]) if version else None


def floor_for(major: int | None) -> tuple[int, int, int] | None:
    return DRIVER_FLOOR.get(major) if major is not None else None


def text(version: tuple[int, int, int]) -> str:
    """580 / 525.60.13 / 450.80.02, as NVIDIA writes them."""
    major, minor, patch = version
    if patch:
        return f"{major}.{minor:02d}.{patch:02d}"
    return f"{major}.{minor:02d}" if minor else str(major)


def too_old(driver: tuple[int, int, int] | None, torch_cuda: str | None) -> str | None:
    """One line when `driver` is older than torch's CUDA build needs, else None."""
    floor = floor_for(cuda_major(torch_cuda))
    if driver is None or floor is None or driver >= floor:
        return None
    return (
        f"NVIDIA driver {text(driver)} is too old for torch's CUDA {torch_cuda} build (it needs "
        f"{text(floor)} or newer): update the driver, or install torch built for an older CUDA "
        "(download.pytorch.org/whl/cu126) with an onnxruntime-gpu built for that CUDA"
    )


def onnxruntime_cuda_major() -> int | None:
    """The CUDA major onnxruntime-gpu's wheel was built for, from its requirements
    (nvidia-cuda-runtime~=13.0, or -cu12), or None where it is not installed or does not say."""
    try:
        requires = metadata.requires("onnxruntime-gpu") or []
    except metadata.PackageNotFoundError:
        return None
    for line in requires:
        if line.startswith("nvidia-cuda-runtime"):
            named = re.match(r"nvidia-cuda-runtime-cu(\d+)", line)
            if named:
                return int(named[1])
            pinned = re.search(r"[~=]=\s*(\d+)", line)
            if pinned:
                return int(pinned[1])
    return None


def mismatch(torch_cuda: str | None, ort_major: int | None) -> str | None:
    """One line when torch's and onnxruntime-gpu's CUDA majors differ, else None."""
    torch_major = cuda_major(torch_cuda)
    if torch_major is None or ort_major is None or torch_major == ort_major:
        return None
    return (
        f"torch is built for CUDA {torch_major} but onnxruntime-gpu for CUDA {ort_major}: one process "
        f"loads one CUDA; pip install 'dreamcam[cu{torch_major}]' (or use --backend cudagraph)"
    )


def unavailable_reason(torch_cuda: str | None) -> str:
    """Why torch sees no CUDA GPU, as precisely as this machine tells."""
    if not torch_cuda:
        return "this torch is a CPU-only build (pip install torch from PyTorch's CUDA index)"
    driver = driver_version()
    if driver is None:
        return "no NVIDIA driver is loaded (no NVIDIA GPU, or its driver is not installed)"
    return too_old(driver, torch_cuda) or (
        f"NVIDIA driver {text(driver)} is loaded but CUDA does not answer (is the GPU visible "
        "to this process? CUDA_VISIBLE_DEVICES, a container without --gpus)"
    )

"""How large a dream (and a virtual camera frame) this machine can hold.

A dream's memory grows with its pixel count: the network's activations and their gradients for
one step. Asking for more than the machine has does not fail cleanly (the kernel swaps, then
kills the show), so sizes are checked against the memory that is free before anything is built.
"""

from __future__ import annotations

import math
import os

import torch

from realtime.errors import ConfigError

# Peak memory per dream pixel for one step (forward + backward), measured on CPU with
# /tmp-style runs of `build_dreamer(...).residual` at 640x360 and 1280x720 (ru_maxrss):
# EfficientNet-Lite0 to `block5` ~1.0 kB, to `logits` (the whole network) ~1.4 kB.
BYTES_PER_DREAM_PIXEL = {"efficientnet_lite0": 1500}
# not measured: VGG16, GoogLeNet and Inception v3 keep wide activations at high resolution
DEFAULT_BYTES_PER_DREAM_PIXEL = 6000
MEMORY_SHARE = 0.5  # of the free memory: the rest is for frames, the window, the recorder, the OS
VIRTUAL_CAM_BUFFERS = 8  # RGB frames a virtual camera may hold in flight (ours, pyvirtualcam's, the driver's)
REALTIME_CPU_PIXELS = 640 * 360  # beyond this a CPU dreams at seconds per frame: said, not refused


def free_memory(device: torch.device | None = None) -> int:
    """Bytes free for a new allocation: the GPU's free memory, or the system's available RAM."""
    if device is not None and device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def largest_size(pixels: float, aspect: float, multiple: int = 16) -> tuple[int, int]:
    """The largest width x height (multiples of `multiple`) with `aspect` and at most `pixels`."""
    height = math.sqrt(pixels / aspect)
    width = height * aspect
    return max(multiple, int(width) // multiple * multiple), max(multiple, int(height) // multiple * multiple)


def check_dream_size(
    size: tuple[int, int], model: str, device: torch.device, free: int | None = None
) -> None:
    """A ConfigError naming the largest size that fits when `size` would not fit in memory."""
    per_pixel = BYTES_PER_DREAM_PIXEL.get(model, DEFAULT_BYTES_PER_DREAM_PIXEL)
    _check(size, per_pixel, free if free is not None else free_memory(device), "--dream-size", "dream")


def check_virtual_cam_size(size: tuple[int, int], free: int | None = None) -> None:
    _check(
        size,
        3 * VIRTUAL_CAM_BUFFERS,
        free if free is not None else free_memory(),
        "--virtual-cam-size",
        "send",
    )


def live_dream_threads(cores: int | None) -> int:
    """CPU threads for the live dream's maths: one core fewer than the machine has. The display
    (30 ticks a second) and the flow's thread run beside the step; with a thread on every core the
    step's team waits on whichever core they hold. On the 2-core CPU, one thread against two, side by
    side in the window's loop: 19.8 against 16.7 dreams/s, the step 29 ms against 36 (BENCHMARKS)."""
    return max(1, (cores or 1) - 1)


def slow_on_cpu(size: tuple[int, int], device: torch.device) -> bool:
    return device.type == "cpu" and size[0] * size[1] > REALTIME_CPU_PIXELS


def _check(size: tuple[int, int], per_pixel: int, free: int, option: str, verb: str) -> None:
    width, height = size
    budget = free * MEMORY_SHARE
    need = width * height * per_pixel
    if need <= budget:
        return
    best = largest_size(budget / per_pixel, width / height)
    raise ConfigError(
        f"{option} {width}x{height} needs about {need / 2**30:.1f} GB to {verb}; this machine has "
        f"{free / 2**30:.1f} GB free and a show may take half: the largest that fits is {best[0]}x{best[1]}"
    )

"""`dreamcam dream`: one still image at full quality (classic DeepDream: octaves, many steps)."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Callable

import cv2
import numpy as np
import torch

from models.registry import load_network
from realtime.commands.options import add_dream_options, add_overwrite_option, dream_params
from realtime.dream import kernel
from realtime.dream.backends import EagerBackend
from realtime.dream.objectives import parse_objective
from realtime.errors import SourceError
from realtime.io.imagesize import image_size
from realtime.io.paths import check_name_encoding, check_output_path
from realtime.io.sinks import IMAGE_EXTS
from realtime.params import DreamParams

log = logging.getLogger(__name__)

NOISE_SIZE = (640, 480)  # (width, height) of the canvas for IN = "noise"
# Dreaming costs ~1.1 kB of memory a pixel on a CPU (efficientnet_lite0: 1024x1024 took 0.74 GB
# more than 512x512): a 4K frame (~9 GB) is the largest dreamt as it is; larger ones are reduced
MAX_DREAM_PIXELS = 3840 * 2160
# decoded at all: 400 MB of pixels. A 1.2 MB PNG of 20000x20000 would be 1.2 GB before the dream
# (which took 24 GB and was killed); a JPEG that large is decoded at 1/2, 1/4 or 1/8 instead
MAX_DECODE_PIXELS = 2**27
JPEG_REDUCED = (
    (2, cv2.IMREAD_REDUCED_COLOR_2),
    (4, cv2.IMREAD_REDUCED_COLOR_4),
    (8, cv2.IMREAD_REDUCED_COLOR_8),
)


def load_image(path: str, seed: int | None) -> np.ndarray:
    """RGB uint8 image from a file, or soft grey noise for the word 'noise'."""
    if path == "noise":
        rng = np.random.default_rng(seed)
        width, height = NOISE_SIZE
        noise = rng.normal(128, 12, (height // 8, width // 8, 3)).clip(0, 255).astype(np.uint8)
        return cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    check_name_encoding(path, "image")
    if not os.path.isfile(path):
        raise SourceError(f"image '{path}' does not exist; check the path (or use 'noise')")
    bgr = cv2.imread(path, _decode_flag(path))
    if bgr is None:
        raise SourceError(f"cannot read image '{path}': not an image file OpenCV can decode")
    return _fit_to_dream(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), path)


def _decode_flag(path: str) -> int:
    """How to decode `path`: as it is, or (a huge JPEG) reduced while decoding; a huge image of
    another kind is refused before a byte of it is decoded."""
    try:
        size = image_size(path)
    except OSError as exc:
        raise SourceError(f"cannot read image '{path}': {exc.strerror}") from None
    if size is None or size[0] * size[1] <= MAX_DECODE_PIXELS:
        return cv2.IMREAD_COLOR
    width, height = size
    if path.lower().endswith((".jpg", ".jpeg")):
        for factor, flag in JPEG_REDUCED:
            if width * height <= MAX_DECODE_PIXELS * factor * factor:
                return flag
    raise SourceError(
        f"image '{path}' is {width}x{height} ({width * height / 1e6:.0f} megapixels, "
        f"{width * height * 3 / 2**30:.1f} GB once decoded); dreamcam dream reads at most "
        f"{MAX_DECODE_PIXELS / 1e6:.0f} megapixels: reduce it first (e.g. to 3840 pixels wide)"
    )


def _fit_to_dream(image: np.ndarray, path: str) -> np.ndarray:
    """`image` reduced (aspect kept) to MAX_DREAM_PIXELS, said in one line, if it is larger."""
    height, width = image.shape[:2]
    if width * height <= MAX_DREAM_PIXELS:
        return image
    scale = math.sqrt(MAX_DREAM_PIXELS / (width * height))
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    log.warning(
        "image '%s' is %dx%d: dreamt at %dx%d (dreaming takes ~1 kB of memory a pixel; reduce it "
        "yourself to choose the size)",
        path,
        width,
        height,
        *size,
    )
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def dream_still(
    image: np.ndarray,
    params: DreamParams,
    device: torch.device,
    weights: str | None = None,
    seed: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Dream an RGB uint8 image at its own resolution; returns RGB uint8.

    `progress(done, total)` is called after each octave (the CLI draws a progress line from it).
    """
    network = load_network(params.model, weights, device)
    objective = parse_objective(params.layer, network.spec)
    net = network.truncated(sorted(objective.layers))
    backend = EagerBackend(net, objective, params, torch.Generator().manual_seed(seed or 0))
    x = torch.from_numpy(image).to(device).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
    sizes = kernel.octave_sizes(*x.shape[-2:], params.octaves, params.octave_scale)
    done = iter(range(1, len(sizes) + 1))

    def run_steps_with_progress(x_octave: torch.Tensor, steps: int) -> torch.Tensor:
        out = backend.run(x_octave, steps)
        if progress is not None:
            progress(next(done), len(sizes))
        return out

    dreamt = kernel.dream(x, run_steps_with_progress, params.steps, params.octaves, params.octave_scale)
    return dreamt.squeeze(0).permute(1, 2, 0).mul(255.0).round().byte().cpu().numpy()


def write_image(path: str, image: np.ndarray) -> None:
    """Write `path` (already checked by the caller, `--overwrite` included)."""
    check_output_path(path, IMAGE_EXTS, overwrite=True)
    if not cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise SourceError(f"could not write '{path}'; check the folder is writable")


def add_arguments(dream: argparse.ArgumentParser) -> None:
    dream.add_argument("input", metavar="IN", help="image file, or 'noise'")
    dream.add_argument("-o", "--output", required=True, metavar="OUT")
    add_overwrite_option(dream)
    add_dream_options(dream, steps=10, octaves=4, lr=0.02)


def run(args: argparse.Namespace) -> int:
    from realtime.dream.backends import resolve_device

    params = dream_params(args)
    check_output_path(args.output, IMAGE_EXTS, inputs=[args.input], overwrite=args.overwrite)
    image = load_image(args.input, args.seed)

    def progress(done: int, total: int) -> None:
        bar = "#" * (20 * done // total)
        print(
            f"\rdreaming {bar:<20} octave {done}/{total}", end="\n" if done == total else "", file=sys.stderr
        )

    dreamt = dream_still(image, params, resolve_device(args.device), args.weights, args.seed, progress)
    write_image(args.output, dreamt)
    print(f"dreamcam: wrote {args.output}", file=sys.stderr)
    return 0

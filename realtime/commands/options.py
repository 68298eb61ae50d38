"""The options several commands share, defined once, and what they turn into: a look (`DreamParams`),
a device and a dream size, the CPU threads the dream's maths may use.

A command's own options live in its own module (`add_arguments`); this module holds only the groups
that two or more of them take (the dream's knobs, the backend, --preset, --overwrite, --threads).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
from collections.abc import Sequence

import torch

from models.registry import get_spec
from realtime.dream.backends import BACKENDS, DEVICES, PRECISION_CHOICES
from realtime.dream.backends.onnx_export import print_progress
from realtime.errors import DreamcamError
from realtime.params import WARM_START_MODES, DreamParams, parse_size

log = logging.getLogger("dreamcam")

CPU_DREAM_SIZE, GPU_DREAM_SIZE = "320x180", "640x360"


def finite(text: str) -> float:
    """argparse's float, without nan and inf (which float() accepts and every range check lets by)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
    return value


def add_dream_options(p: argparse.ArgumentParser, steps: int, octaves: int, lr: float) -> None:
    p.add_argument("--model", default="efficientnet_lite0", help="network (see 'dreamcam models')")
    p.add_argument("--layer", default=None, help="layer, layer:channel, class:NAME, or a+0.5*b")
    p.add_argument("--steps", type=int, default=steps, help=f"gradient steps per octave (default {steps})")
    p.add_argument("--octaves", type=int, default=octaves, help=f"octaves (default {octaves})")
    p.add_argument("--lr", type=finite, default=lr, help=f"step size (default {lr})")
    p.add_argument("--seed", type=int, default=None, help="random seed for jitter")
    p.add_argument("--weights", default=None, help="weights file to load instead of the model's own")
    p.add_argument("--device", default="auto", choices=DEVICES, help="auto: cuda, then mps, then cpu")


def add_backend_options(p: argparse.ArgumentParser, choices: Sequence[str] = BACKENDS) -> None:
    help_all = "; all: each in turn" if "all" in choices else ""
    p.add_argument("--backend", default="auto", choices=choices, help=f"how the step runs{help_all}")
    p.add_argument(
        "--precision",
        default="auto",
        choices=PRECISION_CHOICES,
        help="the network's precision; auto: fp32, or on cudagraph half where a probe finds it as good",
    )


def add_overwrite_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")


def add_threads_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for the dream's maths (default on a CPU: one per core but one, which the "
        "display and the flow need)",
    )


def add_preset_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--preset",
        default=None,
        metavar="NAME|FILE",
        help="a look: a bundled name (see 'dreamcam looks') or a preset file; replaces the dream options",
    )


DEPTH_HELP = (
    f"how deep a warm dream grows: mean residual (0-1) where it stops stepping (default {DreamParams.depth})"
)


def add_live_dream_options(p: argparse.ArgumentParser) -> None:
    """The live loop's dream options, for commands that replay it offline (render, eval)."""
    add_dream_options(p, steps=DreamParams.steps, octaves=DreamParams.octaves, lr=DreamParams.lr)
    add_preset_option(p)
    p.add_argument("--dream-size", default=None, help="WxH (default 320x180 CPU, 640x360 GPU)")
    p.add_argument("--warm-start", default=DreamParams.warm_start, choices=WARM_START_MODES)
    p.add_argument("--persistence", type=finite, default=DreamParams.persistence)
    p.add_argument("--stillness-boost", type=finite, default=DreamParams.stillness_boost)
    p.add_argument("--depth", type=finite, default=DreamParams.depth, help=DEPTH_HELP)
    add_backend_options(p)


def set_threads(args: argparse.Namespace, device: torch.device) -> None:
    """--threads, or for a live dream on the CPU one core fewer than the machine has (the display
    and the flow need the other: budget.live_dream_threads)."""
    from realtime.dream.budget import live_dream_threads

    if args.threads is None:
        if device.type == "cpu":
            torch.set_num_threads(live_dream_threads(os.cpu_count()))
            log.info("the dream's maths on %d of %d cores", torch.get_num_threads(), os.cpu_count())
        return
    if not 1 <= args.threads <= 256:
        raise DreamcamError(f"--threads must be 1..256, got {args.threads}")
    torch.set_num_threads(args.threads)


def dream_params(args: argparse.Namespace, **extra) -> DreamParams:
    """The look from the options, or from --preset NAME|FILE where it is given (the same look live
    and offline: a preset is every DreamParams field)."""
    if getattr(args, "preset", None):
        from realtime.show.presets import load_look

        return load_look(args.preset)
    spec = get_spec(args.model)
    return DreamParams(
        model=spec.name,
        layer=args.layer or spec.default_layer,
        steps=args.steps,
        octaves=args.octaves,
        lr=args.lr,
        **extra,
    )


def live_params(args: argparse.Namespace) -> DreamParams:
    """The look with the live loop's warm-start options: `run`, `render` and `eval` dream alike."""
    return dream_params(
        args,
        warm_start=args.warm_start,
        persistence=args.persistence,
        stillness_boost=args.stillness_boost,
        depth=args.depth,
    )


def device_and_size(args: argparse.Namespace) -> tuple[torch.device, tuple[int, int]]:
    from realtime.dream.backends import resolve_device
    from realtime.dream.budget import check_dream_size, slow_on_cpu

    device = resolve_device(args.device)
    size = parse_size(args.dream_size or (GPU_DREAM_SIZE if device.type == "cuda" else CPU_DREAM_SIZE))
    check_dream_size(size, args.model, device)
    if slow_on_cpu(size, device):
        log.warning(
            "dream size %dx%d on a CPU: expect seconds per frame (the CPU default is %s)",
            *size,
            CPU_DREAM_SIZE,
        )
    return device, size


def offline_dreamer(args: argparse.Namespace):
    """Parameters and a dreamer factory for render/eval, from the live options."""
    from realtime.dream.dreamer import FrameDreamer, build_dreamer

    params = live_params(args)
    device, size = device_and_size(args)
    network = None

    def make(p: DreamParams) -> FrameDreamer:
        nonlocal network
        dreamer = build_dreamer(
            p, size, device, args.backend, args.weights, args.seed, network, print_progress, args.precision
        )
        network = dreamer.network  # loaded once, shared by every dreamer of the run
        return dreamer

    return params, size, make

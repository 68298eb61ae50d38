"""`dreamcam export`: the gradient step exported to ONNX; without -o it fills the cache that
`--backend onnx` reads, so a show can start without the export's pause."""

from __future__ import annotations

import argparse

from realtime.commands.options import CPU_DREAM_SIZE, add_overwrite_option


def add_arguments(export: argparse.ArgumentParser) -> None:
    export.add_argument("--model", default="efficientnet_lite0")
    export.add_argument("--layer", default=None)
    export.add_argument("--dream-size", default=CPU_DREAM_SIZE)
    export.add_argument("--steps", type=int, default=1, help="steps unrolled in one graph (default 1)")
    export.add_argument("--weights", default=None)
    export.add_argument("-o", "--output", default=None, help="FILE.onnx (default: the live cache)")
    add_overwrite_option(export)


def run(args: argparse.Namespace) -> int:
    """Export (or refresh) the ONNX gradient step."""
    from pathlib import Path

    from models.registry import load_network
    from realtime.dream.backends.onnx_export import cached_path, export_step, print_progress
    from realtime.dream.objectives import parse_objective
    from realtime.errors import DreamcamError
    from realtime.io.paths import check_output_path
    from realtime.params import parse_size

    size = parse_size(args.dream_size)
    if not 1 <= args.steps <= 8:
        raise DreamcamError(f"--steps must be 1..8 for an export, got {args.steps}")
    if args.output:
        check_output_path(args.output, (".onnx",), overwrite=args.overwrite)
    network = load_network(args.model, args.weights)
    objective = parse_objective(args.layer or network.spec.default_layer, network.spec)
    path = Path(args.output) if args.output else cached_path(network, str(objective), size, args.steps)
    export_step(network, objective, size, args.steps, path, print_progress)
    print(path)
    return 0

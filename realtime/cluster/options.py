"""`dreamcam render`'s options for a split render (--workers, --cluster, --shared-path,
--chunk-frames) and what they make: SplitOptions and the chunks' DreamRecipe."""

from __future__ import annotations

import argparse

from realtime.cluster.job import DreamRecipe, SplitOptions
from realtime.errors import ConfigError
from realtime.params import DreamParams

MIN_CHUNK_FRAMES = 10  # shorter chunks would be mostly warm-up


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("split over Ray (pip install 'dreamcam[cluster]'; docs/CLUSTER.md)")
    group.add_argument(
        "--workers", type=int, default=None, metavar="N", help="dream in chunks on N local Ray workers"
    )
    group.add_argument(
        "--cluster",
        nargs="?",
        const="env",
        default=None,
        metavar="ADDRESS",
        help="dream in chunks on an existing Ray cluster (HOST:PORT; bare: RAY_ADDRESS)",
    )
    group.add_argument(
        "--shared-path",
        action="store_true",
        help="every node sees the input at this path (else it goes through Ray's object store)",
    )
    group.add_argument(
        "--chunk-frames", type=int, default=None, metavar="N", help="frames per chunk (default: measured)"
    )


def wanted(args: argparse.Namespace) -> bool:
    """Whether the render is split (else `render` runs as it always has)."""
    return args.workers is not None or args.cluster is not None


def split_options(args: argparse.Namespace, device: str) -> SplitOptions:
    from realtime.cluster.runtime import cluster_address

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    if args.chunk_frames is not None and args.chunk_frames < MIN_CHUNK_FRAMES:
        raise ConfigError(f"--chunk-frames must be at least {MIN_CHUNK_FRAMES}, got {args.chunk_frames}")
    return SplitOptions(
        workers=args.workers,
        cluster=cluster_address(args.cluster),
        shared_path=args.shared_path,
        use_gpus=device != "cpu",
        chunk_frames=args.chunk_frames,
    )


def recipe(args: argparse.Namespace, params: DreamParams, dream_size: tuple[int, int]) -> DreamRecipe:
    return DreamRecipe(
        params,
        dream_size,
        backend=args.backend,
        weights=args.weights,
        precision=args.precision,
        seed=args.seed,
        zoom=args.zoom,
    )

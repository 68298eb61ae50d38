"""`dreamcam models`: the networks the registry knows, their layers, and whether their weights are here."""

from __future__ import annotations

import argparse


def add_arguments(models: argparse.ArgumentParser) -> None:
    """No options of its own."""


def run(args: argparse.Namespace) -> int:
    from models.registry import list_specs

    for spec in list_specs():
        missing = "not downloaded yet" if spec.weights.url else "not installed"
        state = "available" if spec.weights.available() else missing
        print(f"{spec.name}: {spec.title}")
        print(f"  weights: {state} ({spec.weights.description}; {spec.licence})")
        print(f"  default layer: {spec.default_layer}")
        print(f"  layers: {' '.join(spec.layers)}")
    return 0

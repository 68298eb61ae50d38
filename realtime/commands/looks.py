"""`dreamcam looks`: the bundled looks, in key order, for `--preset NAME` (no torch: it starts at once)."""

from __future__ import annotations

import argparse


def add_arguments(looks: argparse.ArgumentParser) -> None:
    """No options of its own."""


def run(args: argparse.Namespace) -> int:
    from realtime.show.presets import bundled_looks, load_preset

    for number, (name, description, path) in enumerate(bundled_looks(), start=1):
        p = load_preset(path, check_network=False)  # listed, not dreamed: tests check their layers
        print(f"{name}: {description}")
        print(f"  key {number}  {p.model} {p.layer}  steps {p.steps}  lr {p.lr:g}  warm start {p.warm_start}")
    return 0

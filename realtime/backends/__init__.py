"""Compute backends: interchangeable engines behind one contract.

A backend is built for one DreamNet and objective and offers:
    step(x) -> x          one gradient step (jitter, forward, backward, normalised update, clamp)
    run(x, steps) -> x    k steps, the unit a frame needs (accelerated backends replay it whole)
    objective_value(x)    the objective at x, for HUDs and tests
Step size, jitter and TV weight are read from the current DreamParams on every call, so changing
them never rebuilds anything.
"""

from __future__ import annotations

import logging

import torch

from realtime.backends.eager import EagerBackend
from realtime.errors import BackendError

log = logging.getLogger(__name__)

BACKENDS = ("auto", "eager")


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when a GPU answers, else cpu; asking for cuda without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BackendError("--device cuda asked for, but no CUDA GPU is available; use --device cpu")
    if name not in ("cpu", "cuda"):
        raise BackendError(f"unknown device '{name}'; choose auto, cpu or cuda")
    return torch.device(name)


def choose_backend(name: str) -> str:
    """The backend to build for a request; 'auto' picks the fastest that works here."""
    if name not in BACKENDS:
        raise BackendError(f"unknown backend '{name}'; choose one of: {', '.join(BACKENDS)}")
    if name == "auto":
        log.info("backend auto: eager (the only backend in this build)")
        return "eager"
    return name


__all__ = ["BACKENDS", "EagerBackend", "choose_backend", "resolve_device"]

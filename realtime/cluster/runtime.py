"""Ray for a split render: start a local runtime (`--workers N`) or join a cluster (`--cluster`),
say what a chunk asks for (one GPU where the cluster has them), count every chunk's frames, and
leave nothing running that this command started.

Ray is optional (`pip install 'dreamcam[cluster]'`); without it, `need_ray` says so in one line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from realtime.errors import DreamcamError

log = logging.getLogger(__name__)

INSTALL = "pip install 'dreamcam[cluster]'"
CONNECT_TIMEOUT_S = 5.0  # a cluster address that does not answer within this is an error, not a hang


class ClusterError(DreamcamError):
    """Ray missing, a cluster that cannot be reached or went away, a chunk that failed."""


def need_ray() -> ModuleType:
    """The ray module, or a one-line error with the install command."""
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--workers and --cluster need Ray, which is not installed: {INSTALL}") from None
    return ray


def cluster_address(option: str | None) -> str | None:
    """`--cluster ADDRESS`, or RAY_ADDRESS for a bare `--cluster`; None: a local runtime."""
    if option is None:
        return None
    if option == "env":
        address = os.environ.get("RAY_ADDRESS", "")
        if not address:
            raise ClusterError(
                "--cluster without an address reads RAY_ADDRESS, which is not set; give HOST:PORT"
            )
        return address
    return option


def check_reachable(address: str) -> None:
    """A HOST:PORT that refuses or does not answer is one line now, not Ray's minute of retries."""
    if address == "auto" or address.startswith(("ray://", "local")):
        return  # Ray finds `auto` itself; a Ray Client address answers over its own protocol
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"cluster address '{address}' is not HOST:PORT (e.g. 10.0.0.5:6379)")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ClusterError(
            f"no Ray cluster answers at {address} ({reason}); start one there with "
            f"`ray start --head --port {port}` or check the address"
        ) from None


@dataclass
class Runtime:
    """The Ray this render runs on; `close()` stops what `open_runtime` started."""

    ray: ModuleType
    parallel: int  # chunks that run at once
    gpus: bool  # chunks ask for a GPU each
    owned: bool  # this command started or joined it (and so stops or leaves it)

    def close(self) -> None:
        if self.owned and self.ray.is_initialized():
            self.ray.shutdown()  # a local runtime's processes stop with it; a cluster is only left


def open_runtime(workers: int | None, address: str | None, use_gpus: bool = True) -> Runtime:
    """Join `address`, or start a local runtime of `workers` CPUs (a runtime this process already
    has is used as it is: tests share one). `workers` also caps the chunks that run at once."""
    ray = need_ray()
    # no phoning home (Ray's usage statistics), no dashboard: a render needs no internet and no web UI
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    owned = not ray.is_initialized()
    if owned:
        with _our_stop_signals():
            _start_or_join(ray, workers, address)
    resources = ray.cluster_resources()
    gpus = use_gpus and resources.get("GPU", 0) >= 1
    slots = int(resources.get("GPU", 0) if gpus else resources.get("CPU", 1))
    parallel = max(1, min(slots, workers) if workers else slots)
    log.info(
        "ray: %d chunk(s) at once on %s (%s)",
        parallel,
        "GPUs" if gpus else "CPUs",
        address or "a local runtime",
    )
    return Runtime(ray, parallel, gpus, owned)


def _start_or_join(ray: ModuleType, workers: int | None, address: str | None) -> None:
    quiet = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False}
    if address is not None:
        check_reachable(address)
        _token_auth_if_available()
        try:
            ray.init(address=address, **quiet)
        except Exception as exc:  # Ray's own ConnectionError, a version mismatch, auth
            raise ClusterError(
                f"cannot join the Ray cluster at {address}: {_first_line(exc)} (the same Ray and "
                "Python as the cluster? its auth token in ~/.ray/auth_token or RAY_AUTH_TOKEN?)"
            ) from None
    else:
        # log_to_driver off: a worker's warnings come back with its chunk (ChunkResult.warnings),
        # so the render's one-line messages stay one line
        _workers_find_dreamcam()
        try:
            ray.init(address="local", num_cpus=workers or os.cpu_count() or 1, **quiet)
        except BaseException:  # SIGTERM or Ctrl+C while it starts: stop what it started
            ray.shutdown()
            raise


@contextlib.contextmanager
def _our_stop_signals() -> Iterator[None]:
    """Keep the SIGTERM/SIGHUP handling the command set up: Ray's core installs its own crash
    handler on them when it starts, which dumps a stack and aborts (status -6) instead of letting
    the render clean up (signals.stop_on_signals)."""
    stops = [s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s]
    main = threading.current_thread() is threading.main_thread()
    before = {s: signal.getsignal(s) for s in stops} if main else {}
    try:
        yield
    finally:
        for signum, handler in before.items():
            if handler is not None:
                signal.signal(signum, handler)


def _token_auth_if_available() -> None:
    """Send Ray's auth token where there is one, as `ray start` does for the head it starts (a
    driver joining an explicit address does not by itself, and the cluster then refuses it)."""
    try:  # Ray 2.5x: the function `ray start` calls (it also refreshes Ray's cached config)
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # an older Ray has no token auth
        return
    ray_log = logging.getLogger("ray")
    level = ray_log.level
    ray_log.setLevel(logging.ERROR)  # its note that auth is on is not the user's business
    try:
        maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    finally:
        ray_log.setLevel(level)


def _workers_find_dreamcam() -> None:
    """A local runtime's workers import dreamcam as this process does, installed or not (a checkout
    run with PYTHONPATH): they inherit the environment, so the checkout goes on its PYTHONPATH."""
    root = str(Path(__file__).resolve().parents[2])
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *paths])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class ProgressBoard:
    """Frames dreamt per chunk, reported by the workers (a Ray actor: one for the render). A retried
    chunk reports from 0 again, so a lost worker's frames are not counted twice."""

    def __init__(self) -> None:
        self.done: dict[int, int] = {}

    def report(self, index: int, frames: int) -> None:
        self.done[index] = frames

    def total(self) -> int:
        return sum(self.done.values())

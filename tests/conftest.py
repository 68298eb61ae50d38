"""Shared fixtures. SDL's dummy drivers are set before anything imports pygame: no screen here."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import skimage.data  # noqa: E402
import torch  # noqa: E402

from models.registry import Network, load_network  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def ndi_loopback(tmp_path_factory) -> None:
    """NDI finds the tests' own senders through its config file (`networks.ips`), no mDNS needed.

    Set for the whole session because the NDI runtime reads it once per process, when the first
    test that touches NDI (tests/test_ndi.py, or `dreamcam doctor`'s link check) loads it.
    """
    if "NDI_CONFIG_DIR" not in os.environ:
        folder = tmp_path_factory.mktemp("ndi")
        (folder / "ndi-config.v1.json").write_text(
            '{"ndi": {"networks": {"ips": "127.0.0.1", "discovery": ""}}}'
        )
        os.environ["NDI_CONFIG_DIR"] = str(folder)


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory) -> None:
    """The tests' own dreamcam cache: `--backend auto`'s measured choices and ONNX exports in the
    user's cache must neither steer a test nor be written by one."""
    if "DREAMCAM_CACHE" not in os.environ:
        os.environ["DREAMCAM_CACHE"] = str(tmp_path_factory.mktemp("dreamcam-cache"))


@pytest.fixture(scope="session")
def lite0() -> Network:
    """The default network with its bundled weights, loaded once for the whole run."""
    return load_network("efficientnet_lite0")


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    """A real photo (a tabby cat), RGB uint8."""
    return skimage.data.chelsea()


@pytest.fixture
def chelsea_small(chelsea) -> torch.Tensor:
    """The cat at a live dream size, as a 1x3x180x320 tensor in [0, 1]."""
    small = cv2.resize(chelsea, (320, 180), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(small).permute(2, 0, 1).unsqueeze(0).float() / 255.0


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.fixture
def tmpfs(tmp_path):
    """A factory for small RAM disks: `tmpfs("256k")` is an empty folder that fills after 256 KiB,
    `tmpfs("64k", read_only=True)` one that refuses every write. Needs root (skipped otherwise)."""
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounts = []

    def mount(size: str, read_only: bool = False):
        folder = tmp_path / f"disk{len(mounts)}"
        folder.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
        mounts.append(folder)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        return folder

    yield mount
    for folder in mounts:
        subprocess.run(["umount", "-l", str(folder)], check=False)

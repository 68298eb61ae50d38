"""The backend contract (realtime.dream.backends.base.Backend), checked on every backend this
machine has: eager, onnx and openvino here, cudagraph on a CUDA GPU."""

import cv2
import pytest
import torch

from realtime.dream.backends import BACKENDS, Backend, create_backend
from realtime.dream.backends.base import PRECISIONS
from realtime.dream.backends.openvino import openvino_available
from realtime.dream.objectives import parse_objective
from realtime.params import DreamParams

SIZE = (96, 64)  # (width, height): small, so the onnx export stays quick
OTHER = (64, 48, 2)  # (height, width, steps) the backend was not built for

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
needs_openvino = pytest.mark.skipif(not openvino_available(), reason="needs openvino (no wheel here)")
EVERY_BACKEND = [
    "eager",
    pytest.param("onnx", marks=pytest.mark.slow),  # exports a gradient step (seconds)
    pytest.param("openvino", marks=[pytest.mark.slow, needs_openvino]),  # the same export, compiled
    pytest.param("cudagraph", marks=[pytest.mark.gpu, needs_cuda]),
]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DREAMCAM_CACHE", str(tmp_path_factory.mktemp("onnx-cache")))
        yield


def _network(lite0, name):
    if name != "cudagraph":
        return lite0
    from models.registry import load_network

    return load_network("efficientnet_lite0", device="cuda")


def _build(network, name, seed=3, **params) -> Backend:
    objective = parse_objective("block3", network.spec)
    params = DreamParams(lr=0.02, steps=2, **params)
    generator = torch.Generator().manual_seed(seed)
    # fp32 pinned: the comparison with eager is about the maths, not about half precision
    return create_backend(name, network, objective, params, generator, SIZE, precision="fp32")


def _photo(chelsea, device) -> torch.Tensor:
    image = cv2.resize(chelsea, SIZE, interpolation=cv2.INTER_AREA)
    return (torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float() / 255.0).to(device)


@pytest.mark.parametrize("name", EVERY_BACKEND)
def test_backend_dreams_and_reads_its_params_live(onnx_cache, lite0, chelsea, name):
    network = _network(lite0, name)
    backend = _build(network, name)
    assert isinstance(backend, Backend) and backend.name in BACKENDS
    assert isinstance(backend.provider, str) and backend.provider
    assert backend.precision in PRECISIONS
    x = _photo(chelsea, network.device)
    height, width = x.shape[-2:]
    assert backend.is_prepared((height, width, 2))  # built for its size before the first frame

    dreamt = x
    for _ in range(3):
        dreamt = backend.run(dreamt, 2)
    assert dreamt.shape == x.shape and dreamt.dtype == x.dtype and dreamt.device == x.device
    assert dreamt.min() >= 0.0 and dreamt.max() <= 1.0
    assert backend.objective_value(dreamt) > 1.2 * backend.objective_value(x)

    # step size is read on every run: no rebuild, and lr 0 leaves the picture as it is
    backend.params = backend.params.replace(lr=0.0)
    torch.testing.assert_close(backend.run(x, 2), x, atol=1e-6, rtol=0)
    backend.close()


@pytest.mark.parametrize("name", EVERY_BACKEND)
def test_prepare_builds_every_shape_ahead(onnx_cache, lite0, name):
    network = _network(lite0, name)
    backend = _build(network, name)
    backend.prepare([OTHER, OTHER])  # idempotent, duplicates allowed
    assert backend.is_prepared(OTHER)
    out = backend.run(torch.full((1, 3, OTHER[0], OTHER[1]), 0.5, device=network.device), OTHER[2])
    assert out.shape[-2:] == OTHER[:2] and torch.isfinite(out).all()
    backend.close()
    if name != "eager":  # eager builds nothing; the others drop their graphs or sessions
        assert not backend.is_prepared(OTHER)


@pytest.mark.parametrize("tv_weight", [0.0, 5.0])
@pytest.mark.parametrize("name", [p for p in EVERY_BACKEND if p != "eager"])
def test_backend_agrees_with_eager(onnx_cache, lite0, chelsea, name, tv_weight):
    """Same seed, same jitter: each backend computes the eager reference's update, with the total
    variation term (which eager skips at weight 0, and the traced graphs always compute)."""
    network = _network(lite0, name)
    backend = _build(network, name, seed=9, tv_weight=tv_weight)
    eager = _build(network, "eager", seed=9, tv_weight=tv_weight)
    x = _photo(chelsea, network.device)
    update, reference = backend.run(x, 2) - x, eager.run(x, 2) - x
    relative_error = float((update - reference).norm() / reference.norm())
    assert relative_error < 0.02, relative_error

"""The ONNX backend: the exported gradient step matches eager PyTorch on a real photo."""

import numpy as np
import pytest
import torch

from realtime.dream.backends import EagerBackend, OnnxBackend, create_backend
from realtime.dream.backends.onnx_export import cached_path, export_step
from realtime.dream.objectives import parse_objective
from realtime.errors import BackendError
from realtime.params import DreamParams

pytestmark = pytest.mark.slow  # each export traces and converts a whole gradient step (seconds)

SIZE = (160, 96)  # (width, height): small, to keep the export and the checks quick


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DREAMCAM_CACHE", str(tmp_path_factory.mktemp("onnx-cache")))
        yield


def _pair(lite0, spec: str, params: DreamParams):
    objective = parse_objective(spec, lite0.spec)
    net = lite0.truncated(sorted(objective.layers))
    onnx = OnnxBackend(lite0, net, objective, params, torch.Generator().manual_seed(5))
    eager = EagerBackend(net, objective, params, torch.Generator().manual_seed(5))
    return onnx, eager


@pytest.mark.parametrize("spec", ["block5", "block3:7+0.5*block8"])
def test_onnx_step_matches_eager_on_a_real_photo(onnx_cache, lite0, chelsea, spec):
    import cv2

    image = cv2.resize(chelsea, SIZE, interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float() / 255.0
    onnx, eager = _pair(lite0, spec, DreamParams(lr=0.02))
    x_onnx = onnx.run(x, 3)  # same seed: the same jitter offsets on both sides
    x_eager = eager.run(x, 3)
    update_onnx, update_eager = x_onnx - x, x_eager - x
    relative_error = float((update_onnx - update_eager).norm() / update_eager.norm())
    assert relative_error < 0.02, relative_error
    gain_onnx = eager.objective_value(x_onnx) / eager.objective_value(x)
    gain_eager = eager.objective_value(x_eager) / eager.objective_value(x)
    assert gain_eager > 1.2
    assert abs(gain_onnx - gain_eager) / gain_eager < 0.02, (gain_onnx, gain_eager)


def test_export_is_cached_and_reused(onnx_cache, lite0):
    objective = parse_objective("block3", lite0.spec)
    path = cached_path(lite0, str(objective), SIZE, steps=1)
    onnx, _ = _pair(lite0, "block3", DreamParams())
    onnx.session_for(SIZE[1], SIZE[0])
    assert path.exists()
    mtime = path.stat().st_mtime_ns
    again, _ = _pair(lite0, "block3", DreamParams())
    again.session_for(SIZE[1], SIZE[0])
    assert path.stat().st_mtime_ns == mtime  # loaded, not exported again
    assert again.provider == "CPUExecutionProvider"


def test_jitter_and_step_size_are_graph_inputs(onnx_cache, lite0):
    """Changing lr live needs no new export: a bigger lr gives a proportionally bigger update."""
    x = torch.rand(1, 3, SIZE[1], SIZE[0], generator=torch.Generator().manual_seed(0))
    small, _ = _pair(lite0, "block3", DreamParams(lr=0.01, jitter=0))
    big, _ = _pair(lite0, "block3", DreamParams(lr=0.02, jitter=0))
    x = x.clamp(0.2, 0.8)  # away from the clamp so the update is linear in lr
    d_small, d_big = small.run(x, 1) - x, big.run(x, 1) - x
    np.testing.assert_allclose(d_big.numpy(), 2 * d_small.numpy(), atol=1e-4)


def test_k_step_export_writes_a_file(onnx_cache, lite0, tmp_path):
    objective = parse_objective("block3", lite0.spec)
    messages = []
    path = export_step(lite0, objective, (96, 64), 2, tmp_path / "k2.onnx", progress=messages.append)
    assert path.exists() and path.stat().st_size > 100_000
    assert any("[3/3]" in m for m in messages)


def test_providers_are_asked_for_only_where_they_can_load(monkeypatch):
    import onnxruntime

    from realtime.dream.backends import onnx as onnx_backend

    assert onnx_backend.providers_for(torch.device("cpu")) == ["CPUExecutionProvider"]
    compiled_in = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: compiled_in)
    monkeypatch.setattr(onnxruntime, "preload_dlls", lambda *a, **k: None, raising=False)
    monkeypatch.setattr(onnx_backend, "_tensorrt_loads", lambda: False)
    assert onnx_backend.providers_for(torch.device("cuda")) == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    monkeypatch.setattr(onnx_backend, "_tensorrt_loads", lambda: True)
    assert onnx_backend.providers_for(torch.device("cuda"))[0] == "TensorrtExecutionProvider"


def test_unknown_backend_names_the_alternatives(lite0):
    objective = parse_objective("block3", lite0.spec)
    with pytest.raises(BackendError, match="auto, eager, onnx, cudagraph"):
        create_backend("tensorflow", lite0, objective, DreamParams(), torch.Generator(), SIZE)


def test_export_command_writes_the_graph_with_progress(onnx_cache, tmp_path, capsys):
    from realtime.commands.cli import main

    out = tmp_path / "step.onnx"
    assert main(["export", "--layer", "block3", "--dream-size", "96x64", "--steps", "2", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert out.exists() and str(out) in captured.out
    assert "[1/3]" in captured.err and "[3/3]" in captured.err
    import onnxruntime

    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["x", "jitter", "lr", "tv_weight"]
    # two unrolled steps, each a row of gather indices: rows, cols, and both rolled back
    assert session.get_inputs()[1].shape == [2, 2 * 64 + 2 * 96]

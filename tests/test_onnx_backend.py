"""The ONNX backend: the exported gradient step matches eager PyTorch on a real photo."""

import os

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
    # TensorRT is never offered, even where it is compiled in (O1: see the onnx module docstring)
    assert onnx_backend.providers_for(torch.device("cuda")) == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    # the CPU-only wheel on a GPU machine: refused, with the package that fixes it
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(BackendError, match=r"onnxruntime-gpu\[cuda,cudnn\]"):
        onnx_backend.providers_for(torch.device("cuda"))


def test_the_cuda_provider_runs_on_torch_stream_as_a_cuda_graph():
    from realtime.dream.backends.onnx import provider_options

    names = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    cuda, cpu = provider_options(names, torch.device("cuda", 1), stream_handle=94011)
    assert cuda[0] == "CUDAExecutionProvider" and cpu == "CPUExecutionProvider"
    assert cuda[1] == {"device_id": "1", "user_compute_stream": "94011", "enable_cuda_graph": "1"}
    (plain, _) = provider_options(names, torch.device("cuda", 1), 94011, cuda_graph=False)
    assert "enable_cuda_graph" not in plain[1]


def test_nodes_a_gpu_session_places_on_the_cpu_are_reported():
    """O2: onnxruntime's own warning is hidden (log level 3); its node placement is read back."""
    from realtime.dream.backends.onnx import cpu_fallback, node_placement

    gpu = {"CUDAExecutionProvider": ["Conv"] * 40, "CPUExecutionProvider": ["Shape", "Gather", "Shape"]}
    assert cpu_fallback(gpu) == "3 of 43 nodes on the CPU (Gather, Shape)"
    assert cpu_fallback({"CUDAExecutionProvider": ["Conv"]}) == ""
    assert cpu_fallback({"CPUExecutionProvider": ["Conv"]}) == ""  # a CPU session: the plan

    class Node:
        def __init__(self, op_type):
            self.op_type = op_type

    class Subgraph:
        def __init__(self, ep_name, ops):
            self.ep_name, self._ops = ep_name, ops

        def get_nodes(self):
            return [Node(op) for op in self._ops]

    class Session:
        def get_provider_graph_assignment_info(self):
            return [
                Subgraph("CUDAExecutionProvider", ["Conv", "Relu"]),
                Subgraph("CPUExecutionProvider", ["Mod"]),
            ]

    assert node_placement(Session()) == {
        "CUDAExecutionProvider": ["Conv", "Relu"],
        "CPUExecutionProvider": ["Mod"],
    }
    assert node_placement(object()) == {}  # an onnxruntime too old to tell


def test_a_real_session_records_where_its_nodes_run(tmp_path):
    import onnxruntime

    from realtime.dream.backends.onnx import node_placement, open_session

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    path = tmp_path / "tiny.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 8, 8),), str(path), dynamo=False)
    assert onnxruntime.get_available_providers()
    session = open_session(path, torch.device("cpu"), ["CPUExecutionProvider"])
    assert node_placement(session) == {"CPUExecutionProvider": ["Conv", "Relu"]}


def test_a_shape_is_bound_once_not_every_step():
    """O3: one I/O binding per image size, to fixed buffers (what onnxruntime's CUDA graph needs);
    more steps grow the jitter rows without binding anything again."""
    from realtime.dream.backends.onnx import OnnxBackend

    class Binding:
        def __init__(self):
            self.bound = []

        def bind_input(self, name, *args):
            self.bound.append(name)

        bind_output = bind_input

    class Session:
        def __init__(self):
            self.bindings = []

        def io_binding(self):
            self.bindings.append(Binding())
            return self.bindings[-1]

    backend = OnnxBackend.__new__(OnnxBackend)
    backend.device, backend._bound = torch.device("cpu"), {}
    session = Session()
    first = backend._bound_for(session, 18, 32, 2)
    for steps in (2, 1, 4):
        bound = backend._bound_for(session, 18, 32, steps)
    assert bound is first and len(session.bindings) == 1
    assert session.bindings[0].bound == ["x", "jitter", "lr", "tv_weight", "x_new", "objective"]
    assert bound.jitter.shape == (4, 2 * (18 + 32)) and bound.row.shape == (1, 2 * (18 + 32))
    backend._bound_for(session, 9, 16, 1)  # another size: its own binding
    assert len(session.bindings) == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine the CUDA provider may load")
def test_onnx_on_a_gpu_refuses_the_cpu_fallback_and_names_what_is_missing(onnx_cache, lite0, capfd):
    """This machine has onnxruntime-gpu but no GPU: the CUDA provider fails to load, as it did in
    review for missing CUDA wheels. The backend must not run on the CPU provider in silence, must
    name what is missing, and onnxruntime's "Failed to load" must not reach stdout."""
    from realtime.dream.backends.onnx import open_session

    objective = parse_objective("block3", lite0.spec)
    path = cached_path(lite0, str(objective), SIZE, steps=1)
    export_step(lite0, objective, SIZE, 1, path)
    capfd.readouterr()
    with pytest.raises(BackendError) as error:
        open_session(path, torch.device("cuda"), ["CUDAExecutionProvider", "CPUExecutionProvider"])
    message = str(error.value)
    assert "could not load its CUDA provider" in message
    # the library it could not open, and its fix: the driver here (no GPU), else the CUDA wheels
    assert "libcuda.so" in message and "NVIDIA driver" in message or "onnxruntime-gpu[cuda,cudnn]" in message
    assert ".so" in message
    assert capfd.readouterr().out == ""


def test_what_onnxruntime_prints_never_reaches_stdout(capfd):
    from realtime.dream.backends.onnx import missing_libraries, native_output_captured

    with native_output_captured() as printed:
        print("Failed to load libcurand.so.10: libcurand.so.10: cannot open shared object file")
        os.write(1, b"native stdout line\n")
        os.write(
            2, b"Failed to load library x.so with error: libcudnn.so.9: cannot open shared object file\n"
        )
    assert capfd.readouterr() == ("", "")
    assert "native stdout line" in printed.out
    assert missing_libraries(printed.out + printed.err) == ["libcurand.so.10", "libcudnn.so.9"]


def test_two_exports_of_one_look_never_share_a_partial_file(onnx_cache, lite0, monkeypatch, tmp_path):
    """Each writer has its own partial file; the cached name only ever holds a complete graph."""
    written = []

    def fake_export(graph, inputs, f, **kwargs):
        written.append(f)
        assert f.endswith(".partial") and not os.path.exists(tmp_path / "look.onnx")
        with open(f, "wb") as out:
            out.write(b"graph %d" % len(written))

    monkeypatch.setattr(torch.onnx, "export", fake_export)
    objective = parse_objective("block3", lite0.spec)
    export_step(lite0, objective, (32, 32), 1, tmp_path / "look.onnx")
    (tmp_path / "look.onnx").unlink()
    export_step(lite0, objective, (32, 32), 1, tmp_path / "look.onnx")
    assert len(set(written)) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["look.onnx"]  # no partial left behind


def test_unknown_backend_names_the_alternatives(lite0):
    objective = parse_objective("block3", lite0.spec)
    with pytest.raises(BackendError, match="auto, eager, onnx, openvino, cudagraph"):
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


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_onnx_cuda_provider_with_io_binding_matches_eager(onnx_cache, chelsea):
    """On the GPU: a real CUDA provider, inputs and outputs bound to torch tensors, the
    same update as eager on the GPU."""
    import cv2

    from models.registry import load_network

    network = load_network("efficientnet_lite0", device="cuda")
    objective = parse_objective("block5", network.spec)
    net = network.truncated(["block5"])
    params = DreamParams(lr=0.02)
    onnx = OnnxBackend(network, net, objective, params, torch.Generator().manual_seed(5))
    eager = EagerBackend(net, objective, params, torch.Generator().manual_seed(5))
    image = cv2.resize(chelsea, SIZE, interpolation=cv2.INTER_AREA)
    x = (torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float() / 255.0).cuda()
    x_onnx, x_eager = onnx.run(x, 3), eager.run(x, 3)
    assert onnx.provider.startswith("CUDAExecutionProvider")
    assert x_onnx.device == x.device and (SIZE[1], SIZE[0]) in onnx._bound  # the bound path ran
    print(f"onnx on the GPU: provider {onnx.provider}, captured {onnx.captured}")
    error = float((x_onnx - x_eager).norm() / (x_eager - x).norm())
    assert error < 0.02, error


def test_bench_json_stays_pure_json_when_onnxruntime_prints(onnx_cache, monkeypatch, capfd):
    """On a GPU machine onnxruntime prints "Failed to load ..." while it opens a session; here a
    session that prints the same way stands in for it: stdout must still parse as JSON."""
    import json

    import onnxruntime

    from realtime.commands.cli import main

    real_session = onnxruntime.InferenceSession

    def noisy_session(*args, **kwargs):
        print("Failed to load libcurand.so.10: libcurand.so.10: cannot open shared object file")
        os.write(1, b"[E:onnxruntime:Default] Failed to load library libonnxruntime_providers_cuda.so\n")
        return real_session(*args, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", noisy_session)
    size = f"{SIZE[0]}x{SIZE[1]}"
    argv = ["bench", "--backend", "onnx", "--frames", "2", "--dream-size", size, "--window", "none", "--json"]
    assert main(argv) == 0
    result = json.loads(capfd.readouterr().out)
    assert result["backend"] == "onnx" and result["provider"] == "CPUExecutionProvider"

"""The OpenVINO backend's own behaviour, and what a hostile setup does to it (docs/SAFETY.md,
"OpenVINO"). That it computes eager's update is tests/test_backend_contract.py's job."""

import builtins
import shutil
from types import SimpleNamespace

import pytest
import torch

from realtime.dream.backends import auto, create_backend
from realtime.dream.backends import openvino as ov_backend
from realtime.dream.backends.auto import REFERENCE, Candidate, build_candidates, candidates
from realtime.dream.backends.onnx_export import cached_path, export_step
from realtime.dream.backends.openvino import OpenVinoBackend, compile_config, has_wheel
from realtime.dream.objectives import parse_objective
from realtime.errors import BackendError, DreamcamError
from realtime.params import DreamParams

needs_openvino = pytest.mark.skipif(not ov_backend.openvino_available(), reason="needs openvino")
OPENVINO = Candidate("openvino", "fp32")
SIZE = (48, 32)  # (width, height)


@pytest.fixture(scope="module")
def exported(lite0, tmp_path_factory):
    """One small export of block3 in a private cache, shared by this module's tests."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DREAMCAM_CACHE", str(tmp_path_factory.mktemp("ov-cache")))
        objective = parse_objective("block3", lite0.spec)
        path = cached_path(lite0, str(objective), SIZE, steps=1)
        export_step(lite0, objective, SIZE, 1, path)
        yield objective, path


def _backend(lite0, objective, **kwargs) -> OpenVinoBackend:
    net = lite0.truncated(sorted(objective.layers))
    return OpenVinoBackend(lite0, net, objective, DreamParams(), torch.Generator().manual_seed(0), **kwargs)


def _without_openvino(monkeypatch, error=ImportError):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "openvino" or name.startswith("openvino."):
            raise error("no openvino here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


# --- where it cannot run ------------------------------------------------------------------


def test_absent_openvino_is_one_line_and_auto_goes_without_it(lite0, monkeypatch):
    _without_openvino(monkeypatch)
    assert not ov_backend.openvino_available()
    objective = parse_objective("block3", lite0.spec)
    with pytest.raises(BackendError, match="openvino is not installed; pip install openvino"):
        create_backend("openvino", lite0, objective, DreamParams(), torch.Generator(), SIZE)
    assert OPENVINO not in candidates("cpu", "auto", "fp32", native_bf16=False, onnx=True, openvino=False)


def test_a_broken_openvino_install_says_reinstall(monkeypatch):
    _without_openvino(monkeypatch, OSError)  # a missing shared library inside its package
    assert ov_backend.why_unavailable().startswith("openvino is installed but does not load (OSError")


@pytest.mark.parametrize(
    ("system", "machine", "wheel"),
    [
        ("linux", "x86_64", True),
        ("win32", "AMD64", True),
        ("linux", "aarch64", True),
        ("darwin", "arm64", True),
        ("darwin", "x86_64", False),  # PyPI has no Intel-Mac wheel of 2026.4
        ("win32", "ARM64", False),
        ("linux", "riscv64", False),
    ],
)
def test_where_pypi_has_a_wheel(system, machine, wheel):
    assert has_wheel(system, machine) is wheel


def test_without_a_wheel_doctor_says_so_and_asks_nothing(monkeypatch):
    from realtime.commands import doctor

    _without_openvino(monkeypatch)
    monkeypatch.setattr(ov_backend, "has_wheel", lambda *args: False)
    (finding,) = doctor.check_openvino()
    assert finding.status == doctor.OK and "no wheel for this platform" in finding.what and not finding.fix
    monkeypatch.setattr(ov_backend, "has_wheel", lambda *args: True)
    (finding,) = doctor.check_openvino()
    assert finding.status == doctor.MISSING and finding.fix == "pip install openvino"


@needs_openvino
def test_doctor_lists_openvinos_devices():
    from realtime.commands import doctor

    findings = doctor.check_openvino()
    assert findings[0].what.startswith("OpenVINO 20")
    assert any(f.what.startswith("CPU: ") and "(measured" in f.what for f in findings)


@needs_openvino
@pytest.mark.parametrize("device", ["NPU", "gpu.7", "CPU;rm -rf /", "../../etc/passwd"])
def test_a_device_openvino_does_not_have_is_one_line(lite0, monkeypatch, device):
    monkeypatch.setenv(ov_backend.DEVICE_VARIABLE, device)
    objective = parse_objective("block3", lite0.spec)
    with pytest.raises(BackendError, match=f"OpenVINO has no device '{device.upper()}' here") as caught:
        _backend(lite0, objective)
    assert "it has: CPU" in str(caught.value) and "\n" not in str(caught.value)


@needs_openvino
def test_auto_with_a_bad_device_goes_on_without_openvino(lite0, monkeypatch, caplog):
    monkeypatch.setenv(ov_backend.DEVICE_VARIABLE, "NPU")
    objective = parse_objective("block3", lite0.spec)
    net = lite0.truncated(sorted(objective.layers))
    built = build_candidates(lite0, net, objective, DreamParams(), torch.Generator(), [REFERENCE, OPENVINO])
    assert list(built) == [REFERENCE] and "openvino not tried" in caplog.text


@needs_openvino
def test_an_empty_device_variable_means_the_cpu(monkeypatch):
    monkeypatch.setenv(ov_backend.DEVICE_VARIABLE, "  ")
    assert ov_backend.requested_device() == "CPU"


@needs_openvino
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_other_precisions_are_refused(lite0, precision):
    objective = parse_objective("block3", lite0.spec)
    with pytest.raises(BackendError, match="the openvino backend runs fp32 only"):
        create_backend(
            "openvino", lite0, objective, DreamParams(), torch.Generator(), SIZE, precision=precision
        )


@needs_openvino
def test_a_gpu_tensor_is_refused(lite0):
    network = SimpleNamespace(**vars(lite0))
    network.device = torch.device("cuda")
    with pytest.raises(BackendError, match="--device cpu"):
        OpenVinoBackend(network, None, None, DreamParams(), torch.Generator())


def test_non_finite_params_never_reach_a_backend():
    for name in ("lr", "tv_weight"):
        with pytest.raises(DreamcamError):
            DreamParams().replace(**{name: float("nan")})
        with pytest.raises(DreamcamError):
            DreamParams().replace(**{name: float("inf")})


# --- compile properties -------------------------------------------------------------------


def test_the_cpu_is_compiled_f32_on_the_dreams_threads_unpinned():
    every = ["INFERENCE_PRECISION_HINT", "PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS"]
    every += ["ENABLE_CPU_PINNING", "SCHEDULING_CORE_TYPE"]
    config = compile_config("CPU", 3, every)
    assert config == {
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
        "INFERENCE_NUM_THREADS": 3,
        "ENABLE_CPU_PINNING": False,
        "SCHEDULING_CORE_TYPE": "ANY_CORE",
    }
    # another device: only what it supports, and never the CPU's threads or pinning
    assert compile_config("GPU", 3, every) == {
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY",
    }
    assert compile_config("NPU", 3, ["PERFORMANCE_HINT"]) == {"PERFORMANCE_HINT": "LATENCY"}


@needs_openvino
@pytest.mark.slow
def test_it_runs_on_the_dreams_team_and_names_it(lite0, exported):
    objective, _ = exported
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # what the show sets on a 2-core machine: one core left to the display
    try:
        backend = _backend(lite0, objective)
        backend.prepare([(SIZE[1], SIZE[0], 1)])
    finally:
        torch.set_num_threads(before)
    compiled = backend.session_for(SIZE[1], SIZE[0]).get_compiled_model()
    assert int(compiled.get_property("INFERENCE_NUM_THREADS")) == 1
    import openvino

    assert compiled.get_property("INFERENCE_PRECISION_HINT") == openvino.Type.f32
    assert compiled.get_property("ENABLE_CPU_PINNING") is False
    assert backend.provider == "OpenVINO CPU, 1 thread"


# --- odd files ----------------------------------------------------------------------------


@needs_openvino
@pytest.mark.slow
def test_a_corrupt_export_is_one_line_naming_the_file(lite0, exported, tmp_path, monkeypatch):
    objective, path = exported
    monkeypatch.setenv("DREAMCAM_CACHE", str(tmp_path))
    corrupt = cached_path(lite0, str(objective), SIZE, steps=1)
    corrupt.write_bytes(path.read_bytes()[: path.stat().st_size // 3])  # a copy cut short
    with pytest.raises(BackendError, match=f"OpenVINO cannot compile {corrupt.name}.*delete the file"):
        _backend(lite0, objective).prepare([(SIZE[1], SIZE[0], 1)])


@needs_openvino
@pytest.mark.slow
def test_an_export_of_another_size_under_the_name_is_refused(lite0, exported, tmp_path, monkeypatch):
    objective, path = exported
    monkeypatch.setenv("DREAMCAM_CACHE", str(tmp_path))
    swapped = cached_path(lite0, str(objective), (64, 32), steps=1)
    shutil.copy(path, swapped)
    with pytest.raises(BackendError, match="takes 48x32 images, not 64x32; delete it"):
        _backend(lite0, objective).prepare([(32, 64, 1)])


@needs_openvino
@pytest.mark.slow
def test_closed_means_closed_and_a_new_run_compiles_again(lite0, exported):
    objective, _ = exported
    backend = _backend(lite0, objective)
    shape = (SIZE[1], SIZE[0], 1)
    backend.prepare([shape])
    backend.close()
    assert not backend.is_prepared(shape)
    out = backend.run(torch.full((1, 3, SIZE[1], SIZE[0]), 0.5), 1)
    assert backend.is_prepared(shape) and torch.isfinite(out).all()


def test_auto_measures_openvino_beside_the_others():
    assert candidates("cpu", "auto", "auto", native_bf16=True, onnx=True, openvino=True) == [
        REFERENCE,
        Candidate("eager", "bf16"),
        Candidate("onnx", "fp32"),
        OPENVINO,
    ]
    assert candidates("mps", "auto", "auto", native_bf16=True, onnx=True, openvino=True) == [REFERENCE]
    assert "openvino" in auto.machine_key()  # a new OpenVINO measures again

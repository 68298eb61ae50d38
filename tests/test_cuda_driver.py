"""The NVIDIA driver floor and the CUDA-major pin between torch and onnxruntime-gpu, on the CPU
with the versions handed in (a too-old driver is reported as such, never as "no CUDA GPU")."""

import pytest
import torch

from realtime.dream import cuda_driver


def test_driver_versions_parse_from_proc_and_nvidia_smi():
    proc = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.159.03  Thu Oct  2 2025"
    assert cuda_driver.parse_version(proc) == (580, 159, 3)
    assert cuda_driver.parse_version("535.54\n") == (535, 54, 0)
    assert cuda_driver.parse_version("") is None
    assert cuda_driver.text((525, 60, 13)) == "525.60.13" and cuda_driver.text((580, 0, 0)) == "580"


@pytest.mark.parametrize(
    ("driver", "torch_cuda", "too_old"),
    [
        ((580, 159, 3), "13.0", False),
        ((575, 57, 8), "13.0", True),  # a 12.9 driver under a CUDA 13 torch
        ((525, 60, 13), "12.8", False),
        ((520, 61, 5), "12.1", True),
        (None, "13.0", False),  # no driver: not "too old", just no GPU
        ((470, 0, 0), None, False),  # a CPU-only torch needs no driver
    ],
)
def test_a_driver_below_its_cuda_majors_floor_is_too_old(driver, torch_cuda, too_old):
    line = cuda_driver.too_old(driver, torch_cuda)
    assert (line is not None) == too_old
    if too_old:
        assert line.startswith("NVIDIA driver") and "too old" in line and "or newer" in line


def test_torch_and_onnxruntime_must_share_a_cuda_major():
    assert cuda_driver.mismatch("13.0", 13) is None
    assert cuda_driver.mismatch("13.0", None) is None  # no onnxruntime-gpu: nothing to match
    line = cuda_driver.mismatch("13.0", 12)
    assert "CUDA 13" in line and "CUDA 12" in line and "dreamcam[cu13]" in line


def test_the_installed_onnxruntime_gpu_names_its_cuda_major():
    major = cuda_driver.onnxruntime_cuda_major()
    assert major is None or major >= 11


def test_device_cuda_with_a_too_old_driver_says_so(monkeypatch):
    from realtime.dream.backends import resolve_device
    from realtime.errors import BackendError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(cuda_driver, "driver_version", lambda: (570, 86, 10))
    with pytest.raises(BackendError, match=r"NVIDIA driver 570.86.10 is too old for torch's CUDA 13.0"):
        resolve_device("cuda")


def test_device_auto_with_a_too_old_driver_warns_instead_of_falling_back_in_silence(monkeypatch, caplog):
    from realtime.dream.backends import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(cuda_driver, "driver_version", lambda: (570, 86, 10))
    with caplog.at_level("WARNING"):
        assert resolve_device("auto").type in ("cpu", "mps")
    assert "too old" in caplog.text and "on the CPU meanwhile" in caplog.text


def test_doctor_reports_a_too_old_driver_as_missing_not_as_no_gpu(monkeypatch):
    from realtime.commands import doctor

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(cuda_driver, "driver_version", lambda: (570, 86, 10))
    (finding,) = doctor.check_gpu()
    assert finding.status == doctor.MISSING and "too old" in finding.what
    assert "update the driver" in finding.fix

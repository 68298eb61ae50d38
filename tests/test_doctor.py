"""`dreamcam doctor`: real probes on this machine, JSON only on stdout, a missing piece named with its fix."""

import json
import threading

import numpy as np
import pytest
import torch

from realtime.commands import doctor
from realtime.commands.cli import main


def test_doctor_json_is_pure_json_and_covers_the_machine(capfd):
    assert main(["doctor", "--json"]) == 0
    result = json.loads(capfd.readouterr().out)  # anything else on stdout fails here
    findings = result["findings"]
    areas = {f["area"] for f in findings}
    assert {"torch", "gpu", "onnxruntime", "openvino", "camera", "display", "module", "cache"} <= areas
    lines = {f["what"] for f in findings if f["status"] == "ok"}
    assert "CPUExecutionProvider loads" in lines  # a real one-node session ran
    assert any(line.startswith("cv2 ") for line in lines)
    assert result["missing"] == sum(f["status"] == "missing" for f in findings)


def test_doctor_prints_one_line_per_finding(capsys):
    assert main(["doctor"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines and all(line[:4] in ("ok  ", "warn", "MISS") for line in lines)


def test_a_missing_module_is_reported_with_its_fix():
    modules = [("dreamcam_no_such_module", "a test of the doctor", "pip install dreamcam-no-such-module")]
    (finding,) = doctor.check_modules(modules)
    assert finding.status == doctor.MISSING and "dreamcam_no_such_module does not import" in finding.what
    assert finding.line().endswith("-> pip install dreamcam-no-such-module")


def test_a_broken_check_is_a_finding_and_the_others_still_run():
    def check_audio():
        raise OSError("PortAudio library not found")

    def check_ndi():
        return [doctor.Finding("ndi", doctor.OK, "NDI runtime 6")]

    findings = doctor.run_checks([check_audio, check_ndi])
    assert [f.area for f in findings] == ["audio", "ndi"]
    assert findings[0].status == doctor.MISSING and "PortAudio library not found" in findings[0].what


def test_camera_probe_reports_what_opens_and_does_not_wait_for_a_hung_driver(monkeypatch):
    import cv2

    release = threading.Event()

    class FakeCapture:
        def __init__(self, index):
            self.index = index

        def isOpened(self):
            if self.index == 2:
                release.wait()  # a driver that never answers
            return self.index in (0, 2)

        def read(self):
            return True, np.zeros((720, 1280, 3), np.uint8)

        def release(self):
            pass

    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    try:
        findings = doctor.check_cameras(range(4), timeout_s=0.3)
    finally:
        release.set()
    assert [f.what for f in findings] == ["camera 0 opens, 1280x720"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_doctor_captures_and_replays_a_cuda_graph():
    from realtime.commands import doctor

    assert doctor.graph_capture_failure() is None


def test_without_a_gpu_doctor_names_what_auto_measures_on_the_cpu(monkeypatch):
    """The CPU's line names auto's candidates (OpenVINO among them where it imports), not a fixed
    "eager" that auto no longer means."""
    from realtime.dream.backends import auto

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(auto, "cpu_has_native_bf16", lambda flags=None: False)
    monkeypatch.setattr("realtime.dream.backends.onnxruntime_available", lambda: True)
    monkeypatch.setattr("realtime.dream.backends.openvino_available", lambda: True)
    (finding,) = doctor.check_gpu()
    assert "auto measures eager fp32, onnx fp32, openvino fp32 and keeps the fastest" in finding.what
    monkeypatch.setattr("realtime.dream.backends.onnxruntime_available", lambda: False)
    monkeypatch.setattr("realtime.dream.backends.openvino_available", lambda: False)
    (finding,) = doctor.check_gpu()
    assert "on the CPU at 320x180, eager fp32;" in finding.what

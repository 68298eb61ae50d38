"""The `dreamcam` command as scripts use it: live recording, stills, bench JSON, one-line errors."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from realtime.commands.cli import main
from realtime.io.sources.opener import open_source
from tests.videofiles import read_video

ENV = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}


def dreamcam(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "realtime.commands.cli", *args],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=cwd,
        timeout=300,
    )


@pytest.mark.slow
def test_headless_run_records_twenty_dreamed_frames(tmp_path):
    out = tmp_path / "out.mp4"
    result = dreamcam("--source", "synthetic", "--headless", "--frames", "20", "--record", str(out))
    assert result.returncode == 0, result.stderr
    recorded, _ = read_video(out)
    assert len(recorded) == 20
    with open_source("synthetic", paced=False) as plain:
        source_frames = [plain.read().image for _ in range(20)]
    assert recorded[0].shape == source_frames[0].shape
    # each recorded frame is a dream: away from every plain frame of the scene (codec noise is under
    # 1), and deeper frame by frame: one warm-size step a frame, the dream grows over the first second
    differences = [min(np.abs(r.astype(int) - s.astype(int)).mean() for s in source_frames) for r in recorded]
    assert min(differences) > 1.5 and differences[10] > differences[0] + 1.5, differences


def test_dream_a_still_image(tmp_path, chelsea):
    source = tmp_path / "cat.png"
    cv2.imwrite(str(source), cv2.cvtColor(chelsea, cv2.COLOR_RGB2BGR))
    out = tmp_path / "dream.png"
    assert main(["dream", str(source), "-o", str(out), "--steps", "3", "--octaves", "2"]) == 0
    dreamt = cv2.imread(str(out))
    assert dreamt.shape == (*chelsea.shape[:2], 3)
    assert np.abs(dreamt.astype(int) - cv2.imread(str(source)).astype(int)).mean() > 3.0


def test_dream_from_noise(tmp_path):
    out = tmp_path / "noise.png"
    assert main(["dream", "noise", "-o", str(out), "--steps", "2", "--octaves", "1", "--seed", "3"]) == 0
    assert cv2.imread(str(out)) is not None


def test_bench_prints_one_json_object(capsys):
    assert main(["bench", "--frames", "3", "--dream-size", "160x90", "--json", "--compare-cold"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("model", "backend", "device", "dream_size", "steps", "frames", "fps", "frame_ms_p50",
                "frame_ms_p99", "kernel_ms_p50", "kernel_ms_p99", "latency_ms_p50", "cold_fps", "speedup",
                "provider", "precision"):  # fmt: skip
        assert key in result, key
    assert result["frames"] == 3 and result["dream_size"] == "160x90" and result["fps"] > 0
    assert result["speedup"] > 1.0


def test_models_lists_the_registry(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "efficientnet_lite0" in out and "default layer: block10" in out and "googlenet" in out
    assert "available" in out


def _write_corrupt_video(path):
    path.write_bytes(os.urandom(4096))
    return str(path)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--source", "missing.mp4", "--headless", "--frames", "1"], ["missing.mp4", "does not exist"]),
        (["--source", "synthetic", "--dream-size", "big", "--headless"], ["size", "WIDTHxHEIGHT"]),
        (["--source", "synthetic", "--model", "alexnet", "--headless"], ["unknown model", "alexnet"]),
        (["--source", "synthetic", "--layer", "block99", "--headless"], ["block99", "valid layers"]),
        (["--source", "57", "--headless", "--frames", "1"], ["camera 57", "does not answer"]),
        (["dream", "missing.png", "-o", "out.png"], ["missing.png"]),
        (["--source", "synthetic", "--steps", "0", "--headless"], ["steps"]),
        (["--source", "synthetic", "--record", "no/such/folder/out.mp4", "--headless"], ["folder"]),
        (["--bogus-flag"], ["unrecognized arguments"]),
    ],
)
def test_bad_input_is_one_line_on_stderr_with_status_2(tmp_path, args, words):
    result = dreamcam(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in result.stderr


def test_corrupt_video_is_one_line_error(tmp_path):
    for name, content in (("corrupt.mp4", os.urandom(4096)), ("empty.mp4", b"")):
        (tmp_path / name).write_bytes(content)
        result = dreamcam("--source", name, "--headless", "--frames", "1", cwd=tmp_path)
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert name in result.stderr and "cannot read video" in result.stderr

"""`dreamcam render` and `dreamcam eval` on clips the tests make themselves."""

import json
import os

import cv2
import numpy as np
import pytest

from realtime.commands.cli import main
from tests.videofiles import read_video
from tools.make_clip import write_clip

SMALL = ["--dream-size", "96x54", "--layer", "block3"]


@pytest.mark.slow
def test_render_writes_every_frame_at_the_inputs_size_and_rate(tmp_path):
    clip = write_clip(str(tmp_path / "pan.mp4"), "pan", frames=30, size=(160, 96), fps=25.0)
    out = tmp_path / "dreamt.mp4"
    assert main(["render", clip, "-o", str(out), *SMALL]) == 0
    frames, fps = read_video(out)
    source, _ = read_video(clip)
    assert len(frames) == 30 and frames[0].shape == (96, 160, 3) and fps == pytest.approx(25.0)
    assert np.abs(frames[10].astype(int) - source[10].astype(int)).mean() > 3.0  # dreamed
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_a_still_renders_as_a_zooming_dream(tmp_path, chelsea):
    still = tmp_path / "cat.png"
    cv2.imwrite(str(still), cv2.cvtColor(cv2.resize(chelsea, (128, 96)), cv2.COLOR_RGB2BGR))
    out = tmp_path / "zoom.mp4"
    assert main(["render", str(still), "-o", str(out), "--frames", "6", "--zoom", "1.05", *SMALL]) == 0
    frames, _ = read_video(out)
    assert len(frames) == 6 and frames[0].shape == (96, 128, 3)


@pytest.mark.parametrize("case", ["unreadable", "empty", "missing-folder"])
def test_bad_render_inputs_are_one_line_errors_and_leave_no_file(tmp_path, capsys, case):
    clip = tmp_path / "in.mp4"
    out = tmp_path / "out.mp4"
    if case == "unreadable":
        clip.write_bytes(os.urandom(3000))
    elif case == "empty":
        write_clip(str(clip), "pan", frames=0, size=(64, 48))
    else:
        write_clip(str(clip), "pan", frames=3, size=(64, 48))
        out = tmp_path / "no" / "such" / "out.mp4"
    assert main(["render", str(clip), "-o", str(out), *SMALL]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("dreamcam: error:")
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name != "in.mp4"] == []


@pytest.mark.slow
def test_eval_reports_less_flicker_with_flow_than_cold_dreams(tmp_path, capsys):
    clip = write_clip(str(tmp_path / "pan.mp4"), "pan", frames=12, size=(160, 96))
    assert main(["eval", clip, "--json", *SMALL]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == 12
    assert report["flow"]["flicker_ratio"] < report["off"]["flicker_ratio"]
    assert report["flow"]["objective_gain"] > 1.0
    for key in ("residual_error_warped", "residual_error_unwarped"):
        assert report["flow"][key] > 0
    assert report["still"]["warm_vs_cold"] > 0

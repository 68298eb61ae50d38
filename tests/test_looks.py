"""Looks everywhere: `--preset NAME|FILE` for run, render, eval and bench; `dreamcam looks` lists them."""

import cv2
import numpy as np
import pytest

from realtime.commands.cli import build_parser, main
from realtime.commands.options import dream_params as _params
from realtime.errors import ConfigError
from realtime.show.presets import bundled_dir, bundled_looks, load_preset, look_path, save_preset
from tests.videofiles import read_video

BUNDLED = ("subtle", "eyes", "fur", "architecture", "wild")


def test_dreamcam_looks_lists_every_bundled_look_with_its_description(capsys):
    assert main(["looks"]) == 0
    out = capsys.readouterr().out
    looks = bundled_looks()
    assert [name for name, _, _ in looks] == list(BUNDLED)
    for number, (name, description, path) in enumerate(looks, start=1):
        assert description, f"{path} has no description"
        assert f"{name}: {description}\n" in out
        assert f"  key {number}  {load_preset(path).model} {load_preset(path).layer} " in out


def test_a_look_is_a_bundled_name_or_a_file(tmp_path):
    assert look_path("eyes").startswith(bundled_dir()) and look_path("eyes").endswith("eyes.toml")
    mine = save_preset(load_preset(look_path("fur")).replace(steps=3), str(tmp_path))
    assert look_path(mine) == mine
    with pytest.raises(ConfigError, match="neither a preset file nor a bundled look; bundled: subtle, eyes"):
        look_path("eyez")


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--preset", "eyes"],
        ["render", "in.mp4", "-o", "out.mp4", "--preset", "eyes"],
        ["eval", "in.mp4", "--preset", "eyes"],
        ["bench", "--preset", "eyes"],
    ],
    ids=["run", "render", "eval", "bench"],
)
def test_every_dreaming_command_takes_the_same_look(argv):
    args = build_parser().parse_args([*argv, "--layer", "block3", "--steps", "4"])
    assert _params(args) == load_preset(look_path("eyes"))  # the look, whole: as it runs live


@pytest.mark.parametrize("command", [["bench"], ["eval", "in.mp4"], ["render", "in.mp4", "-o", "o.mp4"]])
def test_an_unknown_look_is_one_line_and_exit_2(capsys, command):
    assert main([*command, "--preset", "eyez"]) == 2
    err = capsys.readouterr().err
    assert "'eyez' is neither a preset file nor a bundled look" in err and err.count("\n") == 1


@pytest.mark.slow
def test_render_with_a_bundled_look_dreams_it(tmp_path, chelsea):
    still = tmp_path / "cat.png"
    cv2.imwrite(str(still), cv2.cvtColor(cv2.resize(chelsea, (128, 96)), cv2.COLOR_RGB2BGR))
    out = tmp_path / "eyes.mp4"
    argv = [
        "render",
        str(still),
        "-o",
        str(out),
        "--frames",
        "3",
        "--dream-size",
        "96x72",
        "--preset",
        "eyes",
    ]
    assert main(argv) == 0
    frames, _ = read_video(out)
    assert len(frames) == 3 and frames[0].shape == (96, 128, 3)
    source = cv2.resize(chelsea, (128, 96))
    assert np.abs(frames[-1].astype(int) - source.astype(int)).mean() > 2.0  # dreamed, not copied

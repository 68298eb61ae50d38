"""`dreamcam run` with the show options: a headless run with all of them, and one-line errors."""

import os

import pytest

from realtime.show.presets import bundled_dir
from tests.test_cli import dreamcam
from tests.videofiles import read_video

BAD_PRESET = 'layer = "block5"\nstrenght = 0.1\n'


@pytest.mark.slow
def test_headless_run_with_preset_playlist_osc_and_record(tmp_path):
    (tmp_path / "show.toml").write_text(
        'fade = 0.2\n[[item]]\npreset = "subtle"\nduration = 0.3\n[[item]]\npreset = "eyes"\nduration = 0.3\n'
    )
    result = dreamcam(
        "--source", "synthetic", "--headless", "--frames", "6", "--dream-size", "96x54",
        "--preset", os.path.join(bundled_dir(), "2-eyes.toml"), "--playlist", "show.toml",
        "--osc-port", "0", "--record", "out.mp4", "--log-level", "info",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "listening for OSC on 127.0.0.1:" in result.stderr
    assert len(read_video(tmp_path / "out.mp4")[0]) == 6


@pytest.mark.parametrize(
    "args, words",
    [
        (["--preset", "bad.toml"], ["bad.toml", "unknown key 'strenght'"]),
        (["--preset", "missing.toml"], ["missing.toml", "does not exist"]),
        (["--preset-dir", "nowhere"], ["preset folder 'nowhere' does not exist"]),
        (["--playlist", "bad.toml"], ["playlist 'bad.toml'", "unknown key 'layer'"]),
        (["--osc-port", "70000"], ["--osc-port must be 0-65535"]),
        (["--midi-map", "map.toml"], ["--midi-map needs --midi"]),
        (["--midi", "no such controller"], ["MIDI"]),
        (["--virtual-cam"], ["virtual"]),
    ],
)
def test_bad_show_option_is_one_line_with_status_2(tmp_path, args, words):
    if args == ["--virtual-cam"] and os.path.exists("/dev/video0"):
        pytest.skip("this machine may have a virtual camera")
    (tmp_path / "bad.toml").write_text(BAD_PRESET)
    result = dreamcam("--source", "synthetic", "--headless", "--frames", "1", "--dream-size", "96x54", *args,
                      cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]

"""Show-safe input: every number from the CLI, presets, playlists and MIDI maps is finite and in
range (layer weights included), files that are not UTF-8 are one line naming the byte, and a dream
that goes non-finite or flat is dropped so the next frame recovers."""

import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from realtime.commands.cli import main
from realtime.dream.dreamer import build_dreamer
from realtime.errors import ConfigError
from realtime.params import DreamParams
from realtime.show.midi import load_mapping
from realtime.show.presets import load_preset

BAD_LAYERS = ["block5+nan*block6", "inf*block5", "block5+1e39*block6", "-inf*block5"]


def dreamcam(*args: str) -> int:
    """`main` as the shell sees it: argparse's own mistakes exit through SystemExit."""
    try:
        return main(["--source", "synthetic", "--headless", "--frames", "1", *args])
    except SystemExit as exc:
        return exc.code


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("dreamcam: error:") or "error:" in lines[0]
    return lines[0]


@pytest.mark.parametrize("layer", BAD_LAYERS)
def test_non_finite_layer_weights_are_refused_everywhere(layer, tmp_path, capsys):
    with pytest.raises(ConfigError, match="finite"):
        DreamParams(layer=layer)
    assert dreamcam(f"--layer={layer}") == 2
    assert "finite" in one_error_line(capsys)
    preset = tmp_path / "bad.toml"
    preset.write_text(f'layer = "{layer}"\n')
    with pytest.raises(ConfigError, match="bad.toml.*finite.*fix 'layer'"):
        load_preset(str(preset))


@pytest.mark.parametrize("option", [["--lr", "nan"], ["--persistence", "inf"], ["--attract-after", "nan"]])
def test_non_finite_numbers_on_the_command_line_are_one_line(option, capsys):
    assert dreamcam(*option) == 2
    assert "not a finite number" in one_error_line(capsys)


@pytest.mark.parametrize("text", ["lr = nan\n", "persistence = inf\n", "stillness_boost = -inf\n"])
def test_non_finite_preset_numbers_are_one_line(text, tmp_path):
    preset = tmp_path / "bad.toml"
    preset.write_text(text)
    with pytest.raises(ConfigError, match="finite number") as info:
        load_preset(str(preset))
    assert "\n" not in str(info.value)


def test_non_finite_playlist_and_midi_numbers_are_one_line(tmp_path, capsys):
    playlist = tmp_path / "show.toml"
    playlist.write_text('[[item]]\npreset = "subtle"\nduration = nan\n')
    assert dreamcam("--playlist", str(playlist)) == 2
    assert "duration" in one_error_line(capsys)
    mapping = tmp_path / "map.toml"
    mapping.write_text('[cc]\n7 = { target = "lr", min = 0.0, max = inf }\n')
    with pytest.raises(ConfigError, match="finite"):
        load_mapping(str(mapping))


@pytest.mark.parametrize("flag", ["--preset", "--playlist", "--preset-dir", "--midi-map"])
def test_files_that_are_not_utf8_name_the_file_and_byte(flag, tmp_path, capsys):
    folder = tmp_path / "looks"
    folder.mkdir()
    latin1 = folder / "cafe.toml"
    latin1.write_bytes('description = "café"\nlr = 0.05\n'.encode("latin-1"))
    target = str(folder) if flag == "--preset-dir" else str(latin1)
    extra = ["--midi", "nothing"] if flag == "--midi-map" else []
    assert dreamcam(flag, target, *extra) == 2
    line = one_error_line(capsys)
    assert "cafe.toml" in line and "not UTF-8" in line and "offset 18" in line and "0xe9" in line


def test_a_binary_preset_is_one_line(tmp_path, capsys):
    binary = tmp_path / "photo.toml"
    binary.write_bytes(bytes(range(256)) * 4)
    assert dreamcam("--preset", str(binary)) == 2
    assert "photo.toml" in one_error_line(capsys)


@pytest.mark.slow
def test_a_protocol_4_pickle_as_weights_is_our_line_alone(tmp_path):
    import pickle

    weights = tmp_path / "weights.pth"
    weights.write_bytes(pickle.dumps({"a": [1, 2]}, protocol=4))
    args = ["--source", "synthetic", "--headless", "--frames", "1", "--weights", str(weights)]
    result = subprocess.run(
        [sys.executable, "-m", "realtime.commands.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "SDL_VIDEODRIVER": "dummy", "PYTHONWARNINGS": "default"},
        timeout=300,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dreamcam: error:") and "weights.pth" in lines[0]


def test_a_dream_gone_nan_is_dropped_once_and_the_next_frame_recovers(lite0, chelsea, caplog):
    dreamer = build_dreamer(
        DreamParams(layer="block3", warm_start="residual"), (96, 54), torch.device("cpu"), network=lite0
    )
    image = np.ascontiguousarray(chelsea[::4, ::4])
    dreamer.residual(image)
    dreamer.warm.residual = torch.full_like(dreamer.warm.residual, float("nan"))  # a poisoned carry
    with caplog.at_level(logging.WARNING):
        poisoned = dreamer.residual(image)
        recovered = dreamer.residual(image)
    assert torch.equal(poisoned, torch.zeros_like(poisoned))  # that frame shows the camera as it is
    assert torch.isfinite(recovered).all() and recovered.abs().mean() > 1.0  # dreaming again
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "non-finite" in warnings[0]
    assert dreamer.faults == 1


def test_a_dream_collapsed_to_one_colour_is_dropped(lite0, chelsea, caplog):
    dreamer = build_dreamer(DreamParams(layer="block3"), (96, 54), torch.device("cpu"), network=lite0)
    dreamer.engine.backend.run = lambda x, steps: torch.zeros_like(x)  # a backend that blacks out
    image = np.ascontiguousarray(chelsea[::4, ::4])
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            residual = dreamer.residual(image)
    assert torch.equal(residual, torch.zeros_like(residual))
    assert dreamer.faults == 3 and dreamer.warm.residual is None
    assert [r.getMessage() for r in caplog.records if "one colour" in r.getMessage()] != []
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1  # once per episode

"""Show-safe, second pass: nothing a controller, a playlist or a tired technician does ends the show
or destroys a take. Each bad input is refused at the one validation point, with one line, and the
same input is tried over every way it can arrive (CLI, preset, playlist, MIDI map, OSC, LiveDreamer).
"""

import logging
import os

import numpy as np
import pytest
import torch

from models.registry import get_spec
from realtime.control.plane import Action, ShowState, apply_action
from realtime.dream.dreamer import build_dreamer
from realtime.dream.objectives import parse_objective
from realtime.errors import ConfigError
from realtime.io.paths import check_output_path
from realtime.loop.showio import ShowIO
from realtime.params import DreamParams
from realtime.show.osc import BadValue, OscControl, Rejected
from realtime.show.playlist import Item, PlaylistPlayer, load_playlist
from realtime.show.presets import bundled_dir, load_folder, load_preset
from tests.test_validation import dreamcam, one_error_line

LITE0 = get_spec("efficientnet_lite0")
BAD_SPECS = [
    ("block8:99999", "0..111"),
    ("block8:112", "0..111"),
    ("block5+0.5*block8:4000", "0..111"),
    ("block8:²", "whole number"),
    ("block8:١٢", "whole number"),
    ("class:²", "ImageNet class"),
    ("class:١٢", "ImageNet class"),
]


# --- 1. layer specs are checked completely, wherever they come from --------------------------------


@pytest.mark.parametrize("spec, words", BAD_SPECS)
def test_a_layer_spec_out_of_range_is_refused_at_validation(spec, words):
    with pytest.raises(ConfigError, match=words):
        parse_objective(spec, LITE0)


def test_the_last_channel_of_a_layer_is_fine():
    assert str(parse_objective("block8:111", LITE0)) == "block8:111"
    assert str(parse_objective("logits:999", LITE0)) == "logits:999"


@pytest.mark.parametrize("spec, words", BAD_SPECS[:1] + BAD_SPECS[3:4])
def test_a_bad_layer_spec_is_refused_by_every_entry_point(spec, words, tmp_path, capsys):
    assert dreamcam(f"--layer={spec}") == 2  # CLI
    assert words in one_error_line(capsys)
    preset = tmp_path / "bad.toml"
    preset.write_text(f'layer = "{spec}"\n')
    with pytest.raises(ConfigError, match="bad.toml.*fix 'layer'"):  # preset
        load_preset(str(preset))
    playlist = tmp_path / "show.toml"  # a playlist whose second item is that preset
    items = '[[item]]\npreset = "subtle"\nduration = 5\n[[item]]\npreset = "bad.toml"\nduration = 5\n'
    playlist.write_text(items)
    with pytest.raises(ConfigError, match="bad.toml"):
        load_playlist(str(playlist), load_folder(bundled_dir()))
    osc = OscControl.__new__(OscControl)  # translate only: no socket needed
    osc._check_layer = lambda layer: parse_objective(layer, LITE0)
    with pytest.raises(BadValue, match=words):
        osc.translate("/dreamcam/layer", [spec])


def test_live_dreamer_refuses_a_bad_layer_and_keeps_dreaming(lite0, chelsea):
    from realtime.live import LiveDreamer

    dreamer = LiveDreamer(layer="block3", dream_size=(96, 54), device="cpu", backend="eager")
    frame = np.ascontiguousarray(chelsea[::4, ::4])
    dreamer(frame)
    with pytest.raises(ConfigError, match="0..111"):
        dreamer.set(layer="block8:99999")
    assert dreamer.params.layer == "block3"
    assert dreamer(frame).shape == frame.shape  # the next call still dreams


def test_a_failed_layer_change_keeps_the_previous_look(lite0, caplog):
    from realtime.errors import BackendError

    dreamer = build_dreamer(DreamParams(layer="block3"), (96, 54), torch.device("cpu"), network=lite0)

    def fail(*args, **kwargs):
        raise BackendError("the build failed")

    dreamer.engine._build = fail
    with pytest.raises(BackendError):
        dreamer.set_params(dreamer.params.replace(layer="block4"))
    assert dreamer.params.layer == "block3" and dreamer.layer_name == "block3"


# --- 2. a failed snapshot is one HUD line and one log line -----------------------------------------


@pytest.mark.parametrize("kind", ["file", "read-only"])
def test_a_snapshot_that_cannot_be_written_is_one_line(kind, tmp_path, caplog):
    if kind == "file":
        target = tmp_path / "snapshots"
        target.write_text("not a folder")
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        readonly = tmp_path / "ro"
        readonly.mkdir()
        readonly.chmod(0o555)
        target = readonly / "snapshots"
    io = ShowIO(snapshot_dir=str(target))
    state = ShowState(DreamParams(), LITE0.layers)
    image = np.zeros((54, 96, 3), np.uint8)
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            apply_action(state, Action.SNAPSHOT)
            io.handle_events(state, image)  # must not raise
        io.snapshots.flush()  # written on their own thread
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert 1 <= len(errors) <= 2 and "snapshot" in errors[0].getMessage()  # one line a second
    assert "\n" not in errors[0].getMessage() and errors[0].exc_info is None
    assert any("snapshot" in line.lower() for line in io.hud_lines())


# --- 3. playlists: a duration floor, and every loop bounded per frame ------------------------------


@pytest.mark.parametrize("duration", ["1e-300", "1e-9", "0.001"])
def test_a_tiny_playlist_duration_is_refused(duration, tmp_path):
    playlist = tmp_path / "show.toml"
    playlist.write_text(f'fade = 0\n[[item]]\npreset = "subtle"\nduration = {duration}\n')
    with pytest.raises(ConfigError, match="duration.*must be 0.1 s"):
        load_playlist(str(playlist), load_folder(bundled_dir()))


def test_a_playlist_update_is_bounded_however_far_the_clock_jumped(caplog):
    clock = [0.0]
    items = [Item(name, DreamParams(), 1e-9, 0.0) for name in "abc"]  # past validation, somehow
    player = PlaylistPlayer(items, clock=lambda: clock[0])
    clock[0] = 1e6
    with caplog.at_level(logging.INFO):
        player.update()
    assert len([r for r in caplog.records if "playlist: item" in r.getMessage()]) <= len(items)


# --- 4. file names that are not UTF-8 --------------------------------------------------------------

BAD_NAME = os.fsdecode(b"bad\xff\xfe.mp4")


def test_a_non_utf8_source_name_is_one_line(tmp_path, capsys):
    from realtime.errors import SourceError
    from realtime.io.sources.opener import open_source

    path = tmp_path / BAD_NAME
    path.write_bytes(b"\0" * 64)
    with pytest.raises(SourceError, match="not valid UTF-8"):
        open_source(str(path))


def test_non_utf8_names_are_refused_by_render_and_dream(tmp_path, capsys):
    from realtime.commands.cli import main

    source = tmp_path / BAD_NAME
    source.write_bytes(b"\0" * 64)
    assert main(["render", str(source), "-o", str(tmp_path / "out.mp4")]) == 2
    assert "UTF-8" in one_error_line(capsys)
    assert main(["dream", str(source), "-o", str(tmp_path / "out.png")]) == 2
    assert "UTF-8" in one_error_line(capsys)


# --- 5. never overwrite a file the user did not name for overwriting -------------------------------


def test_an_existing_output_is_refused(tmp_path):
    take = tmp_path / "take.mp4"
    take.write_bytes(b"precious")
    with pytest.raises(ConfigError, match="exists.*--overwrite"):
        check_output_path(str(take))
    check_output_path(str(take), overwrite=True)
    assert take.read_bytes() == b"precious"


@pytest.mark.parametrize("how", ["same", "dotdot", "symlink"])
def test_input_equal_to_output_is_refused_even_with_overwrite(how, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"footage")
    (tmp_path / "sub").mkdir()
    output = {
        "same": str(clip),
        "dotdot": str(tmp_path / "sub" / ".." / "clip.mp4"),
        "symlink": str(tmp_path / "link.mp4"),
    }[how]
    if how == "symlink":
        os.symlink(clip, output)
    with pytest.raises(ConfigError, match="is the input"):
        check_output_path(output, inputs=[str(clip)], overwrite=True)


def test_render_onto_its_own_input_keeps_the_footage(tmp_path, capsys):
    from realtime.commands.cli import main

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"footage")
    assert main(["render", str(clip), "-o", str(clip), "--overwrite"]) == 2
    assert "is the input" in one_error_line(capsys)
    assert clip.read_bytes() == b"footage"


def test_record_onto_an_existing_take_is_refused(tmp_path, capsys):
    take = tmp_path / "take.mp4"
    take.write_bytes(b"precious")
    assert dreamcam("--record", str(take)) == 2
    assert "--overwrite" in one_error_line(capsys)
    assert take.read_bytes() == b"precious"


def test_a_recording_is_opened_only_with_its_first_frame(tmp_path):
    from realtime.io.sinks import VideoRecorder

    take = tmp_path / "take.mp4"
    take.write_bytes(b"precious")
    recorder = VideoRecorder(str(take), 30.0)  # --overwrite given: the old take stays until a frame comes
    recorder.close()
    assert take.read_bytes() == b"precious"
    fresh = tmp_path / "fresh.mp4"
    VideoRecorder(str(fresh), 30.0).close()
    assert not fresh.exists()


# --- 6. non-finite values are refused for every OSC address ----------------------------------------


@pytest.mark.parametrize("address", ["freeze", "record", "hud", "next", "prev", "snapshot", "next_layer",
                                     "save_preset", "preset", "lr", "steps"])  # fmt: skip
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_values_are_refused_for_every_osc_address(address, value):
    osc = OscControl.__new__(OscControl)
    osc._check_layer = lambda layer: None
    with pytest.raises(Rejected):
        osc.translate("/dreamcam/" + address, [value])


# --- smaller items: one clear line, no traceback, nothing lost -------------------------------------


def test_python_osc_warnings_go_through_the_one_per_second_limit(caplog):
    import socket

    osc = OscControl(0)
    try:
        with caplog.at_level(logging.WARNING):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for _ in range(200):  # an OSC message with a type tag python-osc does not know
                sock.sendto(b"/dreamcam/lr\0\0\0\0,Q\0\0" + b"\x01" * 8, ("127.0.0.1", osc.port))
            sock.close()
            for _ in range(500):
                if osc.counts.accepted + osc.counts.ignored >= 200:
                    break
                osc._thread.join(0.01)
    finally:
        osc.close()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert 1 <= len(warnings) <= 3, [r.getMessage() for r in warnings]


def test_a_repeated_bad_preset_recall_warns_once_a_second(caplog):
    from realtime.control.plane import Command

    state = ShowState(DreamParams(), LITE0.layers, presets=load_folder(bundled_dir()))
    with caplog.at_level(logging.WARNING):
        for _ in range(300):
            apply_action(state, Command(Action.PRESET, "no such look", "osc"))
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


def test_osc_feedback_onto_its_own_port_is_refused(capsys):
    assert dreamcam("--osc-port", "9000", "--osc-feedback", "127.0.0.1:9000") == 2
    assert "own --osc-port" in one_error_line(capsys)


@pytest.mark.parametrize("flag", ["--preset", "--playlist", "--midi-map"])
def test_a_config_file_read_is_capped(flag, capsys, tmp_path):
    extra = ["--midi", "nothing"] if flag == "--midi-map" else []
    assert dreamcam(flag, "/dev/zero", *extra) == 2
    assert "not a regular file" in one_error_line(capsys)  # a device is never read (third pass)
    huge = tmp_path / "huge.toml"
    with open(huge, "wb") as f:
        f.truncate(5 * 2**20)  # sparse: 5 MB of zeros without writing them
    assert dreamcam(flag, str(huge), *extra) == 2
    assert "larger than 4 MB" in one_error_line(capsys)


def test_a_utf8_bom_in_a_preset_is_skipped(tmp_path):
    preset = tmp_path / "bom.toml"
    preset.write_bytes(b"\xef\xbb\xbf" + b'layer = "block8"\nlr = 0.05\n')
    assert load_preset(str(preset)).layer == "block8"


def test_render_onto_an_existing_folder_is_refused_before_dreaming(tmp_path, capsys):
    from realtime.commands.cli import main

    (tmp_path / "out.mp4").mkdir()
    assert main(["render", "missing.mp4", "-o", str(tmp_path / "out.mp4")]) == 2
    assert "is a folder" in one_error_line(capsys)


def test_live_dreamer_checks_its_size_and_fields_and_closes(lite0, chelsea):
    from realtime.live import LiveDreamer

    for size in [(0, 0), (8192, 8192), (96,), "96x54", (96.0, 54)]:
        with pytest.raises(ConfigError, match="dream_size|--dream-size"):
            LiveDreamer(dream_size=size, device="cpu")
    frame = np.ascontiguousarray(chelsea[::4, ::4])
    with LiveDreamer(layer="block3", dream_size=(96, 54), device="cpu", backend="eager") as dreamer:
        with pytest.raises(ConfigError, match="unknown parameter 'bogus'"):
            dreamer.set(bogus=1)
        dreamer(frame)
    with pytest.raises(ConfigError, match="closed"):
        dreamer(frame)
    dreamer.close()  # twice is fine


def test_unknown_fields_are_one_line_everywhere():
    with pytest.raises(ConfigError, match="unknown parameter 'bogus'"):
        DreamParams().replace(bogus=1)
    state = ShowState(DreamParams(), LITE0.layers)
    from realtime.control.plane import Command

    apply_action(state, Command(Action.SET, {"bogus": 1}, "osc"))  # logged and ignored, not raised
    assert state.params == DreamParams()


def test_bench_refuses_a_camera_rate_of_zero(capsys):
    from realtime.commands.cli import main

    assert main(["bench", "--camera-fps", "0", "--frames", "1"]) == 2
    assert "--camera-fps" in one_error_line(capsys)


def test_soak_refuses_a_size_that_does_not_fit(capsys, monkeypatch):
    from realtime.commands.cli import main
    from realtime.dream import budget

    monkeypatch.setattr(budget, "free_memory", lambda device=None: 2**30)
    assert main(["soak", "--dream-size", "8192x8192", "--frames", "1"]) == 2
    assert "--dream-size" in one_error_line(capsys)


def test_a_directory_as_audio_is_called_a_folder(tmp_path, capsys):
    from realtime.audio.filein import check_sound_file
    from realtime.errors import SourceError

    with pytest.raises(SourceError, match="is a folder"):
        check_sound_file(str(tmp_path))


def test_a_file_without_sound_does_not_mention_audio_react(tmp_path):
    from realtime.audio.filein import read_audio
    from realtime.errors import SourceError
    from realtime.io.videofile import VideoFileWriter

    clip = tmp_path / "silent.mp4"
    writer = VideoFileWriter(str(clip), 10.0, live=False)
    writer.write(np.zeros((32, 32, 3), np.uint8))
    writer.close()
    with pytest.raises(SourceError) as info:
        read_audio(str(clip))
    assert "--audio-react" not in str(info.value)


def test_doctor_keeps_sdl_s_own_complaints_off_the_terminal():
    import subprocess
    import sys

    unset = ("SDL_VIDEODRIVER", "DISPLAY", "XDG_RUNTIME_DIR")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    code = "from realtime.commands import doctor; doctor.check_displays()"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0 and "XDG_RUNTIME_DIR" not in result.stderr, result.stderr


def test_a_live_recording_reaches_the_disk_every_wall_second(tmp_path):
    from realtime.io.videofile import VideoFileWriter

    now = [0.0]
    path = tmp_path / "slow.mp4"
    writer = VideoFileWriter(str(path), 30.0, live=True, clock=lambda: now[0])
    sizes = []
    for _ in range(4):  # 1.5 s of wall time per frame: a show at 0.7 fps
        writer.write(np.full((64, 64, 3), 128, np.uint8))
        sizes.append(path.stat().st_size)
        now[0] += 1.5
    writer.close()
    assert sizes[-1] > sizes[0]  # fragments were written while the take was still 4 frames long


# --- the hostile pass's own cases (docs/SAFETY.md) -------------------------------------------------


@pytest.mark.parametrize(
    "spec, words",
    [
        ("block5" * 40, "characters long"),
        ("+".join(["block5"] * 9), "terms"),
        ("0*block5", "zero weights"),
        ("0*block5+0*block6", "zero weights"),
    ],
)
def test_layer_specs_too_long_too_many_or_all_zero_are_refused(spec, words):
    with pytest.raises(ConfigError, match=words):
        DreamParams(layer=spec)


def test_a_size_in_other_digits_is_refused():
    from realtime.params import parse_size

    with pytest.raises(ConfigError, match="WIDTHxHEIGHT"):
        parse_size("３２０x１８０")


def test_a_playlist_duration_of_a_lifetime_is_refused(tmp_path):
    playlist = tmp_path / "show.toml"
    playlist.write_text('[[item]]\npreset = "subtle"\nduration = 1e308\n')
    with pytest.raises(ConfigError, match="a week"):
        load_playlist(str(playlist), load_folder(bundled_dir()))


def test_a_pipe_as_source_is_refused_without_waiting(tmp_path):
    from realtime.errors import SourceError
    from realtime.io.sources.opener import open_source

    fifo = tmp_path / "cam.mp4"
    os.mkfifo(fifo)
    for spec in (str(fifo), "/dev/zero"):
        with pytest.raises(SourceError, match="not a regular file"):
            open_source(spec)


def test_a_snapshot_that_fills_the_disk_leaves_no_half_file(tmp_path, monkeypatch):
    import builtins

    from realtime.io.sinks import SnapshotError, save_snapshot

    real_open = builtins.open

    class FullDisk:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(builtins, "open", lambda p, mode="r", *a, **k: FullDisk(real_open(p, mode, *a, **k)))
    with pytest.raises(SnapshotError, match="disk full"):
        save_snapshot(np.zeros((16, 16, 3), np.uint8), str(tmp_path))
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("option", [["--target-fps", "0"], ["--weights", "/dev/zero"], ["--weights", "."]])
def test_odd_run_options_are_named_for_what_they_are(option, capsys):
    assert dreamcam(*option) == 2
    line = one_error_line(capsys)
    assert ("--target-fps must be" in line) or ("not a regular file" in line) or ("is a folder" in line)


def test_osc_refuses_an_oversized_layer_spec_where_it_arrives():
    osc = OscControl.__new__(OscControl)
    osc._check_layer = lambda layer: parse_objective(layer, LITE0)
    for spec in ("+".join(["block5"] * 400), "block5" * 20000):
        with pytest.raises(BadValue) as info:
            osc.translate("/dreamcam/layer", [spec])
        assert len(str(info.value)) < 200  # the log line stays a line

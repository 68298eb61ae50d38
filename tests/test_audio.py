"""Audio features (aubio), their mapping to DreamParams, the live input thread, OSC and presets.

Signals are generated here: a 120 BPM click track and a tone with a known loudness envelope,
written with soundfile and read back through PyAV, as a user's WAV would be.
"""

import math
import threading

import numpy as np
import pytest
import soundfile

from realtime.audio.analysis import HOP, SAMPLE_RATE, FeatureAnalyzer, features_at_frames
from realtime.audio.filein import read_audio
from realtime.audio.live import AudioUnavailable, LiveAudio, describe_inputs, open_live_audio
from realtime.audio.mapping import DEFAULT_MAPPING, AudioMapping, AudioReactor, osc_entry
from realtime.audio.show import AudioShow
from realtime.control.plane import Action, Command, Preset, ShowState
from realtime.errors import ConfigError, SourceError
from realtime.params import RANGES, DreamParams
from tools.audio_figures import click_track  # 120 BPM: decaying noise bursts every beat from 0.5 s

SR = SAMPLE_RATE
CLICK_BPM = 120.0


def envelope(t: np.ndarray) -> np.ndarray:
    """Quiet, a 1 s swell, loud, a sudden drop: amplitude of the test tone over time."""
    return np.interp(t, [0.0, 1.0, 2.0, 3.0, 3.0001, 5.0], [0.05, 0.05, 0.8, 0.8, 0.2, 0.2])


def tone(seconds: float = 5.0):
    t = np.arange(int(seconds * SR)) / SR
    return (envelope(t) * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)


def analyse(samples: np.ndarray):
    analyzer = FeatureAnalyzer()
    return [analyzer.process(samples[k * HOP : (k + 1) * HOP]) for k in range(len(samples) // HOP)]


@pytest.fixture(scope="module")
def click_wav(tmp_path_factory):
    samples, clicks = click_track(10.0)
    path = tmp_path_factory.mktemp("audio") / "click.wav"
    soundfile.write(path, samples, SR, subtype="FLOAT")
    return str(path), clicks


# --- features ---------------------------------------------------------------------------------------


def test_beats_land_on_the_clicks_and_the_tempo_is_found(click_wav):
    path, clicks = click_wav
    features = analyse(read_audio(path))  # through PyAV, as `render --audio FILE.wav` reads it
    beat_times = [b.last_beat_t for a, b in zip(features, features[1:], strict=False) if b.beats > a.beats]
    settled = [c for c in clicks if c >= 2.0]  # aubio needs a couple of seconds to find the period
    errors_ms = [1000 * min(abs(b - c) for b in beat_times) for c in settled]
    assert max(errors_ms) <= 25.0, errors_ms  # every click after warm-up has a beat within ±25 ms
    late = [b for b in beat_times if b >= 2.0 - 0.025]
    assert len(late) == len(settled)  # and no extra beats between the clicks
    assert abs(features[-1].bpm - CLICK_BPM) <= 1.0


def test_loudness_follows_the_envelope():
    samples = tone()
    features = analyse(samples)
    times = np.array([f.t for f in features])
    measured = np.array([f.rms for f in features])
    expected = envelope(times) / math.sqrt(2)  # a sine's RMS
    tracking = (times < 3.0) | (times > 4.5)  # all but the release after the drop
    assert np.corrcoef(measured[tracking], expected[tracking])[0, 1] > 0.99
    for start, end in ((0.5, 1.0), (2.6, 3.0), (4.5, 5.0)):  # steady parts, after attack / release
        window = (times > start) & (times < end)
        assert np.allclose(measured[window], expected[window], rtol=0.05)
    # a rise is followed within a few hops (attack), a fall eases out (release: still loud after 50 ms)
    drop = np.searchsorted(times, 3.05)
    assert measured[drop] > 1.5 * expected[drop]
    levels = [f.level for f in features]
    assert levels[np.searchsorted(times, 2.9)] > levels[np.searchsorted(times, 0.9)] + 0.3


def test_offline_features_are_frame_exact_and_deterministic(click_wav):
    samples = read_audio(click_wav[0])
    fps = 25.0
    per_frame = features_at_frames(samples, fps, 200)
    assert per_frame == features_at_frames(samples, fps, 200)
    hops = analyse(samples)
    for n in (0, 1, 13, 125, 199):
        done = int(n * SR / fps) // HOP  # whole hops that end by the frame's time
        assert per_frame[n] == (hops[done - 1] if done else per_frame[0])
        assert per_frame[n].t <= n / fps + 1e-9


def test_a_file_without_sound_is_one_clear_error(tmp_path):
    import av

    path = tmp_path / "silent.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height = 32, 32
        for _ in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(SourceError, match="has no sound track"):
        read_audio(str(path))
    with pytest.raises(SourceError, match="does not exist"):
        read_audio(str(tmp_path / "nope.wav"))


# --- mapping ----------------------------------------------------------------------------------------


def test_mapping_ranges_and_curves():
    mapping = AudioMapping.parse(
        {
            "lr": {"from": "level", "range": [0.01, 0.04], "curve": "exponential"},
            "persistence": {"from": "level", "range": [0.95, 0.8]},
        }
    )
    reactor = AudioReactor(mapping)
    values = {}
    for level in (0.0, 0.5, 1.0):
        reactor.update(_features(level=level))
        values[level] = reactor.modulate(DreamParams())
    assert values[0.0].lr == pytest.approx(0.01) and values[1.0].lr == pytest.approx(0.04)
    assert values[0.5].lr == pytest.approx(0.02)  # exponential: the geometric middle
    assert values[0.5].persistence == pytest.approx(0.875)  # linear, and a range may run downwards


def test_beat_pulse_jumps_and_eases_back():
    reactor = AudioReactor(AudioMapping.parse({"pulse": {"field": "lr", "amount": 2.0, "decay": 0.2}}))
    base = DreamParams(lr=0.03)
    reactor.update(_features(t=5.0, beats=4, last_beat_t=5.0))
    assert reactor.beat is False  # the first look only learns the count
    reactor.update(_features(t=5.5, beats=5, last_beat_t=5.5))
    assert reactor.beat and reactor.modulate(base).lr == pytest.approx(0.09)  # x(1 + 2) on the beat
    reactor.update(_features(t=5.7, beats=5, last_beat_t=5.5))
    assert not reactor.beat and reactor.modulate(base).lr == pytest.approx(0.06)  # half-way after 0.2 s
    reactor.update(_features(t=7.5, beats=5, last_beat_t=5.5))
    assert reactor.modulate(base).lr == pytest.approx(0.03, rel=0.005)  # back to the look


def test_every_n_beats_counts_beats_between_frames():
    reactor = AudioReactor(AudioMapping.parse({"every": {"beats": 4, "action": "next_preset"}}))
    assert reactor.update(_features(beats=0)) == []
    assert reactor.update(_features(beats=3)) == []
    assert reactor.update(_features(beats=5)) == [Action.NEXT_PRESET]  # two beats since the last frame
    assert reactor.update(_features(beats=8)) == [Action.NEXT_PRESET]  # the 8th beat
    assert reactor.update(_features(beats=11)) == []
    assert reactor.update(_features(beats=12)) == [Action.NEXT_PRESET]


def test_mapped_values_are_always_valid_parameters():
    mapping = AudioMapping.parse(
        {
            "steps": {"range": [1, 4]},
            "lr": {"range": [0.5, 1.0]},
            "pulse": {"field": "lr", "amount": 10.0, "decay": 5.0},
        }
    )
    reactor = AudioReactor(mapping)
    for level in np.linspace(0, 1, 7):
        reactor.update(_features(level=float(level), t=1.0, last_beat_t=1.0))
        params = reactor.modulate(DreamParams())  # DreamParams validates: finite, in range, whole steps
        assert params.lr <= RANGES["lr"][1] and isinstance(params.steps, int) and 1 <= params.steps <= 4


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"lr": {"from": "level", "range": [0.01, 0.04], "curve": "cubic"}}, "audio.lr.curve"),
        ({"lr": {"from": "bass", "range": [0.01, 0.04]}}, "audio.lr.from"),
        ({"lr": {"range": [0.01, 7.0]}}, "audio.lr.range"),
        ({"lr": {"range": [0.0, 0.04], "curve": "exponential"}}, "audio.lr.range"),
        ({"lr": {"range": [0.01]}}, "audio.lr.range"),
        ({"lr": {"range": [0.01, 0.02], "speed": 2}}, "audio.lr.speed"),
        ({"pulse": {"field": "lr", "amount": float("nan")}}, "audio.pulse.amount"),
        ({"pulse": {"field": "colour"}}, "audio.pulse.field"),
        ({"every": {"beats": 2.5}}, "audio.every.beats"),
        ({"every": {"beats": 8, "action": "explode"}}, "audio.every.action"),
        ({"loudness": {"range": [0.01, 0.02]}}, "audio.loudness"),
    ],
)
def test_a_bad_audio_table_names_the_key(tmp_path, table, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as info:
        AudioMapping.parse(table, "preset 'x'")
    assert "\n" not in str(info.value)


def test_a_preset_with_a_bad_audio_table_stops_the_cli_with_one_line(tmp_path, capsys):
    from realtime.commands.cli import main

    preset = tmp_path / "bad.toml"
    preset.write_text('lr = 0.03\n[audio]\nlr = { from = "level", range = [0.01, 0.04], curve = "cubic" }\n')
    assert main(["--preset", str(preset), "--source", "synthetic", "--headless", "--frames", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "audio.lr.curve" in err and "bad.toml" in err


def test_bundled_looks_have_a_default_mapping():
    from realtime.show.presets import bundled_dir, load_audio_mapping, load_folder

    for preset in load_folder(bundled_dir()):
        mapping = load_audio_mapping(preset.path)
        assert mapping is not None and mapping.pulse is not None and mapping.maps, preset.name


# --- OSC --------------------------------------------------------------------------------------------


def test_osc_changes_the_mapping_live():
    from realtime.show.osc import OscControl, Rejected

    osc = OscControl.__new__(OscControl)  # translate() needs no socket
    osc._check_layer = lambda name: None
    intent = osc.translate("/dreamcam/audio/lr", ["level", 0.02, 0.05, "exponential"])
    assert intent == Command(
        Action.AUDIO, ("lr", {"from": "level", "range": [0.02, 0.05], "curve": "exponential"}), "osc"
    )
    assert osc.translate("/dreamcam/audio/pulse", ["lr", 2.0, 0.1]).value[0] == "pulse"
    assert osc.translate("/dreamcam/audio/every", [0]).value == ("every", False)
    for address, args in (
        ("/dreamcam/audio/lr", ["level", 0.02, 9.0]),
        ("/dreamcam/audio/pulse", ["lr", "loud"]),
        ("/dreamcam/audio/colour", ["level", 0, 1]),
    ):
        with pytest.raises(Rejected):
            osc.translate(address, args)
    show = AudioShow(_FakeInput())
    show.change(*osc_entry("pulse", ["persistence", 0.5, 0.1, "onset"]))
    assert show.reactor.mapping.pulse.field == "persistence" and show.reactor.mapping.pulse.on == "onset"
    show.change("pulse", False)
    assert show.reactor.mapping.pulse is None


def test_the_mapping_follows_the_recalled_preset():
    eyes = AudioMapping.parse({"lr": {"range": [0.05, 0.06]}})
    presets = [Preset("a", "a.toml", DreamParams()), Preset("b", "b.toml", DreamParams())]
    live = _FakeInput()
    show = AudioShow(live, {"b.toml": eyes})
    state = ShowState(DreamParams(), ("block5",), presets=presets)
    live.latest = _features(level=0.0)
    show.intents(state)
    assert show.reactor.mapping == DEFAULT_MAPPING
    state.preset_index = 1
    show.intents(state)
    assert show.dream_params(state.params).lr == pytest.approx(0.05)


# --- live input -------------------------------------------------------------------------------------


class _FakeInput:
    latest = None
    status = ""

    def __init__(self):
        from realtime.audio.live import AudioCounts

        self.counts = AudioCounts()

    def close(self):
        pass


class FakeCard:
    """A sound card the test plays into: each opened stream is recorded; `play` calls back like PortAudio."""

    def __init__(self, fail_opens: int = 0):
        self.streams, self.fail_opens = [], fail_opens
        self.opened = threading.Semaphore(0)

    def open(self, device, sample_rate, hop, on_block, on_finished):
        if self.fail_opens:
            self.fail_opens -= 1
            raise OSError("Error opening InputStream: Device unavailable")
        stream = _FakeStream(on_block, on_finished)
        self.streams.append(stream)
        self.opened.release()
        return stream


class _FakeStream:
    def __init__(self, on_block, on_finished):
        self.on_block, self.on_finished, self.closed = on_block, on_finished, False

    def start(self):
        pass

    def close(self):
        self.closed = True

    def play(self, samples, overflow=False):
        for k in range(len(samples) // HOP):
            self.on_block(samples[k * HOP : (k + 1) * HOP], overflow, False)


def test_live_input_is_analysed_on_its_own_thread_and_runs_counted():
    card = FakeCard()
    live = LiveAudio(opener=card.open)
    try:
        assert card.opened.acquire(timeout=5)
        stream = card.streams[0]
        samples = tone(1.0)
        stream.play(samples[: 10 * HOP])
        stream.play(samples[10 * HOP : 12 * HOP], overflow=True)
        assert live.wait_for_hops(12, timeout=5)
        assert live.latest.t == pytest.approx(12 * HOP / SR)
        assert live.counts.overflows == 2 and live.counts.reopens == 0
    finally:
        live.close()
    assert stream.closed


def test_a_lost_input_is_reopened_with_back_off_and_the_show_goes_on():
    card = FakeCard(fail_opens=2)  # the device is missing at first
    live = LiveAudio(opener=card.open, backoff_s=(0.01, 0.02), stall_s=5.0)
    try:
        assert card.opened.acquire(timeout=5)  # opened on the third try
        assert live.counts.reopens == 0
        card.streams[0].play(tone(0.2))
        assert live.wait_for_hops(5, timeout=5) and live.latest is not None
        card.streams[0].on_finished()  # unplugged: PortAudio ends the stream
        card.streams[0].play(np.zeros(HOP, np.float32))  # the last buffer it delivered
        assert card.opened.acquire(timeout=5)  # reopened
        assert live.counts.reopens == 1 and card.streams[0].closed
        assert live.latest is None  # no stale beat keeps pulsing while the sound is gone
        hops = live.hops
        card.streams[1].play(tone(0.1))
        assert live.wait_for_hops(hops + 3, timeout=5)
    finally:
        live.close()


def test_no_portaudio_or_no_device_is_one_line_and_no_audio(monkeypatch, caplog):
    import builtins

    real_import = builtins.__import__

    def no_portaudio(name, *args, **kwargs):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_portaudio)
    with caplog.at_level("WARNING"):
        assert open_live_audio(None) is None
    assert len(caplog.records) == 1 and "PortAudio" in caplog.records[0].getMessage()
    assert "libportaudio2" in describe_inputs()[0]
    from realtime.audio.live import audio_findings

    findings = audio_findings()  # what `dreamcam doctor` prints
    assert findings[0][0] == "ok" and findings[0][1].startswith("aubio")
    assert findings[-1][0] == "missing" and "libportaudio2" in findings[-1][2]
    monkeypatch.setattr(builtins, "__import__", real_import)
    monkeypatch.setattr("realtime.audio.live.list_inputs", lambda: [])
    with pytest.raises(AudioUnavailable, match="no audio input device"):
        from realtime.audio.live import resolve_input

        resolve_input(None)


def test_click_to_parameter_change_within_one_hop_and_one_frame():
    """The loudness mapping moves the step size on the first frame read after the hop that holds
    the click: at most one hop of buffering, the analysis, and one frame until the loop looks."""
    import time

    card = FakeCard()
    live = LiveAudio(opener=card.open)
    show = AudioShow(live, start=AudioMapping.parse({"lr": {"range": [0.01, 0.05]}}))
    state = ShowState(DreamParams(), ("block5",))
    try:
        assert card.opened.acquire(timeout=5)
        stream = card.streams[0]
        stream.play(np.zeros(20 * HOP, np.float32))
        assert live.wait_for_hops(20, timeout=5)
        show.intents(state)
        quiet = show.dream_params(state.params).lr
        click = np.zeros(HOP, np.float32)
        click[HOP // 2 :] = 0.5  # the click starts half-way through the hop
        played = time.perf_counter()
        stream.play(click)
        assert live.wait_for_hops(21, timeout=5)
        analysed_ms = (time.perf_counter() - played) * 1000
        show.intents(state)  # the next frame
        assert show.dream_params(state.params).lr > quiet + 0.01
        assert analysed_ms < 1000 * HOP / SR  # the analysis itself takes less than a hop
    finally:
        live.close()


def _features(**changes):
    from realtime.audio.analysis import AudioFeatures

    return AudioFeatures(**changes)


def test_the_running_show_dreams_with_the_sound(lite0):
    """Through the real pipeline: the loudness sets the step size the dreamer runs with, a beat
    pulses it, every 2nd beat moves to the next layer, and the HUD shows the meter."""
    import torch

    from realtime.dream.dreamer import build_dreamer
    from realtime.io.hud import MeterLine
    from realtime.io.sources.opener import open_source
    from realtime.loop.pipeline import Pipeline
    from realtime.loop.showio import ShowIO
    from realtime.show.plan import ShowControl

    dreamer = build_dreamer(DreamParams(layer="block3"), (96, 54), torch.device("cpu"), network=lite0, seed=0)
    state = ShowState(dreamer.params, lite0.spec.layers)
    live = _FakeInput()
    mapping = AudioMapping.parse(
        {
            "lr": {"range": [0.01, 0.05]},
            "pulse": {"field": "lr", "amount": 1.0, "decay": 0.5},
            "every": {"beats": 2, "action": "next_layer"},
        }
    )
    control = ShowControl(state, audio=AudioShow(live, start=mapping))
    with open_source("synthetic", paced=False, size=(96, 54)) as source:
        pipeline = Pipeline(source, dreamer, state, ShowIO(show=control))
        live.latest = _features(t=1.0, level=0.5, beats=0)
        pipeline.tick()
        assert dreamer.params.lr == pytest.approx(0.03) and state.params.lr == DreamParams().lr
        live.latest = _features(t=1.5, level=0.5, beats=1, last_beat_t=1.5)
        pipeline.tick()
        assert dreamer.params.lr == pytest.approx(0.06)  # x2 on the beat
        assert state.params.layer == "block3"
        live.latest = _features(t=2.0, level=0.5, beats=2, last_beat_t=2.0)
        pipeline.tick()
        assert state.params.layer == "block4" and dreamer.layer_name == "block4"  # the 2nd beat
        meter = [line for line in pipeline.hud_lines() if isinstance(line, MeterLine)]
        assert meter and meter[0].level == pytest.approx(0.5) and meter[0].flash == 1.0
        live.latest = None  # the input is lost: the look's own values come back
        pipeline.tick()
        assert dreamer.params.lr == pytest.approx(DreamParams().lr)
    control.close()


# --- render -----------------------------------------------------------------------------------------


def _resampled_44k(samples: np.ndarray) -> np.ndarray:
    seconds = len(samples) / SR
    return np.interp(np.arange(int(seconds * 44100)) / 44100, np.arange(len(samples)) / SR, samples).astype(
        np.float32
    )


def _frame_depths(out_path, in_path) -> tuple[np.ndarray, float]:
    from tests.videofiles import read_video

    out, _ = read_video(out_path)
    src, fps = read_video(in_path)
    assert len(out) == len(src)
    return np.array([np.abs(o.astype(np.float32) - s).mean() for o, s in zip(out, src, strict=True)]), fps


@pytest.mark.slow
def test_render_dreams_harder_on_the_beat_of_its_own_sound(tmp_path, chelsea):
    """`render --audio-react`: the clip's own 120 BPM clicks drive the dream; beat frames are
    dreamed deeper than the frames between beats, and the sound is kept."""
    import av
    import cv2

    from realtime.commands.cli import main
    from tests.videofiles import write_clip_with_sound

    samples, _ = click_track(4.5)
    image = cv2.resize(chelsea, (64, 36), interpolation=cv2.INTER_AREA)
    clip = write_clip_with_sound(
        tmp_path / "beat.mkv", 45, (64, 36), fps=10, image=image, sound=_resampled_44k(samples)
    )
    out = tmp_path / "dreamt.mp4"
    args = ["render", clip, "-o", str(out), "--audio-react", "--dream-size", "64x36", "--warm-start", "off"]
    assert main(args) == 0
    depth, fps = _frame_depths(out, clip)
    features = features_at_frames(read_audio(clip), fps, len(depth))
    beats = [n for n in range(1, len(depth)) if features[n].beats > features[n - 1].beats]
    between = [n for n in range(20, len(depth)) if n not in beats and n - 1 not in beats]
    assert len(beats) >= 4
    assert depth[beats].mean() > 1.15 * depth[between].mean()
    with av.open(str(out)) as container:
        assert container.streams.audio and container.streams.audio[0].duration


@pytest.mark.slow
def test_a_track_drives_a_silent_clip_the_same_every_time(tmp_path, chelsea):
    """`render --audio FILE.wav` on a clip without sound: the track's sound is kept, and two renders
    of the same input are identical frame for frame."""
    import av
    import cv2

    from realtime.commands.cli import main
    from tests.videofiles import read_video, write_clip_with_sound

    image = cv2.resize(chelsea, (64, 36), interpolation=cv2.INTER_AREA)
    clip = write_clip_with_sound(
        tmp_path / "silent.mkv", 10, (64, 36), fps=10, image=image, sound=np.zeros(1)
    )
    track = tmp_path / "tone.wav"
    soundfile.write(track, tone(2.0), SR)
    renders = []
    for name in ("a.mp4", "b.mp4"):
        out = tmp_path / name
        assert main(["render", clip, "-o", str(out), "--audio", str(track), "--dream-size", "64x36"]) == 0
        renders.append(read_video(out)[0])
        with av.open(str(out)) as container:
            assert container.streams.audio  # the track's sound, not the clip's silence... kept
    assert len(renders[0]) == 10
    assert all(np.array_equal(a, b) for a, b in zip(*renders, strict=True))


def test_render_audio_mistakes_are_one_line(tmp_path, chelsea, capsys):
    import cv2

    from realtime.commands.cli import main

    still = tmp_path / "cat.png"
    cv2.imwrite(str(still), cv2.cvtColor(cv2.resize(chelsea, (64, 48)), cv2.COLOR_RGB2BGR))
    base = ["render", str(still), "-o", str(tmp_path / "o.mp4"), "--frames", "2", "--zoom", "1.05"]
    assert main([*base, "--audio-react", "--dream-size", "64x36"]) == 2
    assert "drive it with --audio FILE" in capsys.readouterr().err
    assert main([*base, "--audio", str(tmp_path / "nope.wav")]) == 2
    err = capsys.readouterr().err.strip()
    assert "nope.wav" in err and "\n" not in err
    assert not (tmp_path / "o.mp4").exists()


def test_a_saved_look_keeps_its_audio_mapping(tmp_path):
    from realtime.show.plan import ShowControl
    from realtime.show.presets import load_audio_mapping, load_preset

    state = ShowState(DreamParams(lr=0.04), ("block5",))
    show = AudioShow(_FakeInput())
    show.change(*osc_entry("every", [8, "next_preset"]))  # tuned live, then saved with P
    control = ShowControl(state, preset_save_dir=str(tmp_path), audio=show)
    control.handle(Action.SAVE_PRESET)
    (path,) = tmp_path.iterdir()
    assert load_preset(str(path)).lr == 0.04
    assert load_audio_mapping(str(path)) == show.reactor.mapping


def test_shape_fields_snap_to_a_grid_with_hysteresis():
    """C2: the sound may drive steps and octave_scale, but each new value is a new shape (a graph
    capture on a GPU): they move on a grid, and a level hovering at a boundary does not flip them."""
    mapping = AudioMapping.parse({"steps": {"range": [1, 4]}, "octave_scale": {"range": [1.2, 1.6]}})
    reactor = AudioReactor(mapping)
    shapes = set()
    levels = [0.49, 0.51, 0.495, 0.505] * 10  # hovering where steps would round 2 <-> 3
    for level in levels:
        reactor.update(_features(level=level, t=1.0, last_beat_t=0.0))
        p = reactor.modulate(DreamParams())
        shapes.add((p.steps, p.octave_scale))
    assert len(shapes) == 1, shapes
    for level in np.linspace(0, 1, 101):  # a full sweep reaches only the grid's values
        reactor.update(_features(level=float(level), t=1.0, last_beat_t=0.0))
        p = reactor.modulate(DreamParams())
        shapes.add((p.steps, p.octave_scale))
    assert {s for s, _ in shapes} == {1, 2, 3, 4}
    assert {o for _, o in shapes} <= {1.2, 1.3, 1.4, 1.5, 1.6}

"""Live audio input: a sound card's input (line-in, a loopback device) analysed on its own thread.

PortAudio (through `sounddevice`) calls back with one hop of samples at a time; the callback only
copies them into a bounded queue (PortAudio's thread must never wait). The analysis thread runs
`FeatureAnalyzer` on each hop and publishes the newest `AudioFeatures`; the show loop reads that
attribute and never waits. Over- and under-runs and hops dropped on a full queue are counted,
never raised. An input that disappears (unplugged, its stream aborts, no samples for a second) is
reopened with back-off, like a lost camera, while the show goes on without sound.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from realtime.audio.analysis import HOP, SAMPLE_RATE, AudioFeatures, AudioUnavailable, FeatureAnalyzer
from realtime.params import plain_digits

log = logging.getLogger(__name__)

AUDIO_EXTRA = "pip install 'dreamcam[audio]'"
QUEUE_HOPS = 64  # 0.7 s of sound at 48 kHz: a stalled analysis drops (counted) rather than lags
STALL_S = 1.0  # no samples for this long: the input is gone, reopen it
BACKOFF_S = (0.5, 8.0)  # first and longest wait between reopen attempts


class Stream(Protocol):
    def start(self) -> None: ...
    def close(self) -> None: ...


# (device, sample_rate, hop, on_block(samples, overflow, underflow), on_finished) -> an unstarted stream
StreamOpener = Callable[[Any, int, int, Callable[[np.ndarray, bool, bool], None], Callable[[], None]], Stream]


@dataclass
class AudioCounts:
    overflows: int = 0  # the sound card had samples we were too late to take
    underflows: int = 0
    dropped: int = 0  # hops dropped because the analysis thread was behind
    reopens: int = 0  # times the input was lost and opened again


def _sounddevice():
    try:
        import sounddevice
    except OSError as exc:  # the Python package is there, the PortAudio library is not
        raise AudioUnavailable(
            f"no PortAudio library ({exc}); install it (Debian/Ubuntu: apt install libportaudio2) "
            "to use --audio"
        ) from None
    except ImportError:
        raise AudioUnavailable("sounddevice is not installed; pip install 'dreamcam[audio]'") from None
    return sounddevice


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    channels: int
    sample_rate: float
    default: bool


def list_inputs() -> list[InputDevice]:
    """The audio inputs PortAudio sees (AudioUnavailable without PortAudio)."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        default_in = sd.default.device[0]
    except Exception as exc:  # PortAudio could not even enumerate (no sound system at all)
        raise AudioUnavailable(f"PortAudio cannot list the audio devices ({exc})") from None
    return [
        InputDevice(i, d["name"], d["max_input_channels"], d["default_samplerate"], i == default_in)
        for i, d in enumerate(devices)
        if d["max_input_channels"] > 0
    ]


def describe_inputs() -> list[str]:
    """One line per input for `--audio list` and `dreamcam doctor`; one line why there is none."""
    try:
        inputs = list_inputs()
    except AudioUnavailable as exc:
        return [str(exc)]
    if not inputs:
        return ["no audio input devices (plug in a sound card, or make a loopback device)"]
    return [
        f"{d.index}: {d.name} ({d.channels} ch, {d.sample_rate:.0f} Hz){'  [default]' if d.default else ''}"
        for d in inputs
    ]


def resolve_input(spec: str | None) -> int | str | None:
    """'--audio' (None: the default input), an index, or part of a name; AudioUnavailable if none."""
    inputs = list_inputs()
    if not inputs:
        raise AudioUnavailable("there is no audio input device (plug one in, or make a loopback device)")
    if spec is None or spec == "default":
        return None
    if plain_digits(spec):
        if any(d.index == int(spec) for d in inputs):
            return int(spec)
    else:
        matches = [d for d in inputs if spec.lower() in d.name.lower()]
        if len(matches) == 1:
            return matches[0].index
    names = "; ".join(f"{d.index}: {d.name}" for d in inputs)
    raise AudioUnavailable(f"no single audio input matches '{spec}' (inputs: {names}); see --audio list")


def sounddevice_opener(device, sample_rate, hop, on_block, on_finished) -> Stream:
    sd = _sounddevice()

    def callback(indata, frames, time_info, status) -> None:  # PortAudio's thread: copy and leave
        on_block(indata.mean(axis=1, dtype=np.float32), status.input_overflow, status.input_underflow)

    channels = min(2, max(1, int(sd.query_devices(device, "input")["max_input_channels"])))
    return sd.InputStream(
        samplerate=sample_rate,
        blocksize=hop,
        device=device,
        channels=channels,
        dtype="float32",
        callback=callback,
        finished_callback=on_finished,
    )


class LiveAudio:
    """Listens to `device` until `close()`; `latest` is the newest features (None until the first hop)."""

    def __init__(
        self,
        device: int | str | None = None,
        sample_rate: int = SAMPLE_RATE,
        hop: int = HOP,
        opener: StreamOpener = sounddevice_opener,
        backoff_s: tuple[float, float] = BACKOFF_S,
        stall_s: float = STALL_S,
    ):
        self.device, self.sample_rate, self.hop = device, sample_rate, hop
        self.counts = AudioCounts()
        self.latest: AudioFeatures | None = None
        self.status = "audio: opening"
        self._why = ""
        self._stream_id = 0
        self._opener, self._backoff, self._stall_s = opener, backoff_s, stall_s
        self._blocks: queue.Queue[np.ndarray] = queue.Queue(maxsize=QUEUE_HOPS)
        self._stream: Stream | None = None
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._published = threading.Condition()
        self._hops = 0
        self._lock = threading.Lock()  # counts are bumped on PortAudio's thread
        self._analyzer = FeatureAnalyzer(sample_rate, hop)
        self._thread = threading.Thread(target=self._run, name="audio analysis", daemon=True)
        self._thread.start()

    # --- PortAudio's thread -----------------------------------------------------------------------

    def _on_block(self, stream_id: int, samples: np.ndarray, overflow: bool, underflow: bool) -> None:
        if stream_id != self._stream_id:
            return  # a closed stream's last callback: its samples belong to no stream any more
        if overflow or underflow:
            with self._lock:
                self.counts.overflows += bool(overflow)
                self.counts.underflows += bool(underflow)
        try:
            self._blocks.put_nowait(np.array(samples, dtype=np.float32, copy=True).reshape(-1))
        except queue.Full:
            with self._lock:
                self.counts.dropped += 1

    def _on_finished(self, stream_id: int) -> None:
        if stream_id == self._stream_id and not self._stop.is_set():
            self._lost.set()

    # --- the analysis thread --------------------------------------------------------------------

    def _run(self) -> None:
        wait = self._backoff[0]
        pending = np.zeros(0, np.float32)
        while not self._stop.is_set():
            if self._stream is None:
                if not self._open():
                    self.status = f"audio: no input ({self._why}); retrying in {wait:.0f} s"
                    if self._stop.wait(wait):
                        break
                    wait = min(self._backoff[1], wait * 2)
                    continue
                wait = self._backoff[0]
                pending = np.zeros(0, np.float32)
            try:
                block = self._blocks.get(timeout=self._stall_s)
            except queue.Empty:
                block = None
            if block is None or self._lost.is_set():
                if self._stop.is_set():
                    break
                self._drop_stream("the input stopped" if block is None else "the input was closed")
                continue
            pending = np.concatenate((pending, block)) if pending.size else block
            while pending.shape[0] >= self.hop:
                features = self._analyzer.process(pending[: self.hop])
                pending = pending[self.hop :]
                with self._published:
                    self.latest = features
                    self._hops += 1
                    self._published.notify_all()
        self._close_stream()

    def _open(self) -> bool:
        self._lost.clear()
        self._stream_id += 1
        sid = self._stream_id  # callbacks carry the stream they came from: a closed one is ignored
        try:
            stream = self._opener(
                self.device,
                self.sample_rate,
                self.hop,
                lambda samples, overflow, underflow: self._on_block(sid, samples, overflow, underflow),
                lambda: self._on_finished(sid),
            )
            stream.start()
        except Exception as exc:  # PortAudioError, a vanished device, a refused sample rate
            self._why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return False
        self._stream = stream
        self.status = ""
        log.info(
            "audio input %s open at %d Hz, hop %d", self.device or "(default)", self.sample_rate, self.hop
        )
        return True

    def _drop_stream(self, why: str) -> None:
        log.warning("audio input lost (%s); reopening with back-off, the show goes on", why)
        self._stream_id += 1  # from now on, whatever the lost stream still calls back with is ignored
        self._close_stream()
        with self._lock:
            self.counts.reopens += 1
        self._why = why
        self.latest = None  # stale features would keep pulsing to a beat nobody hears
        while True:  # what the lost stream left in the queue belongs to no stream any more
            try:
                self._blocks.get_nowait()
            except queue.Empty:
                break

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except Exception as exc:  # a device that is gone may refuse to close cleanly
                log.debug("closing the audio stream: %s", exc)

    # --- the show's side --------------------------------------------------------------------------

    def wait_for_hops(self, count: int, timeout: float) -> bool:
        """Block until `count` hops have been analysed (tests and measurements, never the show)."""
        deadline = time.monotonic() + timeout
        with self._published:
            while self._hops < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._published.wait(left)
        return True

    @property
    def hops(self) -> int:
        return self._hops

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._close_stream()


def open_live_audio(spec: str | None) -> LiveAudio | None:
    """`--audio [DEVICE]`: the input, or None after one line saying why the show runs without sound."""
    try:
        device = resolve_input(spec)
        return LiveAudio(device)
    except AudioUnavailable as exc:
        log.warning("%s; the show runs without audio", exc)
        return None


def audio_findings() -> list[tuple[str, str, str]]:
    """What `dreamcam doctor` says about sound, as (status "ok"|"warn"|"missing", what, fix):
    aubio, PortAudio, and every input by the number `--audio N` takes."""
    try:
        import aubio

        findings = [("ok", f"aubio {aubio.version} (beat, tempo, onsets)", "")]
    except ImportError:
        findings = [("missing", "aubio does not import (--audio, render --audio-react)", AUDIO_EXTRA)]
    try:
        sd = _sounddevice()
        findings.append(("ok", sd.get_portaudio_version()[1].split(",")[0], ""))
        inputs = list_inputs()
    except AudioUnavailable as exc:
        return [
            *findings,
            ("missing", str(exc).split(";")[0], "apt install libportaudio2, or " + AUDIO_EXTRA),
        ]
    if not inputs:
        return [
            *findings,
            ("warn", "no audio input devices", "plug in a sound card, or make a loopback device"),
        ]
    for d in inputs:
        default = ", the default" if d.default else ""
        findings.append(
            ("ok", f"input {d.index}: {d.name} ({d.channels} ch, {d.sample_rate:.0f} Hz{default})", "")
        )
    return findings

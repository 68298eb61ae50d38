"""Audio features, one fixed hop at a time: loudness (RMS with attack/release), onsets, beat, tempo.

Onsets, beats and tempo come from aubio (the maintained `aubio-ledfx` fork that LedFx uses). The
loudness is the hop's RMS through a one-pole envelope follower, shown in dBFS on a 0-1 scale.
`FeatureAnalyzer` is pure and deterministic: the live thread and the offline render feed it the
same way, one hop of mono float32 samples after the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from realtime.errors import DreamcamError

SAMPLE_RATE = 48_000
HOP = 512  # samples per analysis step: 10.7 ms at 48 kHz
# aubio's beat tracker with a 1024-sample window drops whole groups of beats on a steady click track
# (measured: 7 of 31 clicks missed at 48 kHz); a 2048-sample window finds every one of them
WINDOW = 2048
ATTACK_S = 0.010  # loudness rises within ~a hop...
RELEASE_S = 0.300  # ...and falls slowly, so the dream swells with the music rather than flickering
FLOOR_DB = -60.0  # the level meter's bottom: quieter than this counts as silence


class AudioUnavailable(DreamcamError):
    """Sound cannot be had: aubio or PortAudio missing, or no such input device."""


@dataclass(frozen=True)
class AudioFeatures:
    """The newest analysis result. Counters (not flags) carry beats and onsets, so a reader that
    looks only now and then still sees every beat that happened since it last looked."""

    t: float = 0.0  # seconds of audio analysed so far (the end of the newest hop)
    rms: float = 0.0  # smoothed RMS, linear (a full-scale sine is 0.707)
    level: float = 0.0  # smoothed loudness on a 0-1 scale: FLOOR_DB..0 dBFS
    beats: int = 0  # beats detected so far
    onsets: int = 0  # onsets detected so far
    last_beat_t: float = -math.inf  # when the newest beat sounded (stream seconds)
    last_onset_t: float = -math.inf
    bpm: float = 0.0  # aubio's tempo estimate (0: not settled yet)


def level_of(rms: float) -> float:
    """Linear RMS -> 0..1 on a dB scale (FLOOR_DB is 0, full scale is 1)."""
    if rms <= 0.0:
        return 0.0
    db = 20.0 * math.log10(rms)
    return min(1.0, max(0.0, (db - FLOOR_DB) / -FLOOR_DB))


class FeatureAnalyzer:
    """Feed it hops of HOP mono float32 samples at `sample_rate`; `process` returns the new features."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, hop: int = HOP, window: int = WINDOW):
        try:
            import aubio  # the native library: imported where it is needed, so `dreamcam --help` stays light
        except ImportError:
            raise AudioUnavailable(
                "audio analysis needs aubio: pip install 'dreamcam[audio]' (aubio-ledfx, sounddevice, av)"
            ) from None

        self.sample_rate, self.hop = sample_rate, hop
        self._tempo = aubio.tempo("default", window, hop, sample_rate)
        self._onset = aubio.onset("default", window, hop, sample_rate)
        hop_s = hop / sample_rate
        self._attack = math.exp(-hop_s / ATTACK_S)
        self._release = math.exp(-hop_s / RELEASE_S)
        self._samples = 0
        self.features = AudioFeatures()

    def process(self, hop: np.ndarray) -> AudioFeatures:
        samples = np.ascontiguousarray(hop, dtype=np.float32).reshape(-1)
        if samples.shape[0] != self.hop:
            raise ValueError(f"expected a hop of {self.hop} samples, got {samples.shape[0]}")
        if not np.isfinite(samples).all():  # a broken driver or file: treat the hop as silence
            samples = np.zeros(self.hop, np.float32)
        self._samples += self.hop
        f = self.features
        rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
        coef = self._attack if rms > f.rms else self._release
        smoothed = coef * f.rms + (1.0 - coef) * rms
        beats, last_beat = f.beats, f.last_beat_t
        if self._tempo(samples)[0]:
            beats, last_beat = beats + 1, float(self._tempo.get_last_s())
        onsets, last_onset = f.onsets, f.last_onset_t
        if self._onset(samples)[0]:
            onsets, last_onset = onsets + 1, float(self._onset.get_last_s())
        bpm = float(self._tempo.get_bpm())
        self.features = AudioFeatures(
            t=self._samples / self.sample_rate,
            rms=smoothed,
            level=level_of(smoothed),
            beats=beats,
            onsets=onsets,
            last_beat_t=last_beat,
            last_onset_t=last_onset,
            bpm=bpm if math.isfinite(bpm) and bpm > 0 else 0.0,
        )
        return self.features


class FrameFeatures:
    """Frame-exact features of a whole track for an offline render: `at(n)` is what the live show
    would have had when frame n (shown at n / fps) appeared: every whole hop that ends by then.
    Frames are asked for in order; the analysis runs only as far as needed. Past the end of the
    track the sound is silence. Pure: the same samples give the same features every time."""

    def __init__(self, samples: np.ndarray, fps: float, sample_rate: int = SAMPLE_RATE, hop: int = HOP):
        self.samples = np.ascontiguousarray(samples, dtype=np.float32)
        self.fps, self.sample_rate, self.hop = fps, sample_rate, hop
        self._analyzer = FeatureAnalyzer(sample_rate, hop)
        self._hops = 0

    def at(self, frame: int) -> AudioFeatures:
        end_sample = int(math.floor(frame * self.sample_rate / self.fps + 1e-6))
        hop = self.hop
        while (self._hops + 1) * hop <= end_sample:
            chunk = self.samples[self._hops * hop : (self._hops + 1) * hop]
            if chunk.shape[0] < hop:
                chunk = np.pad(chunk, (0, hop - chunk.shape[0]))
            self._analyzer.process(chunk)
            self._hops += 1
        return self._analyzer.features


def features_at_frames(
    samples: np.ndarray, fps: float, frames: int, sample_rate: int = SAMPLE_RATE, hop: int = HOP
) -> list[AudioFeatures]:
    """`FrameFeatures.at` for frames 0..frames-1."""
    track = FrameFeatures(samples, fps, sample_rate, hop)
    return [track.at(n) for n in range(frames)]

"""Audio for `dreamcam render`: the sound that drives each frame, and the parameters it gives.

`--audio-react` reads the input video's own sound track, `--audio FILE` a separate one (through
PyAV, any format FFmpeg reads). `RenderAudio.params_for(n)` is frame n's look as the live show
would have dreamed it: the `[audio]` mapping applied to the features of the sound up to that frame's
time, "every N beats" included. Nothing depends on the wall clock, so a render is repeatable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from realtime.audio.analysis import SAMPLE_RATE, FrameFeatures
from realtime.audio.filein import read_audio
from realtime.audio.mapping import DEFAULT_MAPPING, AudioMapping, AudioReactor
from realtime.control.plane import Preset, ShowState, apply_action
from realtime.params import DreamParams

log = logging.getLogger(__name__)


class RenderAudio:
    def __init__(self, track: FrameFeatures, state: ShowState, mapping: AudioMapping = DEFAULT_MAPPING):
        self.track, self.state = track, state
        self.reactor = AudioReactor(mapping)
        self.beat_frames: list[int] = []  # frames a beat fell on (for figures and tests)

    @classmethod
    def from_file(
        cls, path: str, fps: float, state: ShowState, mapping: AudioMapping = DEFAULT_MAPPING
    ) -> RenderAudio:
        samples = read_audio(path)
        log.info(
            "audio: %.1f s of sound from %s drives the dream (%s)",
            len(samples) / SAMPLE_RATE,
            path,
            mapping.describe(),
        )
        return cls(FrameFeatures(samples, fps), state, mapping)

    def params_for(self, frame: int) -> DreamParams:
        """The parameters frame `frame` is dreamed with (call for frames 0, 1, 2... in order)."""
        for intent in self.reactor.update(self.track.at(frame)):
            apply_action(self.state, intent)  # next layer / next preset, as the live show does
        if self.reactor.beat:
            self.beat_frames.append(frame)
        return self.reactor.modulate(self.state.params)


@dataclass(frozen=True)
class RenderAudioPlan:
    """`render --audio-react` (path None: the input's own sound) or `--audio FILE`, with the look's
    mapping; `start` reads the sound once the render knows its frame rate."""

    path: str | None
    mapping: AudioMapping = DEFAULT_MAPPING
    layers: tuple[str, ...] = ()  # for "every N beats -> next layer"
    presets: tuple[Preset, ...] = ()  # for "every N beats -> next preset"

    def sound_of(self, input_path: str) -> str:
        return self.path or input_path

    def start(self, input_path: str, fps: float, params: DreamParams) -> RenderAudio:
        state = ShowState(params, self.layers, presets=list(self.presets))
        return RenderAudio.from_file(self.sound_of(input_path), fps, state, self.mapping)

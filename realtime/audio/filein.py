"""A file's sound track as one mono float32 array at the analysis rate, decoded through PyAV.

Any file FFmpeg reads works: a WAV or FLAC track, or the sound of a video (`render --audio-react`).
"""

from __future__ import annotations

import os

import numpy as np

from realtime.audio.analysis import SAMPLE_RATE
from realtime.errors import SourceError
from realtime.io.paths import check_name_encoding


def check_sound_file(path: str) -> None:
    """A one-line SourceError unless `path` names a file (a folder is not "missing": say so)."""
    check_name_encoding(path, "audio file")
    if os.path.isdir(path):
        raise SourceError(f"audio '{path}' is a folder; give a sound file inside it")
    if not os.path.isfile(path):
        raise SourceError(f"audio file '{path}' does not exist; check the path")


def read_audio(path: str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The first sound track of `path`, mixed to mono and resampled to `sample_rate`."""
    import av  # FFmpeg's bindings: imported where needed, like the recorder does

    check_sound_file(path)
    try:
        container = av.open(path)
    except av.FFmpegError as exc:
        raise SourceError(
            f"cannot read the sound of '{path}' ({exc}); is it an audio or video file?"
        ) from None
    try:
        if not container.streams.audio:
            raise SourceError(
                f"'{path}' has no sound track; drive the dream with a file that has one (--audio FILE.wav)"
            )
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks = []
        try:
            for frame in container.decode(container.streams.audio[0]):
                chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))  # the tail
        except av.FFmpegError as exc:
            raise SourceError(f"the sound of '{path}' is corrupt ({exc}); re-encode the file") from None
    finally:
        container.close()
    samples = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    if samples.size == 0:
        raise SourceError(f"the sound track of '{path}' is empty")
    return samples


def duration_s(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    return samples.shape[0] / sample_rate

"""Video files out, through PyAV (FFmpeg's own bindings; its wheels bundle libx264, ProRes, DNxHR).

`VideoFileWriter` takes RGB frames (and, for `render`, the sound of a source file) and writes one
file. H.264 goes into a *fragmented* MP4 (`frag_keyframe+empty_moov`) with a keyframe every second,
so a take cut by SIGKILL or a power cut still plays up to its last complete fragment. Every byte
goes through `_WatchedFile`, so a write the disk refuses (full, read-only, device gone) raises
`RecordingError` naming the cause at once, instead of FFmpeg's silent truncation.
"""

from __future__ import annotations

import errno
import fractions
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from realtime.errors import DreamcamError

log = logging.getLogger(__name__)


class RecordingError(DreamcamError):
    """A video file that cannot be written (disk full, read-only folder, device gone, bad codec)."""


@dataclass(frozen=True)
class Codec:
    encoder: str  # FFmpeg's encoder name
    pix_fmt: str
    extensions: tuple[str, ...]  # containers that can hold it
    options: dict[str, str] = field(default_factory=dict)
    live_options: dict[str, str] = field(default_factory=dict)  # extra while recording a show


CODECS: dict[str, Codec] = {
    # zerolatency: no lookahead or B-frames, so every frame leaves the encoder at once (a cut take
    # loses at most the fragment being written) and the encoder's threads stay light during a show
    "h264": Codec(
        "libx264",
        "yuv420p",
        (".mp4", ".mov", ".m4v", ".mkv"),
        {"crf": "18", "preset": "medium"},
        {"preset": "veryfast", "tune": "zerolatency"},
    ),
    "prores": Codec("prores_ks", "yuv422p10le", (".mov",), {"profile": "2"}),  # ProRes 422
    "dnxhr": Codec("dnxhd", "yuv422p", (".mov", ".mxf"), {"profile": "dnxhr_hq"}),
    "h264_nvenc": Codec("h264_nvenc", "yuv420p", (".mp4", ".mov", ".m4v", ".mkv"), {"preset": "p4"}),
}
VIDEO_EXTS = (".m4v", ".mkv", ".mov", ".mp4", ".mxf")
_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".mxf": "mxf"}
_FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
FLUSH_EVERY_S = 1.0  # live recordings reach the disk at least this often (wall time)
_AUDIO_FALLBACK = "aac"  # when the source's sound cannot be copied into the container as it is
# codecs a container takes as they are (None: any); FFmpeg lists more, but muxes some only as
# "experimental" (FLAC, Opus in mov), which fails when the file is half written
_MOV_AUDIO = frozenset({"aac", "mp3", "ac3", "eac3", "alac"})
_COPYABLE_AUDIO: dict[str, frozenset[str] | None] = {"mp4": _MOV_AUDIO, "mov": _MOV_AUDIO, "matroska": None}


def check_codec(codec: str, path: str) -> Codec:
    """The codec by name, checked against the file's container; a one-line error otherwise."""
    if codec not in CODECS:
        raise RecordingError(f"unknown codec '{codec}'; use one of: {', '.join(CODECS)}")
    spec = CODECS[codec]
    ext = os.path.splitext(path)[1].lower()
    if ext not in spec.extensions:
        wanted = " or ".join(spec.extensions)
        raise RecordingError(f"{codec} cannot go into a {ext or 'nameless'} file; name it {wanted}")
    return spec


def write_error_cause(exc: BaseException) -> str:
    """What went wrong with a write, in words a show operator can act on."""
    causes = {
        errno.ENOSPC: "disk full",
        errno.EDQUOT: "disk quota exceeded",
        errno.EROFS: "read-only file system",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EIO: "input/output error (device gone?)",
        errno.ENODEV: "device gone",
        errno.ENXIO: "device gone",
        errno.ENOENT: "folder gone",
        errno.EEXIST: "a file of that name is in the way of the folder",
        errno.ENOTDIR: "a file is in the way of the folder",
        errno.EISDIR: "that name is a folder",
    }
    code = getattr(exc, "errno", None)
    return causes.get(code, str(exc) or type(exc).__name__)


class _WatchedFile:
    """The file FFmpeg writes through: remembers the first OSError so the writer can raise it at
    once (FFmpeg's own file protocol only reports a full disk when the file is closed, if at all)."""

    def __init__(self, path: str):
        self._file = open(path, "wb", buffering=0)  # noqa: SIM115  (closed by the writer)
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self._file.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def flush(self) -> None:
        pass  # unbuffered

    def close(self) -> None:
        self._file.close()


class VideoFileWriter:
    """RGB uint8 frames (HxWx3) -> a video file; `close()` finishes it. Not thread-safe: one writer
    thread. `audio_from` copies that file's first sound track alongside (cut to the video's length).
    Raises `RecordingError` (with the cause: disk full, read-only...) when the file cannot be written."""

    def __init__(
        self,
        path: str,
        fps: float,
        codec: str = "h264",
        *,
        live: bool = True,
        audio_from: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        import av  # imported here: only recording and render need FFmpeg

        self._av = av
        self.path, self.fps = path, fps
        self.codec = check_codec(codec, path)
        self.options = {**self.codec.options, **(self.codec.live_options if live else {})}
        self.live, self.clock = live, clock
        self._keyframe_at = (
            clock()
        )  # wall time of the last keyframe (a fragment reaches the disk at the next)
        self.frames_written = 0
        self.size: tuple[int, int] | None = None  # (width, height) of the file, padded to even sides
        self.note = ""  # how odd sizes were handled, for the log
        self._rate = fractions.Fraction(fps).limit_denominator(1001)
        self._audio_in = self._audio_out = self._audio_packets = None
        self._audio_done, self._audio_copy, self._audio_pending = True, True, None
        try:
            self._file = _WatchedFile(path)
        except OSError as exc:
            raise RecordingError(f"cannot write '{path}': {write_error_cause(exc)}") from None
        try:
            ext = os.path.splitext(path)[1].lower()
            options = _FRAGMENTED if _FORMATS.get(ext) in ("mp4", "mov") else {}
            self._container = av.open(self._file, "w", format=_FORMATS.get(ext, "mp4"), options=options)
            # the video is the first stream (players and editors expect it there); its size comes
            # with the first frame
            encoder, rate = self.codec.encoder, self._rate
            self._stream = self._container.add_stream(encoder, rate=rate, options=self.options)
            self._stream.pix_fmt = self.codec.pix_fmt
            self._stream.codec_context.gop_size = max(1, round(fps))  # a fragment a second
            if audio_from is not None:
                self._open_audio(audio_from)
        except BaseException:
            self._file.close()
            raise

    # --- frames -------------------------------------------------------------------------------

    def write(self, image: np.ndarray) -> None:
        try:
            if self.size is None:
                self._open_video(image.shape[1], image.shape[0])
            image = self._fit(image)
            frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = self.frames_written
            frame.time_base = 1 / self._rate
            self._flush_on_wall_time(frame)
            self._mux(self._stream.encode(frame))
            self.frames_written += 1
            self._copy_audio(until_s=self.frames_written / self.fps)
        except RecordingError:
            raise
        except Exception as exc:  # an encoder or a sound track FFmpeg refuses: one line, not a traceback
            raise RecordingError(f"cannot write '{self.path}': {write_error_cause(exc)}") from None

    def _flush_on_wall_time(self, frame) -> None:
        """Live: a keyframe at least every FLUSH_EVERY_S of wall time, not only every second of video.
        A fragment goes to disk when the next keyframe starts, so at 1-2 fps (a loaded machine, a
        huge dream) a crash would otherwise lose 15-30 s of show."""
        now = self.clock()
        if self.frames_written % self._stream.codec_context.gop_size == 0:  # the encoder's own keyframe
            self._keyframe_at = now
        elif self.live and now - self._keyframe_at >= FLUSH_EVERY_S:
            frame.pict_type = self._av.video.frame.PictureType.I
            self._keyframe_at = now

    def close(self) -> None:
        """Flush the encoder, finish the sound, close the file. Raises RecordingError on failure."""
        try:
            if self.size is not None:
                self._mux(self._stream.encode())
            self._copy_audio(until_s=self.frames_written / self.fps)
            if self._audio_out is not None and not self._audio_copy:
                for chunk in self._resampler.resample(None):  # what the resampler still holds
                    self._mux(self._audio_out.encode(chunk))
                self._mux(self._audio_out.encode())
            self._container.close()
            self._check()
        except RecordingError:
            raise
        except Exception as exc:
            raise RecordingError(f"cannot finish '{self.path}': {write_error_cause(exc)}") from None
        finally:
            self.abort()

    def abort(self) -> None:
        """Release everything without finishing (after a failure); the file stays as far as written."""
        for closable in (self._container, self._audio_in, self._file):
            try:
                if closable is not None:
                    closable.close()
            except Exception:  # already closed, or the disk that failed refuses the last bytes too
                pass

    def _open_video(self, width: int, height: int) -> None:
        padded = (width + width % 2, height + height % 2)  # 4:2:0 and 4:2:2 need even sides
        if padded != (width, height):
            self.note = f"{width}x{height} padded to {padded[0]}x{padded[1]} (the codec needs even sides)"
            log.debug("%s: %s", self.path, self.note)  # the caller says it where it matters (render)
        self.size = padded
        try:
            self._stream.width, self._stream.height = padded
            self._stream.codec_context.open()
        except self._av.FFmpegError as exc:
            raise RecordingError(f"cannot encode {self.codec.encoder} at {width}x{height}: {exc}") from None

    def _fit(self, image: np.ndarray) -> np.ndarray:
        width, height = self.size
        h, w = image.shape[:2]
        if (w, h) == (width, height):
            return image
        if w <= width and h <= height and width - w <= 1 and height - h <= 1:
            return cv2.copyMakeBorder(image, 0, height - h, 0, width - w, cv2.BORDER_REPLICATE)
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)  # a source changed size

    def _mux(self, packets) -> None:
        try:
            self._container.mux(packets)
        except Exception as exc:
            raise RecordingError(f"cannot write '{self.path}': {write_error_cause(exc)}") from None
        self._check()

    def _check(self) -> None:
        if self._file.error is not None:
            raise RecordingError(f"cannot write '{self.path}': {write_error_cause(self._file.error)}")

    # --- sound --------------------------------------------------------------------------------

    def _open_audio(self, source: str) -> None:
        """Copy the source's first sound track where the container takes it as it is (mp4/mov:
        AAC, MP3, AC-3, ALAC; Matroska: anything), else re-encode it (AAC; PCM in MXF)."""
        try:
            self._audio_in = self._av.open(source)
        except self._av.FFmpegError:
            log.warning("cannot read the sound of '%s'; the output has none", source)
            return
        if not self._audio_in.streams.audio:
            return
        stream = self._audio_in.streams.audio[0]
        fmt = self._container.format.name
        copyable = _COPYABLE_AUDIO.get(fmt, frozenset())
        self._audio_copy = copyable is None or stream.codec_context.name in copyable
        if self._audio_copy:
            self._audio_out = self._container.add_stream_from_template(stream)
        else:
            encoder = "pcm_s16le" if fmt == "mxf" else _AUDIO_FALLBACK
            channels = stream.layout.nb_channels  # a file may name no channel order ("1 channels")
            layout = {1: "mono", 2: "stereo"}.get(channels, stream.layout.name)
            self._audio_out = self._container.add_stream(encoder, rate=stream.rate, layout=layout)
            codec = self._audio_out.codec_context
            codec.open()  # now it knows its frame size
            # the encoder takes frames of its own size (AAC: 1024 samples), in its own sample format
            self._resampler = self._av.AudioResampler(
                format=codec.format.name,
                layout=codec.layout.name,
                rate=codec.rate,
                frame_size=codec.frame_size or None,
            )
            log.info(
                "the sound of '%s' is re-encoded as %s (%s cannot go in as is)", source, encoder, stream.name
            )
        self._audio_packets = self._audio_in.demux(stream)
        self._audio_done = False

    def _copy_audio(self, until_s: float) -> None:
        """Mux the source's sound up to `until_s` seconds (interleaved with the video as it grows)."""
        while not self._audio_done:
            packet, self._audio_pending = self._audio_pending or next(self._audio_packets, None), None
            if packet is None:
                self._audio_done = True
                return
            if packet.pts is None:  # the demuxer's empty flush packet
                continue
            if float(packet.pts * packet.time_base) >= until_s:
                self._audio_pending = packet  # belongs after the next video frame
                return
            self._mux_audio(packet)

    def _mux_audio(self, packet) -> None:
        if self._audio_copy:
            packet.stream = self._audio_out
            self._mux([packet])
            return
        for frame in packet.decode():
            for chunk in self._resampler.resample(frame):
                self._mux(self._audio_out.encode(chunk))

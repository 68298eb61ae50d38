"""`open_source`: what the user typed after --source ("synthetic", a camera index, an NDI name, a
stream URL or a file) turned into the source of that kind. It knows every kind; no kind knows it
(which keeps the house free of circles: each kind builds on the contract in base.py alone)."""

from __future__ import annotations

import logging
from pathlib import Path

from realtime.errors import SourceError
from realtime.io.paths import check_name_encoding
from realtime.io.sources.base import IMAGE_EXTENSIONS, CaptureFactory, Source
from realtime.io.sources.camera import CameraSource
from realtime.io.sources.image import ImageSource
from realtime.io.sources.video import VideoSource

log = logging.getLogger(__name__)


def open_source(
    spec: str,
    *,
    paced: bool = True,
    size: tuple[int, int] | None = None,
    capture_factory: CaptureFactory | None = None,
    max_size: tuple[int, int] | None = None,
) -> Source:
    """Open what the user typed after --source: "synthetic", a camera index, a stream URL or a file.

    paced=True delivers files and generated scenes in real time, like a camera; paced=False hands out
    a new frame on every read (benchmarks, offline renders). `size` (width, height) is for synthetic.
    `max_size` (width, height): larger camera, video and image frames are reduced to fit, at the source.
    """
    spec = spec.strip()
    if not spec:
        raise SourceError("empty source; give a camera index (0), a video or image file, a URL or synthetic")
    if spec.lower() == "synthetic":
        from realtime.io.sources.synthetic import SYNTHETIC_SIZE, SyntheticSource  # skimage: when asked for

        return SyntheticSource(size or SYNTHETIC_SIZE, paced=paced)
    if size is not None:
        log.debug("size %s applies only to the synthetic source; ignored for %r", size, spec)
    if spec.isascii() and spec.isdigit():
        return CameraSource(int(spec), capture_factory=capture_factory, max_size=max_size)
    if spec.lower().startswith("ndi:"):
        from realtime.io.sources.ndi import NdiSource  # the `ndi` extra: imported only when asked for

        return NdiSource(spec[4:])
    if "://" in spec:
        return CameraSource(spec, capture_factory=capture_factory, max_size=max_size)
    check_name_encoding(spec, "source")  # OpenCV crashes the process on such a name
    path = Path(spec).expanduser()
    if not path.exists():
        raise SourceError(f"source file '{spec}' does not exist; check the path or use --source synthetic")
    if path.is_dir():
        raise SourceError(f"source '{spec}' is a directory; give a video or image file inside it")
    if not path.is_file() and not path.name.startswith("video"):  # /dev/video2 is a camera by path
        # a FIFO blocks OpenCV's open forever, /dev/zero decodes forever: neither is a video file
        raise SourceError(
            f"source '{spec}' is not a regular file (a pipe or a device); give a video or image file, "
            "or a camera by its index"
        )
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageSource(path, paced=paced, max_size=max_size)
    return VideoSource(path, paced=paced, max_size=max_size)

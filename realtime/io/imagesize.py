"""An image's size from its header, before anything decodes it (PNG, JPEG, BMP; None for others).

A 1.2 MB PNG can say 20000x20000: 1.2 GB once decoded, and hundreds of GB to dream at that size.
OpenCV cannot say how big a file is without decoding it, so the few bytes that say it are read
here: PNG's IHDR chunk, JPEG's start-of-frame segment (walking the segments before it), BMP's
info header. A file too short or not what its first bytes claim gives None (the decoder decides).
"""

from __future__ import annotations

import struct
from typing import BinaryIO

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG's start-of-frame markers (baseline, progressive, lossless...): C0-CF but DHT, JPG and DAC
JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
JPEG_MAX_SEGMENTS = 1000  # segments walked before giving up (a file of nothing but markers)


def image_size(path: str) -> tuple[int, int] | None:
    """(width, height) from the file's header, or None when it cannot tell (OSError propagates)."""
    with open(path, "rb") as f:
        head = f.read(32)
        if head.startswith(PNG_SIGNATURE) and head[12:16] == b"IHDR":
            return struct.unpack(">II", head[16:24])
        if head.startswith(b"BM") and len(head) >= 26:
            width, height = struct.unpack("<ii", head[18:26])
            return abs(width), abs(height)  # a negative height: rows stored top-down
        if head.startswith(b"\xff\xd8"):
            f.seek(2)
            return _jpeg_size(f)
    return None


def _jpeg_size(f: BinaryIO) -> tuple[int, int] | None:
    for _ in range(JPEG_MAX_SEGMENTS):
        marker = f.read(2)
        while marker[:1] == b"\xff" and marker[1:2] == b"\xff":  # fill bytes before a marker
            marker = marker[1:] + f.read(1)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        kind = marker[1]
        if kind in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            continue
        length_bytes = f.read(2)
        if len(length_bytes) < 2:
            return None
        (length,) = struct.unpack(">H", length_bytes)
        if kind in JPEG_SOF:
            frame = f.read(5)
            if len(frame) < 5:
                return None
            height, width = struct.unpack(">HH", frame[1:5])
            return width, height
        if kind == 0xDA or length < 2:  # the scan starts (no frame header before it), or garbage
            return None
        f.seek(length - 2, 1)
    return None

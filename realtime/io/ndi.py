"""NDI in and out through cyndilib (its wheels bundle the NDI runtime): the `ndi` extra.

- `NdiSender` (`--ndi-out NAME`) is a `Link`: it publishes the composed output as an NDI source at
  the output's size and the show's frame rate, in UYVY (NDI's native 4:2:2, the cheapest to encode)
  or RGBA. NDI converts to whatever colour format each receiver asks for.
- `NdiSource` (`--source ndi:NAME`) is in realtime/io/sources/ndi.py, beside the other sources; it
  takes its timeouts and `import_cyndilib` from here.

Discovery uses mDNS; where multicast does not pass (other subnets, containers, some Wi-Fi), NDI's
own config file names the senders' IPs or a discovery server: see docs/VJ.md.
"""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np

from realtime.io.links import Link, LinkError, check_link_name

INSTALL_HINT = "pip install 'dreamcam[ndi]' (cyndilib, which bundles the NDI runtime)"
FORMATS = ("uyvy", "rgba")
FIND_TIMEOUT_S = 3.0  # per attempt: how long to look for the named sender on the network
FRAME_TIMEOUT_S = 2.0  # a connected feed with no frame for this long counts as lost (then reconnected)
POLL_S = 0.004  # how often the reader asks NDI for a new frame (a 60 fps feed: every 16.7 ms)
CONNECT_TIMEOUT_S = 3.0  # a new connection's first frame may take this long (NDI negotiates first)


def import_cyndilib():
    """The cyndilib package, or one line saying how to install it."""
    try:
        import cyndilib  # noqa: F401
        from cyndilib import finder, receiver, sender, video_frame  # noqa: F401
        from cyndilib.wrapper import ndi_recv, ndi_structs  # noqa: F401
    except ImportError as exc:
        raise LinkError(f"NDI needs cyndilib ({exc}): {INSTALL_HINT}") from None
    return cyndilib


# ---------------------------------------------------------------------------------------------------
# Out


def _bt709_studio() -> np.ndarray:
    """The 3x4 matrix RGB (0-255) -> Y'CbCr BT.709, studio range (Y 16-235, Cb/Cr 16-240 about 128)."""
    kr, kb = 0.2126, 0.0722
    kg = 1.0 - kr - kb
    y = np.array([kr, kg, kb])
    cb = (np.array([0.0, 0.0, 1.0]) - y) / (2.0 * (1.0 - kb))
    cr = (np.array([1.0, 0.0, 0.0]) - y) / (2.0 * (1.0 - kr))
    scale = np.array([219.0, 224.0, 224.0])[:, None] / 255.0
    return np.hstack([np.stack([y, cb, cr]) * scale, np.array([[16.0], [128.0], [128.0]])])


_RGB_TO_YCBCR = _bt709_studio()


def rgb_to_uyvy(image: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB -> HxWx2 uint8 UYVY (4:2:2, BT.709, studio range).

    BT.709 at every size: NDI's receivers decode with it even below 720 lines (measured on loopback:
    BT.601 there came back 15 levels off). Chroma is the mean of each horizontal pixel pair, so W
    must be even. OpenCV does the arithmetic: 1280x720 in ~24 ms on a loaded 2-core CPU, a third
    of the same sums in numpy, and on the link's thread, never the show's.
    """
    height, width = image.shape[:2]
    if width % 2:
        raise ValueError(f"UYVY needs an even width, got {width}")
    ycbcr = cv2.transform(image, _RGB_TO_YCBCR)  # rounds and saturates to uint8
    # Cb and Cr are linear in RGB: the mean of a pair's Cb is the Cb of the pair's mean
    chroma = cv2.resize(ycbcr, (width // 2, height), interpolation=cv2.INTER_AREA)
    out = np.empty((height, width, 2), np.uint8)
    out[..., 1] = ycbcr[..., 0]
    out[:, 0::2, 0] = chroma[..., 1]
    out[:, 1::2, 0] = chroma[..., 2]
    return out


class NdiSender(Link):
    """`--ndi-out NAME`: the composed output as the NDI source "MACHINE (NAME)"."""

    kind = "NDI"

    def __init__(self, name: str, fps: float, pixel_format: str = "uyvy"):
        name = check_link_name("--ndi-out", name)
        if pixel_format not in FORMATS:
            raise LinkError(f"--ndi-format must be one of {', '.join(FORMATS)}, got '{pixel_format}'")
        import_cyndilib()  # a missing package is a start-up error, not a silent link
        self.pixel_format = pixel_format
        self._sender = None
        self._buffer: np.ndarray | None = None
        super().__init__(name, fps)  # opens at the first frame: the output's size is known then

    def _open(self, width: int, height: int) -> None:
        from cyndilib.sender import Sender
        from cyndilib.video_frame import VideoSendFrame
        from cyndilib.wrapper.ndi_structs import FourCC

        width -= width % 2  # UYVY pairs pixels; one column less is invisible, a refused stream is not
        self.size = (width, height)
        frame = VideoSendFrame()
        frame.set_resolution(width, height)
        frame.set_frame_rate(Fraction(self.fps).limit_denominator(1001))
        frame.set_fourcc(FourCC.UYVY if self.pixel_format == "uyvy" else FourCC.RGBA)
        # clock_video=False: the show paces the frames; the link must never sleep on NDI's clock
        sender = Sender(self.name, clock_video=False)
        sender.set_video_frame(frame)
        sender.open()
        self._sender = sender
        channels = 2 if self.pixel_format == "uyvy" else 4
        self._buffer = np.empty((height, width, channels), np.uint8)
        if channels == 4:
            self._buffer[..., 3] = 255

    def _publish(self, image: np.ndarray) -> None:
        buffer = self._buffer
        if self.pixel_format == "uyvy":
            buffer[...] = rgb_to_uyvy(image)
        else:
            buffer[..., :3] = image
        if not self._sender.write_video_async(buffer.reshape(-1)):
            raise LinkError("NDI refused the frame")

    def _poll(self) -> str:
        count = self._sender.get_num_connections(0.0)
        return f"{count} receiver{'s' if count != 1 else ''}" if count else "no receiver yet"

    def _close(self) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender = None

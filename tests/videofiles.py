"""Reading back the video files tests write: with OpenCV directly, not through realtime's readers."""

import cv2
import numpy as np


def read_video(path) -> tuple[list[np.ndarray], float]:
    """Every frame of a video file as HxWx3 RGB uint8, and its frame rate."""
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames, fps


def write_clip_with_sound(
    path, frames: int, size: tuple[int, int], fps: int = 25, noise=False, image=None, sound=None
) -> str:
    """A clip with a 440 Hz tone (or `sound`: mono float32 samples at 44.1 kHz): lossless FFV1 frames
    in Matroska (any size, odd ones too) and AAC. Frames are a moving bar, random noise (which no
    codec can compress) with `noise`, or `image` (RGB) every frame, or `image` a list: frame n is
    its n-th."""
    import av

    width, height = size
    rng = np.random.default_rng(0)
    still = image
    with av.open(str(path), "w") as container:
        video = container.add_stream("ffv1", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv444p"
        audio = container.add_stream("aac", rate=44100)
        for n in range(frames):
            if isinstance(still, list):
                image = still[n]
            elif still is not None:
                image = still
            elif noise:
                image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            else:
                image = np.full((height, width, 3), 60, np.uint8)
                image[:, (n * 7) % width :][:, :20] = 220
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        samples = int(frames / fps * 44100)
        for start in range(0, samples, 1024):
            t = (start + np.arange(1024)) / 44100
            if sound is None:
                tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            else:
                tone = np.pad(sound[start : start + 1024], (0, 1024))[:1024].astype(np.float32)[None]
            chunk = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 44100, start
            container.mux(audio.encode(chunk))
        container.mux(video.encode())
        container.mux(audio.encode())
    return str(path)

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

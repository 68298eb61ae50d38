"""What a dream maximises: objectives over a network's named activations.

Objectives compose with plain arithmetic (`LayerObjective("block5") + 0.5 * ChannelObjective("block8", 12)`)
and come from a string shorthand that users type on the command line:

    block5                 mean squared activation of a layer (classic DeepDream)
    block5:12              mean activation of one channel
    class:281 / class:tabby  an ImageNet class logit ("make it more cat-like")
    block5+0.5*block8      weighted sums of any of the above
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from models.registry import ModelSpec, imagenet_categories
from realtime.errors import ConfigError, ModelError
from realtime.params import check_layer_spec, layer_weight, plain_digits

Features = dict[str, torch.Tensor]


class Objective:
    """A scalar function of the features; `layers` says which activations it reads."""

    layers: frozenset[str] = frozenset()

    def __call__(self, features: Features) -> torch.Tensor:
        raise NotImplementedError

    def gradient_scale(self, features: Features) -> float:
        """How many values the objective averages over (a static shape, no device read): the
        kernel scales the loss by it before autograd, so that a mean's per-value gradient 2a/N
        (N ~ 10^5) is not subnormal in fp16. Free: the step divides the gradient by its mean."""
        return 1.0

    def __add__(self, other: Objective) -> Objective:
        return Sum((self, other))

    def __sub__(self, other: Objective) -> Objective:
        return Sum((self, Scaled(other, -1.0)))

    def __mul__(self, weight: float) -> Objective:
        return Scaled(self, float(weight))

    __rmul__ = __mul__

    def __neg__(self) -> Objective:
        return Scaled(self, -1.0)


@dataclass(frozen=True)
class LayerObjective(Objective):
    layer: str

    @property
    def layers(self) -> frozenset[str]:
        return frozenset({self.layer})

    def __call__(self, features: Features) -> torch.Tensor:
        return features[self.layer].float().pow(2).mean()

    def gradient_scale(self, features: Features) -> float:
        return float(features[self.layer][0].numel())

    def __str__(self) -> str:
        return self.layer


@dataclass(frozen=True)
class ChannelObjective(Objective):
    layer: str
    channel: int

    @property
    def layers(self) -> frozenset[str]:
        return frozenset({self.layer})

    def __call__(self, features: Features) -> torch.Tensor:
        activation = features[self.layer]
        if self.channel >= activation.shape[1]:
            raise ModelError(
                f"layer {self.layer} has {activation.shape[1]} channels; channel {self.channel} "
                f"does not exist (use 0..{activation.shape[1] - 1})"
            )
        return activation[:, self.channel].float().mean()

    def gradient_scale(self, features: Features) -> float:
        return float(features[self.layer][0, 0].numel())

    def __str__(self) -> str:
        return f"{self.layer}:{self.channel}"


@dataclass(frozen=True)
class ClassObjective(Objective):
    index: int

    @property
    def layers(self) -> frozenset[str]:
        return frozenset({"logits"})

    def __call__(self, features: Features) -> torch.Tensor:
        return features["logits"][:, self.index].float().mean()

    def __str__(self) -> str:
        return f"class:{imagenet_categories()[self.index]}"


@dataclass(frozen=True)
class Scaled(Objective):
    inner: Objective
    weight: float

    @property
    def layers(self) -> frozenset[str]:
        return self.inner.layers

    def __call__(self, features: Features) -> torch.Tensor:
        return self.weight * self.inner(features)

    def gradient_scale(self, features: Features) -> float:
        return self.inner.gradient_scale(features)

    def __str__(self) -> str:
        return f"{self.weight:g}*{self.inner}"


@dataclass(frozen=True)
class Sum(Objective):
    terms: tuple[Objective, ...]

    @property
    def layers(self) -> frozenset[str]:
        return frozenset().union(*(t.layers for t in self.terms))

    def __call__(self, features: Features) -> torch.Tensor:
        return sum((t(features) for t in self.terms[1:]), self.terms[0](features))

    def gradient_scale(self, features: Features) -> float:
        # the smallest: no term's gradient is scaled past its own size (a class logit's is 1)
        return min(t.gradient_scale(features) for t in self.terms)

    def __str__(self) -> str:
        return "+".join(str(t) for t in self.terms)


def parse_objective(spec: str | None, model: ModelSpec) -> Objective:
    """Turn the shorthand into an Objective for `model`; None or '' means its default layer."""
    if not spec:
        return LayerObjective(model.default_layer)
    check_layer_spec(spec)  # length, terms, weights: what DreamParams checks, for callers without one
    terms = [_parse_term(term.strip(), model, spec) for term in spec.split("+")]
    return terms[0] if len(terms) == 1 else Sum(tuple(terms))


def _parse_term(term: str, model: ModelSpec, spec: str) -> Objective:
    weight = 1.0
    if "*" in term:
        weight_text, term = term.split("*", 1)
        weight = layer_weight(weight_text, spec)
    if not term:
        raise ConfigError("empty objective term; write e.g. 'block5' or 'block5+0.5*block8'")
    target = _parse_target(term.strip(), model)
    return target if weight == 1.0 else Scaled(target, weight)


def _parse_target(term: str, model: ModelSpec) -> Objective:
    name, _, arg = term.partition(":")
    if name == "class":
        return ClassObjective(class_index(arg))
    model.check_layer(name)
    if not arg:
        return LayerObjective(name)
    if not plain_digits(arg):
        raise ConfigError(f"channel '{arg}' in '{term}' is not a whole number (write layer:channel)")
    channel, channels = int(arg), model.channels(name)
    if channel >= channels:
        raise ConfigError(
            f"layer {name} of {model.name} has {channels} channels; channel {channel} does not exist "
            f"(use 0..{channels - 1})"
        )
    return ChannelObjective(name, channel)


def class_index(text: str) -> int:
    """An ImageNet class from its index (0..999) or its name (case-insensitive, unique prefix)."""
    categories = imagenet_categories()
    if plain_digits(text):
        index = int(text)
        if index < len(categories):
            return index
        raise ConfigError(f"ImageNet class index {index} is out of range (0..{len(categories) - 1})")
    wanted = text.strip().lower().replace("_", " ")
    exact = [i for i, c in enumerate(categories) if c.lower() == wanted]
    if exact:
        return exact[0]
    prefixed = [i for i, c in enumerate(categories) if c.lower().startswith(wanted)] if wanted else []
    if len(prefixed) == 1:
        return prefixed[0]
    if prefixed:
        options = ", ".join(categories[i] for i in prefixed[:8])
        raise ConfigError(f"ImageNet class '{text}' is ambiguous: {options}...; give more of the name")
    raise ConfigError(f"no ImageNet class named '{text}'; use an index 0..999 or a name like 'tabby'")

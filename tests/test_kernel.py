"""The dream kernel: objectives rise, pixels stay valid, shorthand parses, octaves carry detail."""

import pytest
import torch

from models.registry import get_spec
from realtime.dream import kernel
from realtime.dream.backends import EagerBackend
from realtime.dream.objectives import (
    ChannelObjective,
    ClassObjective,
    LayerObjective,
    Scaled,
    Sum,
    class_index,
    parse_objective,
)
from realtime.errors import ConfigError, ModelError
from realtime.params import DreamParams, parse_size

LITE0 = get_spec("efficientnet_lite0")


def _backend(network, objective, generator, **params) -> EagerBackend:
    net = network.truncated(sorted(objective.layers))
    return EagerBackend(net, objective, DreamParams(**params), generator)


def test_dream_raises_the_layer_objective_several_fold_on_a_real_photo(lite0, chelsea_small, generator):
    objective = LayerObjective("block5")
    backend = _backend(lite0, objective, generator, lr=0.02)
    before = backend.objective_value(chelsea_small)
    dreamt = kernel.dream(chelsea_small, backend.run, steps=10, octaves=1)
    after = backend.objective_value(dreamt)
    assert after > 3 * before, (before, after)
    assert dreamt.min() >= 0.0 and dreamt.max() <= 1.0
    assert (dreamt - chelsea_small).abs().mean() > 0.01  # the picture really changed


def test_octaves_dream_at_every_scale_and_keep_the_size(lite0, chelsea_small, generator):
    objective = LayerObjective("block5")
    backend = _backend(lite0, objective, generator)
    seen_sizes = []

    def run(x, steps):
        seen_sizes.append(tuple(x.shape[-2:]))
        return backend.run(x, steps)

    dreamt = kernel.dream(chelsea_small, run, steps=2, octaves=3, octave_scale=1.5)
    assert seen_sizes == [(80, 142), (120, 213), (180, 320)]
    assert dreamt.shape == chelsea_small.shape
    assert backend.objective_value(dreamt) > 1.5 * backend.objective_value(chelsea_small)


def test_channel_objective_raises_that_channel(lite0, chelsea_small, generator):
    objective = ChannelObjective("block5", 7)
    backend = _backend(lite0, objective, generator)
    before = backend.objective_value(chelsea_small)
    after = backend.objective_value(kernel.dream(chelsea_small, backend.run, steps=5))
    assert after > before + 0.5, (before, after)


def test_class_objective_makes_the_picture_more_of_that_class(lite0, chelsea_small, generator):
    goldfish = class_index("goldfish")
    objective = ClassObjective(goldfish)
    backend = _backend(lite0, objective, generator, lr=0.02)
    probability = lite0.truncated(["logits"])
    with torch.no_grad():
        p_before = probability(chelsea_small)["logits"].softmax(-1)[0, goldfish]
        dreamt = kernel.dream(chelsea_small, backend.run, steps=8)
        p_after = probability(dreamt)["logits"].softmax(-1)[0, goldfish]
    assert p_after > 10 * p_before, (float(p_before), float(p_after))


def test_noise_start_with_total_variation_stays_valid(lite0, generator):
    noise = torch.rand(1, 3, 64, 96, generator=generator)
    objective = LayerObjective("block3")
    backend = _backend(lite0, objective, generator, tv_weight=1.0)
    dreamt = kernel.dream(noise, backend.run, steps=3, octaves=2)
    assert torch.isfinite(dreamt).all() and dreamt.min() >= 0 and dreamt.max() <= 1


def test_total_variation_penalty_smooths_the_update(lite0, chelsea_small):
    objective = LayerObjective("block5")
    plain = _backend(lite0, objective, torch.Generator().manual_seed(1), jitter=0)
    smooth = _backend(lite0, objective, torch.Generator().manual_seed(1), jitter=0, tv_weight=30.0)
    tv_plain = kernel.total_variation(plain.run(chelsea_small, 4))
    tv_smooth = kernel.total_variation(smooth.run(chelsea_small, 4))
    assert tv_smooth < tv_plain


def test_shorthand_parses_layers_channels_classes_and_weighted_sums():
    assert parse_objective(None, LITE0) == LayerObjective("block10")
    assert parse_objective("block8", LITE0) == LayerObjective("block8")
    assert parse_objective("block8:12", LITE0) == ChannelObjective("block8", 12)
    assert parse_objective("class:281", LITE0) == ClassObjective(281)
    assert parse_objective("class:tabby", LITE0) == ClassObjective(281)
    combo = parse_objective("block5+0.5*block8:3", LITE0)
    assert combo == Sum((LayerObjective("block5"), Scaled(ChannelObjective("block8", 3), 0.5)))
    assert combo.layers == {"block5", "block8"}
    arithmetic = LayerObjective("block5") + 0.5 * ChannelObjective("block8", 3)
    assert arithmetic == combo


@pytest.mark.parametrize(
    "spec, error, words",
    [
        ("block99", ModelError, ["block99", "valid layers", "block5"]),
        ("block5:x", ConfigError, ["channel"]),
        ("class:nonsense-animal", ConfigError, ["no ImageNet class"]),
        ("class:2000", ConfigError, ["out of range"]),
        ("two*block5", ConfigError, ["weight"]),
    ],
)
def test_bad_objective_specs_give_clear_errors(spec, error, words):
    with pytest.raises(error) as err:
        parse_objective(spec, LITE0)
    for word in words:
        assert word in str(err.value)


def test_channel_out_of_range_is_refused_when_parsed_not_when_dreamed():
    """Issue 15 (show-safe): the range is checked at the one validation point, before any dream."""
    with pytest.raises(ConfigError, match="80 channels"):
        parse_objective("block5:999", LITE0)


def test_params_are_validated():
    with pytest.raises(ConfigError, match="steps"):
        DreamParams(steps=0)
    with pytest.raises(ConfigError, match="persistence"):
        DreamParams(persistence=1.5)
    with pytest.raises(ConfigError, match="warm start"):
        DreamParams(warm_start="sometimes")
    assert DreamParams().replace(steps=3).steps == 3


@pytest.mark.parametrize("text", ["320", "320x", "axb", "10x10", "320x180x3"])
def test_bad_size_strings(text):
    with pytest.raises(ConfigError, match="size"):
        parse_size(text)


def test_size_string():
    assert parse_size("320x180") == (320, 180)
    assert parse_size("640X360") == (640, 360)


def _seed_gradient_error(activation: torch.Tensor, objective, scale: float) -> float:
    """Relative error of the objective's gradient at `activation` computed in fp16 (as autocast
    hands it over) against fp32, with the loss scaled by `scale` before autograd."""
    exact = activation.clone().requires_grad_(True)
    (reference,) = torch.autograd.grad(objective({"head": exact}), exact)
    half = activation.half().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective({"head": half}) * scale, half)
    return float((grad.float() / scale - reference).abs().sum() / reference.abs().sum())


def test_the_loss_scale_keeps_fp16_gradients_out_of_the_subnormal_range(lite0, chelsea):
    """C5: dL/da = 2a/N for a mean of squares over N ~ 3*10^5 activations is subnormal in fp16
    (below 6.1e-5); scaled by N before autograd it is a normal number again."""
    import cv2

    image = cv2.resize(chelsea, (640, 360), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float() / 255.0
    with torch.no_grad():
        features = lite0.truncated(["head"])(x)
    objective = LayerObjective("head")
    scale = objective.gradient_scale(features)
    assert scale == features["head"][0].numel() > 10**5
    unscaled = _seed_gradient_error(features["head"], objective, 1.0)
    scaled = _seed_gradient_error(features["head"], objective, scale)
    assert scaled < 5e-4  # fp16's own rounding (2^-11)
    assert unscaled > 5 * scaled, (unscaled, scaled)


def test_gradient_scales_of_composite_objectives():
    features = {
        "block5": torch.zeros(1, 8, 4, 5),
        "block8": torch.zeros(1, 16, 2, 3),
        "logits": torch.zeros(1, 10),
    }
    assert LayerObjective("block5").gradient_scale(features) == 160
    assert ChannelObjective("block5", 2).gradient_scale(features) == 20
    assert ClassObjective(3).gradient_scale(features) == 1
    assert Scaled(LayerObjective("block8"), 0.5).gradient_scale(features) == 96
    # a sum takes the smallest: no term's gradient is scaled past its own size
    assert Sum((LayerObjective("block5"), ClassObjective(3))).gradient_scale(features) == 1


def test_the_step_is_unchanged_by_the_loss_scale_in_fp32(lite0, chelsea_small):
    """The step divides the gradient by its mean magnitude: scaling the loss moves nothing."""
    objective = LayerObjective("block5")
    net = lite0.truncated(["block5"])
    table = kernel.jitter_table([(1, 2)], *chelsea_small.shape[-2:])[0]
    scaled, _ = kernel.step(net, objective, chelsea_small, table, 0.02, 0.0)

    class Unscaled(LayerObjective):
        def gradient_scale(self, features) -> float:
            return 1.0

    plain, _ = kernel.step(net, Unscaled("block5"), chelsea_small, table, 0.02, 0.0)
    assert torch.allclose(scaled, plain, atol=1e-5)


def test_total_variation_at_weight_zero_is_not_computed(lite0, chelsea_small, monkeypatch):
    """A weight of 0 (every look's) skips TV's forward and backward; a tensor weight (the traced
    and captured step's) still computes it, and both give the same update."""
    objective = LayerObjective("block5")
    net = lite0.truncated(["block5"])
    height, width = chelsea_small.shape[-2:]
    jitter = kernel.jitter_table([(2, -3)], height, width)[0]
    traced, _ = kernel.step(net, objective, chelsea_small, jitter, 0.02, torch.tensor(0.0))

    def no_tv(x):
        raise AssertionError("total variation computed at weight 0")

    monkeypatch.setattr(kernel, "total_variation", no_tv)
    eager, _ = kernel.step(net, objective, chelsea_small, jitter, 0.02, 0.0)
    torch.testing.assert_close(eager, traced, atol=1e-6, rtol=0)

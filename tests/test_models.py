"""The model registry: real weights, the right normalisation, truncation, weight errors."""

import urllib.error

import cv2
import pytest
import torch
from torchvision import models as tvm

from models.efficientnet_lite0 import EfficientNetLite0, bundled_weights_path
from models.registry import get_spec, list_specs, load_model, load_network
from realtime.errors import ModelError

CAT_CLASSES = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def test_lite0_classifies_a_cat_photo_as_a_cat(lite0, chelsea):
    image = cv2.resize(chelsea, (224, 224), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float() / 255.0
    net = lite0.truncated(["logits"])
    with torch.no_grad():
        top5 = net(x)["logits"].topk(5).indices[0].tolist()
    assert CAT_CLASSES & set(top5), top5
    assert top5[0] in CAT_CLASSES


def test_folded_batchnorms_match_the_original_network(lite0, chelsea_small):
    reference = EfficientNetLite0().eval()
    reference.load_state_dict(torch.load(bundled_weights_path(), weights_only=True))
    spec = get_spec("efficientnet_lite0")
    x = (chelsea_small - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = reference(x)
        got = lite0.truncated(["logits"])(chelsea_small)["logits"]
    torch.testing.assert_close(got, expected, atol=1e-3, rtol=1e-3)


def test_network_is_truncated_after_the_deepest_requested_layer(lite0):
    shallow = lite0.truncated(["block5"])
    deep = lite0.truncated(["block5", "block12"])
    assert shallow.stage_names[-1] == "block5"
    assert deep.stage_names[-1] == "block12"
    assert len(shallow.stages) < len(deep.stages) < len(lite0.stages)
    features = deep(torch.rand(1, 3, 64, 64))
    assert set(features) == {"block5", "block12"}


def test_unknown_layer_error_lists_the_valid_ones():
    with pytest.raises(ModelError) as err:
        load_model("efficientnet_lite0", ["block99"])
    assert "block99" in str(err.value) and "block5" in str(err.value) and "head" in str(err.value)


def test_unknown_model_error_lists_the_registry():
    with pytest.raises(ModelError, match="efficientnet_lite0.*googlenet"):
        get_spec("alexnet")


def test_every_model_has_a_valid_default_layer():
    names = {spec.name for spec in list_specs()}
    assert {"efficientnet_lite0", "googlenet", "vgg16", "inception_v3"} <= names
    for spec in list_specs():
        assert spec.default_layer in spec.layers


def test_torchvision_weights_offline_error_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    assert not get_spec("googlenet").weights.available()
    with pytest.raises(ModelError) as err:
        load_network("googlenet")
    message = str(err.value)
    assert "googlenet" in message and "--weights" in message and str(tmp_path) in message


def test_weights_file_is_loaded_strictly(tmp_path):
    good = tmp_path / "googlenet.pth"
    reference = tvm.googlenet(weights=None, aux_logits=True, init_weights=True)
    torch.save(reference.state_dict(), good)
    network = load_network("googlenet", weights=str(good))
    net = network.truncated(["inception4c"])
    assert net(torch.rand(1, 3, 96, 96))["inception4c"].shape[1] == 512

    wrong = tmp_path / "lite0.pth"
    torch.save(EfficientNetLite0().state_dict(), wrong)
    with pytest.raises(ModelError, match="do not fit googlenet"):
        load_network("googlenet", weights=str(wrong))


@pytest.mark.parametrize("content", [b"", b"this is not a checkpoint at all"])
def test_a_file_that_is_not_weights_gives_a_clear_error(tmp_path, content):
    bogus = tmp_path / "weights.pth"
    bogus.write_bytes(content)
    with pytest.raises(ModelError, match="not a PyTorch weights file"):
        load_network("efficientnet_lite0", weights=str(bogus))


def test_missing_weights_file(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_network("vgg16", weights=str(tmp_path / "nope.pth"))


@pytest.mark.parametrize("size", [(45, 80), (46, 81), (23, 40), (24, 41), (90, 160)])
@pytest.mark.parametrize("kernel_size", [3, 5])
def test_strided_same_convolution_matches_tensorflow_padding(size, kernel_size):
    """SameConv2d pads inside the convolution where TF's padding is symmetric (an odd side) and
    explicitly where it is not: outputs and input gradients as with explicit padding everywhere."""
    import torch.nn.functional as F

    from models.efficientnet_lite0 import SameConv2d

    torch.manual_seed(0)
    conv = SameConv2d(8, 8, kernel_size, stride=2, groups=8, bias=False)
    x = torch.randn(1, 8, *size).to(memory_format=torch.channels_last).requires_grad_(True)
    pads = []
    for side in reversed(size):  # F.pad's order: width first
        total = max((-(-side // 2) - 1) * 2 + kernel_size - side, 0)
        pads += [total // 2, total - total // 2]
    expected = F.conv2d(F.pad(x, pads), conv.weight, None, 2, 0, 1, 8)
    out = conv(x)
    torch.testing.assert_close(out, expected)
    (grad,) = torch.autograd.grad(out.square().sum(), x)
    (expected_grad,) = torch.autograd.grad(expected.square().sum(), x)
    torch.testing.assert_close(grad, expected_grad)


def test_strided_same_convolution_on_odd_sides_pads_inside_the_convolution(monkeypatch):
    """Odd sides need symmetric padding: no explicit pad (a copy forward, another backward)."""
    from models import efficientnet_lite0
    from models.efficientnet_lite0 import SameConv2d

    def no_pad(*args, **kwargs):
        raise AssertionError("explicit padding where the convolution could pad")

    monkeypatch.setattr(efficientnet_lite0.F, "pad", no_pad)
    conv = SameConv2d(4, 4, 5, stride=2, groups=4, bias=False)
    assert conv(torch.randn(1, 4, 45, 81)).shape[-2:] == (23, 41)

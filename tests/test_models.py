import os

import pytest
import torch
import torchvision

from cs231n_vis.hooks import get_layer
from cs231n_vis.images import sample_image, to_tensor
from cs231n_vis.models import (MODEL_ENV_VAR, OFFLINE_ENV_VAR, ModelUnavailableError,
                               default_model_name, load_model)


@pytest.fixture(scope="module")
def lite0():
    return load_model("efficientnet_lite0")


def top_k(model, name, k):
    with torch.no_grad():
        logits = model(to_tensor(sample_image(name), size=224))
    return [model.class_names[i] for i in logits[0].topk(k).indices]


def test_lite0_weights_are_real_imagenet_weights(lite0):
    # Labels a person gives these photos; the model must agree.
    assert top_k(lite0, "chelsea", 1)[0] in {"Egyptian cat", "tabby", "tiger cat"}
    assert top_k(lite0, "coffee", 1)[0] == "espresso"
    assert "military uniform" in top_k(lite0, "grace_hopper", 3)


def test_lite0_matches_the_published_architecture(lite0):
    n_params = sum(p.numel() for p in lite0.parameters())
    assert round(n_params / 1e6, 1) == 4.7  # the TF model garden's table: 4.7 M parameters
    assert len(lite0.class_names) == 1000 and lite0.class_names[285] == "Egyptian cat"
    for name in lite0.layer_names:
        assert isinstance(get_layer(lite0, name), torch.nn.ReLU6)


def test_lite0_uses_tf_same_padding():
    # TF "SAME" on an even input with stride 2 pads 0 left/top and 1 right/bottom.
    conv = load_model("efficientnet_lite0").net.stem.conv
    x = torch.zeros(1, 3, 8, 8)
    x[..., 0, 0] = 1.0  # a single pixel in the top-left corner
    y = torch.nn.functional.conv2d(x, conv.weight, stride=2)  # no padding at all
    torch.testing.assert_close(conv(x)[..., :3, :3], y)


def test_models_are_frozen_and_in_eval_mode(lite0):
    assert not lite0.training and not any(m.training for m in lite0.modules())
    assert not any(p.requires_grad for p in lite0.parameters())


def test_environment_variable_chooses_the_model(monkeypatch):
    monkeypatch.delenv(MODEL_ENV_VAR, raising=False)
    assert default_model_name() == "efficientnet_lite0"
    monkeypatch.setenv(MODEL_ENV_VAR, "squeezenet1_1")
    assert default_model_name() == "squeezenet1_1"


def test_unknown_model_lists_the_available_ones():
    with pytest.raises(ValueError, match="efficientnet_lite0.*squeezenet1_1"):
        load_model("lenet")


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def test_offline_without_cached_weights_gives_one_clear_error(empty_torch_home, monkeypatch):
    monkeypatch.setenv(OFFLINE_ENV_VAR, "1")
    with pytest.raises(ModelUnavailableError) as info:
        load_model("squeezenet1_1")
    message = str(info.value)
    assert "python data_scripts/fetch_weights.py squeezenet1_1" in message
    assert "load_model('efficientnet_lite0')" in message
    assert not any(empty_torch_home.rglob("*.pth"))


def test_a_failed_download_gives_the_same_clear_error(empty_torch_home, monkeypatch):
    # Point torchvision at a port where nothing listens: a real, failing HTTP request.
    weights = torchvision.models.SqueezeNet1_1_Weights.DEFAULT
    monkeypatch.setattr(type(weights), "url", property(lambda self: "http://127.0.0.1:9/squeezenet1_1-b8a52dc0.pth"))
    monkeypatch.delenv(OFFLINE_ENV_VAR, raising=False)
    with pytest.raises(ModelUnavailableError, match=r"(?s)download failed.*fetch_weights.py squeezenet1_1"):
        load_model("squeezenet1_1")
    assert not any(empty_torch_home.rglob("*.pth"))


@pytest.mark.parametrize("name", ["squeezenet1_1", "alexnet", "resnet18", "vgg16"])
def test_torchvision_models_load_from_a_prepopulated_cache(name, empty_torch_home, monkeypatch):
    monkeypatch.setenv(OFFLINE_ENV_VAR, "1")  # proves nothing is downloaded
    weights = torchvision.models.get_model_weights(name).DEFAULT
    torch.manual_seed(0)
    reference = torchvision.models.get_model(name, weights=None)
    checkpoints = empty_torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(reference.state_dict(), checkpoints / os.path.basename(weights.url))

    model = load_model(name)
    loaded = model.net.state_dict()
    assert all(torch.equal(v, loaded[k]) for k, v in reference.state_dict().items())
    x = torch.rand(1, 3, 224, 224)
    mean = torch.tensor(weights.transforms().mean).view(1, 3, 1, 1)
    std = torch.tensor(weights.transforms().std).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference.eval()((x - mean) / std))
    for layer in model.layer_names:
        get_layer(model, layer)

import hashlib
import io
import os

import pytest
import torch
import torchvision

from cs231n_vis.hooks import get_layer
from cs231n_vis.images import sample_image, to_tensor
from cs231n_vis.models import (MODEL_ENV_VAR, OFFLINE_ENV_VAR, TORCHVISION_MODELS, ImageNetModel,
                               ModelUnavailableError, available_models, default_model_name,
                               imagenet_classes, load_model, model_spec)


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


def cache_checkpoint(name, state, torch_home, monkeypatch):
    """Save ``state`` into torch hub's cache under a name that carries its real SHA-256 prefix,
    and point the model's default weights at that name (the real files cannot be downloaded here)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    filename = f"{name}-{hashlib.sha256(buffer.getvalue()).hexdigest()[:8]}.pth"
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    (checkpoints / filename).write_bytes(buffer.getvalue())
    weights = torchvision.models.get_model_weights(name).DEFAULT
    monkeypatch.setattr(type(weights), "url", property(lambda self: f"https://example.invalid/{filename}"))
    return checkpoints / filename


@pytest.mark.parametrize("name", ["squeezenet1_1", "alexnet", "resnet18", "vgg16"])
def test_torchvision_models_load_from_a_prepopulated_cache(name, empty_torch_home, monkeypatch):
    monkeypatch.setenv(OFFLINE_ENV_VAR, "1")  # proves nothing is downloaded
    weights = torchvision.models.get_model_weights(name).DEFAULT
    torch.manual_seed(0)
    reference = torchvision.models.get_model(name, weights=None)
    cache_checkpoint(name, reference.state_dict(), empty_torch_home, monkeypatch)

    model = load_model(name)
    loaded = model.net.state_dict()
    assert all(torch.equal(v, loaded[k]) for k, v in reference.state_dict().items())
    x = torch.rand(1, 3, 224, 224)
    mean = torch.tensor(weights.transforms().mean).view(1, 3, 1, 1)
    std = torch.tensor(weights.transforms().std).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference.eval()((x - mean) / std))
    for layer in [*model.layer_names, model.cam_layer, model.classifier]:
        get_layer(model, layer)
    assert model.class_names == weights.meta["categories"]


def test_a_corrupt_cached_checkpoint_is_refused_with_a_clear_error(empty_torch_home, monkeypatch):
    monkeypatch.setenv(OFFLINE_ENV_VAR, "1")
    path = cache_checkpoint("squeezenet1_1", torchvision.models.squeezenet1_1(weights=None).state_dict(),
                            empty_torch_home, monkeypatch)
    path.write_bytes(path.read_bytes()[:-10])  # truncated after the hash was taken
    with pytest.raises(ModelUnavailableError, match=r"(?s)corrupt.*Delete the file.*fetch_weights.py squeezenet1_1"):
        load_model("squeezenet1_1")


def test_a_checkpoint_with_code_in_it_is_not_loaded(empty_torch_home, monkeypatch):
    # weights_only=True: a pickle that would run code is rejected, even with a matching hash.
    monkeypatch.setenv(OFFLINE_ENV_VAR, "1")
    cache_checkpoint("squeezenet1_1", {"payload": Exploit()}, empty_torch_home, monkeypatch)
    with pytest.raises(Exception, match="(?i)weights.only|unpickl|global"):
        load_model("squeezenet1_1")


class Exploit:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize("name", available_models())
def test_every_spec_names_layers_that_exist(name):
    spec = model_spec(name)
    if name in TORCHVISION_MODELS:
        net = torchvision.models.get_model(name, weights=None, **({"aux_logits": False, "init_weights": False}
                                                                   if name == "googlenet" else {}))
        model = ImageNetModel(net, (0.5,) * 3, (0.5,) * 3, class_names=imagenet_classes())
    else:
        model = load_model(name)  # the offline ones: lite0 and the shapes CNN
    for layer in [*spec.layers, spec.cam_layer, spec.classifier]:
        get_layer(model, layer)
    classifier = get_layer(model, spec.classifier)
    assert isinstance(classifier, (torch.nn.Linear, torch.nn.Conv2d))
    with torch.no_grad():
        out = model(torch.rand(1, 3, spec.input_size, spec.input_size))
    assert out.shape[1] == (10 if name == "shapes_cnn" else 1000)


def test_loaded_models_carry_their_spec():
    for name in ("efficientnet_lite0", "shapes_cnn"):
        model, spec = load_model(name), model_spec(name)
        assert (model.layer_names, model.cam_layer, model.classifier, model.input_size) == \
            (list(spec.layers), spec.cam_layer, spec.classifier, spec.input_size)
    from cs231n_vis.shapes import ShapesCNN
    assert ShapesCNN.cam_layer == model_spec("shapes_cnn").cam_layer  # a bare ShapesCNN agrees


def test_imagenet_class_names_come_from_the_public_metadata():
    names = imagenet_classes()
    assert len(names) == 1000 and names[285] == "Egyptian cat" and names[967] == "espresso"

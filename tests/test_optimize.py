"""optimize: the image-optimization loop on problems with known answers, total variation against
a loop, the high-frequency measure on synthetic images, and the techniques of notebook 08
(class visualization, fooling images, FGSM against Captum, DeepDream) on tiny models."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from cs231n_vis import optimize
from helpers import model_unchanged


def tiny_relu_net(seed=0, classes=5):
    """A small ReLU CNN with random weights; layers "1" and "3" are its rectifiers."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, classes)).eval()


class Linear(nn.Module):
    """logits[k] = sum(W[k] * x): the input gradient of every score is a known constant."""

    def __init__(self, weight):
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, x):
        return torch.einsum("nchw,kchw->nk", x, self.weight)


def rand(*shape, seed=0, low=0.0, high=1.0):
    return low + (high - low) * torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def squared_distance_to(a):
    return lambda x: ((x - a) ** 2).flatten(1).sum(1)


# ----------------------------------------------------------------------------- the loop

A = rand(2, 3, 5, 5, seed=1, low=0.1, high=0.9)  # the answer, inside the box
START = torch.full_like(A, 0.5)


def test_sgd_on_a_quadratic_contracts_at_the_predicted_rate():
    # x_{k+1} - a = (1 - 2 lr)(x_k - a): with lr = 0.25 the error halves at every step.
    out = optimize.optimize_image(squared_distance_to(A), START, steps=20, lr=0.25, optimizer="sgd",
                                  progress=False)
    torch.testing.assert_close(out.images - A, (START - A) * 0.5 ** 20, atol=1e-7, rtol=0)
    expected_first = ((START - A) ** 2).sum().item()
    assert out.losses[0] == pytest.approx(expected_first, rel=1e-6)


@pytest.mark.parametrize("optimizer, parameterization, lr, steps, tol", [
    ("adam", "pixel", 0.02, 400, 2e-3),
    ("adam", "sigmoid", 0.05, 400, 2e-3),
    ("lbfgs", "pixel", 1.0, 20, 1e-5),    # a quadratic: L-BFGS is exact after a few steps
    ("lbfgs", "sigmoid", 1.0, 60, 1e-4),
])
def test_minimizing_the_distance_reaches_the_point(optimizer, parameterization, lr, steps, tol):
    out = optimize.optimize_image(squared_distance_to(A), START, steps=steps, lr=lr, optimizer=optimizer,
                                  parameterization=parameterization, progress=False)
    assert (out.images - A).abs().max() < tol
    assert out.passes == steps == len(out.losses) == len(out.objective)


def test_normalized_steps_have_the_requested_length_and_end_within_one_step():
    # Each image moves by exactly lr (L2) per step, whatever the gradient's size, so it
    # reaches a and then oscillates around it at a distance of at most lr.
    lr = 0.05
    first = optimize.optimize_image(squared_distance_to(A), START, steps=1, lr=lr, optimizer="normalized",
                                    progress=False)
    torch.testing.assert_close((first.images - START).flatten(1).norm(dim=1), torch.full((2,), lr))
    direction = (A - START) / (A - START).flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    torch.testing.assert_close(first.images, START + lr * direction)
    distance = (A - START).flatten(1).norm(dim=1).max().item()
    out = optimize.optimize_image(squared_distance_to(A), START, steps=math.ceil(distance / lr) + 10, lr=lr,
                                  optimizer="normalized", progress=False)
    assert (out.images - A).flatten(1).norm(dim=1).max() <= lr + 1e-6


@pytest.mark.parametrize("parameterization", ["pixel", "sigmoid"])
def test_the_images_stay_in_the_box(parameterization):
    # The loss rewards pushing half the pixels up and half down without bound.
    w = torch.where(rand(1, 3, 5, 5, seed=2) > 0.5, 1.0, -1.0)
    out = optimize.optimize_image(lambda x: -(w * x).flatten(1).sum(1), START[:1], steps=50, lr=0.5,
                                  optimizer="sgd", parameterization=parameterization, progress=False)
    assert out.images.min() >= 0 and out.images.max() <= 1
    if parameterization == "pixel":  # projected gradient: the optimum, a corner of the box, exactly
        assert torch.equal(out.images, (w > 0).float())
    else:  # the sigmoid approaches the corner without reaching it
        assert ((out.images - (w > 0).float()).abs() < 0.1).all()


@pytest.mark.parametrize("optimizer", optimize.OPTIMIZERS)
def test_the_budget_counts_forward_passes(optimizer):
    calls = []

    def loss(x):
        calls.append(1)
        return ((x - A[:1]) ** 2).sum()

    out = optimize.optimize_image(loss, START[:1], steps=7, lr=0.1, optimizer=optimizer, progress=False)
    assert len(calls) == out.passes == 7 == len(out.losses)


def test_stop_ends_the_loop_before_the_step():
    calls = []

    def loss(x):
        calls.append(x.detach().clone())
        return ((x - A) ** 2).flatten(1).sum(1)

    out = optimize.optimize_image(loss, START, steps=50, lr=0.25, optimizer="sgd", progress=False,
                                  stop=lambda: len(calls) == 3)
    assert out.passes == 3
    assert torch.equal(out.images, calls[-1])  # the third pass's image: no step after it


def test_l2_and_tv_terms_enter_the_loss():
    x0 = rand(1, 3, 4, 4, seed=3)
    out = optimize.optimize_image(lambda x: x.sum() * 0, x0, steps=1, l2=2.0, tv=3.0, progress=False)
    expected = 2.0 * ((x0 - 0.5) ** 2).sum() + 3.0 * optimize.total_variation(x0).sum()
    assert out.losses[0] == pytest.approx(expected.item(), rel=1e-6)
    assert out.objective[0] == 0


def test_jitter_shows_the_loss_a_rolled_image_and_is_deterministic_by_seed():
    # loss = sum(w * roll(x, s)): its gradient is roll(w, -s). One SGD step with lr 1 moves
    # x by -roll(w, -s) for the drawn shift s, which must lie within the jitter.
    w = rand(1, 3, 8, 8, seed=4)
    x0 = torch.full((1, 3, 8, 8), 0.5)
    jitter = 2
    run = lambda seed: optimize.optimize_image(lambda x: (w * x).sum(), x0, steps=1, lr=0.01, optimizer="sgd",
                                               jitter=jitter, seed=seed, progress=False).images
    moves = {seed: (x0 - run(seed)) / 0.01 for seed in range(6)}
    shifts = [(dy, dx) for dy in range(-jitter, jitter + 1) for dx in range(-jitter, jitter + 1)]
    for move in moves.values():
        assert sum(torch.allclose(move, torch.roll(w, (-dy, -dx), (2, 3)), atol=1e-5) for dy, dx in shifts) == 1
    assert len({tuple(m.flatten().tolist()) for m in moves.values()}) > 1, "the seed must change the shifts"
    # Same seed, same result (over many steps with blur too); no global random state used.
    state = torch.random.get_rng_state()
    kwargs = dict(steps=15, lr=0.1, jitter=3, blur_every=4, progress=False)
    a = optimize.optimize_image(lambda x: (w * x).sum(), x0, seed=7, **kwargs).images
    b = optimize.optimize_image(lambda x: (w * x).sum(), x0, seed=7, **kwargs).images
    assert torch.equal(a, b)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_periodic_blur_is_the_package_blur():
    x0 = rand(1, 3, 9, 9, seed=5)
    out = optimize.optimize_image(lambda x: x.sum() * 0, x0, steps=3, blur_every=3, blur_sigma=0.8, progress=False)
    from cs231n_vis.images import gaussian_blur
    torch.testing.assert_close(out.images, gaussian_blur(x0, 0.8).clamp(0, 1))


def test_optimize_image_leaves_the_model_unchanged():
    net = tiny_relu_net().train()
    x0 = rand(2, 3, 12, 12, seed=6)
    with model_unchanged(net):
        out = optimize.optimize_image(lambda x: -net(x)[:, 1], x0, steps=4, model=net, jitter=2, progress=False)
    assert out.passes == 4
    assert not torch.equal(out.images, x0)


@pytest.mark.parametrize("kwargs, words", [
    (dict(optimizer="rmsprop"), ["optimizer", "rmsprop"]),
    (dict(parameterization="tanh"), ["parameterization", "tanh"]),
    (dict(steps=0), ["steps", "0"]),
    (dict(steps=2.5), ["steps", "2.5"]),
    (dict(jitter=-1), ["jitter"]),
    (dict(blur_every=True), ["blur_every"]),
    (dict(lr=0.0), ["lr", "> 0"]),
    (dict(l2=-1.0), ["l2", "≥ 0"]),
    (dict(tv=float("nan")), ["tv"]),
    (dict(blur_sigma=0), ["blur_sigma"]),
])
def test_bad_options_are_refused_with_a_clear_message(kwargs, words):
    options = dict(steps=2) | kwargs
    with pytest.raises(ValueError) as error:
        optimize.optimize_image(lambda x: x.sum(), START, progress=False, **options)
    assert all(word in str(error.value) for word in words), str(error.value)


def test_bad_init_is_refused_by_name():
    with pytest.raises(ValueError, match="init must have values in"):
        optimize.optimize_image(lambda x: x.sum(), START + 1, steps=1, progress=False)


# ----------------------------------------------------------------------------- total variation

def tv_loop(x, beta):
    n, c, h, w = x.shape
    totals = []
    for i in range(n):
        total = 0.0
        for ch in range(c):
            for r in range(h - 1):
                for col in range(w - 1):
                    v = x[i, ch, r, col].item()
                    dy = x[i, ch, r + 1, col].item() - v
                    dx = x[i, ch, r, col + 1].item() - v
                    total += (dy * dy + dx * dx) ** (beta / 2)
        totals.append(total)
    return torch.tensor(totals, dtype=torch.float64)


@pytest.mark.parametrize("beta", [2.0, 1.0])
def test_total_variation_matches_an_explicit_loop(beta):
    x = rand(2, 3, 4, 5, seed=8).double()
    torch.testing.assert_close(optimize.total_variation(x, beta=beta), tv_loop(x, beta), rtol=1e-9, atol=1e-9)
    # A flat image has no variation (up to β = 1's ε: 27 terms of sqrt(1e-12) here).
    assert optimize.total_variation(torch.full((1, 3, 4, 4), 0.3), beta=beta).item() < 1e-4


# ----------------------------------------------------------------------------- high-frequency energy

def test_high_frequency_energy_on_images_with_known_spectra():
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(8, 3, 64, 64, generator=g)
    for cutoff in (0.1, 0.25, 0.4):  # white noise: the share of the frequency square outside the radius
        assert optimize.high_frequency_energy(noise, cutoff).mean().item() == pytest.approx(
            1 - math.pi * cutoff ** 2, abs=0.015)
    ramp = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(1, 3, 64, 64)
    assert optimize.high_frequency_energy(ramp).item() < 1e-3
    i = torch.arange(64)
    checkerboard = ((i[:, None] + i[None, :]) % 2).float().expand(1, 3, 64, 64)
    assert optimize.high_frequency_energy(checkerboard).item() > 0.99
    wave = lambda f: (0.5 + 0.5 * torch.cos(2 * math.pi * f * i.float())).view(1, 1, 1, 64).expand(1, 3, 64, 64)
    assert optimize.high_frequency_energy(wave(0.1)).item() < 0.01   # period 10 pixels: below 0.25
    assert optimize.high_frequency_energy(wave(0.4)).item() > 0.95   # period 2.5 pixels: above
    # A fraction: blind to contrast and brightness; a flat image has no power at all.
    torch.testing.assert_close(optimize.high_frequency_energy(0.1 * noise + 0.4),
                               optimize.high_frequency_energy(noise), atol=1e-5, rtol=0)
    assert optimize.high_frequency_energy(torch.full((1, 3, 8, 8), 0.3)).item() == 0.0


def test_high_frequency_energy_equals_a_dct_computation():
    # The mirrored image's DFT has the magnitudes of the image's DCT-II: |Y[k]| = |DCT[k]| for
    # 0 <= k < N, Y[N] = 0, |Y[2N - k]| = |Y[k]|. So the fraction is a DCT power fraction in which
    # every nonzero frequency index is counted twice per axis.
    scipy_fft = pytest.importorskip("scipy.fft")
    x = rand(2, 3, 12, 10, seed=9)
    cutoff = 0.2
    expected = []
    for image in x.double().numpy():
        image = image - image.mean(axis=(1, 2), keepdims=True)
        power = (scipy_fft.dctn(image, type=2, axes=(1, 2)) ** 2).sum(0)
        ky, kx = np.arange(12)[:, None], np.arange(10)[None, :]
        weight = np.where(ky > 0, 2, 1) * np.where(kx > 0, 2, 1)
        radius = np.sqrt((ky / 24) ** 2 + (kx / 20) ** 2)
        expected.append((weight * power)[radius > cutoff].sum() / (weight * power).sum())
    torch.testing.assert_close(optimize.high_frequency_energy(x, cutoff),
                               torch.tensor(expected, dtype=torch.float32), atol=1e-5, rtol=0)


def test_high_frequency_energy_refuses_bad_input():
    with pytest.raises(ValueError, match="shape"):
        optimize.high_frequency_energy(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="cutoff"):
        optimize.high_frequency_energy(torch.rand(1, 3, 8, 8), cutoff=0.9)


# ----------------------------------------------------------------------------- class visualization

def test_class_visualization_takes_the_normalized_regularized_step():
    # Linear scores: d s_c / dx = W[c]. One ascent step on s_c - l2 ||x - 1/2||^2 moves x by
    # lr * g / ||g||, g = W[c] - 2 l2 (x - 1/2).
    weight = rand(3, 3, 6, 6, seed=10, low=-1, high=1)
    net = Linear(weight)
    init = rand(2, 3, 6, 6, seed=11, low=0.4, high=0.6)
    with model_unchanged(net):
        out = optimize.class_visualization(net, [2, 0], init=init, steps=1, lr=0.05, l2=0.3, progress=False)
    g = weight[[2, 0]] - 2 * 0.3 * (init - 0.5)
    expected = init + 0.05 * g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    torch.testing.assert_close(out.images, expected)
    torch.testing.assert_close(torch.tensor(out.objective[0]), -(weight[[2, 0]] * init).sum())


def _init(size, n, seed, std=0.05):
    """class_visualization's documented default start: mid-grey plus seeded Gaussian noise."""
    noise = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))
    return (0.5 + std * noise).clamp(0, 1)


def test_class_visualization_raises_the_score_and_treats_the_images_independently():
    net = tiny_relu_net(seed=1)
    options = dict(steps=12, lr=0.5, l2=0.01, jitter=2, blur_every=4, seed=3, progress=False)
    with model_unchanged(net):
        both = optimize.class_visualization(net, [1, 4], size=16, **options)
    assert both.images.shape == (2, 3, 16, 16)
    start = _init(16, 2, seed=3)
    with torch.no_grad():
        before, after = (net(z)[[0, 1], [1, 4]] for z in (start, both.images))
    assert (after > before).all(), (before, after)
    assert torch.equal(optimize.class_visualization(net, [1, 4], init=start, **options).images, both.images)
    # One class at a time from the same start and shifts: the same image (no interaction in a batch).
    one = optimize.class_visualization(net, 4, init=start[1:], **options)
    torch.testing.assert_close(one.images, both.images[1:], atol=1e-5, rtol=0)


def test_class_visualization_refuses_bad_targets():
    net = tiny_relu_net()
    with pytest.raises(ValueError, match="outside 0..4"):
        optimize.class_visualization(net, 7, size=8, steps=1, progress=False)
    with pytest.raises(ValueError, match="one starting image per class"):
        optimize.class_visualization(net, [1, 2], init=torch.rand(1, 3, 8, 8), steps=1, progress=False)


# ----------------------------------------------------------------------------- fooling images

def test_fooling_image_steps_match_a_hand_loop():
    # Two linear classes: the target's score gradient is W[1] everywhere, so each step adds
    # step * W[1] / ||W[1]||; count the steps until class 1 wins with an explicit loop.
    weight = rand(2, 3, 5, 5, seed=12, low=-1, high=1)
    net = Linear(weight)
    x = rand(3, 3, 5, 5, seed=13, low=0.45, high=0.55)
    x[2] = 0.5 + 0.05 * weight[1].sign()  # this one is already class 1
    step = 0.02
    with model_unchanged(net):
        fooled = optimize.fooling_image(net, x, 1, step=step, max_steps=200, progress=False)
    direction = weight[1] / weight[1].norm()
    for i in range(3):
        y, k = x[i].clone(), 0
        while (weight * y).flatten(1).sum(1).argmax().item() != 1:
            y, k = y + step * direction, k + 1
        assert fooled.steps[i].item() == k
        torch.testing.assert_close(fooled.images[i], y, atol=1e-5, rtol=0)
    assert fooled.steps[2].item() == 0 and torch.equal(fooled.images[2], x[2])
    assert fooled.fooled.all()


def test_fooling_image_reports_failure_within_the_budget():
    weight = rand(2, 3, 5, 5, seed=12, low=-1, high=1)
    x = rand(1, 3, 5, 5, seed=14, low=0.45, high=0.55)
    net = Linear(weight)
    if net(x).argmax().item() == 1:
        x = 1 - x
    out = optimize.fooling_image(net, x, 1, step=1e-4, max_steps=3, progress=False)
    assert not out.fooled.any() and out.steps.tolist() == [3]
    torch.testing.assert_close((out.images - x).norm(), torch.tensor(3e-4), atol=1e-6, rtol=0)


def test_fooling_image_on_a_relu_net_reaches_the_target_and_leaves_the_model():
    net = tiny_relu_net(seed=2).train()
    x = rand(2, 3, 16, 16, seed=15)
    with model_unchanged(net):
        out = optimize.fooling_image(net, x, 3, step=0.5, max_steps=300, progress=False)
    assert out.fooled.all()
    with torch.no_grad():
        assert (net.eval()(out.images).argmax(1) == 3).all()
    with pytest.raises(ValueError, match="needs a target"):
        optimize.fooling_image(net, x, None, progress=False)


# ----------------------------------------------------------------------------- FGSM

def test_fgsm_is_the_sign_of_the_cross_entropy_gradient():
    net = tiny_relu_net(seed=4)
    x = rand(3, 3, 12, 12, seed=16)
    y = torch.tensor([0, 2, 4])
    xg = x.clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(net(xg), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, xg)
    with model_unchanged(net):
        ours = optimize.fgsm(net, x, y, epsilon=0.03, progress=False)
        pulled = optimize.fgsm(net, x, y, epsilon=0.03, targeted=True, progress=False)
        predicted = optimize.fgsm(net, x, epsilon=0.03, progress=False)
    torch.testing.assert_close(ours, (x + 0.03 * grad.sign()).clamp(0, 1))
    torch.testing.assert_close(pulled, (x - 0.03 * grad.sign()).clamp(0, 1))
    again = optimize.fgsm(net, x, net(x).argmax(1), epsilon=0.03, progress=False)
    assert torch.equal(predicted, again)
    assert torch.equal(optimize.fgsm(net, x, y, epsilon=0, progress=False), x)
    assert ((ours - x).abs().max() - 0.03).abs() < 1e-6


@pytest.mark.parametrize("targeted", [False, True])
def test_fgsm_agrees_with_captum(targeted):
    robust = pytest.importorskip("captum.robust")
    net = tiny_relu_net(seed=5)
    x = rand(4, 3, 16, 16, seed=17)
    y = torch.tensor([1, 0, 3, 3])
    theirs = robust.FGSM(net, loss_func=nn.CrossEntropyLoss(reduction="none"), lower_bound=0.0,
                         upper_bound=1.0).perturb(x, 4 / 255, y, targeted=targeted)
    with model_unchanged(net):
        ours = optimize.fgsm(net, x, y, epsilon=4 / 255, targeted=targeted, zero_threshold=1e-6, batch_size=3,
                             progress=False)
        plain = optimize.fgsm(net, x, y, epsilon=4 / 255, targeted=targeted, progress=False)
    # Captum leaves pixels with |gradient| <= 1e-6 alone; with that threshold both take the sign of the
    # same float32 gradient. Tolerance 1e-6: a sign flip would differ by 4/255 (measured: identical).
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    # With the paper's plain sign (threshold 0) only those tiny-gradient pixels differ.
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(nn.functional.cross_entropy(net(xg), y, reduction="sum"), xg)
    differ = (plain - theirs).abs() > 1e-6
    assert differ.any(), "this case has gradients below Captum's threshold"
    assert (grad[differ].abs() <= 1e-6).all()


def test_fgsm_keeps_the_target_term_when_float32_softmax_saturates():
    # Class 0 reads the red channel (weight 10), class 1 the green one; the logit gap is 38, so
    # float32's softmax is exactly one-hot and a float32 loss gives the gradient p_1 * w_1 only
    # (green up, red untouched). The true gradient, p_1 * (w_1 - w_0), also lowers red.
    w = torch.zeros(2, 3, 2, 2)
    w[0, 0], w[1, 1] = 10.0, 1.0
    x = torch.full((1, 3, 2, 2), 0.5)
    x[0, 0] = 1.0
    net = Linear(w)
    xg = x.clone().requires_grad_(True)
    (float32_grad,) = torch.autograd.grad(nn.functional.cross_entropy(net(xg), torch.tensor([0])), xg)
    assert (float32_grad[0, 0] == 0).all(), "the premise: float32 loses the red term here"
    got = optimize.fgsm(net, x, 0, epsilon=0.1, progress=False)
    expected = x.clone()
    expected[0, 0], expected[0, 1] = 0.9, 0.6
    torch.testing.assert_close(got, expected)


def test_fgsm_refuses_a_bad_epsilon():
    with pytest.raises(ValueError, match="epsilon must be a number in"):
        optimize.fgsm(tiny_relu_net(), torch.rand(1, 3, 8, 8), epsilon=8, progress=False)


# ----------------------------------------------------------------------------- DeepDream

def test_deepdream_step_is_a_normalized_step_on_the_layer_energy():
    net = tiny_relu_net(seed=6)
    x = rand(2, 3, 12, 12, seed=18, low=0.2, high=0.8)
    with model_unchanged(net):
        out = optimize.deepdream(net, x, "3", octaves=1, steps=1, step_size=0.01, jitter=0, progress=False)
    xg = x.clone().requires_grad_(True)
    energy = net[:4](xg).pow(2).flatten(1).mean(1).sum()
    (grad,) = torch.autograd.grad(energy, xg)
    length = 0.01 * math.sqrt(3 * 12 * 12)  # step_size is the RMS change per pixel
    expected = (x + length * grad / grad.flatten(1).norm(dim=1).view(-1, 1, 1, 1)).clamp(0, 1)
    torch.testing.assert_close(out.images, expected)
    rms = (out.images - x).pow(2).flatten(1).mean(1).sqrt()
    torch.testing.assert_close(rms, torch.full((2,), 0.01), atol=1e-4, rtol=0)


def test_deepdream_over_octaves_raises_the_layer_energy():
    net = tiny_relu_net(seed=7).train()
    x = rand(1, 3, 64, 48, seed=19)
    with model_unchanged(net):
        out = optimize.deepdream(net, x, "1", octaves=2, octave_scale=1.5, steps=5, step_size=0.01, jitter=2,
                                 progress=False)
    assert out.images.shape == x.shape and out.passes == 10 == len(out.objective)
    with torch.no_grad():
        before, after = (net.eval()[:2](z).pow(2).mean() for z in (x, out.images))
    assert after > 1.2 * before
    assert out.images.min() >= 0 and out.images.max() <= 1


def test_deepdream_refuses_bad_options():
    net, x = tiny_relu_net(), torch.rand(1, 3, 40, 40)
    with pytest.raises(ValueError, match="smallest octave"):
        optimize.deepdream(net, x, "1", octaves=4, progress=False)
    with pytest.raises(KeyError, match="no layer named"):
        optimize.deepdream(net, x, "conv9", octaves=1, progress=False)
    with pytest.raises(ValueError, match="octave_scale"):
        optimize.deepdream(net, x, "1", octave_scale=1.0, progress=False)

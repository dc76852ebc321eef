"""Gradient saliency and its family: which input pixels would change the class score most?

One mechanism, ``attribution.input_gradient`` (d score / d image), and small
variations of it:

- ``gradient``: the plain gradient (Simonyan et al., arXiv:1312.6034).
- ``guided_backprop`` / ``deconvnet``: the same backward pass with another rule at
  every rectifier (``hooks.override_rectifiers``: Springenberg et al.,
  arXiv:1412.6806; Zeiler & Fergus, arXiv:1311.2901).
- ``input_x_gradient``: image × gradient (Shrikumar et al., arXiv:1605.01713).
- ``smoothgrad``: the gradient averaged over noisy copies (Smilkov et al., arXiv:1706.03825).
- ``integrated_gradients``: the gradient averaged along a straight path from a
  baseline, times (image - baseline) (Sundararajan et al., arXiv:1703.01365), and
  ``completeness_error``, which measures how far its sum is from f(x) - f(baseline).
- ``saliency_map``: attributions (N, 3, H, W) → one map per image (N, H, W);
  ``clip_quantile`` scales maps for display, ``top_share`` measures how peaked they are.
- ``cascading_randomization``, ``spearman`` and ``ssim``: the model-randomization sanity
  check of Adebayo et al. (arXiv:1810.03292).

Every method returns attributions (N, 3, H, W) with the images' shape, on their
device, and leaves the model exactly as it found it.
"""

from __future__ import annotations

import copy
from contextlib import nullcontext
from typing import Callable

import torch
from torch import nn

from .attribution import DEFAULT_BATCH_SIZE, Target, batched, check_images, input_gradient, resolve_target
from .hooks import frozen, get_layer, override_rectifiers

# Integrated gradients: path points per forward+backward pass. "auto" (attribution.batched) finds
# the fastest on the job itself: on lite0 (224 x 224, 2 threads) the best was 16 on one session's
# 2-core CPU and 8 on another's, where 16 took 1.4x as long; the points' gradients came out
# bit-identical at 8, 16 and 32 there (tests/test_saliency.py checks they agree).
IG_BATCH_SIZE = "auto"
RULES = ("midpoint", "trapezoid")
REDUCTIONS = ("absmax", "abs_sum", "sum")
METHODS = ("gradient", "input_x_gradient", "smoothgrad", "integrated_gradients",
           "guided_backprop", "deconvnet")


def _gradient(model: nn.Module, x: torch.Tensor, target: Target, rule: str | None = None,
              check: bool = True) -> torch.Tensor:
    """The family's one mechanism: d(target score)/dx, with the rectifiers' backward ``rule``
    (None: the true gradient; "guided" or "deconv": ``hooks.override_rectifiers``)."""
    with override_rectifiers(model, rule) if rule is not None else nullcontext():
        return input_gradient(model, x, target, check=check)


def _check_batch_size(batch_size, auto: bool = False) -> None:
    if auto and batch_size == "auto":
        return
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        allowed = 'a positive int or "auto"' if auto else "a positive int"
        raise ValueError(f"batch_size must be {allowed}; got {batch_size!r}.")


def _per_image(model: nn.Module, images: torch.Tensor, target: Target, rule: str | None,
               batch_size: int, progress: bool, desc: str) -> torch.Tensor:
    images = check_images(images, model=model)
    _check_batch_size(batch_size)
    return batched(lambda chunk, t: _gradient(model, chunk, t, rule), images, target,
                   batch_size=batch_size, progress=progress, desc=desc)


def gradient(model: nn.Module, images: torch.Tensor, target: Target = None, *,
             batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = False) -> torch.Tensor:
    """The signed input gradient d s_c / d x (Simonyan et al., arXiv:1312.6034): (N, 3, H, W).

    Args:
        model: a classifier returning logits (N, K); run in eval mode with frozen
            parameters and left exactly as it was.
        images: (N, 3, H, W) float in [0, 1].
        target: None (each image's predicted class), an int, or N class indices.
        batch_size: images per forward+backward pass.
        progress: show a ``tqdm.auto`` bar.

    s_c is the class *score* (logit, before softmax). ``saliency_map(result)``
    gives the paper's map, max_channels |d s_c / d x|.

    Known limits: a gradient is local — it says how the score changes for an
    infinitesimal change of each pixel, not what the pixel contributes; it is
    noisy (SmoothGrad), saturates where the score is flat (IG), and its sign
    is hard to read.
    """
    return _per_image(model, images, target, None, batch_size, progress, "gradient")


def input_x_gradient(model: nn.Module, images: torch.Tensor, target: Target = None, *,
                     batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = False) -> torch.Tensor:
    """images × d s_c / d images (Shrikumar et al., arXiv:1605.01713): (N, 3, H, W).

    Arguments as in ``gradient``. For a linear model it is each pixel's exact
    contribution to the score relative to a black image (IG with a black baseline
    and one step). Known limits: it is zero wherever the image is black, whatever
    the pixel's importance, and inherits the gradient's noise; on [0, 1] images
    the bright regions dominate.
    """
    images = check_images(images, model=model)
    return images.detach() * gradient(model, images, target, batch_size=batch_size, progress=progress)


def guided_backprop(model: nn.Module, images: torch.Tensor, target: Target = None, *,
                    batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = False) -> torch.Tensor:
    """Guided backpropagation (Springenberg et al., arXiv:1412.6806): (N, 3, H, W).

    The backward pass of ``gradient`` with one change at every ``nn.ReLU`` and
    ``nn.ReLU6`` module: a gradient passes only where the forward pass let the
    input through *and* the gradient is positive (``hooks.override_rectifiers``
    with rule "guided"). Unlike Captum's ``GuidedBackprop`` and pytorch-grad-cam's
    ``GuidedBackpropReLUModel``, which replace ``nn.ReLU`` only, this applies the
    rule to ReLU6 too (the default model's rectifiers): those libraries return the
    plain gradient on efficientnet_lite0.

    Arguments as in ``gradient``. Raises a RuntimeError when the model calls a
    rectifier as a function (``F.relu``): its rule cannot be replaced.

    Known limits: the maps look sharp but are largely independent of the class
    and of the higher layers' weights — they reconstruct the image's edges
    (Adebayo et al., arXiv:1810.03292; Nie et al., arXiv:1805.07039). It is not
    the gradient of anything.
    """
    return _per_image(model, images, target, "guided", batch_size, progress, "guided backprop")


def deconvnet(model: nn.Module, images: torch.Tensor, target: Target = None, *,
              batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = False) -> torch.Tensor:
    """The DeconvNet's backward pass (Zeiler & Fergus, arXiv:1311.2901): (N, 3, H, W).

    As ``guided_backprop``, but every rectifier lets relu(gradient) through whatever
    the forward pass did (rule "deconv"; Springenberg et al., arXiv:1412.6806, fig. 1,
    compare the three rules). Max-pooling switches are kept (autograd routes the
    gradient to the max, as the DeconvNet's switches do).

    Known limits: as guided backprop's, and more so: the rule ignores the forward
    pass at the rectifiers, so the image reaches the map only through max-pooling
    switches. A network without max-pooling (efficientnet_lite0) gets a map that does
    not depend on the image at all — notebook 06 measures a Spearman correlation of
    0.99-1.00 between the maps of different photos.
    """
    return _per_image(model, images, target, "deconv", batch_size, progress, "deconvnet")


def _normal(shape, generator: torch.Generator) -> torch.Tensor:
    """Standard normal draws (float64, on the CPU) from ``generator``.

    Why float64: torch's float32 ``randn`` on the CPU has a vectorized (AVX2) path that gives
    different numbers from the default one (measured: same seed, ``ATEN_CPU_CAPABILITY=default``
    vs AVX2, different draws), so noisy copies and random weights would depend on the CPU; the
    float64 draws were the same under default, AVX2 and AVX512. The caller casts them.
    """
    return torch.randn(shape, generator=generator, dtype=torch.float64)


def _noise_std(images: torch.Tensor, noise: float) -> torch.Tensor:
    """SmoothGrad's sigma per image: ``noise`` × (max - min) of the image, shape (N, 1, 1, 1)."""
    flat = images.flatten(1)
    return (noise * (flat.amax(1) - flat.amin(1))).view(-1, 1, 1, 1)


def smoothgrad(model: nn.Module, images: torch.Tensor, target: Target = None, *, samples: int = 25,
               noise: float = 0.15, seed: int = 0, batch_size: int = DEFAULT_BATCH_SIZE,
               progress: bool = False) -> torch.Tensor:
    """SmoothGrad (Smilkov et al., arXiv:1706.03825): the gradient averaged over noisy copies.

    ``(1/S) sum_s d s_c / d x evaluated at x + eps_s``, eps_s ~ N(0, sigma²) per pixel,
    with sigma = ``noise`` × (max(x) - min(x)) for each image (the paper's "noise
    level", a fraction of the input range; it found 10-20 % best). Returns (N, 3, H, W).

    Args:
        images: (N, 3, H, W) float in [0, 1]; the noisy copies leave [0, 1] (they
            are not clipped, as in the paper and in Captum's ``NoiseTunnel``).
        target: None (the predicted class of the *clean* image), an int or N ints;
            the same class is explained for every noisy copy.
        samples: S, noisy copies per image.
        noise: sigma as a fraction of each image's range (0 gives the plain gradient).
        seed: the noise is drawn on the CPU from ``torch.Generator().manual_seed(seed)``
            (float64 ``randn``, S x 3 x H x W per image, image after image, then cast), so
            it does not depend on the device, the CPU or ``batch_size``; the global
            random state is not used.
        batch_size: noisy copies per forward+backward pass.

    Known limits: S times the cost of a gradient; the map is an estimate, with a
    sampling error that shrinks as 1/sqrt(S); it smooths the gradient's
    noise without making it more faithful (the average of local gradients is
    still a local, not a contribution, measure).
    """
    images = check_images(images, model=model)
    _check_batch_size(batch_size)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be a positive int (noisy copies per image); got {samples!r}.")
    if not (isinstance(noise, (int, float)) and not isinstance(noise, bool) and noise >= 0):
        raise ValueError(f"noise must be a number >= 0 (sigma as a fraction of the image's range, "
                         f"e.g. 0.15); got {noise!r}.")
    x = images.detach()
    target = resolve_target(model, x, target)
    sigma = _noise_std(x, float(noise))
    generator = torch.Generator().manual_seed(seed)

    def one_image(index: torch.Tensor, _target) -> torch.Tensor:
        i = int(index[0])  # one image per call, in order: the draws do not depend on batch_size
        eps = _normal((samples, *x.shape[1:]), generator).to(x.device, x.dtype)
        total = torch.zeros_like(x[i])
        for start in range(0, samples, batch_size):
            noisy = x[i] + sigma[i] * eps[start:start + batch_size]
            total += _gradient(model, noisy, int(target[i]), check=False).sum(0)
        return (total / samples)[None]

    return batched(one_image, torch.arange(len(x)), None, batch_size=1, progress=progress,
                   desc="smoothgrad")


def _path(steps: int, rule: str, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Points alpha_k in [0, 1] and weights w_k of the Riemann sum of int_0^1 g(alpha) d alpha."""
    if rule == "midpoint":  # alpha_k = (k + 1/2) / m, w_k = 1/m: Captum's "riemann_middle"
        return (torch.arange(steps, dtype=dtype) + 0.5) / steps, torch.full((steps,), 1 / steps, dtype=dtype)
    if steps < 2:
        raise ValueError(f"the trapezoid rule needs steps >= 2; got {steps}.")
    # alpha_k = k / (m - 1), weights 1/(m - 1), end points halved (they sum to 1). Captum's
    # "riemann_trapezoid" takes the same points but weights 1/m (summing to 1 - 1/m), so its
    # integral is (m - 1)/m of this one (tests/test_saliency.py checks the relation).
    weights = torch.full((steps,), 1 / (steps - 1), dtype=dtype)
    weights[[0, -1]] /= 2
    return torch.linspace(0, 1, steps, dtype=dtype), weights


def _baseline(baseline, images: torch.Tensor) -> torch.Tensor:
    """The baseline as a tensor like ``images``: None → black, a number, or a broadcastable tensor."""
    if baseline is None:
        return torch.zeros_like(images)
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        if not 0 <= baseline <= 1:
            raise ValueError(f"baseline must be in [0, 1] like the images (0 = black, 0.5 = grey); "
                             f"got {baseline}.")
        return torch.full_like(images, float(baseline))
    if not isinstance(baseline, torch.Tensor):
        raise TypeError(f"baseline must be None (black), a number in [0, 1] or a tensor broadcastable "
                        f"to the images {tuple(images.shape)}; got {type(baseline).__name__}.")
    try:
        base = torch.broadcast_to(baseline.detach().to(images.device, images.dtype), images.shape)
    except RuntimeError:
        raise ValueError(f"baseline of shape {tuple(baseline.shape)} cannot be broadcast to the images "
                         f"{tuple(images.shape)}; use (3, 1, 1) for a colour, (1, 3, H, W) or "
                         f"(N, 3, H, W) for images.") from None
    if not torch.isfinite(base).all() or base.min() < 0 or base.max() > 1:
        raise ValueError(f"baseline must hold finite values in [0, 1] like the images; got values in "
                         f"[{base.min().item():.4g}, {base.max().item():.4g}].")
    return base.contiguous()


def integrated_gradients(model: nn.Module, images: torch.Tensor, target: Target = None, *,
                         baseline=None, steps: int = 32, rule: str = "midpoint",
                         batch_size: int | str = IG_BATCH_SIZE, progress: bool = False) -> torch.Tensor:
    """Integrated Gradients (Sundararajan et al., arXiv:1703.01365): (N, 3, H, W).

    ``(x - x') * int_0^1 d s_c/d x evaluated at x' + alpha (x - x') d alpha``, the
    integral approximated by a Riemann sum of ``steps`` gradients:

    - ``rule="midpoint"`` (default): alpha_k = (k + 1/2)/m, weights 1/m (Captum's
      ``method="riemann_middle"``);
    - ``rule="trapezoid"``: alpha_k = k/(m - 1), weights 1/(m - 1) with the end
      points' halved (Captum's ``"riemann_trapezoid"`` uses weights 1/m, so it
      returns (m - 1)/m of this).

    Args:
        images: (N, 3, H, W) float in [0, 1].
        target: None (the predicted class of x), an int or N ints.
        baseline: x', "the absence of signal": None = black (zeros), a number in
            [0, 1] (0.5 = grey), or a tensor in [0, 1] broadcastable to the images
            (a colour (3, 1, 1), a blurred copy (N, 3, H, W), ...).
        steps: m, gradients per image.
        batch_size: path points per forward+backward pass (points of several
            images share a pass), or "auto" (the default): the first passes try 8,
            16, 32, ... points and the fastest per point is kept for this model,
            image size, device and thread count (``attribution.batched``).

    Completeness: the attributions sum to s_c(x) - s_c(x') up to the Riemann
    sum's error, which ``completeness_error`` measures (it shrinks with ``steps``).

    Known limits: the result depends on the baseline (a black baseline gives no
    attribution to black pixels); ``steps`` times the cost of a gradient; the
    straight path goes through images unlike any the model was trained on.
    """
    images = check_images(images, model=model)
    _check_batch_size(batch_size, auto=True)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int (gradients along the path); got {steps!r}.")
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}; got {rule!r}.")
    x = images.detach()
    base = _baseline(baseline, x)
    target = resolve_target(model, x, target)
    alphas, weights = (t.to(x.device) for t in _path(steps, rule, x.dtype))
    total = torch.zeros_like(x)
    # One job per (image, path point); a chunk of jobs is one forward+backward pass.
    jobs = torch.stack(torch.meshgrid(torch.arange(len(x)), torch.arange(steps), indexing="ij"), -1)
    jobs = jobs.reshape(-1, 2).to(x.device)

    def run(chunk: torch.Tensor, _target) -> torch.Tensor:
        i, k = chunk[:, 0], chunk[:, 1]
        a = alphas[k].view(-1, 1, 1, 1)
        points = base[i] + a * (x[i] - base[i])  # input_gradient makes them channels-last
        # check=False: a point may round a hair outside [0, 1]; x and x' were checked.
        grads = _gradient(model, points, target[i], check=False)
        total.index_add_(0, i, grads * weights[k].view(-1, 1, 1, 1))
        return chunk.new_empty(len(chunk), 0)

    # What the cost of a pass depends on, for batch_size="auto".
    key = ("integrated_gradients", type(model).__qualname__, sum(p.numel() for p in model.parameters()),
           tuple(x.shape[1:]), x.dtype, x.device.type, torch.get_num_threads())
    batched(run, jobs, None, batch_size=batch_size, progress=progress, desc="integrated gradients", key=key)
    return (x - base) * total


def completeness_error(model: nn.Module, images: torch.Tensor, attributions: torch.Tensor,
                       target: Target = None, *, baseline=None) -> torch.Tensor:
    """sum(attributions) - (s_c(x) - s_c(x')) for each image: a tensor (N,).

    The completeness axiom of Integrated Gradients (arXiv:1703.01365, §3): exact
    IG attributions sum to the difference of the target's logit between the image
    and the baseline. A Riemann sum misses it by an error that shrinks with the
    number of steps; the paper suggests steps such that the error is within 5 % of
    the difference. Pass the same ``target`` and ``baseline`` as to
    ``integrated_gradients`` (None: the predicted class of x; black).
    """
    images = check_images(images, model=model)
    if not isinstance(attributions, torch.Tensor) or attributions.shape != images.shape:
        got = tuple(attributions.shape) if isinstance(attributions, torch.Tensor) else type(attributions).__name__
        raise ValueError(f"attributions must have the images' shape {tuple(images.shape)}; got {got}.")
    x = images.detach()
    base = _baseline(baseline, x)
    with frozen(model), torch.no_grad():
        logits = model(x)
        target = resolve_target(model, x, target, logits=logits)
        difference = logits.gather(1, target[:, None])[:, 0] - model(base).gather(1, target[:, None])[:, 0]
    return attributions.detach().flatten(1).sum(1).to(difference.dtype) - difference


def saliency_map(attributions: torch.Tensor, *, reduce: str = "absmax") -> torch.Tensor:
    """One map per image from attributions (N, 3, H, W): a tensor (N, H, W).

    ``reduce``: ``"absmax"`` — max over the channels of |a| (Simonyan et al.,
    arXiv:1312.6034); ``"abs_sum"`` — sum of |a| over the channels; ``"sum"`` —
    the signed sum over the channels (for IG and input × gradient: each pixel's
    contribution, which keeps completeness).
    """
    if not isinstance(attributions, torch.Tensor) or attributions.dim() != 4:
        got = tuple(attributions.shape) if isinstance(attributions, torch.Tensor) else type(attributions).__name__
        raise ValueError(f"attributions must be a tensor (N, C, H, W); got {got}. One image: a[None].")
    a = attributions.detach()
    if reduce == "absmax":
        return a.abs().amax(1)
    if reduce == "abs_sum":
        return a.abs().sum(1)
    if reduce == "sum":
        return a.sum(1)
    raise ValueError(f"reduce must be one of {REDUCTIONS}; got {reduce!r}.")


def _check_maps(maps: torch.Tensor, name: str = "maps") -> torch.Tensor:
    if not isinstance(maps, torch.Tensor) or maps.dim() < 2 or maps[0].numel() == 0:
        got = tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__
        raise ValueError(f"{name} must be a tensor (N, ...) with one non-empty map per image; got {got}.")
    return maps.detach()


def clip_quantile(maps: torch.Tensor, q: float = 0.99) -> torch.Tensor:
    """Each map divided by the ``q``-quantile of its |values| and clipped to [-1, 1]: (N, ...).

    For display: saliency maps are so peaked that scaling by the maximum leaves all but a
    few pixels black. Signed maps keep their sign. A map whose quantile is 0 is divided by
    its largest |value| instead (all-zero maps stay zero). The numbers a notebook prints
    should come from the raw maps, not from these.
    """
    if not 0 < q <= 1:
        raise ValueError(f"q must be in (0, 1]; got {q!r}.")
    maps = _check_maps(maps)
    flat = maps.abs().flatten(1).float()
    scale = flat.quantile(q, dim=1)
    scale = torch.where(scale > 0, scale, flat.amax(1)).clamp(min=torch.finfo(torch.float32).tiny)
    return (maps / scale.to(maps.dtype).view(-1, *[1] * (maps.dim() - 1))).clamp(-1, 1)


def top_share(maps: torch.Tensor, fraction: float = 0.01) -> torch.Tensor:
    """How peaked each map is: the share of its total |mass| held by its top ``fraction``
    of pixels (at least one pixel), a tensor (N,). A flat map gives ``fraction``; a map with
    one non-zero pixel gives 1. An all-zero map has no mass: NaN."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1]; got {fraction!r}.")
    flat = _check_maps(maps).abs().flatten(1)
    k = max(1, int(fraction * flat.shape[1]))
    return flat.topk(k, dim=1).values.sum(1) / flat.sum(1)


def _ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n of a 1-d tensor, ties given their average rank (as scipy.stats.rankdata)."""
    _, inverse, counts = torch.unique(values, sorted=True, return_inverse=True, return_counts=True)
    last = counts.cumsum(0).to(torch.float64)
    return (last - (counts.to(torch.float64) - 1) / 2)[inverse]


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation of each pair of maps: a tensor (N,) of float64, on a's device.

    ``a`` and ``b``: (N, ...) with the same shape (e.g. maps (N, H, W)); each
    image's values are ranked (ties get their average rank) and the Pearson
    correlation of the ranks is returned. A constant map has no ranking: NaN.
    Adebayo et al. (arXiv:1810.03292) compare explanations this way, with and
    without absolute values.
    """
    a, b = torch.as_tensor(a).detach(), torch.as_tensor(b).detach()
    if a.shape != b.shape or a.dim() < 2:
        raise ValueError(f"a and b must be (N, ...) with the same shape; got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}.")
    out = []
    for u, v in zip(a.flatten(1).cpu(), b.flatten(1).cpu()):
        ru, rv = _ranks(u), _ranks(v)
        ru, rv = ru - ru.mean(), rv - rv.mean()
        out.append((ru * rv).sum() / (ru.norm() * rv.norm()))
    return torch.stack(out).to(a.device)  # ranked on the CPU (torch.unique), returned on a's device


def ssim(a: torch.Tensor, b: torch.Tensor, *, window: int = 7) -> torch.Tensor:
    """Structural similarity of each pair of maps (N, H, W): a tensor (N,) of float64.

    Wang et al.'s SSIM (IEEE TIP 2004), as Adebayo et al. (arXiv:1810.03292) report it
    next to Spearman's rank correlation: means, variances and the covariance in a
    ``window`` x ``window`` uniform window (sample covariance), the constants
    C1 = (0.01 L)^2, C2 = (0.03 L)^2 with L = 1, averaged over the window positions
    that fit inside the map -- ``skimage.metrics.structural_similarity(a, b,
    data_range=1, win_size=window)`` (tests/test_saliency.py checks it). Give maps
    scaled to [0, 1] (e.g. ``clip_quantile(maps.abs())``): SSIM depends on the scale,
    unlike Spearman. 1 for identical maps.
    """
    a, b = torch.as_tensor(a).detach(), torch.as_tensor(b).detach()
    if a.shape != b.shape or a.dim() != 3:
        raise ValueError(f"a and b must be maps (N, H, W) with the same shape; got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}.")
    if isinstance(window, bool) or not isinstance(window, int) or window < 3 or window % 2 == 0 \
            or window > min(a.shape[-2:]):
        raise ValueError(f"window must be an odd int >= 3 and at most the maps' side; got {window!r}.")
    x, y = a.double()[:, None], b.double()[:, None]

    def mean(z: torch.Tensor) -> torch.Tensor:  # window means at every position that fits
        return torch.nn.functional.avg_pool2d(z, window, stride=1)

    n = window * window
    mx, my = mean(x), mean(y)
    correction = n / (n - 1)  # sample (not population) variances, as skimage by default
    vx, vy = (mean(x * x) - mx * mx) * correction, (mean(y * y) - my * my) * correction
    cov = (mean(x * y) - mx * my) * correction
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1).to(a.device)


def default_randomization_layers(model: nn.Module) -> list[str]:
    """The layers to randomize, top (classifier) first: the network's children with
    parameters, a plain ``nn.Sequential`` / ``nn.ModuleList`` expanded into its members
    (for efficientnet_lite0: classifier, head, blocks.15, ..., blocks.0, stem; for
    alexnet: each conv and linear layer)."""
    root, prefix = (model.net, "net.") if isinstance(getattr(model, "net", None), nn.Module) else (model, "")
    names = []
    for name, child in root.named_children():
        parts = ([(f"{name}.{n}", c) for n, c in child.named_children()]
                 if type(child) in (nn.Sequential, nn.ModuleList) else [(name, child)])
        names += [prefix + n for n, c in parts if any(True for _ in c.parameters())]
    return names[::-1]


def _randomize(module: nn.Module, generator: torch.Generator) -> None:
    """Replace every parameter of ``module`` by Gaussian draws with that tensor's mean and std
    (so activations keep their scale and only the learned structure is destroyed)."""
    with torch.no_grad():
        for param in module.parameters():
            mean, std = param.mean(), (param.std() if param.numel() > 1 else param.abs().mean())
            param.copy_(_normal(param.shape, generator).to(param.device, param.dtype) * std + mean)


def cascading_randomization(model: nn.Module, images: torch.Tensor, target: Target,
                            method: str | Callable = "gradient", *, layers: list[str] | None = None,
                            seed: int = 0, reduce: str = "absmax", progress: bool = False
                            ) -> tuple[list[str], torch.Tensor]:
    """The model-randomization sanity check of Adebayo et al. (arXiv:1810.03292).

    The layers are randomized cumulatively from the top: first the classifier, then
    the classifier and the layer below it, and so on. After each step the explanation
    is recomputed for the same images and target class. A method that explains the
    *model* must change as the learned weights are destroyed; one that stays similar
    shows the input (edges), not what the network learned.

    Args:
        model: the classifier; the randomization happens on a deep copy, so the
            caller's model is untouched.
        images: (N, 3, H, W) float in [0, 1].
        target: the classes to explain (None: the trained model's predictions, kept
            fixed as the weights are randomized).
        method: a name from ``METHODS`` or a callable ``method(model, images, target)``
            returning attributions (N, 3, H, W) (e.g. a ``functools.partial`` of
            ``smoothgrad`` with fewer samples).
        layers: module names to randomize, in order (default:
            ``default_randomization_layers(model)``, classifier first).
        seed: the random weights come from ``torch.Generator().manual_seed(seed)``
            (float64 ``randn``, layer after layer in the order given, each layer's
            parameters in ``module.parameters()`` order): each parameter is replaced by
            Gaussian draws with the trained tensor's mean and std (BatchNorm's running
            statistics are kept).
        reduce: how ``saliency_map`` turns attributions into maps.

    Returns ``(names, maps)``: the L layer names in the order they were randomized,
    and maps (L + 1, N, H, W): ``maps[0]`` of the trained model, ``maps[l]`` with
    the first l layers randomized. Compare with ``spearman(maps[0], maps[l])``.

    Known limits: L + 1 times the method's cost; the outcome depends on how the
    weights are re-drawn (the paper used the layers' initialization distributions).
    """
    images = check_images(images, model=model)
    if isinstance(method, str):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS} or a callable; got {method!r}.")
        method = globals()[method]
    elif not callable(method):
        raise TypeError(f"method must be a name from {METHODS} or a callable; got {type(method).__name__}.")
    x = images.detach()
    target = resolve_target(model, x, target)
    layers = default_randomization_layers(model) if layers is None else list(layers)
    copied = copy.deepcopy(model)
    modules = [get_layer(copied, name) for name in layers]
    generator = torch.Generator().manual_seed(seed)
    from tqdm.auto import tqdm

    maps = [saliency_map(method(copied, x, target), reduce=reduce)]
    for module in tqdm(modules, desc="randomizing", unit="layer", disable=not progress):
        _randomize(module, generator)
        maps.append(saliency_map(method(copied, x, target), reduce=reduce))
    return layers, torch.stack(maps)

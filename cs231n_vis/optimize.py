"""Notebook 08 (and the loop that 09–10 share): hold the network fixed, optimize the image.

- ``optimize_image(loss_fn, init, ...)``: the one image-optimization loop of the course —
  a parameterization (pixels clamped to [0, 1], or unconstrained through a sigmoid),
  regularizers (L2, total variation, jitter, periodic blur), an optimizer (Adam, SGD,
  normalized gradient steps or L-BFGS), a progress bar, the loss history, and a budget
  counted in forward+backward passes so that optimizers can be compared fairly.
- ``total_variation(images)``: the TV regularizer of Mahendran & Vedaldi (arXiv:1412.0035).
- ``high_frequency_energy(images)``: the fraction of spectral power above a radial frequency,
  the measure of "high-frequency noise" in notebook 08.

Class visualization, fooling images, DeepDream and feature inversion are loss functions
handed to this loop:

- ``class_visualization(model, target)``: maximize a class score (arXiv:1312.6034) with
  CS231n's regularizers (L2, jitter, periodic blur).
- ``fooling_image(model, images, target)``: normalized steps until the prediction is the target.
- ``fgsm(model, images, target, epsilon=...)``: the fast gradient sign method (arXiv:1412.6572),
  one step, no loop.
- ``deepdream(model, images, layer)``: maximize a layer's energy over octaves (Mordvintsev et
  al.'s "Inceptionism", 2015).
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .attribution import DEFAULT_BATCH_SIZE, batched, check_images, resolve_target
from .hooks import frozen, override_rectifiers, record
from .images import gaussian_blur

OPTIMIZERS = ("adam", "sgd", "normalized", "laplacian", "lbfgs")
PARAMETERIZATIONS = ("pixel", "sigmoid", "fourier")
_EPS = 1e-6  # keeps the sigmoid parameterization's logit finite at 0 and 1


@dataclass
class Optimized:
    """What ``optimize_image`` returns.

    images: (N, 3, H, W) in [0, 1], detached, on the init's device.
    losses: the total loss (objective + regularizers, summed over the batch) at each
        forward+backward pass, in order (``len(losses) == passes``).
    objective: the objective alone (``loss_fn``'s value summed over the batch) at each pass.
    passes: the forward+backward passes spent (L-BFGS may take several per step).
    """

    images: torch.Tensor
    losses: list[float] = field(default_factory=list)
    objective: list[float] = field(default_factory=list)
    passes: int = 0


def total_variation(images: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """The total variation of each image: a tensor (N,).

    ``sum over pixels (i, j) and channels of ((x[i+1, j] - x[i, j])² + (x[i, j+1] - x[i, j])²)^(β/2)``,
    over the pixels that have both a lower and a right neighbour (Mahendran & Vedaldi,
    arXiv:1412.0035, eq. 3; β = 2 is the sum of squared neighbour differences of CS231n's
    assignments, up to the last row and column). β = 1 is the classic TV, which favours
    piecewise-constant images (its gradient at a constant patch is 0/0: a tiny ε keeps it finite).
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W); got shape {tuple(images.shape)}.")
    dy = images[:, :, 1:, :-1] - images[:, :, :-1, :-1]
    dx = images[:, :, :-1, 1:] - images[:, :, :-1, :-1]
    squared = dy ** 2 + dx ** 2
    if beta == 2:
        return squared.flatten(1).sum(1)
    return (squared + 1e-12).pow(beta / 2).flatten(1).sum(1)


def _jittered(images: torch.Tensor, jitter: int, generator: torch.Generator) -> torch.Tensor:
    if not jitter:
        return images
    dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist()
    return torch.roll(images, shifts=(dy, dx), dims=(2, 3))


def _check_options(optimizer: str, parameterization: str, steps: int, jitter: int, blur_every: int,
                   **numbers: float) -> None:
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}; got {optimizer!r}.")
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}; got {parameterization!r}.")
    for name, value, low in (("steps", steps, 1), ("jitter", jitter, 0), ("blur_every", blur_every, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int ≥ {low}; got {value!r}.")
    for name, value in numbers.items():  # lr and blur_sigma > 0; weights l2, tv ≥ 0
        positive = name in ("lr", "blur_sigma")
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if isinstance(value, bool) or not math.isfinite(number) or not (number > 0 if positive else number >= 0):
            raise ValueError(f"{name} must be a finite number {'> 0' if positive else '≥ 0'}; got {value!r}.")


def optimize_image(loss_fn: Callable[[torch.Tensor], torch.Tensor], init: torch.Tensor, *,
                   steps: int, lr: float = 0.05, optimizer: str = "adam",
                   parameterization: str = "pixel", l2: float = 0.0, tv: float = 0.0,
                   jitter: int = 0, blur_every: int = 0, blur_sigma: float = 0.5,
                   transforms: bool = False, redirect_steps: int = 0,
                   model: nn.Module | None = None, seed: int = 0, progress: bool = True,
                   desc: str | None = None, stop: Callable[[], bool] | None = None) -> Optimized:
    """Minimize ``loss_fn(images) + l2·‖images − ½‖² + tv·TV(images)`` over the images.

    Args:
        loss_fn: images (N, 3, H, W) in [0, 1] → a loss to *minimize*: a scalar or one
            value per image (N,), summed. (To maximize a class score, return its negative.)
        init: (N, 3, H, W) in [0, 1], the starting images (not modified).
        steps: the budget in forward+backward passes. Adam, SGD and normalized steps take
            one pass per step; L-BFGS counts every evaluation of its closure, so the same
            ``steps`` is a fair comparison between optimizers.
        lr: the step size (for ``"normalized"``: the L2 norm of each image's step, in [0, 1]
            pixel units; for ``"lbfgs"``: its initial step length, 1 is usual).
        optimizer: ``"adam"``, ``"sgd"``, ``"normalized"`` (each image moves by
            ``lr · g / ‖g‖``: the normalized gradient step of CS231n's fooling images and of
            DeepDream, blind to the gradient's scale), ``"laplacian"`` (the same step, with the
            gradient first normalized per band of a Laplacian pyramid, ``laplacian_normalize``:
            Mordvintsev's DeepDream tutorial), or ``"lbfgs"``.
        parameterization: ``"pixel"`` — the pixels are the variables, clamped to [0, 1]
            after every step (projected gradient); ``"sigmoid"`` — images = sigmoid(v) with
            v unconstrained (no clamping, smooth for L-BFGS); ``"fourier"`` — the variables
            are the image's Fourier coefficients in decorrelated colours, scaled by 1/f
            (``fourier_image``; Olah, Mordvintsev & Schubert, *Feature Visualization*,
            distill 2017, doi:10.23915/distill.00007): a step changes every frequency at
            about the same rate, where pixel steps change mostly the highest frequencies.
        l2: weight of ``sum((images − 0.5)²)`` per image (pulls towards mid-grey).
        tv: weight of ``total_variation(images)`` per image (β = 2).
        jitter: the loss sees the images rolled by a random shift of up to ``jitter``
            pixels in each direction, drawn anew at every pass (Mordvintsev et al.'s
            "robustness to small translations"); the gradient flows back through the roll.
        blur_every, blur_sigma: every ``blur_every`` steps (0 = never), blur the images
            with a Gaussian of std ``blur_sigma`` pixels (Yosinski et al., arXiv:1506.06579).
        transforms: the loss sees the images through ``random_transform`` (pad, jitter,
            scale, rotate, jitter: Lucid's standard transforms), drawn anew at every pass
            ("transformation robustness", distill 2017).
        redirect_steps: the first ``redirect_steps`` passes back-propagate through the
            model's rectifiers by ``hooks.override_rectifiers(model, "redirect")``: from a
            grey start most units are off, and an off unit passes no gradient (needs ``model``).
        model: the network inside ``loss_fn``, if any: it is frozen (eval mode, no
            parameter gradients) for the loop and left exactly as it was.
        seed: seeds the jitter (a private generator; no global random state is touched).
        progress: show a ``tqdm.auto`` bar over the passes; ``desc`` labels it.
        stop: called after every forward pass (once ``loss_fn`` has run); when it returns
            True the loop ends before that pass's step, so ``passes`` may be less than
            ``steps`` (fooling images stop once the prediction is the target). With
            ``"lbfgs"`` it is called after each L-BFGS step instead.

    Returns an ``Optimized`` (images, the loss history, the passes spent).

    Known limits: with ``"pixel"`` the clamp makes the objective non-smooth at the box
    boundary, which L-BFGS's curvature estimate does not know about (use ``"sigmoid"``
    with L-BFGS); jitter makes the objective random, which L-BFGS's line-search-free
    steps also do not expect.
    """
    init = check_images(init, "init", model=model)
    _check_options(optimizer, parameterization, steps, jitter, blur_every, lr=lr, l2=l2, tv=tv,
                   blur_sigma=blur_sigma)
    if isinstance(redirect_steps, bool) or not isinstance(redirect_steps, int) or redirect_steps < 0:
        raise ValueError(f"redirect_steps must be an int ≥ 0; got {redirect_steps!r}.")
    if redirect_steps and model is None:
        raise ValueError("redirect_steps needs the model whose rectifiers it overrides: pass model=.")
    generator = torch.Generator().manual_seed(seed)
    size = tuple(init.shape[-2:])
    encode, image_of = _parameterization(parameterization, size)
    variable = encode(init.detach().clone()).requires_grad_(True)

    result = Optimized(images=init)
    bar = tqdm(total=steps, desc=desc, unit="pass", disable=not progress)

    def evaluate() -> torch.Tensor:
        x = image_of(variable)
        seen = _jittered(x, jitter, generator)
        if transforms:
            seen = random_transform(seen, generator)
        redirect = redirect_steps and result.passes < redirect_steps
        with override_rectifiers(model, "redirect") if redirect else contextlib.nullcontext():
            objective = loss_fn(seen).sum()
        total = objective
        if l2:
            total = total + l2 * ((x - 0.5) ** 2).sum()
        if tv:
            total = total + tv * total_variation(x).sum()
        result.passes += 1
        result.objective.append(objective.item())
        result.losses.append(total.item())
        bar.update(1)
        return total

    guard = frozen(model) if model is not None else contextlib.nullcontext()
    with guard, torch.enable_grad(), bar:
        if optimizer == "lbfgs":
            # max_iter=1: one L-BFGS iteration (one closure evaluation) per call; the history
            # of past steps lives in the optimizer's state, so successive calls are one run.
            opt = torch.optim.LBFGS([variable], lr=lr, max_iter=1, history_size=20)

            def closure():
                opt.zero_grad()
                total = evaluate()
                total.backward()
                return total

            step = 0
            while result.passes < steps:
                opt.step(closure)
                step += 1
                _after_step(variable, step, parameterization, blur_every, blur_sigma, encode, image_of)
                if stop is not None and stop():
                    break
        else:
            opt = (torch.optim.Adam([variable], lr=lr) if optimizer == "adam"
                   else torch.optim.SGD([variable], lr=lr))
            for step in range(1, steps + 1):
                opt.zero_grad()
                total = evaluate()
                if stop is not None and stop():
                    break
                total.backward()
                if optimizer in ("normalized", "laplacian"):
                    grad = variable.grad if optimizer == "normalized" else laplacian_normalize(variable.grad)
                    norm = grad.flatten(1).norm(dim=1).clamp(min=1e-12).view(-1, 1, 1, 1)
                    variable.grad = grad / norm
                opt.step()
                _after_step(variable, step, parameterization, blur_every, blur_sigma, encode, image_of)
    result.images = image_of(variable).detach()
    return result


def _half(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=True, align_corners=False)


def _up(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def laplacian_bands(images: torch.Tensor, levels: int = 4) -> list[torch.Tensor]:
    """A Laplacian pyramid: ``levels`` bands, finest first; each band is the image at its level
    minus the next (half-size, anti-aliased) level upsampled, the last band the coarsest image.
    ``laplacian_merge`` inverts it exactly. Fewer bands when the image gets below 2 pixels."""
    bands, x = [], images
    for _ in range(levels - 1):
        if min(x.shape[-2:]) < 4:
            break
        low = _half(x)
        bands.append(x - _up(low, x.shape[-2:]))
        x = low
    return bands + [x]


def laplacian_merge(bands: Sequence[torch.Tensor]) -> torch.Tensor:
    """The image whose ``laplacian_bands`` are ``bands`` (finest first)."""
    out = bands[-1]
    for band in reversed(bands[:-1]):
        out = _up(out, band.shape[-2:]) + band
    return out


def laplacian_normalize(gradient: torch.Tensor, levels: int = 4) -> torch.Tensor:
    """The gradient with every Laplacian band scaled to unit RMS per image, then merged (Mordvintsev's
    DeepDream tutorial, ``lap_normalize``): coarse structure gets as large a share of a step as the
    finest pixels, which a plain gradient of a deep, strided layer gives mostly to the finest."""
    bands = laplacian_bands(gradient, levels)
    return laplacian_merge([b / b.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp(min=1e-12) for b in bands])


def _parameterization(name: str, size: tuple[int, int]):
    """(encode, decode): images in [0, 1] ↔ the optimized variable, for each parameterization."""
    if name == "sigmoid":
        return (lambda images: torch.logit(images.clamp(_EPS, 1 - _EPS))), torch.sigmoid
    if name == "fourier":
        return fourier_coefficients, (lambda v: fourier_image(v, size))
    return (lambda images: images), (lambda v: v)


@torch.no_grad()
def _after_step(variable: torch.Tensor, step: int, parameterization: str, blur_every: int,
                blur_sigma: float, encode, decode) -> None:
    """The projection and the periodic blur (of the image), applied to the variable in place."""
    if blur_every and step % blur_every == 0:
        if parameterization == "pixel":
            variable.copy_(gaussian_blur(variable, blur_sigma))
        else:
            variable.copy_(encode(gaussian_blur(decode(variable), blur_sigma)))
    if parameterization == "pixel":
        variable.clamp_(0, 1)


# ---------------------------------------------------------------------------
# Measuring how much of an image is fine detail
# ---------------------------------------------------------------------------

def high_frequency_energy(images: torch.Tensor, cutoff: float = 0.25) -> torch.Tensor:
    """The fraction of each image's spectral power above a radial frequency: a tensor (N,).

    Args:
        images: (N, C, H, W), any range (the measure ignores each channel's mean and does
            not change when the image is scaled: it is a *fraction* of the power, so a
            low-contrast image of noise scores as high as a high-contrast one).
        cutoff: in cycles per pixel; the highest frequency along an axis is 0.5 (a pixel
            on, a pixel off), and the default 0.25 is half of that (a period of 4 pixels).

    The power spectrum is that of each channel with its mean removed, summed over the
    channels. The image is mirrored into a (2H, 2W) tile first, so the Fourier transform
    does not see the jump between the left and the right border (a plain FFT treats the
    image as periodic, and a smooth ramp would look like a sharp edge). Values to expect:
    white noise spreads its power evenly, so it scores the share of the frequency square
    outside the radius, 1 − π·cutoff² (0.80 at 0.25); a smooth gradient scores ≈ 0; a
    one-pixel checkerboard ≈ 1. A constant image (no power at all) scores 0.

    Known limits: it measures *where* the power sits, not what it depicts — natural photos
    have most of their power at low frequencies (≈ 1/f² spectra), and a sharp photo of a
    textured object can score higher than a smooth painting of noise.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W); got shape {tuple(images.shape)}.")
    if not 0 < cutoff < 0.5 * math.sqrt(2):
        raise ValueError(f"cutoff must be a frequency in cycles per pixel in (0, 0.707); got {cutoff!r}.")
    x = images.detach().float()
    x = x - x.mean(dim=(2, 3), keepdim=True)
    x = torch.cat([x, x.flip(2)], dim=2)
    x = torch.cat([x, x.flip(3)], dim=3)
    power = torch.fft.fft2(x).abs().pow(2).sum(dim=1)  # (N, 2H, 2W)
    fy = torch.fft.fftfreq(x.shape[2], device=x.device)
    fx = torch.fft.fftfreq(x.shape[3], device=x.device)
    high = (fy[:, None] ** 2 + fx[None, :] ** 2).sqrt() > cutoff
    total = power.flatten(1).sum(1)
    return torch.where(total > 0, power[:, high].sum(1) / total.clamp(min=1e-30), torch.zeros_like(total))


# ---------------------------------------------------------------------------
# Feature visualization's parameterization and transforms (Olah, Mordvintsev & Schubert,
# "Feature Visualization", distill 2017, doi:10.23915/distill.00007; Lucid's param.image)
# ---------------------------------------------------------------------------

# The square root of ImageNet's colour covariance (from its SVD), as Lucid ships it: a pixel's
# colour is COLOR_CORRELATION @ (three decorrelated values), so the optimizer's steps move
# along the directions in which natural colours vary, not along R, G and B independently.
COLOR_CORRELATION = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
# Lucid's standard transforms: pad 12 (grey), jitter 8, scale 0.90–1.10, rotate −10…10° (0 drawn
# more often), jitter 4.
TRANSFORM_PAD, TRANSFORM_JITTERS = 12, (8, 4)
TRANSFORM_SCALES = tuple(1 + (i - 5) / 50 for i in range(11))
TRANSFORM_ANGLES = tuple(range(-10, 11)) + (0,) * 5


def color_matrix() -> torch.Tensor:
    """``COLOR_CORRELATION`` divided by its largest column norm (3, 3): decorrelated → RGB."""
    return COLOR_CORRELATION / COLOR_CORRELATION.norm(dim=0).max()


def spectrum_scale(size: tuple[int, int], decay_power: float = 1.0) -> torch.Tensor:
    """The factor of each coefficient of a real FFT of an (h, w) image: 1 / max(f, 1/max(h, w))^decay,
    f the frequency in cycles per pixel; (h, w // 2 + 1). With decay 1 equal coefficients give
    an amplitude spectrum falling as 1/f, as photos have."""
    h, w = size
    f = (torch.fft.fftfreq(h)[:, None] ** 2 + torch.fft.rfftfreq(w)[None, :] ** 2).sqrt()
    return 1.0 / f.clamp(min=1.0 / max(h, w)) ** decay_power


def fourier_image(coefficients: torch.Tensor, size: tuple[int, int], decay_power: float = 1.0) -> torch.Tensor:
    """Images from Fourier coefficients in decorrelated colours: (N, 3, h, w // 2 + 1, 2) → (N, 3, h, w).

    The last dimension holds each coefficient's real and imaginary part. Each channel is
    ``irfft2(spectrum_scale · c) / 4`` (orthonormal inverse FFT), the three channels are mixed by
    ``color_matrix()``, and a sigmoid maps the result into (0, 1): zero coefficients give flat grey.
    """
    spectrum = torch.view_as_complex(coefficients.contiguous())
    scale = spectrum_scale(size, decay_power).to(coefficients.device)
    field = torch.fft.irfft2(spectrum * scale, s=size, norm="ortho") / 4
    return torch.sigmoid(torch.einsum("ij,njhw->nihw", color_matrix().to(field), field))


def fourier_coefficients(images: torch.Tensor, decay_power: float = 1.0) -> torch.Tensor:
    """The coefficients whose ``fourier_image`` is ``images`` (N, 3, h, w) in (0, 1): the inverse
    of every step (logit, the colour matrix's inverse, × 4, orthonormal FFT, ÷ the scale)."""
    logits = torch.logit(images.clamp(_EPS, 1 - _EPS))
    field = 4 * torch.einsum("ij,njhw->nihw", torch.linalg.inv(color_matrix()).to(logits), logits)
    scale = spectrum_scale(tuple(images.shape[-2:]), decay_power).to(images.device)
    return torch.view_as_real(torch.fft.rfft2(field, norm="ortho") / scale).contiguous()


def scale_rotate(images: torch.Tensor, scale: float = 1.0, angle: float = 0.0) -> torch.Tensor:
    """Resize by ``scale`` (bilinear, to round(scale · size)), then rotate by ``angle`` degrees
    about the centre (counter-clockwise as displayed); corners outside the image are grey (0.5)."""
    if scale != 1:
        size = [max(1, round(scale * n)) for n in images.shape[-2:]]
        images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
    if angle % 360 == 0:
        return images
    h, w = images.shape[-2:]
    a = math.radians(angle)
    # output pixel -> input pixel, in grid_sample's normalized coordinates ([-1, 1] on each axis)
    theta = torch.tensor([[math.cos(a), -math.sin(a) * h / w, 0.0],
                          [math.sin(a) * w / h, math.cos(a), 0.0]], dtype=images.dtype, device=images.device)
    grid = F.affine_grid(theta.expand(len(images), 2, 3), list(images.shape), align_corners=False)
    return F.grid_sample(images - 0.5, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + 0.5


def random_transform(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Lucid's standard transforms, one random draw for the batch: pad 12 with grey, a random
    crop 8 pixels smaller (jitter 8), scale by 0.90–1.10, rotate by −10…10°, jitter 4.
    Differentiable; the images come out about as large as they went in (±12 %)."""
    def jitter(x: torch.Tensor, d: int) -> torch.Tensor:
        dy, dx = torch.randint(0, d + 1, (2,), generator=generator).tolist()
        return x[..., dy:x.shape[-2] - d + dy, dx:x.shape[-1] - d + dx]

    def choice(options: tuple) -> float:
        return options[int(torch.randint(len(options), (1,), generator=generator))]

    x = F.pad(images, (TRANSFORM_PAD,) * 4, value=0.5)
    x = jitter(x, TRANSFORM_JITTERS[0])
    x = scale_rotate(x, choice(TRANSFORM_SCALES), choice(TRANSFORM_ANGLES))
    return jitter(x, TRANSFORM_JITTERS[1])


# ---------------------------------------------------------------------------
# Scoring a visualization: robustness, a second model, the spectrum
# ---------------------------------------------------------------------------

def robust_probability(model: nn.Module, images: torch.Tensor, target, *, n: int = 32,
                       seed: int = 1234) -> torch.Tensor:
    """The target's softmax probability averaged over ``n`` draws of ``random_transform``: (N,).

    Does the image stay a flamingo when moved, scaled and turned? The draws come from their own
    generator (``seed``), independent of any optimization's. Forward passes only.
    """
    images = check_images(images, model=model)
    classes = resolve_target(model, images, target)
    generator = torch.Generator().manual_seed(seed)
    total = torch.zeros(len(images), device=images.device)
    with frozen(model), torch.no_grad():
        for _ in range(n):
            probabilities = model(random_transform(images, generator)).softmax(dim=1)
            total += probabilities.gather(1, classes[:, None])[:, 0]
    return total / n


def class_rank(model: nn.Module, images: torch.Tensor, target) -> torch.Tensor:
    """The target's rank among the model's classes, 1 = its top class: a long tensor (N,).

    The images are resized to ``model.input_size`` (bilinear) when the model has one: a second,
    independent network judges them at its own resolution. Ties rank in the target's favour.
    """
    images = check_images(images, model=model)
    size = getattr(model, "input_size", None)
    if size and tuple(images.shape[-2:]) != (size, size):
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    classes = resolve_target(model, images, target)
    with frozen(model), torch.no_grad():
        logits = model(images)
    return (logits > logits.gather(1, classes[:, None])).sum(dim=1) + 1


def _radial_spectrum(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image's amplitude spectrum (mean removed, Hann-windowed, channels summed in power)
    and the radial frequency of each coefficient, in cycles per pixel: (N, H, W), (H, W)."""
    x = images.detach().float()
    x = x - x.mean(dim=(2, 3), keepdim=True)
    h, w = x.shape[-2:]
    window = torch.hann_window(h, periodic=False)[:, None] * torch.hann_window(w, periodic=False)[None, :]
    power = torch.fft.fft2(x * window.to(x.device)).abs().pow(2).sum(dim=1)
    f = (torch.fft.fftfreq(h, device=x.device)[:, None] ** 2 + torch.fft.fftfreq(w, device=x.device)[None, :] ** 2).sqrt()
    return power.sqrt(), f


def spectral_slope(images: torch.Tensor, low: float = 0.02, high: float = 0.35) -> torch.Tensor:
    """The slope of log amplitude against log frequency, fitted between ``low`` and ``high``
    cycles per pixel over 12 log-spaced bands: a tensor (N,).

    White noise has a flat spectrum (slope 0); photos fall as about 1/f (slope ≈ −1 to −1.2,
    Field 1987); the smoother the image, the steeper. The image is Hann-windowed first, so
    the jump between its borders does not add a 1/f spectrum of its own.
    """
    amplitude, f = _radial_spectrum(images)
    edges = torch.logspace(math.log10(low), math.log10(high), 13, device=f.device)
    centres, means = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        band = (f >= lo) & (f < hi)
        if band.any():
            centres.append((lo * hi).sqrt().log())
            means.append(amplitude[:, band].mean(dim=1).clamp(min=1e-30).log())
    x, y = torch.stack(centres), torch.stack(means, dim=1)  # (B,), (N, B)
    x = x - x.mean()
    return ((y - y.mean(dim=1, keepdim=True)) * x).sum(dim=1) / (x ** 2).sum()


def power_law_images(exponent: float, size: int = 128, *, n: int = 4, seed: int = 0) -> torch.Tensor:
    """Test images with a known spectrum: amplitude ∝ f^(−exponent) at every frequency, random
    phases, each image mapped affinely into [0, 1]: (n, 3, size, size). Exponent 0 is white
    noise, 1 the 1/f amplitude of photos, 2 a much smoother image (the slope ``spectral_slope`` reports)."""
    generator = torch.Generator().manual_seed(seed)
    f = (torch.fft.fftfreq(size)[:, None] ** 2 + torch.fft.rfftfreq(size)[None, :] ** 2).sqrt().clamp(min=1 / size)
    phase = torch.rand(n, 3, size, size // 2 + 1, generator=generator) * 2 * math.pi
    field = torch.fft.irfft2(f ** (-exponent) * torch.exp(1j * phase), s=(size, size))
    low = field.flatten(1).amin(1).view(-1, 1, 1, 1)
    high = field.flatten(1).amax(1).view(-1, 1, 1, 1)
    return (field - low) / (high - low)


def spectral_centroid(images: torch.Tensor) -> torch.Tensor:
    """The power-weighted mean radial frequency of each image, in cycles per pixel: (N,).

    A grating of frequency f scores about f; fine texture scores higher than large blobs.
    Use it on the *change* an optimization made (result − start) to measure its scale.
    """
    amplitude, f = _radial_spectrum(images)
    power = amplitude.pow(2)
    return (power * f).flatten(1).sum(1) / power.flatten(1).sum(1).clamp(min=1e-30)


# ---------------------------------------------------------------------------
# Class visualization (Simonyan et al.; the CS231n recipe)
# ---------------------------------------------------------------------------

def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters(), torch.empty(0)).device


def class_visualization(model: nn.Module, target: int | Sequence[int] | torch.Tensor, *,
                        size: int | None = None, steps: int = 100, lr: float = 3.0, l2: float = 0.0,
                        jitter: int = 0, blur_every: int = 0, blur_sigma: float = 0.5,
                        optimizer: str = "normalized", parameterization: str = "pixel",
                        transforms: bool = False, redirect_steps: int = 0,
                        init: torch.Tensor | None = None, init_std: float = 0.05, seed: int = 0,
                        progress: bool = True) -> Optimized:
    """Images that maximize a class score: gradient ascent on the pixels (arXiv:1312.6034).

    ``x* = argmax_x  s_c(x) − l2·‖x − ½‖²``, where ``s_c`` is the **score** (logit) of class
    ``c``, not its probability (a probability can also be raised by lowering the other
    classes' scores). The CS231n recipe adds two regularizers that act on the image rather
    than on the objective: **jitter** (the network sees the image shifted by up to
    ``jitter`` pixels, a new shift at every step) and a **periodic Gaussian blur**
    (every ``blur_every`` steps, std ``blur_sigma`` pixels; Yosinski et al., arXiv:1506.06579).

    Args:
        model: a classifier returning logits (N, K); frozen during the run, left as it was.
        target: one class index, or several — one image per class, optimized as one batch.
        size: the side of the square images (default: the model's input size).
        steps: forward+backward passes.
        lr: with ``optimizer="normalized"`` (the default), the L2 length of each image's
            step in [0, 1] pixel units (a (3, 160, 160) image has 277 "pixels of norm",
            so 3.0 moves each pixel by about 0.011 per step); for "adam"/"sgd" their rate.
        l2, jitter, blur_every, blur_sigma, optimizer: as in ``optimize_image``.
        parameterization, transforms, redirect_steps: distill's recipe (Olah, Mordvintsev &
            Schubert, *Feature Visualization*, 2017), as in ``optimize_image``: ``"fourier"``
            (decorrelated colours, 1/f-scaled Fourier coefficients), ``transforms=True``
            (Lucid's pad, jitter, scale, rotate at every step), ``redirect_steps=16`` (the
            rectifiers pass gradient to off units for the first steps). Their usual
            optimizer is ``"adam"`` with ``lr=0.05``.
        init: (N, 3, size, size) starting images in [0, 1]; by default mid-grey plus
            Gaussian noise of std ``init_std``, drawn from a generator seeded by ``seed``
            (the same ``seed`` gives the same start, whatever the regularizers); with
            ``parameterization="fourier"`` the image of coefficients ``init_std × 0.2`` ×
            Gaussian noise (Lucid's 0.01 at the default std): nearly flat grey.
        seed: the start's noise and the jitter's shifts.
        progress: a ``tqdm.auto`` bar over the passes.

    Returns an ``Optimized``: ``images`` (N, 3, size, size) on the model's device (or the
    init's), the loss history (the negated scores plus the L2 term, summed over the batch).

    Known limits: the result is one local optimum among many (another seed gives another
    picture); the score keeps rising without bound while the picture stops improving, so
    the step count is a choice, not a convergence; without regularization the optimum is
    high-frequency, adversarial-looking noise that the network scores highly and a human
    does not recognize; what the regularizers favour (smooth, low-contrast images) is a
    prior chosen by us, not something the network learned.
    """
    device = init.device if init is not None else _model_device(model)
    classes = torch.as_tensor(target).flatten() if not isinstance(target, int) else torch.tensor([target])
    if init is None:
        size = size or getattr(model, "input_size", 224)
        generator = torch.Generator().manual_seed(seed)
        if parameterization == "fourier":
            noise = torch.randn(len(classes), 3, size, size // 2 + 1, 2, generator=generator)
            init = fourier_image(0.2 * init_std * noise, (size, size)).to(device)
        else:
            noise = torch.randn(len(classes), 3, size, size, generator=generator)
            init = (0.5 + init_std * noise).clamp(0, 1).to(device)
    init = check_images(init, "init", model=model)
    if len(init) != len(classes):
        raise ValueError(f"init holds {len(init)} images but target names {len(classes)} classes; "
                         f"give one starting image per class.")
    classes = resolve_target(model, init, classes)

    def loss_fn(x: torch.Tensor) -> torch.Tensor:
        return -model(x).gather(1, classes[:, None])[:, 0]

    return optimize_image(loss_fn, init, steps=steps, lr=lr, optimizer=optimizer, l2=l2, jitter=jitter,
                          blur_every=blur_every, blur_sigma=blur_sigma, parameterization=parameterization,
                          transforms=transforms, redirect_steps=redirect_steps, model=model, seed=seed,
                          progress=progress, desc="class visualization")


# ---------------------------------------------------------------------------
# Fooling images and FGSM
# ---------------------------------------------------------------------------

@dataclass
class Fooled:
    """What ``fooling_image`` returns.

    images: (N, 3, H, W) in [0, 1], the perturbed images.
    steps: (N,) long, the normalized gradient steps each image took before the model
        predicted the target (0: it already did; ``max_steps`` when it never did).
    fooled: (N,) bool, whether the model predicts the target for the returned image.
    """

    images: torch.Tensor
    steps: torch.Tensor
    fooled: torch.Tensor


def fooling_image(model: nn.Module, images: torch.Tensor, target: int | Sequence[int] | torch.Tensor, *,
                  step: float = 0.5, max_steps: int = 100, progress: bool = True) -> Fooled:
    """Perturb each image until the model predicts ``target``: normalized gradient ascent.

    Each step adds ``step · g / ‖g‖`` to the image, g = d(score of the target)/d(image),
    and clamps to [0, 1] (CS231n's fooling images; Szegedy et al., arXiv:1312.6199, found
    such imperceptible perturbations with L-BFGS). An image stops moving as soon as the
    model's prediction is the target; the loop stops when every image has.

    Args:
        model: a classifier returning logits (N, K); frozen, left as it was.
        images: (N, 3, H, W) in [0, 1] (not modified).
        target: the class to reach: an int for every image, or N ints (required).
        step: the L2 length of each step, in [0, 1] pixel units (0.5 on a 224×224 image is
            0.0013 per pixel, a third of one 0–255 grey level).
        max_steps: the most steps per image.
        progress: a ``tqdm.auto`` bar over the forward passes.

    Returns a ``Fooled`` (images, steps taken, fooled flags), on the images' device.

    Known limits: the perturbation is specific to this model and this image (it may not
    fool another network, and a resize or JPEG compression can undo it); the steps are not
    the smallest possible perturbation, only a short path to the decision boundary; the
    result is not quantized to 8 bits, which could undo a perturbation this small.
    """
    images = check_images(images, model=model)
    if target is None:
        raise ValueError("fooling_image needs a target class (an int or N ints); got None.")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps must be an int ≥ 1; got {max_steps!r}.")
    classes = resolve_target(model, images, target)
    n = len(images)
    taken = torch.full((n,), max_steps, dtype=torch.long, device=images.device)
    done = torch.zeros(n, dtype=torch.bool, device=images.device)
    passes = [0]

    def loss_fn(x: torch.Tensor) -> torch.Tensor:
        logits = model(x)
        hit = logits.detach().argmax(dim=1) == classes
        taken[hit & ~done] = passes[0]
        done.logical_or_(hit)  # a fooled image gets no more gradient, so it stays as it is
        passes[0] += 1
        return -logits.gather(1, classes[:, None])[:, 0] * (~done).to(logits.dtype)

    def stop() -> bool:
        return bool(done.all()) or passes[0] > max_steps

    result = optimize_image(loss_fn, images, steps=max_steps + 1, lr=step, optimizer="normalized",
                            model=model, progress=progress, desc="fooling", stop=stop)
    return Fooled(images=result.images, steps=taken, fooled=done.clone())


def random_perturbation(like: torch.Tensor, *, norm: str = "l2", seed: int = 0) -> torch.Tensor:
    """A random perturbation as large as ``like`` (N, ...), image by image: the control that shows
    whether an adversarial perturbation's *direction* matters, not its size.

    ``norm="l2"``: a Gaussian direction scaled to each image's L2 norm of ``like``;
    ``norm="linf"``: random signs times each image's largest |value| of ``like`` (every value moves
    by the L∞ norm, as FGSM moves every pixel value by ε). Drawn on the CPU from ``seed``.
    """
    if norm not in ("l2", "linf"):
        raise ValueError(f"norm must be 'l2' or 'linf'; got {norm!r}.")
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(like.shape, generator=generator).to(like)
    flat = like.detach().flatten(1)
    if norm == "l2":
        size = flat.norm(dim=1) / noise.flatten(1).norm(dim=1).clamp(min=1e-30)
        return noise * size.view(-1, *[1] * (like.dim() - 1))
    return noise.sign() * flat.abs().amax(dim=1).view(-1, *[1] * (like.dim() - 1))


def fgsm(model: nn.Module, images: torch.Tensor, target=None, *, epsilon: float, targeted: bool = False,
         zero_threshold: float = 0.0, batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = True) -> torch.Tensor:
    """The fast gradient sign method (Goodfellow et al., arXiv:1412.6572): a tensor (N, 3, H, W).

    ``x_adv = clamp(x + ε · sign(∇_x CE(model(x), y)), 0, 1)``: one step that raises the
    cross-entropy loss of class y as much as any perturbation with L∞ norm ε can *if the
    network were linear* around x — Goodfellow et al.'s explanation of adversarial examples.
    ``targeted=True`` steps the other way, lowering the loss of ``target`` (towards it).

    Args:
        model: a classifier returning logits (N, K); frozen, left as it was.
        images: (N, 3, H, W) in [0, 1].
        target: the class y: None (the predicted class: the attack pushes each image away
            from the model's own answer), an int, or N ints.
        epsilon: the L∞ size of the perturbation in [0, 1] pixel units (1/255 is one
            grey level); 0 returns the images.
        targeted: lower the loss of ``target`` instead of raising it.
        zero_threshold: gradients with ``|g| <= zero_threshold`` count as 0 (the pixel is left
            as it is). 0 is the paper's sign; Captum's ``FGSM`` uses 1e-6.
        batch_size, progress: batching with a ``tqdm.auto`` bar (``attribution.batched``).

    The loss's gradient with respect to the logits is written out (softmax − one-hot, with the
    target's entry as minus the sum of the other probabilities): autograd's cross-entropy
    rounds it to 0 at the target for confidently classified images, and the gradient then loses
    its main term (see the code). Captum's ``FGSM`` and most implementations have that problem.

    Known limits: one step, so a weaker attack than iterated ones (PGD) at the same ε;
    sign(0) = 0, so pixels with an exactly zero gradient are left as they are; the clamp
    to [0, 1] shortens the step at saturated pixels.
    """
    images = check_images(images, model=model)
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0 <= epsilon <= 1:
        raise ValueError(f"epsilon must be a number in [0, 1] (pixel units: 1/255 is one grey level); "
                         f"got {epsilon!r}.")
    direction = -1.0 if targeted else 1.0

    def one_batch(chunk: torch.Tensor, chunk_target) -> torch.Tensor:
        x = chunk.detach().requires_grad_(True)
        with frozen(model), torch.enable_grad():
            logits = model(x)
            y = resolve_target(model, chunk, chunk_target, logits=logits)
            # d CE / d logits = softmax − one-hot, written out so that it stays exact for confident
            # predictions: autograd's float32 cross-entropy forms p_y − 1, and p_y rounds to exactly 1
            # once the logit gap exceeds ≈ 17 (≈ 37 in float64), which drops the term that lowers
            # the target's score (10 % of the shapes CNN's test images; notebook 08). Here p_y − 1 is
            # minus the sum of the other probabilities, which stay representable up to a gap of ≈ 87.
            with torch.no_grad():
                p = logits.softmax(dim=1)
                others = p.scatter(1, y[:, None], 0.0).sum(dim=1, keepdim=True)
                dlogits = p.scatter(1, y[:, None], -others)
            (grad,) = torch.autograd.grad(logits, x, grad_outputs=dlogits)  # summed: images do not interact
        sign = torch.where(grad.abs() > zero_threshold, grad.sign(), torch.zeros_like(grad))
        return (chunk.detach() + direction * epsilon * sign).clamp(0, 1)

    return batched(one_batch, images, target, batch_size=batch_size, progress=progress, desc="FGSM")


# ---------------------------------------------------------------------------
# DeepDream (Mordvintsev, Olah & Tyka 2015, "Inceptionism")
# ---------------------------------------------------------------------------

def deepdream(model: nn.Module, images: torch.Tensor, layer: str, *, octaves: int = 3,
              octave_scale: float = 1.4, steps: int = 10, step_size: float = 0.01, jitter: int = 8,
              gradient: str = "octave", seed: int = 0, progress: bool = True) -> Optimized:
    """Amplify whatever a layer sees in the images: gradient ascent on ‖activation‖², over octaves.

    Mordvintsev, Olah & Tyka, *Inceptionism: Going Deeper into Neural Networks*, Google
    Research blog, 2015 (no arXiv paper). At each **octave** — the image at sizes
    s/scale^(octaves−1), …, s/scale, s — ``steps`` normalized gradient steps raise the mean
    squared activation of ``layer`` (its L2 norm) with the image jittered by up to
    ``jitter`` pixels; the detail added at one octave is upsampled and added to the next,
    larger octave, so patterns grow at several scales.

    Args:
        model: the network; ``layer`` a name from ``model.named_modules()`` (recorded through
            ``hooks.record(..., keep_graph=True)``). Frozen during the run, left as it was.
        images: (N, 3, H, W) in [0, 1] (not modified).
        octaves: how many sizes (1 = the image's size only).
        octave_scale: the ratio between successive sizes.
        steps: normalized gradient steps per octave.
        step_size: each step's root-mean-square change per pixel, in [0, 1] pixel units,
            the same at every octave (the reference code's steps average 1.5 of 255 grey
            levels, ≈ 0.006).
        jitter: the random shift, in pixels, at every step.
        gradient: ``"octave"`` — each step is the gradient normalized to the step size (the
            blog's code); ``"laplacian"`` — the gradient is first normalized per band of a
            Laplacian pyramid (``laplacian_normalize``, Mordvintsev's tutorial), so coarse
            structure grows as fast as fine detail.
        seed: the shifts' generator (octave k uses seed + k).
        progress: a ``tqdm.auto`` bar per octave.

    Returns an ``Optimized``: ``images`` (N, 3, H, W), and the histories of every octave
    concatenated (the objective: minus the mean squared activation, summed over images).

    Known limits: the objective has no notion of what a natural image looks like, so the
    patterns are those the layer responds to *most*, exaggerated, not what it typically
    sees; the result depends on the step size and count as much as on the layer; a layer
    deep in the network has a large receptive field, so the smallest octave must still be
    larger than a few of its strides.
    """
    images = check_images(images, model=model)
    if gradient not in ("octave", "laplacian"):
        raise ValueError(f"gradient must be 'octave' or 'laplacian'; got {gradient!r}.")
    for name, value, low in (("octaves", octaves, 1), ("steps", steps, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int ≥ {low}; got {value!r}.")
    if not octave_scale > 1:
        raise ValueError(f"octave_scale must be > 1 (the ratio between sizes); got {octave_scale!r}.")
    height, width = images.shape[-2:]
    sizes = [(round(height / octave_scale ** k), round(width / octave_scale ** k)) for k in range(octaves)]
    if octaves > 1 and min(sizes[-1]) < 16:
        raise ValueError(f"the smallest octave would be {sizes[-1][0]}×{sizes[-1][1]} pixels for images of "
                         f"{height}×{width}; use fewer octaves or a smaller octave_scale (at least 16 pixels).")
    base = images.detach()
    pyramid = [base if k == 0 else F.interpolate(base, size=size, mode="bilinear", align_corners=False,
                                                 antialias=True).clamp(0, 1)
               for k, size in enumerate(sizes)]
    history = Optimized(images=base)
    detail = torch.zeros_like(pyramid[-1])
    with record(model, layer, keep_graph=True) as rec:
        def loss_fn(x: torch.Tensor) -> torch.Tensor:
            model(x)
            return -rec.activations[layer].pow(2).flatten(1).mean(1)

        for k, octave_base in enumerate(reversed(pyramid)):
            h, w = octave_base.shape[-2:]
            if k:
                detail = F.interpolate(detail, size=(h, w), mode="bilinear", align_corners=False)
            start = (octave_base + detail).clamp(0, 1)
            out = optimize_image(loss_fn, start, steps=steps, lr=step_size * math.sqrt(3 * h * w),
                                 optimizer="normalized" if gradient == "octave" else "laplacian",
                                 jitter=jitter, model=model, seed=seed + k,
                                 progress=progress, desc=f"octave {k + 1}/{octaves}")
            detail = out.images - octave_base
            history.losses += out.losses
            history.objective += out.objective
            history.passes += out.passes
    history.images = out.images
    return history


# ---------------------------------------------------------------------------
# The class-visualization ablation of notebook 08, computed once and shipped:
#   python -m cs231n_vis.optimize ablation
# ---------------------------------------------------------------------------

# Ten ImageNet classes a student recognizes (flamingo, tarantula and lemon from CS231n's figures).
ABLATION_CLASSES = ("goldfish", "flamingo", "tarantula", "peacock", "jellyfish", "monarch", "lemon",
                    "strawberry", "pineapple", "volcano")
ABLATION_SIZE, ABLATION_STEPS, ABLATION_SEEDS = 128, 256, (0, 1, 2)
# Five arms at one budget (ABLATION_STEPS forward+backward passes), each adding one thing: pixels
# with CS231n's normalized steps (length 8 in [0, 1] units: 0.036 per pixel value at 128 x 128);
# + CS231n's regularizers; the Fourier + decorrelated parameterization with its usual optimizer
# (Adam, lr 0.05; no regularizer); + Lucid's transforms; + the redirected ReLU6 gradient for the
# first 16 passes.
ABLATION_ARMS = {
    "a pixels": dict(optimizer="normalized", lr=8.0),
    "b CS231n: L2 + jitter + blur": dict(optimizer="normalized", lr=8.0, l2=0.01, jitter=10, blur_every=6,
                                         blur_sigma=0.7),
    "c Fourier + decorrelated": dict(optimizer="adam", lr=0.05, parameterization="fourier"),
    "d (c) + transforms": dict(optimizer="adam", lr=0.05, parameterization="fourier", transforms=True),
    "e (d) + ReLU6 redirect": dict(optimizer="adam", lr=0.05, parameterization="fourier", transforms=True,
                                   redirect_steps=16),
}
ABLATION_FILE = Path(__file__).parent / "weights" / "class_visualizations.pt"


def visualization_scores(model: nn.Module, judge: nn.Module, images: torch.Tensor, classes) -> dict:
    """The four scores of a class visualization, each (N,): the target's probability under 32 random
    transforms (``robust_probability``), its rank in a second, independent model (``class_rank``),
    the high-frequency fraction and the spectral slope."""
    return {"robust_p": robust_probability(model, images, classes), "rank": class_rank(judge, images, classes),
            "hf": high_frequency_energy(images), "slope": spectral_slope(images)}


def run_ablation(model: nn.Module, judge: nn.Module, *, seeds=ABLATION_SEEDS, arms=None,
                 classes=ABLATION_CLASSES, steps: int = ABLATION_STEPS, size: int = ABLATION_SIZE,
                 progress: bool = False) -> dict:
    """Every arm × seed of the ablation: ``{arm: {seed: {"images": (N, 3, s, s), **scores}}}``."""
    targets = [model.class_names.index(name) for name in classes]
    results = {}
    for arm in arms or ABLATION_ARMS:
        results[arm] = {}
        for seed in seeds:
            out = class_visualization(model, targets, size=size, steps=steps, seed=seed, progress=progress,
                                      **ABLATION_ARMS[arm])
            results[arm][seed] = {"images": out.images, **visualization_scores(model, judge, out.images, targets)}
    return results


def _encode_jpeg(images: torch.Tensor) -> list[bytes]:
    from PIL import Image

    encoded = []
    for image in images:
        buffer = io.BytesIO()
        array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
        Image.fromarray(array).save(buffer, format="JPEG", quality=92)
        encoded.append(buffer.getvalue())
    return encoded


def load_ablation(path: str | Path | None = None) -> dict:
    """The shipped ablation (``python -m cs231n_vis.optimize ablation``): a dict with ``classes``,
    ``arms`` (name → settings), ``steps``, ``size``, ``seeds``, ``judge`` (the second model's name),
    ``scores`` (arm → seed → score → (N,) tensor) and ``images`` (arm → (N, 3, s, s) in [0, 1], seed 0,
    stored as JPEG). Loaded with ``weights_only=True``."""
    import numpy as np
    from PIL import Image

    raw = torch.load(Path(path) if path is not None else ABLATION_FILE, map_location="cpu", weights_only=True)
    images = {arm: torch.stack([torch.from_numpy(np.array(Image.open(io.BytesIO(bytes(b))).convert("RGB")))
                                for b in encoded]).permute(0, 3, 1, 2).float() / 255
              for arm, encoded in raw["jpeg"].items()}
    return {**{k: v for k, v in raw.items() if k != "jpeg"}, "images": images}


def main(argv: list[str] | None = None) -> None:
    import argparse
    import time

    from .files import write_atomic
    from .models import load_model

    parser = argparse.ArgumentParser(prog="python -m cs231n_vis.optimize",
                                     description="Compute notebook 08's class-visualization ablation.")
    parser.add_argument("command", choices=["ablation"])
    parser.add_argument("--out", type=Path, default=ABLATION_FILE)
    parser.add_argument("--judge", default="efficientnet_lite2", help="the independent model that ranks")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model, judge = load_model("efficientnet_lite0"), load_model(args.judge)
    results = run_ablation(model, judge, progress=True)
    scores = {arm: {seed: {k: v for k, v in r.items() if k != "images"} for seed, r in by_seed.items()}
              for arm, by_seed in results.items()}
    record = {"classes": list(ABLATION_CLASSES), "arms": {a: dict(s) for a, s in ABLATION_ARMS.items()},
              "steps": ABLATION_STEPS, "size": ABLATION_SIZE, "seeds": list(ABLATION_SEEDS), "judge": args.judge,
              "threads": args.threads, "seconds": time.perf_counter() - start, "scores": scores,
              "jpeg": {arm: [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in _encode_jpeg(r[0]["images"])]
                       for arm, r in results.items()}}
    buffer = io.BytesIO()
    torch.save(record, buffer)
    write_atomic(args.out, buffer.getvalue())
    for arm, by_seed in scores.items():
        line = "  ".join(f"{k} {torch.stack([s[k].float().mean() for s in by_seed.values()]).mean():.2f}"
                         for k in ("robust_p", "rank", "hf", "slope"))
        print(f"{arm:32s} {line}")
    print(f"{time.perf_counter() - start:.0f} s; wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()

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
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .attribution import DEFAULT_BATCH_SIZE, batched, check_images, resolve_target
from .hooks import frozen, record
from .images import gaussian_blur

OPTIMIZERS = ("adam", "sgd", "normalized", "lbfgs")
PARAMETERIZATIONS = ("pixel", "sigmoid")
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
            DeepDream, blind to the gradient's scale), or ``"lbfgs"``.
        parameterization: ``"pixel"`` — the pixels are the variables, clamped to [0, 1]
            after every step (projected gradient); ``"sigmoid"`` — images = sigmoid(v) with
            v unconstrained (no clamping, smooth for L-BFGS).
        l2: weight of ``sum((images − 0.5)²)`` per image (pulls towards mid-grey).
        tv: weight of ``total_variation(images)`` per image (β = 2).
        jitter: the loss sees the images rolled by a random shift of up to ``jitter``
            pixels in each direction, drawn anew at every pass (Mordvintsev et al.'s
            "robustness to small translations"); the gradient flows back through the roll.
        blur_every, blur_sigma: every ``blur_every`` steps (0 = never), blur the images
            with a Gaussian of std ``blur_sigma`` pixels (Yosinski et al., arXiv:1506.06579).
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
    generator = torch.Generator().manual_seed(seed)
    start = init.detach().clone()
    if parameterization == "sigmoid":
        start = torch.logit(start.clamp(_EPS, 1 - _EPS))
    variable = start.requires_grad_(True)

    def image_of(v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(v) if parameterization == "sigmoid" else v

    result = Optimized(images=init)
    bar = tqdm(total=steps, desc=desc, unit="pass", disable=not progress)

    def evaluate() -> torch.Tensor:
        x = image_of(variable)
        objective = loss_fn(_jittered(x, jitter, generator)).sum()
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
                _after_step(variable, step, parameterization, blur_every, blur_sigma)
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
                if optimizer == "normalized":
                    grad = variable.grad
                    norm = grad.flatten(1).norm(dim=1).clamp(min=1e-12).view(-1, 1, 1, 1)
                    variable.grad = grad / norm
                opt.step()
                _after_step(variable, step, parameterization, blur_every, blur_sigma)
    result.images = image_of(variable).detach()
    return result


@torch.no_grad()
def _after_step(variable: torch.Tensor, step: int, parameterization: str, blur_every: int,
                blur_sigma: float) -> None:
    """The projection and the periodic blur, applied to the variable in place."""
    if blur_every and step % blur_every == 0:
        if parameterization == "sigmoid":
            blurred = gaussian_blur(torch.sigmoid(variable), blur_sigma)
            variable.copy_(torch.logit(blurred.clamp(_EPS, 1 - _EPS)))
        else:
            variable.copy_(gaussian_blur(variable, blur_sigma))
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
# Class visualization (Simonyan et al.; the CS231n recipe)
# ---------------------------------------------------------------------------

def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters(), torch.empty(0)).device


def class_visualization(model: nn.Module, target: int | Sequence[int] | torch.Tensor, *,
                        size: int | None = None, steps: int = 100, lr: float = 3.0, l2: float = 0.0,
                        jitter: int = 0, blur_every: int = 0, blur_sigma: float = 0.5,
                        optimizer: str = "normalized", init: torch.Tensor | None = None,
                        init_std: float = 0.05, seed: int = 0, progress: bool = True) -> Optimized:
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
        init: (N, 3, size, size) starting images in [0, 1]; by default mid-grey plus
            Gaussian noise of std ``init_std``, drawn from a generator seeded by ``seed``
            (the same ``seed`` gives the same start, whatever the regularizers).
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
                          blur_every=blur_every, blur_sigma=blur_sigma, model=model, seed=seed,
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
              seed: int = 0, progress: bool = True) -> Optimized:
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
                                 optimizer="normalized", jitter=jitter, model=model, seed=seed + k,
                                 progress=progress, desc=f"octave {k + 1}/{octaves}")
            detail = out.images - octave_base
            history.losses += out.losses
            history.objective += out.objective
            history.passes += out.passes
    history.images = out.images
    return history

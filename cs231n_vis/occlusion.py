"""Occlusion sensitivity: slide a patch over the image and watch the class probability fall.

- ``occlusion(model, images, target)``: the drop in the target's probability (or
  logit) for every position of an occluding window, a map (N, h, w).
- ``fill_images(images, fill)``: what the window shows instead of the image
  (grey, zero, a blurred copy, a dataset mean colour).
- ``window_grid(size, window, stride)``: the window's top-left corners.
- ``to_pixels(maps, size, window, stride)``: a window map spread back over the
  pixels (each pixel: the mean drop of the windows that cover it, as Captum does).
- ``occlusion_coarse_to_fine(...)``: the same map from fewer forward passes.
- ``random_occluders(images, masks, seed=...)``: grey patches over a random part
  of each object, and the fraction of the object they hide (notebook 05's
  "performance as a function of occlusion").

Zeiler & Fergus, *Visualizing and Understanding Convolutional Networks*, arXiv:1311.2901
(section 4.2, "Occlusion Sensitivity").
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .attribution import DEFAULT_BATCH_SIZE, Target, batched, check_images, resolve_target
from .hooks import frozen
from .images import gaussian_blur

FILLS = ("grey", "zero", "blur", "mean")
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the ImageNet training set's mean colour, RGB in [0, 1]
SCORES = ("probability", "logit")


def _pair(value, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of positive ints (height, width); "
                         f"got {value!r}.")
    return pair


def window_grid(size: tuple[int, int], window: int | tuple[int, int], stride: int | tuple[int, int]
                ) -> tuple[list[int], list[int]]:
    """Top-left corners (rows, columns) of a window slid over an image of ``size`` (H, W).

    Positions are 0, stride, 2*stride, ... while the window fits inside the image,
    so the map has h = (H - window) // stride + 1 rows (the same grid as Captum's
    ``Occlusion``). Choose a stride that divides H - window, or the last rows and
    columns of pixels are never occluded.
    """
    (wh, ww), (sh, sw) = _pair(window, "window"), _pair(stride, "stride")
    height, width = size
    if wh > height or ww > width:
        raise ValueError(f"window {(wh, ww)} is larger than the images {(height, width)}.")
    return list(range(0, height - wh + 1, sh)), list(range(0, width - ww + 1, sw))


def fill_images(images: torch.Tensor, fill: str | float = "grey", *, mean=None,
                blur_sigma: float = 8.0) -> torch.Tensor:
    """What the occluder shows, for each image: a tensor (N, 3, H, W) like ``images``.

    ``fill``: ``"grey"`` (0.5 everywhere, Zeiler & Fergus's grey square), ``"zero"``
    (0: black, as the models take [0, 1] images), ``"blur"`` (the image blurred with a
    Gaussian of std ``blur_sigma`` pixels: the occluder removes detail, not colour),
    ``"mean"`` (one colour: ``mean``, an RGB triple, by default ``IMAGENET_MEAN``; pass
    ``data.images.mean((0, 2, 3))`` for another data set), or a number in [0, 1]
    (that constant, like Captum's scalar ``baselines``).
    """
    images = check_images(images)
    if isinstance(fill, (int, float)) and not isinstance(fill, bool):
        if not 0 <= fill <= 1:
            raise ValueError(f"A constant fill must be in [0, 1] (the images' range); got {fill}.")
        return torch.full_like(images, float(fill))
    if fill == "grey":
        return torch.full_like(images, 0.5)
    if fill == "zero":
        return torch.zeros_like(images)
    if fill == "blur":
        if not blur_sigma > 0:
            raise ValueError(f"blur_sigma must be > 0 pixels; got {blur_sigma!r}.")
        return gaussian_blur(images, blur_sigma)
    if fill == "mean":
        colour = torch.as_tensor(IMAGENET_MEAN if mean is None else mean, dtype=images.dtype,
                                 device=images.device)
        if colour.shape != (3,):
            raise ValueError(f"mean must be one RGB colour, 3 numbers; got shape {tuple(colour.shape)}.")
        return colour.view(1, 3, 1, 1).expand_as(images).clone()
    raise ValueError(f"Unknown fill {fill!r}; use one of {FILLS} or a number in [0, 1].")


def _scores(logits: torch.Tensor, target: torch.Tensor, score: str) -> torch.Tensor:
    values = logits.softmax(dim=1) if score == "probability" else logits
    return values.gather(1, target[:, None])[:, 0]


def _model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else fallback


def occlusion(model: nn.Module, images: torch.Tensor, target: Target = None, *,
              window: int | tuple[int, int] = 32, stride: int | tuple[int, int] = 16,
              fill: str | float = "grey", mean=None, blur_sigma: float = 8.0,
              score: str = "probability", batch_size: int = DEFAULT_BATCH_SIZE,
              progress: bool = True, positions=None) -> torch.Tensor:
    """Occlusion sensitivity (Zeiler & Fergus, arXiv:1311.2901): a map (N, h, w).

    ``map[n, i, j] = p(target | image n) - p(target | image n with the window at
    row i*stride, column j*stride)``: how much the target class's probability
    *drops* when that square is hidden. Positive = the region supported the class;
    negative = hiding it *raised* the probability (it was evidence against).

    Args:
        model: a classifier returning logits (N, K); run in eval mode, frozen,
            under ``torch.no_grad`` (forward passes only), and left as it was.
        images: (N, 3, H, W) float in [0, 1].
        target: None (the predicted class of the unoccluded image), an int, or N ints.
        window: the occluder's side in pixels (or (height, width)).
        stride: the step between positions (or (height, width)); the grid is
            ``window_grid((H, W), window, stride)``, h = (H - window) // stride + 1.
        fill: what the occluder shows: "grey", "zero", "blur", "mean" or a
            constant (see ``fill_images``, which also takes ``mean`` and ``blur_sigma``).
        score: "probability" (softmax, the paper's choice) or "logit" (the
            class score before softmax; what Captum's ``Occlusion`` attributes
            with ``target=``).
        batch_size: occluded copies per forward pass. Every image needs h*w
            copies; they are made batch by batch, never all at once.
        progress: a ``tqdm.auto`` bar counting occluded copies; False hides it.
        positions: optional bool (N, h, w): evaluate only where True; the other
            entries are NaN (``occlusion_coarse_to_fine`` uses this).

    Returns a float tensor (N, h, w) on the images' device.

    Known limits: the cost is one forward pass per window position (h*w per
    image), so windows are coarse; the map depends on window, stride and fill
    (a grey square is itself a feature the network may respond to — compare
    fills); a single window cannot reveal evidence that is redundant (two
    eyes: hiding one leaves the other), so objects with repeated parts look
    less important than they are.
    """
    images = check_images(images, model=model)
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}; got {score!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}.")
    (wh, ww) = _pair(window, "window")
    rows, cols = window_grid(images.shape[-2:], window, stride)
    n, h, w = len(images), len(rows), len(cols)
    device = _model_device(model, images.device)
    x = images.detach()
    fills = fill_images(x, fill, mean=mean, blur_sigma=blur_sigma)
    if positions is None:
        positions = torch.ones(n, h, w, dtype=torch.bool)
    positions = torch.as_tensor(positions, dtype=torch.bool).cpu()
    if positions.shape != (n, h, w):
        raise ValueError(f"positions must be a bool tensor (N, h, w) = {(n, h, w)}; "
                         f"got {tuple(positions.shape)}.")
    jobs = positions.nonzero()  # (J, 3): image, row index, column index

    with frozen(model), torch.no_grad():
        logits = torch.cat([model(x[i:i + batch_size].to(device)) for i in range(0, n, batch_size)])
        target = resolve_target(model, x, target, logits=logits).to(device)
        clean = _scores(logits, target, score)

        def evaluate(chunk: torch.Tensor, _target) -> torch.Tensor:
            copies = x[chunk[:, 0]].clone()
            for k, (i, r, c) in enumerate(chunk.tolist()):
                y0, x0 = rows[r], cols[c]
                copies[k, :, y0:y0 + wh, x0:x0 + ww] = fills[i, :, y0:y0 + wh, x0:x0 + ww]
            occluded = _scores(model(copies.to(device)), target[chunk[:, 0].to(device)], score)
            return clean[chunk[:, 0].to(device)] - occluded

        if len(jobs):
            drops = batched(evaluate, jobs, None, batch_size=batch_size, progress=progress,
                            desc="occlusion")
        else:
            drops = torch.empty(0, device=device)
    maps = torch.full((n, h, w), float("nan"), device=device, dtype=clean.dtype)
    maps[jobs[:, 0], jobs[:, 1], jobs[:, 2]] = drops
    return maps.to(images.device)


def to_pixels(maps: torch.Tensor, size: tuple[int, int], *, window: int | tuple[int, int],
              stride: int | tuple[int, int]) -> torch.Tensor:
    """Spread a window map (N, h, w) back over the image's pixels: (N, H, W).

    Each pixel gets the mean of the values of the windows that cover it (this is
    exactly how Captum's ``Occlusion`` turns per-window differences into a
    per-pixel attribution); pixels that no window covers get 0.
    """
    (wh, ww), (sh, sw) = _pair(window, "window"), _pair(stride, "stride")
    height, width = size
    ones = torch.ones(1, 1, wh, ww, dtype=maps.dtype, device=maps.device)
    total = F.conv_transpose2d(maps[:, None], ones, stride=(sh, sw))
    count = F.conv_transpose2d(torch.ones_like(maps[:1, None]), ones, stride=(sh, sw))
    pad = (0, width - total.shape[-1], 0, height - total.shape[-2])
    total, count = F.pad(total, pad), F.pad(count, pad)
    return (total / count.clamp(min=1))[:, 0]


def occlusion_coarse_to_fine(model: nn.Module, images: torch.Tensor, target: Target = None, *,
                             window: int | tuple[int, int] = 32, stride: int = 8, coarse: int = 2,
                             keep: float = 0.25, **kwargs) -> tuple[torch.Tensor, int]:
    """The fine occlusion map from fewer forward passes: ``(maps (N, h, w), passes)``.

    First the map on a coarse grid (stride ``coarse * stride``, the same window),
    then the fine positions near the largest coarse drops: a fine position is
    evaluated when the largest coarse value among its (up to four) coarse
    neighbours is in the top ``keep`` fraction of that image's coarse map.
    Everywhere else the fine map takes the coarse map, bilinearly interpolated.
    ``passes`` counts the occluded forward passes used (the full map needs
    N*h*w). Other keyword arguments go to ``occlusion``.

    Known limit: a small region that matters but sits between coarse positions
    with small drops is missed; a larger window (relative to ``coarse * stride``)
    makes that less likely.
    """
    images = check_images(images, model=model)
    if not isinstance(coarse, int) or coarse < 1:
        raise ValueError(f"coarse must be a positive int (the coarse grid's stride in fine steps); got {coarse!r}.")
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be a fraction in (0, 1]; got {keep!r}.")
    rows, cols = window_grid(images.shape[-2:], window, stride)
    h, w = len(rows), len(cols)
    rough = occlusion(model, images, target, window=window, stride=coarse * stride, **kwargs)
    n, ch, cw = rough.shape
    # Coarse position k sits at fine position k * coarse: interpolate between them.
    fine = F.interpolate(rough[:, None], size=((ch - 1) * coarse + 1, (cw - 1) * coarse + 1),
                         mode="bilinear", align_corners=True)[:, 0]
    fine = F.pad(fine, (0, w - fine.shape[-1], 0, h - fine.shape[-2]), mode="replicate")
    neighbour = F.max_pool2d(rough[:, None], 2, stride=1, padding=1, ceil_mode=False)[:, 0]
    # neighbour[a, b] = max of coarse cells (a-1..a, b-1..b): the fine cells between them.
    ri = torch.arange(h, device=rough.device)
    ci = torch.arange(w, device=rough.device)
    near = neighbour[:, (ri + coarse - 1) // coarse][:, :, (ci + coarse - 1) // coarse]
    threshold = torch.quantile(rough.flatten(1), 1 - keep, dim=1)
    chosen = near >= threshold[:, None, None]
    on_coarse = torch.zeros(h, w, dtype=torch.bool, device=rough.device)
    on_coarse[::coarse, ::coarse] = True
    chosen &= ~on_coarse  # already evaluated
    kwargs = {**kwargs, "positions": chosen}
    exact = occlusion(model, images, target, window=window, stride=stride, **kwargs)
    result = torch.where(chosen, exact, fine)
    result[:, ::coarse, ::coarse] = rough[:, :len(range(0, h, coarse)), :len(range(0, w, coarse))]
    return result, int(n * ch * cw + chosen.sum())


def random_occluders(images: torch.Tensor, masks: torch.Tensor, *, size: tuple[int, int] = (6, 40),
                     fill: float = 0.5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A grey square over a random part of each object: ``(occluded images, fraction hidden)``.

    For each image, a square of side drawn uniformly from ``size`` (pixels) is
    centred on a random pixel of its object (``masks`` (N, H, W) bool) and
    filled with ``fill``. Returns the occluded images (N, 3, H, W) and the
    fraction of each object's pixels the square covers (N,). Deterministic
    given ``seed`` (its own NumPy generator).
    """
    images = check_images(images)
    masks = torch.as_tensor(masks, dtype=torch.bool)
    if masks.shape != (len(images), *images.shape[-2:]):
        raise ValueError(f"masks must be bool (N, H, W) = {(len(images), *images.shape[-2:])}; "
                         f"got {tuple(masks.shape)}.")
    rng = np.random.default_rng(seed)
    sides = rng.integers(size[0], size[1] + 1, size=len(images))
    picks = rng.random(len(images))
    out = images.detach().clone()
    patch = torch.zeros(masks.shape, dtype=torch.bool)
    for i, m in enumerate(masks.cpu()):
        ys, xs = m.nonzero(as_tuple=True)
        if len(ys) == 0:
            continue
        k = int(picks[i] * len(ys))
        y0, x0 = int(ys[k]) - int(sides[i]) // 2, int(xs[k]) - int(sides[i]) // 2
        patch[i, max(y0, 0):max(y0 + int(sides[i]), 0), max(x0, 0):max(x0 + int(sides[i]), 0)] = True
    out[patch.to(out.device)[:, None].expand_as(out)] = fill
    area = masks.cpu().flatten(1).sum(1).clamp(min=1)
    hidden = (patch & masks.cpu()).flatten(1).sum(1) / area
    return out, hidden.to(images.device)

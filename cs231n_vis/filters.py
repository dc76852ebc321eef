"""Notebook 02 — filters: the weights of convolution layers, how smooth they are,
what a first layer *should* look like, and the effective filters of deeper units."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .hooks import frozen, override_rectifiers, record


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first ``nn.Conv2d`` of the model, in the order of its modules."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module
    raise ValueError(f"{type(model).__name__} has no nn.Conv2d layer.")


def roughness(weight: torch.Tensor) -> torch.Tensor:
    """How noisy each filter is: one number per filter, (O,) for weights (O, I, k, k).

    roughness = mean squared difference of horizontally and vertically
    neighbouring weights / (2 · mean unbiased variance within each input channel).

    For white noise (independent weights, variance σ²) the expected squared
    difference of two neighbours is 2σ², and the *unbiased* variance (divided by
    k² − 1, not k²) has expectation σ², so white noise scores 1 at every kernel
    size (the biased variance would give k²/(k² − 1): 1.125 at 3×3, 1.02 at 7×7).
    A smooth filter (neighbours alike) scores near 0, a checkerboard about 2
    (4 / (2 · k²/(k² − 1)): 1.78 at 3×3, 1.96 at 7×7). It does not depend on the
    filter's scale, so filters trained with and without weight decay can be
    compared. The variance is taken within each (filter, input channel) slice,
    after removing that slice's mean: a constant offset per colour channel is not
    spatial structure, and a variance over the whole filter would count it and
    call a noisy filter with offsets smooth. A filter that is constant in every
    channel (e.g. all zero: a dead filter) has no spatial pattern to judge and
    gets NaN.
    """
    w = weight.detach().float()
    if w.dim() != 4 or w.shape[-1] * w.shape[-2] < 2:
        raise ValueError(f"Expected conv weights (O, I, k, k) with k > 1, got shape {tuple(w.shape)}.")
    dx = (w[..., :, 1:] - w[..., :, :-1]).pow(2).flatten(1)
    dy = (w[..., 1:, :] - w[..., :-1, :]).pow(2).flatten(1)
    neighbour = torch.cat([dx, dy], dim=1).mean(dim=1)
    within = w.flatten(2).var(dim=2, unbiased=True).mean(dim=1)  # (O,): per slice, then averaged
    return torch.where(within > 0, neighbour / (2 * within.clamp_min(1e-30)), float("nan"))


def effective_filters(model: nn.Module, layer: str, size: int = 64) -> torch.Tensor:
    """The linear filters that the units of ``layer`` apply to the image, (C, 3, r, r).

    For the unit of each channel at the centre of the map, the gradient of its
    output with respect to the input image, with every rectifier (ReLU,
    ReLU6) treated as the identity: the network up to ``layer`` becomes one
    linear map, and the gradient is that map's filter, whatever the input.
    It is cropped to the receptive field (the pixels with a nonzero weight in
    any channel). A linearization: the real unit also switches off where its
    rectifiers are off; it is how we can draw deep units of a network whose
    first layer is too small to show structure (a 3×3 stem).
    """
    image = torch.zeros(1, 3, size, size, device=next(model.parameters()).device, requires_grad=True)
    with frozen(model), override_rectifiers(model, "linear"), record(model, layer, keep_graph=True) as rec:
        model(image)
        out = rec.activations[layer][0]
        centre = out[:, out.shape[1] // 2, out.shape[2] // 2]
        grads = [torch.autograd.grad(centre[c], image, retain_graph=True)[0][0] for c in range(len(centre))]
    weights = torch.stack(grads)
    support = (weights.abs().amax(dim=(0, 1)) > 0).nonzero()
    (top, left), (bottom, right) = support.min(dim=0).values, support.max(dim=0).values
    if top == 0 or left == 0 or bottom == size - 1 or right == size - 1:
        raise ValueError(f"The receptive field of {layer!r} reaches the edge of a {size}x{size} input; "
                         f"pass a larger size.")
    return weights[:, :, top:bottom + 1, left:right + 1]


def image_patches(photos: list[np.ndarray], n: int, size: int, seed: int = 0) -> np.ndarray:
    """``n`` random ``size``×``size`` RGB patches of (H, W, 3) photos, as rows (n, 3·size·size)."""
    rng = np.random.default_rng(seed)
    which = rng.integers(len(photos), size=n)
    rows = np.empty((n, 3 * size * size), np.float32)
    for i, j in enumerate(which):
        photo = photos[j]
        y, x = rng.integers(photo.shape[0] - size + 1), rng.integers(photo.shape[1] - size + 1)
        rows[i] = photo[y:y + size, x:x + size].transpose(2, 0, 1).ravel()
    return rows


def ica_filters(photos: list[np.ndarray], n_filters: int = 48, size: int = 8,
                n_patches: int = 20000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Filters learned from natural-image patches by independent component analysis.

    Each patch has its mean brightness removed; scikit-learn's FastICA finds
    ``n_filters`` components whose responses are as independent (as sparse)
    as possible. Returns two banks, each (n_filters, 3, size, size):

    - ``filters``: the rows of the unmixing matrix (``components_``): the
      response of component i to a patch is <filters[i], patch>, so these are
      what a linear unit (a first-layer ConvNet filter) applies. Whitening
      makes them emphasize fine detail, so they look rougher.
    - ``basis``: the basis functions, the columns of the mixing matrix
      (``mixing_``): the patch pattern each component adds; a patch is the sum
      of the basis functions weighted by the responses. They are smoother.

    Both show the classic result, oriented localized edges and colour-opponent
    blobs (Olshausen & Field 1996; Bell & Sejnowski 1997, the ICA version),
    with no labels at all. Deterministic for a seed on one machine (FastICA
    iterates in floating point).
    """
    from sklearn.decomposition import FastICA

    rows = image_patches(photos, n_patches, size, seed)
    rows -= rows.mean(axis=1, keepdims=True)
    ica = FastICA(n_components=n_filters, whiten="unit-variance", random_state=seed, max_iter=400, tol=1e-3)
    ica.fit(rows)
    filters = torch.from_numpy(ica.components_.reshape(n_filters, 3, size, size).copy()).float()
    basis = torch.from_numpy(ica.mixing_.T.reshape(n_filters, 3, size, size).copy()).float()
    return filters, basis


def synthetic_filters(n: int = 200, size: int = 7, seed: int = 0) -> dict[str, torch.Tensor]:
    """Filter banks (n, 3, size, size) whose roughness is known, to test a measure on.

    - "white noise": independent Gaussian weights (roughness 1),
    - "noise + offsets": the same noise plus a constant per (filter, colour
      channel) ten times larger (still 1: offsets are not spatial structure),
    - "smooth ramp": linear ramps in a random direction with a random amplitude
      per channel (near 0),
    - "checkerboard": ±1 alternating, times a random amplitude per channel (2),
    - "all zero": no pattern at all (NaN).
    """
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, 3, size, size, generator=g)
    offsets = 10 * torch.randn(n, 3, 1, 1, generator=g)
    amplitude = torch.randn(n, 3, 1, 1, generator=g)
    angle = 2 * torch.pi * torch.rand(n, 1, 1, 1, generator=g)
    coords = torch.linspace(-1, 1, size)
    ramp = angle.cos() * coords.view(1, 1, 1, size) + angle.sin() * coords.view(1, 1, size, 1)
    checker = 1 - 2 * ((torch.arange(size).view(size, 1) + torch.arange(size)) % 2).float()
    return {"white noise": noise, "noise + offsets": noise + offsets, "smooth ramp": amplitude * ramp,
            "checkerboard": amplitude * checker, "all zero": torch.zeros(n, 3, size, size)}

"""Figures: image grids, activation grids, filter grids.

One place for colour maps and normalization, so every notebook looks the same.
Each function draws into a new figure and returns it; the notebook calls
``plt.show()``.
"""

from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

ACTIVATION_CMAP = "viridis"   # activations: 0 is dark
DIVERGING_CMAP = "RdBu_r"     # signed weights: 0 is white


def _grid(n: int, ncols: int, cell: float, title: str | None):
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols, cell * nrows + (0.4 if title else 0)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return fig, axes.flat


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def show_images(images: Sequence, titles: Sequence[str] | None = None, ncols: int = 4,
                cell: float = 3.0, title: str | None = None):
    """A grid of RGB images: (H, W, 3) arrays or (3, H, W) tensors in [0, 1]."""
    fig, axes = _grid(len(images), ncols, cell, title)
    for i, (ax, image) in enumerate(zip(axes, images)):
        array = _numpy(image)
        if array.ndim == 3 and array.shape[0] == 3:
            array = array.transpose(1, 2, 0)
        ax.imshow(np.clip(array, 0, 1))
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    return fig


def show_activations(activation, channels: Sequence[int] | None = None, ncols: int = 8,
                     cell: float = 1.3, title: str | None = None):
    """Feature maps of one image, (C, H, W), one panel per channel.

    All panels share one colour scale, from 0 to the largest value shown, so a
    channel that is dark everywhere really is (near) zero, compared to the rest.
    """
    maps = _numpy(activation)
    if maps.ndim != 3:
        raise ValueError(f"Expected one image's activation of shape (C, H, W), got {maps.shape}; "
                         f"index the batch first, e.g. acts[layer][0].")
    channels = list(range(maps.shape[0])) if channels is None else list(channels)
    vmax = max(float(maps[channels].max()), 1e-8)
    fig, axes = _grid(len(channels), ncols, cell, title)
    for ax, c in zip(axes, channels):
        ax.imshow(maps[c], cmap=ACTIVATION_CMAP, vmin=min(0.0, float(maps[channels].min())), vmax=vmax)
        ax.set_title(str(c), fontsize=7)
    return fig


def filter_images(weight) -> np.ndarray:
    """RGB first-layer filters (O, 3, k, k) → (O, k, k, 3) images in [0, 1].

    Each filter is scaled by its own largest absolute weight, so 0 maps to grey
    (0.5) and the sign of each weight stays visible as a colour.
    """
    w = _numpy(weight)
    if w.ndim != 4 or w.shape[1] != 3:
        raise ValueError(f"Expected RGB filters of shape (O, 3, k, k), got {w.shape}.")
    scale = np.abs(w).reshape(len(w), -1).max(axis=1).reshape(-1, 1, 1, 1) + 1e-12
    return (0.5 + 0.5 * w / scale).transpose(0, 2, 3, 1)


def show_filters(weight, ncols: int = 8, cell: float = 1.0, title: str | None = None):
    """Convolution filters as small pictures.

    RGB filters (O, 3, k, k) are shown in colour (grey = 0). Deeper filters
    (O, I, k, k) are shown per input channel: one row per filter, one column per
    input channel, blue negative / red positive on a shared scale.
    """
    w = _numpy(weight)
    if w.shape[1] == 3:
        rgb = filter_images(w)
        fig, axes = _grid(len(rgb), ncols, cell, title)
        for ax, image in zip(axes, rgb):
            ax.imshow(image, interpolation="nearest")
        return fig
    limit = float(np.abs(w).max()) + 1e-12
    fig, axes = _grid(w.shape[0] * w.shape[1], w.shape[1], cell, title)
    for ax, kernel in zip(axes, w.reshape(-1, *w.shape[2:])):
        ax.imshow(kernel, cmap=DIVERGING_CMAP, vmin=-limit, vmax=limit, interpolation="nearest")
    return fig

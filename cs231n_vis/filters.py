"""Notebook 02 — filters: the weights of convolution layers, and how smooth they are."""

from __future__ import annotations

import torch
from torch import nn


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first ``nn.Conv2d`` of the model, in the order of its modules."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module
    raise ValueError(f"{type(model).__name__} has no nn.Conv2d layer.")


def roughness(weight: torch.Tensor) -> torch.Tensor:
    """How noisy each filter is: one number per filter, (O,) for weights (O, I, k, k).

    roughness = mean squared difference of horizontally and vertically
    neighbouring weights / (2 · variance of the filter's weights).

    It is 1 for white noise (neighbours independent), near 0 for a smooth
    filter (neighbours alike), and up to 2 for a checkerboard. It does not
    depend on the filter's scale, so filters trained with and without weight
    decay can be compared.
    """
    w = weight.detach().float()
    dx = (w[..., :, 1:] - w[..., :, :-1]).pow(2).flatten(1)
    dy = (w[..., 1:, :] - w[..., :-1, :]).pow(2).flatten(1)
    neighbour = torch.cat([dx, dy], dim=1).mean(dim=1)
    variance = w.flatten(1).var(dim=1, unbiased=False)
    return neighbour / (2 * variance + 1e-12)

"""Notebook 01 — layer activations: record them, measure their sparsity, find dead units."""

from __future__ import annotations

import torch
from torch import nn

from .hooks import frozen, record


def layer_activations(model: nn.Module, images: torch.Tensor, layers: str | list[str],
                      batch_size: int = 64) -> dict[str, torch.Tensor]:
    """The outputs of ``layers`` for ``images`` (N, 3, H, W): layer name → (N, C, h, w)."""
    names = [layers] if isinstance(layers, str) else list(layers)
    chunks: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    with frozen(model), torch.no_grad(), record(model, names) as rec:
        for start in range(0, len(images), batch_size):
            model(images[start:start + batch_size])
            for name in names:
                chunks[name].append(rec.activations[name])
    return {name: torch.cat(parts) for name, parts in chunks.items()}


def zero_fraction(activation: torch.Tensor) -> float:
    """The fraction of the activation's entries that are exactly zero."""
    return (activation == 0).float().mean().item()


def dead_units(activation: torch.Tensor) -> torch.Tensor:
    """Channels that are zero for every image and every position: a bool tensor (C,).

    Call it on the activations of a large, varied set of images: a unit that
    never fires on any of them gets no gradient either, so training cannot
    bring it back.
    """
    return (activation != 0).sum(dim=(0, 2, 3)) == 0


def sparsity_report(model: nn.Module, images: torch.Tensor, layers: list[str]) -> dict[str, dict]:
    """Per layer: the zero fraction, the number of dead channels and the channel count."""
    acts = layer_activations(model, images, layers)
    return {name: {"zero_fraction": zero_fraction(a), "dead": int(dead_units(a).sum()), "channels": a.shape[1]}
            for name, a in acts.items()}

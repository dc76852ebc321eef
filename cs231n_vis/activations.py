"""Notebook 01 — layer activations: record them, measure their sparsity, find dead units."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attribution import check_images
from .hooks import frozen, layer_list, record


def layer_activations(model: nn.Module, images: torch.Tensor, layers: str | list[str],
                      batch_size: int = 64) -> dict[str, torch.Tensor]:
    """The outputs of ``layers`` for ``images`` (N, 3, H, W): layer name → (N, C, h, w).

    The batches run on the model's device; the results come back on the
    images' device (a CPU dataset can be measured with a model on the GPU),
    in the model's dtype (images are checked and converted by ``check_images``).
    """
    images = check_images(images, model=model)
    names = layer_list(layers)
    chunks: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    model_device = next(model.parameters(), images).device
    with frozen(model), torch.no_grad(), record(model, names) as rec:
        for start in range(0, len(images), batch_size):
            model(images[start:start + batch_size].to(model_device))
            for name in names:
                chunks[name].append(rec.activations[name].to(images.device))
    return {name: torch.cat(parts) for name, parts in chunks.items()}


def feeding_layer(model: nn.Module, layer: str) -> str:
    """The name of the module registered just before ``layer`` in ``model.named_modules()``.

    In a network built as a sequence (conv → BatchNorm → ReLU, as every registry model's
    blocks are), that is the module whose output ``layer`` receives: for a rectifier,
    its input, the value *before* it cuts negatives to 0. Raises ValueError for the first
    module or an unknown name."""
    names = [name for name, _ in model.named_modules()]
    if layer not in names or names.index(layer) < 2:
        raise ValueError(f"{layer!r} is not a module of {type(model).__name__} with a module before it.")
    return names[names.index(layer) - 1]


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


def sparse_channels(activation: torch.Tensor, k: int = 16, low: float = 0.5, high: float = 0.95) -> list[int]:
    """Channels of one image's activation (C, H, W) that are active but sparse.

    Keeps the channels whose zero fraction lies in [low, high] (on somewhere,
    off almost everywhere), ranks them by their peak value and returns the
    ``k`` strongest as plain ints, in channel order. (The channels with the
    largest *mean* are the opposite: on nearly everywhere.)
    """
    zeros = (activation == 0).flatten(1).float().mean(dim=1)
    candidates = ((zeros >= low) & (zeros <= high)).nonzero().flatten()
    peaks = activation[candidates].flatten(1).amax(dim=1)
    strongest = candidates[peaks.argsort(descending=True, stable=True)[:k]]
    return sorted(int(c) for c in strongest)


def mask_share(activation: torch.Tensor, masks: torch.Tensor) -> float:
    """The share of a layer's activation that falls inside the object masks.

    ``activation`` (N, C, h, w) ≥ 0 is summed over channels and each cell is
    spread over the pixels it covers (nearest-neighbour upsampling to the
    masks' H, W); ``masks`` (N, H, W) bool. Returns the mean over images of
    (activation inside the mask) / (all activation). An activation spread
    evenly over the image scores the mask's area fraction; one that sits
    only on the object scores 1.
    """
    if activation.dim() != 4 or masks.dim() != 3 or len(activation) != len(masks):
        raise ValueError(f"Expected activation (N, C, h, w) and masks (N, H, W), got "
                         f"{tuple(activation.shape)} and {tuple(masks.shape)}.")
    energy = activation.sum(dim=1, keepdim=True).float()
    spread = F.interpolate(energy, size=masks.shape[-2:], mode="nearest")[:, 0]
    inside = (spread * masks.to(spread.device)).sum(dim=(1, 2))
    return (inside / spread.sum(dim=(1, 2)).clamp_min(1e-12)).mean().item()


def sparsity_report(model: nn.Module, images: torch.Tensor, layers: list[str],
                    masks: torch.Tensor | None = None) -> dict[str, dict]:
    """Per layer: the zero fraction, the number of dead channels and the channel count,
    and with ``masks`` (N, H, W) also the ``mask_share`` of the activation."""
    acts = layer_activations(model, images, layers)
    report = {name: {"zero_fraction": zero_fraction(a), "dead": int(dead_units(a).sum()), "channels": a.shape[1]}
              for name, a in acts.items()}
    if masks is not None:
        for name, a in acts.items():
            report[name]["mask_share"] = mask_share(a, masks)
    return report

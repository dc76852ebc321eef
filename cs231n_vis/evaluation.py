"""Scoring explanations and classifiers against ground truth (notebooks 05–07).

Localization of a heatmap against a true object mask:

- ``mass_inside(maps, masks)``: the fraction of a map's positive mass inside the mask.
- ``pointing_game(maps, masks)``: does the map's maximum fall on the object?

Performance as a function of image attributes (Russakovsky et al., arXiv:1409.0575):

- ``class_probabilities(model, images)``: softmax outputs, in batches.
- ``shape_attributes(data)``: object scale and contrast of shapes images.
- ``accuracy_by_bins(correct, values, edges)``: accuracy per attribute bin.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .hooks import frozen


def _maps_and_masks(maps: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    maps = torch.as_tensor(maps).detach()
    masks = torch.as_tensor(masks, device=maps.device)
    if maps.dim() == 2:
        maps = maps[None]
    if masks.dim() == 2:
        masks = masks[None]
    if maps.dim() != 3 or masks.dim() != 3 or len(maps) != len(masks):
        raise ValueError(f"maps must be (N, h, w) and masks (N, H, W) with the same N; got maps "
                         f"{tuple(maps.shape)} and masks {tuple(masks.shape)}.")
    if masks.dtype != torch.bool:
        raise TypeError(f"masks must be bool (True on the object); got dtype {masks.dtype}.")
    if not maps.dtype.is_floating_point:
        maps = maps.float()
    if torch.isnan(maps).any():
        raise ValueError("maps contain NaN values.")
    if maps.shape[-2:] != masks.shape[-2:]:
        # Bilinear resizing to the mask's size; a map meant for pixels (e.g. occlusion.to_pixels)
        # should be given at the mask's size, so that nothing is resampled.
        maps = F.interpolate(maps[:, None], size=masks.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return maps, masks


def mass_inside(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The fraction of each map's positive mass that lies on the object: a tensor (N,).

    ``sum(relu(map) * mask) / sum(relu(map))`` per image. ``maps`` (N, h, w) are
    resized bilinearly to the masks' size (N, H, W) when they differ (better: pass
    maps at the mask's resolution). A map equal to 1 on the mask and 0 elsewhere
    scores 1; a uniform map scores the mask's area fraction, which is the chance
    level to compare with; a map with no positive value scores 0 (it points nowhere).

    Only the positive part counts: for occlusion, the regions whose hiding
    *lowered* the class probability. Known limit: it rewards maps that are
    large where the object is large; compare with the area fraction, not with 0.
    """
    maps, masks = _maps_and_masks(maps, masks)
    positive = maps.clamp(min=0).flatten(1)
    total = positive.sum(1)
    inside = (positive * masks.flatten(1)).sum(1)
    return torch.where(total > 0, inside / total.clamp(min=torch.finfo(total.dtype).tiny),
                       torch.zeros_like(total))


def pointing_game(maps: torch.Tensor, masks: torch.Tensor, *, tolerance: int = 0) -> torch.Tensor:
    """Does each map's maximum fall on the object? A bool tensor (N,).

    The pointing game of Zhang et al. (arXiv:1608.00507): a hit when the map's
    maximum lies within ``tolerance`` pixels of the mask (the mask grown by a
    square of that radius). Ties are not broken by an index: a hit when *any*
    maximal pixel lies in the (grown) mask. A constant map points nowhere and
    is a miss. Maps are resized to the masks' size as in ``mass_inside``.
    """
    maps, masks = _maps_and_masks(maps, masks)
    if tolerance:
        masks = F.max_pool2d(masks[:, None].float(), 2 * tolerance + 1, stride=1, padding=tolerance)[:, 0] > 0
    flat, on_object = maps.flatten(1), masks.flatten(1)
    top, bottom = flat.amax(1), flat.amin(1)
    best_inside = flat.masked_fill(~on_object, float("-inf")).amax(1)
    return (best_inside == top) & (top > bottom)


def class_probabilities(model: nn.Module, images: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """Softmax outputs (N, K) of ``model`` for ``images`` (N, 3, H, W), on the images' device.

    Forward passes only, in eval mode with frozen parameters, ``batch_size`` images at a time.
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else images.device
    with frozen(model), torch.no_grad():
        out = [model(images[i:i + batch_size].to(device)).softmax(1) for i in range(0, len(images), batch_size)]
    return torch.cat(out).to(images.device)


def shape_attributes(data) -> dict[str, torch.Tensor]:
    """Per-image attributes of a ``shapes.ShapesData`` batch, each a float tensor (N,).

    - ``"scale"``: the object's area as a fraction of the image (mask pixels / all pixels).
    - ``"contrast"``: the RGB distance between the object's colour and the mean colour
      of the background pixels around it (the mask grown by 4 pixels, minus the mask),
      in [0, sqrt(3)].
    """
    masks = data.masks
    area = masks.flatten(1).float().mean(1)
    ring = (F.max_pool2d(masks[:, None].float(), 9, stride=1, padding=4)[:, 0] > 0) & ~masks
    ring = ring[:, None].float()
    around = (data.images * ring).sum((2, 3)) / ring.sum((2, 3)).clamp(min=1)
    contrast = (data.colors - around).norm(dim=1)
    return {"scale": area, "contrast": contrast}


def accuracy_by_bins(correct: torch.Tensor, values: torch.Tensor, edges) -> list[dict]:
    """Accuracy within bins of an attribute: one dict per bin.

    ``correct`` (N,) bool, ``values`` (N,) the attribute; ``edges`` increasing
    (B + 1 numbers): bin b holds edges[b] <= value < edges[b+1] (the last bin
    includes its right edge). Each dict: ``low``, ``high``, ``n`` (images in the
    bin), ``accuracy`` (NaN for an empty bin).
    """
    correct = torch.as_tensor(correct).cpu().numpy().astype(bool)
    values = torch.as_tensor(values).cpu().numpy()
    edges = np.asarray(edges, dtype=float)
    if correct.shape != values.shape or correct.ndim != 1:
        raise ValueError(f"correct and values must both be (N,); got {correct.shape} and {values.shape}.")
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"edges must be at least 2 increasing numbers; got {edges.tolist()}.")
    rows = []
    for b, (low, high) in enumerate(zip(edges[:-1], edges[1:])):
        last = b == len(edges) - 2
        inside = (values >= low) & ((values <= high) if last else (values < high))
        n = int(inside.sum())
        rows.append({"low": float(low), "high": float(high), "n": n,
                     "accuracy": float(correct[inside].mean()) if n else float("nan")})
    return rows


def show_accuracy_by_attribute(tables: dict[str, list[dict]], *, chance: float | None = None,
                               cell: float = 3.0, title: str | None = None):
    """One panel per attribute: accuracy per bin (``accuracy_by_bins`` rows), bins as labels.

    ``tables``: attribute name → rows with ``low``, ``high``, ``n``, ``accuracy``
    (a row may also carry ``label``, the bin's tick label). Each point is
    annotated with its image count; ``chance`` draws the chance level.
    Returns the figure (the notebook calls ``plt.show()``).
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tables), figsize=(cell * len(tables) + 0.5, cell),
                             squeeze=False, sharey=True, layout="constrained")
    for ax, (name, rows) in zip(axes[0], tables.items()):
        labels = [r.get("label", f"{r['low']:.2f}–{r['high']:.2f}") for r in rows]
        acc = [r["accuracy"] for r in rows]
        ax.plot(range(len(rows)), acc, "o-")
        for i, r in enumerate(rows):
            ax.annotate(f"n={r['n']}", (i, r["accuracy"]), textcoords="offset points", xytext=(0, -12),
                        ha="center", fontsize=7)
        if chance is not None:
            ax.axhline(chance, color="grey", linestyle=":", label="chance")
        ax.set_xticks(range(len(rows)), labels, rotation=45, ha="right", fontsize=8)
        ax.set_xlabel(name)
        ax.set_ylim(0, 1.05)
    axes[0, 0].set_ylabel("accuracy (fraction correct)")
    if title:
        fig.suptitle(title)
    return fig

"""Scoring explanations and classifiers against ground truth (notebooks 05–07).

Localization of a heatmap against a true object mask:

- ``mass_inside(maps, masks)``: the fraction of a map's positive mass inside the mask.
- ``pointing_game(maps, masks)``: does the map's maximum fall on the object?

Faithfulness of a heatmap to the model (Petsiuk et al., RISE, arXiv:1806.07421):

- ``deletion_curves`` / ``insertion_curves``: the class probability as the pixels are
  removed (inserted) in the map's order, and the area under that curve (``curve_auc``);
  ``pixel_order``: that order, ties broken at random (seeded).

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

from .attribution import DEFAULT_BATCH_SIZE, batched, check_images, resolve_target
from .hooks import frozen
from .occlusion import fill_images


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


def pointing_game(maps: torch.Tensor, masks: torch.Tensor, *, tolerance: int = 0,
                  ties: str = "miss") -> torch.Tensor:
    """Does each map's maximum fall on the object? A bool tensor (N,).

    The pointing game of Zhang et al. (arXiv:1608.00507): a hit when the map's
    maximum lies within ``tolerance`` pixels of the mask (the mask grown by a
    square of that radius; Zhang et al. use 15 px on images of about 224 px).
    ``maps`` (N, h, w) are resized to the masks' size (N, H, W) as in ``mass_inside``.

    Ties do not count as hits (``ties="miss"``, the default): when the maximum is
    reached at several pixels, it is a hit only if *every* one of them lies in the
    (grown) mask; a tie between a pixel on the object and one off it is a miss, so a
    map cannot score by being flat where it is large (a blocky occlusion map's
    plateau must lie on the object as a whole). A constant map points nowhere and
    is a miss. ``ties="any"`` counts a hit when *any* maximal pixel is in the mask
    (the rule of this function before 2026-12; kept for comparison).
    """
    if ties not in ("miss", "any"):
        raise ValueError(f"ties must be 'miss' (a tie across the mask's edge is a miss) or 'any'; got {ties!r}.")
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
        raise ValueError(f"tolerance must be a non-negative int (pixels); got {tolerance!r}.")
    maps, masks = _maps_and_masks(maps, masks)
    if tolerance:
        masks = F.max_pool2d(masks[:, None].float(), 2 * tolerance + 1, stride=1, padding=tolerance)[:, 0] > 0
    flat, on_object = maps.flatten(1), masks.flatten(1)
    top, bottom = flat.amax(1), flat.amin(1)
    is_top = flat == top[:, None]
    if ties == "any":
        hit = (is_top & on_object).any(1)
    else:
        hit = ~(is_top & ~on_object).any(1)
    return hit & (top > bottom)


def class_probabilities(model: nn.Module, images: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """Softmax outputs (N, K) of ``model`` for ``images`` (N, 3, H, W), on the images' device.

    Forward passes only, in eval mode with frozen parameters, ``batch_size`` images at a time.
    """
    images = check_images(images, model=model)
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


# ---------------------------------------------------------------------------
# Deletion and insertion (Petsiuk et al., RISE, arXiv:1806.07421)
# ---------------------------------------------------------------------------

CURVE_SCORES = ("probability", "logit")


def _pixel_maps(maps: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """``maps`` (N, h, w) as floats at the images' size (N, H, W), bilinear when they differ."""
    if not isinstance(maps, torch.Tensor):
        maps = torch.as_tensor(maps)
    maps = maps.detach().to(images.device)
    if maps.dim() == 4 and maps.shape[1] == 1:
        maps = maps[:, 0]
    if maps.dim() != 3 or len(maps) != len(images):
        raise ValueError(f"maps must be (N, h, w), one per image: N = {len(images)} for images of shape "
                         f"{tuple(images.shape)}; got maps of shape {tuple(maps.shape)}. Reduce "
                         f"(N, 3, H, W) attributions to one map per image first (e.g. saliency_map).")
    maps = maps.float() if not maps.dtype.is_floating_point else maps
    if torch.isnan(maps).any():
        raise ValueError("maps contain NaN values; an order of the pixels needs a value at every pixel.")
    if maps.shape[-2:] != images.shape[-2:]:
        maps = F.interpolate(maps[:, None], size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return maps


def pixel_order(maps: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
    """The pixels of each map from the largest value to the smallest: a long tensor (N, h*w).

    ``order[n, 0]`` is the flat index (row * w + column) of map n's largest value.
    Ties are broken by a random permutation drawn from ``torch.Generator`` seeded
    with ``seed``, never by the pixels' index: a constant region (a blocky occlusion
    map, a map that is 0 on the background) is removed in random order, not from
    the top-left corner, which would reward or punish a map for where its ties lie.
    """
    values = torch.as_tensor(maps).detach().flatten(1)
    generator = torch.Generator().manual_seed(seed)
    shuffle = torch.rand(values.shape, generator=generator).argsort(dim=1).to(values.device)
    ranked = values.gather(1, shuffle).argsort(dim=1, descending=True, stable=True)
    return shuffle.gather(1, ranked)


def _baseline_images(images: torch.Tensor, baseline, blur_sigma: float, mean) -> torch.Tensor:
    if isinstance(baseline, torch.Tensor):
        if baseline.shape != images.shape:
            raise ValueError(f"A baseline tensor must have the images' shape {tuple(images.shape)}; "
                             f"got {tuple(baseline.shape)}.")
        return baseline.detach().to(device=images.device, dtype=images.dtype)
    return fill_images(images, baseline, mean=mean, blur_sigma=blur_sigma)


def _perturbation_curves(model: nn.Module, images: torch.Tensor, maps: torch.Tensor, target, *,
                         insert: bool, steps: int, baseline, blur_sigma: float, mean, score: str,
                         seed: int, batch_size: int, progress: bool) -> tuple[torch.Tensor, torch.Tensor]:
    images = check_images(images, model=model)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int (the number of equal pixel fractions); got {steps!r}.")
    if score not in CURVE_SCORES:
        raise ValueError(f"score must be one of {CURVE_SCORES}; got {score!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}.")
    x = images.detach()
    pixels = _pixel_maps(maps, x)
    n, (height, width) = len(x), x.shape[-2:]
    total = height * width
    order = pixel_order(pixels, seed=seed)
    rank = torch.empty_like(order)  # rank[n, p]: when pixel p is changed (0 = first)
    rank.scatter_(1, order, torch.arange(total, device=order.device).expand_as(order))
    counts = torch.tensor([k * total // steps for k in range(steps + 1)], device=x.device)
    base = _baseline_images(x, baseline, blur_sigma, mean)
    start, end = (base, x) if insert else (x, base)
    param = next(model.parameters(), None)
    device = param.device if param is not None else x.device

    def pick(values: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
        values = values.softmax(dim=1) if score == "probability" else values
        return values.gather(1, chosen[:, None])[:, 0]

    with frozen(model), torch.no_grad():
        logits = torch.cat([model(x[i:i + batch_size].to(device)) for i in range(0, n, batch_size)])
        target = resolve_target(model, x, target, logits=logits).to(x.device)

        def evaluate(jobs: torch.Tensor, _target) -> torch.Tensor:
            image, step = jobs[:, 0], jobs[:, 1]
            changed = (rank[image] < counts[step][:, None]).view(-1, 1, height, width)
            copies = torch.where(changed, end[image], start[image])
            return pick(model(copies.to(device)), target[image].to(device)).to(x.device)

        # The clean image's point (step 0 of deletion, the last step of insertion) comes from the
        # logits above; every other step is one perturbed copy per image.
        clean_step = steps if insert else 0
        others = torch.tensor([k for k in range(steps + 1) if k != clean_step], device=x.device)
        jobs = torch.cartesian_prod(torch.arange(n, device=x.device), others)
        perturbed = batched(evaluate, jobs, None, batch_size=batch_size, progress=progress,
                            desc="insertion" if insert else "deletion").view(n, steps)
        curves = torch.empty(n, steps + 1, dtype=perturbed.dtype, device=x.device)
        curves[:, others] = perturbed
        curves[:, clean_step] = pick(logits, target.to(logits.device)).to(x.device)
    return curves, curve_auc(curves, counts.to(curves.dtype) / total)


def curve_auc(curves: torch.Tensor, fractions: torch.Tensor | None = None) -> torch.Tensor:
    """The area under each curve (N, S+1) over the fraction of pixels changed: (N,).

    The trapezoid rule at ``fractions`` (S+1 values from 0 to 1; default equally
    spaced), as Petsiuk et al. do. A curve constant at p has area p.
    """
    curves = torch.as_tensor(curves)
    if fractions is None:
        fractions = torch.linspace(0, 1, curves.shape[-1], dtype=curves.dtype, device=curves.device)
    return torch.trapezoid(curves, x=fractions.to(curves.device), dim=-1)


def deletion_curves(model: nn.Module, images: torch.Tensor, maps: torch.Tensor, target=None, *,
                    steps: int = 16, baseline="blur", blur_sigma: float = 8.0, mean=None,
                    score: str = "probability", seed: int = 0, batch_size: int = DEFAULT_BATCH_SIZE,
                    progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The deletion metric of RISE (Petsiuk et al., arXiv:1806.07421): ``(curves (N, steps+1), auc (N,))``.

    Start from the image and replace its pixels by the ``baseline``'s, in the order of
    the map (largest value first; ties in random order, see ``pixel_order``), in
    ``steps`` equal fractions: after step k, the first ``k * H * W // steps`` pixels
    are replaced (all three channels). ``curves[n, k]`` is the target class's
    probability (``score="logit"``: its logit) after step k, so ``curves[n, 0]`` is
    the clean image's and ``curves[n, -1]`` the baseline's. A map that finds the
    evidence makes the curve fall fast: **lower AUC is better**.

    Args:
        model: a classifier returning logits (N, K); run frozen, under ``torch.no_grad``.
        images: (N, 3, H, W) float in [0, 1].
        maps: (N, h, w), one map per image (resized bilinearly to H×W when h×w differs;
            only their order matters).
        target: None (the predicted class of the clean image), an int, or N ints.
        steps: the number of fractions (each image costs steps + 1 forward passes, the
            clean image's included).
        baseline: what replaces the pixels: "blur" (the image blurred with std
            ``blur_sigma`` pixels), "grey", "zero", "mean" (``mean`` colour), a number in
            [0, 1] (the fills of ``occlusion.fill_images``), or a tensor (N, 3, H, W).
        seed: the tie-breaking permutation's seed.
        batch_size: perturbed copies per forward pass (8 suits lite0 on a small CPU;
            the 64×64 shapes CNN wants ~64); progress: a ``tqdm.auto`` bar.

    Returns the curves (N, steps+1) and their areas (N,) (``curve_auc``), on the images' device.

    Known limits: the perturbed images are out of distribution (the network may
    react to the baseline's shape — a grey silhouette of the object — rather than
    to the missing evidence); the result depends on the baseline; one pixel at a
    time ignores that evidence is spatially correlated.
    """
    return _perturbation_curves(model, images, maps, target, insert=False, steps=steps, baseline=baseline,
                                blur_sigma=blur_sigma, mean=mean, score=score, seed=seed,
                                batch_size=batch_size, progress=progress)


def insertion_curves(model: nn.Module, images: torch.Tensor, maps: torch.Tensor, target=None, *,
                     steps: int = 16, baseline="blur", blur_sigma: float = 8.0, mean=None,
                     score: str = "probability", seed: int = 0, batch_size: int = DEFAULT_BATCH_SIZE,
                     progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The insertion metric of RISE (arXiv:1806.07421): ``(curves (N, steps+1), auc (N,))``.

    The mirror of ``deletion_curves`` (same arguments): start from the ``baseline``
    (by default the blurred image, as in the paper) and put the image's pixels back
    in the map's order, largest first. ``curves[n, 0]`` is the baseline's
    probability, ``curves[n, -1]`` the clean image's. A map that finds the evidence
    makes the curve rise fast: **higher AUC is better**.

    Known limits: as for deletion; in addition, a few sharp pixels inserted into a
    blurred image are themselves an unusual pattern.
    """
    return _perturbation_curves(model, images, maps, target, insert=True, steps=steps, baseline=baseline,
                                blur_sigma=blur_sigma, mean=mean, score=score, seed=seed,
                                batch_size=batch_size, progress=progress)


# ---------------------------------------------------------------------------
# Controls, two-object test images, and one table for several methods (notebook 07)
# ---------------------------------------------------------------------------

def random_maps(n: int, size: tuple[int, int], *, seed: int = 0) -> torch.Tensor:
    """A control: uniform noise maps (n, H, W) from a ``torch.Generator`` seeded with ``seed``.

    A method that does not beat it has found nothing."""
    return torch.rand(n, *size, generator=torch.Generator().manual_seed(seed))


def centre_maps(n: int, size: tuple[int, int], *, sigma: float = 0.2) -> torch.Tensor:
    """A control: the same Gaussian bump at the image centre for every image, (n, H, W).

    ``sigma`` is the bump's std as a fraction of the image's side. It knows nothing about
    the image, only that objects tend to lie near the middle: a method that does not beat it
    is not localizing the object better than a centre prior does."""
    height, width = size
    ys = (torch.arange(height, dtype=torch.float32) - (height - 1) / 2) / (sigma * height)
    xs = (torch.arange(width, dtype=torch.float32) - (width - 1) / 2) / (sigma * width)
    bump = torch.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2))
    return bump.expand(n, height, width).clone()


def two_objects(pool, n: int, *, max_area: float = 0.12, margin: int = 3):
    """Images with two objects of different classes, made from a ``shapes.ShapesData`` pool.

    Goes through the pool in order and pairs image i with the first later image j
    whose object is of another class, whose mask stays ``margin`` pixels away from
    i's object, and whose colour is at least ``shapes.MIN_CONTRAST`` away from i's
    mean background colour; both objects cover at most ``max_area`` of the image.
    j's object is pasted onto image i (its exact colour, on its mask).

    Returns ``(first, second)``, two ``ShapesData`` with the *same* composite images
    and each object's label, mask, box and colour. Fewer than ``n`` when the pool runs
    out (draw a larger pool: about 12 images per pair suffice at the defaults).
    """
    from .shapes import MIN_CONTRAST, ShapesData, dilate

    masks = pool.masks
    area = masks.flatten(1).float().mean(1)
    grown = dilate(masks, margin)
    background = ~masks
    bg_mean = (pool.images * background[:, None]).sum((2, 3)) / background.sum((1, 2)).clamp(min=1)[:, None]
    used, pairs = set(), []
    for i in range(len(pool)):
        if len(pairs) == n:
            break
        if i in used or area[i] > max_area:
            continue
        for j in range(i + 1, len(pool)):
            if (j in used or area[j] > max_area or pool.labels[j] == pool.labels[i]
                    or (grown[i] & masks[j]).any()
                    or (pool.colors[j] - bg_mean[i]).norm() < MIN_CONTRAST):
                continue
            pairs.append((i, j))
            used |= {i, j}
            break
    a = torch.tensor([p[0] for p in pairs], dtype=torch.long)
    b = torch.tensor([p[1] for p in pairs], dtype=torch.long)
    composite = torch.where(masks[b][:, None], pool.colors[b][:, :, None, None], pool.images[a])

    def part(idx):
        return ShapesData(images=composite, labels=pool.labels[idx], masks=masks[idx],
                          boxes=pool.boxes[idx], colors=pool.colors[idx], classes=pool.classes)

    return part(a), part(b)


def localization_scores(model: nn.Module, images: torch.Tensor, maps: torch.Tensor, masks: torch.Tensor,
                        target=None, **curve_options) -> dict[str, torch.Tensor]:
    """Every localization score of ``maps`` (N, h, w) at once, one value per image.

    ``"pointing"`` (bool: ``pointing_game``), ``"mass"`` (``mass_inside``),
    ``"deletion"`` and ``"insertion"`` (the AUCs of ``deletion_curves`` /
    ``insertion_curves``, with ``curve_options`` such as steps, baseline, batch_size).
    """
    _, deletion = deletion_curves(model, images, maps, target, **curve_options)
    _, insertion = insertion_curves(model, images, maps, target, **curve_options)
    return {"pointing": pointing_game(maps, masks).cpu(), "mass": mass_inside(maps, masks).cpu(),
            "deletion": deletion.cpu(), "insertion": insertion.cpu()}


SCORE_LABELS = {"pointing": "pointing game (hits, %) ↑", "mass": "mass inside the mask ↑",
                "deletion": "deletion AUC ↓", "insertion": "insertion AUC ↑"}


def show_localization(table: dict[str, dict[str, torch.Tensor]], *, controls=(), cell: float = 3.2,
                      title: str | None = None):
    """One bar chart per score: methods as bars (mean over images), ``controls`` hatched.

    ``table``: method → ``localization_scores`` dict. Each bar carries its value; the
    error bar is the standard error of the mean over images. Returns the figure.
    """
    import matplotlib.pyplot as plt

    names = list(table)
    scores = list(next(iter(table.values())))
    fig, axes = plt.subplots(1, len(scores), figsize=(cell * len(scores), cell + 0.8), squeeze=False,
                             layout="constrained")
    for ax, score in zip(axes[0], scores):
        values = [table[m][score].float() * (100 if score == "pointing" else 1) for m in names]
        means = [float(v.mean()) for v in values]
        errors = [float(v.std() / len(v) ** 0.5) for v in values]
        bars = ax.bar(range(len(names)), means, yerr=errors, capsize=2,
                      color=["lightgrey" if m in controls else "tab:blue" for m in names],
                      hatch=None, edgecolor="black", linewidth=0.5)
        for bar, m in zip(bars, names):
            if m in controls:
                bar.set_hatch("//")
        ax.bar_label(bars, fmt="%.0f" if score == "pointing" else "%.2f", fontsize=7, padding=2)
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
        ax.set_title(SCORE_LABELS.get(score, score), fontsize=9)
    if title:
        fig.suptitle(title)
    return fig

"""Notebook 09 — reconstructing images from a network's features: feature inversion and
neural style (Gatys et al., arXiv:1508.06576). Notebook 10's feed-forward stylizer trains
on the same losses.

- ``features(model, images, layers)``: the layers' outputs, kept in the autograd graph.
- ``gram_matrix(features)``: the channels' correlations, which discard where things are.
- ``content_loss``, ``style_loss``: the two terms of Gatys et al.'s objective; the third,
  total variation, is ``optimize.total_variation``.
- ``invert(model, images, layer)``: an image whose features at ``layer`` match the
  original's (Mahendran & Vedaldi, arXiv:1412.0035); ``relative_feature_error`` and
  ``layout_and_detail`` score it.
- ``style_transfer(model, content, style, ...)``: Gatys et al.'s image optimization;
  ``gatys_losses`` scores any image with the same content and style terms;
  ``balanced_style_weights`` makes every style layer count equally.
- ``match_points(model, source, points, target, layer)``: corresponding points by nearest
  features (Long et al., "Do ConvNets learn correspondence?", arXiv:1411.1091);
  ``correspondence_accuracy`` scores it on pairs of shapes images with known keypoints.
- ``shuffle_patches(images, patch, seed=...)``: the same pixels with the layout destroyed
  at a chosen scale (what the Gram matrix cannot see); ``gram_distance`` measures it.
- Style images that need no network: ``style_image(name)`` (scikit-image's textures and
  photos, a procedural ``brush_strokes`` painting); classic paintings come from the asset
  registry (``assets.ASSETS``, kind ``painting``), fetched when there is internet or a lab
  mirror (``data_scripts/fetch_assets.py --kind painting``).

Every optimization runs on ``optimize.optimize_image``, the course's one loop.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import nn

from . import assets
from .attribution import check_images
from .hooks import frozen, layer_list, record, too_small_errors
from .images import load_image, to_tensor
from .optimize import Optimized, optimize_image, total_variation


def features(model: nn.Module, images: torch.Tensor, layers: str | Sequence[str], *,
             check: bool = True) -> dict[str, torch.Tensor]:
    """The outputs of ``layers`` for ``images`` (N, 3, H, W): name → (N, C, h, w).

    They stay in the autograd graph (a loss on them back-propagates to ``images``); run
    under ``torch.no_grad()`` for fixed targets. The caller freezes the model
    (``hooks.frozen``, or ``optimize_image(..., model=model)``). Images are checked and
    converted to the model's dtype (``attribution.check_images``); ``check=False`` skips
    that, for a network's outputs that may leave [0, 1] (a stylizer's, in training).
    """
    if check:
        images = check_images(images, model=model)
    names = layer_list(layers)
    with record(model, names, keep_graph=True) as rec, too_small_errors(model):
        model(images)
    return {name: rec.activations[name] for name in names}


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """The Gram matrix of each feature map: (N, C, h, w) → (N, C, C), divided by C·h·w.

    ``G[c, d] = sum over positions of F[c, p]·F[d, p] / (C·h·w)``: how strongly channels c
    and d fire *together*, summed over positions, so it keeps which features occur and
    co-occur but not where. (Gatys et al. use the plain sum with a 1/(4·C²·(hw)²) factor in
    the loss; dividing here makes the style loss comparable across layers and image sizes,
    as in Johnson et al., arXiv:1603.08155.)
    """
    if features.dim() != 4:
        raise ValueError(f"features must be (N, C, h, w); got shape {tuple(features.shape)}.")
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of feature maps, per image: (N, C, h, w) twice → (N,).

    ``target`` may hold one image's features (1, C, h, w), broadcast over the batch.
    """
    if features.shape[1:] != target.shape[1:]:
        raise ValueError(f"features {tuple(features.shape)} and target {tuple(target.shape)} differ in "
                         f"shape: compute both at the same layer and image size.")
    return ((features - target) ** 2).flatten(1).mean(1)


def style_loss(features: dict[str, torch.Tensor], target_grams: dict[str, torch.Tensor],
               weights: dict[str, float] | None = None) -> torch.Tensor:
    """Sum over layers of w_l · ‖G(F_l) − G_target,l‖² (squared Frobenius norm), per image: (N,).

    ``features``: layer → (N, C, h, w); ``target_grams``: layer → (1 or N, C, C), e.g.
    ``gram_matrix`` of the style image's features; ``weights``: layer → weight (default 1).
    Layers in ``target_grams`` that are missing from ``features`` raise a KeyError.
    """
    missing = [name for name in target_grams if name not in features]
    if missing:
        raise KeyError(f"style_loss: no features for layers {missing}; got {list(features)}.")
    weights = weights or {}
    losses = [weights.get(name, 1.0) * ((gram_matrix(features[name]) - gram) ** 2).flatten(1).sum(1)
              for name, gram in target_grams.items()]
    return torch.stack(losses).sum(0)


# ---------------------------------------------------------------------------
# Shared by inversion and style transfer
# ---------------------------------------------------------------------------

INITS = ("noise", "grey", "content")


def start_images(like: torch.Tensor, init="noise", *, seed: int = 0, allowed: tuple[str, ...] = INITS) -> torch.Tensor:
    """Starting images for an optimization, shaped like ``like`` (N, 3, H, W), on its device.

    ``init``: ``"noise"`` — grey plus Gaussian noise of std 0.1, clamped to [0, 1], drawn
    from ``seed`` (a private generator, on the CPU: the same numbers on any device);
    ``"grey"``; ``"content"`` — a copy of ``like``; or a tensor of that shape, returned as it
    is. ``allowed``: the names a caller accepts (``invert`` has no content image).
    """
    if isinstance(init, torch.Tensor):
        init = check_images(init, "init")
        if init.shape != like.shape:
            raise ValueError(f"init must have the images' shape {tuple(like.shape)}; got {tuple(init.shape)}.")
        return init.to(like.device, like.dtype)
    if init not in allowed:
        raise ValueError(f"init must be one of {allowed} or a tensor (N, 3, H, W) in [0, 1]; got {init!r}.")
    if init == "content":
        return like.detach().clone()
    if init == "grey":
        return torch.full_like(like, 0.5)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(like.shape, generator=generator)  # drawn on the CPU: the same on any device
    return (0.5 + 0.1 * noise).clamp(0, 1).to(like.device, like.dtype)


def _per_image(value, n: int, name: str, device: torch.device) -> torch.Tensor:
    """A weight given as one number or one per image → a tensor (N,)."""
    weights = torch.as_tensor(value, dtype=torch.float32).to(device)
    if weights.dim() == 0:
        return weights.expand(n)
    if weights.shape != (n,):
        raise ValueError(f"{name} must be a number or one value per image ({n}); got shape {tuple(weights.shape)}.")
    return weights


def _default_parameterization(optimizer: str, parameterization: str | None) -> str:
    # L-BFGS's curvature estimate assumes a smooth objective; the pixel clamp is not (optimize.py).
    return parameterization or ("sigmoid" if optimizer == "lbfgs" else "pixel")


# ---------------------------------------------------------------------------
# Feature inversion (Mahendran & Vedaldi, arXiv:1412.0035)
# ---------------------------------------------------------------------------

def _layers_per_image(layer: str | Sequence[str], n: int) -> list[str]:
    names = [layer] * n if isinstance(layer, str) else layer_list(layer)
    if len(names) != n:
        raise ValueError(f"layer must be one name, or one name per image ({n}); got {len(names)} names.")
    return names


def _relative_squared_errors(model: nn.Module, images: torch.Tensor, names: list[str],
                             targets: list[torch.Tensor]) -> torch.Tensor:
    """‖φ_l(x_i) − target_i‖² / ‖target_i‖² for each image i and its layer l: (N,)."""
    feats = features(model, images, sorted(set(names)))
    return torch.stack([((feats[name][i] - target) ** 2).sum() / (target ** 2).sum().clamp(min=1e-12)
                        for i, (name, target) in enumerate(zip(names, targets))])


def _targets(model: nn.Module, images: torch.Tensor, names: list[str]) -> list[torch.Tensor]:
    with frozen(model), torch.no_grad():
        feats = features(model, images, sorted(set(names)))
    return [feats[name][i] for i, name in enumerate(names)]


def invert(model: nn.Module, images: torch.Tensor, layer: str | Sequence[str], *, steps: int = 200,
           tv: float = 1e-4, l2: float = 0.0, lr: float = 0.05, init="noise", optimizer: str = "adam",
           parameterization: str | None = None, seed: int = 0, progress: bool = True) -> Optimized:
    """Reconstruct images from their features at ``layer`` (Mahendran & Vedaldi, arXiv:1412.0035).

    Minimizes, for each image x₀ with features φ₀ = φ_l(x₀),

        ‖φ_l(x) − φ₀‖² / ‖φ₀‖²  +  tv · TV(x)  +  l2 · ‖x − ½‖²

    over x, with ``optimize.optimize_image`` (the relative error makes one ``tv`` suit
    every layer; TV is ``optimize.total_variation`` with β = 2, summed over the image).

    Args:
        model: the network (frozen for the run and left exactly as it was).
        images: (N, 3, H, W) in [0, 1], the originals.
        layer: a name from ``model.layer_names`` for every image, or a list of N names,
            one per image (one batched run reconstructs the same image from several layers
            with the same budget).
        steps: forward+backward passes; lr, optimizer, parameterization: see
            ``optimize_image`` (the parameterization defaults to ``"sigmoid"`` for L-BFGS,
            ``"pixel"`` otherwise).
        tv: the weight of the total variation (TV sums over pixels, so it scales with the
            image area): 1e-4 suits 128 × 128 images; larger gives smoother, blurrier images.
        l2: the weight of ‖x − ½‖² (Mahendran & Vedaldi's α-norm with α = 2), default off.
        init: ``"noise"`` (grey plus Gaussian noise of std 0.1 drawn from ``seed``),
            ``"grey"``, or a tensor like ``images``.
        seed: seeds the noise (a private generator; no global state).

    Returns an ``Optimized``: ``images`` (N, 3, H, W), the loss history, the passes spent.

    Known limits: the answer is not unique — any image with the same features is a
    solution, and the regularizer (not the network) decides which one we see; the
    optimization is local and stops after ``steps``, so a large error can mean "not
    converged" as well as "information lost". Compare layers at the same budget.
    """
    images = check_images(images, model=model)
    names = _layers_per_image(layer, len(images))
    targets = _targets(model, images, names)
    start = start_images(images, init, seed=seed, allowed=("noise", "grey"))
    parameterization = _default_parameterization(optimizer, parameterization)
    return optimize_image(lambda x: _relative_squared_errors(model, x, names, targets), start, steps=steps,
                          lr=lr, optimizer=optimizer, parameterization=parameterization, l2=l2, tv=tv,
                          model=model, seed=seed, progress=progress, desc="inversion")


def relative_feature_error(model: nn.Module, candidates: torch.Tensor, images: torch.Tensor,
                           layer: str | Sequence[str]) -> torch.Tensor:
    """‖φ_l(x̂) − φ_l(x)‖ / ‖φ_l(x)‖ per image: (N,), for candidates x̂ and originals x (N, 3, H, W).

    ``layer``: one name, or one per image (as in ``invert``). 0 means identical features; an
    unrelated image typically scores near or above 1.
    """
    candidates = check_images(candidates, "candidates", model=model)
    images = check_images(images, model=model)
    if candidates.shape != images.shape:
        raise ValueError(f"candidates {tuple(candidates.shape)} and images {tuple(images.shape)} differ in shape.")
    names = _layers_per_image(layer, len(images))
    targets = _targets(model, images, names)
    with frozen(model), torch.no_grad():
        return _relative_squared_errors(model, candidates, names, targets).sqrt()


# ---------------------------------------------------------------------------
# Neural style (Gatys, Ecker & Bethge, arXiv:1508.06576)
# ---------------------------------------------------------------------------

def _style_layer_weights(style_layers: str | Sequence[str] | dict[str, float]) -> dict[str, float]:
    """A list of layers → equal weights summing to 1 (as Gatys et al.'s w_l = 1/5); a dict as given."""
    if isinstance(style_layers, dict):
        if not style_layers:
            raise ValueError("style_layers is empty; name at least one layer.")
        return {str(name): float(w) for name, w in style_layers.items()}
    names = layer_list(style_layers)
    return {name: 1.0 / len(names) for name in names}


def _gatys_targets(model, content, style, content_layer, weights):
    if style.shape[0] not in (1, content.shape[0]):
        raise ValueError(f"style must hold one image or one per content image ({content.shape[0]}); "
                         f"got {style.shape[0]}.")
    with frozen(model), torch.no_grad():
        content_target = features(model, content, content_layer)[content_layer]
        style_feats = features(model, style, list(weights))
    return content_target, {name: gram_matrix(f) for name, f in style_feats.items()}


def _gatys_terms(model, images, content_layer, content_target, style_grams, weights):
    feats = features(model, images, sorted({content_layer, *weights}))
    return content_loss(feats[content_layer], content_target), style_loss(feats, style_grams, weights)


def balanced_style_weights(model: nn.Module, style: torch.Tensor, layers: Sequence[str]) -> dict[str, float]:
    """Layer weights w_l = 1 / (L · ‖G_l(style)‖²_F) for ``style_layers``: each layer's Gram
    error then counts *relative* to the style's own Gram, equally for all L layers.

    Why: the Gram matrices of different layers differ in size by orders of magnitude (on
    efficientnet_lite0 the stem's is ~1000× a middle block's), so with equal weights the
    largest layer alone decides the style. ``style``: (1, 3, h, w) in [0, 1].
    """
    style = check_images(style, "style", model=model)
    names = layer_list(layers)
    with frozen(model), torch.no_grad():
        feats = features(model, style[:1], names)
    return {name: 1.0 / (len(names) * gram_matrix(feats[name]).pow(2).sum().clamp(min=1e-12).item())
            for name in names}


def style_transfer(model: nn.Module, content: torch.Tensor, style: torch.Tensor, *, content_layer: str,
                   style_layers: Sequence[str] | dict[str, float], content_weight=1.0, style_weight=10.0,
                   tv_weight: float = 1e-4, init="content", steps: int = 150, optimizer: str = "adam",
                   lr: float | None = None, parameterization: str | None = None, seed: int = 0,
                   progress: bool = True) -> Optimized:
    """Gatys et al.'s neural style (arXiv:1508.06576): an image with ``content``'s features and ``style``'s Grams.

    Minimizes, for each content image, over the image x,

        content_weight · content_loss(φ_c(x), φ_c(content))
          + style_weight · Σ_l w_l ‖G(φ_l(x)) − G(φ_l(style))‖²_F  +  tv_weight · TV(x)

    with ``optimize.optimize_image`` (G: ``gram_matrix``, normalized by C·h·w; TV:
    ``optimize.total_variation``).

    Args:
        model: the network (frozen for the run and left exactly as it was).
        content: (N, 3, H, W) in [0, 1]. style: (1, 3, h, w) for every content image, or
            (N, 3, h, w); its size may differ from the content's (the Gram is normalized).
        content_layer: one layer name; style_layers: a list of names (equal weights w_l
            summing to 1) or a dict name → w_l.
        content_weight, style_weight: a number, or one per image (N,): a batch of content
            copies with different weights is a weight sweep in one run (with Adam the
            images do not interact, so each equals its own run; L-BFGS couples them).
            With ``balanced_style_weights`` on the default model, style weights 0.1–100
            span the trade-off from "the photo" to "the texture" (notebook 09).
        tv_weight: the weight of the total variation (smoothness) term.
        init: ``"content"`` (start from the photo), ``"noise"`` (grey plus noise of std 0.1
            drawn from ``seed``), ``"grey"``, or a tensor like ``content``.
        steps: forward+backward passes; optimizer: ``"adam"`` or ``"lbfgs"`` (or the others
            of ``optimize_image``); lr: default 0.02 for Adam with pixels, 1 for L-BFGS;
            parameterization: default ``"sigmoid"`` for L-BFGS, ``"pixel"`` otherwise.

    Returns an ``Optimized``, with ``terms``: ``{"content": [...], "style": [...]}``, the weighted
    content and style terms (summed over the batch) at each pass, as ``losses`` (which adds the
    TV term); ``gatys_losses`` scores its images term by term.

    Known limits: the balance of the terms depends on the layers, the image sizes and
    the network (weights are not portable between models); Gram matrices keep which
    features co-occur but not where, so large-scale structure of the style (and of the
    content, at a deep content layer) is not reproduced; a local optimum after ``steps``.
    """
    content = check_images(content, "content", model=model)
    style = check_images(style, "style", model=model)
    weights = _style_layer_weights(style_layers)
    n, device = len(content), content.device
    cw = _per_image(content_weight, n, "content_weight", device)
    sw = _per_image(style_weight, n, "style_weight", device)
    content_target, style_grams = _gatys_targets(model, content, style, content_layer, weights)
    parameterization = _default_parameterization(optimizer, parameterization)
    if lr is None:
        lr = 1.0 if optimizer == "lbfgs" else 0.02

    terms: dict[str, list[float]] = {"content": [], "style": []}

    def loss_fn(x: torch.Tensor) -> torch.Tensor:
        c, s = _gatys_terms(model, x, content_layer, content_target, style_grams, weights)
        terms["content"].append((cw * c).sum().item())  # weighted, summed over the batch, per pass
        terms["style"].append((sw * s).sum().item())
        return cw * c + sw * s

    result = optimize_image(loss_fn, start_images(content, init, seed=seed), steps=steps, lr=lr,
                            optimizer=optimizer, parameterization=parameterization, tv=tv_weight,
                            model=model, seed=seed, progress=progress, desc="style transfer")
    result.terms = terms
    return result


def gatys_losses(model: nn.Module, images: torch.Tensor, content: torch.Tensor, style: torch.Tensor, *,
                 content_layer: str, style_layers: Sequence[str] | dict[str, float]) -> dict[str, torch.Tensor]:
    """The unweighted terms of ``style_transfer``'s objective for ``images`` (N, 3, H, W):
    ``{"content": (N,), "style": (N,), "tv": (N,)}`` (the same definitions and layer weights)."""
    images = check_images(images, model=model)
    content = check_images(content, "content", model=model)
    style = check_images(style, "style", model=model)
    weights = _style_layer_weights(style_layers)
    content_target, style_grams = _gatys_targets(model, content, style, content_layer, weights)
    with frozen(model), torch.no_grad():
        c, s = _gatys_terms(model, images, content_layer, content_target, style_grams, weights)
    return {"content": c, "style": s, "tv": total_variation(images)}


# ---------------------------------------------------------------------------
# Layout: shuffled patches, and correspondence (Long et al., arXiv:1411.1091)
# ---------------------------------------------------------------------------

def shuffle_patches(images: torch.Tensor, patch: int, *, seed: int = 0) -> torch.Tensor:
    """The images cut into non-overlapping ``patch`` × ``patch`` tiles, the tiles permuted: (N, 3, H, W).

    Each image gets its own random permutation from ``seed`` (a private generator). Every
    pixel is kept, so colour statistics and structure *smaller* than the patch survive;
    the layout above the patch size is destroyed. When ``patch`` does not divide H or W,
    the last rows / columns (the remainder) stay where they are.
    """
    images = check_images(images)
    n, c, height, width = images.shape
    if isinstance(patch, bool) or not isinstance(patch, int) or patch < 1:
        raise ValueError(f"patch must be a positive int (pixels); got {patch!r}.")
    rows, cols = height // patch, width // patch
    if rows * cols < 2:
        raise ValueError(f"patch {patch} leaves fewer than 2 tiles in {height}×{width} images: nothing to "
                         f"shuffle; use patch ≤ {max(height, width) // 2}.")
    generator = torch.Generator().manual_seed(seed)
    order = torch.stack([torch.randperm(rows * cols, generator=generator) for _ in range(n)]).to(images.device)
    region = images[:, :, :rows * patch, :cols * patch]
    tiles = region.reshape(n, c, rows, patch, cols, patch).permute(0, 2, 4, 1, 3, 5)
    tiles = tiles.reshape(n, rows * cols, c, patch, patch)
    tiles = tiles[torch.arange(n, device=images.device)[:, None], order]
    out = images.clone()
    tiles = tiles.reshape(n, rows, cols, c, patch, patch).permute(0, 3, 1, 4, 2, 5)
    out[:, :, :rows * patch, :cols * patch] = tiles.reshape(n, c, rows * patch, cols * patch)
    return out


def layout_and_detail(candidates: torch.Tensor, images: torch.Tensor, *, cell: int = 16) -> dict[str, torch.Tensor]:
    """How much of each image's layout and of its detail a reconstruction keeps: (N,) each.

    Both images are turned to grey (the mean of R, G, B) and split into a coarse part (the
    mean over each ``cell`` × ``cell`` block: the layout) and the rest (what varies inside
    the blocks: the detail). ``"layout"`` is the Pearson correlation of the coarse parts,
    ``"detail"`` that of the rest: 1 = kept, 0 = unrelated (0 too when a part is constant).
    Correlations ignore brightness and contrast, which inversions often get wrong while
    the picture is right. H and W must be multiples of ``cell``.
    """
    candidates = check_images(candidates, "candidates")
    images = check_images(images)
    if candidates.shape != images.shape:
        raise ValueError(f"candidates {tuple(candidates.shape)} and images {tuple(images.shape)} differ in shape.")
    if images.shape[-1] % cell or images.shape[-2] % cell:
        raise ValueError(f"cell {cell} must divide the image size {tuple(images.shape[-2:])}.")

    def parts(x):
        grey = x.mean(1, keepdim=True)
        coarse = F.avg_pool2d(grey, cell)
        return coarse, grey - F.interpolate(coarse, scale_factor=cell, mode="nearest")

    def correlation(a, b):
        a, b = a.flatten(1) - a.flatten(1).mean(1, keepdim=True), b.flatten(1) - b.flatten(1).mean(1, keepdim=True)
        return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp(min=1e-12)

    (lc, dc), (li, di) = parts(candidates.detach()), parts(images.detach())
    return {"layout": correlation(lc, li), "detail": correlation(dc, di)}


def gram_distance(model: nn.Module, images: torch.Tensor, reference: torch.Tensor,
                  layers: str | Sequence[str]) -> dict[str, torch.Tensor]:
    """‖G_l(x) − G_l(reference)‖²_F / ‖G_l(reference)‖²_F per layer l and image x: {layer: (N,)}.

    ``images`` (N, 3, H, W) against one ``reference`` (1, 3, h, w) (sizes may differ): 0 =
    the same Gram (the same "style" at that layer), 1 = as far as all-zero features.
    """
    images = check_images(images, model=model)
    reference = check_images(reference, "reference", model=model)
    names = layer_list(layers)
    with frozen(model), torch.no_grad():
        ours, theirs = features(model, images, names), features(model, reference[:1], names)
    out = {}
    for name in names:
        target = gram_matrix(theirs[name])
        out[name] = ((gram_matrix(ours[name]) - target) ** 2).flatten(1).sum(1) / (target ** 2).sum().clamp(min=1e-12)
    return out


def match_points(model: nn.Module, source: torch.Tensor, points: torch.Tensor, target: torch.Tensor,
                 layer: str, *, normalize: bool = False) -> torch.Tensor:
    """For each point of ``source``, the position in ``target`` with the nearest features at ``layer``.

    Long, Zhang & Darrell, "Do ConvNets learn correspondence?" (NeurIPS 2014,
    arXiv:1411.1091): describe a point by the layer's feature vector there, and find the
    point of the other image whose feature vector is nearest (Euclidean distance; with
    ``normalize=True`` the vectors are scaled to unit length first, i.e. cosine).

    Args:
        source, target: (N, 3, H, W) in [0, 1], the same size; pair i is (source[i], target[i]).
        points: (N, K, 2) float pixel coordinates (x, y) in source, with (0, 0) the top-left
            *corner* of the image (a pixel's centre is at +0.5), e.g. from
            ``shapes.object_keypoints``.
        layer: a layer name; its map (N, C, h, w) is read at the source points by bilinear
            interpolation, and upsampled bilinearly to H × W for the target (so a coarse
            layer can still answer between its cells).

    Returns (N, K, 2): the matched pixel centres (x, y) in the target.

    Known limits: a nearest neighbour, no geometric consistency between the points; the
    features of a coarse layer are smooth, so neighbouring pixels are near-ties.
    """
    source = check_images(source, "source", model=model)
    target = check_images(target, "target", model=model)
    if source.shape != target.shape:
        raise ValueError(f"source {tuple(source.shape)} and target {tuple(target.shape)} must have one shape.")
    n, _, height, width = source.shape
    points = torch.as_tensor(points, dtype=source.dtype, device=source.device)
    if points.dim() != 3 or points.shape[0] != n or points.shape[2] != 2:
        raise ValueError(f"points must be (N, K, 2) pixel coordinates (x, y) with N = {n}; got shape "
                         f"{tuple(points.shape)}.")
    with frozen(model), torch.no_grad():
        maps = features(model, torch.cat([source, target]), layer)[layer]
    return _nearest_positions(maps[:n], points, maps[n:], (height, width), normalize).to(points.dtype)


def _nearest_positions(source_maps: torch.Tensor, points: torch.Tensor, target_maps: torch.Tensor,
                       size: tuple[int, int], normalize: bool) -> torch.Tensor:
    """match_points' search on maps (N, C, h, w) of images of ``size`` (H, W): (N, K, 2) pixel centres."""
    height, width = size
    source_maps, target_maps = source_maps.float(), target_maps.float()
    scale = torch.tensor([width, height], dtype=torch.float32, device=source_maps.device)
    grid = (points.float() / scale * 2 - 1)[:, :, None]  # align_corners=False: ±1 = the image's edges
    query = F.grid_sample(source_maps, grid, mode="bilinear", align_corners=False)[..., 0].transpose(1, 2)
    if target_maps.shape[-2:] != (height, width):
        target_maps = F.interpolate(target_maps, size=(height, width), mode="bilinear", align_corners=False)
    keys = target_maps.flatten(2)  # (N, C, H·W)
    if normalize:  # cosine: one batched matmul, divided by the keys' lengths
        score = F.normalize(query, dim=2) @ keys / keys.norm(dim=1, keepdim=True).clamp(min=1e-12)
        nearest = score.argmax(dim=2)
    else:
        nearest = torch.cdist(query, keys.transpose(1, 2), compute_mode="donot_use_mm_for_euclid_dist").argmin(dim=2)
    return torch.stack([nearest % width, nearest // width], dim=2).float() + 0.5


def within_radius(predicted: torch.Tensor, truth: torch.Tensor, radius: float) -> torch.Tensor:
    """Whether each predicted point (…, 2) lies within ``radius`` pixels of its true point: bool (…)."""
    predicted, truth = torch.as_tensor(predicted), torch.as_tensor(truth).to(predicted)
    if predicted.shape != truth.shape or predicted.shape[-1] != 2:
        raise ValueError(f"predicted {tuple(predicted.shape)} and truth {tuple(truth.shape)} must both be (…, 2).")
    return (predicted - truth).norm(dim=-1) <= radius


def random_points(masks: torch.Tensor, k: int, *, seed: int = 0) -> torch.Tensor:
    """k points per image drawn uniformly among the pixels where ``masks`` (N, H, W) is True,
    as pixel centres (x, y): (N, k, 2). The chance level of ``match_points``: pass a mask
    of ones for "anywhere in the image", an object mask for "anywhere on the object"."""
    if masks.dim() != 3 or masks.dtype != torch.bool:
        raise ValueError(f"masks must be bool (N, H, W); got {masks.dtype} {tuple(masks.shape)}.")
    generator = torch.Generator().manual_seed(seed)
    width, out = masks.shape[2], []
    for mask in masks.cpu():
        where = mask.flatten().nonzero()[:, 0]
        if len(where) == 0:
            raise ValueError("random_points: a mask without any True pixel.")
        pick = where[torch.randint(len(where), (k,), generator=generator)]
        out.append(torch.stack([pick % width, pick // width], dim=1).float() + 0.5)
    return torch.stack(out).to(masks.device)


def correspondence_pairs(labels: torch.Tensor, keypoints: Sequence[np.ndarray], *, classes: Sequence[int],
                         max_rotation: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint pairs of images of one class, for ``match_points``: index tensors (a, b).

    Goes through the images in order; each image not yet paired, of one of ``classes``, is
    paired with the next unpaired image of its class — with ``max_rotation`` (degrees), the
    next whose rotation differs by at most that much. The rotation is read from the
    keypoints (K, 2) of ``shapes.object_keypoints``: the direction from their mean to
    vertex 0 (meaningful for shapes without rotational symmetry, e.g. arrow, lshape).
    """
    labels = torch.as_tensor(labels).tolist()
    if len(labels) != len(keypoints):
        raise ValueError(f"labels ({len(labels)}) and keypoints ({len(keypoints)}) must have one entry per image.")
    angles = [float(np.degrees(np.arctan2(*(p[0] - p.mean(0))[::-1]))) for p in keypoints]
    wanted, used, pairs = set(int(c) for c in classes), set(), []
    for i, label in enumerate(labels):
        if label not in wanted or i in used:
            continue
        for j in range(i + 1, len(labels)):
            turn = abs((angles[j] - angles[i] + 180) % 360 - 180)
            if labels[j] == label and j not in used and (max_rotation is None or turn <= max_rotation):
                pairs.append((i, j))
                used |= {i, j}
                break
    a, b = zip(*pairs) if pairs else ((), ())
    return torch.tensor(a, dtype=torch.long), torch.tensor(b, dtype=torch.long)


def correspondence_accuracy(model: nn.Module, images: torch.Tensor, keypoints: Sequence[np.ndarray],
                            pairs: tuple[torch.Tensor, torch.Tensor], layers: str | Sequence[str], *,
                            radius: float = 4.0, normalize: bool = True, masks: torch.Tensor | None = None,
                            seed: int = 0, chunk: int = 32) -> dict[str, float]:
    """Long et al.'s keypoint transfer, scored: for each pair (a, b), every keypoint of image a
    is matched into image b by ``match_points``; the result is the fraction of keypoints that
    land within ``radius`` pixels of their true partner, per layer: {layer: accuracy}.

    Args:
        images: (M, 3, H, W); keypoints: M arrays (K_i, 2) of (x, y), corresponding by index
            within a class (``shapes.object_keypoints``); pairs: index tensors (a, b) from
            ``correspondence_pairs`` (pairs with different K are matched in separate groups).
        normalize: compare unit-length feature vectors (cosine; the default here, since the
            shapes' colours — and so the feature magnitudes — are random).
        masks: optional bool (M, H, W): adds the chance levels ``"chance: anywhere"`` (a
            uniformly random pixel of image b) and ``"chance: on the object"`` (a random pixel
            of b's mask), drawn from ``seed``.
        chunk: pairs matched at a time (memory: chunk · C · H · W floats per layer).
    """
    a, b = (torch.as_tensor(t, dtype=torch.long) for t in pairs)
    if len(a) == 0:
        raise ValueError("pairs is empty: no pair of images to match.")
    groups: dict[int, list[int]] = {}
    for i, index in enumerate(a.tolist()):
        groups.setdefault(len(keypoints[index]), []).append(i)
    names = layer_list(layers)
    chance = ("chance: anywhere", "chance: on the object") if masks is not None else ()
    hits = {name: 0 for name in [*names, *chance]}
    total = 0
    device = images.device
    for k, rows in sorted(groups.items()):
        ia, ib = a[rows], b[rows]
        src = torch.as_tensor(np.stack([keypoints[i] for i in ia.tolist()]), dtype=torch.float32, device=device)
        dst = torch.as_tensor(np.stack([keypoints[i] for i in ib.tolist()]), dtype=torch.float32, device=device)
        total += dst.shape[0] * k
        for start in range(0, len(ia), chunk):  # chunks: the upsampled maps of many images are large
            part = slice(start, start + chunk)
            both = torch.cat([images[ia[part].to(device)], images[ib[part].to(device)]])
            with frozen(model), torch.no_grad():
                maps = features(model, both, names)  # one forward pass for every layer
            m = len(both) // 2
            for name in names:
                found = _nearest_positions(maps[name][:m], src[part], maps[name][m:], both.shape[-2:], normalize)
                hits[name] += int(within_radius(found, dst[part], radius).sum())
        if masks is not None:
            objects = masks[ib.to(masks.device)]
            for label, region in zip(chance, (torch.ones_like(objects), objects)):
                guess = random_points(region, k, seed=seed).to(device)
                hits[label] += int(within_radius(guess, dst, radius).sum())
    return {name: count / total for name, count in hits.items()}


# ---------------------------------------------------------------------------
# Style images that need no network
# ---------------------------------------------------------------------------

# Files that scikit-image ships inside its wheel (skimage/data/), read directly: no download.
_SKIMAGE_STYLES = {
    "brick": "brick.png",  # grayscale textures (Schneider & Dziuk, CC0)
    "gravel": "gravel.png",
    "grass": "grass.png",
    "hubble_deep_field": "hubble_deep_field.jpg",  # NASA/ESA, public domain
    "immunohistochemistry": "ihc.png",  # a stained tissue slide (public domain)
}
STYLE_IMAGES = (*_SKIMAGE_STYLES, "brush_strokes")
PAINTINGS_ENV_VAR = assets.PAINTINGS_ENV_VAR
# A blue-and-yellow palette in the manner of a night sky, RGB in [0, 1].
NIGHT_PALETTE = ((0.07, 0.13, 0.33), (0.13, 0.27, 0.55), (0.30, 0.50, 0.76), (0.60, 0.75, 0.86),
                 (0.95, 0.83, 0.30), (0.99, 0.95, 0.65), (0.10, 0.22, 0.17))


def paintings_dir() -> Path:
    """Where paintings are kept (``assets.paintings_dir``): ``$CS231N_VIS_PAINTINGS``, else
    ``~/.cache/cs231n_vis/paintings`` (``$CS231N_VIS_CACHE/paintings`` when that is set)."""
    return assets.paintings_dir()


def brush_strokes(size: int = 128, *, strokes: int = 600, seed: int = 0,
                  palette: Sequence[Sequence[float]] = NIGHT_PALETTE) -> torch.Tensor:
    """A procedural painting: short thick strokes that follow a swirling flow field: (1, 3, S, S).

    Drawn with PIL at twice the size and downsampled (smooth edges); deterministic for a
    seed (a private numpy generator). ``palette``: RGB colours in [0, 1], each stroke takes
    one (with a little jitter). Not a painting's statistics, but it has what a style image
    needs: a few colours, oriented strokes, a texture at one scale.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an int ≥ 8 (pixels); got {size!r}.")
    rng = np.random.default_rng(seed)
    colours = np.asarray(palette, dtype=np.float64)
    if colours.ndim != 2 or colours.shape[1] != 3 or colours.min() < 0 or colours.max() > 1:
        raise ValueError(f"palette must be RGB triples in [0, 1]; got shape {colours.shape}.")
    big = 2 * size
    canvas = Image.new("RGB", (big, big), tuple(int(255 * v) for v in colours[0]))
    draw = ImageDraw.Draw(canvas)
    swirl = rng.uniform(2, 4, size=2)  # the flow field's frequencies
    for _ in range(strokes):
        x, y = rng.uniform(0, big, size=2)
        colour = np.clip(colours[rng.integers(len(colours))] + rng.normal(0, 0.04, 3), 0, 1)
        line = [(x, y)]
        for _ in range(6):  # follow the field for a few steps
            angle = np.pi * (np.sin(swirl[0] * x / big * np.pi) + np.cos(swirl[1] * y / big * np.pi))
            x, y = x + 0.025 * big * np.cos(angle), y + 0.025 * big * np.sin(angle)
            line.append((x, y))
        draw.line(line, fill=tuple(int(255 * v) for v in colour), width=int(rng.integers(3, 9)), joint="curve")
    image = np.asarray(canvas.resize((size, size), Image.LANCZOS), dtype=np.float32) / 255
    return torch.from_numpy(image).permute(2, 0, 1)[None].contiguous()


def style_image(name: str, size: int = 128, device: str | torch.device | None = None) -> torch.Tensor:
    """A style image by name, resized (shorter side) and centre-cropped to size × size: (1, 3, S, S).

    Names: ``STYLE_IMAGES`` (scikit-image's brick, gravel and grass textures — grayscale —,
    its Hubble deep field and immunohistochemistry slide, and the procedural
    ``brush_strokes``), all offline; any other name is a file ``NAME.*`` in
    ``paintings_dir()``, or else a painting of the asset registry (``starry_night``,
    ``great_wave``, ``composition_vii``), fetched through ``assets.fetch`` (from
    ``$CS231N_VIS_MIRROR`` when set, never when ``$CS231N_VIS_OFFLINE`` is set).
    """
    if name == "brush_strokes":
        return brush_strokes(size).to(device)
    if name in _SKIMAGE_STYLES:
        with resources.as_file(resources.files("skimage.data") / _SKIMAGE_STYLES[name]) as path:
            return to_tensor(load_image(path), size=size, device=device)
    folder = paintings_dir()
    found = sorted(folder.glob(f"{name}.*")) if folder.is_dir() else []
    found = [p for p in found if not p.name.endswith(".partial")]
    if found:
        return to_tensor(load_image(found[0]), size=size, device=device)
    paintings = assets.names(["painting"])
    if name not in paintings:
        raise FileNotFoundError(
            f"No style image {name!r}: the offline ones are {', '.join(STYLE_IMAGES)}; the paintings "
            f"{', '.join(paintings)} are fetched when needed; any other must be a file {name}.* in {folder} "
            f"(set ${PAINTINGS_ENV_VAR} to change it).")
    try:
        path = assets.fetch(name)
    except assets.AssetError as exc:
        raise FileNotFoundError(
            f"No style image {name!r} (the offline ones are {', '.join(STYLE_IMAGES)}): {exc}") from None
    return to_tensor(load_image(path), size=size, device=device)

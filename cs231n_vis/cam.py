"""Class activation maps: CAM, Grad-CAM and Guided Grad-CAM (notebook 07).

One mechanism, ``_weighted_maps``: record a layer's activations ``A`` (N, C, h, w)
and the gradient of the class score with respect to them, give each channel a
weight ``w`` (N, C), and sum the channels: ``M = sum_k w_k A_k``. The methods
differ only in the channel weights (as pytorch-grad-cam's CAM variants do):

- ``cam``: the classifier's weights of the class, for a network whose layer feeds
  global average pooling and one linear layer (Zhou et al., arXiv:1512.04150).
- ``grad_cam``: the spatial mean of the gradient, at any layer, then a ReLU
  (Selvaraju et al., arXiv:1610.02391).
- ``guided_grad_cam``: guided backprop (``saliency.guided_backprop``) times the
  upsampled Grad-CAM.

Maps come back at the layer's resolution (N, h, w). ``upsample`` (to the image's
size) and ``normalize`` (per-image min-max) are separate, explicit steps.

How CAM and Grad-CAM relate. With GAP and a linear classifier the class score is
``y_c = sum_k W_ck (1/hw) sum_ij A_k(i, j) + b_c``, so ``dy_c/dA_k(i, j) = W_ck / hw``
at every position: Grad-CAM's weights are the CAM weights divided by ``h·w``, and
``grad_cam = relu(cam) / (h·w)`` exactly (the bias drops out of both).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .attribution import DEFAULT_BATCH_SIZE, Target, batched, check_images, resolve_target
from .hooks import frozen, get_layer, record


class LayerRecord(NamedTuple):
    """What the shared mechanism hands to a channel-weight function."""

    activations: torch.Tensor  # (N, C, h, w), the layer's output
    gradients: torch.Tensor    # (N, C, h, w), d(score of the target class)/d(activations)
    logits: torch.Tensor       # (N, K), the model's output
    target: torch.Tensor       # (N,), the explained class of each image


ChannelWeights = Callable[[LayerRecord], torch.Tensor]  # LayerRecord -> (N, C)


def _layer_name(model: nn.Module, layer: str | None) -> str:
    if layer is None:
        layer = getattr(model, "cam_layer", None)
        if layer is None:
            raise ValueError(f"{type(model).__name__} has no default CAM layer (model.cam_layer); name "
                             f"the layer, e.g. layer='features.12' (names: dict(model.named_modules())).")
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a layer's name (str), e.g. model.cam_layer; got {type(layer).__name__}.")
    get_layer(model, layer)  # an unknown name raises here, with "did you mean"
    return layer


def _record_layer(model: nn.Module, images: torch.Tensor, target: Target, layer: str) -> LayerRecord:
    """One forward pass and a backward pass that stops at ``layer`` (the input needs no gradient)."""
    x = images.detach()
    with frozen(model), torch.enable_grad(), record(model, layer, gradients=True, stop_backward=True) as rec:
        logits = model(x)
        target = resolve_target(model, x, target, logits=logits)
        logits.gather(1, target[:, None]).sum().backward()
        activations, gradients = rec.activations[layer], rec.gradients[layer]
    if activations.dim() != 4:
        raise ValueError(f"Layer {layer!r} outputs shape {tuple(activations.shape)}, not a feature map "
                         f"(N, C, h, w); choose a convolutional layer, e.g. model.cam_layer.")
    return LayerRecord(activations, gradients, logits.detach(), target)


def _weighted_maps(model: nn.Module, images: torch.Tensor, target: Target, layer: str | None,
                   channel_weights: ChannelWeights, *, rectify: bool, batch_size: int,
                   progress: bool, desc: str) -> torch.Tensor:
    """The family's one mechanism: ``sum_k w_k A_k`` (N, h, w), with a ReLU when ``rectify``."""
    images = check_images(images, model=model)
    layer = _layer_name(model, layer)

    def one_batch(chunk: torch.Tensor, chunk_target: Target) -> torch.Tensor:
        rec = _record_layer(model, chunk, chunk_target, layer)
        weights = channel_weights(rec)
        maps = torch.einsum("nc,nchw->nhw", weights, rec.activations)
        return maps.clamp(min=0) if rectify else maps

    return batched(one_batch, images, target, batch_size=batch_size, progress=progress, desc=desc)


# ----------------------------------------------------------------------------- channel weights

def gradient_weights(rec: LayerRecord) -> torch.Tensor:
    """Grad-CAM's channel weights: the gradient's mean over positions, (N, C)."""
    return rec.gradients.mean(dim=(2, 3))


def classifier_weights(model: nn.Module, classifier: str | None = None, *,
                       tolerance: float = 1e-4) -> ChannelWeights:
    """CAM's channel weights: row ``target`` of the linear classifier's weight matrix, (N, C).

    The returned function first checks that the recorded layer really feeds global
    average pooling and this linear layer: ``logits == W @ mean(A) + b`` (to
    ``tolerance`` times the largest |logit|, at least 1). Anything in between (an MLP, a convolution as
    classifier, a non-linearity after the pooling) makes CAM meaningless, and it
    raises a ValueError that says so and points to Grad-CAM.
    """
    name = classifier or getattr(model, "classifier", None)
    if name is None:
        raise ValueError(f"{type(model).__name__} has no model.classifier; name its last linear layer, "
                         f"e.g. classifier='fc'.")
    fc = get_layer(model, name)
    if not isinstance(fc, nn.Linear):
        raise ValueError(f"CAM needs a linear classifier after global average pooling; the model's "
                         f"classifier {name!r} is a {type(fc).__name__}. Use grad_cam, which works at any layer.")

    def weights(rec: LayerRecord) -> torch.Tensor:
        channels = rec.activations.shape[1]
        if fc.in_features != channels:
            raise ValueError(
                f"CAM needs the layer to feed global average pooling and then the linear classifier "
                f"{name!r} directly; the layer has {channels} channels but {name!r} takes "
                f"{fc.in_features} inputs (e.g. an MLP head). Use grad_cam, which works at any layer.")
        weight = fc.weight.detach()  # no autograd link from the maps to the parameters
        pooled = rec.activations.mean(dim=(2, 3)) @ weight.T
        if fc.bias is not None:
            pooled = pooled + fc.bias.detach()
        scale = rec.logits.abs().max().clamp(min=1.0)
        if not torch.allclose(pooled, rec.logits, rtol=0, atol=tolerance * float(scale)):
            gap = (pooled - rec.logits).abs().max()
            raise ValueError(
                f"CAM needs the layer to feed global average pooling and then the linear classifier "
                f"{name!r} directly, but W @ mean(activations) + b differs from the logits by up to "
                f"{gap:.3g}: something else sits between them. Use grad_cam, which works at any layer.")
        return weight[rec.target]

    return weights


# ----------------------------------------------------------------------------- the methods

def cam(model: nn.Module, images: torch.Tensor, target: Target = None, *, layer: str | None = None,
        classifier: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
        progress: bool = False) -> torch.Tensor:
    """Class activation map (Zhou et al., arXiv:1512.04150): (N, h, w) at the layer's resolution.

    ``M_c(i, j) = sum_k W_ck A_k(i, j)``, where ``A`` (N, C, h, w) is the output of
    ``layer`` (default ``model.cam_layer``), which must feed global average pooling
    and then the linear ``classifier`` (default ``model.classifier``) with weights
    ``W`` (K, C). Not rectified: negative values are evidence *against* the class,
    and the map's spatial mean plus the bias ``b_c`` is the class's logit.

    Args:
        model: a classifier returning logits (N, K); run in eval mode, frozen, and
            left exactly as it was.
        images: (N, 3, H, W) float in [0, 1].
        target: None (the predicted class), an int, or N ints.
        layer, classifier: layer names (``model.named_modules()``).
        batch_size: images per forward pass; progress: a ``tqdm.auto`` bar.

    Returns a float tensor (N, h, w) on the images' device; ``upsample`` it to the
    image's size to overlay it.

    Known limits: only for the GAP + linear architecture (a clear ValueError
    otherwise, e.g. alexnet, VGG or squeezenet: use ``grad_cam``); the map is as
    coarse as the last feature map (7×7 for a 224×224 input to lite0).
    """
    return _weighted_maps(model, images, target, layer, classifier_weights(model, classifier),
                          rectify=False, batch_size=batch_size, progress=progress, desc="CAM")


def grad_cam(model: nn.Module, images: torch.Tensor, target: Target = None, *, layer: str | None = None,
             batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = False) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al., arXiv:1610.02391): (N, h, w) at the layer's resolution.

    ``M_c = relu(sum_k alpha_k A_k)`` with ``alpha_k = mean_ij dy_c/dA_k(i, j)``: the
    channels of ``layer`` (default ``model.cam_layer``) weighted by the spatial mean
    of the class score's gradient (the score is the logit ``y_c``, before softmax).

    The gradient is recorded at the layer by ``hooks.record(..., stop_backward=True)``:
    the backward pass stops there and never reaches the input, so a call costs one
    forward pass plus the backward pass of the layers *after* ``layer``.

    Args:
        model: a classifier returning logits (N, K); left exactly as it was.
        images: (N, 3, H, W) float in [0, 1].
        target: None (the predicted class), an int, or N ints.
        layer: any layer whose output is a feature map (N, C, h, w).
        batch_size, progress: as in ``cam``.

    Returns a float tensor (N, h, w), >= 0, on the images' device.

    Known limits: as coarse as the layer (deep layers: class-discriminative but
    blurry; early layers: sharp but hardly class-specific, as their gradients
    average out); the ReLU hides negative evidence; averaging the gradient
    makes it blind to *where* inside a channel the gradient is large.
    """
    return _weighted_maps(model, images, target, layer, gradient_weights, rectify=True,
                          batch_size=batch_size, progress=progress, desc="Grad-CAM")


def guided_grad_cam(model: nn.Module, images: torch.Tensor, target: Target = None, *,
                    layer: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                    progress: bool = False) -> torch.Tensor:
    """Guided Grad-CAM (Selvaraju et al., arXiv:1610.02391, §3.1): (N, 3, H, W).

    Guided backprop (``saliency.guided_backprop``, arXiv:1412.6806) multiplied
    pixel by pixel with Grad-CAM at ``layer``, upsampled bilinearly to the image's
    size (not normalized: the product keeps Grad-CAM's units). Both explain the
    same class: the target is resolved once.

    Known limits: inherits guided backprop's (it reconstructs image edges almost
    independently of the class, arXiv:1810.03292) and Grad-CAM's coarseness; the
    product is class-discriminative only through the Grad-CAM factor.
    """
    from .saliency import guided_backprop  # notebook 06's module

    images = check_images(images, model=model)
    target = resolve_target(model, images, target)
    coarse = grad_cam(model, images, target, layer=layer, batch_size=batch_size, progress=progress)
    guided = guided_backprop(model, images, target, batch_size=batch_size, progress=progress)
    return guided * upsample(coarse, images.shape[-2:])[:, None]


# ----------------------------------------------------------------------------- post-processing

def upsample(maps: torch.Tensor, size) -> torch.Tensor:
    """Maps (N, h, w) → (N, H, W), bilinear (``align_corners=False``, as OpenCV's resize).

    ``size``: (H, W) or an int for a square. Bilinear interpolation of a
    non-negative map stays non-negative; it neither normalizes nor clips.
    """
    if not isinstance(maps, torch.Tensor) or maps.dim() != 3:
        shape = tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__
        raise ValueError(f"maps must be a tensor (N, h, w); got {shape}. One map: maps[None].")
    size = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (H, W) or an int; got {size!r}.")
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def normalize(maps: torch.Tensor) -> torch.Tensor:
    """Per-image min-max normalization: ``(M - min M) / (max M - min M)``, each map in [0, 1].

    Maps (N, ...). A constant map (max = min) becomes all zeros, not NaN. After
    it, maps of different images (or methods) share a scale only in the sense
    that each spans [0, 1]: their absolute sizes are gone — compare raw maps when
    the size matters.
    """
    if not isinstance(maps, torch.Tensor) or maps.dim() < 2:
        raise ValueError(f"maps must be a tensor (N, ...) with one map per image; got "
                         f"{tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__}.")
    flat = maps.flatten(1)
    low, high = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    span = high - low
    out = torch.where(span > 0, (flat - low) / span.clamp(min=torch.finfo(flat.dtype).tiny),
                      torch.zeros_like(flat))
    return out.view_as(maps)

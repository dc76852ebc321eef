"""Notebook 03 — receptive fields and maximally activating patches.

- ``stack_receptive_field(layers)``: the receptive-field recursion for a stack of
  (kernel, stride, padding) layers along one axis (Araujo et al., Distill 2019).
- ``receptive_field(model, layer)``: the same, computed from the model's own
  modules (TF-"SAME" padding of ``SameConv2d`` included); ``.box(y, x)`` maps a
  unit to its box in input pixels.
- ``top_patches(model, images, layer)``: a streaming scan of a dataset that keeps,
  for every unit (or every direction in the layer's activation space), the k
  images that excite it most, where, and the receptive-field box there
  (Zeiler & Fergus arXiv:1311.2901; Girshick et al. arXiv:1311.2524).
- ``random_directions``, ``class_purity``: the control of Szegedy et al.
  (arXiv:1312.6199) — are units special, or do random directions look alike?
- ``multiscale_crops``: photos resized to several sizes and cut into crops.
- ``top_patches_multiscale``: every receptive-field patch of photos at several
  scales ranked per unit, with non-maximum suppression (``box_iou``);
  ``cut_patches`` cuts the winners out to draw them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .attribution import DEFAULT_BATCH_SIZE, check_images
from .hooks import frozen, get_layer, record
from .models import SameConv2d

# Modules that act on each position separately: they leave the receptive field as it is.
_POINTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh,
              nn.Hardswish, nn.Hardtanh, nn.BatchNorm2d, nn.Identity, nn.Dropout, nn.Dropout2d)


# ----------------------------------------------------------------------------- receptive fields

def stack_receptive_field(layers: Sequence[tuple[int, int, int]]) -> tuple[int, int, int]:
    """The receptive field of a stack of layers along one axis: (size, jump, offset).

    ``layers``: (kernel, stride, padding) per layer, input first; ``padding`` is
    the padding on the *left* (top) side, the one that shifts the field.
    Returns, in input pixels:

    - size: how many input pixels one unit of the last layer sees,
    - jump: the distance between the fields of neighbouring units (the product
      of the strides),
    - offset: where the field of unit 0 starts (negative: it starts in the padding).

    Unit i of the last layer sees input pixels offset + i·jump … offset + i·jump + size − 1.
    The recursion (Araujo et al., "Computing receptive fields of CNNs", Distill 2019):
    size += (kernel − 1)·jump; offset −= padding·jump; jump *= stride.
    No layers: (1, 1, 0), the input pixel itself.
    """
    size, jump, offset = 1, 1, 0
    for kernel, stride, padding in layers:
        size += (kernel - 1) * jump
        offset -= padding * jump
        jump *= stride
    return size, jump, offset


@dataclass(frozen=True)
class ReceptiveField:
    """Where the units of a layer look in the input image (per axis: (y, x)).

    size: the field's (height, width) in input pixels; jump: input pixels between
    neighbouring units; offset: the input pixel where unit (0, 0)'s field starts
    (negative where it starts in the padding); input_size and map_size: the
    input's and the layer's (H, W); end: the input pixel (exclusive) where what
    any unit of the layer sees ends, when that is short of the image's far edge
    (else infinite). ``box(y, x)`` gives a unit's box.

    ``end`` cuts the last units' boxes where a window reaches past the previous
    layer's last unit (into an inner layer's padding, or a ceil_mode pool's
    overhang): the positions it covers there hold no unit, so the input pixels
    under them are not seen (squeezenet1_1 at 64 x 64: its first conv never
    reads pixel 63, yet a padded 3 x 3 conv two layers up reaches over it).
    """

    layer: str
    size: tuple[int, int]
    jump: tuple[int, int]
    offset: tuple[int, int]
    input_size: tuple[int, int]
    map_size: tuple[int, int]
    end: tuple[float, float] = (math.inf, math.inf)

    def box(self, y: int, x: int) -> tuple[int, int, int, int]:
        """The field of unit (y, x) as a box (x0, y0, x1, y1) in input pixels, ends
        exclusive; it may extend past the image's border (into the padding)."""
        y0, x0 = self.offset[0] + y * self.jump[0], self.offset[1] + x * self.jump[1]
        return x0, y0, min(x0 + self.size[1], self.end[1]), min(y0 + self.size[0], self.end[0])

    def boxes(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``box`` for tensors of unit positions (any shape S): a long tensor (*S, 4)."""
        y0 = self.offset[0] + torch.as_tensor(y).long() * self.jump[0]
        x0 = self.offset[1] + torch.as_tensor(x).long() * self.jump[1]
        x1 = (x0 + self.size[1]).clamp(max=self.end[1]) if math.isfinite(self.end[1]) else x0 + self.size[1]
        y1 = (y0 + self.size[0]).clamp(max=self.end[0]) if math.isfinite(self.end[0]) else y0 + self.size[0]
        return torch.stack([x0, y0, x1, y1], dim=-1)


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def spatial_layers(model: nn.Module, layer: str, input_size: int | tuple[int, int] | None = None
                   ) -> list[tuple[str, tuple[int, int, int], tuple[int, int, int], tuple[int, int]]]:
    """The layers that change the geometry, from the input up to and including ``layer``.

    Walks the model's leaf modules in the order they were registered, which must
    be the order of the forward pass (true for sequential stacks such as the
    shapes CNN and EfficientNet-Lite0; a residual add ``x + f(x)`` with a
    stride-1, same-size ``f`` does not change the field). Returns, per conv or
    pooling layer: (name, (kernel, stride, top padding), (kernel, stride, left
    padding), output (H, W)); a dilated kernel counts as its span. For
    ``SameConv2d`` (TF "SAME") the padding depends on the input size and is
    asymmetric: the extra pixel goes to the bottom/right, so the top/left
    padding is total // 2. Raises a ValueError for a module it cannot place
    (a global pool or a linear layer before ``layer``, or an unknown module).
    """
    target = get_layer(model, layer)
    height, width = _pair(input_size if input_size is not None else getattr(model, "input_size", None))
    if height is None:
        raise ValueError("input_size is needed: the model has no input_size attribute.")
    inside = {id(m) for m in target.modules()}
    leaves = [(name, m) for name, m in model.named_modules() if not list(m.children())]
    last = max((i for i, (_, m) in enumerate(leaves) if id(m) in inside), default=None)
    if last is None:  # the layer has no leaves: it is a leaf itself
        raise ValueError(f"Layer {layer!r} is not part of the model's module list.")
    out, size = [], [height, width]
    for name, module in leaves[:last + 1]:
        if isinstance(module, _POINTWISE):
            continue
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            axes = []
            kernels, strides = _pair(module.kernel_size), _pair(module.stride or module.kernel_size)
            dilations = _pair(getattr(module, "dilation", 1))
            paddings = _pair(module.padding) if not isinstance(module, SameConv2d) else (None, None)
            for axis in range(2):
                n, s = size[axis], strides[axis]
                k = dilations[axis] * (kernels[axis] - 1) + 1
                if isinstance(module, SameConv2d):
                    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
                    pad, n_out = total // 2, math.ceil(n / s)
                else:
                    if isinstance(paddings[axis], str):
                        raise ValueError(f"{name}: string padding {paddings[axis]!r} is not supported.")
                    pad = paddings[axis]
                    n_out = (n + 2 * pad - k) // s + 1
                    if getattr(module, "ceil_mode", False):  # squeezenet's pools
                        # One more window where the last one would overhang the far edge,
                        # unless it would start in the far padding (PyTorch drops it then).
                        # The units' fields are placed as without ceil_mode.
                        n_out = -(-(n + 2 * pad - k) // s) + 1
                        if (n_out - 1) * s >= n + pad:
                            n_out -= 1
                axes.append((k, s, pad))
                size[axis] = n_out
            out.append((name, axes[0], axes[1], (size[0], size[1])))
            continue
        raise ValueError(
            f"Cannot place {name!r} ({type(module).__name__}) in a receptive-field computation: "
            f"only conv and pooling layers and pointwise modules may come before {layer!r}.")
    return out


def receptive_field(model: nn.Module, layer: str, *, input_size: int | tuple[int, int] | None = None
                    ) -> ReceptiveField:
    """The receptive field of the units of ``layer``, computed from the model's modules.

    Args:
        model: a sequential conv/pool stack (see ``spatial_layers`` for what it accepts).
        layer: a name from ``model.named_modules()``.
        input_size: the input's side (int) or (H, W); default ``model.input_size``.
            It matters for TF-"SAME" padding, which depends on the input size.

    Returns a ``ReceptiveField``: size, jump, offset per axis, and ``.box(y, x)``.
    Analytic and exact for the linear structure of the network: the field is
    every pixel that *can* influence the unit; the pixels that do, for a given
    image, can be fewer (max pooling picks one input, a ReLU that is off passes
    nothing), and the *effective* receptive field, weighted by influence, is
    much smaller and roughly Gaussian (Luo et al., arXiv:1701.04128).
    """
    layers = spatial_layers(model, layer, input_size)
    height, width = _pair(input_size if input_size is not None else model.input_size)
    per_axis = [stack_receptive_field([entry[1 + axis] for entry in layers]) for axis in range(2)]
    map_size = layers[-1][3] if layers else (height, width)
    # Layer by layer: what the last unit sees ends where the previous layer's last unit's field ends.
    end = [math.inf, math.inf]
    for depth in range(1, len(layers) + 1):
        for axis in range(2):
            size, jump, offset = stack_receptive_field([entry[1 + axis] for entry in layers[:depth]])
            last = layers[depth - 1][3][axis] - 1
            end[axis] = min(end[axis], offset + last * jump + size)
    # Only a cut inside the image matters: past its edge the box may run on into the padding.
    end = [e if e < side else math.inf for e, side in zip(end, (height, width))]
    return ReceptiveField(layer, (per_axis[0][0], per_axis[1][0]), (per_axis[0][1], per_axis[1][1]),
                          (per_axis[0][2], per_axis[1][2]), (height, width), map_size, tuple(end))


def unit_box(model: nn.Module, layer: str, y: int, x: int, *,
             input_size: int | tuple[int, int] | None = None) -> tuple[int, int, int, int]:
    """The receptive field of unit (y, x) of ``layer`` as a box (x0, y0, x1, y1) in input
    pixels, ends exclusive (it may extend past the border); see ``receptive_field``."""
    return receptive_field(model, layer, input_size=input_size).box(y, x)


def unit_gradient(model: nn.Module, images: torch.Tensor, layer: str, y: int, x: int, *,
                  channel: int | None = None, linear: bool = True) -> torch.Tensor:
    """d(unit)/d(images): how each input pixel influences the unit at (y, x) of ``layer``.

    Args:
        images: (N, 3, H, W) float in [0, 1]; each image gets its own gradient.
        layer, y, x: the unit's layer and position in the layer's map.
        channel: one channel, or None for the sum over all channels (then the
            nonzero pixels are those that reach *any* unit at (y, x)).
        linear: make every ReLU/ReLU6 pass its gradient everywhere
            (``hooks.override_rectifiers(model, "linear")``), so a rectifier that
            happens to be off does not hide part of the field (max pooling
            still picks one input per window).

    Returns (N, 3, H, W) on the images' device. Its nonzero support is the
    *empirical* receptive field, which lies inside ``receptive_field``'s box; its
    magnitude, concentrated near the centre, is the effective receptive field
    (Luo et al., arXiv:1701.04128).
    """
    from .hooks import override_rectifiers

    images = check_images(images, model=model)
    device = next(model.parameters()).device
    inputs = images.detach().to(device).requires_grad_(True)
    with frozen(model), torch.enable_grad(), record(model, layer, keep_graph=True) as rec:
        if linear:
            with override_rectifiers(model, "linear"):
                model(inputs)
        else:
            model(inputs)
        act = rec.activations[layer]
        unit = act[:, :, y, x] if channel is None else act[:, channel, y, x]
        (grad,) = torch.autograd.grad(unit.sum(), inputs)
    return grad.to(images.device)


# ----------------------------------------------------------------------------- the top-k scan

def merge_topk(scores: torch.Tensor, keys: torch.Tensor, new_scores: torch.Tensor,
               new_keys: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge a batch into a running top-k: (U, m) + (U, b) → (U, min(k, m + b)).

    ``scores``/``keys``: the running best, highest score first; ``new_scores``/
    ``new_keys``: a new batch (any order). ``keys`` are long tensors that say
    where each score came from (e.g. the image index). Returns the k highest of
    both, highest first. Ties go to the entry that came first (the running ones,
    then the batch's in its order): a *stable* sort, so the result is the same as
    one top-k over all the data at once — and the same on every machine.
    """
    all_scores = torch.cat([scores, new_scores], dim=1)
    all_keys = torch.cat([keys, new_keys], dim=1)
    order = all_scores.sort(dim=1, descending=True, stable=True).indices[:, :k]
    return all_scores.gather(1, order), all_keys.gather(1, order)


def random_directions(channels: int, n: int, *, seed: int = 0) -> torch.Tensor:
    """``n`` random unit vectors in a layer's activation space: (n, channels), each of norm 1,
    uniformly distributed on the sphere (normalized Gaussians), deterministic for a seed."""
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(n, channels, generator=g)
    return d / d.norm(dim=1, keepdim=True)


@dataclass
class TopPatches:
    """The result of ``top_patches``: for each of U units (or directions), its k best images.

    scores (U, k): the unit's activation there (its maximum over the image),
    highest first; index (U, k): the image's position in the dataset; y, x
    (U, k): where in the layer's map; boxes (U, k, 4): that unit's receptive
    field (x0, y0, x1, y1) in input pixels, ends exclusive, possibly past the
    border; field: the layer's ``ReceptiveField``.
    """

    layer: str
    scores: torch.Tensor
    index: torch.Tensor
    y: torch.Tensor
    x: torch.Tensor
    boxes: torch.Tensor
    field: ReceptiveField


def _batches(images, batch_size: int, model: nn.Module) -> Iterable[torch.Tensor]:
    if isinstance(images, torch.Tensor):
        images = check_images(images, model=model)
        return images.split(batch_size)
    return images


def top_patches(model: nn.Module, images, layer: str, *, k: int = 9, directions: torch.Tensor | None = None,
                batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = True, desc: str | None = None) -> TopPatches:
    """Scan a dataset and keep, for each unit of ``layer``, the k images that excite it most.

    Args:
        model: a network whose ``layer`` is a conv feature map (N, C, h, w);
            left as it was (frozen, eval mode, no hooks left).
        images: (N, 3, H, W) float in [0, 1], or an iterable of such batches
            (e.g. a generator that makes them on the fly: the scan keeps only k
            entries per unit, so its memory does not grow with the dataset).
        layer: a name from ``model.named_modules()``.
        k: how many images to keep per unit.
        directions: None → the units (channels) themselves; a (D, C) tensor →
            D directions in the activation space: the score at a position is
            the dot product of the C-vector of activations there with each
            direction (Szegedy et al., arXiv:1312.6199: are units special?).
        batch_size: images per forward pass (for a tensor; small on a CPU).
        progress: a ``tqdm.auto`` progress bar (in images); False hides it.

    What is kept: per unit and image, the maximum over positions (and where it
    is, the first position on ties), so the k entries are k *different* images,
    as in Girshick et al.'s pool5 figure (arXiv:1311.2524); ranking every
    position instead would fill the top-k with neighbouring positions of one
    image. Ties between images go to the earlier image.

    Returns a ``TopPatches`` on the CPU (scores, image index, y, x, receptive-field
    boxes). Limits: the top-k shows what excites a unit most, not what it
    responds to on average, and a few images can dominate; the boxes are the
    full theoretical receptive field, larger than the part that matters.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int; got {k!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}.")
    device = next(model.parameters()).device
    total = len(images) if isinstance(images, torch.Tensor) else None
    scores = keys = None
    seen, width, map_hw, size = 0, 1, None, None
    with frozen(model), torch.no_grad(), record(model, layer) as rec, \
            tqdm(total=total, desc=desc, unit="image", disable=not progress) as bar:
        for batch in _batches(images, batch_size, model):
            if total is None:
                batch = check_images(batch, "a batch of images", model=model)
            if size is None:
                size = tuple(batch.shape[-2:])
            elif tuple(batch.shape[-2:]) != size:
                raise ValueError(f"All images must have one size; got {tuple(batch.shape[-2:])} after {size}.")
            model(batch.to(device))
            act = rec.activations[layer]
            if act.dim() != 4:
                raise ValueError(f"Layer {layer!r} outputs shape {tuple(act.shape)}; a conv feature map "
                                 f"(N, C, h, w) is needed.")
            if directions is not None:
                if directions.dim() != 2 or directions.shape[1] != act.shape[1]:
                    raise ValueError(f"directions must be (D, {act.shape[1]}) for layer {layer!r}; "
                                     f"got shape {tuple(directions.shape)}.")
                act = torch.einsum("dc,nchw->ndhw", directions.to(act), act)
            map_hw, width = act.shape[-2:], act.shape[-1]
            best, where = act.flatten(2).max(dim=2)  # (B, U): each image's maximum and its position
            index = torch.arange(seen, seen + len(act), device=act.device)
            batch_keys = (index[:, None] * act[0, 0].numel() + where).T  # image and position in one key
            if scores is None:
                scores, keys = best.T[:, :0], batch_keys[:, :0]
            scores, keys = merge_topk(scores, keys, best.T, batch_keys, k)
            seen += len(act)
            bar.update(len(act))
    if scores is None:
        raise ValueError("images is empty.")
    scores, keys = scores.cpu(), keys.cpu()
    cells = map_hw[0] * map_hw[1]
    image, position = keys // cells, keys % cells
    y, x = position // width, position % width
    field = receptive_field(model, layer, input_size=size)
    if field.map_size != tuple(map_hw):
        raise ValueError(f"The receptive field walk of {layer!r} predicts a {field.map_size} map, the model "
                         f"gives {tuple(map_hw)}: its modules are not a sequential stack.")
    return TopPatches(layer, scores, image, y, x, field.boxes(y, x), field)


# ----------------------------------------------------------------------------- measures and data

def class_purity(labels: torch.Tensor) -> torch.Tensor:
    """The share of the most common label in each row: (U, k) ints → (U,) floats.

    1 when all k top images of a unit share one class; with C balanced classes,
    k images drawn at random score about 1/C plus the luck of small samples
    (see ``chance_purity``). It does not matter which label is the most common
    (no argmax over ties).
    """
    labels = torch.as_tensor(labels).long()
    if labels.dim() != 2:
        raise ValueError(f"labels must be (U, k); got shape {tuple(labels.shape)}.")
    counts = F.one_hot(labels - labels.min()).sum(dim=1)  # (U, classes)
    return counts.amax(dim=1).float() / labels.shape[1]


def chance_purity(labels: torch.Tensor, k: int, *, n: int = 2000, seed: int = 0) -> float:
    """The mean ``class_purity`` of ``n`` sets of k images drawn at random without
    replacement from a dataset with ``labels`` (N,): the baseline of no selectivity."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.as_tensor(labels).long()
    if len(labels) <= 10_000:
        picks = torch.stack([torch.randperm(len(labels), generator=g)[:k] for _ in range(n)])
    else:  # a permutation per draw costs O(N): draw k indices and redraw the sets with a repeat
        picks = torch.randint(len(labels), (n, k), generator=g)
        repeat = (picks.sort(dim=1).values.diff(dim=1) == 0).any(dim=1)
        while repeat.any():
            picks[repeat] = torch.randint(len(labels), (int(repeat.sum()), k), generator=g)
            repeat = (picks.sort(dim=1).values.diff(dim=1) == 0).any(dim=1)
    return class_purity(labels[picks]).mean().item()


def multiscale_crops(photos: Sequence[np.ndarray], sizes: Sequence[int] = (224, 448), *,
                     crop: int = 224, stride: int | None = None, cover: bool = False
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Each photo resized (shorter side = each of ``sizes``) and cut into crop×crop squares.

    ``photos``: (H, W, 3) float images. Crops start every ``stride`` pixels along
    each axis (default ``crop``: side by side, no overlap); ``cover=True`` adds
    one crop flush with each far edge, so every pixel is covered. Overlapping
    crops show the same pixels twice, and a top-k scan then finds the same patch
    in several crops (exactly the same score where the overlap is a multiple of
    the layer's jump), so for a scan keep them apart (the default).
    Returns the crops (M, 3, crop, crop) and where they came from (M, 4) long:
    photo, size, top, left (in the resized photo's pixels).
    """
    stride = crop if stride is None else stride
    from .images import resize

    crops, where = [], []
    for p, photo in enumerate(photos):
        for size in sizes:
            if size < crop:
                raise ValueError(f"sizes must be >= crop ({crop}); got {size}.")
            picture = resize(photo, int(size))
            height, width = picture.shape[:2]
            tops, lefts = list(range(0, height - crop + 1, stride)), list(range(0, width - crop + 1, stride))
            if cover:
                tops, lefts = sorted(set(tops + [height - crop])), sorted(set(lefts + [width - crop]))
            for top in tops:
                for left in lefts:
                    crops.append(torch.from_numpy(picture[top:top + crop, left:left + crop].transpose(2, 0, 1).copy()))
                    where.append((p, size, top, left))
    return torch.stack(crops), torch.tensor(where, dtype=torch.long)


# ----------------------------------------------------------------------------- every position, every scale

@dataclass
class MultiscalePatches:
    """The result of ``top_patches_multiscale``: for each of U units (or directions), its
    k best patches after non-maximum suppression.

    scores (U, k), highest first; photo (U, k): which photo; size (U, k): the
    photo's shorter side when it was scanned; boxes (U, k, 4) float: the patch
    (x0, y0, x1, y1) in the *original* photo's pixels, clipped to the photo;
    candidates: how many patches (positions × scales) were ranked;
    candidate_photo (candidates,): the photo of each, for a chance baseline.
    """

    layer: str
    scores: torch.Tensor
    photo: torch.Tensor
    size: torch.Tensor
    boxes: torch.Tensor
    candidates: int
    candidate_photo: torch.Tensor


def box_iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Intersection over union of one box (4,) with each of ``others`` (M, 4); (x0, y0, x1, y1)."""
    w = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    inter = w * h
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / (area(box) + area(others) - inter)


def top_patches_multiscale(model: nn.Module, photos: Sequence[np.ndarray], layer: str, *, k: int = 9,
                           sizes: Sequence[int] = (160, 240, 320), directions: torch.Tensor | None = None,
                           iou: float = 0.3, pool: int = 256, progress: bool = True) -> MultiscalePatches:
    """Rank every receptive-field patch of ``layer`` in every photo at every scale, keeping
    each unit's k best after non-maximum suppression.

    Args:
        photos: (H, W, 3) float images in [0, 1], of any sizes.
        layer: a conv feature map (1, C, h, w) of ``model``.
        k: patches kept per unit.
        sizes: each photo is resized so its shorter side is each of these and run
            whole; every position of the layer's map is one candidate patch (its
            receptive field), so a photo gives hundreds of patches per scale.
        directions: None → the units; a (D, C) tensor → D directions of the
            activation space (Szegedy et al., arXiv:1312.6199).
        iou: a candidate whose box (in the original photo) overlaps an already
            kept box of the same photo by more than this intersection-over-union
            is dropped (greedy non-maximum suppression, as in object detection;
            Girshick et al., arXiv:1311.2524). A box nested in one twice its side
            has IoU 0.25, so the same spot at scales 2× apart can both be kept.
        pool: how many of each unit's best positions enter the suppression.
        progress: a ``tqdm.auto`` bar (in photos).

    Returns a ``MultiscalePatches`` on the CPU. Limits: positions of one map overlap
    (the field is larger than the jump), which is why the suppression is needed;
    boxes are the full theoretical field (Zeiler & Fergus, arXiv:1311.2901).
    """
    from .images import resize

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int; got {k!r}.")
    if not 0 < iou <= 1:
        raise ValueError(f"iou must be in (0, 1]; got {iou!r}.")
    device = next(model.parameters()).device
    scores = keys = None
    meta = []  # per candidate: photo, size, box in the original photo (x0, y0, x1, y1)
    with frozen(model), torch.no_grad(), record(model, layer) as rec, \
            tqdm(total=len(photos), desc=layer, unit="photo", disable=not progress) as bar:
        for p, photo in enumerate(photos):
            height, width = np.asarray(photo).shape[:2]
            for size in sizes:
                picture = resize(np.asarray(photo, dtype=np.float32), int(size))
                batch = check_images(torch.from_numpy(picture.transpose(2, 0, 1).copy())[None], "a photo", model=model)
                model(batch.to(device))
                act = rec.activations[layer][0]
                if directions is not None:
                    if directions.dim() != 2 or directions.shape[1] != act.shape[0]:
                        raise ValueError(f"directions must be (D, {act.shape[0]}) for layer {layer!r}; "
                                         f"got shape {tuple(directions.shape)}.")
                    act = torch.einsum("dc,chw->dhw", directions.to(act), act)
                field = receptive_field(model, layer, input_size=tuple(picture.shape[:2]))
                if field.map_size != tuple(act.shape[-2:]):
                    raise ValueError(f"The receptive field walk of {layer!r} predicts a {field.map_size} map, "
                                     f"the model gives {tuple(act.shape[-2:])}.")
                ys, xs = torch.meshgrid(torch.arange(act.shape[1]), torch.arange(act.shape[2]), indexing="ij")
                box = field.boxes(ys.flatten(), xs.flatten()).double()
                box[:, 0::2] *= width / picture.shape[1]
                box[:, 1::2] *= height / picture.shape[0]
                box[:, 0::2], box[:, 1::2] = box[:, 0::2].clamp(0, width), box[:, 1::2].clamp(0, height)
                new_keys = torch.arange(len(meta), len(meta) + len(box), device=act.device).expand(act.shape[0], -1)
                meta.extend((p, int(size), *b) for b in box.tolist())
                flat = act.flatten(1)
                if scores is None:
                    scores, keys = flat[:, :0], new_keys[:, :0]
                scores, keys = merge_topk(scores, keys, flat, new_keys, pool)
            bar.update(1)
    if scores is None:
        raise ValueError("photos is empty.")
    table = np.asarray(meta, dtype=np.float64)
    scores, keys = scores.cpu().numpy(), keys.cpu().numpy()
    kept = np.zeros((len(scores), k), dtype=np.int64)
    kept_scores = np.zeros((len(scores), k), dtype=np.float32)
    for u in range(len(scores)):
        chosen = []
        for j, key in enumerate(keys[u]):
            same = [c for c in chosen if table[c, 0] == table[key, 0]]
            if not same or box_iou(table[key, 2:], table[same, 2:]).max() <= iou:
                chosen.append(key)
                kept_scores[u, len(chosen) - 1] = scores[u, j]
                if len(chosen) == k:
                    break
        if len(chosen) < k:
            raise ValueError(f"Only {len(chosen)} patches of row {u} survive the suppression among its "
                             f"{pool} best positions; raise pool.")
        kept[u] = chosen
    picked = torch.from_numpy(table[kept])
    return MultiscalePatches(layer, torch.from_numpy(kept_scores), picked[..., 0].long(), picked[..., 1].long(),
                             picked[..., 2:].float(), len(table), torch.from_numpy(table[:, 0]).long())


def cut_patches(photos: Sequence[np.ndarray], boxes: torch.Tensor, photo: torch.Tensor, *, size: int = 64
                ) -> torch.Tensor:
    """The patches at ``boxes`` (..., 4) in ``photos[photo]`` ((...) indices), each resized to
    size × size: a (..., 3, size, size) tensor to draw (e.g. ``plotting.show_patches``)."""
    from .images import resize

    flat_boxes, flat_photo = boxes.reshape(-1, 4).round().long().tolist(), photo.reshape(-1).tolist()
    out = []
    for (x0, y0, x1, y1), p in zip(flat_boxes, flat_photo):
        patch = np.asarray(photos[p], dtype=np.float32)[y0:y1, x0:x1]
        out.append(torch.from_numpy(resize(np.ascontiguousarray(patch), (size, size)).transpose(2, 0, 1).copy()))
    return torch.stack(out).reshape(*photo.shape, 3, size, size)

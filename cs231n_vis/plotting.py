"""Figures for every notebook: image grids, activation and filter grids, heatmap
overlays, side-by-side panels, patch grids with boxes, thumbnail layouts.

The conventions live here, so every notebook looks the same:

* every function draws a new figure and returns it (the notebook calls
  ``plt.show()``); inputs may be torch tensors (CPU or CUDA, with or without
  gradients) or numpy arrays;
* images are (N, 3, H, W) batches or single (3, H, W) / (H, W, 3) images in [0, 1];
* every map has a colour bar whose label gives its units;
* maps that are compared share one colour scale;
* entries that are exactly 0 are drawn in ``ZERO_COLOR`` (transparent over an
  image), so "exactly zero" (a ReLU that did not fire) never looks like "small";
* panel titles that are indices are plain ints ("356", never "tensor(356)").
"""

from __future__ import annotations

import base64
import io
import math
from functools import partial
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure
from matplotlib.offsetbox import AnnotationBbox, OffsetImage
from matplotlib.patches import Rectangle

from .images import resize

# One place for the colour maps.
ACTIVATION_CMAP = "viridis"   # non-negative maps (activations): 0 is dark
DIVERGING_CMAP = "RdBu_r"     # signed maps and weights: blue < 0 < red, 0 is white
HEATMAP_CMAP = "inferno"      # non-negative maps drawn over an image
ZERO_COLOR = "lightgrey"      # entries that are exactly 0, in maps drawn on their own
ZERO_NAME = "grey"            # how colour bar labels call ZERO_COLOR
BOX_COLOR = "red"             # boxes drawn on images
FILTER_FLOOR = 0.05           # filter_images: a filter's scale is at least this x the layer's max |w|
FILL = 0.5                    # grey: patches where a box leaves the image, and 0 in filter pictures


def colormap(kind: str, *, over_image: bool = False) -> Colormap:
    """The colour map for ``kind`` ("activation", "signed" or "heatmap"), a fresh copy.

    Masked entries (exact zeros, see ``mark_zeros``) are drawn in ``ZERO_COLOR``,
    or left transparent when the map lies ``over_image``.
    """
    names = {"activation": ACTIVATION_CMAP, "signed": DIVERGING_CMAP, "heatmap": HEATMAP_CMAP}
    if kind not in names:
        raise ValueError(f"Unknown colour map kind {kind!r}; use one of {sorted(names)}.")
    return colormaps[names[kind]].with_extremes(bad=(0, 0, 0, 0) if over_image else ZERO_COLOR)


def figure_png(fig: Figure, dpi: int | None = None) -> bytes:
    """Render ``fig`` to PNG bytes and close it (for ipywidgets.Image)."""
    data = figure_bytes(fig, "png", dpi=dpi)
    plt.close(fig)
    return data


# How figures are stored in the notebooks (``notebook.setup`` registers these with IPython):
# photo-like figures (an RGB image of at least PHOTO_PIXELS pixels) as JPEG, which stores a
# photo in a fraction of a PNG's bytes; everything else (line plots, maps, filters, whose sharp
# edges JPEG would smear) as PNG.
FIGURE_DPI = 80
JPEG_QUALITY = 85
PHOTO_PIXELS = 48 * 48


def figure_format(fig: Figure) -> str:
    """"jpeg" for a figure that shows a photo-like RGB image, else "png"."""
    for ax in fig.axes:
        for image in ax.get_images():
            array = image.get_array()
            if array is not None and array.ndim == 3 and array.shape[2] in (3, 4) \
                    and array.shape[0] * array.shape[1] >= PHOTO_PIXELS:
                return "jpeg"
    return "png"


def figure_bytes(fig: Figure, fmt: str, dpi: int | None = None) -> bytes:
    """``fig`` rendered as ``fmt`` ("png" or "jpeg") at ``dpi`` (default ``FIGURE_DPI``), tightly cropped."""
    buffer = io.BytesIO()
    options = {"pil_kwargs": {"quality": JPEG_QUALITY}} if fmt == "jpeg" else {}
    fig.savefig(buffer, format=fmt, dpi=dpi or FIGURE_DPI, bbox_inches="tight", facecolor="white", **options)
    return buffer.getvalue()


def use_compact_figures() -> bool:
    """In IPython: store every matplotlib figure as ``figure_format`` says (JPEG for photos,
    PNG otherwise) at ``FIGURE_DPI``. Returns False (and does nothing) outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return False
    # pyplot loads its backend on first use, and the inline backend then registers its own
    # figure formatters: load it now, so that ours, registered after it, are the ones used.
    plt.close(plt.figure())
    formatters = shell.display_formatter.formatters
    for fmt in ("png", "jpeg"):
        formatters[f"image/{fmt}"].for_type(Figure, partial(_figure_as, fmt))
    return True


def _figure_as(fmt: str, fig: Figure) -> str | None:
    """IPython's formatter for ``fmt``: the figure's bytes (base64) if it is stored as ``fmt``."""
    if not fig.axes or figure_format(fig) != fmt:
        return None
    return base64.b64encode(figure_bytes(fig, fmt)).decode("ascii")


def table(rows: Sequence[Sequence], header: Sequence[str], *, formats: str | Sequence[str] = "{}",
          title: str | None = None) -> str:
    """A plain-text table to print: one row per entry of ``rows``, columns aligned.

    ``formats``: one format string for every cell, or one per column (e.g. ``"{:.2f}"``;
    a cell that is a string is shown as it is). Numbers are right-aligned, text left.
    """
    formats = [formats] * len(header) if isinstance(formats, str) else list(formats)
    if len(formats) != len(header) or any(len(row) != len(header) for row in rows):
        raise ValueError(f"Every row and the formats need {len(header)} entries (the header's).")
    cells = [[v if isinstance(v, str) else f.format(v) for v, f in zip(row, formats)] for row in rows]
    numeric = [all(not isinstance(row[j], str) for row in rows) for j in range(len(header))]
    widths = [max(len(str(h)), *(len(c[j]) for c in cells)) for j, h in enumerate(header)]

    def line(values) -> str:
        return "  ".join(v.rjust(w) if right else v.ljust(w)
                         for v, w, right in zip(values, widths, numeric)).rstrip()

    text = [line([str(h) for h in header]), line(["-" * w for w in widths])] + [line(c) for c in cells]
    return "\n".join(([title] if title else []) + text)


def plus_minus(mean: float, spread: float, digits: int = 2) -> str:
    """"0.71 ± 0.03": a measured number with its spread (standard error or range), for ``table``."""
    return f"{mean:.{digits}f} ± {spread:.{digits}f}"


# ----------------------------------------------------------------------------- helpers

def _numpy(x) -> np.ndarray:
    """A float numpy copy of a tensor (detached, on the CPU) or an array."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().float().numpy()
    return np.asarray(x, dtype=np.float32)


def _label(x) -> str:
    """A panel title: indices become plain ints (a 0-d tensor prints as "tensor(356)")."""
    if isinstance(x, torch.Tensor) and x.numel() == 1:
        x = x.item()
    if isinstance(x, (int, np.integer)) or (isinstance(x, float) and x.is_integer()):
        return str(int(x))
    return str(x)


def _rgb(image) -> np.ndarray:
    """One image, (3, H, W) or (H, W, 3), as an (H, W, 3) array clipped to [0, 1]."""
    array = _numpy(image)
    if array.ndim == 3 and array.shape[0] == 3:
        array = array.transpose(1, 2, 0)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"Expected an RGB image of shape (3, H, W) or (H, W, 3), got {array.shape}.")
    return np.clip(array, 0, 1)


def _rgb_batch(images) -> np.ndarray:
    """A batch (N, 3, H, W), a list of images or one image → (N, H, W, 3) in [0, 1]."""
    if isinstance(images, (list, tuple)):
        return np.stack([_rgb(image) for image in images])
    array = _numpy(images)
    if array.ndim == 3:
        return _rgb(array)[None]
    if array.ndim == 4 and array.shape[1] == 3:
        array = array.transpose(0, 2, 3, 1)
    if array.ndim != 4 or array.shape[3] != 3:
        raise ValueError(f"Expected images of shape (N, 3, H, W), got {array.shape}.")
    return np.clip(array, 0, 1)


def _maps(maps) -> np.ndarray:
    """Maps (N, h, w), (N, 1, h, w) or one map (h, w) → (N, h, w)."""
    array = _numpy(maps)
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"Expected maps of shape (N, h, w) or one map (h, w), got {array.shape}.")
    return array


def _norm(arrays, signed: bool, vmin=None, vmax=None) -> Normalize:
    """One colour scale for all ``arrays``: ±max|x| when signed, else [min(0, min), max].

    ``vmin``/``vmax`` override either end; an empty range (all zeros) becomes one unit wide.
    Panels that share a scale share this one object, so ``set_clim`` on one changes all.
    """
    low = min(float(np.min(a)) for a in arrays)
    high = max(float(np.max(a)) for a in arrays)
    if signed:
        limit = max(abs(low), abs(high)) or 0.5
        low, high = -limit, limit
    else:
        low = min(0.0, low)
    low = low if vmin is None else float(vmin)
    high = high if vmax is None else float(vmax)
    return Normalize(low, high if high > low else low + 1.0)


def _draw_map(ax, array: np.ndarray, cmap: Colormap, norm: Normalize, mark_zeros: bool = True, **kwargs):
    """imshow of one map; exact zeros masked, so they take the colour map's "bad" colour."""
    data = np.ma.masked_equal(array, 0.0) if mark_zeros else array
    return ax.imshow(data, cmap=cmap, norm=norm, **kwargs)


def _colorbar(fig, image, axes, units: str, mark_zeros: bool, over_image: bool = False, **kwargs):
    """A colour bar for ``image`` next to ``axes``, labelled with the units and the zero colour."""
    label = units
    if mark_zeros:
        label += "; uncoloured = exactly 0" if over_image else f"; {ZERO_NAME} = exactly 0"
    return fig.colorbar(image, ax=axes, label=label, shrink=0.9, **kwargs)


def _grid(n: int, ncols: int, cell: float, title: str | None, *, pair: int = 1):
    """A figure with an axes grid for n panels (``pair`` rows per grid row); axes (rows, cols)."""
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols) * pair
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols + 0.8, cell * nrows + (0.4 if title else 0)),
                             squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return fig, axes


def _side_label(ax, text: str) -> None:
    """A label left of a panel whose axis is off (row titles)."""
    ax.text(-0.06, 0.5, text, transform=ax.transAxes, rotation=90, ha="right", va="center", fontsize=8)


# ----------------------------------------------------------------------------- images

def show_images(images, titles: Sequence | None = None, ncols: int = 4,
                cell: float = 3.0, title: str | None = None, *, row_titles: Sequence | None = None) -> Figure:
    """A grid of RGB images: a batch (N, 3, H, W), or a list of (3, H, W) / (H, W, 3) images, in [0, 1].

    ``titles``: one per image (strings, or indices shown as plain ints; "" for none);
    ``row_titles``: one label left of each row.
    """
    batch = list(images) if isinstance(images, (list, tuple)) else list(_rgb_batch(images))
    fig, axes = _grid(len(batch), ncols, cell, title)
    for i, (ax, image) in enumerate(zip(axes.flat, batch)):
        ax.imshow(_rgb(image))
        if titles is not None and titles[i] != "":
            ax.set_title(_label(titles[i]), fontsize=9)
    for row, text in zip(axes, row_titles or ()):
        _side_label(row[0], str(text))
    return fig


# ----------------------------------------------------------------------------- activations

def show_activations(activation, channels: Sequence[int] | None = None, ncols: int = 8,
                     cell: float = 1.3, title: str | None = None, *, vmax: float | None = None,
                     units: str = "activation") -> Figure:
    """Feature maps of one image, ``activation`` (C, H, W), one panel per channel.

    ``channels``: which channels (ints, a list or a tensor of indices; default all), titled
    by their index. All panels share one colour scale, from min(0, smallest value) to
    the largest value shown (or ``vmax``: pass the same ``vmax`` to two figures to
    compare them), so a channel that is dark everywhere really is (near) zero compared
    to the rest. Entries that are exactly 0 are drawn in ``ZERO_COLOR``.
    """
    maps = _numpy(activation)
    if maps.ndim != 3:
        raise ValueError(f"Expected one image's activation of shape (C, H, W), got {maps.shape}; "
                         f"index the batch first, e.g. acts[layer][0].")
    channels = range(maps.shape[0]) if channels is None else channels
    channels = [int(c) for c in (channels.tolist() if isinstance(channels, torch.Tensor) else channels)]
    norm = _norm([maps[channels]], signed=False, vmax=vmax)
    fig, axes = _grid(len(channels), ncols, cell, title)
    cmap = colormap("activation")
    for ax, c in zip(axes.flat, channels):
        image = _draw_map(ax, maps[c], cmap, norm)
        ax.set_title(_label(c), fontsize=7)
    _colorbar(fig, image, axes, units, mark_zeros=True)
    return fig


# ----------------------------------------------------------------------------- filters

def filter_images(weight, *, shared: bool = False, floor: float = FILTER_FLOOR) -> np.ndarray:
    """RGB first-layer filters (O, 3, k, k) → (O, k, k, 3) pictures in [0, 1], grey (0.5) = 0.

    A weight w becomes 0.5 + 0.5 * w / scale, so the sign of each weight stays
    visible as a colour. With ``shared=True`` every filter uses one scale, the
    layer's largest |w|. Otherwise each filter uses its own, so weak filters still
    show their pattern -- but never less than ``floor`` times the layer's largest |w|:
    scale = max(max |w| of the filter, floor * max |w| of the layer). A filter that is
    (near) zero compared to the rest of the layer (a dead filter) is therefore drawn
    grey, not blown up to full contrast.
    """
    w = _numpy(weight)
    if w.ndim != 4 or w.shape[1] != 3:
        raise ValueError(f"Expected RGB filters of shape (O, 3, k, k), got {w.shape}.")
    own = np.abs(w).reshape(len(w), -1).max(axis=1)
    layer = float(own.max()) if len(w) else 0.0
    scale = np.full_like(own, layer) if shared else np.maximum(own, floor * layer)
    scale = np.where(scale > 0, scale, 1.0).reshape(-1, 1, 1, 1)  # an all-zero layer stays grey
    return (FILL + 0.5 * w / scale).transpose(0, 2, 3, 1)


def show_filters(weight, ncols: int = 8, cell: float = 1.0, title: str | None = None, *,
                 shared: bool = False, floor: float = FILTER_FLOOR,
                 indices: Sequence[int] | None = None) -> Figure:
    """Convolution filters (O, I, k, k) as small pictures, titled by filter index.

    RGB filters (I = 3) are drawn in colour by ``filter_images`` (grey = 0; ``shared`` and
    ``floor`` as there). Deeper filters are drawn one row per filter, one column per
    input channel, blue negative / red positive on one scale shared by the whole
    layer, with a colour bar "weight". ``indices``: the filters' numbers in their
    layer, when ``weight`` is a selection (default 0 … O-1).
    """
    w = _numpy(weight)
    if w.ndim != 4:
        raise ValueError(f"Expected filters of shape (O, I, k, k), got {w.shape}.")
    indices = list(range(len(w))) if indices is None else indices
    if w.shape[1] == 3:
        fig, axes = _grid(len(w), ncols, cell, title)
        for ax, picture, index in zip(axes.flat, filter_images(w, shared=shared, floor=floor), indices):
            ax.imshow(picture, interpolation="nearest")
            ax.set_title(_label(index), fontsize=7)
        return fig
    norm = _norm([w], signed=True)
    cmap = colormap("signed")
    fig, axes = _grid(w.shape[0] * w.shape[1], w.shape[1], cell, title)
    for o, index in enumerate(indices):
        for i in range(w.shape[1]):
            image = _draw_map(axes[o, i], w[o, i], cmap, norm, mark_zeros=False, interpolation="nearest")
            if o == 0:
                axes[o, i].set_title(_label(i), fontsize=7)
        _side_label(axes[o, 0], _label(index))
    fig.supylabel("filter", fontsize=8)
    fig.supxlabel("input channel", fontsize=8)
    _colorbar(fig, image, axes, "weight", mark_zeros=False)
    return fig


# ----------------------------------------------------------------------------- maps over images

def _upsample(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, h, w) maps → (N, H, W), bilinear, for display only. Regions of exact zeros stay 0."""
    if maps.shape[1:] == tuple(size):
        return maps
    return F.interpolate(torch.from_numpy(maps)[:, None], size=size, mode="bilinear",
                         align_corners=False)[:, 0].numpy()


def _dimmed(image: np.ndarray) -> np.ndarray:
    """An (H, W, 3) image as a dimmed grey picture, so a colour map on top stands out."""
    return 0.2 + 0.5 * (image @ np.array([0.299, 0.587, 0.114], dtype=np.float32))


def _draw_overlay(ax, image: np.ndarray, heat: np.ndarray, cmap: Colormap, norm, alpha: float, mark_zeros: bool):
    """The dimmed grey ``image`` with ``heat`` (its size) over it; returns the heatmap's AxesImage."""
    ax.imshow(_dimmed(image), cmap="gray", vmin=0, vmax=1)
    return _draw_map(ax, heat, cmap, norm, mark_zeros, alpha=alpha)


def _signed(arrays, signed: bool | None) -> bool:
    """``signed``, or when it is None, whether any of ``arrays`` has a value < 0."""
    return any(bool((a < 0).any()) for a in arrays) if signed is None else signed


def _map_cmap(signed: bool, over_image: bool) -> Colormap:
    if signed:
        return colormap("signed", over_image=over_image)
    return colormap("heatmap" if over_image else "activation", over_image=over_image)


def overlay_heatmaps(images, maps, titles: Sequence | None = None, *, units: str,
                     vmin: float | None = None, vmax: float | None = None, signed: bool | None = None,
                     alpha: float = 0.6, mark_zeros: bool = False, ncols: int = 4, cell: float = 3.0,
                     title: str | None = None) -> Figure:
    """Maps drawn over their images: one panel per image.

    ``images``: (N, 3, H, W) in [0, 1] (or one (3, H, W) image); ``maps``: (N, h, w),
    (N, 1, h, w) or one (h, w) map. Each map is upsampled to its image's size
    (bilinear, for display only) and drawn with transparency ``alpha`` over the image
    in dimmed grey. All panels share one colour scale (``vmin``/``vmax`` override it),
    shown by a colour bar labelled ``units`` (e.g. "probability", "|gradient|").
    Signed maps (``signed=None``: any value < 0) use the diverging colour map centred
    at 0; non-negative maps use ``HEATMAP_CMAP``. Exact zeros take the colour map's lowest
    colour like any small value: upsampling a coarse map for display turns its zero cells
    into blocks that, left uncoloured, read as missing data (``mark_zeros=True`` leaves
    them uncoloured all the same).
    """
    pictures, heat = _rgb_batch(images), _maps(maps)
    if len(pictures) != len(heat):
        raise ValueError(f"Got {len(pictures)} images but {len(heat)} maps.")
    signed = _signed([heat], signed)
    norm = _norm([heat], signed, vmin, vmax)
    cmap = _map_cmap(signed, over_image=True)
    heat = _upsample(heat, pictures.shape[1:3])
    fig, axes = _grid(len(pictures), ncols, cell, title)
    for i, ax in enumerate(axes.flat[:len(pictures)]):
        image = _draw_overlay(ax, pictures[i], heat[i], cmap, norm, alpha, mark_zeros)
        if titles is not None:
            ax.set_title(_label(titles[i]), fontsize=9)
    _colorbar(fig, image, axes, units, mark_zeros, over_image=True)
    return fig


def _column(stack) -> np.ndarray:
    """A show_panels column: RGB pictures (N, 3, H, W) → (N, H, W, 3); maps → (N, h, w)."""
    array = _numpy(stack)
    return _rgb_batch(array) if array.ndim == 4 and array.shape[1] == 3 else _maps(array)


def show_panels(columns: Sequence[tuple], *, images=None, overlay: bool = False,
                units: str | Sequence[str] = "", share: str = "column", signed: bool | None = None,
                mark_zeros: bool | None = None, alpha: float = 0.6, row_titles: Sequence | None = None,
                cell: float = 2.5, title: str | None = None) -> Figure:
    """Side-by-side panels: one column per (title, maps) pair, one row per image.

    ``columns``: a list of (title, maps), maps (N, h, w) or one map (h, w) -- e.g. the
    same images under several attribution methods; a column may also hold RGB
    pictures (N, 3, H, W) in [0, 1] (one picture: (1, 3, H, W)), drawn as they are.
    ``images``: optional (N, 3, H, W) (or one (3, H, W)): shown as a first column
    "image", and with ``overlay=True`` every map is drawn over its image instead.
    Each map column has its own colour scale, shared by its rows, and its own colour
    bar labelled by ``units`` (one string, or one per column); ``share="all"`` puts
    every map column on one scale, with one colour bar (labelled by the first units).
    Signed columns (``signed=None``: any value < 0) use the diverging colour map
    centred at 0. Exact zeros (``mark_zeros=None``: on maps drawn on their own, not
    over an image; see ``overlay_heatmaps``) are drawn in ``ZERO_COLOR``.
    """
    if share not in ("column", "all"):
        raise ValueError(f"share must be 'column' or 'all', got {share!r}.")
    if overlay and images is None:
        raise ValueError("overlay=True draws the maps over images: pass images=(N, 3, H, W).")
    mark_zeros = not overlay if mark_zeros is None else mark_zeros
    pictures = None if images is None else _rgb_batch(images)
    data = [(name, _column(stack)) for name, stack in columns]
    units = [units] * len(data) if isinstance(units, str) else list(units)
    rows = {len(m) for _, m in data} | ({len(pictures)} if pictures is not None else set())
    if len(rows) != 1:
        raise ValueError(f"Every column needs the same number of rows, got {sorted(rows)}.")
    nrows = rows.pop()
    maps = [m for _, m in data if m.ndim == 3]
    common = _norm(maps, _signed(maps, signed)) if share == "all" and maps else None
    lead = [("image", pictures)] if pictures is not None else []
    fig, axes = _grid(nrows * (len(data) + len(lead)), len(data) + len(lead), cell, title)
    for j, (name, stack) in enumerate(lead + data):
        axes[0, j].set_title(_label(name), fontsize=9)
        if stack.ndim == 4:
            for r in range(nrows):
                axes[r, j].imshow(stack[r])
            continue
        col_signed = _signed(maps if common is not None else [stack], signed)
        norm = common if common is not None else _norm([stack], col_signed)
        cmap = _map_cmap(col_signed, over_image=overlay)
        for r in range(nrows):
            if overlay:
                heat = _upsample(stack[r:r + 1], pictures.shape[1:3])[0]
                image = _draw_overlay(axes[r, j], pictures[r], heat, cmap, norm, alpha, mark_zeros)
            else:
                image = _draw_map(axes[r, j], stack[r], cmap, norm, mark_zeros)
        if common is None:
            _colorbar(fig, image, axes[:, j], units[j - len(lead)], mark_zeros, over_image=overlay,
                      location="bottom")
    if common is not None:  # one scale, one colour bar under every map column
        first = next(j for j, (_, stack) in enumerate(lead + data) if stack.ndim == 3)
        _colorbar(fig, image, axes[:, first:], units[first - len(lead)], mark_zeros, over_image=overlay,
                  location="bottom")
    for r, name in enumerate(row_titles or []):
        _side_label(axes[r, 0], _label(name))
    return fig


# ----------------------------------------------------------------------------- patches and boxes

def crop_box(image, box, fill: float = FILL) -> np.ndarray:
    """The patch of ``image`` ((3, H, W) or (H, W, 3)) inside ``box`` = (x0, y0, x1, y1).

    Ends are exclusive, so the result is (y1 - y0, x1 - x0, 3). The box may extend
    past the image's border (a receptive field near the edge does): the part outside
    the image is filled with grey ``fill``.
    """
    picture = _rgb(image)
    x0, y0, x1, y1 = (int(v) for v in _numpy(box).round())
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"Empty box {(x0, y0, x1, y1)}; expected x0 < x1 and y0 < y1.")
    patch = np.full((y1 - y0, x1 - x0, 3), fill, dtype=np.float32)
    height, width = picture.shape[:2]
    top, left, bottom, right = max(y0, 0), max(x0, 0), min(y1, height), min(x1, width)
    if top < bottom and left < right:
        patch[top - y0:bottom - y0, left - x0:right - x0] = picture[top:bottom, left:right]
    return patch


def _box_rectangle(box) -> Rectangle:
    """The outline of box (x0, y0, x1, y1) in imshow's pixel coordinates (pixel i spans i ± 0.5)."""
    x0, y0, x1, y1 = (float(v) for v in _numpy(box))
    return Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor=BOX_COLOR, linewidth=1.5)


def show_patches(images, boxes, *, index=None, show: str = "both", scores=None,
                 row_titles: Sequence | None = None, cell: float = 1.4, title: str | None = None) -> Figure:
    """Top-k patches of units: rows = units, columns = ranks.

    ``boxes``: (U, K, 4) boxes (x0, y0, x1, y1), ends exclusive, in pixels of the
    full images; they may extend past the image border (e.g. a receptive field).
    ``images``: (N, 3, H, W) with ``index`` (U, K) -- which image each box lies in --
    or, without ``index``, (U, K, 3, H, W). ``show``: "box" (the full image with the
    box drawn), "crop" (the patch, padded with grey where the box leaves the image,
    see ``crop_box``) or "both" (two rows per unit). ``scores`` (U, K): shown as
    panel titles (e.g. the unit's activation). ``row_titles``: the units' numbers
    (default 0 … U-1), shown as plain ints.
    """
    if show not in ("box", "crop", "both"):
        raise ValueError(f"show must be 'box', 'crop' or 'both', got {show!r}.")
    boxes = _numpy(boxes)
    boxes = boxes[None] if boxes.ndim == 2 else boxes
    units, k = boxes.shape[:2]
    if index is None:
        array = _numpy(images)
        pictures = _rgb_batch(array.reshape(units * k, *array.shape[-3:]))
        index = np.arange(units * k).reshape(units, k)
    else:
        pictures = _rgb_batch(images)
        index = _numpy(index).astype(int).reshape(units, k)
    scores = None if scores is None else _numpy(scores).reshape(units, k)
    pair = 2 if show == "both" else 1
    fig, axes = _grid(units * k, k, cell, title, pair=pair)
    for u in range(units):
        for j in range(k):
            picture, box, row = pictures[index[u, j]], boxes[u, j], u * pair
            if show in ("box", "both"):
                axes[row, j].imshow(picture)
                axes[row, j].add_patch(_box_rectangle(box))
            if show in ("crop", "both"):
                axes[row + pair - 1, j].imshow(crop_box(picture, box))
            if scores is not None:
                axes[row, j].set_title(f"{scores[u, j]:.3g}", fontsize=7)
        _side_label(axes[u * pair, 0], _label(row_titles[u] if row_titles is not None else u))
    return fig


# ----------------------------------------------------------------------------- thumbnail layouts

def _thumbnails(images, size: int | None) -> np.ndarray:
    """(N, H, W, 3) pictures, resized so the shorter side is ``size`` (None: as they are)."""
    pictures = _rgb_batch(images)
    if size is None:
        return pictures
    return np.stack([resize(picture, size) for picture in pictures])


def scatter_thumbnails(coords, images, *, labels=None, size: int = 32, zoom: float = 1.0,
                       figsize: tuple[float, float] = (8, 8), title: str | None = None) -> Figure:
    """A scatter of 2-D points (e.g. t-SNE), each drawn as its image's thumbnail.

    ``coords``: (N, 2) as (x, y); ``images``: (N, 3, H, W) in [0, 1]; each is shrunk
    to ``size`` pixels (shorter side) and drawn ``zoom`` times that many points wide.
    ``labels`` (N,) ints: optional, each thumbnail framed in its label's colour (tab10).
    """
    points = _numpy(coords)
    thumbs = _thumbnails(images, size)
    if points.shape != (len(thumbs), 2):
        raise ValueError(f"Expected coords of shape ({len(thumbs)}, 2), got {points.shape}.")
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    ax.scatter(points[:, 0], points[:, 1], s=0)  # sets the data limits; the thumbnails draw the points
    classes = None if labels is None else _numpy(labels).astype(int)
    for i, (xy, thumb) in enumerate(zip(points, thumbs)):
        frame = dict(edgecolor=plt.get_cmap("tab10")(classes[i] % 10), linewidth=1.5) if classes is not None else {}
        ax.add_artist(AnnotationBbox(OffsetImage(thumb, zoom=zoom), tuple(xy), frameon=classes is not None,
                                     pad=0.1, bboxprops=frame))
    ax.margins(0.08)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return fig


def grid_mosaic(images, cells, *, shape: tuple[int, int] | None = None, size: int | None = None,
                fill: float = 1.0) -> np.ndarray:
    """Place images at integer grid cells: one big (rows * h, cols * w, 3) picture.

    ``images``: (N, 3, h, w) in [0, 1], all the same size (``size``: shrink each so
    its shorter side is ``size`` first); ``cells``: (N, 2) ints (row, col). ``shape``:
    (rows, cols) of the grid (default: just large enough). Empty cells are ``fill``
    (white). Two images in one cell is an error.
    """
    pictures = _thumbnails(images, size)
    where = _numpy(cells).astype(int)
    if where.shape != (len(pictures), 2):
        raise ValueError(f"Expected cells of shape ({len(pictures)}, 2), got {where.shape}.")
    rows, cols = shape if shape is not None else tuple(where.max(axis=0) + 1)
    if (where < 0).any() or (where >= (rows, cols)).any():
        raise ValueError(f"Cells must lie in a {rows} x {cols} grid.")
    if len({tuple(c) for c in where}) != len(where):
        raise ValueError("Two images were given the same cell.")
    h, w = pictures.shape[1:3]
    mosaic = np.full((rows * h, cols * w, 3), fill, dtype=np.float32)
    for (r, c), picture in zip(where, pictures):
        mosaic[r * h:(r + 1) * h, c * w:(c + 1) * w] = picture
    return mosaic


def show_mosaic(images, cells, *, shape: tuple[int, int] | None = None, size: int | None = None,
                fill: float = 1.0, width: float = 8.0, title: str | None = None) -> Figure:
    """``grid_mosaic`` drawn as one figure ``width`` inches wide."""
    mosaic = grid_mosaic(images, cells, shape=shape, size=size, fill=fill)
    fig, ax = plt.subplots(figsize=(width, width * mosaic.shape[0] / mosaic.shape[1]), layout="constrained")
    ax.imshow(mosaic)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return fig

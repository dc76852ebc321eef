"""ipywidgets explorers for the notebooks."""

from __future__ import annotations

import ipywidgets as widgets
import torch
from torch import nn

from .activations import layer_activations, zero_fraction
from .plotting import figure_png, show_activations


def activation_explorer(model: nn.Module, image: torch.Tensor, layers: list[str] | None = None) -> widgets.VBox:
    """Pick a layer and a channel; see that channel's feature map for ``image`` (1, 3, H, W).

    The activations of all ``layers`` (default: ``model.layer_names``) are
    computed once, up front; moving the controls only redraws, with the same
    function the notebook uses (``plotting.show_activations``).
    """
    layers = list(layers or model.layer_names)
    acts = {name: a[0] for name, a in layer_activations(model, image, layers).items()}
    layer = widgets.Dropdown(options=layers, value=layers[0], description="layer")
    channel = widgets.IntSlider(value=0, min=0, max=acts[layers[0]].shape[0] - 1, description="channel")
    info = widgets.Label()
    picture = widgets.Image(format="png", width=320)

    def redraw(_=None):
        channel.max = acts[layer.value].shape[0] - 1
        fmap = acts[layer.value][channel.value]
        info.value = (f"{layer.value}: {tuple(acts[layer.value].shape)}, channel {channel.value}: "
                      f"max {fmap.max().item():.3g}, zero fraction {zero_fraction(fmap):.2f}")
        # An Image widget, not an Output widget: nbval does not route Output-widget messages,
        # and PNG bytes leave no figure in the cell's output.
        picture.value = figure_png(show_activations(acts[layer.value], channels=[channel.value], ncols=1, cell=3.5))

    layer.observe(redraw, names="value")
    channel.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([layer, channel]), info, picture])

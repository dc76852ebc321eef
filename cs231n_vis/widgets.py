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


# ---------------------------------------------------------------------------
# Notebook 05: label the network's hardest images yourself
# ---------------------------------------------------------------------------

def quiz_score(answers, labels, predicted) -> dict:
    """Score a labelling quiz: the human's and the network's accuracy on the same images.

    ``answers``: the human's class index per image (None = not answered, counted
    wrong); ``labels``: the true classes; ``predicted``: the network's. Returns
    ``{"n", "answered", "human", "cnn"}`` (accuracies as fractions of all n images).
    """
    labels, predicted = [int(v) for v in labels], [int(v) for v in predicted]
    answers = list(answers)
    if not (len(answers) == len(labels) == len(predicted)) or not labels:
        raise ValueError(f"answers, labels and predicted need one entry per image; got "
                         f"{len(answers)}, {len(labels)}, {len(predicted)}.")
    n = len(labels)
    human = sum(a is not None and int(a) == y for a, y in zip(answers, labels))
    cnn = sum(p == y for p, y in zip(predicted, labels))
    return {"n": n, "answered": sum(a is not None for a in answers), "human": human / n, "cnn": cnn / n}


def _png(image: torch.Tensor, size: int) -> bytes:
    import io

    from PIL import Image

    array = (image.detach().cpu().clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(array).resize((size, size), Image.NEAREST).save(buffer, format="png")
    return buffer.getvalue()


def labeling_quiz(images: torch.Tensor, labels, predicted, class_names, *, size: int = 96,
                  ncols: int = 5) -> widgets.VBox:
    """Label ``images`` (N, 3, H, W) yourself, then compare with the network.

    One picture and one drop-down of ``class_names`` per image; the "score"
    button shows your accuracy next to the network's (``predicted``) on the same
    images (``quiz_score``). The returned box has ``answers`` (the drop-downs),
    ``button`` and ``result`` (a Label) as attributes, so the quiz can be filled
    in and scored programmatically: set ``answers[i].value`` to a class name,
    call ``button.click()``.
    """
    names = list(class_names)
    answers = [widgets.Dropdown(options=["?"] + names, value="?", layout=widgets.Layout(width=f"{size + 24}px"))
               for _ in range(len(images))]
    cells = [widgets.VBox([widgets.Image(value=_png(img, size), format="png", width=size, height=size), a])
             for img, a in zip(images, answers)]
    button = widgets.Button(description="score")
    result = widgets.Label(value=f"label all {len(images)} images, then press score")

    def score(_=None):
        chosen = [None if a.value == "?" else names.index(a.value) for a in answers]
        s = quiz_score(chosen, labels, predicted)
        result.value = (f"you: {s['human']:.2f} ({s['answered']} of {s['n']} answered)   "
                        f"the CNN: {s['cnn']:.2f}   on the same {s['n']} images")

    button.on_click(score)
    grid = widgets.GridBox(cells, layout=widgets.Layout(grid_template_columns=f"repeat({ncols}, {size + 30}px)"))
    box = widgets.VBox([grid, widgets.HBox([button, result])])
    box.answers, box.button, box.result = answers, button, result
    return box

"""The one place where hooks are registered, and where model state is guarded.

- ``get_layer(model, name)``: a layer by its dotted name, with "did you mean" errors.
- ``record(model, layers, gradients=False)``: a context manager that records the
  outputs (and, optionally, the output gradients) of named layers.
- ``frozen(model)``: a context manager for techniques that need gradients with
  respect to the input only; it puts the model in eval mode, freezes its
  parameters, and restores every flag it touched on exit.
"""

from __future__ import annotations

import difflib
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import nn


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` (as in ``model.named_modules()``)."""
    modules = dict(model.named_modules())
    if name in modules and name != "":
        return modules[name]
    names = [n for n in modules if n]
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    listed = getattr(model, "layer_names", names[:10])
    raise KeyError(f"The model has no layer named {name!r}.{hint} "
                   f"Layers to try: {', '.join(listed)} (all names: dict(model.named_modules())).")


@dataclass
class Recording:
    """What ``record`` saw: layer name → tensor, filled during forward/backward."""

    activations: dict[str, torch.Tensor] = field(default_factory=dict)
    gradients: dict[str, torch.Tensor] = field(default_factory=dict)


@contextmanager
def record(model: nn.Module, layers: str | list[str], gradients: bool = False,
           keep_graph: bool = False) -> Iterator[Recording]:
    """Record the outputs of ``layers`` during the forward passes inside the block.

    Activations are copies (``clone``), so an in-place operation after the layer
    (``ReLU(inplace=True)``) cannot change what was recorded. By default they are
    detached; ``keep_graph=True`` keeps them in the autograd graph, so a loss can
    be computed from them (feature inversion, DeepDream).

    ``gradients=True`` also records d(loss)/d(output) of each layer during
    ``backward()``, through a hook on the output tensor.

    A layer called several times in one forward pass keeps its last output.
    Every hook is removed on exit, also when the block raises.
    """
    names = [layers] if isinstance(layers, str) else list(layers)
    modules = {name: get_layer(model, name) for name in names}
    rec = Recording()
    handles = []

    def make_hook(name: str):
        def hook(module, inputs, output):
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"Layer {name!r} returns {type(output).__name__}, not a tensor; "
                                f"record one of its submodules instead.")
            rec.activations[name] = output.clone() if keep_graph else output.detach().clone()
            if gradients and output.requires_grad:
                def save_grad(grad, name=name):
                    rec.gradients[name] = grad.detach().clone()
                output.register_hook(save_grad)
        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        yield rec
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def frozen(model: nn.Module, eval_mode: bool = True) -> Iterator[nn.Module]:
    """Eval mode and ``requires_grad=False`` on every parameter, for the block only.

    On exit, every module's ``training`` flag and every parameter's
    ``requires_grad`` flag are restored to what they were. (Leaving the
    parameters trainable while taking input gradients also wastes time: the
    backward pass then computes every weight gradient too.)
    """
    training = {module: module.training for module in model.modules()}
    requires_grad = {param: param.requires_grad for param in model.parameters()}
    try:
        if eval_mode:
            model.eval()
        model.requires_grad_(False)
        yield model
    finally:
        for module, flag in training.items():
            module.training = flag
        for param, flag in requires_grad.items():
            param.requires_grad_(flag)

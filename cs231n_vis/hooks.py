"""The one place where hooks are registered, and where model state is guarded.

- ``layer_list(layers)``: one layer name or several → a list of names.
- ``get_layer(model, name)``: a layer by its dotted name, with "did you mean" errors.
- ``record(model, layers, gradients=False)``: a context manager that records the
  outputs (and, optionally, the output gradients) of named layers.
- ``frozen(model)``: a context manager for techniques that need gradients with
  respect to the input only; it puts the model in eval mode, freezes its
  parameters, and restores every flag it touched on exit; an input too small
  for the model becomes one ``InputTooSmallError`` that gives the model's
  minimum size (``minimum_input_size``).
- ``override_rectifiers(model, rule)``: a context manager that replaces the
  backward pass of every ``nn.ReLU`` / ``nn.ReLU6`` module by the rule of
  guided backprop, of the DeconvNet, or by the identity ("linear").
"""

from __future__ import annotations

import difflib
import re
import weakref
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode


def layer_list(layers: str | Iterable[str]) -> list[str]:
    """``"features.3"`` → ``["features.3"]``; a list (or any iterable) of names → a list.

    Raises a TypeError for anything that is not a name (e.g. a module: pass
    ``"layer4"``, not ``model.layer4``) and a ValueError for no names at all.
    """
    if isinstance(layers, str):
        return [layers]
    if isinstance(layers, nn.Module) or not isinstance(layers, Iterable):
        raise TypeError(f"Layers are given by name, e.g. 'layer4' or ['layer3', 'layer4']; "
                        f"got {type(layers).__name__}. The names are in dict(model.named_modules()).")
    names = list(layers)
    wrong = [type(name).__name__ for name in names if not isinstance(name, str)]
    if wrong:
        raise TypeError(f"Layers are given by name (str), e.g. 'layer4'; got {', '.join(wrong)}. "
                        f"The names are in dict(model.named_modules()).")
    if not names:
        raise ValueError("No layer names given; name at least one, e.g. model.layer_names[-1].")
    return names


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


# ---------------------------------------------------------------------------
# Recording activations and gradients
# ---------------------------------------------------------------------------

class _LayerDict(dict):
    """A dict of layer name → tensor whose missing keys raise a KeyError that says why."""

    def __init__(self, why_missing: Callable[[str], str]):
        super().__init__()
        self._why_missing = why_missing

    def __missing__(self, name: str):
        raise KeyError(self._why_missing(name))


class Recording:
    """What ``record`` saw, filled during forward/backward.

    - ``activations[name]``: the layer's output (N, ...), from its last call.
    - ``gradients[name]``: d(loss)/d(that same output), same shape.
    - ``calls[name]``: how many times the layer ran in the last forward pass.
    """

    def __init__(self, layers: list[str], with_gradients: bool):
        self.layers = layers
        self.with_gradients = with_gradients
        self.activations: dict[str, torch.Tensor] = _LayerDict(self._why_no_activation)
        self.gradients: dict[str, torch.Tensor] = _LayerDict(self._why_no_gradient)
        self.calls: dict[str, int] = {name: 0 for name in layers}

    def _not_recorded(self, name: str) -> str | None:
        if name not in self.layers:
            return (f"Layer {name!r} is not being recorded (recorded layers: {self.layers}); "
                    f"add it: record(model, [..., {name!r}]).")
        return None

    def _why_no_activation(self, name: str) -> str:
        return self._not_recorded(name) or (
            f"No activation of layer {name!r} yet (recorded so far: {list(self.activations)}): "
            f"the layer did not run. Run the forward pass inside the `with record(...)` block, "
            f"and check that the model's forward really calls this layer.")

    def _why_no_gradient(self, name: str) -> str:
        if name in self.layers and not self.with_gradients:
            return f"Gradients are not recorded; use record(model, {self.layers}, gradients=True)."
        if name not in self.activations:  # not recorded, or the layer did not run
            return self._why_no_activation(name)
        return (f"No gradient of layer {name!r} yet (recorded so far: {list(self.gradients)}): "
                f"call backward() (or torch.autograd.grad) on a loss computed from the last "
                f"forward pass, inside the `with record(...)` block. If you did, the loss does "
                f"not depend on this layer.")


@contextmanager
def record(model: nn.Module, layers: str | Iterable[str], gradients: bool = False,
           keep_graph: bool = False, stop_backward: bool = False) -> Iterator[Recording]:
    """Record the outputs of ``layers`` during the forward passes inside the block.

    Args:
        model: the network; ``layers`` are names from ``model.named_modules()``.
        layers: one name or a list of names.
        gradients: also record d(loss)/d(output) of each layer during ``backward()``.
            The output must then require grad: make the input require grad
            (``images.requires_grad_(True)``) and do not run the forward pass
            under ``torch.no_grad()``; otherwise the forward pass raises (so a
            prediction pass under ``no_grad`` belongs outside the block).
        keep_graph: keep the recorded activations in the autograd graph, so a
            loss can be computed from them (feature inversion, DeepDream).
            By default they are detached.
        stop_backward: (one layer, with ``gradients=True``) the autograd graph
            *starts* at the layer: its output is detached into a leaf that
            requires grad, and the network continues with a copy of it (so an
            in-place op after the layer cannot touch it). The input need not
            require grad, nothing before the layer is recorded for backward, and
            ``backward()`` stops at the layer (Grad-CAM needs gradients there
            only; Captum's layer attributions do the same).

    Yields a ``Recording`` with ``activations[name]`` (N, ...), ``gradients[name]``
    (same shape) and ``calls[name]``, the number of times the layer ran in the
    last forward pass of ``model``. A layer called several times in one pass
    (torchvision's ResNet blocks call ``self.relu`` twice) keeps its *last*
    call: its activation and the gradient with respect to that same output.
    A missing name raises a KeyError that says why it is missing.

    Activations are copies (``clone``), so an in-place operation after the layer
    (``ReLU(inplace=True)``) cannot change what was recorded.
    Every hook is removed on exit, also when the block raises.
    """
    names = layer_list(layers)
    if stop_backward and (not gradients or len(names) != 1):
        raise ValueError(f"stop_backward=True needs gradients=True and one layer (a cut at one layer "
                         f"would hide the gradients of the layers before it); got gradients="
                         f"{gradients} and layers {names}.")
    modules = {name: get_layer(model, name) for name in names}
    rec = Recording(names, gradients)
    latest = {name: 0 for name in names}  # a number for each call, never reset

    def new_pass(module, inputs):
        for name in names:
            rec.calls[name] = 0

    def make_hook(name: str):
        def hook(module, inputs, output):
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"Layer {name!r} returns {type(output).__name__}, not a tensor; "
                                f"record one of its submodules instead.")
            rec.calls[name] += 1
            latest[name] += 1
            if stop_backward:
                if not torch.is_grad_enabled():
                    raise RuntimeError(_no_grad_message(name))
                leaf = output.detach().requires_grad_(True)
                output, continued = leaf, leaf.clone()
            rec.activations[name] = output.clone() if keep_graph else output.detach().clone()
            if gradients:
                if not output.requires_grad:
                    raise RuntimeError(_no_grad_message(name))
                # Gradients are recorded by a hook on the output *tensor*, not by a module
                # backward hook (register_full_backward_hook): that one wraps the output in
                # an extra autograd node, and an in-place op on the output afterwards (the
                # ReLU(inplace=True) after a conv) then raises. Tensor hooks fire in reverse
                # order of the calls, so each hook checks that its call is still the layer's
                # latest one; otherwise an earlier call's gradient would overwrite the last's.
                call = latest[name]

                def save_grad(grad):
                    if call == latest[name]:
                        rec.gradients[name] = grad.detach().clone()
                output.register_hook(save_grad)
            if stop_backward:
                return continued
        return hook

    handles = []
    try:
        handles.append(model.register_forward_pre_hook(new_pass))
        for name, module in modules.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        yield rec
    finally:
        for handle in handles:
            handle.remove()


def _no_grad_message(name: str) -> str:
    reason = ("the forward pass runs under torch.no_grad()" if not torch.is_grad_enabled()
              else "neither the input nor any parameter before it requires grad")
    return (f"record(..., gradients=True): the output of layer {name!r} does not require grad "
            f"({reason}), so no gradient can reach it. Make the input require grad, e.g. "
            f"images.requires_grad_(True), and do not run the forward pass under torch.no_grad().")


class InputTooSmallError(ValueError):
    """The images are smaller than the model can take (a feature map shrank below a kernel)."""


# torch's messages when a feature map becomes smaller than a kernel or its padding
# (convolution, pooling, reflection padding); they name no argument, so ``frozen`` replaces them.
_TOO_SMALL = re.compile(r"Output size is too small|Kernel size can't be greater than actual input size|"
                        r"Padding size should be less than the corresponding input dimension")
_MINIMUM_SIZES: "weakref.WeakKeyDictionary[nn.Module, int | None]" = weakref.WeakKeyDictionary()


@contextmanager
def frozen(model: nn.Module, eval_mode: bool = True) -> Iterator[nn.Module]:
    """Eval mode and ``requires_grad=False`` on every parameter, for the block only.

    On exit, every module's ``training`` flag and every parameter's
    ``requires_grad`` flag are restored to what they were. (Leaving the
    parameters trainable while taking input gradients also wastes time: the
    backward pass then computes every weight gradient too.) Where the block
    fails because its images are too small for the model, it raises an
    ``InputTooSmallError`` that says the smallest size the model takes.
    """
    training = {module: module.training for module in model.modules()}
    requires_grad = {param: param.requires_grad for param in model.parameters()}
    try:
        if eval_mode:
            model.eval()
        model.requires_grad_(False)
        with too_small_errors(model):
            yield model
    finally:
        for module, flag in training.items():
            module.training = flag
        for param, flag in requires_grad.items():
            param.requires_grad_(flag)


@contextmanager
def too_small_errors(model: nn.Module) -> Iterator[None]:
    """Turn torch's error for a feature map smaller than a kernel, raised in the block, into
    an ``InputTooSmallError`` that names the model's smallest input (``frozen`` does this)."""
    try:
        yield
    except RuntimeError as error:
        if not _TOO_SMALL.search(str(error)):
            raise
        raise InputTooSmallError(_too_small_message(model)) from error


def minimum_input_size(model: nn.Module, largest: int = 1024) -> int | None:
    """The smallest side ``s`` such that the model runs on ``s`` × ``s`` images (None: not up to ``largest``).

    Found by forward passes on blank images of growing size (1, 2, 4, … then a
    bisection), in eval mode under ``torch.no_grad``, once per model (remembered).
    """
    if model in _MINIMUM_SIZES:
        return _MINIMUM_SIZES[model]
    reference = next((t for t in (*model.parameters(), *model.buffers()) if t.dtype.is_floating_point), None)
    device, dtype = (reference.device, reference.dtype) if reference is not None else ("cpu", torch.float32)

    def runs(side: int) -> bool:
        try:
            model(torch.zeros(1, 3, side, side, device=device, dtype=dtype))
            return True
        except RuntimeError:
            return False

    found = None
    with frozen(model), torch.no_grad():
        side = 1
        while side <= largest and not runs(side):
            side *= 2
        if side <= largest:
            low, found = side // 2, side  # low fails (or is 0), found runs
            while found - low > 1:
                middle = (low + found) // 2
                low, found = (low, middle) if runs(middle) else (middle, found)
    _MINIMUM_SIZES[model] = found
    return found


def _too_small_message(model: nn.Module) -> str:
    side = minimum_input_size(model)
    trained = getattr(model, "input_size", None)
    least = f"it takes images of at least {side} × {side} pixels" if side else "its smallest input is unknown"
    message = f"The images are too small for this model ({type(model).__name__}): {least}"
    if trained:
        return (f"{message} and was trained on {trained} × {trained}. Resize them first, e.g. "
                f"torch.nn.functional.interpolate(images, size={trained}, mode='bilinear') or "
                f"cs231n_vis.images.to_tensor(image, size={trained}).")
    return f"{message}. Resize them first (torch.nn.functional.interpolate)."


# ---------------------------------------------------------------------------
# Guided backprop and DeconvNet: a different backward rule for the rectifiers
# ---------------------------------------------------------------------------

# What each rule lets back through a rectifier, given grad_out and the rectifier's output y
# (y lies strictly between the clamp's bounds exactly where the forward pass let its input
# through): the methods differ only here. aten's own rectifier backward kernels apply the
# forward mask in one pass, as the plain backward pass does.
def _mask(grad: torch.Tensor, y: torch.Tensor, lower: float, upper: float | None) -> torch.Tensor:
    if upper is None:
        return torch.ops.aten.threshold_backward(grad, y, lower)       # ReLU: where y > 0
    return torch.ops.aten.hardtanh_backward(grad, y, lower, upper)    # ReLU6: where 0 < y < 6


def _redirect(grad: torch.Tensor, y: torch.Tensor, lower: float, upper: float | None) -> torch.Tensor:
    """Lucid's redirected rectifier gradient (``redirected_relu_grad`` / ``redirected_relu6_grad``).

    For each example whose plain rectifier gradient is all zero (every unit it reaches is off,
    or clipped at 6), let through the gradient that would move a unit back into its active
    range; block only what would push an off unit further below 0 (gradient > 0: descent
    lowers it) or a clipped unit further above 6. Examples that get a plain gradient keep it.
    """
    passed = _mask(grad, y, lower, upper)
    blocked = (y <= lower) & (grad > 0)
    if upper is not None:
        blocked |= (y >= upper) & (grad < 0)
    redirected = grad.masked_fill(blocked, 0)
    nothing = passed.flatten(1).norm(dim=1) == 0  # per example: dimension 0 is the batch
    return torch.where(nothing.view(-1, *[1] * (grad.dim() - 1)), redirected, passed)


_BACKWARD_RULES = {
    # guided backprop (Springenberg et al., arXiv:1412.6806)
    "guided": lambda grad_out, y, lower, upper: _mask(grad_out.clamp(min=0), y, lower, upper),
    # DeconvNet (Zeiler & Fergus, arXiv:1311.2901): relu(grad_out), whatever the forward did
    "deconv": lambda grad_out, y, lower, upper: grad_out.clamp(min=0),
    # the rectifier as the identity: the backward pass of the network's linear part
    "linear": lambda grad_out, y, lower, upper: grad_out,
    # feature visualization's first steps from a grey start (Olah et al., distill 2017)
    "redirect": _redirect,
}
_NEEDS_OUTPUT = ("guided", "redirect")  # the rules that read the forward output y
RECTIFIER_RULES = tuple(_BACKWARD_RULES)

# Rectifiers called as functions: no module to hook, so the override cannot reach them.
_FUNCTIONAL_RECTIFIERS = {F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu,
                          torch.Tensor.relu_, F.relu6, F.hardtanh, F.hardtanh_}


class _Rectify(torch.autograd.Function):
    """clamp(x, lower, upper) forward; the backward of ``_BACKWARD_RULES[rule]``.

    ``upper`` is None for ReLU (no upper clip) and 6 for ReLU6. The output is saved (not a
    mask): the forward let x through exactly where lower < y (< upper), so the backward
    reads the mask off y, in the same fused kernel as the plain gradient's.
    """

    @staticmethod
    def forward(ctx, x, lower, upper, rule, inplace):
        y = x.clamp_(lower, upper) if inplace else x.clamp(lower, upper)
        if inplace:  # overwrite the input, as the module itself would have done
            ctx.mark_dirty(x)
        if rule in _NEEDS_OUTPUT:
            ctx.save_for_backward(y)
        ctx.rule, ctx.lower, ctx.upper = rule, lower, upper
        return y

    @staticmethod
    def backward(ctx, grad_out):
        y = ctx.saved_tensors[0] if ctx.rule in _NEEDS_OUTPUT else None
        return _BACKWARD_RULES[ctx.rule](grad_out, y, ctx.lower, ctx.upper), None, None, None, None


class _RefuseFunctionalRectifiers(TorchFunctionMode):
    """Raise when a rectifier runs as a function outside an nn.ReLU/nn.ReLU6 module.

    Why a TorchFunctionMode: ``F.relu(x)`` in a model's forward leaves no module
    to hook, so the override would silently keep the plain ReLU gradient there
    and the result would be a mix of two methods. The mode sees every torch
    function called while the block runs (and not the calls nested inside one:
    a mode is switched off while it handles a call), so it catches them.
    """

    def __init__(self, state: dict):
        super().__init__()
        self.state = state

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _FUNCTIONAL_RECTIFIERS and not self.state["in_module"]:
            name = getattr(func, "__qualname__", getattr(func, "__name__", str(func)))
            raise RuntimeError(
                f"override_rectifiers: the model calls the rectifier {name}() as a function, "
                f"outside an nn.ReLU / nn.ReLU6 module, so its backward rule cannot be replaced. "
                f"Use a module (self.relu = nn.ReLU(); x = self.relu(x)) in the model's forward, "
                f"and call no rectifier functions yourself inside the `with` block.")
        return func(*args, **(kwargs or {}))


@contextmanager
def override_rectifiers(model: nn.Module, rule: str) -> Iterator[nn.Module]:
    """Inside the block, every ``nn.ReLU`` and ``nn.ReLU6`` of ``model`` back-propagates by ``rule``.

    Args:
        model: a network whose rectifiers are ``nn.ReLU`` / ``nn.ReLU6`` modules
            (in-place or not).
        rule: ``"guided"`` — guided backprop (arXiv:1412.6806): a gradient passes
            where the forward pass let the input through (0 < x, and x < 6 for
            ReLU6) *and* the gradient is positive; ``"deconv"`` — the DeconvNet
            (arXiv:1311.2901): relu(gradient), ignoring the forward pass;
            ``"linear"`` — every gradient passes (the rectifier as the identity),
            so the backward pass is that of the network's linear part;
            ``"redirect"`` — the plain gradient, except for an example whose plain
            gradient through the rectifier is all zero: then every gradient passes
            but the part that would push an off unit further off (Lucid's
            ``redirected_relu_grad``, ReLU6 included; see ``_redirect``).

    The forward values are unchanged. Refused (ValueError) for a model without
    rectifier modules; a rectifier called as a function (``F.relu``,
    ``torch.relu``, ``x.relu()``, ``F.relu6``, ``F.hardtanh``) inside the block
    raises a RuntimeError, as its rule could not be replaced. Each rectifier's
    ``forward`` is replaced for the block only (restored on exit, also when the
    block raises); parameters, flags, hooks and modules are left as they were.
    """
    if rule not in RECTIFIER_RULES:
        raise ValueError(f"Unknown rule {rule!r}; use one of {RECTIFIER_RULES}.")
    rectifiers = [m for m in model.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))]
    if not rectifiers:
        raise ValueError(
            f"override_rectifiers: {type(model).__name__} has no nn.ReLU or nn.ReLU6 module, so "
            f"there is nothing to override (guided backprop and DeconvNet are defined for ReLU "
            f"networks only).")
    state = {"in_module": False}

    def rectifier_forward(module: nn.Module):
        # The module's own forward is replaced for the block (an instance attribute shadows
        # the class's method; Module.__call__ and every forward hook still run around it).
        # ReLU6 is Hardtanh(0, 6): its forward clamps to [min_val, max_val].
        lower, upper = (0.0, None) if isinstance(module, nn.ReLU) else (module.min_val, module.max_val)

        def forward(x: torch.Tensor) -> torch.Tensor:
            state["in_module"] = True
            try:
                return _Rectify.apply(x, lower, upper, rule, module.inplace)
            finally:
                state["in_module"] = False
        return forward

    replaced = []
    try:
        for module in rectifiers:
            module.forward = rectifier_forward(module)
            replaced.append(module)
        with _RefuseFunctionalRectifiers(state):
            yield model
    finally:
        for module in replaced:
            del module.forward  # the class's own forward again

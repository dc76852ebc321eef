"""Shared test helpers. Every technique's tests wrap their call in ``model_unchanged``."""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
               "_backward_pre_hooks", "_state_dict_hooks", "_load_state_dict_pre_hooks")


# Hooks on tensors: ``param.register_hook`` and ``param.register_post_accumulate_grad_hook``.
_TENSOR_HOOK_ATTRS = ("_backward_hooks", "_post_accumulate_grad_hooks")


def _hook_count(model: nn.Module) -> int:
    """Hooks on the model's modules and on its parameters and buffers."""
    on_modules = sum(len(getattr(m, d, None) or {}) for m in model.modules() for d in _HOOK_DICTS)
    tensors = [*model.parameters(), *model.buffers()]
    on_tensors = sum(len(getattr(t, a, None) or {}) for t in tensors for a in _TENSOR_HOOK_ATTRS)
    return on_modules + on_tensors


@contextmanager
def model_unchanged(model: nn.Module):
    """Assert that the block leaves ``model`` exactly as it found it.

    Checked after the block: parameters and buffers bit-identical, every module's
    ``training`` flag and every parameter's ``requires_grad`` flag as before, no
    ``.grad`` on any parameter, and no hook left on any module, parameter or buffer.
    """
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    training = [m.training for m in model.modules()]
    requires_grad = [p.requires_grad for p in model.parameters()]
    hooks = _hook_count(model)
    assert all(p.grad is None for p in model.parameters()), "the model had .grad before the block"
    yield model
    after = model.state_dict()
    changed = [k for k, v in state.items() if not torch.equal(v, after[k].detach().cpu().to(v.device))]
    assert not changed, f"parameters/buffers changed: {changed[:5]}"
    assert [m.training for m in model.modules()] == training, "a training flag was changed"
    assert [p.requires_grad for p in model.parameters()] == requires_grad, "a requires_grad flag was changed"
    with_grad = [n for n, p in model.named_parameters() if p.grad is not None]
    assert not with_grad, f".grad left on parameters: {with_grad[:5]}"
    assert _hook_count(model) == hooks, "a hook was left on the model"

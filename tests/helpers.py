"""Shared test helpers. Every technique's tests wrap their call in ``model_unchanged``."""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
               "_backward_pre_hooks", "_state_dict_hooks", "_load_state_dict_pre_hooks")


def _hook_count(model: nn.Module) -> int:
    return sum(len(getattr(m, d, {})) for m in model.modules() for d in _HOOK_DICTS)


@contextmanager
def model_unchanged(model: nn.Module):
    """Assert that the block leaves ``model`` exactly as it found it.

    Checked after the block: parameters and buffers bit-identical, every module's
    ``training`` flag and every parameter's ``requires_grad`` flag as before, no
    ``.grad`` on any parameter, and no hook left on any module.
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

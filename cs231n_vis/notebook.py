"""The first code cell of every notebook, as one call: seed, device, model.

    course = notebook.setup()          # or setup(model=None) when no ImageNet model is needed
    model, device = course.model, course.device

Nothing here prints: the notebook prints what it wants to show. The device is
never printed by the notebooks either, because the stored outputs must be the
same on a laptop and on a GPU machine.
"""

from __future__ import annotations

import math
import os
import platform
import random
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import __version__
from .models import DEFAULT_MODEL, default_model_name, load_model
from .plotting import use_compact_figures


@dataclass
class Setup:
    """What the setup cell gives a notebook."""

    model_name: str
    model: nn.Module | None
    device: torch.device


def pick_device() -> torch.device:
    """The GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (for the student's own code;
    the package's functions take explicit seeds and never rely on global state)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def lab_threads(environ: os._Environ | dict | None = None) -> int | None:
    """The thread count a lab's quota allows, or None when no quota is set.

    A CPU limit is a quota, not a smaller machine: a student's process on a 64-core server with
    a 2-CPU limit still sees 64 cores, and torch (and its BLAS) would start 64 threads that
    fight over 2 CPUs' worth of time (cells many times slower). JupyterHub passes the limit as
    ``CPU_LIMIT`` (a float, e.g. ``"2.0"`` or ``"0.5"``) when the spawner sets one; a lab's
    configuration may set ``OMP_NUM_THREADS`` instead. ``CPU_LIMIT`` wins (it is the quota
    itself); a fractional limit rounds down, but never below one thread. A value that is not
    a positive number is ignored (as if unset).
    """
    environ = os.environ if environ is None else environ
    for variable in ("CPU_LIMIT", "OMP_NUM_THREADS"):
        try:
            value = float(environ.get(variable, ""))
        except ValueError:
            continue
        if math.isfinite(value) and value > 0:
            return max(1, math.floor(value))
    return None


def setup(seed: int = 0, model: str | None = "default", device: str | torch.device | None = None) -> Setup:
    """Seed, choose the device, and load the notebook's ImageNet model.

    ``model="default"`` loads ``$CS231N_VIS_MODEL`` (or the offline default,
    ``efficientnet_lite0``); a name loads that model; ``None`` loads none.
    ``device=None`` picks the GPU when there is one. Under a lab's CPU quota
    (``CPU_LIMIT`` or ``OMP_NUM_THREADS``) torch runs that many threads (:func:`lab_threads`).
    """
    threads = lab_threads()
    if threads is not None and threads != torch.get_num_threads():
        torch.set_num_threads(threads)  # a lab's quota (CPU_LIMIT / OMP_NUM_THREADS): see lab_threads
    seed_everything(seed)
    use_compact_figures()  # photos stored as JPEG, plots as PNG: notebooks stay small
    device = torch.device(device) if device is not None else pick_device()
    name = default_model_name() if model == "default" else model
    loaded = load_model(name, device=device) if name is not None else None
    return Setup(model_name=name or "", model=loaded, device=device)


def versions() -> dict[str, str]:
    """The versions that produced a notebook's outputs (stored in its metadata)."""
    import matplotlib
    import torchvision

    return {
        "cs231n_vis": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "matplotlib": matplotlib.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": str(torch.get_num_threads()),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }


def is_default_model(model: nn.Module | None) -> bool:
    """Whether ``model`` is the one the stored outputs and the prose's numbers were made with:
    the offline default with its real weights (models without a name, like the shapes CNN, count)."""
    name = getattr(model, "name", None)
    return name is None or (name == DEFAULT_MODEL and getattr(model, "pretrained", True))


def claim(model: nn.Module | None, holds: bool, what: str, *, measured: str = "") -> bool:
    """Check a claim the notebook's prose makes, measured on ``model``.

    The prose quotes the default model: there a claim that does not hold is a regression and
    raises ``AssertionError`` (with ``what`` and ``measured``), and nothing is printed. On any
    other model (``$CS231N_VIS_MODEL``, random weights) the claim may fairly fail: this prints
    what was measured and whether the claim holds on this model, and the notebook goes on.
    Returns whether it holds.
    """
    holds = bool(holds)
    if is_default_model(model):
        assert holds, f"{what}: does not hold. {measured}".strip()
        return holds
    label = f"{model.name}{'' if getattr(model, 'pretrained', True) else ' (random weights)'}"
    verdict = "holds" if holds else "does NOT hold"
    print(f"[on {label}] {what}: {verdict} here{f' ({measured})' if measured else ''}; "
          f"the prose's numbers are {DEFAULT_MODEL}'s.")
    return holds

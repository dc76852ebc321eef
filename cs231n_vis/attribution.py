"""What every attribution technique shares, written once.

- ``check_images(images)``: a batch (N, 3, H, W) of float images in [0, 1], or
  an error that says what was received and what to do.
- ``resolve_target(model, images, target)``: the class to explain for each image
  (None = the predicted class).
- ``input_gradient(model, images, target)``: d(score of the target class)/d(images).
- ``batched(fn, images, target)``: run a technique chunk by chunk, with a
  progress bar that can be switched off; ``batch_size="auto"`` finds the
  fastest chunk size on the job itself.

The rectifier override of guided backprop and the DeconvNet lives with the
other hooks: ``hooks.override_rectifiers``.
"""

from __future__ import annotations

import time
from typing import Callable, Hashable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from .hooks import frozen

Target = int | Sequence[int] | torch.Tensor | None

# On the course's 2-core CPUs the cost per image *rises* with the batch size
# (lite0 forward: 17 ms/image at batch 1, 22 at 8, 43 at 64), so batches stay small.
DEFAULT_BATCH_SIZE = 8

# batch_size="auto". No constant is fastest everywhere: integrated gradients on lite0 (224 x 224,
# 2 threads) ran fastest at 16 path points per pass on one session's 2-core CPU and at 8 on
# another's, where 16 took 1.4x as long (Captum's internal_batch_size alike; 64 was ~3x slower).
# So "auto" measures on the job itself: an untimed warm-up chunk, then chunks of 8, 16, 32, ...
# items, each timed, until a size costs more per item than the one before; the cheapest size is
# remembered for the workload (``AUTO_CHOICES[key]``) for the rest of the session. The tried
# chunks are real work; the search costs at most one chunk at a slower size.
AUTO_SIZES = (8, 16, 32, 64, 128)
AUTO_CHOICES: dict[Hashable, int] = {}       # workload key -> the size found fastest per item
_AUTO_TRIALS: dict[Hashable, dict[int, float]] = {}  # workload key -> {size: seconds per item}


def auto_batch_size(key: Hashable) -> int:
    """The chunk size ``batch_size="auto"`` runs next for the workload ``key``:
    the chosen size once the search is over, else the next size to try."""
    if key in AUTO_CHOICES:
        return AUTO_CHOICES[key]
    trials = _AUTO_TRIALS.get(key, {})
    return AUTO_SIZES[len(trials)]


def record_batch_time(key: Hashable, size: int, n: int, seconds: float) -> None:
    """Record that a chunk of ``n`` items run at ``size`` took ``seconds``.

    The first chunk of a workload is its warm-up and is not counted, nor is a
    chunk shorter than its size (the last one). The search ends, choosing the
    size with the least seconds per item, when a size costs more per item than
    the size before it, or when every size of ``AUTO_SIZES`` has been tried.
    """
    if key in AUTO_CHOICES or n < size:
        return
    if key not in _AUTO_TRIALS:  # the warm-up chunk: one-time costs, not counted
        _AUTO_TRIALS[key] = {}
        return
    trials = _AUTO_TRIALS[key]
    trials[size] = seconds / n
    costs = list(trials.values())
    if len(costs) == len(AUTO_SIZES) or (len(costs) > 1 and costs[-1] >= costs[-2]):
        AUTO_CHOICES[key] = min(trials, key=trials.get)
        del _AUTO_TRIALS[key]


def check_images(images: torch.Tensor, name: str = "images", *, model: nn.Module | None = None) -> torch.Tensor:
    """Check that ``images`` is a batch of RGB images, (N, 3, H, W) float in [0, 1].

    Returns the images ready for ``model``: any float dtype is accepted and, when
    ``model`` is given, converted to the model's dtype (float32 for the course's
    models), so a student's float64 batch (``torch.from_numpy(photo / 255)``) works
    and the technique's result comes back in the model's dtype. Any memory layout
    (channels-last, non-contiguous views) and ``requires_grad`` inputs are accepted.

    Raises a TypeError (not a tensor, not float) or a ValueError (shape, values)
    that names the argument, says what was received and how to fix it; ``name``
    is the argument's name in the message. (An image smaller than the model can
    take is reported where the model runs: ``hooks.frozen``.)
    """
    fix = "cs231n_vis.images.to_tensor(image, size=224) makes one from (H, W, 3) images"
    if not isinstance(images, torch.Tensor):
        kind = type(images).__name__
        hint = (f"a NumPy array: torch.from_numpy(array), then (N, 3, H, W) in [0, 1]; or {fix}"
                if hasattr(images, "__array__") else fix)
        raise TypeError(f"{name} must be a torch.Tensor (N, 3, H, W) of floats in [0, 1]; "
                        f"got {kind}. {hint[0].upper() + hint[1:]}.")
    got = f"got shape {tuple(images.shape)}, dtype {images.dtype}"
    if not images.dtype.is_floating_point:
        hint = "divide by 255: images.float() / 255" if images.dtype == torch.uint8 else "use images.float()"
        raise TypeError(f"{name} must be float in [0, 1]; {got}: {hint}.")
    if images.dim() != 4:
        hint = ("one image: add a batch dimension with x[None]" if images.dim() == 3
                else f"expected 4 dimensions (N, 3, H, W); {fix}")
        raise ValueError(f"{name} must be a batch (N, 3, H, W); {got}: {hint}.")
    if images.shape[1] != 3:
        if images.shape[-1] == 3:
            hint = "channels last (N, H, W, 3): use images.permute(0, 3, 1, 2)"
        elif images.shape[1] == 1:
            hint = "one channel (grayscale): repeat it with images.expand(-1, 3, -1, -1)"
        else:
            hint = "the models take RGB images"
        raise ValueError(f"{name} must have 3 channels (N, 3, H, W); {got}: {hint}.")
    if len(images) == 0:
        raise ValueError(f"{name} is an empty batch; {got}.")
    if images.shape[2] == 0 or images.shape[3] == 0:
        raise ValueError(f"{name} has no pixels; {got}.")
    values = images.detach()
    if not torch.isfinite(values).all():
        raise ValueError(f"{name} contains NaN or infinite values; {got}.")
    low, high = values.min().item(), values.max().item()
    if low < 0 or high > 1:
        raise ValueError(
            f"{name} must have values in [0, 1] (the models normalize inside); {got}, values in "
            f"[{low:.4g}, {high:.4g}]. Pixels in 0..255: divide by 255. Normalized with a mean "
            f"and std: undo it (x * std + mean). {fix}.")
    if model is not None:
        dtype = model_dtype(model)
        if images.dtype != dtype:
            images = images.to(dtype)
    return images


def model_dtype(model: nn.Module) -> torch.dtype:
    """The floating dtype the model computes in: its first floating parameter's (float32 if none)."""
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.dtype.is_floating_point:
            return tensor.dtype
    return torch.float32


def resolve_target(model: nn.Module, images: torch.Tensor, target: Target, *,
                   logits: torch.Tensor | None = None) -> torch.Tensor:
    """The class index to explain for each image: a long tensor (N,) on the images' device.

    Args:
        model: a classifier returning logits (N, K).
        images: (N, 3, H, W).
        target: ``None`` → the predicted class of each image (one forward pass in
            eval mode under ``torch.no_grad``; ties go to the lowest index, as
            ``torch.argmax`` does); an int → that class for every image; a
            sequence or tensor of N ints → one class per image.
        logits: the model's outputs (N, K) for ``images`` when the caller has
            them already; then the model is not run again. (A technique that
            runs its forward pass with gradients inside ``record(...,
            gradients=True)`` must pass them: a second, no_grad pass there raises.)

    Raises a TypeError for a target that is not integer, and a ValueError for a
    wrong length or a class outside 0..K-1 (negative indices are not accepted).
    K is ``logits.shape[1]``, else ``len(model.class_names)`` when the model has
    them, else found by one forward pass on the first image.
    """
    n, device = len(images), images.device
    if target is None:
        if logits is None:
            with frozen(model), torch.no_grad():
                logits = model(images)
        return logits.detach().argmax(dim=1).to(device)
    if isinstance(target, bool) or (isinstance(target, torch.Tensor) and target.dtype == torch.bool):
        raise TypeError(f"target must be a class index (int), not a bool; got {target!r}.")
    try:
        target = torch.as_tensor(target)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"target must be None, an int or N ints; got {type(target).__name__}.") from exc
    if target.dtype.is_floating_point or target.dtype.is_complex or target.dtype == torch.bool:
        raise TypeError(f"target must hold class indices (integers); got dtype {target.dtype}.")
    if target.dim() == 0:
        target = target.expand(n)
    if target.dim() != 1 or len(target) != n:
        raise ValueError(f"target must be an int or hold one class per image: {n} for images of "
                         f"shape {tuple(images.shape)}; got shape {tuple(target.shape)}.")
    num_classes = logits.shape[1] if logits is not None else _num_classes(model, images)
    wrong = target[(target < 0) | (target >= num_classes)]
    if len(wrong):
        raise ValueError(f"target holds class indices outside 0..{num_classes - 1} (the model has "
                         f"{num_classes} classes): {wrong.tolist()[:5]}.")
    return target.to(device=device, dtype=torch.long)


def _num_classes(model: nn.Module, images: torch.Tensor) -> int:
    if hasattr(model, "class_names"):
        return len(model.class_names)
    with frozen(model), torch.no_grad():
        return model(images[:1]).shape[1]


def input_gradient(model: nn.Module, images: torch.Tensor, target: Target = None, *,
                   check: bool = True) -> torch.Tensor:
    """d(score of the target class)/d(images): a tensor (N, 3, H, W) on the images' device.

    Args:
        model: a classifier returning logits (N, K); run in eval mode with its
            parameters frozen (``hooks.frozen``), so only the input gradient is
            computed, and left exactly as it was.
        images: (N, 3, H, W) float in [0, 1]; may require grad or not (they are
            detached: the result is a new tensor, no ``.grad`` is left anywhere).
        target: None (predicted class), an int, or N ints; see ``resolve_target``.
        check: ``check_images(images)`` first (the default). ``False`` skips it, for
            inputs that leave [0, 1] on purpose (SmoothGrad's noisy copies); the
            caller has checked the clean images.

    The scores (logits, before softmax) of the selected classes are summed;
    as the images do not interact in eval mode, each image's gradient is the
    gradient of its own score. This is the saliency map of Simonyan et al.
    (arXiv:1312.6034) before taking absolute values.
    """
    if check:
        check_images(images)
    # Channels-last: oneDNN convolves it without reordering. Forward+backward of lite0 at batch 8
    # on a 2-core CPU took 0.77x the time of the default layout (squeezenet 0.85x, alexnet 0.97x,
    # the shapes CNN 0.78x). The result differs from the default layout's by float rounding: on
    # lite0 up to a few 1e-3 of the map's maximum, as each layout misses a float64 computation by
    # up to 3e-3 (a rectifier's input or a max-pool's tie within rounding of its switch).
    x = images.detach().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    with frozen(model), torch.enable_grad():
        logits = model(x)  # one forward pass: the predicted class comes from the same logits
        target = resolve_target(model, images, target, logits=logits)
        score = logits.gather(1, target[:, None]).sum()
        (grad,) = torch.autograd.grad(score, x)
    return grad.contiguous()


def batched(fn: Callable[[torch.Tensor, Target], torch.Tensor], images: torch.Tensor, target: Target,
            *, batch_size: int | str = DEFAULT_BATCH_SIZE, progress: bool = True,
            desc: str | None = None, key: Hashable = None) -> torch.Tensor:
    """``fn(chunk, chunk_target)`` for chunks of ``batch_size`` images, concatenated.

    Args:
        fn: a technique on a batch: (n, 3, H, W) and its target → (n, ...).
        images: (N, 3, H, W).
        target: None or an int (passed to every chunk as it is), or N class
            indices (sliced along with the images).
        batch_size: images per call. The default (8) suits a small CPU, where
            the cost per image rises with the batch size; a GPU wants more.
            ``"auto"``: the fastest size, measured on the chunks themselves and
            remembered under ``key`` (see ``record_batch_time``).
        progress: show a ``tqdm.auto`` progress bar (in images); False hides it.
        desc: the progress bar's label.
        key: for ``batch_size="auto"``, what decides the cost per item (the model,
            item shape, device, threads); chunks of the same key share one search.

    Returns the chunks' results concatenated along dimension 0: (N, ...).
    """
    auto = batch_size == "auto"
    if auto and key is None:
        raise ValueError('batch_size="auto" needs a key naming the workload (model, input shape, device).')
    if not auto and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f'batch_size must be a positive int or "auto"; got {batch_size!r}.')
    n = len(images)
    if target is not None and not isinstance(target, int):
        target = torch.as_tensor(target)
        if target.dim() == 1 and len(target) != n:
            raise ValueError(f"target must hold one class per image: {n}; got {len(target)}.")
    results, start = [], 0
    with tqdm(total=n, desc=desc, unit="image", disable=not progress) as bar:
        while start < n:
            size = auto_batch_size(key) if auto else batch_size
            chunk = images[start:start + size]
            chunk_target = target[start:start + size] if _per_image(target) else target
            began = time.perf_counter()
            results.append(fn(chunk, chunk_target))
            if auto:
                if chunk.is_cuda:
                    torch.cuda.synchronize(chunk.device)
                record_batch_time(key, size, len(chunk), time.perf_counter() - began)
            bar.update(len(chunk))
            start += len(chunk)
    return torch.cat(results)


def _per_image(target: Target) -> bool:
    return isinstance(target, torch.Tensor) and target.dim() == 1

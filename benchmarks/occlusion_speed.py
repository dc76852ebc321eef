"""Occlusion sensitivity: our implementation against Captum and against the limit.

    python benchmarks/occlusion_speed.py [--model NAME] [--window 56] [--stride 28] [--repeats 3]

One image at the model's input size. Prints, in one run:

- our time / Captum's ``Occlusion`` at the same window, stride, baseline and
  target, with Captum's default ``perturbations_per_eval=1`` and with its best
  value among those tried;
- our time / the limit: one forward pass per occluded copy (and one for the
  clean image) at the fastest batch size measured for plain forward passes.

Times are medians over ``--repeats`` interleaved rounds after a warm-up, measured here, now;
only the ratios mean anything on another machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from cs231n_vis import occlusion
from cs231n_vis.models import default_model_name, load_model

BATCH_SIZES = (1, 2, 4, 8, 16, 32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=default_model_name())
    parser.add_argument("--window", type=int, default=56)
    parser.add_argument("--stride", type=int, default=28)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    model = load_model(args.model)
    size = model.input_size
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    rows, cols = occlusion.window_grid((size, size), args.window, args.stride)
    copies = len(rows) * len(cols)
    with torch.no_grad():
        target = int(model(x).argmax())
    print(f"{args.model}, one {size}x{size} image, window {args.window}, stride {args.stride}: "
          f"{copies} occluded copies; torch {torch.__version__}, {torch.get_num_threads()} threads")

    # Every candidate is timed in interleaved rounds (one run of each per round), so a change
    # in the machine's load during the run hits all of them alike; medians over the rounds.
    candidates = {}
    for bs in BATCH_SIZES:
        batch = x.expand(bs, -1, -1, -1).contiguous()
        candidates["forward", bs] = (lambda b=batch: model(b))
    for bs in (1, 8, 32):
        candidates["ours", bs] = (lambda b=bs: occlusion.occlusion(
            model, x, target, window=args.window, stride=args.stride, fill=0.5, score="logit",
            batch_size=b, progress=False))
    try:
        from captum.attr import Occlusion
    except ImportError:
        print("captum is not installed: no comparison with Captum")
    else:
        explainer = Occlusion(model)
        for ppe in (1, 8, copies):
            candidates["captum", ppe] = (lambda p=ppe: explainer.attribute(
                x, sliding_window_shapes=(3, args.window, args.window),
                strides=(3, args.stride, args.stride), baselines=0.5, target=target,
                perturbations_per_eval=p))
    times = {key: [] for key in candidates}
    with torch.no_grad():
        for fn in candidates.values():
            fn()  # warm-up
        for _ in range(args.repeats):
            for key, fn in candidates.items():
                start = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - start)
    median = {key: statistics.median(t) for key, t in times.items()}

    per_image = {bs: median["forward", bs] / bs for bs in BATCH_SIZES}
    best_bs = min(per_image, key=per_image.get)
    limit = (copies + 1) * per_image[best_bs]
    print("forward ms/image by batch size: " + ", ".join(f"{bs}: {1000 * t:.1f}" for bs, t in per_image.items()))
    ours = {bs: t for (kind, bs), t in median.items() if kind == "ours"}
    theirs = {ppe: t for (kind, ppe), t in median.items() if kind == "captum"}
    ours_best_bs = min(ours, key=ours.get)
    ours_time = ours[ours_best_bs]

    print(f"ours: {ours_time:.2f} s (batch_size {ours_best_bs}; "
          + ", ".join(f"{bs}: {t:.2f} s" for bs, t in ours.items()) + ")")
    print(f"limit: {limit:.2f} s ({copies + 1} forward passes at {1000 * per_image[best_bs]:.1f} ms/image, batch {best_bs})")
    print(f"ours / limit: {ours_time / limit:.2f}")
    if theirs:
        best_ppe = min(theirs, key=theirs.get)
        print("captum: " + ", ".join(f"perturbations_per_eval={p}: {t:.2f} s" for p, t in theirs.items()))
        print(f"ours / captum (default perturbations_per_eval=1): {ours_time / theirs[1]:.2f}")
        print(f"ours / captum (its best, perturbations_per_eval={best_ppe}): {ours_time / theirs[best_ppe]:.2f}")


if __name__ == "__main__":
    main()

"""Feed-forward stylization against Gatys et al.'s optimization, at the same size.

    python benchmarks/style_speed.py [--size 512] [--passes 100] [--repeats 3]

Prints, in one run on this machine:

- for each optimizer of the baseline (``fast_style.gatys_baseline``: Gatys et al.'s optimization
  from the content image, on the *same* loss network, lite0, and the *same* objective as
  ``fast_style.perceptual_loss``) — Adam at step 0.02 and 0.05, L-BFGS through a sigmoid:
  how many forward+backward passes it needs to reach the network's objective and the
  network's style loss, and where it is after ``--passes``;
- the time of one feed-forward pass of the shipped stylizer and of the fastest optimizer's
  run up to the network's objective, both timed alike (``median_seconds``: one warm-up call,
  then the median of ``--repeats``), and their ratio: the speed-up at equal objective;
- feed-forward throughput in images/s at batch 1 and batch 8.

Only the ratios mean anything on another machine.
"""

from __future__ import annotations

import argparse

import torch

from cs231n_vis import fast_style, style
from cs231n_vis.images import sample_image, to_tensor
from cs231n_vis.models import load_model
from _timing import median_seconds

OPTIMIZERS = {"Adam, lr 0.02": dict(optimizer="adam", lr=0.02), "Adam, lr 0.05": dict(optimizer="adam", lr=0.05),
              "L-BFGS, sigmoid": dict(optimizer="lbfgs")}


def first_below(values, level):
    """Passes needed: the first index k with values[k] <= level (values[k] scores the image after k steps)."""
    return next((k for k, v in enumerate(values) if v <= level), None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--passes", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    loss_net = load_model(fast_style.LOSS_NETWORK, device=device)
    stylizer = fast_style.load_stylizer(device=device)
    content = to_tensor(sample_image("chelsea"), size=args.size, device=device)
    style_image = style.style_image(fast_style.STYLE_NAME, fast_style.STYLE_SIZE, device=device)
    grams = fast_style.style_grams(loss_net, style_image)
    print(f"one {args.size}x{args.size} photo, loss network {fast_style.LOSS_NETWORK}, torch {torch.__version__}, "
          f"{device.type}, {torch.get_num_threads()} threads")

    ours = fast_style.evaluate(stylizer, loss_net, content, grams)
    print(f"the network, 1 forward pass: objective {ours['total'].item():.3f} "
          f"(content {ours['content'].item():.3f}, style {ours['style'].item():.3f})")
    reach = {}
    for name, options in OPTIMIZERS.items():
        run = fast_style.gatys_baseline(loss_net, content, style_image, steps=args.passes, progress=False, **options)
        reach[name] = first_below(run.losses, ours["total"].item())
        print(f"{name:16s} passes to the network's objective: {reach[name]}, to its style loss: "
              f"{first_below(run.terms['style'], ours['style'].item())}; after {args.passes} passes: objective "
              f"{run.losses[-1]:.3f} (content {run.terms['content'][-1]:.3f}, style {run.terms['style'][-1]:.3f})")

    feed_forward = median_seconds(lambda: fast_style.stylize(stylizer, content, progress=False), args.repeats)
    reached = {name: k for name, k in reach.items() if k is not None}
    if not reached:
        print(f"no optimizer reached the network's objective in {args.passes} passes "
              f"(feed-forward: {feed_forward:.3f} s)")
    else:
        best = min(reached, key=reached.get)
        optimization = median_seconds(lambda: fast_style.gatys_baseline(
            loss_net, content, style_image, steps=reached[best], progress=False, **OPTIMIZERS[best]), args.repeats)
        print(f"feed-forward: 1 forward pass {feed_forward:8.3f} s;  {best}, {reached[best]} passes to the same "
              f"objective: {optimization:8.3f} s ({optimization / max(reached[best], 1):.3f} s per pass)")
        print(f"speed-up at equal objective: {optimization / feed_forward:.1f}x")

    for batch in (1, 8):
        images = content.expand(batch, -1, -1, -1).contiguous()
        seconds = median_seconds(lambda: fast_style.stylize(stylizer, images, batch_size=batch, progress=False),
                                 args.repeats)
        print(f"feed-forward throughput at batch {batch}: {batch / seconds:.2f} images/s ({args.size}x{args.size})")


if __name__ == "__main__":
    main()

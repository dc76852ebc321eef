"""Feed-forward stylization against Gatys et al.'s optimization, at the same size.

    python benchmarks/style_speed.py [--size 512] [--passes 100] [--repeats 3]

Prints, in one run on this machine:

- the time to stylize one size × size photo with the feed-forward TransformerNet (one
  forward pass, the shipped weights) and with Gatys et al.'s optimization
  (``style.style_transfer``: Adam from the content image, ``--passes`` forward+backward
  passes of the *same* loss network, lite0, on the *same* objective: layers, weights and
  per-layer normalization of ``fast_style.perceptual_loss``), and the speed-up;
- the objective each reaches (so the speed-up is read at a known quality: whether the
  optimization has caught up with the network after that many passes);
- feed-forward throughput in images/s at batch 1 and batch 8.

Times are medians over ``--repeats`` rounds after a warm-up (the optimization, being long,
runs once after a short warm-up); only the ratios mean anything on another machine.
"""

from __future__ import annotations

import argparse
import time

import torch

from cs231n_vis import fast_style, style
from cs231n_vis.images import sample_image, to_tensor
from cs231n_vis.models import load_model
from _timing import median_seconds


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

    feed_forward = median_seconds(lambda: fast_style.stylize(stylizer, content, progress=False), args.repeats)
    ours = fast_style.evaluate(stylizer, loss_net, content, grams)["total"].item()

    # Gatys et al.: the same objective, optimized over the pixels. style_transfer's style term is
    # sum_l w_l ||G_l(x) - G_l(s)||^2 and its TV term a plain sum, so these settings make it equal
    # to perceptual_loss (w_l = 1 / ||G_l(s)||^2, TV divided by the number of pixels).
    layer_weights = {name: 1.0 / float((g ** 2).sum()) for name, g in grams.items()}
    gatys = dict(content_layer=fast_style.CONTENT_LAYER, style_layers=layer_weights,
                 content_weight=fast_style.CONTENT_WEIGHT, style_weight=fast_style.STYLE_WEIGHT,
                 tv_weight=fast_style.TV_WEIGHT / args.size ** 2, init="content", optimizer="adam",
                 progress=False)
    style.style_transfer(loss_net, content, style_image, steps=3, **gatys)  # warm-up
    start = time.perf_counter()
    result = style.style_transfer(loss_net, content, style_image, steps=args.passes, **gatys)
    optimization = time.perf_counter() - start
    theirs = fast_style.perceptual_loss(loss_net, result.images, content, grams)["total"].item()
    caught_up = next((i + 1 for i, v in enumerate(result.losses) if v <= ours), None)

    print(f"feed-forward: 1 forward pass of TransformerNet       {feed_forward:8.3f} s   objective {ours:.3f}")
    print(f"Gatys (Adam): {args.passes} forward+backward passes of lite0 {optimization:8.3f} s   objective {theirs:.3f}"
          f"   ({optimization / args.passes:.3f} s per pass)")
    print(f"speed-up: {optimization / feed_forward:.0f}x  "
          + (f"(the optimization reached the network's objective after {caught_up} passes: "
             f"{caught_up * optimization / args.passes / feed_forward:.0f}x at equal objective)"
             if caught_up else f"(the optimization had not reached the network's objective after {args.passes} passes)"))

    for batch in (1, 8):
        images = content.expand(batch, -1, -1, -1).contiguous()
        seconds = median_seconds(lambda: fast_style.stylize(stylizer, images, batch_size=batch, progress=False),
                        args.repeats)
        print(f"feed-forward throughput at batch {batch}: {batch / seconds:.2f} images/s ({args.size}x{args.size})")


if __name__ == "__main__":
    main()

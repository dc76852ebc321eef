"""Speed of the course's ImageNet model on this machine, at 224×224.

    python benchmarks/model_speed.py [--model NAME] [--batch 1] [--repeats 10]

Prints the median time of a forward pass, of forward + backward to the input
with frozen parameters (what every gradient technique does), and of the same
with trainable parameters, with the ratios between them measured in this run.
"""

from __future__ import annotations

import argparse

import torch

from cs231n_vis.models import default_model_name, load_model
from _timing import median_seconds


def median_ms(fn, repeats: int) -> float:
    return 1000 * median_seconds(fn, repeats)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=default_model_name())
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    model = load_model(args.model)
    x = torch.rand(args.batch, 3, 224, 224)

    def forward():
        with torch.no_grad():
            model(x)

    def input_gradient():
        image = x.clone().requires_grad_(True)
        model(image).max(dim=1).values.sum().backward()

    forward_ms = median_ms(forward, args.repeats)
    frozen_ms = median_ms(input_gradient, args.repeats)
    model.requires_grad_(True)
    trainable_ms = median_ms(input_gradient, args.repeats)
    model.requires_grad_(False)

    print(f"{args.model}, batch {args.batch}, 224x224, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"  forward                                   {forward_ms:8.1f} ms")
    print(f"  forward+backward to input, frozen params  {frozen_ms:8.1f} ms  ({frozen_ms / forward_ms:.1f}x forward)")
    print(f"  forward+backward, trainable params        {trainable_ms:8.1f} ms  ({trainable_ms / frozen_ms:.1f}x frozen)")


if __name__ == "__main__":
    main()

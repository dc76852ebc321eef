"""Speed of the streaming top-k patch scan against a bare forward pass, on the same batches.

    python benchmarks/patch_scan.py [--repeats 5]

For the shapes CNN (2,000 shapes images, layer relu4, units + 64 random directions,
batch 64) and the ImageNet model (32 random 224×224 images, net.blocks.5.depthwise.bn,
units + 240 random directions, batch 8), prints the best-of-repeats throughput
(images/s) of ``patches.top_patches`` and of the bare forward pass over the same
batches (frozen model, ``torch.no_grad``), and their ratio (target >= 0.8). The scan
runs the whole model too: it records the layer with a hook, projects onto the
directions and merges the batch into the running top-k.
"""

from __future__ import annotations

import argparse
import time

import torch

from cs231n_vis import models, patches, shapes
from cs231n_vis.hooks import frozen


def best_seconds(fns, repeats: int) -> list[float]:
    """The fastest of ``repeats`` runs of each function; the runs alternate between the
    functions, so a busy machine slows them alike."""
    for fn in fns:
        fn()  # warm-up
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, spent in zip(fns, times):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return [min(spent) for spent in times]


def compare(name: str, model, images: torch.Tensor, layer: str, channels: int, batch_size: int, repeats: int) -> float:
    directions = torch.cat([torch.eye(channels), patches.random_directions(channels, channels, seed=0)])

    def forward():
        with frozen(model), torch.no_grad():
            for batch in images.split(batch_size):
                model(batch)

    def scan():
        patches.top_patches(model, images, layer, k=9, directions=directions, batch_size=batch_size, progress=False)

    bare, scanned = best_seconds([forward, scan], repeats)
    ratio = bare / scanned
    print(f"{name:18s} {len(images):5d} images, batch {batch_size:3d}: bare forward {len(images) / bare:8.1f} img/s, "
          f"scan {len(images) / scanned:8.1f} img/s, scan / forward throughput {ratio:.2f}")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    cnn = shapes.load_shapes_cnn()
    data = shapes.make_shapes(2000, seed=shapes.TEST_SEED, distractors=2)
    compare("shapes_cnn relu4", cnn, data.images, "relu4", 64, 64, args.repeats)
    lite = models.load_model("efficientnet_lite0")
    photos = torch.rand(32, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    compare("lite0 blocks.5", lite, photos, "net.blocks.5.depthwise.bn", 240, 8, args.repeats)


if __name__ == "__main__":
    main()

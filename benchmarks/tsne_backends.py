"""t-SNE backends on notebook 04's data: scikit-learn's TSNE vs openTSNE, in one run.

    python benchmarks/tsne_backends.py [--n 2000] [--seed 0]

Embeds the CNN codes (64-d, the shapes CNN's pooled relu4) and the raw pixels
(12,288-d, PCA to 50 first, as ``embedding.tsne`` does) of ``n`` shapes images
with both backends at the same settings (perplexity 30, PCA initialization,
one thread each) and prints the wall time, its ratio to scikit-learn's, and the
trustworthiness (k = 5) of each embedding, so speed is compared at equal quality.
"""

from __future__ import annotations

import argparse
import time

import torch

from cs231n_vis import embedding, shapes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = shapes.make_shapes(args.n, seed=shapes.TEST_SEED)
    features = {"codes": embedding.codes(shapes.load_shapes_cnn(), data.images, batch_size=64),
                "pixels": data.images.flatten(1)}
    print(f"{args.n} shapes images, t-SNE perplexity 30, PCA init, 1 job, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")
    for name, x in features.items():
        seconds = {}
        for backend in ("sklearn", "opentsne"):
            start = time.perf_counter()
            points = embedding.tsne(x, seed=args.seed, backend=backend)
            seconds[backend] = time.perf_counter() - start
            trust = embedding.trustworthiness(x, points, k=5)
            print(f"  {name:6s} {backend:8s} {seconds[backend]:6.1f} s  "
                  f"({seconds[backend] / seconds['sklearn']:.2f}x sklearn)  trustworthiness {trust:.3f}")


if __name__ == "__main__":
    main()

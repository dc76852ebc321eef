"""Gradient attributions: our cost against a bare forward+backward, Captum and pytorch-grad-cam.

    python benchmarks/attribution_speed.py [--model NAME] [--batch 8] [--repeats 5] [--ig-steps 16]

One batch of ``--batch`` random images at the model's input size, one target per
image, the same for every method. Prints, in one run:

- Grad-CAM at ``model.cam_layer``: ours / a bare forward + backward to the input
  (target: <= 0.5, as the backward pass stops at the layer), ours / Captum's
  ``LayerGradCam`` (<= 1.05) and ours / pytorch-grad-cam's ``GradCAM`` (its best of
  two set-ups: trainable parameters, as its README uses it, or frozen parameters
  and an input that requires grad);
- the gradient (saliency): ours / bare forward+backward (<= 1.05), ours / Captum's
  ``Saliency`` (abs=False, the same signed gradient);
- guided backprop: ours / bare forward+backward (<= 1.05). (Captum's
  ``GuidedBackprop`` only rewrites ``nn.ReLU``: on lite0, whose rectifiers are ReLU6,
  it returns the plain gradient, so it is no reference here.)
- integrated gradients at equal ``n_steps``: ours / Captum's ``IntegratedGradients``
  with ``internal_batch_size`` 8, 16 and 64, and against its best (<= 1.0).

Times are medians over ``--repeats`` interleaved rounds (one run of each candidate
per round, so a change in the machine's load hits all alike) after a warm-up;
only the ratios mean anything on another machine.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from cs231n_vis import cam, saliency
from cs231n_vis.hooks import get_layer
from cs231n_vis.models import default_model_name, load_model


def timed(candidates: dict, repeats: int) -> dict:
    """Median seconds of each candidate over ``repeats`` interleaved rounds, after a warm-up."""
    times = {key: [] for key in candidates}
    for fn in candidates.values():
        fn()
    for _ in range(repeats):
        for key, fn in candidates.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return {key: statistics.median(t) for key, t in times.items()}


def verdict(ratio: float, target: float) -> str:
    return f"{ratio:.2f}  (target <= {target:.2f}: {'met' if ratio <= target else 'MISSED'})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=default_model_name())
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ig-steps", type=int, default=16)
    parser.add_argument("--ig-repeats", type=int, default=3)
    args = parser.parse_args()

    model = load_model(args.model)  # eval mode, parameters frozen
    size, layer = model.input_size, model.cam_layer
    x = torch.rand(args.batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        target = model(x).argmax(1)
    print(f"{args.model}, batch {args.batch} at {size}x{size}, Grad-CAM layer {layer}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    def bare():  # the reference: one forward pass and a backward pass to the input
        z = x.clone().requires_grad_(True)
        torch.autograd.grad(model(z).gather(1, target[:, None]).sum(), z)

    b = args.batch
    candidates = {
        "bare": bare,
        "grad_cam": lambda: cam.grad_cam(model, x, target, layer=layer, batch_size=b),
        "gradient": lambda: saliency.gradient(model, x, target, batch_size=b),
        "guided": lambda: saliency.guided_backprop(model, x, target, batch_size=b),
    }
    try:
        from captum.attr import LayerGradCam, Saliency
    except ImportError:
        print("captum is not installed: no comparison with Captum")
    else:
        lgc, sal = LayerGradCam(model, get_layer(model, layer)), Saliency(model)
        candidates["captum_grad_cam"] = lambda: lgc.attribute(x, target=target, relu_attributions=True)
        candidates["captum_saliency"] = lambda: sal.attribute(x, target=target, abs=False)
    try:
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError:
        print("pytorch-grad-cam (pip install grad-cam) is not installed: no comparison with it")
    else:
        targets = [ClassifierOutputTarget(int(t)) for t in target]
        trainable = copy.deepcopy(model).requires_grad_(True)
        pgc_trainable = GradCAM(model=trainable, target_layers=[get_layer(trainable, layer)])
        pgc_frozen = GradCAM(model=model, target_layers=[get_layer(model, layer)])
        candidates["pgc_trainable"] = lambda: (pgc_trainable(input_tensor=x, targets=targets),
                                               trainable.zero_grad(set_to_none=True))
        candidates["pgc_frozen"] = lambda: pgc_frozen(input_tensor=x.clone().requires_grad_(True),
                                                      targets=targets)
    t = timed(candidates, args.repeats)
    if "pgc_frozen" in t:
        pgc_frozen.activations_and_grads.release()
        pgc_trainable.activations_and_grads.release()

    print("median times: " + ", ".join(f"{k} {1000 * v:.0f} ms" for k, v in t.items()))
    print(f"Grad-CAM        ours / bare forward+backward: {verdict(t['grad_cam'] / t['bare'], 0.5)}")
    if "captum_grad_cam" in t:
        print(f"Grad-CAM        ours / Captum LayerGradCam:   {verdict(t['grad_cam'] / t['captum_grad_cam'], 1.05)}")
    if "pgc_frozen" in t:
        best = min(t["pgc_trainable"], t["pgc_frozen"])
        print(f"Grad-CAM        ours / pytorch-grad-cam:      {t['grad_cam'] / best:.2f}  (its best set-up; "
              f"trainable parameters {t['pgc_trainable'] / t['bare']:.2f}x bare, frozen + input grad "
              f"{t['pgc_frozen'] / t['bare']:.2f}x bare)")
    print(f"gradient        ours / bare forward+backward: {verdict(t['gradient'] / t['bare'], 1.05)}")
    if "captum_saliency" in t:
        print(f"gradient        ours / Captum Saliency:       {t['gradient'] / t['captum_saliency']:.2f}")
    print(f"guided backprop ours / bare forward+backward: {verdict(t['guided'] / t['bare'], 1.05)}")

    steps = args.ig_steps
    ig = {"ours": lambda: saliency.integrated_gradients(model, x, target, steps=steps)}
    try:
        from captum.attr import IntegratedGradients
    except ImportError:
        pass
    else:
        explainer = IntegratedGradients(model)
        for ibs in (8, 16, 64):
            ig[f"captum_{ibs}"] = (lambda n=ibs: explainer.attribute(
                x, baselines=torch.zeros_like(x), target=target, n_steps=steps,
                method="riemann_middle", internal_batch_size=n))
    t_ig = timed(ig, args.ig_repeats)
    print(f"integrated gradients, {steps} steps: " + ", ".join(f"{k} {v:.2f} s" for k, v in t_ig.items()))
    captum = {k: v for k, v in t_ig.items() if k.startswith("captum")}
    if captum:
        best = min(captum, key=captum.get)
        print(f"IG              ours / Captum's best ({best}): {verdict(t_ig['ours'] / captum[best], 1.0)}")
        print("IG              ours / Captum by internal_batch_size: "
              + ", ".join(f"{k.split('_')[1]}: {t_ig['ours'] / v:.2f}" for k, v in captum.items()))


if __name__ == "__main__":
    main()

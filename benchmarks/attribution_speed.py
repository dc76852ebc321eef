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
  ``Saliency`` (abs=False, the same signed gradient); since our gradients run
  channels-last, also ours / a bare forward+backward in that layout (the overhead);
- guided backprop: ours / bare forward+backward (<= 1.05). (Captum's
  ``GuidedBackprop`` only rewrites ``nn.ReLU``: on lite0, whose rectifiers are ReLU6,
  it returns the plain gradient, so it is no reference here.)
- integrated gradients at equal ``n_steps``: ours (``batch_size="auto"``: its size is
  found during the warm-up call and printed) / Captum's ``IntegratedGradients`` with
  ``internal_batch_size`` 8, 16 and 64, and against its best (<= 1.0); and, since our
  gradients run channels-last, against Captum handed a channels-last input.

Times are medians over ``--repeats`` interleaved rounds (one run of each candidate
per round, so a change in the machine's load hits all alike) after a warm-up; the
ratios of the fastest rounds are printed too (on a shared, loaded machine the minimum
is the steadier estimate of a method's own cost). Only the ratios mean anything on
another machine. ``--only gradcam saliency ig`` runs a part.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from cs231n_vis import attribution, cam, saliency
from cs231n_vis.hooks import get_layer
from cs231n_vis.models import default_model_name, load_model


class Times(dict):
    """Median seconds per candidate; ``.fastest`` holds the minimum over the rounds."""

    fastest: dict


def timed(candidates: dict, repeats: int) -> Times:
    """Seconds of each candidate over ``repeats`` interleaved rounds, after a warm-up."""
    times = {key: [] for key in candidates}
    for fn in candidates.values():
        fn()
    for _ in range(repeats):
        for key, fn in candidates.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    result = Times({key: statistics.median(t) for key, t in times.items()})
    result.fastest = {key: min(t) for key, t in times.items()}
    return result


def ratio(t: Times, a: str, b: str, target: float | None = None) -> str:
    """``a / b`` from the medians, and from the fastest rounds; with the verdict on the medians."""
    med, low = t[a] / t[b], t.fastest[a] / t.fastest[b]
    text = f"{med:.2f} (fastest rounds: {low:.2f})"
    if target is not None:
        text += f"  target <= {target:.2f}: {'met' if med <= target else 'MISSED'}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=default_model_name())
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ig-steps", type=int, default=16)
    parser.add_argument("--ig-repeats", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=["gradcam", "saliency", "ig"],
                        default=["gradcam", "saliency", "ig"])
    args = parser.parse_args()

    model = load_model(args.model)  # eval mode, parameters frozen
    size, layer = model.input_size, model.cam_layer
    x = torch.rand(args.batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        target = model(x).argmax(1)
    print(f"{args.model}, batch {args.batch} at {size}x{size}, Grad-CAM layer {layer}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    if "gradcam" in args.only or "saliency" in args.only:
        gradients(model, x, target, layer, args)
    if "ig" in args.only:
        integrated(model, x, target, args)


def gradients(model, x, target, layer, args) -> None:
    """Grad-CAM, the gradient and guided backprop against a bare forward+backward and the libraries."""
    b = args.batch

    def bare():  # the reference: one forward pass and a backward pass to the input
        z = x.clone().requires_grad_(True)
        torch.autograd.grad(model(z).gather(1, target[:, None]).sum(), z)

    def bare_channels_last():  # the same in the layout our gradients use: what is left is overhead
        z = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
        torch.autograd.grad(model(z).gather(1, target[:, None]).sum(), z)

    candidates, cleanup = {"bare": bare}, []
    if "gradcam" in args.only:
        candidates["grad_cam"] = lambda: cam.grad_cam(model, x, target, layer=layer, batch_size=b)
    if "saliency" in args.only:
        candidates["bare_channels_last"] = bare_channels_last
        candidates["gradient"] = lambda: saliency.gradient(model, x, target, batch_size=b)
        candidates["guided"] = lambda: saliency.guided_backprop(model, x, target, batch_size=b)
    try:
        from captum.attr import LayerGradCam, Saliency
    except ImportError:
        print("captum is not installed: no comparison with Captum")
    else:
        lgc, sal = LayerGradCam(model, get_layer(model, layer)), Saliency(model)
        if "gradcam" in args.only:
            candidates["captum_grad_cam"] = lambda: lgc.attribute(x, target=target, relu_attributions=True)
        if "saliency" in args.only:
            candidates["captum_saliency"] = lambda: sal.attribute(x, target=target, abs=False)
    try:
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError:
        print("pytorch-grad-cam (pip install grad-cam) is not installed: no comparison with it")
    else:
        if "gradcam" in args.only:
            targets = [ClassifierOutputTarget(int(t)) for t in target]
            trainable = copy.deepcopy(model).requires_grad_(True)  # as its README uses it
            pgc_trainable = GradCAM(model=trainable, target_layers=[get_layer(trainable, layer)])
            pgc_frozen = GradCAM(model=model, target_layers=[get_layer(model, layer)])
            candidates["pgc_trainable"] = lambda: (pgc_trainable(input_tensor=x, targets=targets),
                                                   trainable.zero_grad(set_to_none=True))
            candidates["pgc_frozen"] = lambda: pgc_frozen(input_tensor=x.clone().requires_grad_(True),
                                                          targets=targets)
            cleanup = [pgc_trainable, pgc_frozen]
    t = timed(candidates, args.repeats)
    for explainer in cleanup:
        explainer.activations_and_grads.release()

    print("median times: " + ", ".join(f"{k} {1000 * v:.0f} ms" for k, v in t.items()))
    if "grad_cam" in t:
        print(f"Grad-CAM        ours / bare forward+backward: {ratio(t, 'grad_cam', 'bare', 0.5)}")
    if "captum_grad_cam" in t:
        print(f"Grad-CAM        ours / Captum LayerGradCam:   {ratio(t, 'grad_cam', 'captum_grad_cam', 1.05)}")
    if "pgc_frozen" in t:
        best = min(("pgc_trainable", "pgc_frozen"), key=t.get)
        print(f"Grad-CAM        ours / pytorch-grad-cam:      {ratio(t, 'grad_cam', best)}  (its best set-up, "
              f"{best}; trainable parameters {t['pgc_trainable'] / t['bare']:.2f}x bare, frozen + input "
              f"grad {t['pgc_frozen'] / t['bare']:.2f}x bare)")
    if "gradient" in t:
        print(f"gradient        ours / bare forward+backward: {ratio(t, 'gradient', 'bare', 1.05)}")
        print(f"guided backprop ours / bare forward+backward: {ratio(t, 'guided', 'bare', 1.05)}")
        print(f"gradient        ours / bare, channels-last:   {ratio(t, 'gradient', 'bare_channels_last')}")
        print(f"guided backprop ours / bare, channels-last:   {ratio(t, 'guided', 'bare_channels_last')}"
              "  (the rule's own elementwise pass per rectifier)")
    if "captum_saliency" in t:
        print(f"gradient        ours / Captum Saliency:       {ratio(t, 'gradient', 'captum_saliency')}")


def integrated(model, x, target, args) -> None:
    """Integrated gradients: ours against Captum's at equal n_steps, for three internal batch sizes."""
    steps = args.ig_steps
    ig = {"ours": lambda: saliency.integrated_gradients(model, x, target, steps=steps)}
    try:
        from captum.attr import IntegratedGradients
    except ImportError:
        print("captum is not installed: no comparison with Captum")
        return
    explainer = IntegratedGradients(model)
    for ibs in (8, 16, 64):
        ig[f"captum_{ibs}"] = (lambda n=ibs: explainer.attribute(
            x, baselines=torch.zeros_like(x), target=target, n_steps=steps,
            method="riemann_middle", internal_batch_size=n))
    # Our gradients run channels-last; Captum's do too when handed a channels-last input.
    x_cl = x.contiguous(memory_format=torch.channels_last)
    for ibs in (8, 16):
        ig[f"captum_{ibs}_channels-last-input"] = (lambda n=ibs: explainer.attribute(
            x_cl, baselines=torch.zeros_like(x_cl), target=target, n_steps=steps,
            method="riemann_middle", internal_batch_size=n))
    t = timed(ig, args.ig_repeats)
    print(f"integrated gradients, {steps} steps: " + ", ".join(f"{k} {v:.2f} s" for k, v in t.items()))
    best = min((k for k in t if k.startswith("captum") and "channels" not in k), key=t.get)
    best_cl = min((k for k in t if "channels" in k), key=t.get)
    chosen = {k[-1]: v for k, v in attribution.AUTO_CHOICES.items() if k[0] == "integrated_gradients"}
    print(f"IG              ours: batch_size='auto' chose {chosen} points per pass (by thread count)")
    print(f"IG              ours / Captum's best ({best}): {ratio(t, 'ours', best, 1.0)}")
    print(f"IG              ours / Captum's best given a channels-last input ({best_cl}): {ratio(t, 'ours', best_cl)}")
    print("IG              ours / Captum by internal_batch_size: "
          + ", ".join(f"{k.removeprefix('captum_')}: {t['ours'] / t[k]:.2f}" for k in t if k != "ours"))


if __name__ == "__main__":
    main()

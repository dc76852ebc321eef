"""Every public function that takes images, against the inputs a student will pass.

Each function runs on the shipped shapes CNN (64 x 64 RGB, 10 classes) with
- every *bad* input: a clear error (a TypeError or ValueError, never torch's internal
  RuntimeError) whose message names the argument that was wrong, and
- every *valid but unusual* input: the same result as on a plain float32, contiguous
  batch, with the model in eval mode,
and, in every case, the model left exactly as it was (``helpers.model_unchanged``).
(``optimize.high_frequency_energy`` and ``optimize.total_variation`` are measures of any
tensor, perturbations and unclamped network outputs included, so they take no image check.)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import torch

from cs231n_vis import (activations, cam, embedding, evaluation, fast_style, occlusion, optimize,
                        patches, saliency, style, widgets)
from cs231n_vis.hooks import InputTooSmallError, minimum_input_size
from cs231n_vis.images import ImageLoadError, load_image
from cs231n_vis.shapes import load_shapes_cnn, make_shapes
from helpers import model_unchanged

N, SIZE, CLASSES = 2, 64, 10


@dataclass(frozen=True)
class Case:
    """A public function called with one image argument (``arg``) varied.

    ``call(model, images, target)``; ``target``: whether it takes a class target
    (``required``: it has no default); ``model``: which network it runs
    ("shapes", "stylizer", or None for functions that run no model).
    """

    name: str
    call: Callable
    arg: str = "images"
    target: bool = False
    required: bool = False
    model: str | None = "shapes"


def _maps(images):
    return torch.rand(len(images), *images.shape[-2:], generator=torch.Generator().manual_seed(1))


def _masks(images):
    masks = torch.zeros(len(images), *images.shape[-2:], dtype=torch.bool)
    masks[:, 16:48, 16:48] = True
    return masks


def _reference():
    return make_shapes(1, seed=7).images


def _others():
    """Valid images for a function's second image argument (the first one is varied)."""
    return make_shapes(N, seed=11).images


CASES = [
    # notebook 01
    Case("layer_activations", lambda m, x, t: activations.layer_activations(m, x, ["relu1", "relu4"])),
    Case("sparsity_report", lambda m, x, t: activations.sparsity_report(m, x, ["relu2"])),
    Case("activation_explorer", lambda m, x, t: widgets.activation_explorer(m, x, ["relu1"]).children[1].value),
    # notebook 03
    Case("unit_gradient", lambda m, x, t: patches.unit_gradient(m, x, "relu2", 4, 4)),
    Case("top_patches", lambda m, x, t: patches.top_patches(m, x, "relu2", k=2, progress=False)),
    # notebook 04
    Case("codes", lambda m, x, t: embedding.codes(m, x)),
    Case("layer_codes", lambda m, x, t: embedding.layer_codes(m, x, ["relu3", "relu4"])),
    # notebook 05
    Case("occlusion", lambda m, x, t: occlusion.occlusion(m, x, t, window=16, stride=16, progress=False), target=True),
    Case("occlusion_coarse_to_fine", lambda m, x, t: occlusion.occlusion_coarse_to_fine(m, x, t, window=16, stride=8,
                                                                                        coarse=2, progress=False),
         target=True),
    Case("fill_images", lambda m, x, t: occlusion.fill_images(x, "blur"), model=None),
    Case("random_occluders", lambda m, x, t: occlusion.random_occluders(x, _masks(x)), model=None),
    Case("class_probabilities", lambda m, x, t: evaluation.class_probabilities(m, x)),
    # notebook 06
    Case("gradient", lambda m, x, t: saliency.gradient(m, x, t, progress=False), target=True),
    Case("input_x_gradient", lambda m, x, t: saliency.input_x_gradient(m, x, t, progress=False), target=True),
    Case("guided_backprop", lambda m, x, t: saliency.guided_backprop(m, x, t, progress=False), target=True),
    Case("deconvnet", lambda m, x, t: saliency.deconvnet(m, x, t, progress=False), target=True),
    Case("smoothgrad", lambda m, x, t: saliency.smoothgrad(m, x, t, samples=3, progress=False), target=True),
    Case("integrated_gradients", lambda m, x, t: saliency.integrated_gradients(m, x, t, steps=4, batch_size=4,
                                                                               progress=False), target=True),
    Case("completeness_error", lambda m, x, t: saliency.completeness_error(m, x, torch.ones(x.shape), t),
         target=True),
    Case("cascading_randomization", lambda m, x, t: saliency.cascading_randomization(
        m, x, t, saliency.gradient, layers=["fc", "conv4"], progress=False), target=True),
    # notebook 07
    Case("cam", lambda m, x, t: cam.cam(m, x, t, progress=False), target=True),
    Case("grad_cam", lambda m, x, t: cam.grad_cam(m, x, t, progress=False), target=True),
    Case("guided_grad_cam", lambda m, x, t: cam.guided_grad_cam(m, x, t, progress=False), target=True),
    Case("deletion_curves", lambda m, x, t: evaluation.deletion_curves(m, x, _maps(x), t, steps=4, progress=False),
         target=True),
    Case("insertion_curves", lambda m, x, t: evaluation.insertion_curves(m, x, _maps(x), t, steps=4,
                                                                         progress=False), target=True),
    Case("localization_scores", lambda m, x, t: evaluation.localization_scores(m, x, _maps(x), _masks(x), t),
         target=True),
    # notebook 08
    Case("optimize_image", lambda m, x, t: optimize.optimize_image(lambda y: m(y)[:, 0], x, steps=2, lr=0.5,
                                                                   model=m, progress=False), arg="init"),
    Case("class_visualization", lambda m, x, t: optimize.class_visualization(m, t, init=x, steps=2, progress=False),
         arg="init", target=True, required=True),
    Case("fooling_image", lambda m, x, t: optimize.fooling_image(m, x, t, max_steps=2, progress=False),
         target=True, required=True),
    Case("fgsm", lambda m, x, t: optimize.fgsm(m, x, t, epsilon=0.01, progress=False), target=True),
    Case("deepdream", lambda m, x, t: optimize.deepdream(m, x, "relu2", octaves=2, steps=2, progress=False)),
    # notebook 09
    Case("features", lambda m, x, t: style.features(m, x, ["relu1", "relu3"])),
    Case("invert", lambda m, x, t: style.invert(m, x, "relu2", steps=2, progress=False)),
    Case("relative_feature_error", lambda m, x, t: style.relative_feature_error(m, x, _others(), "relu3"),
         arg="candidates"),
    Case("balanced_style_weights", lambda m, x, t: style.balanced_style_weights(m, x, ["relu1", "relu2"]),
         arg="style"),
    Case("style_transfer", lambda m, x, t: style.style_transfer(m, x, _reference(), content_layer="relu3",
                                                                style_layers=["relu1", "relu2"], steps=2,
                                                                progress=False), arg="content"),
    Case("gatys_losses", lambda m, x, t: style.gatys_losses(m, x, x, _reference(), content_layer="relu3",
                                                            style_layers=["relu1"])),
    Case("gram_distance", lambda m, x, t: style.gram_distance(m, x, _reference(), ["relu1", "relu2"])),
    Case("match_points", lambda m, x, t: style.match_points(m, x, torch.tensor([[[10.0, 12.0]]] * N),
                                                            _others(), "relu2"), arg="source"),
    Case("shuffle_patches", lambda m, x, t: style.shuffle_patches(x, 16), model=None),
    Case("layout_and_detail", lambda m, x, t: style.layout_and_detail(x, _others(), cell=16), arg="candidates",
         model=None),
    # notebook 10
    Case("stylize", lambda m, x, t: fast_style.stylize(m, x, progress=False), model="stylizer"),
    Case("style_grams", lambda m, x, t: fast_style.style_grams(m, x[:1], ["relu1", "relu2"]), arg="style_image"),
    Case("perceptual_loss", lambda m, x, t: fast_style.perceptual_loss(
        m, _others(), x, fast_style.style_grams(m, _reference(), ["relu1"]), content_layer="relu2"),
        arg="contents"),
    Case("gatys_baseline", lambda m, x, t: fast_style.gatys_baseline(
        m, x, _reference(), steps=2, content_layer="relu2", style_layers=["relu1"], progress=False),
        arg="contents"),
]

BAD_IMAGES = {
    "uint8": lambda x: (x * 255).to(torch.uint8),
    "0..255 floats": lambda x: x * 255,
    "one channel": lambda x: x[:, :1],
    "channels-last (N, H, W, 3)": lambda x: x.permute(0, 2, 3, 1).contiguous(),
    "one image (3, H, W)": lambda x: x[0],
    "NaN": lambda x: x.index_put((torch.tensor([0]),) * 4, torch.tensor(float("nan"))),
    "empty batch": lambda x: x[:0],
    "numpy array": lambda x: x.numpy(),
    "too small for the model": lambda x: x[:, :, :4, :4].contiguous(),
}
BAD_TARGETS = {
    "target out of range": CLASSES,
    "target negative": -1,
    "target not an integer": 1.5,
    "target of the wrong length": [0, 1, 2],
}


def _non_contiguous(x):
    wide = torch.zeros(*x.shape[:-1], 2 * x.shape[-1])
    wide[..., ::2] = x
    view = wide[..., ::2]
    assert not view.is_contiguous() and torch.equal(view, x)
    return view


VALID = {
    "float64": lambda x: x.double(),
    "channels_last memory format": lambda x: x.contiguous(memory_format=torch.channels_last),
    "non-contiguous": _non_contiguous,
    "requires_grad": lambda x: x.clone().requires_grad_(True),
    "model in train mode": lambda x: x,
}


@pytest.fixture(scope="module")
def images():
    return make_shapes(N, seed=3).images.float()


@pytest.fixture(scope="module")
def networks():
    return {"shapes": load_shapes_cnn(), "stylizer": fast_style.TransformerNet().eval(), None: load_shapes_cnn()}


def _target(case, images):
    return torch.tensor([1, 4])[:len(images)] if case.required else None


def _run(case, model, images, target="default"):
    return case.call(model, images, _target(case, images) if target == "default" else target)


def _tensors(result):
    """Every tensor and number in a result, in a fixed order (dicts by key, dataclasses by field)."""
    if isinstance(result, torch.Tensor):
        return [result.detach()]
    if isinstance(result, (int, float, np.floating)):
        return [torch.tensor(float(result))]
    if isinstance(result, (bytes, str)):
        return []
    if isinstance(result, dict):
        return [t for key in sorted(result, key=str) for t in _tensors(result[key])]
    if dataclasses.is_dataclass(result):
        return [t for f in dataclasses.fields(result) for t in _tensors(getattr(result, f.name))]
    if isinstance(result, (list, tuple)):
        return [t for item in result for t in _tensors(item)]
    return []


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("bad", list(BAD_IMAGES), ids=str)
def test_bad_images_get_a_clear_error_that_names_the_argument(case, bad, images, networks):
    model = networks[case.model]
    x = BAD_IMAGES[bad](images)
    if bad == "too small for the model" and case.model is None:
        # Nothing runs a model: a 4 x 4 image is a valid input, or too small for the
        # function's own knob (a patch, a cell), which its error then says.
        with model_unchanged(model):
            try:
                _run(case, model, x)
            except ValueError as error:
                assert case.arg in str(error), str(error)
        return
    with model_unchanged(model), pytest.raises((TypeError, ValueError)) as error:
        _run(case, model, x)
    message = str(error.value)
    if isinstance(error.value, InputTooSmallError):
        side = minimum_input_size(model)
        assert side is not None and f"at least {side} × {side} pixels" in message, message
    else:  # a check of the technique's own (a window, the octaves) may come first: it names the images too
        assert case.arg in message, f"the message does not name {case.arg!r}: {message}"


@pytest.mark.parametrize("case", [c for c in CASES if c.target], ids=lambda c: c.name)
@pytest.mark.parametrize("bad", list(BAD_TARGETS), ids=str)
def test_bad_targets_get_a_clear_error_that_names_the_target(case, bad, images, networks):
    model = networks[case.model]
    with model_unchanged(model), pytest.raises((TypeError, ValueError)) as error:
        _run(case, model, images, BAD_TARGETS[bad])
    assert "target" in str(error.value), str(error.value)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("valid", list(VALID), ids=str)
def test_valid_unusual_images_give_the_plain_result(case, valid, images, networks):
    model = networks[case.model]
    expected = _tensors(_run(case, model, images))
    x = VALID[valid](images)
    if valid == "model in train mode":
        model.train()
    try:
        with model_unchanged(model):
            got = _tensors(_run(case, model, x))
    finally:
        model.eval()
    assert len(got) == len(expected) > 0 or case.name == "activation_explorer"
    for g, e in zip(got, expected):
        if case.model is not None:  # without a model, a result keeps the input's dtype
            assert g.dtype != torch.float64, "the result is not in the model's dtype"
        # Another memory layout changes the order of float32 sums in the convolutions: rounding
        # only, far below the size of any map or score here.
        torch.testing.assert_close(g.to(e.dtype), e, rtol=1e-4, atol=1e-5)
    if valid == "requires_grad":
        assert x.grad is None


def test_minimum_input_size_is_found_by_running_the_model(networks):
    shapes = networks["shapes"]  # three 2 x 2 max-pools: 8 pixels become one cell
    assert minimum_input_size(shapes) == 8
    with torch.no_grad():
        shapes(torch.zeros(1, 3, 8, 8))
        with pytest.raises(RuntimeError):
            shapes(torch.zeros(1, 3, 7, 7))


def test_a_decompression_bomb_names_the_file(tmp_path, monkeypatch):
    from PIL import Image

    path = tmp_path / "huge.png"
    Image.new("RGB", (64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4096 pixels is more than twice the limit
    with pytest.raises(ImageLoadError, match="huge.png") as error:
        load_image(path)
    assert "MAX_IMAGE_PIXELS" in str(error.value)

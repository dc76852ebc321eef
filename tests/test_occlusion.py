"""occlusion, evaluation and the labelling quiz: hand-computable cases, Captum, model state."""

import math

import pytest
import torch
from torch import nn

from cs231n_vis import evaluation, occlusion, shapes
from helpers import model_unchanged


class MeanRed(nn.Module):
    """Two classes with logits (0, mean of the red channel): hand-computable drops."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))  # a parameter, so model_unchanged has something to watch

    def forward(self, x):
        red = x[:, 0].mean((1, 2)) + self.dummy
        return torch.stack([torch.zeros_like(red), red], dim=1)


def tiny_classifier(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 5)).train()


def test_occlusion_drop_is_hand_computable():
    # A white 8x8 image; the logit of class 1 is the mean red value. A 4x4 black window
    # (fill "zero") at any position lowers it from 1 to 1 - 16/64 = 0.75.
    net = MeanRed()
    x = torch.ones(1, 3, 8, 8)
    with model_unchanged(net):
        logit = occlusion.occlusion(net, x, 1, window=4, stride=2, fill="zero", score="logit", progress=False)
        prob = occlusion.occlusion(net, x, 1, window=4, stride=2, fill="zero", progress=False)
    assert logit.shape == (1, 3, 3)
    torch.testing.assert_close(logit, torch.full((1, 3, 3), 0.25))
    sigmoid = lambda z: 1 / (1 + math.exp(-z))
    torch.testing.assert_close(prob, torch.full((1, 3, 3), sigmoid(1.0) - sigmoid(0.75)))
    # Only the window's pixels change: occluding with the image's own colour changes nothing.
    same = occlusion.occlusion(net, x, 1, window=4, stride=2, fill=1.0, score="logit", progress=False)
    assert torch.equal(same, torch.zeros(1, 3, 3))


def test_occlusion_map_locates_the_evidence():
    # Red only in the top-left quadrant: only windows overlapping it lower the red logit.
    net = MeanRed()
    x = torch.zeros(1, 3, 8, 8)
    x[0, 0, :4, :4] = 1.0
    drop = occlusion.occlusion(net, x, 1, window=4, stride=4, fill="zero", score="logit", progress=False)
    torch.testing.assert_close(drop, torch.tensor([[[0.25, 0.0], [0.0, 0.0]]]))


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_occlusion_does_not_depend_on_batching_and_matches_a_plain_loop(batch_size):
    net = tiny_classifier()
    x = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    with model_unchanged(net):
        got = occlusion.occlusion(net, x, None, window=4, stride=4, fill="grey", batch_size=batch_size,
                                  progress=False)
    ref = net.eval()
    with torch.no_grad():
        p = ref(x).softmax(1)
        target = p.argmax(1)
        expected = torch.zeros(2, 3, 3)
        for i in range(3):
            for j in range(3):
                y = x.clone()
                y[:, :, 4 * i:4 * i + 4, 4 * j:4 * j + 4] = 0.5
                expected[:, i, j] = p[range(2), target] - ref(y).softmax(1)[range(2), target]
    net.train()
    torch.testing.assert_close(got, expected)


def test_fills():
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(occlusion.fill_images(x, "grey"), torch.full_like(x, 0.5))
    assert torch.equal(occlusion.fill_images(x, "zero"), torch.zeros_like(x))
    mean = occlusion.fill_images(x, "mean", mean=[0.1, 0.2, 0.3])
    assert torch.equal(mean[1, :, 5, 7], torch.tensor([0.1, 0.2, 0.3]))
    default_mean = occlusion.fill_images(x, "mean")
    torch.testing.assert_close(default_mean[0, :, 0, 0], torch.tensor(occlusion.IMAGENET_MEAN))
    blur = occlusion.fill_images(x, "blur", blur_sigma=2.0)
    assert blur.shape == x.shape and blur.std() < 0.5 * x.std()  # smoother than the noise
    flat = torch.full_like(x, 0.3)
    torch.testing.assert_close(occlusion.fill_images(flat, "blur"), flat)  # the blur keeps constants
    with pytest.raises(ValueError, match="fill"):
        occlusion.fill_images(x, "gray-ish")
    with pytest.raises(ValueError, match="mean"):
        occlusion.fill_images(x, "mean", mean=[0.1, 0.2])


def test_bad_arguments_are_refused_with_clear_messages():
    net = MeanRed()
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="window"):
        occlusion.occlusion(net, x, 1, window=9, progress=False)
    with pytest.raises(ValueError, match="stride"):
        occlusion.occlusion(net, x, 1, window=4, stride=0, progress=False)
    with pytest.raises(ValueError, match="score"):
        occlusion.occlusion(net, x, 1, window=4, score="prob", progress=False)
    with pytest.raises(ValueError, match="images"):
        occlusion.occlusion(net, x * 255, 1, window=4, progress=False)


def test_window_grid_and_to_pixels():
    assert occlusion.window_grid((8, 10), 4, 2) == ([0, 2, 4], [0, 2, 4, 6])
    maps = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    # stride = window: each pixel takes its window's value.
    px = occlusion.to_pixels(maps, (4, 4), window=2, stride=2)
    torch.testing.assert_close(px[0], torch.tensor([[1.0, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]))
    # overlapping windows: the middle pixel is covered by all four -> their mean; uncovered -> 0.
    px = occlusion.to_pixels(maps, (4, 4), window=2, stride=1)
    assert px[0, 1, 1] == 2.5 and px[0, 0, 0] == 1 and px[0, 3, 3] == 0


def test_occlusion_agrees_with_captum():
    captum = pytest.importorskip("captum.attr")
    net = tiny_classifier(seed=3)
    x = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    target = torch.tensor([1, 4])
    for window, stride in ((4, 4), (4, 2)):
        with model_unchanged(net):
            ours = occlusion.occlusion(net, x, target, window=window, stride=stride, fill=0.5,
                                       score="logit", progress=False)
        reference = net.eval()
        theirs = captum.Occlusion(reference).attribute(
            x, sliding_window_shapes=(3, window, window), strides=(3, stride, stride),
            baselines=0.5, target=target)
        net.train()
        # Captum spreads each window's logit drop over the window's pixels and averages
        # overlapping windows; with stride = window that is our map, pixel for pixel.
        # Float32 forward passes, different batching: agreement to 1e-5 (measured: exactly 0 over
        # 5 seeds x 3 window/stride pairs on this CPU; other kernels may differ in the last bits).
        ours_px = occlusion.to_pixels(ours, (12, 12), window=window, stride=stride)
        for c in range(3):  # the window spans all three channels: the same value in each
            torch.testing.assert_close(theirs[:, c], ours_px, atol=1e-5, rtol=1e-5)
        if window == stride:
            torch.testing.assert_close(theirs[:, 0, ::window, ::window], ours, atol=1e-5, rtol=1e-5)


def test_coarse_to_fine_is_exact_where_it_evaluates_and_cheaper():
    net = tiny_classifier(seed=1)
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    kw = dict(window=4, stride=2, progress=False)
    with model_unchanged(net):
        full = occlusion.occlusion(net, x, 2, **kw)
        approx, passes = occlusion.occlusion_coarse_to_fine(net, x, 2, coarse=2, keep=0.25, **kw)
        everything, all_passes = occlusion.occlusion_coarse_to_fine(net, x, 2, coarse=2, keep=1.0, **kw)
    assert approx.shape == full.shape == (1, 7, 7)
    torch.testing.assert_close(approx[:, ::2, ::2], full[:, ::2, ::2])  # the coarse grid is exact
    assert passes < full.numel()
    torch.testing.assert_close(everything, full)  # keep everything -> the full map
    assert all_passes == full.numel()
    top = full.flatten().argmax()
    assert approx.flatten()[top] == full.flatten()[top]  # the strongest window was evaluated


def test_random_occluders():
    data = shapes.make_shapes(8, seed=0)
    with pytest.raises(ValueError, match="masks"):
        occlusion.random_occluders(data.images, data.masks[:3])
    out, hidden = occlusion.random_occluders(data.images, data.masks, size=(10, 10), seed=0)
    again, hidden2 = occlusion.random_occluders(data.images, data.masks, size=(10, 10), seed=0)
    assert torch.equal(out, again) and torch.equal(hidden, hidden2)
    changed = (out != data.images).any(1)
    assert torch.all((out == 0.5) | ~changed[:, None])  # only grey was painted
    # The hidden fraction is the painted object pixels over the object's pixels.
    painted = (out == 0.5).all(1)
    expected = (painted & data.masks).flatten(1).sum(1) / data.masks.flatten(1).sum(1)
    assert torch.all(hidden >= expected - 1e-6) and torch.all(hidden > 0)
    assert torch.all(painted.flatten(1).sum(1) <= 100)


def test_mass_inside_on_known_maps():
    masks = torch.zeros(3, 8, 8, dtype=torch.bool)
    masks[:, 2:6, 2:4] = True  # 8 of 64 pixels: area fraction 0.125
    exact = masks.float()
    uniform = torch.ones(3, 8, 8)
    torch.testing.assert_close(evaluation.mass_inside(exact, masks), torch.ones(3))
    torch.testing.assert_close(evaluation.mass_inside(uniform, masks), torch.full((3,), 0.125))
    # The negative part does not count; a map with no positive mass scores 0.
    signed = exact - 5 * (~masks).float()
    torch.testing.assert_close(evaluation.mass_inside(signed, masks), torch.ones(3))
    assert torch.equal(evaluation.mass_inside(-uniform, masks), torch.zeros(3))
    # Half the mass inside.
    half = exact.clone()
    half[:, 0, :8] = 1.0
    torch.testing.assert_close(evaluation.mass_inside(half, masks), torch.full((3,), 0.5))
    # A coarse uniform map is resized to the masks' size: still the area fraction.
    torch.testing.assert_close(evaluation.mass_inside(torch.ones(3, 4, 4), masks), torch.full((3,), 0.125))
    with pytest.raises(TypeError, match="bool"):
        evaluation.mass_inside(exact, masks.float())


def test_pointing_game():
    masks = torch.zeros(3, 8, 8, dtype=torch.bool)
    masks[:, 2:4, 2:4] = True
    maps = torch.zeros(3, 8, 8)
    maps[0, 3, 3] = 1.0          # peak on the object: hit
    maps[1, 6, 6] = 1.0          # peak far away: miss
    maps[2, 5, 5] = 1.0          # peak 2 px from the object: miss, a hit with tolerance 2
    assert evaluation.pointing_game(maps, masks).tolist() == [True, False, False]
    assert evaluation.pointing_game(maps, masks, tolerance=2).tolist() == [True, False, True]
    # A constant map points nowhere. Ties do not count as hits: a tie between a pixel on and
    # one off the object is a miss (it was a hit with the old rule, ties="any"); a tie with
    # every maximal pixel on the object (a plateau inside the mask) is a hit.
    tie = torch.zeros(1, 8, 8)
    tie[0, 3, 3] = tie[0, 7, 7] = 1.0
    assert evaluation.pointing_game(torch.ones(1, 8, 8), masks[:1]).tolist() == [False]
    assert evaluation.pointing_game(tie, masks[:1]).tolist() == [False]
    assert evaluation.pointing_game(tie, masks[:1], ties="any").tolist() == [True]
    plateau = torch.zeros(1, 8, 8)
    plateau[0, 2:4, 2:4] = 1.0
    assert evaluation.pointing_game(plateau, masks[:1]).tolist() == [True]
    straddle = torch.zeros(1, 8, 8)
    straddle[0, 2:4, 2:5] = 1.0  # the plateau reaches one column past the object
    assert evaluation.pointing_game(straddle, masks[:1]).tolist() == [False]
    assert evaluation.pointing_game(straddle, masks[:1], tolerance=1).tolist() == [True]
    # The centre control on an even-sized image has four tied maximal pixels.
    centre = evaluation.centre_maps(1, (8, 8))
    corner = torch.zeros(1, 8, 8, dtype=torch.bool)
    corner[0, 3, 3] = True  # one of the four
    assert evaluation.pointing_game(centre, corner).tolist() == [False]
    assert evaluation.pointing_game(centre, corner, ties="any").tolist() == [True]
    with pytest.raises(ValueError, match="ties"):
        evaluation.pointing_game(maps, masks, ties="first")


def test_attributes_and_bins():
    data = shapes.make_shapes(16, seed=0)
    attrs = evaluation.shape_attributes(data)
    torch.testing.assert_close(attrs["scale"], data.masks.flatten(1).float().mean(1))
    assert torch.all(attrs["contrast"] > 0) and torch.all(attrs["contrast"] <= 3 ** 0.5)
    # An object painted in the background colour has contrast 0.
    flat = shapes.ShapesData(images=torch.full((1, 3, 64, 64), 0.25), labels=data.labels[:1],
                             masks=data.masks[:1], boxes=data.boxes[:1], colors=torch.full((1, 3), 0.25))
    assert evaluation.shape_attributes(flat)["contrast"].item() == pytest.approx(0.0, abs=1e-6)
    rows = evaluation.accuracy_by_bins(torch.tensor([1, 0, 1, 1, 0]).bool(),
                                       torch.tensor([0.1, 0.2, 0.5, 0.9, 1.0]), [0.0, 0.5, 1.0])
    assert [(r["n"], r["accuracy"]) for r in rows] == [(2, 0.5), (3, 2 / 3)]
    assert math.isnan(evaluation.accuracy_by_bins(torch.tensor([True]), torch.tensor([0.1]), [0.5, 1])[0]["accuracy"])
    with pytest.raises(ValueError, match="edges"):
        evaluation.accuracy_by_bins(torch.tensor([True]), torch.tensor([0.1]), [1.0, 0.5])


def test_class_probabilities():
    net = tiny_classifier()
    x = torch.rand(5, 3, 8, 8)
    with model_unchanged(net):
        p = evaluation.class_probabilities(net, x, batch_size=2)
    with torch.no_grad():
        expected = net.eval()(x).softmax(1)
    net.train()
    torch.testing.assert_close(p, expected)


def test_quiz_scoring_and_widget():
    widgets = pytest.importorskip("cs231n_vis.widgets")
    s = widgets.quiz_score([0, None, 2, 1], labels=[0, 1, 2, 3], predicted=[0, 1, 1, 1])
    assert s == {"n": 4, "answered": 3, "human": 0.5, "cnn": 0.5}
    with pytest.raises(ValueError, match="one entry per image"):
        widgets.quiz_score([0], labels=[0, 1], predicted=[0, 1])
    data = shapes.make_shapes(4, seed=0)
    names = list(data.classes)
    quiz = widgets.labeling_quiz(data.images, data.labels, predicted=[0, 0, 0, 0], class_names=names)
    assert len(quiz.answers) == 4
    # A human who answers every image correctly; the "CNN" always says class 0.
    for dropdown, y in zip(quiz.answers, data.labels.tolist()):
        dropdown.value = names[y]
    quiz.button.click()
    cnn = sum(y == 0 for y in data.labels.tolist()) / 4
    assert quiz.result.value.startswith("you: 1.00 (4 of 4 answered)")
    assert f"the CNN: {cnn:.2f}" in quiz.result.value
    quiz.answers[0].value = "?"  # unanswered counts as wrong
    quiz.button.click()
    assert quiz.result.value.startswith("you: 0.75 (3 of 4 answered)")

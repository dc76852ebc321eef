"""Deletion / insertion curves (RISE) on cases where the answer is known by hand."""

import math

import pytest
import torch
from torch import nn

from cs231n_vis import evaluation
from helpers import model_unchanged

SIZE, STEPS = 8, 8           # 64 pixels, 8 pixels per step
REGION = (slice(0, 2), slice(None))  # the top two rows: 16 pixels


class VisibleFraction(nn.Module):
    """Two classes; p(class 0) = the fraction of REGION's pixels whose red value is still 1.

    Logits (log f, log(1 - f)) give softmax probabilities (f, 1 - f) exactly.
    """

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))  # for model_unchanged to watch

    def forward(self, x):
        f = x[:, 0][:, REGION[0], REGION[1]].mean((1, 2)) + self.dummy
        return torch.stack([f.log(), (1 - f).log()], dim=1)


def region_map(n=1):
    m = torch.zeros(n, SIZE, SIZE)
    m[:, REGION[0], REGION[1]] = 1.0
    return m


def white(n=1):
    return torch.ones(n, 3, SIZE, SIZE)


def trapezoid(values, fractions):
    return sum((values[k] + values[k + 1]) / 2 * (fractions[k + 1] - fractions[k]) for k in range(len(values) - 1))


def by_hand(removed_from_region_first: bool, insert: bool, steps=STEPS, total=SIZE * SIZE, region=16):
    """The curve and AUC when the region's pixels are changed first (or last), written out."""
    counts = [k * total // steps for k in range(steps + 1)]
    curve = []
    for n in counts:
        hit = min(n, region) if removed_from_region_first else max(0, n - (total - region))
        visible = hit / region if insert else 1 - hit / region
        curve.append(visible)
    return curve, trapezoid(curve, [c / total for c in counts])


@pytest.mark.parametrize("insert", [False, True])
def test_perfect_and_reversed_maps_give_the_hand_computed_curves(insert):
    net, x = VisibleFraction(), white(2)
    fn = evaluation.insertion_curves if insert else evaluation.deletion_curves
    with model_unchanged(net):
        curves, auc = fn(net, x, torch.cat([region_map(), -region_map()]), 0, steps=STEPS, baseline="zero")
    assert curves.shape == (2, STEPS + 1) and auc.shape == (2,)
    for row, first in ((0, True), (1, False)):
        curve, area = by_hand(first, insert)
        torch.testing.assert_close(curves[row], torch.tensor(curve))
        assert math.isclose(float(auc[row]), area, abs_tol=1e-6)
    # Deletion: 16 of 64 pixels carry the class, so the perfect map's AUC is 16/64/2 = 0.125
    # and the reversed map's 1 - 0.125; insertion mirrors them.
    assert math.isclose(by_hand(True, insert)[1], 0.875 if insert else 0.125)
    assert math.isclose(by_hand(False, insert)[1], 0.125 if insert else 0.875)


def test_uneven_steps_use_the_exact_pixel_fractions():
    net, x = VisibleFraction(), white()
    curves, auc = evaluation.deletion_curves(net, x, region_map(), 0, steps=5, baseline="zero")
    curve, area = by_hand(True, False, steps=5)  # 64 // 5 is not whole: counts 0, 12, 25, 38, 51, 64
    torch.testing.assert_close(curves[0], torch.tensor(curve))
    assert math.isclose(float(auc[0]), area, abs_tol=1e-6)


def _random_map_tolerance(images, steps=STEPS, total=SIZE * SIZE, region=16):
    """4 standard deviations of the mean AUC of ``images`` random orders (hypergeometric counts).

    The SD of a weighted sum is at most the weighted sum of the SDs (each AUC weights
    curve point k by its trapezoid weight), and the mean of M images divides it by sqrt(M).
    """
    counts = [k * total // steps for k in range(steps + 1)]
    sds = [math.sqrt(n * (region / total) * (1 - region / total) * (total - n) / (total - 1)) / region
           for n in counts]
    weights = [(counts[min(k + 1, steps)] - counts[max(k - 1, 0)]) / (2 * total) for k in range(steps + 1)]
    return 4 * sum(w * s for w, s in zip(weights, sds)) / math.sqrt(images)


@pytest.mark.parametrize("insert", [False, True])
def test_a_random_map_scores_about_one_half_and_so_does_a_constant_map(insert):
    # Expected fraction still visible after n of 64 pixels in random order: 1 - n/64, whose
    # trapezoid area is exactly 1/2 (insertion: n/64, also 1/2).
    n = 200
    net, x = VisibleFraction(), white(n)
    fn = evaluation.insertion_curves if insert else evaluation.deletion_curves
    noise = torch.rand(n, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    tol = _random_map_tolerance(n)
    assert tol < 0.05
    _, auc = fn(net, x, noise, 0, steps=STEPS, baseline="zero", batch_size=256)
    assert abs(float(auc.mean()) - 0.5) < tol
    # A constant map is all ties. Broken by the pixel index, the top rows (the region) would go
    # first and score like the perfect map (0.125 / 0.875); broken at random, it scores 1/2.
    _, auc = fn(net, x, torch.zeros(n, SIZE, SIZE), 0, steps=STEPS, baseline="zero", batch_size=256)
    assert abs(float(auc.mean()) - 0.5) < tol
    assert abs(by_hand(True, insert)[1] - 0.5) > 10 * tol


def test_pixel_order_breaks_ties_by_a_seeded_permutation():
    maps = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]])  # two distinct maxima, four tied zeros
    a = evaluation.pixel_order(maps, seed=0)
    assert a[0, :2].tolist() == [4, 0]  # largest first, always
    assert sorted(a[0, 2:].tolist()) == [1, 2, 3, 5]
    assert torch.equal(a, evaluation.pixel_order(maps, seed=0))  # deterministic
    orders = {tuple(evaluation.pixel_order(maps, seed=s)[0, 2:].tolist()) for s in range(20)}
    assert len(orders) > 5  # the seed changes the order of the ties, and only of them
    flat = torch.zeros(1, 16, 16)
    first = evaluation.pixel_order(flat, seed=1)[0, :20]
    assert not torch.equal(first, torch.arange(20))  # not the index order


def tiny_classifier(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(16, 5)).train()


@pytest.mark.parametrize("batch_size", [1, 7, 256])
def test_curves_match_an_explicit_loop_on_a_real_model(batch_size):
    net = tiny_classifier()
    x = torch.rand(2, 3, 10, 10, generator=torch.Generator().manual_seed(4))
    maps = torch.randperm(200, generator=torch.Generator().manual_seed(5)).view(2, 10, 10).float()  # no ties
    base = torch.full_like(x, 0.5)
    with model_unchanged(net):
        dele, dele_auc = evaluation.deletion_curves(net, x, maps, None, steps=4, baseline="grey",
                                                    batch_size=batch_size)
        ins, ins_auc = evaluation.insertion_curves(net, x, maps, [1, 3], steps=4, baseline=base,
                                                   batch_size=batch_size)
    net.eval()
    with torch.no_grad():
        predicted = net(x).argmax(1)
        for i in range(2):
            ranked = sorted(range(100), key=lambda p: -float(maps[i].flatten()[p]))
            for k in range(5):
                gone, put = x[i].clone(), base[i].clone()
                for p in ranked[:k * 25]:
                    gone[:, p // 10, p % 10] = 0.5
                    put[:, p // 10, p % 10] = x[i, :, p // 10, p % 10]
                assert math.isclose(float(dele[i, k]), float(net(gone[None]).softmax(1)[0, predicted[i]]),
                                    rel_tol=1e-5)
                assert math.isclose(float(ins[i, k]), float(net(put[None]).softmax(1)[0, [1, 3][i]]),
                                    rel_tol=1e-5)
    torch.testing.assert_close(dele_auc, torch.tensor([trapezoid(dele[i].tolist(), [k / 4 for k in range(5)])
                                                       for i in range(2)]))
    torch.testing.assert_close(ins_auc, evaluation.curve_auc(ins))


def test_low_resolution_maps_are_resized_and_logits_can_be_scored():
    net = tiny_classifier()
    x = torch.rand(1, 3, 10, 10, generator=torch.Generator().manual_seed(6))
    coarse = torch.rand(1, 5, 5, generator=torch.Generator().manual_seed(7))
    up = torch.nn.functional.interpolate(coarse[:, None], size=(10, 10), mode="bilinear", align_corners=False)[:, 0]
    a = evaluation.deletion_curves(net, x, coarse, 2, steps=4, score="logit")
    b = evaluation.deletion_curves(net, x, up, 2, steps=4, score="logit")
    torch.testing.assert_close(a, b)
    with torch.no_grad():
        assert math.isclose(float(a[0][0, 0]), float(net.eval()(x)[0, 2]), rel_tol=1e-5)


def test_bad_arguments_are_refused_with_clear_messages():
    net, x = VisibleFraction(), white(2)
    with pytest.raises(ValueError, match="one per image"):
        evaluation.deletion_curves(net, x, region_map(3), 0)
    with pytest.raises(ValueError, match="NaN"):
        evaluation.deletion_curves(net, x, torch.full((2, 8, 8), float("nan")), 0)
    with pytest.raises(ValueError, match="steps"):
        evaluation.insertion_curves(net, x, region_map(2), 0, steps=0)
    with pytest.raises(ValueError, match="score"):
        evaluation.insertion_curves(net, x, region_map(2), 0, score="prob")
    with pytest.raises(ValueError, match="baseline"):
        evaluation.deletion_curves(net, x, region_map(2), 0, baseline=torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="fill"):
        evaluation.deletion_curves(net, x, region_map(2), 0, baseline="white")
    with pytest.raises(ValueError, match="images"):
        evaluation.deletion_curves(net, x * 255, region_map(2), 0)


def test_controls():
    centre = evaluation.centre_maps(2, (5, 7), sigma=0.2)
    assert centre.shape == (2, 5, 7) and torch.equal(centre[0], centre[1])
    assert centre[0, 2, 3] == centre.max() and float(centre[0, 2, 3]) == 1.0  # the peak is the middle pixel
    torch.testing.assert_close(centre[0], centre[0].flip(0).flip(1))      # symmetric about the centre
    # one pixel left of the centre: exp(-0.5 (1 / (0.2 * 7))^2)
    assert math.isclose(float(centre[0, 2, 2]), math.exp(-0.5 / (0.2 * 7) ** 2), rel_tol=1e-6)
    a, b = evaluation.random_maps(3, (4, 4), seed=1), evaluation.random_maps(3, (4, 4), seed=1)
    assert torch.equal(a, b) and not torch.equal(a, evaluation.random_maps(3, (4, 4), seed=2))


def test_two_objects_pastes_a_second_object_of_another_class_that_does_not_touch_the_first():
    from cs231n_vis import shapes

    pool = shapes.make_shapes(160, seed=3)
    first, second = evaluation.two_objects(pool, 8, max_area=0.12, margin=3)
    assert len(first) == len(second) == 8 and first.images is second.images
    assert (first.labels != second.labels).all()
    assert not (shapes.dilate(first.masks, 3) & second.masks).any()  # at least 3 pixels apart
    for part in (first, second):
        assert (part.masks.flatten(1).float().mean(1) <= 0.12).all()
        for i in range(len(part)):  # every mask pixel shows that object's exact colour
            pixels = part.images[i][:, part.masks[i]]
            assert torch.equal(pixels, part.colors[i][:, None].expand_as(pixels))
    # The first object's image is the pool's image outside the second mask: find it in the pool.
    i = next(k for k in range(len(pool)) if torch.equal(pool.masks[k], first.masks[0]))
    assert torch.equal(first.images[0][:, ~second.masks[0]], pool.images[i][:, ~second.masks[0]])


def test_localization_scores_are_the_individual_metrics():
    net, x = VisibleFraction(), white(2)
    masks = region_map(2).bool()
    maps = torch.cat([region_map(), -region_map()])
    scores = evaluation.localization_scores(net, x, maps, masks, 0, steps=STEPS, baseline="zero")
    assert scores["pointing"].tolist() == [True, False]
    torch.testing.assert_close(scores["mass"], torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(scores["deletion"], torch.tensor([0.125, 0.875]))
    torch.testing.assert_close(scores["insertion"], torch.tensor([0.875, 0.125]))

"""Tests for cs231n_vis.style (notebook 09): every loss against an explicit loop on small
tensors, the optimizations on tiny models (left exactly as they were found), the layout
tools against hand-made cases where the answer is known."""

import numpy as np
import pytest
import torch
from torch import nn

from cs231n_vis import assets, shapes, style
from cs231n_vis.optimize import total_variation
from helpers import model_unchanged


def tiny_cnn(seed: int = 0) -> nn.Sequential:
    """conv-relu-conv(stride 2)-relu with seeded weights, left in training mode with trainable
    parameters (so the tests see that the techniques restore both)."""
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU())
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.4)
    return net


def pixels_model() -> nn.Sequential:
    """Layer "0" is the image itself (features = pixels)."""
    return nn.Sequential(nn.Identity(), nn.Conv2d(3, 1, 1))


def rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- the losses, by loops

def gram_by_loops(f):
    n, c, h, w = f.shape
    g = torch.zeros(n, c, c, dtype=torch.float64)
    for i in range(n):
        for a in range(c):
            for b in range(c):
                g[i, a, b] = sum(float(f[i, a, y, x]) * float(f[i, b, y, x]) for y in range(h) for x in range(w))
    return g / (c * h * w)


def test_gram_matrix_equals_the_loop():
    f = torch.randn(2, 3, 2, 4, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(style.gram_matrix(f).double(), gram_by_loops(f), atol=1e-6)


def test_gram_matrix_refuses_a_flat_map():
    with pytest.raises(ValueError, match=r"\(N, C, h, w\); got shape \(3, 4\)"):
        style.gram_matrix(torch.zeros(3, 4))


def test_content_loss_equals_the_loop_and_broadcasts():
    f, t = torch.randn(2, 3, 2, 2, generator=torch.Generator().manual_seed(2)), torch.randn(1, 3, 2, 2)
    expected = [sum((float(f[i, c, y, x]) - float(t[0, c, y, x])) ** 2 for c in range(3) for y in range(2)
                    for x in range(2)) / 12 for i in range(2)]
    assert torch.allclose(style.content_loss(f, t).double(), torch.tensor(expected, dtype=torch.float64), atol=1e-6)
    with pytest.raises(ValueError, match="differ in shape"):
        style.content_loss(f, torch.zeros(1, 3, 4, 4))


def test_style_loss_equals_the_loop():
    gen = torch.Generator().manual_seed(3)
    feats = {"a": torch.randn(2, 3, 2, 2, generator=gen), "b": torch.randn(2, 2, 3, 1, generator=gen)}
    targets = {"a": torch.randn(1, 3, 3, generator=gen), "b": torch.randn(2, 2, 2, generator=gen)}
    weights = {"a": 0.25, "b": 2.0}
    expected = []
    for i in range(2):
        total = 0.0
        for name, w in weights.items():
            g = gram_by_loops(feats[name][i:i + 1])[0]
            t = targets[name][0 if len(targets[name]) == 1 else i]
            total += w * sum((float(g[a, b]) - float(t[a, b])) ** 2 for a in range(len(g)) for b in range(len(g)))
        expected.append(total)
    got = style.style_loss(feats, targets, weights)
    assert torch.allclose(got.double(), torch.tensor(expected, dtype=torch.float64), atol=1e-5)
    with pytest.raises(KeyError, match=r"no features for layers \['c'\]"):
        style.style_loss(feats, {**targets, "c": targets["a"]})


@pytest.mark.parametrize("beta", [2.0, 1.0])
def test_total_variation_equals_the_loop(beta):
    x = rand(2, 3, 3, 4, seed=4)
    expected = []
    for i in range(2):
        total = 0.0
        for c in range(3):
            for y in range(2):
                for col in range(3):
                    d2 = (float(x[i, c, y + 1, col] - x[i, c, y, col]) ** 2
                          + float(x[i, c, y, col + 1] - x[i, c, y, col]) ** 2)
                    total += d2 ** (beta / 2)
        expected.append(total)
    expected = torch.tensor(expected, dtype=torch.float64)
    assert torch.allclose(total_variation(x, beta=beta).double(), expected, atol=1e-4)


# --------------------------------------------------------------------------- feature inversion

def test_features_are_the_layers_outputs_and_keep_the_graph():
    net, x = tiny_cnn(), rand(2, 3, 8, 8).requires_grad_(True)
    with model_unchanged(net):
        with torch.no_grad():
            expected = net[1](net[0](x))
        feats = style.features(net, x, ["1", "3"])
        assert torch.equal(feats["1"], expected) and feats["3"].shape == (2, 8, 4, 4)
        (grad,) = torch.autograd.grad(feats["1"].sum(), x)
    assert grad.abs().sum() > 0


def test_inverting_the_pixels_recovers_the_image():
    """Features = pixels: the only image with these features is the image itself."""
    net, x = pixels_model(), rand(2, 3, 8, 8, seed=5)
    with model_unchanged(net):
        out = style.invert(net, x, "0", steps=150, tv=0.0, lr=0.05, progress=False)
    start_error = (style.start_images(x) - x).abs().max()
    assert (out.images - x).abs().max() < 0.02 < start_error
    assert out.passes == 150 and len(out.losses) == 150


def test_invert_lowers_the_feature_error_and_uses_one_layer_per_image():
    net, x = tiny_cnn(), rand(1, 3, 12, 12, seed=6).expand(2, -1, -1, -1)
    layers = ["1", "3"]
    with model_unchanged(net):
        out = style.invert(net, x, layers, steps=60, tv=1e-3, lr=0.05, progress=False)
        before = style.relative_feature_error(net, style.start_images(x), x, layers)
        after = style.relative_feature_error(net, out.images, x, layers)
        # Each image of the batch is its own problem: the same as inverting it alone.
        alone = style.invert(net, x[1:], "3", steps=60, tv=1e-3, lr=0.05, progress=False,
                             init=style.start_images(x)[1:])
    assert (after < 0.5 * before).all(), (before, after)
    assert torch.allclose(out.images[1], alone.images[0], atol=1e-4)


def test_relative_feature_error_by_hand():
    net, a, b = tiny_cnn(), rand(2, 3, 8, 8, seed=7), rand(2, 3, 8, 8, seed=8)
    with torch.no_grad():
        fa, fb = net(a), net(b)
    expected = torch.stack([(fa[i] - fb[i]).norm() / fb[i].norm() for i in range(2)])
    with model_unchanged(net):
        assert torch.allclose(style.relative_feature_error(net, a, b, "3"), expected, atol=1e-6)
        assert torch.equal(style.relative_feature_error(net, b, b, "3"), torch.zeros(2))


def test_invert_errors_name_the_argument():
    net, x = tiny_cnn(), rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="one name per image \\(2\\); got 3 names"):
        style.invert(net, x, ["1", "1", "3"], steps=1, progress=False)
    with pytest.raises(ValueError, match="init must be one of \\('noise', 'grey'\\)"):
        style.invert(net, x, "1", steps=1, init="content", progress=False)
    with pytest.raises(ValueError, match="images must have values in \\[0, 1\\]"):
        style.invert(net, x * 255, "1", steps=1, progress=False)
    with pytest.raises(KeyError, match="no layer named 'conv9'"):
        style.invert(net, x, "conv9", steps=1, progress=False)


# --------------------------------------------------------------------------- style transfer

LAYERS = dict(content_layer="3", style_layers=["1", "3"])


def test_gatys_losses_by_hand():
    net, x, content = tiny_cnn(), rand(2, 3, 8, 8, seed=9), rand(2, 3, 8, 8, seed=10)
    style_img = rand(1, 3, 12, 12, seed=11)
    with torch.no_grad():
        f1 = lambda z: net[1](net[0](z))  # noqa: E731
        fx1, fx3, fc3, fs1, fs3 = f1(x), net(x), net(content), f1(style_img), net(style_img)

    def gram(f):  # an independent formula: einsum, not a matrix product
        return torch.einsum("nchw,ndhw->ncd", f, f) / f[0].numel()
    style_expected = 0.5 * ((gram(fx1) - gram(fs1)) ** 2).sum((1, 2)) + 0.5 * ((gram(fx3) - gram(fs3)) ** 2).sum((1, 2))
    with model_unchanged(net):
        got = style.gatys_losses(net, x, content, style_img, **LAYERS)
    assert torch.allclose(got["content"], ((fx3 - fc3) ** 2).mean((1, 2, 3)), atol=1e-6)
    assert torch.allclose(got["style"], style_expected, rtol=1e-4, atol=1e-8)
    assert torch.allclose(got["tv"], total_variation(x))


def test_style_transfer_lowers_the_style_loss_and_leaves_the_model_alone():
    net, content, style_img = tiny_cnn(), rand(1, 3, 12, 12, seed=12), rand(1, 3, 12, 12, seed=13)
    with model_unchanged(net):
        out = style.style_transfer(net, content, style_img, **LAYERS, style_weight=10.0, tv_weight=0.0,
                                   steps=60, progress=False)
        before = style.gatys_losses(net, content, content, style_img, **LAYERS)
        after = style.gatys_losses(net, out.images, content, style_img, **LAYERS)
    assert after["style"] < 0.5 * before["style"]
    assert out.losses[-1] < out.losses[0]


def test_with_no_style_the_content_image_is_the_answer():
    """init=content and style_weight 0: the content loss and its gradient are 0, nothing moves."""
    net, content, style_img = tiny_cnn(), rand(1, 3, 8, 8, seed=14), rand(1, 3, 8, 8, seed=15)
    out = style.style_transfer(net, content, style_img, **LAYERS, style_weight=0.0, tv_weight=0.0, steps=5,
                               progress=False)
    assert torch.equal(out.images, content)


def test_per_image_weights_are_independent_runs_with_adam():
    net, content, style_img = tiny_cnn(), rand(1, 3, 10, 10, seed=16), rand(1, 3, 10, 10, seed=17)
    sweep = style.style_transfer(net, content.expand(2, -1, -1, -1), style_img, **LAYERS, style_weight=[1.0, 30.0],
                                 steps=20, progress=False)
    for i, weight in enumerate([1.0, 30.0]):
        alone = style.style_transfer(net, content, style_img, **LAYERS, style_weight=weight, steps=20, progress=False)
        assert torch.allclose(sweep.images[i], alone.images[0], atol=1e-4)
    with pytest.raises(ValueError, match="style_weight must be a number or one value per image \\(2\\)"):
        style.style_transfer(net, content.expand(2, -1, -1, -1), style_img, **LAYERS, style_weight=[1.0, 2.0, 3.0],
                             steps=1, progress=False)


def test_lbfgs_with_the_sigmoid_stays_in_range_and_lowers_the_loss():
    net, content, style_img = tiny_cnn(), rand(1, 3, 10, 10, seed=18), rand(1, 3, 10, 10, seed=19)
    with model_unchanged(net):
        out = style.style_transfer(net, content, style_img, **LAYERS, style_weight=10.0, optimizer="lbfgs",
                                   init="noise", steps=30, progress=False)
    assert out.passes == 30 and out.images.min() >= 0 and out.images.max() <= 1
    assert min(out.losses[-5:]) < 0.5 * out.losses[0]


def test_style_must_be_one_image_or_one_per_content_image():
    net, content = tiny_cnn(), rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="style must hold one image or one per content image \\(2\\); got 3"):
        style.style_transfer(net, content, rand(3, 3, 8, 8), **LAYERS, steps=1, progress=False)


# --------------------------------------------------------------------------- layout

def test_shuffle_patches_permutes_whole_tiles_and_keeps_the_remainder():
    x = rand(2, 3, 10, 13, seed=20)
    out = style.shuffle_patches(x, 4, seed=0)
    assert torch.equal(out[:, :, 8:], x[:, :, 8:]) and torch.equal(out[:, :, :, 12:], x[:, :, :, 12:])
    for i in range(2):
        tiles_in = [x[i, :, r:r + 4, c:c + 4] for r in (0, 4) for c in (0, 4, 8)]
        tiles_out = [out[i, :, r:r + 4, c:c + 4] for r in (0, 4) for c in (0, 4, 8)]
        matches = [[j for j, t in enumerate(tiles_in) if torch.equal(t, o)] for o in tiles_out]
        assert sorted(m[0] for m in matches) == list(range(6)), "every tile exactly once"
    assert not torch.equal(out, x)
    assert torch.equal(out, style.shuffle_patches(x, 4, seed=0))
    assert not torch.equal(out, style.shuffle_patches(x, 4, seed=1))


def test_shuffle_patches_refuses_a_patch_that_leaves_one_tile():
    with pytest.raises(ValueError, match="fewer than 2 tiles"):
        style.shuffle_patches(rand(1, 3, 8, 8), 8)
    with pytest.raises(ValueError, match="patch must be a positive int"):
        style.shuffle_patches(rand(1, 3, 8, 8), 0)


def test_a_pixel_gram_cannot_see_the_shuffle():
    """Gram matrices sum over positions: on pixel features any permutation leaves them unchanged."""
    net, x, other = pixels_model(), rand(1, 3, 16, 16, seed=21), rand(1, 3, 16, 16, seed=22) ** 2
    grams = {"0": style.gram_matrix(x)}
    shuffled = style.features(net, style.shuffle_patches(x, 2, seed=0), "0")
    unrelated = style.features(net, other, "0")
    assert style.style_loss(shuffled, grams) < 1e-12 < style.style_loss(unrelated, grams)


def colourful(height, width):
    """An image whose pixels all have different colours."""
    yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return torch.stack([yy / height, xx / width, ((yy * 7 + xx * 3) % 11) / 11])[None].float()


@pytest.mark.parametrize("normalize", [False, True])
def test_match_points_finds_a_known_shift(normalize):
    net, src = pixels_model(), colourful(12, 12)
    shift = (2, 3)  # rows, columns
    tgt = torch.roll(src, shifts=shift, dims=(2, 3))
    points = torch.tensor([[[0.5, 0.5], [4.5, 7.5], [11.5, 2.5], [6.5, 6.5]]])  # pixel centres (x, y)
    expected = (points - 0.5 + torch.tensor([shift[1], shift[0]])) % 12 + 0.5
    with model_unchanged(net):
        got = style.match_points(net, src, points, tgt, "0", normalize=normalize)
    if normalize:  # unit-length colours can coincide (e.g. black has none): check only the distinct ones
        keep = torch.tensor([False, True, True, True])
        got, expected = got[:, keep], expected[:, keep]
    assert torch.equal(got, expected)


def test_match_points_reads_coarse_layers_between_their_cells():
    """A layer at half resolution, read at a pixel centre, is interpolated: an image matched
    with itself lands within a pixel of each query point."""
    net = nn.Sequential(nn.AvgPool2d(2))
    x = colourful(16, 16)
    points = torch.tensor([[[3.5, 5.5], [10.5, 2.5], [8.5, 12.5]]])
    got = style.match_points(net, x, points, x, "0")
    assert (got - points).abs().max() <= 1.0


def test_within_radius_and_random_points():
    pred = torch.tensor([[[0.0, 0.0], [3.0, 4.0], [3.0, 4.1]]])
    assert style.within_radius(pred, torch.zeros(1, 3, 2), 5).tolist() == [[True, True, False]]
    masks = torch.zeros(2, 6, 6, dtype=torch.bool)
    masks[0, 1, 2] = True
    masks[1, 3:5, 0:2] = True
    pts = style.random_points(masks, 50, seed=0)
    assert pts.shape == (2, 50, 2)
    assert (pts[0] == torch.tensor([2.5, 1.5])).all()
    cols, rows = pts[1, :, 0] - 0.5, pts[1, :, 1] - 0.5
    assert masks[1, rows.long(), cols.long()].all() and len(set(map(tuple, pts[1].tolist()))) == 4
    assert torch.equal(pts, style.random_points(masks, 50, seed=0))


def test_object_keypoints_lie_on_the_drawn_objects():
    data, points = shapes.make_shapes(60, seed=5), shapes.object_keypoints(60, seed=5)
    assert len(points) == 60
    for mask, label, p in zip(data.masks, data.labels, points):
        expected_k = sum(len(poly) for poly, fill in shapes._SHAPES[shapes.CLASSES[label]] if fill)
        ys, xs = np.nonzero(mask.numpy())
        centres = np.stack([xs + 0.5, ys + 0.5], axis=1)
        nearest = np.sqrt(((centres[None] - p[:, None]) ** 2).sum(2)).min(1)
        assert p.shape == (expected_k, 2) and nearest.max() < 1.0  # every vertex on the object's edge
        assert abs(p[:, 0].min() - xs.min()) < 1.5 and abs(p[:, 0].max() - (xs.max() + 1)) < 1.5  # the same box


def test_correspondence_pairs():
    points = [np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([[0.0, 1.0], [0.0, 0.0]]),
              np.array([[1.0, 0.1], [0.0, 0.0]]), np.array([[5.0, 0.0], [4.0, 0.0]]), np.array([[1.0, 1.0]])]
    labels = torch.tensor([0, 0, 0, 0, 1])
    a, b = style.correspondence_pairs(labels, points, classes=[0])
    assert list(zip(a.tolist(), b.tolist())) == [(0, 1), (2, 3)]
    a, b = style.correspondence_pairs(labels, points, classes=[0], max_rotation=20)
    assert list(zip(a.tolist(), b.tolist())) == [(0, 2)]  # 0 and 3 point the same way too, but 0 is taken


# --------------------------------------------------------------------------- style images

def test_brush_strokes_are_deterministic_images():
    a, b, c = style.brush_strokes(32, seed=0), style.brush_strokes(32, seed=0), style.brush_strokes(32, seed=1)
    assert a.shape == (1, 3, 32, 32) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.std() > 0.05  # strokes, not a flat canvas


def test_offline_style_images_load(tmp_path, monkeypatch):
    monkeypatch.setenv(style.PAINTINGS_ENV_VAR, str(tmp_path))
    for name in style.STYLE_IMAGES:
        x = style.style_image(name, size=24)
        assert x.shape == (1, 3, 24, 24) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1


def test_a_painting_is_read_from_the_paintings_folder_or_explained(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setenv(style.PAINTINGS_ENV_VAR, str(tmp_path))
    monkeypatch.setenv(assets.CACHE_ENV_VAR, str(tmp_path / "cache"))
    for var in (assets.MIRROR_ENV_VAR, assets.OFFLINE_ENV_VAR):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(FileNotFoundError, match="data_scripts/fetch_assets.py starry_night --trust-first-download"):
        style.style_image("starry_night")
    Image.new("RGB", (40, 30), (255, 0, 0)).save(tmp_path / "starry_night.png")
    x = style.style_image("starry_night", size=16)
    assert x.shape == (1, 3, 16, 16) and torch.allclose(x[0, 0], torch.ones(16, 16))


# --------------------------------------------------------------------------- added scores and helpers

def test_layout_and_detail_on_known_cases():
    x = rand(2, 3, 16, 16, seed=23)
    grey = x.mean(1, keepdim=True)
    coarse = torch.nn.functional.avg_pool2d(grey, 4).repeat_interleave(4, 2).repeat_interleave(4, 3)
    detail = grey - coarse
    cases = {
        "brighter, higher contrast": (0.2 + 0.5 * x, 1.0, 1.0),
        "the blocks' means only": ((coarse * 0.9 + 0.05).expand(-1, 3, -1, -1), 1.0, 0.0),
        "the detail turned upside down": ((coarse - detail).clamp(0, 1).expand(-1, 3, -1, -1), None, None),
    }
    for name, (candidate, layout, kept_detail) in cases.items():
        got = style.layout_and_detail(candidate, x, cell=4)
        if layout is not None:
            assert torch.allclose(got["layout"], torch.full((2,), layout), atol=1e-5), name
            assert torch.allclose(got["detail"], torch.full((2,), kept_detail), atol=1e-5), name
    flipped = style.layout_and_detail((coarse - detail).expand(-1, 3, -1, -1).clamp(0, 1), x, cell=4)
    assert (flipped["detail"] < -0.9).all() and (flipped["layout"] > 0.9).all()
    with pytest.raises(ValueError, match="cell 5 must divide the image size"):
        style.layout_and_detail(x, x, cell=5)


def test_balanced_style_weights_make_each_layer_count_alike():
    net, art = tiny_cnn(), rand(1, 3, 12, 12, seed=24)
    weights = style.balanced_style_weights(net, art, ["1", "3"])
    with torch.no_grad():
        f1, f3 = net[1](net[0](art)), net(art)
    expected = {"1": 1 / (2 * (style.gram_matrix(f1) ** 2).sum().item()),
                "3": 1 / (2 * (style.gram_matrix(f3) ** 2).sum().item())}
    assert weights.keys() == expected.keys()
    assert all(abs(weights[k] - expected[k]) < 1e-6 * expected[k] for k in expected)
    # With these weights a blank image (all Grams 0) has style loss exactly 1: each layer contributes 1/2.
    blank = style.features(net, torch.zeros(1, 3, 12, 12), ["1", "3"])
    zero_grams = style.style_loss({k: torch.zeros_like(v) for k, v in blank.items()},
                                  {k: style.gram_matrix(v) for k, v in style.features(net, art, ["1", "3"]).items()},
                                  weights)
    assert abs(zero_grams.item() - 1.0) < 1e-5


def test_start_images():
    x = rand(2, 3, 8, 8, seed=25)
    noise = style.start_images(x, "noise", seed=3)
    assert torch.equal(noise, style.start_images(x, "noise", seed=3))
    assert not torch.equal(noise, style.start_images(x, seed=4))
    assert 0.05 < (noise - 0.5).std() < 0.15 and noise.min() >= 0 and noise.max() <= 1
    assert torch.equal(style.start_images(x, "content"), x)
    assert torch.equal(style.start_images(x, "grey"), torch.full_like(x, 0.5))
    with pytest.raises(ValueError, match="init must have the images' shape"):
        style.start_images(x, x[:1])


def test_correspondence_accuracy_counts_hits_over_groups_of_keypoints():
    """Pixel features on images with distinct colours, targets shifted copies: keypoints are found
    exactly, so every one within radius 0.5; a wrong 'truth' for one group lowers it by its share."""
    net, base = pixels_model(), colourful(12, 12)
    images = torch.cat([base, torch.roll(base, (1, 2), (2, 3)), base, torch.roll(base, (2, 1), (2, 3))])
    kp = [np.array([[3.5, 3.5], [5.5, 6.5]]), np.array([[5.5, 4.5], [7.5, 7.5]]),
          np.array([[2.5, 2.5], [4.5, 4.5], [6.5, 3.5]]), np.array([[3.5, 4.5], [5.5, 6.5], [7.5, 5.5]])]
    pairs = (torch.tensor([0, 2]), torch.tensor([1, 3]))
    got = style.correspondence_accuracy(net, images, kp, pairs, "0", radius=0.5, normalize=False)
    assert got == {"0": 1.0}
    kp[3] = kp[3] + 3.0  # the second group's truth is now wrong: 3 of the 5 keypoints
    assert style.correspondence_accuracy(net, images, kp, pairs, "0", radius=0.5, normalize=False)["0"] == 2 / 5
    masks = torch.zeros(4, 12, 12, dtype=torch.bool)
    masks[:, 5:9, 5:9] = True
    with_chance = style.correspondence_accuracy(net, images, kp, pairs, "0", radius=0.5, normalize=False, masks=masks)
    assert set(with_chance) == {"0", "chance: anywhere", "chance: on the object"}


def test_gram_distance_by_hand():
    net, x, ref = tiny_cnn(), rand(2, 3, 10, 10, seed=26), rand(1, 3, 14, 14, seed=27)
    with torch.no_grad():
        fx, fr = net(x), net(ref)
    gx, gr = gram_by_loops(fx), gram_by_loops(fr)[0]
    expected = torch.tensor([float(((gx[i] - gr) ** 2).sum() / (gr ** 2).sum()) for i in range(2)])
    with model_unchanged(net):
        got = style.gram_distance(net, x, ref, "3")
    assert torch.allclose(got["3"], expected.float(), rtol=1e-4)
    assert torch.allclose(style.gram_distance(net, ref, ref, ["1", "3"])["1"], torch.zeros(1), atol=1e-7)

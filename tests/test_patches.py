import pytest
import torch

from cs231n_vis import models, shapes
from cs231n_vis.hooks import frozen, override_rectifiers, record
from cs231n_vis.patches import (chance_purity, class_purity, merge_topk, multiscale_crops, random_directions,
                                receptive_field, stack_receptive_field, top_patches, unit_box)
from helpers import model_unchanged


# ----------------------------------------------------------------------------- receptive fields

def test_stack_recursion_on_hand_computed_stacks():
    assert stack_receptive_field([]) == (1, 1, 0)
    # Three 3x3 convs, stride 1, padding 1: 3 -> 5 -> 7, starting 3 pixels into the padding.
    assert stack_receptive_field([(3, 1, 1)] * 3) == (7, 1, -3)
    # conv 3 s1 p1, pool 2 s2, conv 3 s1 p1: 3, 4 (jump 2), 4 + 2*2 = 8; offset -1, -1, -1 - 2 = -3.
    assert stack_receptive_field([(3, 1, 1), (2, 2, 0), (3, 1, 1)]) == (8, 2, -3)
    # AlexNet's conv1 (11, stride 4, pad 2) then pool (3, stride 2): 11 + 2*4 = 19, jump 8, offset -2.
    assert stack_receptive_field([(11, 4, 2), (3, 2, 0)]) == (19, 8, -2)


def test_shapes_cnn_fields_by_hand_and_map_sizes():
    cnn = shapes.ShapesCNN(seed=1)
    # conv1 7 p3: 7, off -3; pool: 8, j 2; conv2: 12, off -5; pool: 14, j 4; conv3: 22, off -9;
    # pool: 26, j 8; conv4: 42, off -17.
    expected = {"conv1": (7, 1, -3, 64), "pool1": (8, 2, -3, 32), "relu2": (12, 2, -5, 32),
                "pool2": (14, 4, -5, 16), "relu3": (22, 4, -9, 16), "relu4": (42, 8, -17, 8)}
    for layer, (size, jump, offset, side) in expected.items():
        rf = receptive_field(cnn, layer)
        assert (rf.size, rf.jump, rf.offset, rf.map_size) == ((size,) * 2, (jump,) * 2, (offset,) * 2, (side,) * 2)
    assert unit_box(cnn, "relu4", 2, 3) == (-17 + 24, -17 + 16, -17 + 24 + 42, -17 + 16 + 42)


def test_same_padding_puts_the_extra_pixel_bottom_right():
    lite = models.EfficientNetLite0()
    # stride-2 3x3 SAME on 224: total padding (112 - 1) * 2 + 3 - 224 = 1, all of it at the bottom/right;
    # on 97: (49 - 1) * 2 + 3 - 97 = 2, one pixel each side.
    assert receptive_field(lite, "stem.act", input_size=224).offset == (0, 0)
    assert receptive_field(lite, "stem.act", input_size=97).offset == (-1, -1)
    rf = receptive_field(lite, "head.act", input_size=224)
    assert rf.map_size == (7, 7) and rf.jump == (32, 32)


def test_unplaceable_layers_are_refused():
    cnn = shapes.ShapesCNN()
    with pytest.raises(ValueError, match="fc"):
        receptive_field(cnn, "fc")
    with pytest.raises(KeyError, match="relu4"):
        receptive_field(cnn, "relu5")


def _wrapped_lite0():
    net = models.EfficientNetLite0()  # random init (seeded by the caller)
    model = models.ImageNetModel(net, (0.5,) * 3, (0.5,) * 3, [str(i) for i in range(1000)])
    return model.eval().requires_grad_(False)


def _gradient_supports(model, units, size, n):
    """For each unit (layer, y, x): the pixels where the input gradient of the unit (summed over
    channels) is nonzero for any of n random images, with the rectifiers made linear: then only
    max pooling selects inputs, and over many images every pixel of its window is picked by some
    image. Each unit gets its own n images, so one forward and one backward pass do them all."""
    images = torch.rand(n * len(units), 3, size, size, generator=torch.Generator().manual_seed(0))
    images.requires_grad_(True)
    layers = sorted({layer for layer, _, _ in units})
    with frozen(model), override_rectifiers(model, "linear"), record(model, layers, keep_graph=True) as rec:
        model(images)
        total = sum(rec.activations[layer][i * n:(i + 1) * n, :, y, x].sum() for i, (layer, y, x) in enumerate(units))
        (grad,) = torch.autograd.grad(total, images)
    return [(g.abs().sum(dim=(0, 1)) != 0) for g in grad.split(n)]


def _box_mask(box, size):
    x0, y0, x1, y1 = box
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[max(y0, 0):min(y1, size), max(x0, 0):min(x1, size)] = True
    return mask


def _check_supports(model, units, size, n):
    with model_unchanged(model):
        supports = _gradient_supports(model, units, size, n)
    for (layer, y, x), support in zip(units, supports):
        box = receptive_field(model, layer, input_size=size).box(y, x)
        assert torch.equal(support, _box_mask(box, size)), (size, layer, y, x, box)


@pytest.mark.parametrize("trained", [False, True])
def test_analytic_field_is_the_gradient_support_of_the_shapes_cnn(trained):
    cnn = shapes.load_shapes_cnn() if trained else shapes.ShapesCNN(seed=1)
    units = [("pool1", 0, 0), ("pool1", 16, 10), ("relu3", 8, 5), ("relu3", 15, 15), ("relu4", 4, 2), ("relu4", 0, 7)]
    _check_supports(cnn, units, 64, n=192)


@pytest.mark.parametrize("size", [224, 97])
def test_analytic_field_is_the_gradient_support_of_lite0(size):
    torch.manual_seed(1)
    lite = _wrapped_lite0()
    units = []
    for layer in ["net.stem.act", "net.blocks.1.depthwise.act", "net.blocks.5", "net.blocks.8.depthwise.act"]:
        h, w = receptive_field(lite, layer, input_size=size).map_size
        units += [(layer, 0, 0), (layer, h // 2, w // 3), (layer, h - 1, w - 1)]
    _check_supports(lite, units, size, n=1)


@pytest.mark.parametrize("size", [64, 97])
def test_analytic_field_is_the_gradient_support_of_squeezenet_with_its_ceil_mode_pools(size):
    """squeezenet1_1 pools with ceil_mode=True. At 97 each pool's last window overhangs its input
    (48 -> 24 units, 23 without ceil_mode; then 12 and 6). At 64 its first conv never reads pixel 63,
    yet the padded 3x3 convs of the Fire modules reach over it (``ReceptiveField.end``). A Fire
    module runs a 1x1 and a 3x3 conv side by side: its field is the 3x3 branch's."""
    torch.manual_seed(0)
    model = models.load_model("squeezenet1_1", pretrained=False)
    units = []
    for layer in ["net.features.2", "net.features.4", "net.features.5", "net.features.7"]:
        h, w = receptive_field(model, layer, input_size=size).map_size
        with torch.no_grad(), record(model, [layer]) as rec:
            model(torch.rand(1, 3, size, size))
        assert rec.activations[layer].shape[2:] == (h, w), (layer, size)
        units += [(layer, 0, 0), (layer, h // 2, w // 3), (layer, h - 1, w - 1)]
    _check_supports(model, units, size, n=64)


def test_analytic_field_is_the_gradient_support_of_pretrained_lite0():
    lite = models.load_model("efficientnet_lite0")
    units = [("net.blocks.3.depthwise.act", 0, 0), ("net.blocks.3.depthwise.act", 14, 9), ("net.blocks.5", 7, 4)]
    _check_supports(lite, units, 224, n=1)


# ----------------------------------------------------------------------------- the scan

def test_merge_topk_equals_one_topk_over_everything_and_breaks_ties_by_order():
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, 6, (5, 40), generator=g).float()  # many ties
    keys = torch.arange(40).expand(5, 40)
    scores, kept = data[:, :0], keys[:, :0]
    for start in range(0, 40, 7):
        scores, kept = merge_topk(scores, kept, data[:, start:start + 7], keys[:, start:start + 7], 4)
    order = data.sort(dim=1, descending=True, stable=True).indices[:, :4]
    assert torch.equal(kept, order) and torch.equal(scores, data.gather(1, order))
    s, k = merge_topk(torch.tensor([[3.0, 1.0]]), torch.tensor([[7, 2]]), torch.tensor([[1.0, 5.0]]),
                      torch.tensor([[9, 8]]), 3)
    assert s.tolist() == [[5.0, 3.0, 1.0]] and k.tolist() == [[8, 7, 2]]  # the tie at 1.0: the earlier entry


def _brute_force(model, images, layer, k, directions=None):
    with torch.no_grad(), record(model, layer) as rec:
        model(images)
    act = rec.activations[layer]
    if directions is not None:
        act = torch.einsum("dc,nchw->ndhw", directions, act)
    best, where = act.flatten(2).max(dim=2)
    order = best.T.sort(dim=1, descending=True, stable=True).indices[:, :k]
    return best.T.gather(1, order), order, where.T.gather(1, order)


def test_top_patches_matches_brute_force_for_units_and_directions():
    cnn = shapes.load_shapes_cnn()
    data = shapes.make_shapes(60, seed=3)
    for directions in (None, random_directions(64, 5, seed=2)):
        with model_unchanged(cnn):
            top = top_patches(cnn, data.images, "relu4", k=4, directions=directions, batch_size=7, progress=False)
        scores, index, where = _brute_force(cnn, data.images, "relu4", 4, directions)
        torch.testing.assert_close(top.scores, scores)
        assert torch.equal(top.index, index)
        assert torch.equal(top.y * 8 + top.x, where)
        assert top.boxes.shape == (len(scores), 4, 4)
        assert torch.equal(top.boxes[1, 2], torch.tensor(top.field.box(int(top.y[1, 2]), int(top.x[1, 2]))))


def test_top_patches_streams_batches_from_a_generator():
    cnn = shapes.load_shapes_cnn()
    data = shapes.make_shapes(30, seed=4)
    whole = top_patches(cnn, data.images, "relu3", k=3, batch_size=30, progress=False)
    streamed = top_patches(cnn, (data.images[i:i + 4] for i in range(0, 30, 4)), "relu3", k=3, progress=False)
    assert torch.equal(whole.index, streamed.index) and torch.equal(whole.boxes, streamed.boxes)
    torch.testing.assert_close(whole.scores, streamed.scores)


def test_top_patches_bad_input():
    cnn = shapes.ShapesCNN()
    x = torch.rand(4, 3, 64, 64)
    with pytest.raises(ValueError, match="k must"):
        top_patches(cnn, x, "relu4", k=0, progress=False)
    with pytest.raises(ValueError, match=r"directions must be \(D, 64\)"):
        top_patches(cnn, x, "relu4", directions=torch.rand(3, 10), progress=False)
    with pytest.raises(ValueError, match="conv feature map"):
        top_patches(cnn, x, "fc", progress=False)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        top_patches(cnn, x * 255, "relu4", progress=False)


# ----------------------------------------------------------------------------- measures and data

def test_class_purity_by_hand_and_chance():
    labels = torch.tensor([[2, 2, 2, 2], [0, 1, 2, 3], [5, 5, 1, 1], [3, 3, 3, 0]])
    assert class_purity(labels).tolist() == [1.0, 0.25, 0.5, 0.75]
    balanced = torch.arange(1000) % 10
    assert chance_purity(balanced, 1) == 1.0
    # k = 2 from 10 balanced classes: purity 1 with probability ~0.1 (99/999), else 0.5.
    assert chance_purity(balanced, 2, n=4000) == pytest.approx(0.5 + 0.5 * 99 / 999, abs=0.02)


def test_random_directions_unit_norm_and_seeded():
    d = random_directions(16, 5, seed=3)
    assert d.shape == (5, 16)
    torch.testing.assert_close(d.norm(dim=1), torch.ones(5))
    assert torch.equal(d, random_directions(16, 5, seed=3)) and not torch.equal(d, random_directions(16, 5, seed=4))


def test_multiscale_crops_cover_the_photo():
    photo = torch.rand(300, 400, 3).numpy()
    crops, where = multiscale_crops([photo], sizes=(224, 300), crop=224, stride=112, cover=True)
    assert crops.shape[1:] == (3, 224, 224)
    # size 224: 224 x 299 -> lefts 0, 75; size 300: 300 x 400 -> tops 0, 76, lefts 0, 112, 176.
    assert where[:, 1].tolist() == [224] * 2 + [300] * 6
    assert where[2:, 2:].tolist() == [[0, 0], [0, 112], [0, 176], [76, 0], [76, 112], [76, 176]]
    torch.testing.assert_close(crops[-1], torch.from_numpy(photo).permute(2, 0, 1)[:, 76:, 176:])
    apart, where = multiscale_crops([photo], sizes=(224, 448))  # side by side: 224 x 299 -> 1; 448 x 597 -> 2 x 2
    assert where[:, 1:].tolist() == [[224, 0, 0], [448, 0, 0], [448, 0, 224], [448, 224, 0], [448, 224, 224]]


# ----------------------------------------------------------------------------- every position, every scale

def test_box_iou_by_hand():
    from cs231n_vis.patches import box_iou
    import numpy as np
    box = np.array([0.0, 0.0, 10.0, 10.0])
    others = np.array([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0], [0.0, 0.0, 5.0, 5.0]])
    assert np.allclose(box_iou(box, others), [1.0, 50 / 150, 0.0, 0.25])


def test_top_patches_multiscale_against_brute_force_and_suppression():
    import numpy as np
    from cs231n_vis.images import resize
    from cs231n_vis.patches import box_iou, cut_patches, top_patches_multiscale
    cnn = shapes.ShapesCNN(seed=1)
    rng = np.random.default_rng(0)
    photos = [rng.random((80, 100, 3)).astype(np.float32), rng.random((96, 72, 3)).astype(np.float32)]
    sizes = (64, 96)
    with model_unchanged(cnn):
        loose = top_patches_multiscale(cnn, photos, "relu4", k=5, sizes=sizes, iou=1.0, progress=False)
        tight = top_patches_multiscale(cnn, photos, "relu4", k=5, sizes=sizes, iou=0.3, progress=False)
    # Brute force: every position of every scaled photo, no suppression.
    every = []
    for photo in photos:
        for size in sizes:
            x = torch.from_numpy(resize(photo, size).transpose(2, 0, 1).copy())[None]
            with record(cnn, "relu4") as rec, torch.no_grad():
                cnn(x)
            every.append(rec.activations["relu4"][0].flatten(1))
    every = torch.cat(every, dim=1)
    assert loose.candidates == every.shape[1] == len(tight.candidate_photo)
    assert torch.allclose(loose.scores, every.sort(dim=1, descending=True).values[:, :5])
    assert torch.allclose(tight.scores[:, 0], every.max(dim=1).values)
    assert (tight.scores[:, :-1] >= tight.scores[:, 1:]).all()
    for u in range(len(tight.scores)):
        for i in range(5):
            for j in range(i):
                if tight.photo[u, i] == tight.photo[u, j]:
                    assert box_iou(tight.boxes[u, i].numpy(), tight.boxes[u, j][None].numpy())[0] <= 0.3
    whole = cut_patches(photos, torch.tensor([[0.0, 0.0, 100.0, 80.0]]), torch.tensor([0]), size=16)
    assert whole.shape == (1, 3, 16, 16)
    assert torch.allclose(whole[0], torch.from_numpy(resize(photos[0], (16, 16)).transpose(2, 0, 1).copy()))

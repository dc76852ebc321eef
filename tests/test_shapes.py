"""Tests for cs231n_vis.shapes: the procedural dataset and the small CNN."""

import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from cs231n_vis.shapes import (
    CLASSES, TEST_SEED, ShapesCNN, evaluate, load_shapes_cnn, make_shapes, train_cnn,
    weights_path,
)

SIZE = 64


@pytest.fixture(scope="module")
def data():
    return make_shapes(400, seed=0)


@pytest.fixture(scope="module")
def test_data():
    return make_shapes(2000, seed=TEST_SEED)


@pytest.fixture(scope="module")
def model():
    return load_shapes_cnn()


# --- dataset -----------------------------------------------------------------

def test_types_shapes_and_ranges(data):
    n = len(data)
    assert n == 400
    assert data.images.shape == (n, 3, SIZE, SIZE) and data.images.dtype == torch.float32
    assert data.images.min() >= 0 and data.images.max() <= 1
    assert data.labels.shape == (n,) and data.labels.dtype == torch.int64
    assert data.masks.shape == (n, SIZE, SIZE) and data.masks.dtype == torch.bool
    assert data.boxes.shape == (n, 4)
    assert data.colors.shape == (n, 3) and data.colors.min() >= 0 and data.colors.max() <= 1
    assert tuple(data.classes) == CLASSES


def test_classes():
    assert len(CLASSES) >= 8 and len(set(CLASSES)) == len(CLASSES)


def test_all_classes_appear(data):
    assert set(data.labels.tolist()) == set(range(len(CLASSES)))


def test_deterministic_by_seed():
    a, b, c = make_shapes(50, seed=3), make_shapes(50, seed=3), make_shapes(50, seed=4)
    for field in ("images", "labels", "masks", "boxes", "colors"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    assert not torch.equal(a.images, c.images)


def test_masks_and_boxes(data):
    assert (data.masks.sum((1, 2)) > 0).all()
    x0, y0, x1, y1 = data.boxes.T
    assert (0 <= x0).all() and (x0 < x1).all() and (x1 <= SIZE).all()
    assert (0 <= y0).all() and (y0 < y1).all() and (y1 <= SIZE).all()
    for mask, (a, b, c, d) in zip(data.masks, data.boxes.tolist()):
        inside = mask[b:d, a:c]
        assert inside.sum() == mask.sum()  # every object pixel is in the box
        assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()


def test_mask_pixels_have_object_color(data):
    for image, mask, color in zip(data.images, data.masks, data.colors):
        pixels = image[:, mask]  # (3, number of object pixels)
        assert torch.allclose(pixels.mean(1), color, atol=1e-6)
        assert torch.allclose(pixels.std(1), torch.zeros(3), atol=1e-6)


def test_distractors_are_not_in_the_mask():
    plain = make_shapes(200, seed=5)
    clutter = make_shapes(200, seed=5, distractors=2)
    assert torch.equal(plain.masks, clutter.masks)
    assert torch.equal(plain.labels, clutter.labels)
    inside = plain.masks[:, None].expand_as(plain.images)
    assert torch.equal(plain.images[inside], clutter.images[inside])  # object unchanged
    assert (plain.images[~inside] != clutter.images[~inside]).any()  # clutter drawn


def test_color_does_not_predict_class():
    d = make_shapes(3000, seed=7)
    x, y = d.colors.numpy(), d.labels.numpy()
    knn = KNeighborsClassifier(n_neighbors=25).fit(x[:2000], y[:2000])
    assert knn.score(x[2000:], y[2000:]) <= 1 / len(CLASSES) + 0.05


def test_position_scale_rotation_vary(data):
    boxes = data.boxes.float()
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2
    assert (centers.std(0) > SIZE / 10).all()
    areas = data.masks.sum((1, 2)).float()
    assert areas.max() > 3 * areas.min()
    # An axis-aligned square fills its box, one rotated by 45 degrees half of it.
    squares = data.labels == CLASSES.index("square")
    box_areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    fill = (areas / box_areas)[squares]
    assert fill.min() < 0.6 and fill.max() > 0.8


# --- CNN ---------------------------------------------------------------------

@pytest.mark.parametrize("weight_decay", [True, False])
def test_weights_file(weight_decay):
    path = weights_path(weight_decay)
    assert path.stat().st_size <= 2 * 1024**2
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert set(state) == set(ShapesCNN().state_dict())


def test_shipped_model_accuracy(model, test_data):
    assert evaluate(model, test_data) >= 0.97


def test_loaded_model_is_frozen_eval(model):
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert model.class_names == list(CLASSES)


def test_output_and_relu4_shapes(model, data):
    x = data.images[:5]
    assert model(x).shape == (5, len(CLASSES))
    for name, layer in model.named_children():
        x = layer(x)
        if name == "relu4":
            break
    assert x.shape == (5, model.conv4.out_channels, 8, 8)
    assert model.layer_names[-1] == "relu4"


def test_train_cnn_is_deterministic():
    d = make_shapes(256, seed=1)
    models = [ShapesCNN(seed=0), ShapesCNN(seed=0)]
    epochs_seen = []
    histories = [train_cnn(m, d, epochs=1, lr=1e-3, weight_decay=0.05, seed=0,
                           on_epoch_end=lambda e, m: epochs_seen.append(e))
                 for m in models]
    assert epochs_seen == [1, 1]
    assert histories[0] == histories[1] and set(histories[0][0]) == {"epoch", "loss", "train_acc"}
    assert not models[0].training
    for p, q in zip(models[0].parameters(), models[1].parameters()):
        assert torch.equal(p, q)
    assert not torch.equal(models[0].conv1.weight, ShapesCNN(seed=0).conv1.weight)


def test_stop_after_repeats_the_start_of_the_full_run():
    from cs231n_vis.shapes import train_cnn

    d = make_shapes(96, seed=1)
    full, start = ShapesCNN(seed=0), ShapesCNN(seed=0)
    snapshots = []
    train_cnn(full, d, epochs=3, lr=1e-3, weight_decay=0.05, batch_size=32, seed=0,
              on_epoch_end=lambda e, m: snapshots.append(m.conv1.weight.detach().clone()))
    history = train_cnn(start, d, epochs=3, stop_after=1, lr=1e-3, weight_decay=0.05, batch_size=32, seed=0)
    assert len(history) == 1 and not start.training
    assert torch.equal(start.conv1.weight, snapshots[0])  # the same steps as the full run's first epoch


def test_shuffled_labels_keep_images_and_class_counts():
    from cs231n_vis.shapes import shuffled_labels

    d = make_shapes(200, seed=1)
    s = shuffled_labels(d, seed=0)
    assert torch.equal(s.images, d.images) and torch.equal(s.labels.sort().values, d.labels.sort().values)
    assert (s.labels != d.labels).float().mean() > 0.7  # most labels moved (chance of staying: ~1/10)
    assert torch.equal(shuffled_labels(d, seed=0).labels, s.labels)  # deterministic by seed


def test_control_run_records_every_epoch():
    from cs231n_vis import shapes

    config = dict(n_train=32, epochs=2, lr=1e-3, weight_decay=0.05, batch_size=32, shuffled=True, measure="filters")
    run = shapes.control_run(config, seed=0)
    assert run["roughness"].shape == (3, 16) and run["held_out_acc"].shape == (3,)
    assert run["loss"][0].isnan() and run["conv1"].shape == (16, 3, 7, 7)

import numpy as np
import pytest
import torch
from torch import nn

from cs231n_vis import embedding
from helpers import model_unchanged


def blobs(n=60, d=5, gap=20.0, seed=0):
    """Two well-separated Gaussian blobs: points (2n, d) and labels (2n,)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2 * n, d, generator=g)
    y = torch.arange(2 * n) // n
    x[y == 1, 0] += gap
    return x, y


def tiny_cnn():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
    net.cam_layer = "3"
    return net.train()


def test_codes_are_the_pooled_rectified_map_and_leave_the_model_alone():
    net, x = tiny_cnn(), torch.rand(5, 3, 8, 8)
    with model_unchanged(net):
        got = embedding.codes(net, x, batch_size=2)
        many = embedding.layer_codes(net, x, ["1", "3"], batch_size=3)
    with torch.no_grad():
        torch.testing.assert_close(got, net(x).mean(dim=(2, 3)))
        torch.testing.assert_close(many["1"], torch.relu(net[0](x)).mean(dim=(2, 3)))
    torch.testing.assert_close(many["3"], got)
    assert got.shape == (5, 6) and (got >= 0).all()


def test_codes_reject_bad_images():
    with pytest.raises(ValueError, match="images"):
        embedding.codes(tiny_cnn(), torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        embedding.codes(tiny_cnn(), 255 * torch.rand(2, 3, 8, 8))


def test_color_classes_by_hue_sector():
    rgb = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1], [1, 0, 1],
                        [1.0, 0.0, 0.2],   # hue 348°: red, across the wrap-around
                        [1.0, 0.55, 0.0],  # hue 33°: yellow side of the red/yellow border
                        [0.2, 0.1, 0.1]])  # dark, low saturation: still binned by hue (red)
    assert embedding.color_classes(rgb).tolist() == [0, 1, 2, 3, 4, 5, 0, 1, 0]
    assert embedding.COLOR_NAMES[embedding.color_classes(rgb[4:5])[0]] == "blue"


def test_knn_accuracy_is_one_on_separated_blobs_and_chance_on_random_labels():
    x, y = blobs()
    assert embedding.knn_accuracy(x, y, k=5) == 1.0
    g = torch.Generator().manual_seed(1)
    noise, labels = torch.randn(600, 5, generator=g), torch.randint(0, 4, (600,), generator=g)
    assert abs(embedding.knn_accuracy(noise, labels, k=5) - 0.25) < 0.06


def test_knn_accuracy_leaves_the_point_out_and_counts_by_hand():
    # Points on a line; with k = 1 each point takes its nearest *other* point's label.
    x = torch.tensor([[0.0], [1.0], [3.0], [10.0]])
    y = torch.tensor([0, 0, 1, 1])
    # 0 -> 1 (label 0, right), 1 -> 0 (right), 3 -> 1 (label 0, wrong), 10 -> 3 (right)
    assert embedding.knn_accuracy(x, y, k=1) == 0.75


def test_knn_accuracy_matches_scikit_learn_leave_one_out():
    from sklearn.model_selection import LeaveOneOut, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(150, 4, generator=g), torch.randint(0, 3, (150,), generator=g)
    x[:, 0] += y.float()  # some signal, so the answer is neither 0 nor 1
    for k in (1, 4, 7):  # even k: tied votes go to the smallest label, as in scikit-learn
        ref = cross_val_score(KNeighborsClassifier(k), x.numpy(), y.numpy(), cv=LeaveOneOut()).mean()
        assert embedding.knn_accuracy(x, y, k=k) == pytest.approx(ref, abs=1e-12)


def test_knn_accuracy_rejects_bad_arguments():
    x, y = blobs(5)
    with pytest.raises(ValueError, match="k must be"):
        embedding.knn_accuracy(x, y, k=10)
    with pytest.raises(ValueError, match="labels"):
        embedding.knn_accuracy(x, y[:-1])
    with pytest.raises(TypeError, match="labels"):
        embedding.knn_accuracy(x, y.float())


def test_trustworthiness_known_cases():
    x, _ = blobs(100, d=3, gap=0.0)
    assert embedding.trustworthiness(x, x[:, :2] * 3.0, k=5) > embedding.trustworthiness(
        x, torch.randn(200, 2, generator=torch.Generator().manual_seed(0)), k=5)
    line = torch.arange(50.0)[:, None] ** 1.3  # distinct gaps: no distance ties
    assert embedding.trustworthiness(line, torch.cat([line, torch.zeros(50, 1)], 1), k=5) == 1.0
    shuffled = line[torch.randperm(50, generator=torch.Generator().manual_seed(0))]
    assert embedding.trustworthiness(line, shuffled, k=5) < 0.8


def test_tsne_backends_keep_blobs_apart_and_are_seeded():
    x, y = blobs(60, d=10)
    for backend in ("opentsne", "sklearn"):
        e = embedding.tsne(x, perplexity=10, seed=0, backend=backend)
        assert e.shape == (120, 2) and e.dtype == torch.float32
        assert embedding.knn_accuracy(e, y, k=5) == 1.0
        torch.testing.assert_close(e, embedding.tsne(x, perplexity=10, seed=0, backend=backend))
    with pytest.raises(ValueError, match="backend"):
        embedding.tsne(x, perplexity=10, backend="umap")
    with pytest.raises(ValueError, match="perplexity"):
        embedding.tsne(x[:20], perplexity=10)


def test_grid_cost_by_hand():
    points = torch.tensor([[0.0, 0.0], [2.0, 4.0]])  # scaled to (0, 0) and (1, 1)
    cost = embedding.grid_cost(points, (2, 2))
    # cell centres (row-major): (0.25, 0.75), (0.75, 0.75), (0.25, 0.25), (0.75, 0.25)
    expected = torch.tensor([[0.625, 1.125, 0.125, 0.625], [0.625, 0.125, 1.125, 0.625]], dtype=torch.float64)
    torch.testing.assert_close(cost, expected)


def test_grid_layout_puts_corners_in_corners_and_is_a_permutation():
    corners = torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0]])  # TL, TR, BL, BR
    assert embedding.grid_layout(corners).tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    g = torch.Generator().manual_seed(0)
    cells = embedding.grid_layout(torch.rand(30, 2, generator=g), shape=(5, 7))
    assert len({tuple(c) for c in cells.tolist()}) == 30
    assert (cells[:, 0] < 5).all() and (cells[:, 1] < 7).all()
    # A lattice that already sits on the grid stays where it is.
    r, c = torch.meshgrid(torch.arange(4.0), torch.arange(5.0), indexing="ij")
    lattice = torch.stack([c.flatten(), 3 - r.flatten()], dim=1)
    assert embedding.grid_layout(lattice, shape=(4, 5)).tolist() == torch.stack(
        [r.flatten(), c.flatten()], 1).long().tolist()
    with pytest.raises(ValueError, match="rows"):
        embedding.grid_layout(torch.rand(10, 2), shape=(3, 3))


def test_grid_layout_is_optimal_against_brute_force():
    from itertools import permutations

    g = torch.Generator().manual_seed(3)
    points = torch.rand(5, 2, generator=g)
    cost = embedding.grid_cost(points, (2, 3))
    best = min(sum(cost[i, p[i]].item() for i in range(5)) for p in permutations(range(6), 5))
    cells = embedding.grid_layout(points, shape=(2, 3))
    got = sum(cost[i, r * 3 + c].item() for i, (r, c) in enumerate(cells.tolist()))
    assert got == pytest.approx(best)


def test_linear_probe_separable_vs_random():
    x, y = blobs(100, d=20)
    assert embedding.linear_probe(x, y) == 1.0
    g = torch.Generator().manual_seed(0)
    noise, labels = torch.randn(1000, 20, generator=g), torch.randint(0, 5, (1000,), generator=g)
    assert abs(embedding.linear_probe(noise, labels) - 0.2) < 0.07


def test_multi_crops_counts_and_content():
    image = np.zeros((40, 60, 3), np.float32)
    image[:, :30, 0] = 1.0  # left half red
    crops = embedding.multi_crops(image, scales=(1.0, 0.5), size=16)
    assert crops.shape == (6, 3, 16, 16)
    # scale 0.5 → 20x20 crops; the top-left corner crop (index 2) lies in the red half
    assert crops[2, 0].min() > 0.99 and crops[2, 1:].max() < 0.01
    assert crops[3, 0].max() < 0.01  # top-right crop: no red
    assert crops.min() >= 0 and crops.max() <= 1


def test_grid_agreement_by_hand():
    cells = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1], [3, 3]])  # (3, 3) has no neighbour
    labels = torch.tensor([0, 0, 1, 1, 0])
    # pairs: (0,0)-(0,1) same, (1,0)-(1,1) same, (0,0)-(1,0) differ, (0,1)-(1,1) differ
    assert embedding.grid_agreement(cells, labels) == 0.5
    with pytest.raises(ValueError, match="side-by-side"):
        embedding.grid_agreement(torch.tensor([[0, 0], [2, 2]]), torch.tensor([0, 1]))


def test_show_embeddings_draws_one_panel_per_embedding():
    import matplotlib
    matplotlib.use("Agg")
    x, y = blobs(10, d=2)
    fig = embedding.show_embeddings([(x, y, ["a", "b"], "1"), (x, y, ["red", "blue"], "2"), (x, y, ["a", "b"], "3")])
    drawn = [ax for ax in fig.axes if ax.axison]
    assert len(drawn) == 3 and drawn[1].collections[0].get_facecolor()[0][0] == 1.0  # red is red


def test_pca_keeps_a_plane_exactly_and_checks_dims():
    g = torch.Generator().manual_seed(0)
    plane = torch.rand(200, 2, generator=g)
    rotation = torch.linalg.qr(torch.randn(10, 10, generator=g)).Q[:, :2]
    points = embedding.pca(plane @ rotation.T)
    assert points.shape == (200, 2)
    # A rotated plane: PCA recovers it up to rotation, so every distance is kept.
    assert torch.allclose(torch.cdist(points, points), torch.cdist(plane, plane), atol=2e-3)
    assert embedding.trustworthiness(plane @ rotation.T, points) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="dims"):
        embedding.pca(plane, dims=3)

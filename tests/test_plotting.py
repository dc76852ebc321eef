import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.offsetbox import AnnotationBbox  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from cs231n_vis import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def map_images(fig):
    """The topmost image of every panel (the map, where a map lies over a photo), in grid order."""
    return [ax.images[-1] for ax in fig.axes if ax.images]


def colour_bar_labels(fig):
    """The labels of the figure's colour bars (vertical bars: y label, horizontal: x label)."""
    bars = [im.colorbar for im in map_images(fig) if im.colorbar is not None]
    return [bar.ax.get_ylabel() or bar.ax.get_xlabel() for bar in bars]


def rendered(image):
    """The RGBA colours an AxesImage gives its data, after drawing the figure."""
    image.figure.canvas.draw()
    return image.to_rgba(image.get_array())


def titles(fig):
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def test_titles_are_plain_ints_for_tensor_indices():
    acts = torch.rand(400, 4, 4)
    fig = plotting.show_activations(acts, channels=torch.tensor([356, 7]))
    assert titles(fig) == ["356", "7"]
    fig = plotting.show_filters(torch.randn(2, 3, 3, 3), indices=torch.tensor([12, 40]))
    assert titles(fig) == ["12", "40"]
    fig = plotting.show_images(torch.rand(2, 3, 4, 4), titles=torch.tensor([3, 5]))
    assert titles(fig) == ["3", "5"]
    fig = plotting.show_patches(torch.rand(2, 3, 8, 8), torch.tensor([[[0, 0, 4, 4]]]), index=torch.tensor([[1]]),
                                row_titles=torch.tensor([356]))
    assert "356" in [t.get_text() for ax in fig.axes for t in ax.texts]


def test_activations_share_one_scale_with_a_labelled_colour_bar():
    acts = torch.zeros(3, 5, 5)
    acts[0, 0, 0] = 4.0
    acts[1] = 0.5
    acts[2, 2, 2] = 1e-6
    fig = plotting.show_activations(acts)
    images = map_images(fig)
    assert [im.get_clim() for im in images] == [(0.0, 4.0)] * 3
    [label] = colour_bar_labels(fig)
    assert "activation" in label and plotting.ZERO_NAME in label
    other = plotting.show_activations(acts * 0.1, vmax=4.0)  # a second figure on the same scale
    assert map_images(other)[0].get_clim() == (0.0, 4.0)


def test_exact_zeros_render_in_the_zero_colour_and_tiny_values_do_not():
    acts = torch.zeros(1, 4, 4)
    acts[0, 0, 0] = 1.0
    acts[0, 1, 1] = 1e-6
    image = map_images(plotting.show_activations(acts))[0]
    colours = rendered(image)
    zero = to_rgba(plotting.ZERO_COLOR)
    assert np.allclose(colours[3, 3], zero)
    assert not np.allclose(colours[1, 1], zero)
    assert np.allclose(colours[1, 1], image.cmap(0.0), atol=0.01)  # the colour map's low end, not grey


def test_near_zero_filter_is_grey_and_normal_filters_reach_full_contrast():
    torch.manual_seed(0)
    bank = torch.randn(6, 3, 5, 5)
    bank[2] = 1e-8 * torch.randn(3, 5, 5)
    pictures = plotting.filter_images(bank)
    assert pictures.shape == (6, 5, 5, 3)
    assert np.abs(pictures[2] - 0.5).max() < 1e-6
    for i in (0, 1, 3, 4, 5):
        assert np.isclose(pictures[i].min(), 0.0) or np.isclose(pictures[i].max(), 1.0)
    # A weak but real filter (10% of the layer) still gets full contrast per filter ...
    bank[2] = 0.1 * bank[0]
    assert np.isclose(np.abs(plotting.filter_images(bank)[2] - 0.5).max(), 0.5)
    # ... and is drawn at its true strength on the layer's shared scale.
    shared = plotting.filter_images(bank, shared=True)
    assert np.abs(shared[2] - 0.5).max() < 0.5 * 0.1 * float(bank[0].abs().max() / bank.abs().max()) + 1e-6
    assert np.isclose(np.abs(shared - 0.5).max(), 0.5)


def test_deep_filters_share_a_symmetric_scale_with_a_weight_colour_bar():
    weight = torch.randn(3, 4, 3, 3)
    weight[1, 2, 0, 0] = -10.0
    fig = plotting.show_filters(weight)
    images = map_images(fig)
    assert len(images) == 12
    assert all(im.get_clim() == (-10.0, 10.0) for im in images)
    assert colour_bar_labels(fig) == ["weight"]


def test_overlay_shares_one_scale_upsamples_and_labels_its_units():
    images = torch.rand(3, 3, 32, 32)
    maps = torch.rand(3, 4, 4) * torch.tensor([1.0, 5.0, 0.1]).view(3, 1, 1)
    maps[0, 0, :] = 0.0
    fig = plotting.overlay_heatmaps(images, maps, units="probability")
    heat = map_images(fig)
    assert len(heat) == 3 and all(im.get_array().shape == (32, 32) for im in heat)
    assert all(im.get_clim() == (0.0, pytest.approx(float(maps.max()))) for im in heat)
    [label] = colour_bar_labels(fig)
    assert label == "probability"
    # Over a photo, exact zeros take the lowest colour like small values: upsampled for display,
    # a coarse map's zero cells would otherwise show as blocks of bare photo.
    assert rendered(heat[0])[0, 0, 3] > 0.0 and rendered(heat[0])[31, 31, 3] > 0.0
    marked = map_images(plotting.overlay_heatmaps(images, maps, units="probability", mark_zeros=True))
    assert rendered(marked[0])[0, 0, 3] == 0.0  # on request: uncoloured, the photo shows
    assert "exactly 0" in colour_bar_labels(marked[0].figure)[0]
    fig = plotting.overlay_heatmaps(images, maps, units="p", vmin=0.2, vmax=0.7)
    assert all(im.get_clim() == (0.2, 0.7) for im in map_images(fig))


def test_signed_overlay_is_centred_at_zero_on_the_diverging_map():
    maps = torch.tensor([[[-1.0, 0.5], [0.2, 0.0]], [[3.0, 0.0], [0.0, 1.0]]])
    heat = map_images(plotting.overlay_heatmaps(torch.rand(2, 3, 8, 8), maps, units="gradient"))
    assert all(im.get_clim() == (-3.0, 3.0) for im in heat)
    assert heat[0].cmap.name.startswith(plotting.DIVERGING_CMAP)


def test_panels_share_a_scale_per_column_with_one_colour_bar_each():
    small, large = torch.rand(3, 6, 6), 10 * torch.rand(3, 6, 6)
    small[2, 0, 0], large[2, 1, 1] = 1.5, 20.0  # each column's maximum lies in its last row
    fig = plotting.show_panels([("small", small), ("large", large)], images=torch.rand(3, 3, 6, 6),
                               units=["a", "b"])
    maps = [im for im in map_images(fig) if im.get_array().ndim == 2]
    by_column = {}
    for im in maps:
        by_column.setdefault(im.axes.get_subplotspec().colspan.start, []).append(im)
    assert sorted(by_column) == [1, 2] and all(len(col) == 3 for col in by_column.values())
    for column, top in ((1, small.max()), (2, large.max())):
        assert [im.get_clim() for im in by_column[column]] == [(0.0, pytest.approx(float(top)))] * 3
    assert [label.split(";")[0] for label in colour_bar_labels(fig)] == ["a", "b"]
    fig = plotting.show_panels([("small", small), ("large", large)], share="all", units="a")
    assert [im.get_clim() for im in map_images(fig)] == [(0.0, pytest.approx(float(large.max())))] * 6
    bars = {id(im.colorbar) for im in map_images(fig) if im.colorbar is not None}
    assert len(bars) == 1 and colour_bar_labels(fig)[0].startswith("a")  # one scale, one colour bar
    with pytest.raises(ValueError, match="same number of rows"):
        plotting.show_panels([("a", small), ("b", small[:2])])


def test_crop_of_a_box_past_the_border_is_padded_and_has_the_box_size():
    image = np.random.default_rng(0).random((10, 12, 3)).astype(np.float32)
    patch = plotting.crop_box(image, (-3, -2, 4, 5))
    assert patch.shape == (7, 7, 3)
    assert np.array_equal(patch[2:, 3:], image[0:5, 0:4])
    assert np.all(patch[:2] == plotting.FILL) and np.all(patch[:, :3] == plotting.FILL)
    far = plotting.crop_box(torch.from_numpy(image).permute(2, 0, 1), (20, 20, 25, 23))
    assert far.shape == (3, 5, 3) and np.all(far == plotting.FILL)


def test_patch_grid_draws_each_box_and_its_crop():
    images = torch.rand(4, 3, 16, 16)
    boxes = torch.tensor([[[-4, -4, 6, 6], [8, 2, 12, 10]]])
    fig = plotting.show_patches(images, boxes, index=torch.tensor([[3, 1]]), scores=torch.tensor([[2.5, 1.0]]))
    rectangles = [p for ax in fig.axes for p in ax.patches if isinstance(p, Rectangle)]
    assert [(r.get_x(), r.get_y(), r.get_width(), r.get_height()) for r in rectangles] == \
        [(-4.5, -4.5, 10, 10), (7.5, 1.5, 4, 8)]
    crops = [ax.images[0].get_array() for ax in fig.axes if ax.images and not ax.patches]
    assert [c.shape for c in crops] == [(10, 10, 3), (8, 4, 3)]
    assert np.allclose(crops[1], images[1, :, 2:10, 8:12].permute(1, 2, 0).numpy())
    assert titles(fig) == ["2.5", "1"]


def test_mosaic_puts_image_k_at_its_cell():
    images = torch.arange(3, dtype=torch.float32).view(3, 1, 1, 1).expand(3, 3, 2, 4) / 4
    mosaic = plotting.grid_mosaic(images, torch.tensor([[1, 0], [0, 2], [1, 2]]))
    assert mosaic.shape == (2 * 2, 3 * 4, 3)
    for k, (r, c) in enumerate([(1, 0), (0, 2), (1, 2)]):
        assert np.all(mosaic[r * 2:(r + 1) * 2, c * 4:(c + 1) * 4] == k / 4)
    assert np.all(mosaic[0:2, 0:4] == 1.0)  # an empty cell
    with pytest.raises(ValueError, match="same cell"):
        plotting.grid_mosaic(images, [[0, 0], [0, 0], [1, 1]])
    assert plotting.show_mosaic(images, [[1, 0], [0, 2], [1, 2]]).axes[0].images[0].get_array().shape == (4, 12, 3)


def test_scatter_draws_one_thumbnail_at_each_point():
    coords = torch.tensor([[0.0, 1.0], [2.0, -1.0], [5.0, 3.0]])
    fig = plotting.scatter_thumbnails(coords, torch.rand(3, 3, 40, 60), labels=torch.tensor([0, 1, 0]), size=10)
    boxes = [a for a in fig.axes[0].artists if isinstance(a, AnnotationBbox)]
    assert [tuple(b.xy) for b in boxes] == [(0.0, 1.0), (2.0, -1.0), (5.0, 3.0)]
    assert boxes[0].offsetbox.get_data().shape == (10, 15, 3)


def test_figure_png_renders_and_closes():
    fig = plotting.show_images(torch.rand(1, 3, 4, 4))
    data = plotting.figure_png(fig)
    assert data.startswith(b"\x89PNG") and not plt.fignum_exists(fig.number)


def test_every_function_takes_tensors_that_require_grad():
    images = torch.rand(2, 3, 8, 8, requires_grad=True)
    maps = torch.rand(2, 4, 4, requires_grad=True)
    plotting.show_images(images)
    plotting.show_activations(maps[0].unsqueeze(0).expand(3, 4, 4))
    plotting.show_filters(torch.randn(4, 3, 3, 3, requires_grad=True))
    plotting.show_filters(torch.randn(2, 5, 3, 3, requires_grad=True))
    plotting.overlay_heatmaps(images, maps, units="u")
    plotting.show_panels([("m", maps), ("rgb", images)], images=images, overlay=True)
    plotting.show_patches(images, torch.tensor([[[0, 0, 4, 4]]]), index=torch.tensor([[0]]))
    plotting.crop_box(images[0], torch.tensor([1, 1, 3, 3]))
    plotting.scatter_thumbnails(maps[:, 0, :2], images, size=4)
    plotting.show_mosaic(images, torch.tensor([[0, 0], [0, 1]]))


def test_colormap_kinds():
    assert np.allclose(plotting.colormap("activation").get_bad(), to_rgba(plotting.ZERO_COLOR))
    assert plotting.colormap("heatmap", over_image=True).get_bad()[3] == 0.0
    with pytest.raises(ValueError, match="Unknown colour map kind"):
        plotting.colormap("rainbow")


def test_photos_are_stored_as_jpeg_and_plots_and_small_maps_as_png():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    assert plotting.figure_format(fig) == "png"
    ax.imshow(np.random.rand(8, 8, 3))  # a 7x7 filter-sized picture: sharp pixels, PNG
    assert plotting.figure_format(fig) == "png"
    ax.imshow(np.random.rand(64, 64))  # a map drawn with a colour map: PNG
    assert plotting.figure_format(fig) == "png"
    photo = plotting.show_images(torch.rand(2, 3, 64, 64))
    assert plotting.figure_format(photo) == "jpeg"
    assert plotting.figure_bytes(photo, "jpeg")[:2] == b"\xff\xd8"  # the JPEG start-of-image marker
    assert plotting.figure_bytes(fig, "png")[:8] == b"\x89PNG\r\n\x1a\n"
    assert plotting.use_compact_figures() is False  # not in IPython: nothing to register


def test_table_aligns_numbers_right_and_text_left():
    text = plotting.table([["gradient", 0.5, 3], ["IG", 0.25, 12]], ["method", "score", "n"],
                          formats=["{}", "{:.2f}", "{:d}"], title="Scores")
    assert text.splitlines() == ["Scores",
                                 "method    score   n",
                                 "--------  -----  --",
                                 "gradient   0.50   3",
                                 "IG         0.25  12"]
    assert plotting.plus_minus(0.714, 0.031) == "0.71 ± 0.03"
    with pytest.raises(ValueError, match="3 entries"):
        plotting.table([[1, 2]], ["a", "b", "c"])


def test_show_images_labels_each_row_and_skips_empty_titles():
    fig = plotting.show_images(torch.rand(4, 3, 4, 4), titles=["goldfish", "lemon", "", ""], ncols=2,
                               row_titles=["pixels", "Fourier"])
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["goldfish", "lemon", "", ""]
    assert [t.get_text() for t in axes[0].texts] == ["pixels"] and [t.get_text() for t in axes[2].texts] == ["Fourier"]
    assert not axes[1].texts and not axes[3].texts

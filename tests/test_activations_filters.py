import ipywidgets
import pytest
import torch
from torch import nn

from cs231n_vis.activations import dead_units, layer_activations, sparsity_report, zero_fraction
from cs231n_vis.filters import first_conv, roughness
from cs231n_vis.widgets import activation_explorer
from helpers import model_unchanged


def tiny_net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1), nn.ReLU())
    with torch.no_grad():
        net[0].bias[1] = -100.0  # channel 1 of layer "1" can never fire on inputs in [0, 1]
    net.layer_names = ["1", "3"]
    return net


def test_layer_activations_match_a_plain_forward_and_batching():
    net = tiny_net().train()
    x = torch.rand(5, 3, 8, 8)
    with model_unchanged(net):
        acts = layer_activations(net, x, ["1", "3"], batch_size=2)
    with torch.no_grad():
        torch.testing.assert_close(acts["1"], torch.relu(net[0](x)))
        torch.testing.assert_close(acts["3"], net(x))


def test_zero_fraction_and_dead_units_counted_by_hand():
    a = torch.zeros(2, 3, 2, 2)
    a[0, 0, 0, 0] = 1.0   # channel 0 fires once
    a[1, 2] = 2.0         # channel 2 fires everywhere in image 1
    assert zero_fraction(a) == pytest.approx(1 - 5 / 24)
    assert dead_units(a).tolist() == [False, True, False]


def test_sparsity_report_matches_a_hand_count():
    net = tiny_net()
    x = torch.rand(16, 3, 8, 8)
    with model_unchanged(net):
        report = sparsity_report(net, x, ["1"])
    with torch.no_grad():
        out = torch.relu(net[0](x))  # layer "1" computed without the package
    fires = (out > 0).flatten(1).sum()
    per_channel = [(out[:, c] > 0).any().item() for c in range(4)]
    assert report["1"]["channels"] == 4
    assert report["1"]["dead"] == per_channel.count(False) and per_channel[1] is False
    assert report["1"]["zero_fraction"] == pytest.approx(1 - fires.item() / out.numel())


def test_roughness_of_known_filters():
    torch.manual_seed(0)
    noise = torch.randn(2000, 1, 9, 9)
    ramp = torch.linspace(0, 1, 9).expand(9, 9).reshape(1, 1, 9, 9)
    checker = (torch.arange(9).view(9, 1) + torch.arange(9)).remainder(2).float().reshape(1, 1, 9, 9)
    assert roughness(noise).mean().item() == pytest.approx(1.0, abs=0.03)  # white noise → 1
    assert roughness(ramp).item() < 0.05                                   # smooth → near 0
    # checkerboard: neighbour differences all 1, unbiased variance p(1 - p) * 81/80 (p = 41/81 ones)
    p = 41 / 81
    assert roughness(checker).item() == pytest.approx(1 / (2 * p * (1 - p) * 81 / 80), rel=1e-5)
    assert torch.allclose(roughness(3 * noise[:10]), roughness(noise[:10]))  # scale-free


def test_first_conv():
    net = tiny_net()
    assert first_conv(net) is net[0]
    with pytest.raises(ValueError, match="no nn.Conv2d"):
        first_conv(nn.Linear(2, 2))


def test_activation_explorer_is_a_real_widget_and_leaves_the_model_alone():
    net = tiny_net()
    with model_unchanged(net):
        box = activation_explorer(net, torch.rand(1, 3, 8, 8))
    assert isinstance(box, ipywidgets.VBox)
    layer, channel = box.children[0].children
    label = box.children[1]
    assert layer.options == ("1", "3") and channel.max == 3
    layer.value = "3"  # moving the control updates the slider range and the text
    assert channel.max == 2 and label.value.startswith("3: (3, 8, 8)")
    assert bytes(box.children[2].value).startswith(b"\x89PNG")  # the feature map, drawn


# --- locality, channel choice, roughness on known filters, effective filters -----------------

from cs231n_vis.activations import mask_share, sparse_channels  # noqa: E402
from cs231n_vis.filters import effective_filters, synthetic_filters  # noqa: E402
from cs231n_vis.shapes import dilate  # noqa: E402


def test_mask_share_of_known_activations():
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[:, :4, :4] = True                       # the top-left quadrant: a quarter of the image
    inside = torch.zeros(2, 3, 2, 2)
    inside[:, 1, 0, 0] = 2.0                      # one coarse cell that covers exactly the quadrant
    assert mask_share(inside, masks) == pytest.approx(1.0)
    uniform = torch.ones(2, 5, 4, 4)              # spread evenly: the mask's area fraction
    assert mask_share(uniform, masks) == pytest.approx(0.25)
    outside = torch.zeros(2, 1, 2, 2)
    outside[:, 0, 1, 1] = 1.0
    assert mask_share(outside, masks) == pytest.approx(0.0)
    with pytest.raises(ValueError, match=r"\(N, C, h, w\)"):
        mask_share(uniform[0], masks)


def test_sparse_channels_keeps_active_but_sparse_ones_by_peak():
    a = torch.zeros(5, 2, 2)
    a[0] = 1.0                    # dense: zero fraction 0
    a[1, 0, 0] = 3.0              # zero fraction 0.75, peak 3
    a[2, 0, 0], a[2, 1, 1] = 1.0, 1.0   # zero fraction 0.5, peak 1
    a[3, 1, 0] = 5.0              # zero fraction 0.75, peak 5
    # channel 4 is silent: zero fraction 1
    assert sparse_channels(a, k=2) == [1, 3]
    assert sparse_channels(a, k=10) == [1, 2, 3]
    assert all(type(c) is int for c in sparse_channels(a))


def test_dilate_grows_a_pixel_into_a_square():
    m = torch.zeros(1, 7, 7, dtype=torch.bool)
    m[0, 3, 3] = True
    grown = dilate(m, 1)
    assert grown.sum() == 9 and grown[0, 2:5, 2:5].all()


def test_roughness_on_banks_with_known_answers():
    banks = synthetic_filters(n=300, size=7, seed=1)
    assert roughness(banks["white noise"]).mean().item() == pytest.approx(1.0, abs=0.05)
    assert roughness(banks["noise + offsets"]).mean().item() == pytest.approx(1.0, abs=0.05)
    assert roughness(banks["smooth ramp"]).max().item() < 0.15
    # ±a alternating on 7x7 (25 of one sign): unbiased variance a^2 (1 - 1/49^2) 49/48, differences 4a^2
    assert roughness(banks["checkerboard"]).mean().item() == pytest.approx(
        4 / (2 * (1 - 1 / 49**2) * 49 / 48), rel=1e-5)
    assert roughness(banks["all zero"]).isnan().all()


@pytest.mark.parametrize("size", [3, 7, 11])
def test_white_noise_scores_one_at_every_kernel_size(size):
    # The biased variance would give k^2 / (k^2 - 1): 1.125 at 3x3, 1.021 at 7x7, 1.008 at 11x11.
    # Tolerance: 4 standard errors of the mean over 4000 random filters (the per-filter spread,
    # measured on the sample itself: 0.15 at 3x3, 0.06 at 7x7, 0.04 at 11x11).
    noise = torch.randn(4000, 3, size, size, generator=torch.Generator().manual_seed(size))
    r = roughness(noise)
    standard_error = r.std().item() / len(r) ** 0.5
    assert r.mean().item() == pytest.approx(1.0, abs=4 * standard_error)
    biased = size**2 / (size**2 - 1)
    assert abs(biased - 1) > 4 * standard_error  # the test would catch the biased version


def test_roughness_of_a_ramp_by_hand():
    # columns 0, 1/6, ..., 1: horizontal differences (1/6)^2, vertical 0, so the mean over all
    # neighbour pairs is 1/72; the unbiased variance within each channel is 1/9 * 49/48:
    # roughness (1/72) / (2 * 49/432) = 3/49.
    ramp = torch.linspace(0, 1, 7).expand(7, 7).reshape(1, 1, 7, 7) + torch.tensor([0.0, 4.0, -1.0]).view(1, 3, 1, 1)
    assert roughness(ramp).item() == pytest.approx(3 / 49, rel=1e-5)


def test_effective_filter_is_the_linear_networks_filter():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU6(), nn.Conv2d(4, 2, 3, stride=2), nn.ReLU(inplace=True),
                        nn.Conv2d(2, 3, 3))
    linear = nn.Sequential(net[0], net[2], net[4])  # the same weights without the rectifiers
    with model_unchanged(net):
        eff = effective_filters(net, "4", size=32)
    # Receptive field by hand: 3 + (3 - 1) * 1 + (3 - 1) * 2 = 9 pixels. The output map is 12 x 12
    # (32 -> 30 -> 14 -> 12); its centre unit (6, 6) sees layer-2 rows 6..8, layer-1 rows 12..18,
    # input rows 12..20.
    assert eff.shape == (3, 3, 9, 9)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        out = linear(x) - linear(torch.zeros_like(x))  # the linear part, biases removed
    expected = out[0, :, 6, 6]
    torch.testing.assert_close((eff * x[0, :, 12:21, 12:21]).sum(dim=(1, 2, 3)), expected, rtol=1e-4, atol=1e-5)


def test_effective_filters_needs_an_input_larger_than_the_receptive_field():
    net = nn.Sequential(nn.Conv2d(3, 2, 5), nn.ReLU(), nn.Conv2d(2, 2, 5))
    with pytest.raises(ValueError, match="larger size"):
        effective_filters(net, "2", size=9)


def test_feeding_layer_is_the_rectifiers_input():
    from cs231n_vis.activations import feeding_layer

    net = tiny_net()
    assert feeding_layer(net, "1") == "0" and feeding_layer(net, "3") == "2"
    x = torch.rand(2, 3, 8, 8)
    pre = layer_activations(net, x, "0")["0"]
    torch.testing.assert_close(layer_activations(net, x, "1")["1"], pre.clamp_min(0))  # ReLU of its input
    with pytest.raises(ValueError, match="module before it"):
        feeding_layer(net, "0")


def test_ica_filters_unmix_what_the_basis_mixes():
    import numpy as np

    from cs231n_vis.filters import ica_filters

    rng = np.random.default_rng(0)
    photos = [rng.laplace(size=(40, 40, 3)).astype(np.float32) for _ in range(2)]  # sparse: ICA converges
    filters, basis = ica_filters(photos, n_filters=6, size=4, n_patches=2000, seed=0)
    assert filters.shape == basis.shape == (6, 3, 4, 4)
    # components_ @ mixing_ is the identity: filter i responds 1 to basis function i, 0 to the others
    torch.testing.assert_close(filters.flatten(1) @ basis.flatten(1).T, torch.eye(6), atol=1e-3, rtol=0)

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


def test_sparsity_report_finds_the_dead_channel():
    net = tiny_net()
    with model_unchanged(net):
        report = sparsity_report(net, torch.rand(16, 3, 8, 8), ["1"])
    assert report["1"]["dead"] >= 1 and report["1"]["channels"] == 4
    assert 0.25 <= report["1"]["zero_fraction"] <= 1


def test_roughness_of_known_filters():
    torch.manual_seed(0)
    noise = torch.randn(2000, 1, 9, 9)
    ramp = torch.linspace(0, 1, 9).expand(9, 9).reshape(1, 1, 9, 9)
    checker = (torch.arange(9).view(9, 1) + torch.arange(9)).remainder(2).float().reshape(1, 1, 9, 9)
    assert roughness(noise).mean().item() == pytest.approx(1.0, abs=0.03)  # white noise → 1
    assert roughness(ramp).item() < 0.05                                   # smooth → near 0
    assert roughness(checker).item() == pytest.approx(2.0, abs=0.05)       # checkerboard → 2
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

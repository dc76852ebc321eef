import pytest
import torch
from torch import nn

from cs231n_vis.hooks import frozen, get_layer, record
from helpers import _hook_count, model_unchanged


def conv_relu_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(4, 2, 1))


def test_activations_are_copies_taken_before_an_inplace_relu():
    net = conv_relu_net()
    x = torch.randn(2, 3, 8, 8)
    expected = net[0](x).detach()  # the conv output, computed by hand
    assert (expected < 0).any()
    with model_unchanged(net), record(net, "0") as rec:
        net(x)
    assert torch.equal(rec.activations["0"], expected)  # negatives survived the in-place ReLU


def test_gradients_match_autograd_through_an_inplace_relu():
    net = conv_relu_net().requires_grad_(False)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    with record(net, ["0", "1"], gradients=True) as rec:
        net(x).sum().backward()
    # d(sum(conv2(relu(z))))/dz = relu'(z) * sum_k w2[k, c]: computed here without hooks.
    z = net[0](x).detach()
    w2 = net[2].weight.sum(dim=0).view(1, 4, 1, 1)
    expected = (z > 0).float() * w2
    torch.testing.assert_close(rec.gradients["0"], expected)
    torch.testing.assert_close(rec.gradients["1"], w2.expand_as(z))


def test_no_hook_remains_even_when_the_block_raises():
    net = conv_relu_net()
    before = _hook_count(net)
    with pytest.raises(RuntimeError, match="boom"):
        with record(net, ["0", "2"], gradients=True):
            assert _hook_count(net) == before + 2
            raise RuntimeError("boom")
    assert _hook_count(net) == before


def test_keep_graph_records_a_differentiable_activation():
    net = conv_relu_net().requires_grad_(False)
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    with record(net, "0", keep_graph=True) as rec:
        net(x)
    rec.activations["0"].pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_unknown_layer_lists_the_closest_names():
    net = nn.Sequential()
    net.add_module("features", nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))
    with pytest.raises(KeyError, match=r"features\.1"):
        get_layer(net, "feature.1")
    with pytest.raises(KeyError, match="no layer named 'nope'"):
        with record(net, "nope"):
            pass
    assert _hook_count(net) == 0


def test_frozen_restores_every_flag_it_touched():
    net = conv_relu_net()
    net.train()
    net[2].eval()
    net[0].bias.requires_grad_(False)
    flags = [m.training for m in net.modules()], [p.requires_grad for p in net.parameters()]
    with frozen(net):
        assert not any(m.training for m in net.modules())
        assert not any(p.requires_grad for p in net.parameters())
    assert ([m.training for m in net.modules()], [p.requires_grad for p in net.parameters()]) == flags


def test_frozen_restores_flags_on_exception():
    net = conv_relu_net().train()
    with pytest.raises(ValueError):
        with frozen(net):
            raise ValueError
    assert net.training and all(p.requires_grad for p in net.parameters())


def test_model_unchanged_catches_each_kind_of_change():
    """The shared helper must fail for each change it promises to catch."""
    changes = [
        lambda n: n[0].weight.data.add_(1e-6),
        lambda n: n.eval(),
        lambda n: n[0].weight.requires_grad_(False),
        lambda n: n(torch.randn(1, 3, 4, 4)).sum().backward(),
        lambda n: n[0].register_forward_hook(lambda *a: None),
    ]
    for change in changes:
        net = conv_relu_net().train()
        with pytest.raises(AssertionError):
            with model_unchanged(net):
                change(net)

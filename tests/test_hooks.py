import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cs231n_vis.hooks import frozen, get_layer, layer_list, override_rectifiers, record
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
            assert _hook_count(net) == before + 3  # one per layer, one on the model (new pass)
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


def test_model_unchanged_catches_tensor_hooks_left_on_parameters():
    changes = [
        lambda n: n[0].weight.register_hook(lambda grad: grad),
        lambda n: n[2].bias.register_post_accumulate_grad_hook(lambda param: None),
    ]
    for change in changes:
        net = conv_relu_net()
        with pytest.raises(AssertionError, match="hook"):
            with model_unchanged(net):
                change(net)


# --- layer names -------------------------------------------------------------

def test_layer_list_accepts_one_name_or_several():
    assert layer_list("features.3") == ["features.3"]
    assert layer_list(("a", "b")) == ["a", "b"]
    assert layer_list(name for name in ["a", "b"]) == ["a", "b"]


def test_layer_list_refuses_modules_and_empty_lists():
    net = conv_relu_net()
    with pytest.raises(TypeError, match="by name"):
        layer_list(net[0])
    with pytest.raises(TypeError, match="by name"):
        layer_list(net)  # a Sequential iterates over its modules
    with pytest.raises(TypeError, match="got int"):
        layer_list([0])
    with pytest.raises(ValueError, match="No layer names"):
        layer_list([])
    with pytest.raises(TypeError, match="by name"):
        with record(net, net[0]):
            pass
    assert _hook_count(net) == 0


# --- a layer called more than once in one forward pass ----------------------

class CalledTwice(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(3, 3)

    def forward(self, x):
        return self.lin(self.lin(x))


def test_a_layer_called_twice_records_its_last_call_on_a_tiny_module():
    net = CalledTwice().requires_grad_(False)
    x = torch.randn(4, 3, requires_grad=True)
    w = torch.randn(4, 3)
    with model_unchanged(net), record(net, "lin", gradients=True) as rec:
        net(x)  # a first forward pass: the counts start again at the next one
        out = net(x)
        (out * w).sum().backward()
    first = net.lin(x).detach()
    # loss = sum(w * lin(first)): d/d(second output) = w, d/d(first output) = w @ W.
    assert rec.calls["lin"] == 2
    torch.testing.assert_close(rec.activations["lin"], net.lin(first).detach())
    torch.testing.assert_close(rec.gradients["lin"], w)
    assert not torch.allclose(w @ net.lin.weight.detach(), w)  # the first call's gradient differs


def test_a_relu_called_twice_in_resnet18_records_the_same_call_for_activation_and_gradient():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval().requires_grad_(False)
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    with model_unchanged(model), record(model, "layer4.1.relu", gradients=True) as rec:
        model(x)[:, 7].sum().backward()

    # The same network by hand, without hooks: layer4[1] is relu(bn1(conv1(h))), then
    # relu(bn2(conv2(.)) + h) with the same nn.ReLU module called twice.
    m, block = model, model.layer4[1]
    h = m.maxpool(F.relu(m.bn1(m.conv1(x))))
    h = m.layer4[0](m.layer3(m.layer2(m.layer1(h))))
    first = F.relu(block.bn1(block.conv1(h)))
    second = F.relu(block.bn2(block.conv2(first)) + h)
    score = m.fc(torch.flatten(m.avgpool(second), 1))[:, 7].sum()
    grad_second, grad_first = torch.autograd.grad(score, [second, first])

    assert rec.calls["layer4.1.relu"] == 2
    torch.testing.assert_close(rec.activations["layer4.1.relu"], second.detach())
    torch.testing.assert_close(rec.gradients["layer4.1.relu"], grad_second)
    assert grad_first.shape == grad_second.shape and not torch.allclose(grad_first, grad_second)


# --- clear errors instead of silently missing gradients ---------------------

def test_gradients_of_an_output_that_does_not_require_grad_raise_at_forward_time():
    net = conv_relu_net().requires_grad_(False)
    x = torch.randn(1, 3, 8, 8)
    with model_unchanged(net):
        with pytest.raises(RuntimeError, match=r"'0' does not require grad.*requires_grad_\(True\)"):
            with record(net, "0", gradients=True):
                net(x)
        with pytest.raises(RuntimeError, match=r"'0'.*under torch.no_grad\(\).*do not run"):
            with record(net, "0", gradients=True), torch.no_grad():
                net(x.requires_grad_(True))


def test_missing_recordings_say_why_they_are_missing():
    net = conv_relu_net().requires_grad_(False)
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    with record(net, "0", gradients=True) as rec:
        with pytest.raises(KeyError, match=r"'2' is not being recorded.*\['0'\]"):
            rec.activations["2"]
        with pytest.raises(KeyError, match="did not run"):
            rec.activations["0"]
        with pytest.raises(KeyError, match="did not run"):
            rec.gradients["0"]
        net(x)
        with pytest.raises(KeyError, match=r"call backward\(\)"):
            rec.gradients["0"]
    with record(net, "0") as rec:
        net(x)
        with pytest.raises(KeyError, match="gradients=True"):
            rec.gradients["0"]


# --- guided backprop and DeconvNet ------------------------------------------

def rectifier_net():
    """Conv → ReLU(inplace) → Conv → ReLU6 → Linear, large enough weights to pass 6."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 4, 3), nn.ReLU6(),
                        nn.Flatten(), nn.Linear(64, 5))
    with torch.no_grad():
        for conv in (net[0], net[2]):
            conv.weight.normal_()
    return net


def by_hand(net, x, target, rule):
    """The input gradient of net's target scores, back-propagated layer by layer by hand.

    A convolution's backward is the transposed convolution with the same weights;
    each rectifier passes grad_out by ``rule``: guided → relu(grad_out) where the
    forward let x through (0 < x, and x < 6 for ReLU6); deconv → relu(grad_out);
    linear → grad_out unchanged.
    """
    def rectifier_backward(grad, z, upper=None):
        if rule == "linear":
            return grad
        if rule == "plain":
            passes = (z > 0) & (z < upper) if upper else z > 0
            return grad * passes
        positive = grad.clamp(min=0)
        if rule == "deconv":
            return positive
        passes = (z > 0) & (z < upper) if upper else z > 0
        return positive * passes

    with torch.no_grad():
        z1 = net[0](x)
        z2 = net[2](z1.clamp(min=0))
        grad_a2 = net[5].weight[target].view(-1, 4, 4, 4)  # d score / d flattened relu6 output
        grad_z2 = rectifier_backward(grad_a2, z2, upper=6)
        grad_z1 = rectifier_backward(F.conv_transpose2d(grad_z2, net[2].weight), z1)
        return F.conv_transpose2d(grad_z1, net[0].weight), z2, grad_a2


def input_grad(net, x, target):
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(net(x)[torch.arange(len(x)), target].sum(), x)
    return grad


@pytest.mark.parametrize("rule", ["guided", "deconv", "linear"])
def test_override_rectifiers_matches_a_hand_computation(rule):
    net = rectifier_net()
    x = torch.rand(2, 3, 8, 8)
    target = torch.tensor([1, 3])
    expected, z2, grad_a2 = by_hand(net, x, target, rule)
    # The example exercises every case: ReLU6 inputs below 0 and above 6, and
    # positive and negative gradients there.
    assert (z2 < 0).any() and ((z2 > 6) & (grad_a2 > 0)).any() and (grad_a2 < 0).any()
    plain = input_grad(net, x, target)
    torch.testing.assert_close(plain, by_hand(net, x, target, "plain")[0])  # the hand backward is right

    with model_unchanged(net):
        with override_rectifiers(net, rule):
            torch.testing.assert_close(net(x), net(x.clone()))
            got = input_grad(net, x, target)
            forward = net(x)
        assert torch.equal(forward, net(x))  # forward values unchanged
        torch.testing.assert_close(input_grad(net, x, target), plain)  # plain again after the block
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, plain)


def test_override_keeps_the_inplace_side_effect_of_an_inplace_relu():
    relu = nn.ReLU(inplace=True)
    x = torch.randn(10, requires_grad=True)
    with override_rectifiers(relu, "guided"):
        y = x * 1
        out = relu(y)
    assert out is y and (y >= 0).all() and (y > 0).any()


def test_guided_gradient_differs_from_the_plain_gradient_on_lite0_with_relu6():
    from cs231n_vis.attribution import input_gradient
    from cs231n_vis.images import sample_images, to_tensor
    from cs231n_vis.models import load_model

    model = load_model("efficientnet_lite0")
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())  # ReLU6 only
    x = to_tensor([sample_images(["chelsea"])[0].image], size=224)
    layer = "net.head.bn"  # the input of the last ReLU6
    with model_unchanged(model):
        with record(model, layer, gradients=True) as rec:
            plain = input_gradient(model, x)
        plain_at_layer = rec.gradients[layer]
        with override_rectifiers(model, "guided"), record(model, layer, gradients=True) as rec:
            guided = input_gradient(model, x)
    z, grad = rec.activations[layer], rec.gradients[layer]
    # Guided backprop passes only positive gradients, and only where 0 < z < 6.
    assert (plain_at_layer < 0).any()
    assert (grad >= 0).all() and (grad > 0).any()
    assert (grad[(z <= 0) | (z >= 6)] == 0).all() and (z >= 6).any()
    assert guided.shape == plain.shape == x.shape
    assert not torch.allclose(guided, plain)


class FunctionalRelu(nn.Module):
    def __init__(self, fn):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.relu, self.fn = nn.Conv2d(3, 4, 3), nn.ReLU(), fn

    def forward(self, x):
        return self.fn(self.relu(self.conv(x)) - 0.1).sum(dim=(2, 3))


@pytest.mark.parametrize("fn", [F.relu, torch.relu, lambda x: x.relu(), F.relu6, F.hardtanh,
                                lambda x: F.relu(x, inplace=True), lambda x: x.relu_()],
                         ids=["F.relu", "torch.relu", "Tensor.relu", "F.relu6", "F.hardtanh",
                              "F.relu_inplace", "Tensor.relu_"])
def test_override_refuses_functional_rectifiers(fn):
    net = FunctionalRelu(fn)
    x = torch.rand(1, 3, 6, 6)
    with model_unchanged(net):
        with pytest.raises(RuntimeError, match="as a function.*nn.ReLU"):
            with override_rectifiers(net, "guided"):
                net(x)
    net(x)  # the refusal ends with the block


def test_override_refuses_a_model_without_rectifiers_and_unknown_rules():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh())
    with pytest.raises(ValueError, match="no nn.ReLU or nn.ReLU6"):
        with override_rectifiers(net, "guided"):
            pass
    with pytest.raises(ValueError, match="Unknown rule 'guidedd'"):
        with override_rectifiers(rectifier_net(), "guidedd"):
            pass


def test_override_restores_every_rectifier_when_the_block_raises():
    net = rectifier_net()
    x = torch.rand(1, 3, 8, 8)
    plain = input_grad(net, x, torch.tensor([2]))
    before = _hook_count(net)
    rectifiers = [m for m in net.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))]
    with model_unchanged(net):
        with pytest.raises(RuntimeError, match="boom"):
            with override_rectifiers(net, "deconv"):
                assert all("forward" in vars(m) for m in rectifiers)  # each module's forward replaced
                assert _hook_count(net) == before                   # and no hook added
                net(x)
                raise RuntimeError("boom")
    assert not any("forward" in vars(m) for m in rectifiers) and _hook_count(net) == before
    torch.testing.assert_close(input_grad(net, x, torch.tensor([2])), plain)
    F.relu(x)  # no functional-rectifier refusal left behind

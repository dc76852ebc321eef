"""cam: CAM, Grad-CAM, Guided Grad-CAM against hand computations, Captum and pytorch-grad-cam."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cs231n_vis import cam, shapes
from helpers import model_unchanged


class TinyGAP(nn.Module):
    """conv → ReLU → conv → ReLU (the CAM layer, 5 channels) → GAP → linear: the CAM architecture."""

    cam_layer, classifier = "relu2", "fc"

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv1, self.relu1 = nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()
        self.conv2, self.relu2 = nn.Conv2d(4, 5, 3, stride=2, padding=1), nn.ReLU()
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(5, 3)

    def features(self, x):
        return self.relu2(self.conv2(self.relu1(self.conv1(x))))

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


class TinyMLPHead(nn.Module):
    """conv → ReLU → flatten → linear → ReLU → linear: gradients differ from position to position."""

    cam_layer, classifier = "relu", "fc2"

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv, self.relu = nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU()
        self.fc1, self.act, self.fc2 = nn.Linear(4 * 4 * 4, 6), nn.ReLU(), nn.Linear(6, 3)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(self.relu(self.conv(x)).flatten(1))))


def rand_images(n, size=8, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def hand_grad_cam(activation_fn, head_fn, x, target):
    """Grad-CAM written out: A = activation_fn(x); alpha = mean of d head_fn(A)[target] / dA."""
    a = activation_fn(x).detach().requires_grad_(True)
    score = head_fn(a)[torch.arange(len(x)), target].sum()
    (g,) = torch.autograd.grad(score, a)
    alpha = g.mean(dim=(2, 3))
    return torch.relu((alpha[:, :, None, None] * a.detach()).sum(1))


# ----------------------------------------------------------------------------- CAM vs Grad-CAM

def test_cam_is_the_classifier_weights_times_the_activations_and_averages_to_the_logit():
    net = TinyGAP().train()  # train mode and trainable parameters: flags must come back
    x = rand_images(4)
    with model_unchanged(net):
        maps = cam.cam(net, x, 2)
    with torch.no_grad():
        a = net.features(x)
        expected = sum(net.fc.weight[2, k] * a[:, k] for k in range(5))
        logits = net(x)
    assert maps.shape == (4, 4, 4) and not maps.requires_grad
    torch.testing.assert_close(maps, expected)
    # The map's spatial mean plus the bias is the class's logit (Zhou et al., eq. 1-2).
    torch.testing.assert_close(maps.mean((1, 2)) + net.fc.bias[2].detach(), logits[:, 2])


@pytest.mark.parametrize("model", ["tiny", "shapes_cnn"])
def test_grad_cam_equals_relu_of_cam_over_the_number_of_positions(model):
    # GAP + linear: y_c = sum_k W_ck mean_ij A_k(ij) + b_c, so dy_c/dA_k(ij) = W_ck / (h w) everywhere,
    # Grad-CAM's weights are W_ck / (h w), and relu is positively homogeneous:
    # grad_cam = relu(sum_k W_ck A_k / (h w)) = relu(cam) / (h w). The bias drops out of both.
    net = TinyGAP() if model == "tiny" else shapes.load_shapes_cnn()
    x = rand_images(3, 8 if model == "tiny" else 64, seed=1)
    with model_unchanged(net):
        c = cam.cam(net, x)
        g = cam.grad_cam(net, x)
    h, w = c.shape[1:]
    assert (c < 0).any(), "a test of the ReLU needs negative CAM values"
    torch.testing.assert_close(g, c.clamp(min=0) / (h * w), rtol=1e-5, atol=1e-6 * float(g.abs().max()))


# ----------------------------------------------------------------------------- Grad-CAM by hand

def test_grad_cam_equals_a_hand_computation_when_gradients_vary_by_position():
    net = TinyMLPHead()
    x = rand_images(5, seed=2)
    target = torch.tensor([0, 1, 2, 1, 0])
    with model_unchanged(net):
        got = cam.grad_cam(net, x, target)
    expected = hand_grad_cam(lambda z: net.relu(net.conv(z)),
                             lambda a: net.fc2(net.act(net.fc1(a.flatten(1)))), x, target)
    assert got.shape == (5, 4, 4) and (got >= 0).all() and (got > 0).any()
    torch.testing.assert_close(got, expected)


def test_grad_cam_at_an_early_layer_and_the_predicted_class_by_default():
    net = TinyGAP()
    x = rand_images(4, seed=3)
    with torch.no_grad():
        predicted = net(x).argmax(1)
    with model_unchanged(net):
        got = cam.grad_cam(net, x, layer="relu1")
    expected = hand_grad_cam(lambda z: net.relu1(net.conv1(z)),
                             lambda a: net.fc(net.pool(net.relu2(net.conv2(a))).flatten(1)), x, predicted)
    assert got.shape == (4, 8, 8)
    torch.testing.assert_close(got, expected)


def test_batching_and_targets():
    net = TinyMLPHead()
    x = rand_images(5, seed=4)
    whole = cam.grad_cam(net, x, 1, batch_size=8)
    torch.testing.assert_close(cam.grad_cam(net, x, 1, batch_size=2), whole)
    torch.testing.assert_close(cam.grad_cam(net, x, [1] * 5, batch_size=3), whole)
    torch.testing.assert_close(cam.grad_cam(net, x[3:4], 1)[0], whole[3])


def test_grad_cam_agrees_with_captum():
    captum = pytest.importorskip("captum.attr")
    net = TinyGAP()
    x = rand_images(3, seed=5)
    theirs = captum.LayerGradCam(net, net.conv1).attribute(x, target=1, relu_attributions=True)
    # Captum's layer is the conv; ours the ReLU after it: the same map wherever the ReLU passes,
    # so compare at the conv layer itself.
    torch.testing.assert_close(cam.grad_cam(net, x, 1, layer="conv1"), theirs[:, 0])
    ours = cam.grad_cam(net, x, 1)
    theirs = captum.LayerGradCam(net, net.relu2).attribute(x, target=1, relu_attributions=True)
    torch.testing.assert_close(ours, theirs[:, 0])


# ----------------------------------------------------------------------------- pytorch-grad-cam

def _their_grad_cam(net, layer, x, target):
    pgc = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    net = copy.deepcopy(net).requires_grad_(True)  # it needs trainable parameters to record gradients
    with pgc.GradCAM(model=net, target_layers=[dict(net.named_modules())[layer]]) as explainer:
        out = explainer(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in target])
    return torch.from_numpy(out)


def _their_normalization(maps, size):
    # pytorch-grad-cam: relu, min-max per image, resize to the input (cv2, bilinear), min-max again.
    return cam.normalize(cam.upsample(cam.normalize(maps), size))


@pytest.mark.parametrize("layer", ["layer4", "layer3", "layer2.1.conv2"])
def test_grad_cam_matches_pytorch_grad_cam_on_resnet18(layer):
    torchvision = pytest.importorskip("torchvision")
    net = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    x = rand_images(2, 64, seed=6)
    target = torch.tensor([3, 7])
    with model_unchanged(net):
        ours = cam.grad_cam(net, x, target, layer=layer)
    theirs = _their_grad_cam(net, layer, x, target)
    assert theirs.shape == (2, 64, 64)
    torch.testing.assert_close(_their_normalization(ours, (64, 64)), theirs, rtol=0, atol=1e-5)


def test_in_place_relu_after_the_layer_ours_is_right_pytorch_grad_cam_is_not():
    # squeezenet1_1's features.0 is a conv followed by ReLU(inplace=True). Grad-CAM at the conv:
    # A = conv(x), the gradient with respect to A (before the ReLU).
    torchvision = pytest.importorskip("torchvision")
    net = torchvision.models.squeezenet1_1(weights=None, num_classes=10).eval()
    assert isinstance(net.features[1], nn.ReLU) and net.features[1].inplace
    x = rand_images(2, 64, seed=7)
    target = torch.tensor([2, 5])
    with model_unchanged(net):
        ours = cam.grad_cam(net, x, target, layer="features.0")
    conv, rest = net.features[0], nn.Sequential(*net.features[1:], net.classifier, nn.Flatten())
    expected = hand_grad_cam(conv, lambda a: rest(a.clone()), x, target)
    assert (expected > 0).any()
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6 * float(expected.max()))
    # pytorch-grad-cam keeps its recorded activation by reference (.cpu() is no copy on the CPU),
    # so the in-place ReLU overwrites it: it weights relu(A) instead of A.
    theirs = _their_grad_cam(net, "features.0", x, target)
    alpha = _alpha(conv, rest, x, target)  # the right channel weights ...
    wrong = torch.relu((alpha[:, :, None, None] * conv(x).detach().clamp(min=0)).sum(1))  # ... times relu(A)
    size = (64, 64)
    torch.testing.assert_close(theirs, _their_normalization(wrong, size), rtol=0, atol=1e-5)
    assert (theirs - _their_normalization(ours, size)).abs().max() > 0.1


def _alpha(conv, rest, x, target):
    a = conv(x).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(rest(a.clone())[torch.arange(len(x)), target].sum(), a)
    return g.mean(dim=(2, 3))


# ----------------------------------------------------------------------------- Guided Grad-CAM

class _GuidedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad.clamp(min=0) * (x > 0)


def test_guided_grad_cam_is_guided_backprop_times_upsampled_grad_cam():
    pytest.importorskip("cs231n_vis.saliency")
    net = TinyGAP()
    x = rand_images(3, seed=8)
    target = torch.tensor([0, 2, 1])
    with model_unchanged(net):
        got = cam.guided_grad_cam(net, x, target)
    # Guided backprop written out: the same network with the guided ReLU.
    z = x.clone().requires_grad_(True)
    h = _GuidedReLU.apply(net.conv2(_GuidedReLU.apply(net.conv1(z))))
    score = net.fc(net.pool(h).flatten(1))[torch.arange(3), target].sum()
    (guided,) = torch.autograd.grad(score, z)
    coarse = hand_grad_cam(net.features, lambda a: net.fc(net.pool(a).flatten(1)), x, target)
    expected = guided * F.interpolate(coarse[:, None], size=(8, 8), mode="bilinear", align_corners=False)
    assert got.shape == (3, 3, 8, 8)
    torch.testing.assert_close(got, expected)


# ----------------------------------------------------------------------------- upsample, normalize

def test_upsample_and_normalize():
    maps = torch.tensor([[[0.0, 2.0], [4.0, 6.0]], [[3.0, 3.0], [3.0, 3.0]]])
    up = cam.upsample(maps, 4)
    assert up.shape == (2, 4, 4)
    assert up[0, 0, 0] == 0 and up[0, 3, 3] == 6  # corners replicate (align_corners=False)
    torch.testing.assert_close(up[0, 0, 1], torch.tensor(0.5))  # a quarter of the way to 2
    assert torch.equal(up[1], torch.full((4, 4), 3.0))
    n = cam.normalize(maps)
    torch.testing.assert_close(n[0], torch.tensor([[0.0, 1 / 3], [2 / 3, 1.0]]))
    assert torch.equal(n[1], torch.zeros(2, 2))  # a constant map: zeros, not NaN
    with pytest.raises(ValueError, match="maps"):
        cam.upsample(maps[0], 4)
    with pytest.raises(ValueError, match="size"):
        cam.upsample(maps, (4, 0))


# ----------------------------------------------------------------------------- errors and model state

def test_nothing_is_left_on_the_model_when_a_method_raises():
    net = TinyGAP().train()
    x = rand_images(2)
    with model_unchanged(net):
        with pytest.raises(ValueError, match="outside 0..2"):
            cam.grad_cam(net, x, 7)
        with pytest.raises(ValueError, match="outside 0..2"):
            cam.cam(net, x, 7)
        with pytest.raises(ValueError, match="feature map"):
            cam.grad_cam(net, x, layer="fc")


def test_cam_refuses_models_without_gap_and_a_linear_classifier():
    x = rand_images(2)
    with pytest.raises(ValueError, match="grad_cam"):  # an MLP head: 64 inputs, 4 channels
        cam.cam(TinyMLPHead(), x, 0, classifier="fc2")
    squeeze_like = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 3, 1), nn.AdaptiveAvgPool2d(1),
                                 nn.Flatten())
    with pytest.raises(ValueError, match="Conv2d"):
        cam.cam(squeeze_like, x, 0, layer="1", classifier="2")
    # The right sizes but something in between: GAP → ReLU-free but scaled features.
    net = TinyGAP()
    net.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Hardtanh(0, 0.05))
    with pytest.raises(ValueError, match="differs from the logits"):
        cam.cam(net, x, 0)


def test_bad_arguments_are_refused_with_clear_messages():
    net = TinyGAP()
    with pytest.raises(ValueError, match="images"):
        cam.grad_cam(net, rand_images(1) * 255)
    with pytest.raises(ValueError, match="3 channels"):
        cam.cam(net, torch.rand(1, 1, 8, 8))
    with pytest.raises(KeyError, match="Did you mean"):
        cam.grad_cam(net, rand_images(1), layer="relu3")
    with pytest.raises(TypeError, match="layer"):
        cam.grad_cam(net, rand_images(1), layer=net.relu1)
    plain = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(ValueError, match="cam_layer"):
        cam.grad_cam(plain, rand_images(1))
    with pytest.raises(ValueError, match="classifier"):
        cam.cam(plain, rand_images(1), layer="1")
    with pytest.raises(ValueError, match="batch_size"):
        cam.grad_cam(net, rand_images(1), batch_size=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_device_follows_the_input():
    net = TinyGAP().cuda()
    x = rand_images(2).cuda()
    assert cam.grad_cam(net, x).device.type == "cuda"
    torch.testing.assert_close(cam.cam(net, x).cpu(), cam.cam(net.cpu(), x.cpu()))


class _NoBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        raise AssertionError("the backward pass reached the layers before the Grad-CAM layer")


class _Guard(nn.Module):
    def forward(self, x):
        return _NoBackward.apply(x)


def test_the_backward_pass_stops_at_the_layer_and_the_input_needs_no_gradient():
    net = TinyMLPHead()
    guarded = nn.Sequential(_Guard(), net)
    guarded.cam_layer = "1.relu"
    x = rand_images(2, seed=9).requires_grad_(True)  # even an input that requires grad is cut off
    x.grad = None
    with model_unchanged(guarded):
        got = cam.grad_cam(guarded, x, 1)
    assert x.grad is None
    torch.testing.assert_close(got, cam.grad_cam(net, x.detach(), 1, layer="relu"))


def test_record_stop_backward_needs_gradients_and_one_layer():
    from cs231n_vis import hooks

    net = TinyGAP()
    with pytest.raises(ValueError, match="one layer"):
        with hooks.record(net, ["relu1", "relu2"], gradients=True, stop_backward=True):
            pass
    with pytest.raises(ValueError, match="gradients=True"):
        with hooks.record(net, "relu1", stop_backward=True):
            pass
    with model_unchanged(net), pytest.raises(RuntimeError, match="no_grad"):
        with hooks.record(net, "relu1", gradients=True, stop_backward=True), torch.no_grad():
            net(rand_images(1))

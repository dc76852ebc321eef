import copy
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from cs231n_vis import attribution
from cs231n_vis.attribution import batched, check_images, input_gradient, resolve_target
from helpers import model_unchanged


def tiny_classifier():
    """5 classes; BatchNorm in training mode, so a technique that forgets eval mode differs."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 5)).train()


def plain_gradient(model, images, target):
    """d(sum of the target logits)/d(images) by plain autograd on an eval-mode copy."""
    reference = copy.deepcopy(model).eval()
    x = images.contiguous(memory_format=torch.channels_last).requires_grad_(True)  # input_gradient's layout
    logits = reference(x)
    (grad,) = torch.autograd.grad(logits[torch.arange(len(x)), target].sum(), x)
    return grad, logits.argmax(dim=1)


def test_input_gradient_equals_plain_autograd_on_a_tiny_model():
    net = tiny_classifier()
    images = torch.rand(4, 3, 8, 8)
    target = torch.tensor([0, 4, 2, 2])
    expected, predicted = plain_gradient(net, images, target)
    with model_unchanged(net):
        got = input_gradient(net, images, target)
        got_predicted = input_gradient(net, images)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(got_predicted, plain_gradient(net, images, predicted)[0])
    assert got.shape == images.shape and got.device == images.device


def test_each_image_gets_the_gradient_of_its_own_score():
    net = tiny_classifier()
    images = torch.rand(3, 3, 8, 8)
    with model_unchanged(net):
        together = input_gradient(net, images, [1, 2, 3])
        alone = [input_gradient(net, images[i:i + 1], c) for i, c in enumerate([1, 2, 3])]
    torch.testing.assert_close(together, torch.cat(alone))


def test_input_gradient_leaves_no_grad_on_images_that_require_grad():
    net = tiny_classifier()
    images = torch.rand(2, 3, 8, 8, requires_grad=True)
    with model_unchanged(net), torch.no_grad():  # also under the caller's no_grad
        got = input_gradient(net, images, 1)
    assert images.grad is None and not got.requires_grad
    torch.testing.assert_close(got, plain_gradient(net, images.detach(), torch.tensor([1, 1]))[0])


def test_input_gradient_on_lite0_with_two_photos():
    from cs231n_vis.images import sample_images, to_tensor
    from cs231n_vis.models import load_model

    model = load_model("efficientnet_lite0")
    photos = sample_images(["chelsea", "coffee"])
    images = to_tensor([p.image for p in photos], size=224)
    expected = {}
    for layout in (torch.channels_last, torch.contiguous_format):
        x = images.contiguous(memory_format=layout).requires_grad_(True)
        logits = model(x)
        (expected[layout],) = torch.autograd.grad(logits[torch.arange(2), logits.argmax(dim=1)].sum(), x)
    with model_unchanged(model):
        got = input_gradient(model, images)
    torch.testing.assert_close(got, expected[torch.channels_last])  # the layout it uses: same arithmetic
    assert got.is_contiguous() and expected[torch.channels_last].abs().sum() > 0
    # The default layout rounds differently. Against float64, each layout's gradient of lite0 missed
    # by up to 3e-3 of the maximum (random images, 224 x 224), so they may differ by twice that.
    plain = expected[torch.contiguous_format]
    torch.testing.assert_close(got, plain, rtol=0, atol=6e-3 * plain.abs().max().item())


@pytest.mark.parametrize("bad, error, message", [
    (torch.rand(3, 8, 8), ValueError, r"shape \(3, 8, 8\).*x\[None\]"),
    ((torch.rand(1, 3, 8, 8) * 255).to(torch.uint8), TypeError, r"torch.uint8.*divide by 255"),
    (torch.rand(1, 3, 8, 8) * 2, ValueError, r"values in \[0, 1\].*Pixels in 0..255: divide by 255"),
    (torch.rand(1, 3, 8, 8) - 0.5, ValueError, r"values in \[0, 1\]"),
    (torch.rand(1, 1, 8, 8), ValueError, r"3 channels.*\(1, 1, 8, 8\).*expand"),
    (torch.rand(1, 8, 8, 3), ValueError, r"3 channels.*permute\(0, 3, 1, 2\)"),
    (np.random.rand(1, 3, 8, 8), TypeError, r"torch.Tensor.*got ndarray.*to_tensor"),
    (torch.full((1, 3, 8, 8), float("nan")), ValueError, "NaN"),
    (torch.rand(0, 3, 8, 8), ValueError, "empty batch"),
])
def test_check_images_says_what_it_got_and_what_to_do(bad, error, message):
    with pytest.raises(error, match=r"^images .*" + message):
        check_images(bad)
    with pytest.raises(error, match=r"^x0 "):
        check_images(bad, name="x0")
    net = tiny_classifier()
    with model_unchanged(net), pytest.raises(error, match=message):
        input_gradient(net, bad)


def test_check_images_accepts_a_batch_in_the_unit_range():
    images = torch.rand(2, 3, 5, 7)
    images[0, 0, 0, 0], images[1, 2, 4, 6] = 0.0, 1.0
    assert check_images(images) is images


def test_resolve_target_forms():
    net = tiny_classifier()
    images = torch.rand(3, 3, 8, 8)
    with model_unchanged(net):
        predicted = resolve_target(net, images, None)
        assert torch.equal(resolve_target(net, images, 4), torch.tensor([4, 4, 4]))
        assert torch.equal(resolve_target(net, images, [0, 1, 2]), torch.tensor([0, 1, 2]))
        assert torch.equal(resolve_target(net, images, np.array([2, 2, 0])), torch.tensor([2, 2, 0]))
        assert torch.equal(resolve_target(net, images, torch.tensor(3)), torch.tensor([3, 3, 3]))
    assert torch.equal(predicted, plain_gradient(net, images, torch.zeros(3, dtype=torch.long))[1])
    assert predicted.dtype == torch.long and predicted.device == images.device


@pytest.mark.parametrize("target, error, message", [
    (5, ValueError, r"outside 0..4 .*5 classes.*\[5, 5\]"),
    (-1, ValueError, r"outside 0..4"),
    ([0, 7], ValueError, r"outside 0..4.*\[7\]"),
    ([0, 1, 2], ValueError, r"one class per image: 2.*\(3,\)"),
    (torch.tensor([[0, 1]]), ValueError, "one class per image"),
    (1.0, TypeError, "integers"),
    (True, TypeError, "bool"),
    ("cat", TypeError, "got str"),
])
def test_resolve_target_refuses_bad_targets(target, error, message):
    net = tiny_classifier()
    images = torch.rand(2, 3, 8, 8)
    with model_unchanged(net):
        with pytest.raises(error, match=message):
            resolve_target(net, images, target)
        with pytest.raises(error, match=message):
            input_gradient(net, images, target)


def test_resolve_target_uses_class_names_without_a_forward_pass():
    net = tiny_classifier()
    net.class_names = ["a", "b", "c"]  # fewer names than outputs: the names decide the range
    with pytest.raises(ValueError, match="outside 0..2"):
        resolve_target(net, torch.rand(1, 3, 8, 8), 3)


def test_batched_equals_unbatched():
    net = tiny_classifier()
    images = torch.rand(5, 3, 8, 8)
    target = [0, 1, 2, 3, 4]
    with model_unchanged(net):
        whole = input_gradient(net, images, target)
        for size in (1, 2, 8):
            got = batched(partial(input_gradient, net), images, target, batch_size=size, progress=False)
            torch.testing.assert_close(got, whole)
        got = batched(partial(input_gradient, net), images, None, batch_size=2, progress=False)
    torch.testing.assert_close(got, input_gradient(net, images))


def test_batched_splits_images_and_targets_in_chunks_of_eight_by_default():
    calls = []

    def fn(chunk, chunk_target):
        calls.append((len(chunk), chunk_target))
        return chunk[:, :1]

    images = torch.rand(10, 3, 2, 2)
    out = batched(fn, images, torch.arange(10), progress=False)
    assert torch.equal(out, images[:, :1])
    assert [n for n, _ in calls] == [8, 2]
    assert torch.equal(calls[0][1], torch.arange(8)) and torch.equal(calls[1][1], torch.tensor([8, 9]))
    calls.clear()
    batched(fn, images, 3, batch_size=4, progress=False)
    assert calls == [(4, 3), (4, 3), (2, 3)]
    with pytest.raises(ValueError, match="one class per image: 10; got 3"):
        batched(fn, images, [1, 2, 3], progress=False)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        batched(fn, images, None, batch_size=0)


def run_auto(monkeypatch, n_items, seconds_per_item):
    """batched(batch_size="auto") over n_items on a fake clock: a chunk of size s costs
    s * seconds_per_item[s]. Returns the chunk sizes run, in order."""
    clock, sizes = [0.0], []
    monkeypatch.setattr(attribution.time, "perf_counter", lambda: clock[0])

    def fn(chunk, _target):
        sizes.append(len(chunk))
        clock[0] += len(chunk) * seconds_per_item[len(chunk)] if len(chunk) in seconds_per_item else 0.0
        return chunk

    items = torch.arange(n_items)
    assert torch.equal(batched(fn, items, None, batch_size="auto", progress=False, key="job"), items)
    return sizes


@pytest.mark.parametrize("costs, chosen, tried", [
    ({8: 1.0, 16: 0.8, 32: 0.9}, 16, [8, 8, 16, 32]),           # 32 costs more per item than 16: stop, keep 16
    ({8: 1.0, 16: 1.3}, 8, [8, 8, 16]),                          # 16 is slower already: keep 8
    ({8: 1.0, 16: 0.9, 32: 0.8, 64: 0.7, 128: 0.6}, 128, [8, 8, 16, 32, 64, 128]),  # all tried: the largest
])
def test_batched_auto_keeps_the_size_with_the_least_time_per_item(monkeypatch, costs, chosen, tried):
    monkeypatch.setattr(attribution, "AUTO_CHOICES", {})
    monkeypatch.setattr(attribution, "_AUTO_TRIALS", {})
    sizes = run_auto(monkeypatch, 1000, costs)
    assert sizes[:len(tried)] == tried                    # untimed warm-up at 8, then 8, 16, ...
    assert attribution.AUTO_CHOICES == {"job": chosen}
    assert set(sizes[len(tried):-1]) == {chosen} and sum(sizes) == 1000
    assert run_auto(monkeypatch, 2 * chosen, costs) == [chosen, chosen]  # remembered: no new search


def test_batched_auto_continues_its_search_across_calls_and_ignores_short_chunks(monkeypatch):
    monkeypatch.setattr(attribution, "AUTO_CHOICES", {})
    monkeypatch.setattr(attribution, "_AUTO_TRIALS", {})
    costs = {8: 1.0, 16: 0.5, 32: 0.6, 5: 100.0}
    assert run_auto(monkeypatch, 13, costs) == [8, 5]     # warm-up, then a short chunk: not counted
    assert attribution._AUTO_TRIALS == {"job": {}}
    assert run_auto(monkeypatch, 24, costs) == [8, 16]    # 8 timed, then 16
    assert run_auto(monkeypatch, 40, costs) == [32, 8]    # 32 costs more than 16: the search ends
    assert attribution.AUTO_CHOICES == {"job": 16}
    with pytest.raises(ValueError, match='"auto" needs a key'):
        batched(lambda chunk, t: chunk, torch.arange(3), None, batch_size="auto")
    with pytest.raises(ValueError, match='positive int or "auto"'):
        batched(lambda chunk, t: chunk, torch.arange(3), None, batch_size="fast")


def test_batched_progress_bar_can_be_switched_off(capsys):
    images = torch.rand(3, 3, 2, 2)
    batched(lambda chunk, t: chunk, images, None, batch_size=1, desc="saliency")
    assert "saliency" in capsys.readouterr().err
    batched(lambda chunk, t: chunk, images, None, batch_size=1, progress=False, desc="saliency")
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""

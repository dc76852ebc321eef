"""Feature visualization's pieces (notebook 08): the Fourier parameterization in decorrelated
colours, the transforms, the redirected rectifier gradient, and the scores of a visualization
— each on a case whose answer is known."""

import math

import pytest
import torch
from torch import nn

from cs231n_vis import optimize
from cs231n_vis.hooks import override_rectifiers
from cs231n_vis.shapes import load_shapes_cnn
from helpers import model_unchanged


def test_colour_matrix_is_lucids_normalized_by_its_largest_column_and_invertible():
    c = optimize.color_matrix()
    assert c.norm(dim=0).max().item() == pytest.approx(1.0)
    raw = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
    torch.testing.assert_close(c * raw.norm(dim=0).max(), raw)
    torch.testing.assert_close(torch.linalg.inv(c) @ c, torch.eye(3), atol=1e-5, rtol=0)


def test_equal_coefficients_give_an_amplitude_spectrum_falling_as_one_over_f():
    h, w = 32, 48
    scale = optimize.spectrum_scale((h, w))
    assert scale.shape == (h, w // 2 + 1)
    assert scale[0, 0] == pytest.approx(max(h, w))  # DC: 1 / (1 / max(h, w))
    assert scale[0, 12].item() == pytest.approx(1 / 0.25)  # 12 cycles in 48 pixels: f = 0.25
    assert scale[8, 0].item() == pytest.approx(1 / 0.25)   # 8 cycles in 32 rows
    # One coefficient (off the axes, where a real FFT's half spectrum is unambiguous): the
    # decorrelated field before the sigmoid is a grating whose orthonormal spectrum holds
    # exactly scale(f) * c / 4 there, and nothing anywhere else.
    coefficients = torch.zeros(1, 3, h, w // 2 + 1, 2)
    coefficients[0, 0, 3, 5, 0] = 2.0
    f = math.hypot(3 / h, 5 / w)
    assert scale[3, 5].item() == pytest.approx(1 / f)
    image = optimize.fourier_image(coefficients, (h, w))
    field = torch.einsum("ij,njhw->nihw", torch.linalg.inv(optimize.color_matrix()), torch.logit(image))
    spectrum = torch.fft.rfft2(field, norm="ortho")
    assert spectrum[0, 0, 3, 5].real.item() == pytest.approx(2.0 / f / 4, rel=1e-4)
    assert spectrum.abs().sum().item() == pytest.approx(spectrum[0, 0, 3, 5].abs().item(), rel=1e-3)


def test_zero_coefficients_are_flat_grey_and_the_inverse_is_exact():
    grey = optimize.fourier_image(torch.zeros(2, 3, 16, 9, 2), (16, 16))
    torch.testing.assert_close(grey, torch.full((2, 3, 16, 16), 0.5))
    images = 0.05 + 0.9 * torch.rand(2, 3, 20, 30, generator=torch.Generator().manual_seed(0))
    back = optimize.fourier_image(optimize.fourier_coefficients(images), (20, 30))
    torch.testing.assert_close(back, images, atol=1e-5, rtol=0)


def test_rotation_by_90_degrees_is_rot90_and_scale_one_angle_zero_is_the_identity():
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(optimize.scale_rotate(image, 1.0, 90), torch.rot90(image, 1, (2, 3)),
                               atol=1e-5, rtol=0)
    assert torch.equal(optimize.scale_rotate(image, 1.0, 0.0), image)
    assert optimize.scale_rotate(image, 1.1, 0.0).shape[-2:] == (18, 18)
    # corners rotated in from outside are grey
    turned = optimize.scale_rotate(torch.zeros(1, 3, 33, 33), 1.0, 45)
    assert turned[0, :, 0, 0].tolist() == pytest.approx([0.5] * 3, abs=1e-6)
    assert turned[0, :, 16, 16].tolist() == pytest.approx([0.0] * 3, abs=1e-6)


def test_random_transforms_keep_grey_grey_and_the_size_within_lucids_range():
    g = torch.Generator().manual_seed(0)
    sizes = set()
    for _ in range(20):
        out = optimize.random_transform(torch.full((2, 3, 64, 64), 0.5), g)
        torch.testing.assert_close(out, torch.full_like(out, 0.5))
        sizes.add(out.shape[-1])
    # pad 12 on each side, crop 8 and then 4 smaller, scale 0.90-1.10 in between: 64 + 24 - 8 = 80
    assert min(sizes) >= round(0.9 * 80) - 4 and max(sizes) <= round(1.1 * 80) - 4 and len(sizes) > 3


class _Clip(nn.Module):
    def __init__(self):
        super().__init__()
        self.act = nn.ReLU6()

    def forward(self, x):
        return self.act(x)


def _redirected_gradient(x, upstream):
    net = _Clip()
    x = x.clone().requires_grad_(True)
    with override_rectifiers(net, "redirect"):
        y = net(x)
    (grad,) = torch.autograd.grad((y * upstream).sum(), x)
    return grad


def test_redirect_passes_what_moves_an_off_unit_back_on_only_where_nothing_passed():
    x = torch.tensor([[-1.0, 3.0, 7.0]])  # off, active, clipped at 6
    # Nothing passes the plain ReLU6 gradient (the active unit's upstream gradient is 0):
    # descent on -1 raises the off unit, descent on +1 lowers the clipped one: both pass.
    assert _redirected_gradient(x, torch.tensor([[-1.0, 0.0, 1.0]])).tolist() == [[-1.0, 0.0, 1.0]]
    # The other signs would push them further out: blocked.
    assert _redirected_gradient(x, torch.tensor([[1.0, 0.0, -1.0]])).tolist() == [[0.0, 0.0, 0.0]]
    # An example whose plain gradient is not zero keeps it; the decision is per example.
    both = torch.tensor([[-1.0, 3.0, 7.0], [-1.0, 3.0, 7.0]])
    upstream = torch.tensor([[-1.0, 2.0, 1.0], [-1.0, 0.0, 1.0]])
    assert _redirected_gradient(both, upstream).tolist() == [[0.0, 2.0, 0.0], [-1.0, 0.0, 1.0]]


def test_fourier_transforms_and_redirect_run_in_the_one_loop():
    cnn = load_shapes_cnn()
    init = torch.full((2, 3, 64, 64), 0.5)
    with model_unchanged(cnn):
        out = optimize.class_visualization(cnn, [0, 3], size=64, steps=6, lr=0.05, optimizer="adam",
                                           parameterization="fourier", transforms=True, redirect_steps=2,
                                           progress=False)
    assert out.images.shape == (2, 3, 64, 64) and out.passes == 6
    assert 0 < out.images.min() and out.images.max() < 1 and not torch.equal(out.images, init)
    assert out.objective[-1] < out.objective[0]  # the scores rose
    with pytest.raises(ValueError, match="redirect_steps needs the model"):
        optimize.optimize_image(lambda x: x.sum(), init, steps=1, redirect_steps=1)


def test_robust_probability_and_class_rank_on_a_known_classifier():
    cnn = load_shapes_cnn()
    from cs231n_vis.shapes import make_shapes

    data = make_shapes(8, seed=5)
    with torch.no_grad():
        logits = cnn(data.images)
    predicted = logits.argmax(1)
    assert optimize.class_rank(cnn, data.images, predicted).tolist() == [1] * 8
    worst = logits.argmin(1)
    assert optimize.class_rank(cnn, data.images, worst).tolist() == [10] * 8
    p = optimize.robust_probability(cnn, data.images, predicted, n=4)
    assert p.shape == (8,) and ((0 <= p) & (p <= 1)).all()
    assert torch.equal(p, optimize.robust_probability(cnn, data.images, predicted, n=4))  # its own seed


@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0])
def test_spectral_slope_recovers_the_exponent_of_a_power_law_spectrum(exponent):
    images = optimize.power_law_images(exponent, 128, n=4)
    assert images.min() == 0 and images.max() == 1
    # the construction: amplitude at frequency 2f over amplitude at f is 2^-exponent (up to the
    # affine map into [0, 1], which scales every non-zero frequency alike)
    amplitude = torch.fft.rfft2(images).abs()
    ratio = amplitude[..., 6, 16] / amplitude[..., 3, 8]  # off the axes: a real FFT's unambiguous half
    torch.testing.assert_close(ratio, torch.full_like(ratio, 2 ** -exponent), rtol=1e-3, atol=0)
    slopes = optimize.spectral_slope(images)
    assert slopes.sub(-exponent).abs().max() < 0.1, slopes


def test_spectral_centroid_of_a_grating_is_its_frequency():
    x = torch.arange(64.0)
    for f in (0.05, 0.1, 0.25):
        grating = torch.sin(2 * math.pi * f * x)[None, None, None, :].expand(1, 3, 64, 64)
        assert optimize.spectral_centroid(grating).item() == pytest.approx(f, abs=0.01)


def test_random_perturbations_have_the_size_of_the_reference_and_a_random_direction():
    like = torch.zeros(2, 3, 8, 8)
    like[0, 0, 0, 0], like[1] = 3.0, 0.01
    l2 = optimize.random_perturbation(like, norm="l2", seed=1)
    torch.testing.assert_close(l2.flatten(1).norm(dim=1), like.flatten(1).norm(dim=1))
    assert (l2[0] != 0).float().mean() > 0.99  # spread over every value, not on the one pixel
    linf = optimize.random_perturbation(like, norm="linf", seed=1)
    assert set(linf[0].abs().unique().tolist()) == {3.0} and linf[1].abs().max().item() == pytest.approx(0.01)
    assert 0.4 < (linf > 0).float().mean() < 0.6
    assert torch.equal(linf, optimize.random_perturbation(like, norm="linf", seed=1))
    with pytest.raises(ValueError, match="'l2' or 'linf'"):
        optimize.random_perturbation(like, norm="l1")


def _grating(size: int, cycles: float, vertical: bool = False) -> torch.Tensor:
    t = torch.arange(size, dtype=torch.float32)
    wave = torch.sin(2 * math.pi * cycles * t / size)
    image = wave[:, None].expand(size, size) if vertical else wave[None, :].expand(size, size)
    return image.expand(1, 3, size, size).clone()


def test_laplacian_pyramid_merges_back_exactly_and_splits_coarse_from_fine():
    x = torch.rand(2, 3, 37, 64, generator=torch.Generator().manual_seed(0))
    bands = optimize.laplacian_bands(x, levels=4)
    assert [tuple(b.shape[-2:]) for b in bands] == [(37, 64), (18, 32), (9, 16), (4, 8)]
    assert torch.allclose(optimize.laplacian_merge(bands), x, atol=1e-6)
    # a 2-cycle grating (period 32 px) lives in the coarse bands, a 16-cycle one (period 4 px) in the finest
    coarse, fine = _grating(64, 2), _grating(64, 16)
    rms = lambda image: [float(b.pow(2).mean().sqrt()) for b in optimize.laplacian_bands(image)]
    finest, *_, coarsest = rms(fine)
    assert finest > 10 * coarsest, rms(fine)
    finest, *_, coarsest = rms(coarse)
    assert coarsest > 10 * finest, rms(coarse)


def test_laplacian_normalize_gives_a_weak_coarse_component_the_share_of_a_strong_fine_one():
    # gradient = 0.1 x a coarse grating + 1 x a fine one: after normalization the two have about
    # the same amplitude (each band has unit RMS), where the plain gradient's ratio is 0.1
    coarse, fine = _grating(64, 2), _grating(64, 16, vertical=True)
    out = optimize.laplacian_normalize(0.1 * coarse + fine)
    amplitude = lambda part: float((out * part).sum() / part.pow(2).sum())  # projection on each grating
    assert amplitude(fine) > 0
    assert 0.5 < amplitude(coarse) / amplitude(fine) < 2.0, (amplitude(coarse), amplitude(fine))
    assert torch.allclose(optimize.laplacian_normalize(torch.zeros(1, 3, 16, 16)), torch.zeros(1, 3, 16, 16))


def test_deepdream_with_laplacian_gradient_changes_the_image_and_leaves_the_model():
    model = load_shapes_cnn()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with model_unchanged(model):
        out = optimize.deepdream(model, x, model.layer_names[1], octaves=2, steps=3, gradient="laplacian",
                                 progress=False)
    assert out.images.shape == x.shape and (out.images - x).abs().max() > 1e-3
    with pytest.raises(ValueError, match="gradient must be 'octave' or 'laplacian'"):
        optimize.deepdream(model, x, model.layer_names[1], gradient="pyramid", progress=False)

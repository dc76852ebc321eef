"""Tests for cs231n_vis.images, on real files written with Pillow into tmp_path."""

import numpy as np
import torchvision
import pytest
import torch
from PIL import Image

from cs231n_vis.images import (
    ImageLoadError,
    center_crop,
    load_image,
    resize,
    sample_image,
    sample_images,
    to_image,
    to_tensor,
)

# The public list (torchvision's weights metadata): independent of cs231n_vis.models.
IMAGENET_CATEGORIES = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]

# JPEG is lossy: a flat colour comes back within a few of 255 levels.
JPEG_ATOL = 0.03

RED, BLUE, WHITE = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (1.0, 1.0, 1.0)


def save(tmp_path, name, img, **kwargs):
    path = tmp_path / name
    img.save(path, **kwargs)
    return path


def mode_of(path):
    with Image.open(path) as img:
        return img.mode


def check_image(image, shape):
    assert image.shape == shape
    assert image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0


def test_rgb_png(tmp_path):
    path = save(tmp_path, "rgb.png", Image.new("RGB", (5, 4), (255, 128, 0)))
    image = load_image(path)
    check_image(image, (4, 5, 3))
    np.testing.assert_allclose(image[0, 0], (1.0, 128 / 255, 0.0))


def test_rgb_jpeg(tmp_path):
    path = save(tmp_path, "rgb.jpg", Image.new("RGB", (16, 8), (255, 128, 0)))
    image = load_image(path)
    check_image(image, (8, 16, 3))
    np.testing.assert_allclose(image[4, 8], (1.0, 128 / 255, 0.0), atol=JPEG_ATOL)


def test_rgba_is_composited_over_white(tmp_path):
    img = Image.new("RGBA", (3, 1))
    img.putdata([(255, 0, 0, 255), (0, 0, 255, 0), (0, 0, 0, 128)])
    image = load_image(save(tmp_path, "rgba.png", img))
    check_image(image, (1, 3, 3))
    np.testing.assert_allclose(image[0, 0], RED)  # opaque: unchanged
    np.testing.assert_allclose(image[0, 1], WHITE)  # transparent: background
    np.testing.assert_allclose(image[0, 2], [1 - 128 / 255] * 3, atol=1e-6)  # half


def test_la(tmp_path):
    img = Image.new("LA", (2, 1))
    img.putdata([(100, 255), (0, 0)])
    image = load_image(save(tmp_path, "la.png", img))
    check_image(image, (1, 2, 3))
    np.testing.assert_allclose(image[0, 0], [100 / 255] * 3)
    np.testing.assert_allclose(image[0, 1], WHITE)


def test_grayscale(tmp_path):
    image = load_image(save(tmp_path, "l.png", Image.new("L", (3, 2), 200)))
    check_image(image, (2, 3, 3))
    np.testing.assert_allclose(image, 200 / 255)


def palette_image():
    """A 2x1 palette image: index 0 is red, index 1 is blue."""
    img = Image.new("P", (2, 1))
    img.putpalette([255, 0, 0, 0, 0, 255])
    img.putdata([0, 1])
    return img


def test_palette(tmp_path):
    image = load_image(save(tmp_path, "p.png", palette_image()))
    check_image(image, (1, 2, 3))
    np.testing.assert_allclose(image[0], [RED, BLUE])


def test_palette_with_transparency(tmp_path):
    path = save(tmp_path, "p_t.png", palette_image(), transparency=1)
    assert mode_of(path) == "P"
    image = load_image(path)
    check_image(image, (1, 2, 3))
    np.testing.assert_allclose(image[0], [RED, WHITE])  # blue index is transparent


def test_16_bit_grayscale_is_scaled_by_65535(tmp_path):
    img = Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16))
    path = save(tmp_path, "gray16.png", img)
    assert mode_of(path) in ("I;16", "I")
    image = load_image(path)
    check_image(image, (1, 3, 3))
    # Dividing by 255 instead would push 32768 and 65535 far above 1.
    np.testing.assert_allclose(image[0, :, 0], [0.0, 32768 / 65535, 1.0])
    assert image[0, 1, 0] == pytest.approx(0.5, abs=1e-4)


def test_cmyk_jpeg(tmp_path):
    path = save(tmp_path, "cmyk.jpg", Image.new("CMYK", (16, 8), (0, 255, 255, 0)))
    assert mode_of(path) == "CMYK"
    image = load_image(path)
    check_image(image, (8, 16, 3))
    np.testing.assert_allclose(image[4, 8], RED, atol=JPEG_ATOL)


def test_one_bit(tmp_path):
    img = Image.new("1", (2, 1))
    img.putdata([0, 1])
    image = load_image(save(tmp_path, "bw.png", img))
    check_image(image, (1, 2, 3))
    np.testing.assert_allclose(image[0], [(0.0, 0.0, 0.0), WHITE])


def test_exif_orientation_is_applied(tmp_path):
    # Stored 40 wide x 20 tall: left half red, right half blue. Orientation 6
    # tells viewers to rotate 90 degrees clockwise, so the left half (red)
    # ends up on top and the picture becomes 20 wide x 40 tall.
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    image = load_image(save(tmp_path, "rotated.jpg", img, exif=exif))
    check_image(image, (40, 20, 3))
    np.testing.assert_allclose(image[10, 10], RED, atol=JPEG_ATOL)
    np.testing.assert_allclose(image[30, 10], BLUE, atol=JPEG_ATOL)


def test_bytes_equal_path(tmp_path):
    path = save(tmp_path, "rgb.jpg", Image.new("RGB", (16, 8), (10, 200, 30)))
    np.testing.assert_array_equal(load_image(path.read_bytes()), load_image(path))
    np.testing.assert_array_equal(load_image(str(path)), load_image(path))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_image(tmp_path / "nope.png")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageLoadError, match=r"empty\.png is empty \(0 bytes\)"):
        load_image(path)


def test_text_file_is_not_an_image(tmp_path):
    path = tmp_path / "page.png"
    path.write_text("<html>404 Not Found</html>")
    with pytest.raises(ImageLoadError, match=r"page\.png is not an image format"):
        load_image(path)


def test_bytes_are_named_in_errors():
    with pytest.raises(ImageLoadError, match="<bytes, 12 bytes>"):
        load_image(b"not an image")


@pytest.mark.parametrize("name", ["half.png", "half.jpg"])
def test_truncated_file(tmp_path, name):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    full = save(tmp_path, "full" + name[-4:], Image.fromarray(noise)).read_bytes()
    path = tmp_path / name
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(ImageLoadError, match=rf"{name}.*truncated.*Re-download"):
        load_image(path)


def test_image_load_error_is_a_value_error():
    assert issubclass(ImageLoadError, ValueError)


def test_resize_shorter_side_and_exact():
    image = np.random.default_rng(0).random((100, 150, 3), dtype=np.float32)
    small = resize(image, 50)
    check_image(small, (50, 75, 3))
    check_image(resize(image, (30, 40)), (30, 40, 3))
    np.testing.assert_allclose(resize(np.full((8, 12, 3), 0.25), 4), 0.25, atol=1e-6)


def test_center_crop():
    image = np.zeros((6, 8, 3), dtype=np.float32)
    image[1:5, 2:6] = 1.0
    np.testing.assert_array_equal(center_crop(image, 4), 1.0)
    with pytest.raises(ValueError, match="resize"):
        center_crop(image, 7)


def test_to_tensor_to_image_round_trip():
    image = np.random.default_rng(0).random((20, 30, 3), dtype=np.float32)
    tensor = to_tensor(image)
    assert tensor.shape == (1, 3, 20, 30) and tensor.dtype == torch.float32
    np.testing.assert_array_equal(to_image(tensor), image)
    np.testing.assert_array_equal(to_image(tensor[0]), image)


def test_to_tensor_with_size():
    image = np.random.default_rng(0).random((300, 400, 3), dtype=np.float32)
    assert to_tensor(image, size=224).shape == (1, 3, 224, 224)


def test_to_tensor_list_is_a_batch():
    images = [np.zeros((20, 30, 3), np.float32), np.ones((40, 25, 3), np.float32)]
    assert to_tensor(images, size=16).shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="different shapes"):
        to_tensor(images)


def test_to_tensor_rejects_uint8():
    with pytest.raises(ValueError, match="255"):
        to_tensor(np.zeros((4, 4, 3), np.uint8))


def test_to_image_clips_detaches_and_rejects_batches():
    tensor = torch.full((1, 3, 2, 2), 2.0, requires_grad=True)
    image = to_image(tensor * -1)
    assert image.dtype == np.float32 and image.shape == (2, 2, 3)
    np.testing.assert_array_equal(image, 0.0)
    with pytest.raises(ValueError, match=r"batch\[0\]"):
        to_image(torch.zeros(2, 3, 4, 4))


def test_sample_images():
    samples = sample_images()
    assert len(samples) >= 8
    names = [sample.name for sample in samples]
    assert len(set(names)) == len(names)
    assert names == sorted(names)
    for sample in samples:
        height, width, _ = sample.image.shape
        check_image(sample.image, (height, width, 3))
        assert height >= 200 and width >= 200, sample.name
        assert sample.source.strip()
        assert sample.labels, sample.name
        for label in sample.labels:
            assert label in IMAGENET_CATEGORIES, (sample.name, label)


def test_sample_image_by_name():
    assert sample_image("chelsea").shape == (300, 451, 3)
    with pytest.raises(KeyError, match="chelsea"):
        sample_image("dog")

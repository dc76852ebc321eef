"""Loading, resizing and converting images, plus a few real sample photos.

Conventions used throughout the course:

* An *image* is a NumPy array of shape (H, W, 3), dtype float32, RGB, with
  values in [0, 1]. This is what `load_image` returns and what matplotlib's
  `imshow` displays directly.
* A *batch* is a torch tensor of shape (N, 3, H, W), float, values in [0, 1].
  The course's models normalize (subtract the ImageNet mean, divide by the
  std) internally, so tensors here are never normalized.

`to_tensor` and `to_image` convert between the two.
"""

import io
import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow modes that hold one channel of 16-bit integers. Mode "I" (32-bit
# ints) is what some Pillow versions and formats use for 16-bit files too.
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_MODES_WITH_ALPHA = ("RGBA", "RGBa", "LA", "La", "PA")


class ImageLoadError(ValueError):
    """A file (or bytes) exists but cannot be decoded into an image."""


def load_image(source: str | os.PathLike | bytes) -> np.ndarray:
    """Load an image file (or its bytes) as a float32 (H, W, 3) RGB array in [0, 1].

    * The EXIF orientation tag is applied, so the array looks the way a photo
      viewer shows the picture (phone photos are often stored sideways).
    * Transparent pixels (RGBA, LA, palette with transparency) are composited
      over a white background, the way a web page would show them.
    * Grayscale, palette, 1-bit and CMYK images become RGB.
    * 16-bit images are scaled by 65535, so no precision is lost and
      white stays 1.0.

    Raises:
        FileNotFoundError: `source` is a path and there is no file there.
        ImageLoadError: the file is empty, is not an image, is
            truncated/corrupt, or has more pixels than Pillow's safety limit
            (a "decompression bomb"). It is a `ValueError`, and the message
            names the file.
    """
    if isinstance(source, bytes):
        name = f"<bytes, {len(source)} bytes>"
        data = source
    else:
        name = str(source)
        if not Path(source).is_file():
            raise FileNotFoundError(
                f"No image file at {name!r} (current directory: {os.getcwd()!r}). "
                "Check the path and the file name."
            )
        data = Path(source).read_bytes()

    if not data:
        raise ImageLoadError(
            f"{name} is empty (0 bytes). The download or copy probably failed; "
            "get the file again."
        )
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # decode every pixel now, so broken files fail here
            return _to_rgb_float(ImageOps.exif_transpose(img), name)
    except Image.DecompressionBombError as error:
        raise ImageLoadError(
            f"{name} is larger than Pillow's safety limit for untrusted files ({error}). "
            "Downscale it in an image editor first, or, if you trust the file, raise the limit "
            "before loading: PIL.Image.MAX_IMAGE_PIXELS = None."
        ) from error
    except UnidentifiedImageError as error:
        raise ImageLoadError(
            f"{name} is not an image format Pillow can read (is it really an "
            "image? A web page or text file saved under an image name looks "
            "like this). Open it in a text editor or download it again."
        ) from error
    except (OSError, SyntaxError, EOFError) as error:
        raise ImageLoadError(
            f"{name} is truncated or corrupt ({error}). "
            "Re-download or re-export the image."
        ) from error


def _to_rgb_float(img: Image.Image, name: str) -> np.ndarray:
    """Convert a decoded Pillow image of any supported mode to float RGB in [0, 1]."""
    if img.mode in _SIXTEEN_BIT_MODES:
        gray = np.asarray(img).astype(np.float32)
        if gray.min() < 0 or gray.max() > 65535:
            raise ImageLoadError(
                f"{name} holds 32-bit integer pixels (mode {img.mode}), not a "
                "photo; convert it to an 8- or 16-bit image first."
            )
        return np.repeat(gray[..., None] / 65535, 3, axis=2)
    if img.mode == "F":
        raise ImageLoadError(
            f"{name} holds floating-point pixels (mode F) of unknown range; "
            "convert it to an 8- or 16-bit image first."
        )

    if img.mode in _MODES_WITH_ALPHA or "transparency" in img.info:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255
        rgb, alpha = rgba[..., :3], rgba[..., 3:]
        return rgb * alpha + (1 - alpha)  # "over" a white background

    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255


def _check_image(image: np.ndarray) -> np.ndarray:
    """Return `image` as contiguous float32 if it is an (H, W, 3) float array, else raise."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", type(image).__name__)
        raise ValueError(f"Expected an (H, W, 3) numpy array, got {shape}.")
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(
            f"Expected a float image with values in [0, 1], got dtype {image.dtype}. "
            "Use load_image(), or divide a uint8 image by 255."
        )
    return np.ascontiguousarray(image, dtype=np.float32)  # torch needs positive strides


def resize(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize an (H, W, 3) float image with antialiased bilinear interpolation.

    `size` is either an int (the shorter side becomes `size`, the aspect ratio
    is kept) or a tuple (h, w) for an exact output shape.
    """
    image = _check_image(image)
    height, width = image.shape[:2]
    if isinstance(size, int):
        scale = size / min(height, width)
        size = (max(1, round(height * scale)), max(1, round(width * scale)))

    batch = torch.from_numpy(image).permute(2, 0, 1)[None]
    resized = F.interpolate(
        batch, size=size, mode="bilinear", align_corners=False, antialias=True
    )
    return resized[0].permute(1, 2, 0).clamp(0, 1).numpy()


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Cut the central `size` x `size` square out of an (H, W, 3) image."""
    image = _check_image(image)
    height, width = image.shape[:2]
    if size > min(height, width):
        raise ValueError(
            f"Cannot crop {size}x{size} from a {height}x{width} image; resize it first."
        )
    top = (height - size) // 2
    left = (width - size) // 2
    return image[top : top + size, left : left + size]


def to_tensor(
    image: np.ndarray | list[np.ndarray],
    size: int | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Turn one (H, W, 3) image, or a list of them, into an (N, 3, H, W) float tensor.

    If `size` is given, each image is resized so its shorter side is `size`
    and then center-cropped to `size` x `size` (the usual ImageNet
    preprocessing, minus normalization: the course's models normalize
    internally). Without `size`, all images in a list must have the same shape.
    """
    images = list(image) if isinstance(image, (list, tuple)) else [image]
    if not images:
        raise ValueError("to_tensor() got an empty list of images.")
    images = [_check_image(im) for im in images]
    if size is not None:
        images = [center_crop(resize(im, size), size) for im in images]

    shapes = sorted({im.shape for im in images})
    if len(shapes) > 1:
        raise ValueError(
            f"Images have different shapes {shapes}; pass size=... to resize "
            "and crop them to a common square."
        )
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return batch.to(device)


def to_image(tensor: torch.Tensor) -> np.ndarray:
    """Turn a (3, H, W) or (1, 3, H, W) tensor into an (H, W, 3) float32 numpy image.

    The result is detached from the autograd graph, moved to the CPU and
    clipped to [0, 1], ready for `plt.imshow`.
    """
    if tensor.dim() == 4:
        if tensor.shape[0] != 1:
            raise ValueError(
                f"Got a batch of {tensor.shape[0]} images; pick one, "
                "e.g. to_image(batch[0])."
            )
        tensor = tensor[0]
    if tensor.dim() != 3 or tensor.shape[0] != 3:
        raise ValueError(
            f"Expected a (3, H, W) or (1, 3, H, W) tensor, got {tuple(tensor.shape)}."
        )
    image = tensor.detach().cpu().float().clamp(0, 1).permute(1, 2, 0)
    return image.contiguous().numpy()


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """A separable Gaussian blur of (N, C, H, W) with std ``sigma`` pixels (reflected borders).

    Differentiable; used for occlusion's blurred fill (notebook 05) and the periodic
    blur of image optimization (notebook 08).
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be a positive number of pixels; got {sigma!r}.")
    radius = max(1, math.ceil(3 * sigma))
    radius = min(radius, images.shape[-1] - 1, images.shape[-2] - 1)
    t = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    x = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


@dataclass(frozen=True, eq=False)  # eq=False: comparing numpy arrays with == is ambiguous
class SampleImage:
    """A real photo with where it came from and what ImageNet calls its content.

    `labels` are the ImageNet-1k class names (as in torchvision) that are
    correct answers for the photo, the main one first.
    """

    name: str
    image: np.ndarray
    source: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class _SampleFile:
    """Where a sample photo lives inside an installed package, and its labels."""

    name: str
    package: str
    path: str
    source: str
    labels: tuple[str, ...]


# Sorted by name. Labels were chosen by looking at each photo.
_SAMPLE_FILES = (
    _SampleFile(
        "astronaut", "skimage.data", "astronaut.png",
        "scikit-image: skimage.data.astronaut() — NASA portrait of astronaut "
        "Eileen Collins (public domain)",
        # ImageNet has no "astronaut" or "spacesuit" class; the shuttle model
        # (top right) and the helmet (bottom right) are the objects it knows.
        ("space shuttle", "crash helmet"),
    ),
    _SampleFile(
        "camera", "skimage.data", "camera.png",
        "scikit-image: skimage.data.camera() — grayscale photo of a "
        "cameraman, CC0 by Lav Varshney",
        ("tripod", "reflex camera", "trench coat"),
    ),
    _SampleFile(
        "chelsea", "skimage.data", "chelsea.png",
        "scikit-image: skimage.data.chelsea() — Stéfan van der Walt's cat "
        "Chelsea (CC0)",
        ("tabby", "tiger cat", "Egyptian cat"),
    ),
    _SampleFile(
        "china", "sklearn.datasets.images", "china.jpg",
        "scikit-learn: sklearn.datasets.load_sample_image('china.jpg') — "
        "Tower of Buddhist Incense, Summer Palace, Beijing (CC BY 2.0, "
        "danielbuechele on Flickr)",
        # ImageNet-1k has no "pagoda" class.
        ("palace", "monastery", "tile roof", "lakeside"),
    ),
    _SampleFile(
        "coffee", "skimage.data", "coffee.png",
        "scikit-image: skimage.data.coffee() — espresso at Pikolo Espresso "
        "Bar, CC0 by Rachel Michetti",
        ("espresso", "cup"),
    ),
    _SampleFile(
        "flower", "sklearn.datasets.images", "flower.jpg",
        "scikit-learn: sklearn.datasets.load_sample_image('flower.jpg') — an "
        "orange pompon dahlia (CC BY 2.0, vultilion on Flickr)",
        # Dahlias and daisies are both in the aster family; "daisy" is the
        # only ImageNet class for such flowers.
        ("daisy",),
    ),
    _SampleFile(
        "grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg",
        "matplotlib: cbook.get_sample_data('grace_hopper.jpg') — US Navy "
        "portrait of Commodore Grace Hopper (public domain)",
        # WordNet defines a Windsor tie as "a wide necktie worn in a loose bow".
        ("military uniform", "Windsor tie", "bow tie"),
    ),
    _SampleFile(
        "motorcycle", "skimage.data", "motorcycle_left.png",
        "scikit-image: skimage.data.stereo_motorcycle() left view — a red "
        "Yamaha motorcycle in a garage (Middlebury 2014 stereo benchmark)",
        # ImageNet-1k has no "motorcycle" class; these are the nearest.
        ("moped", "motor scooter"),
    ),
    _SampleFile(
        "rocket", "skimage.data", "rocket.jpg",
        "scikit-image: skimage.data.rocket() — SpaceX Falcon 9 with DSCOVR on "
        "the launch pad at Cape Canaveral (public domain)",
        # ImageNet's rockets are the "missile" and "projectile, missile" classes.
        ("missile", "projectile"),
    ),
)


def sample_images(names: list[str] | None = None) -> list[SampleImage]:
    """Load real sample photos shipped with scikit-image, scikit-learn and matplotlib.

    Everything is read from files installed with those packages, so no network
    is needed. `names` picks photos (in the given order); by default all are
    returned, sorted by name.

    Raises:
        KeyError: a name is unknown; the message lists the valid names.
    """
    by_name = {sample.name: sample for sample in _SAMPLE_FILES}
    if names is None:
        names = list(by_name)
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise KeyError(f"Unknown sample image(s) {unknown}; valid names: {list(by_name)}")

    samples = []
    for name in names:
        spec = by_name[name]
        with resources.as_file(resources.files(spec.package) / spec.path) as path:
            image = load_image(path)
        samples.append(SampleImage(spec.name, image, spec.source, spec.labels))
    return samples


def sample_image(name: str) -> np.ndarray:
    """Load one sample photo by name (see `sample_images`) as an (H, W, 3) float image."""
    return sample_images([name])[0].image

"""Online-only assets: one registry, fetched hash-checked through pooch, from upstream or a lab mirror.

The notebooks run offline on what installed packages ship; everything that has to be
downloaded is listed once, in ``ASSETS`` (name → ``Asset``): the torchvision ImageNet weights
of the supported models, CS231n's 25 labelled ImageNet validation images, classic paintings
as style images, and a few COCO photos as content for fast style training.

- ``fetch(name)`` returns the path of a verified copy on this machine, downloading it if it is
  missing: weights into torch hub's cache (where torchvision looks), the rest into
  ``cache_root()/<kind>`` (paintings into ``paintings_dir()``). ``fetch_all(dest)`` fills a lab
  mirror: ``<dest>/<kind>/<file name>`` plus ``<dest>/registry.lock.json``.
- ``$CS231N_VIS_MIRROR`` (an http(s):// URL, a file:// URL or a directory laid out like
  ``fetch_all`` writes it) replaces every upstream URL; ``$CS231N_VIS_OFFLINE=1`` means never
  download (only what is already on this machine is used).
- Every download goes through ``pooch.retrieve``, which writes to a temporary file in the
  destination folder and moves it to its final name only after the checks passed (pooch's
  ``core.stream_download``: ``temporary_file`` → downloader → ``hash_matches`` →
  ``shutil.move``; the temporary file is removed on any exception, Ctrl-C included). Our
  downloader runs the checks first, for clearer messages: the size (when known), the full
  SHA-256 (when known) or else, for torchvision weights, the SHA-256 prefix in the file name
  (torch.hub's check), and that an image decodes / the ImageNet sample has its arrays.
- Hashes are never invented: an entry whose full SHA-256 is not known (``sha256=None``) is
  fetched only with ``trust_first_download=True`` (``--trust-first-download``), which records
  the hash it saw in the destination's lock file; every later fetch into that destination,
  and every machine that fetches from it as a mirror, verifies against that record.

``imagenet_val_sample()`` and ``content_images()`` load the ImageNet sample and the content
photos. The command line is ``data_scripts/fetch_assets.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .files import set_default_permissions, sha256_of, write_atomic

MIRROR_ENV_VAR = "CS231N_VIS_MIRROR"
OFFLINE_ENV_VAR = "CS231N_VIS_OFFLINE"
CACHE_ENV_VAR = "CS231N_VIS_CACHE"
PAINTINGS_ENV_VAR = "CS231N_VIS_PAINTINGS"
LOCK_FILE = "registry.lock.json"
LOCK_FORMAT = "cs231n-vis asset lock 1"
KINDS = ("weights", "sample", "painting", "content")
SCRIPT = "data_scripts/fetch_assets.py"
USER_AGENT = "cs231n-vis-assets/1.0 (+https://github.com/cs231n-vis/cs231n-vis; course asset fetcher)"


@dataclass(frozen=True)
class Asset:
    """One online-only file.

    kind: ``weights`` | ``sample`` | ``painting`` | ``content`` (also its folder on a mirror).
    url: where upstream serves it. filename: its name on disk and on a mirror (weights keep
    torchvision's name, which carries a SHA-256 prefix). sha256: the full hex digest, or None
    where none was found stated for this exact file (never invented; see the module docstring).
    size: bytes, when known. source: what it is, where it comes from, and its licence.
    """

    kind: str
    url: str
    filename: str
    sha256: str | None
    size: int | None
    source: str

    @property
    def hash_prefix(self) -> str | None:
        """torch.hub's check for weights: the hex digits after the last '-' of the file name."""
        if self.kind != "weights":
            return None
        stem = self.filename.rsplit(".", 1)[0]
        prefix = stem.rsplit("-", 1)[-1]
        return prefix if len(prefix) >= 6 and all(c in "0123456789abcdef" for c in prefix) else None


def _weights(filename: str, sha256: str | None, size: int | None, enum: str) -> Asset:
    return Asset("weights", f"https://download.pytorch.org/models/{filename}", filename, sha256, size,
                 f"torchvision {enum} (download.pytorch.org; code BSD-3-Clause, trained on ImageNet-1k, "
                 "whose terms allow non-commercial research and teaching)")


def _coco(image_id: int, sha256: str, size: int | None = None) -> Asset:
    filename = f"{image_id:012d}.jpg"
    return Asset("content", f"http://images.cocodataset.org/val2017/{filename}", filename, sha256, size,
                 f"COCO val2017 image {image_id} (Lin et al., arXiv:1405.0312): a Flickr photo under the Creative "
                 "Commons licence COCO's annotations record for it (https://cocodataset.org/#termsofuse)")


def _painting(url: str, name: str, credit: str) -> Asset:
    return Asset("painting", url, name + Path(urllib.parse.urlparse(url).path).suffix.lower(), None, None, credit)


# Full SHA-256s: each stated for this exact file in at least two independent public sources
# (pinned-download scripts and manifests that verify torchvision's and COCO's files); the
# weights' sizes agree with torchvision's own metadata (`meta["_file_size"]`, MiB). An entry
# with sha256=None had no such source: it is fetched only by trusting the first download.
ASSETS: dict[str, Asset] = {
    # torchvision ImageNet weights of models.TORCHVISION_MODELS (each model's DEFAULT weights).
    "squeezenet1_1": _weights("squeezenet1_1-b8a52dc0.pth",
                              "b8a52dc049b60e4b6ab68ad0df457362afab8b6304b2febdc1650a5dab4d7e7b", 4_958_839,
                              "SqueezeNet1_1_Weights.IMAGENET1K_V1"),
    "alexnet": _weights("alexnet-owt-7be5be79.pth",
                        "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02", 244_408_911,
                        "AlexNet_Weights.IMAGENET1K_V1"),
    "vgg16": _weights("vgg16-397923af.pth",
                      "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0", 553_433_881,
                      "VGG16_Weights.IMAGENET1K_V1"),
    "vgg19": _weights("vgg19-dcbb9e9d.pth",
                      "dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44", 574_673_361,
                      "VGG19_Weights.IMAGENET1K_V1"),
    "resnet18": _weights("resnet18-f37072fd.pth",
                         "f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec", 46_830_571,
                         "ResNet18_Weights.IMAGENET1K_V1"),
    "resnet50": _weights("resnet50-11ad3fa6.pth",
                         "11ad3fa62ca79e40addfd354a8ec4b7c75143b3038b8d2a807fbc68deab379ca", 102_540_417,
                         "ResNet50_Weights.IMAGENET1K_V2"),
    "googlenet": _weights("googlenet-1378be20.pth",
                          "1378be20a8e875cf1568b8a71654e704449655e34711a959a38b04fb34905cef", None,
                          "GoogLeNet_Weights.IMAGENET1K_V1"),
    # CS231n's labelled ImageNet validation sample (the assignments' get_datasets.sh URL).
    "imagenet_val_25": Asset(
        "sample", "http://cs231n.stanford.edu/imagenet_val_25.npz", "imagenet_val_25.npz", None, None,
        "CS231n's 25 labelled ImageNet validation images (ILSVRC2012, 224x224, arrays X and y, as Stanford's "
        "assignments fetch them); ImageNet's terms: non-commercial research and teaching"),
    # Classic paintings as style images (notebook 09), from Wikimedia Commons.
    "starry_night": _painting(
        "https://upload.wikimedia.org/wikipedia/commons/thumb/e/ea/Van_Gogh_-_Starry_Night_-_Google_Art_Project.jpg/"
        "1280px-Van_Gogh_-_Starry_Night_-_Google_Art_Project.jpg", "starry_night",
        "Vincent van Gogh, The Starry Night (1889), MoMA; public domain (Google Art Project, Wikimedia Commons)"),
    "great_wave": _painting(
        "https://upload.wikimedia.org/wikipedia/commons/thumb/a/a5/Tsunami_by_hokusai_19th_century.jpg/"
        "1280px-Tsunami_by_hokusai_19th_century.jpg", "great_wave",
        "Katsushika Hokusai, The Great Wave off Kanagawa (c. 1831); public domain (Wikimedia Commons)"),
    "composition_vii": _painting(
        "https://upload.wikimedia.org/wikipedia/commons/b/b4/Vassily_Kandinsky%2C_1913_-_Composition_7.jpg",
        "composition_vii",
        "Wassily Kandinsky, Composition VII (1913), Tretyakov Gallery; public domain (Wikimedia Commons)"),
    # Content photos for fast style training (notebook 10): eight COCO val2017 images
    # (cats, a bear, rooms, a stop sign, teddy bears, a skier, baseball), served over plain
    # http by COCO's host; the full hash is what makes that safe.
    "coco_39769": _coco(39769, "dea9e7ef97386345f7cff32f9055da4982da5471c48d575146c796ab4563b04e", 173_131),
    "coco_139": _coco(139, "ffe0f0cec3b2e27aab1967229cdf0a0d7751dcdd5800322f0b8ac0dffb3b8a8d", 161_811),
    "coco_285": _coco(285, "f3a2974ce3686332609124c70e3e6a2e3aca43fccf1cd1bd7c5c03820977f57d"),
    "coco_632": _coco(632, "a4cd7f45ac1ce27eaafb254b23af7c0b18a064be08870ceaaf03b2147f2ce550"),
    "coco_724": _coco(724, "5c0e559c75d3969c8e3e297b61f61063f78045c9d4802b526ba616361f3823fd"),
    "coco_776": _coco(776, "1dd31e9059c491992be2f562624eb4093e17aee08b4f7baf5ff9ea24543b0a33"),
    "coco_785": _coco(785, "83981537a7baeafbeb9c8cb67b3484dc26433f574b3685d021fa537e277e4726"),
    "coco_872": _coco(872, "c2aa138ee3a59b057a7ba6fc5a6a18e62af531aa7dab78a7bfd33c1cd7e55eb6"),
}


# ---------------------------------------------------------------------------
# Errors: each message names the asset, the URL tried and what to do
# ---------------------------------------------------------------------------

class AssetError(RuntimeError):
    """An asset could not be made available; the message says which, from where, and why."""


class UnknownAssetError(AssetError):
    """A name that is not in the registry."""


class DownloadError(AssetError):
    """The server could not be reached, refused, or cut the transfer short."""


class DownloadTimeoutError(DownloadError, TimeoutError):
    """The server sent nothing for longer than the timeout."""


class HashMismatchError(AssetError):
    """A downloaded or present file is not the file the registry (or a lock) names."""


class UnverifiedAssetError(AssetError):
    """No hash is known for an entry, and trusting the first download was not asked for."""


class OfflineError(AssetError):
    """The file is not on this machine and $CS231N_VIS_OFFLINE forbids downloading it."""


def fetch_command(name: str, *, trust: bool | None = None) -> str:
    """The command that fetches ``name``; ``trust=None``: with --trust-first-download when the
    registry has no hash for it (a mirror's lock may still have one)."""
    if trust is None:
        asset = ASSETS.get(name)
        trust = asset is not None and asset.sha256 is None and asset.hash_prefix is None
    return f".venv/bin/python {SCRIPT} {name}" + (" --trust-first-download" if trust else "")


def _no_network_hint(name: str, mirror: str | None = None) -> str:
    if mirror:
        return (f"Is the mirror {mirror} (from {MIRROR_ENV_VAR} or --mirror) up, and does it hold the file? "
                f"Fill it with: {fetch_command(name)} --dest MIRROR_DIR")
    return (f"No network? Set {MIRROR_ENV_VAR} to your lab's mirror (an http(s):// URL or a shared directory), "
            f"or fetch it once where there is internet: {fetch_command(name)}")


# ---------------------------------------------------------------------------
# Where things live
# ---------------------------------------------------------------------------

def cache_root() -> Path:
    """This machine's folder for assets other than weights: ``$CS231N_VIS_CACHE``, else
    ``~/.cache/cs231n_vis``. It also holds this machine's lock file."""
    return Path(os.environ.get(CACHE_ENV_VAR, "").strip() or Path.home() / ".cache" / "cs231n_vis").expanduser()


def paintings_dir() -> Path:
    """Where paintings are kept: ``$CS231N_VIS_PAINTINGS``, else ``cache_root()/paintings``."""
    return Path(os.environ.get(PAINTINGS_ENV_VAR, "").strip() or cache_root() / "paintings").expanduser()


def weights_dir() -> Path:
    """torch hub's checkpoint folder (honours ``$TORCH_HOME``), where torchvision looks."""
    if "torch" in sys.modules:  # also honours torch.hub.set_dir()
        return Path(sys.modules["torch"].hub.get_dir()) / "checkpoints"
    return _hub_dir_from_environment() / "checkpoints"  # what torch would say, without importing it (seconds)


def _hub_dir_from_environment() -> Path:
    """torch.hub.get_dir()'s rule: $TORCH_HOME/hub, else ${XDG_CACHE_HOME:-~/.cache}/torch/hub."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(os.path.expanduser(os.environ.get("TORCH_HOME") or os.path.join(cache, "torch"))) / "hub"


def get(name: str) -> Asset:
    """The registry entry ``name``; an unknown name lists the known ones."""
    if name not in ASSETS:
        raise UnknownAssetError(f"unknown asset {name!r}; known: {', '.join(ASSETS)}")
    return ASSETS[name]


def names(kinds: Iterable[str] | None = None) -> list[str]:
    """The registry's names, optionally only those of the given kinds."""
    kinds = set(KINDS if kinds is None else kinds)
    unknown = kinds - set(KINDS)
    if unknown:
        raise AssetError(f"unknown kind(s) {sorted(unknown)}; kinds: {', '.join(KINDS)}")
    return [name for name, asset in ASSETS.items() if asset.kind in kinds]


class _Store:
    """A destination: this machine's caches (``root=None``) or a folder in mirror layout."""

    def __init__(self, root: str | os.PathLike | None):
        self.root = None if root is None else Path(root).expanduser()

    @property
    def is_mirror(self) -> bool:
        return self.root is not None

    def folder(self, kind: str) -> Path:
        if self.root is not None:
            return self.root / kind
        if kind == "weights":
            return weights_dir()
        if kind == "painting":
            return paintings_dir()
        return cache_root() / kind

    def path(self, name: str) -> Path:
        asset = get(name)
        return self.folder(asset.kind) / asset.filename

    @property
    def lock_path(self) -> Path:
        return (self.root if self.root is not None else cache_root()) / LOCK_FILE

    def read_lock(self) -> dict:
        return _parse_lock(self.lock_path.read_text(encoding="utf-8"), str(self.lock_path)) \
            if self.lock_path.is_file() else {}

    def record(self, name: str, digest: str, size: int, source: str, verified_by: str) -> None:
        """Write (atomically) the hash seen for ``name`` into this destination's lock file."""
        asset = get(name)
        entries = self.read_lock()
        entries[name] = {"file": f"{asset.kind}/{asset.filename}", "sha256": digest, "size": size,
                         "source": source, "verified_by": verified_by}
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        document = {"format": LOCK_FORMAT, "assets": dict(sorted(entries.items()))}
        write_atomic(self.lock_path, json.dumps(document, indent=2) + "\n")


def asset_path(name: str, dest: str | os.PathLike | None = None) -> Path:
    """Where ``name`` lives in ``dest`` (a mirror-layout folder) or, by default, on this machine."""
    return _Store(dest).path(name)


def _parse_lock(text: str, where: str) -> dict:
    try:
        document = json.loads(text)
        entries = document["assets"]
        if document.get("format") != LOCK_FORMAT or not isinstance(entries, dict):
            raise ValueError(f"format {document.get('format')!r}")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AssetError(f"{where} is not a lock file of this package ({LOCK_FORMAT!r}): {exc}") from None
    return entries


def _locked_hash(entries: dict, name: str) -> str | None:
    """The hash a lock records for ``name``, if it is for the registry's current file name."""
    entry, asset = entries.get(name), get(name)
    if isinstance(entry, dict) and entry.get("file") == f"{asset.kind}/{asset.filename}":
        digest = entry.get("sha256")
        if isinstance(digest, str) and len(digest) == 64:
            return digest.lower()
    return None


# ---------------------------------------------------------------------------
# Mirrors
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Source:
    """Where a file is fetched from: ``url`` (what messages show), for a local mirror its ``path``,
    and the ``mirror`` it belongs to (None: upstream)."""

    url: str
    path: Path | None = None
    mirror: str | None = None


class _Mirror:
    """A mirror given as an http(s):// URL, a file:// URL or a directory (mirror layout)."""

    def __init__(self, spec: str):
        self.spec = spec
        if spec.startswith(("http://", "https://")):
            self.base, self.directory = spec.rstrip("/"), None
            return
        if spec.startswith("file://"):
            path = Path(urllib.request.url2pathname(urllib.parse.urlparse(spec).path))
        elif "://" in spec:
            raise AssetError(f"the mirror ({MIRROR_ENV_VAR} or --mirror) must be an http://, https:// or file:// URL "
                             f"or a directory; got {spec!r}")
        else:
            path = Path(spec).expanduser()
        if not path.is_dir():
            raise AssetError(f"the mirror ({MIRROR_ENV_VAR} or --mirror) {spec!r} is not a directory on this machine")
        self.directory = path.resolve()
        self.base = self.directory.as_uri()

    def source(self, name: str) -> _Source:
        asset = get(name)
        if self.directory is not None:
            path = self.directory / asset.kind / asset.filename
            return _Source(path.as_uri(), path, self.spec)
        return _Source(f"{self.base}/{asset.kind}/{urllib.parse.quote(asset.filename)}", None, self.spec)

    def lock(self, name: str, timeout: float) -> dict:
        """The mirror's lock entries ({} when it has no lock file)."""
        if self.directory is not None:
            path = self.directory / LOCK_FILE
            return _parse_lock(path.read_text(encoding="utf-8"), str(path)) if path.is_file() else {}
        import requests

        url = f"{self.base}/{LOCK_FILE}"
        try:
            response = requests.get(url, timeout=timeout, headers={"User-Agent": USER_AGENT})
        except requests.exceptions.RequestException as exc:
            raise _download_error(name, url, exc, timeout, self.spec) from None
        if response.status_code == 404:
            return {}
        if not response.ok:
            raise DownloadError(f"cannot read the mirror's lock file {url} (needed for {name!r}): "
                                f"HTTP {response.status_code} {response.reason}")
        return _parse_lock(response.text, url)


def _mirror(mirror: str | None) -> _Mirror | None:
    spec = mirror if mirror is not None else os.environ.get(MIRROR_ENV_VAR, "").strip()
    return _Mirror(spec) if spec else None


def offline() -> bool:
    """Whether ``$CS231N_VIS_OFFLINE`` forbids downloads (set to anything but empty or 0)."""
    return os.environ.get(OFFLINE_ENV_VAR, "").strip() not in ("", "0")


# ---------------------------------------------------------------------------
# Downloading: pooch does the temporary file and the move; we do the checks and the messages
# ---------------------------------------------------------------------------

def _is_timeout(exc: BaseException) -> bool:
    import requests
    import urllib3

    # requests raises Timeout before the body, but ConnectionError(ReadTimeoutError) when the
    # server stalls in the middle of it.
    return isinstance(exc, requests.exceptions.Timeout) or any(
        isinstance(arg, (urllib3.exceptions.TimeoutError, TimeoutError)) for arg in exc.args)


def _download_error(name: str, url: str, exc: BaseException, timeout: float,
                    mirror: str | None = None) -> DownloadError:
    import requests

    if _is_timeout(exc):
        return DownloadTimeoutError(f"cannot download {name!r} from {url}: timed out after {timeout:g} s "
                                    f"(the server sent nothing for that long). {_no_network_hint(name, mirror)}")
    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        reason = f"HTTP {exc.response.status_code} {exc.response.reason}"
    elif isinstance(exc, requests.exceptions.ChunkedEncodingError):
        detail = exc.args[0] if exc.args else exc
        reason = f"the connection closed before the whole file arrived ({detail}); run again"
    elif isinstance(exc, requests.exceptions.ConnectionError):
        reason = f"cannot connect ({_innermost(exc)})"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    return DownloadError(f"cannot download {name!r} from {url}: {reason}. {_no_network_hint(name, mirror)}")


def _innermost(exc: BaseException) -> str:
    """The root cause of a requests/urllib3 connection error, e.g. 'Connection refused'."""
    seen = exc
    while True:
        inner = getattr(seen, "reason", None) or (seen.args[0] if seen.args and isinstance(seen.args[0], BaseException)
                                                   else None)
        if not isinstance(inner, BaseException) or inner is seen:
            break
        seen = inner
    text = str(seen)
    text = text.split("] ", 1)[-1] if "Errno" in text else text  # "[Errno -2] Name or service not known)"
    return text.rstrip(")") if text.count(")") > text.count("(") else text


def _check_content(name: str, path: Path, url: str) -> None:
    """Beyond the hash: an image decodes, the ImageNet sample has its arrays (the only check
    an entry without a known hash gets, against an error page sent with status 200)."""
    asset = get(name)
    try:
        if asset.kind in ("painting", "content"):
            from PIL import Image

            with Image.open(path) as image:
                image.verify()
        elif asset.kind == "sample":
            import numpy as np

            with np.load(path, allow_pickle=False) as arrays:
                missing = {"X", "y"} - set(arrays.files)
                if missing:
                    raise ValueError(f"no array {sorted(missing)}")
    except Exception as exc:  # PIL and numpy raise many kinds; any of them means "not the file"
        raise AssetError(f"{url} did not send a usable {asset.kind} file for {name!r} ({type(exc).__name__}: "
                         f"{exc}); an error page or a broken file on the server? Nothing was saved.") from None


def _verify(name: str, path: Path, url: str, expected: str | None) -> str:
    """Check a downloaded (temporary) file: size, hash, content. Return its SHA-256."""
    asset = get(name)
    size = path.stat().st_size
    if asset.size is not None and size != asset.size:
        raise HashMismatchError(f"{asset.filename} from {url} has {size} bytes, expected {asset.size}: a cut or "
                                "different file; nothing was saved")
    digest = sha256_of(path)
    if expected is not None and digest != expected:
        raise HashMismatchError(f"{asset.filename} from {url} is not the right file: its SHA-256 is {digest}, expected "
                                f"{expected} (a corrupt or different file on the server: replace it there); "
                                "nothing was saved")
    prefix = asset.hash_prefix
    if expected is None and prefix is not None and not digest.startswith(prefix):
        raise HashMismatchError(f"{asset.filename} from {url} is not the right file: its SHA-256 is {digest}, its "
                                f"file name says {prefix}... (a corrupt or different file on the server: replace "
                                "it there); nothing was saved")
    _check_content(name, path, url)
    return digest


@contextmanager
def _quiet_pooch() -> Iterator[None]:
    """pooch logs every download at INFO to stderr; the package prints nothing (DESIGN §3)."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")
    try:
        yield
    finally:
        logger.setLevel(level)


def _fetch_bytes(name: str, source: _Source, timeout: float, progress: bool) -> Callable[[str], None]:
    """A function that writes what ``source`` holds into the given (temporary) file."""
    if source.path is not None:
        def copy(output: str) -> None:
            try:
                shutil.copyfile(source.path, output)
            except FileNotFoundError:
                raise DownloadError(f"cannot copy {name!r} from {source.url}: the mirror {source.mirror} (from "
                                    f"{MIRROR_ENV_VAR} or --mirror) has no such file; fill it with: "
                                    f"{fetch_command(name)} --dest MIRROR_DIR") from None
        return copy

    import pooch
    import requests

    downloader = pooch.HTTPDownloader(progressbar=progress, chunk_size=1 << 20, timeout=timeout,
                                      headers={"User-Agent": USER_AGENT})

    def download(output: str) -> None:
        try:
            downloader(source.url, output, None)
        except requests.exceptions.RequestException as exc:
            raise _download_error(name, source.url, exc, timeout, source.mirror) from None
    return download


def _download(name: str, target: Path, source: _Source, expected: str | None, timeout: float,
              progress: bool) -> str:
    """Download into ``target`` through pooch; return the SHA-256 of what was saved."""
    import pooch

    write = _fetch_bytes(name, source, timeout, progress)
    seen = {}

    def downloader(url: str, output_file: str, pooch_instance) -> None:
        # pooch calls this with a temporary file beside the target; raising here makes pooch
        # delete it, so the target appears only once every check passed.
        write(output_file)
        seen["sha256"] = _verify(name, Path(output_file), source.url, expected)
        set_default_permissions(output_file)  # readable by everyone sharing the cache

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _quiet_pooch():
            pooch.retrieve(source.url, known_hash=expected, fname=target.name, path=target.parent,
                           downloader=downloader, progressbar=False)
    except OSError as exc:
        if isinstance(exc, AssetError):  # DownloadTimeoutError is a TimeoutError, so an OSError
            raise
        raise AssetError(f"cannot save {name!r} in {target.parent}: {exc}") from None
    return seen["sha256"]


# ---------------------------------------------------------------------------
# The public API
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Fetched:
    """What ``fetch_asset`` did: path, action (``present`` or ``downloaded``), the file's SHA-256,
    the URL it came from (None when present), and how it was verified (``registry sha256``,
    ``lock``, ``mirror lock``, ``file-name prefix`` or ``trust-first-download``)."""

    name: str
    path: Path
    action: str
    sha256: str
    url: str | None
    verified_by: str


def fetch_asset(name: str, dest: str | os.PathLike | None = None, *, mirror: str | None = None,
                timeout: float = 60, trust_first_download: bool = False, allow_download: bool | None = None,
                progress: bool = False) -> Fetched:
    """Make sure the asset ``name`` is present and verified in ``dest``; download it if needed.

    dest: a folder in mirror layout (``<dest>/<kind>/<file>``, lock ``<dest>/registry.lock.json``)
        or None for this machine's caches (weights: torch hub's; see ``asset_path``).
    mirror: an http(s):// URL, file:// URL or directory in mirror layout used instead of the
        upstream URL; None reads ``$CS231N_VIS_MIRROR`` (empty: upstream).
    timeout: seconds the server may stay silent before the download is abandoned.
    trust_first_download: accept an entry with no known hash (recorded in ``dest``'s lock).
    allow_download: whether downloading is allowed; None: unless ``$CS231N_VIS_OFFLINE`` is set
        (the command line passes True: it is how one downloads on purpose).

    A present file is checked against the registry's SHA-256, else the destination's lock,
    else (weights) the prefix in its name; a wrong one is downloaded again (offline: an error
    that says to delete it). Raises an ``AssetError`` subclass with a message that names the
    asset, the URL tried and ``$CS231N_VIS_MIRROR``; nothing partial is ever left behind.
    """
    asset = get(name)
    store = _Store(dest)
    target = store.path(name)
    expected, verified_by = asset.sha256, "registry sha256"
    if expected is None and (expected := _locked_hash(store.read_lock(), name)) is not None:
        verified_by = "lock"

    stale = None
    if target.is_file():
        digest = sha256_of(target)
        if expected is not None and digest == expected:
            return Fetched(name, target, "present", digest, None, verified_by)
        if expected is None and asset.hash_prefix is not None and digest.startswith(asset.hash_prefix):
            return Fetched(name, target, "present", digest, None, "file-name prefix")
        if expected is None and asset.hash_prefix is None:
            if not trust_first_download:
                raise UnverifiedAssetError(
                    f"{target} is present but no SHA-256 is known for {name!r} to check it against (none is recorded "
                    f"in the registry or in {store.lock_path}). Look at the file; to accept it and record its hash: "
                    f"{fetch_command(name, trust=True)}")
            store.record(name, digest, target.stat().st_size, str(target), "trust-first-download")
            return Fetched(name, target, "present", digest, None, "trust-first-download")
        stale = digest

    allowed = (not offline()) if allow_download is None else allow_download
    if not allowed:
        why = f"{OFFLINE_ENV_VAR} is set" if allow_download is None else "downloading was not allowed"
        if stale is not None:
            wanted = expected or f"{asset.hash_prefix}..."
            raise HashMismatchError(
                f"{target} is corrupt or a different file: its SHA-256 is {stale}, expected {wanted}. Delete the "
                f"file and fetch it again: {fetch_command(name)}")
        raise OfflineError(f"{name!r} is not on this machine (looked for {target}) and {why}, so "
                           f"nothing is downloaded. Fetch it once, from the internet or a lab mirror "
                           f"({MIRROR_ENV_VAR}): {fetch_command(name)}")

    chosen = _mirror(mirror)
    source = chosen.source(name) if chosen else _Source(asset.url)
    if expected is None and chosen is not None:
        if (expected := _locked_hash(chosen.lock(name, timeout), name)) is not None:
            verified_by = "mirror lock"
    if expected is None:
        if asset.hash_prefix is not None:
            verified_by = "file-name prefix"
        elif trust_first_download:
            verified_by = "trust-first-download"
        else:
            where = f" or in the mirror's {LOCK_FILE}" if chosen else ""
            raise UnverifiedAssetError(
                f"no SHA-256 is known for {name!r} ({source.url}) in the registry{where}, so its download cannot be "
                f"verified. Hashes are recorded on the first online fetch: {fetch_command(name, trust=True)} "
                f"(then look at the file; the hash is saved in the destination's {LOCK_FILE})")

    if stale is not None:
        try:
            target.unlink()  # pooch skips a present file when it has no hash to compare with
        except OSError as exc:
            raise HashMismatchError(f"{target} is corrupt or a different file (SHA-256 {stale}) and cannot be "
                                    f"replaced: {exc}. Ask whoever owns it to delete it.") from None
    digest = _download(name, target, source, expected, timeout, progress)
    if store.is_mirror or verified_by in ("trust-first-download", "mirror lock"):
        store.record(name, digest, target.stat().st_size, source.url, verified_by)
    return Fetched(name, target, "downloaded", digest, source.url, verified_by)


def fetch(name: str, dest: str | os.PathLike | None = None, **options) -> Path:
    """The path of a verified copy of asset ``name`` (see ``fetch_asset`` for the options)."""
    return fetch_asset(name, dest, **options).path


def fetch_all(dest: str | os.PathLike, *, kinds: Iterable[str] | None = None, **options) -> dict[str, Path]:
    """Fetch every asset (or those of ``kinds``) into ``dest`` in mirror layout; a lab mirror.

    Tries every one; if any fails, raises one ``AssetError`` listing each failure.
    """
    fetched, failed = {}, []
    for name in names(kinds):
        try:
            fetched[name] = fetch(name, dest, **options)
        except AssetError as exc:
            failed.append(f"{name}: {exc}")
    if failed:
        raise AssetError(f"{len(failed)} of {len(failed) + len(fetched)} assets failed:\n  " + "\n  ".join(failed))
    return fetched


def known_hash(name: str, dest: str | os.PathLike | None = None) -> tuple[str | None, str]:
    """(hash, kind of check) for ``name``: ``full`` (registry), ``lock`` (``dest``'s lock),
    ``prefix`` (weights' file name) or ``none``."""
    asset = get(name)
    if asset.sha256:
        return asset.sha256, "full"
    if (locked := _locked_hash(_Store(dest).read_lock(), name)) is not None:
        return locked, "lock"
    if asset.hash_prefix:
        return asset.hash_prefix, "prefix"
    return None, "none"


# ---------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------

def imagenet_val_sample(num: int | None = None):
    """CS231n's 25 labelled ImageNet validation images: (images (N, 3, 224, 224) float in [0, 1],
    labels (N,) int64 ImageNet-1k indices, as ``models.imagenet_classes()`` orders them).

    Fetched if missing (from ``$CS231N_VIS_MIRROR`` when set); no hash is recorded for it in
    the registry, so it downloads only from a mirror whose lock records it, or after
    ``fetch_assets.py imagenet_val_25 --trust-first-download``. The file's pickled label map is
    never unpickled (``allow_pickle=False``): only the arrays X and y are read.
    """
    import numpy as np
    import torch

    try:
        path = fetch("imagenet_val_25")
    except AssetError as exc:
        raise FileNotFoundError(f"CS231n's ImageNet sample is not available: {exc}") from None  # says how to fetch
    with np.load(path, allow_pickle=False) as arrays:
        images, labels = arrays["X"][:num], arrays["y"][:num]
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
    return x.contiguous(), torch.from_numpy(labels.astype(np.int64))


def content_images(size: int = 256, which: Iterable[str] | None = None):
    """The content photos for fast style training as one tensor (N, 3, size, size) in [0, 1]
    (shorter side resized to ``size``, centre crop), fetched if missing (they have full hashes).
    ``which``: some of the content names (default: all of them, in registry order)."""
    import torch

    from .images import load_image, to_tensor

    chosen = list(which) if which is not None else names(["content"])
    wrong = [name for name in chosen if get(name).kind != "content"]
    if wrong:
        raise AssetError(f"not content images: {wrong}; the content images are {', '.join(names(['content']))}")
    return torch.cat([to_tensor(load_image(fetch(name)), size=size) for name in chosen])

"""Fetch the torchvision ImageNet weights the course uses into torch hub's cache.

Run once where there is internet (or point --mirror at a lab server holding the
same file names); afterwards `cs231n_vis.load_model` loads them with no download.

    python data_scripts/fetch_weights.py squeezenet1_1 resnet18
    python data_scripts/fetch_weights.py --all --mirror http://labserver:8000/
    python data_scripts/fetch_weights.py --list
"""

import argparse
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import torch
import torchvision

from cs231n_vis.files import atomic_open, sha256_of
from cs231n_vis.models import TORCHVISION_MODELS as MODELS  # the one list of supported models
CHUNK = 1 << 20  # bytes read and hashed at a time


class FetchError(Exception):
    """A checkpoint could not be fetched; the message says which URL and why."""


def weights_file(name: str) -> tuple[str, str]:
    """(url, file name) of the default ImageNet weights of the model `name`."""
    if name not in MODELS:
        raise FetchError(f"unknown model {name!r}; supported: {', '.join(MODELS)}")
    url = torchvision.models.get_model_weights(name).DEFAULT.url
    return url, os.path.basename(url)


def default_cache_dir() -> Path:
    """The folder torchvision's weights API loads checkpoints from (honours $TORCH_HOME)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def download(url: str, file, timeout: float) -> str:
    """Write what `url` serves into the open binary `file`; return its SHA-256 hex digest."""
    digest, received = hashlib.sha256(), 0
    request = urllib.request.Request(url, headers={"User-Agent": "cs231n-vis fetch_weights"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            announced = response.headers.get("Content-Length")
            while chunk := response.read(CHUNK):
                file.write(chunk)
                digest.update(chunk)
                received += len(chunk)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise FetchError(f"cannot download {url}: {exc.reason}") from exc
    except (http.client.HTTPException, ConnectionError, TimeoutError) as exc:
        raise FetchError(f"cannot download {url}: {exc!r}") from exc
    # http.client hands back what arrived when the server hangs up early, without an error;
    # unchecked, a cut transfer would be reported as a wrong file on the server.
    if announced is not None and received != int(announced):
        raise FetchError(f"cannot download {url}: the transfer stopped after {received} of {announced} bytes; "
                         "run again")
    return digest.hexdigest()


def fetch(name: str, dest_dir, mirror: str | None = None, timeout: float = 60) -> Path:
    """Make sure the weights of `name` are in `dest_dir`, downloading them if needed.

    `mirror` is a base URL (http://, https:// or file://) that replaces the original
    location: the file is fetched from MIRROR/<file name>. The download goes to a
    temporary file in `dest_dir` that gets its final name only once its SHA-256
    matches the prefix in the file name, so the cache never holds a partial file.
    """
    url, filename = weights_file(name)
    if mirror:
        url = f"{mirror.rstrip('/')}/{filename}"
    dest_dir = Path(dest_dir)
    target = dest_dir / filename
    expected = torch.hub.HASH_REGEX.search(filename).group(1)  # the check torch.hub does
    if target.exists():
        if sha256_of(target).startswith(expected):
            print(f"{name}: {target} is already present (hash OK), skipping")
            return target
        print(f"{name}: {target} has the wrong hash, downloading it again")

    dest_dir.mkdir(parents=True, exist_ok=True)
    print(f"{name}: downloading {url}")
    # atomic_open: a temporary file beside the target, renamed into place only when the block
    # ends without an error (readable by everyone sharing the cache); removed on any error,
    # Ctrl-C included, so the cache never holds a partial file.
    with atomic_open(target, "wb") as partial:
        digest = download(url, partial, timeout)
        if not digest.startswith(expected):
            raise FetchError(
                f"{url} is not the right file: its SHA-256 is {digest}, expected {expected}... "
                "(a corrupt or different file on the server; replace it there and run again)"
            )
    print(f"{name}: saved {target} ({target.stat().st_size / 1e6:.1f} MB, hash OK)")
    return target


def list_models(dest_dir: Path) -> None:
    for name in MODELS:
        url, filename = weights_file(name)
        status = "cached" if (dest_dir / filename).exists() else "missing"
        print(f"{name:<14} {status:<8} {filename:<28} {url}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Fetch torchvision ImageNet weights into torch hub's cache for offline use."
    )
    parser.add_argument("models", nargs="*", metavar="MODEL", help=f"one of: {', '.join(MODELS)}")
    parser.add_argument("--all", action="store_true", help="fetch every supported model")
    parser.add_argument(
        "--mirror", metavar="URL", help="base URL (http://, https:// or file://) of a folder with the same file names"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=default_cache_dir(), help="where to put the files (default: %(default)s)"
    )
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for the server (default: %(default)s)")
    parser.add_argument("--list", action="store_true", help="list the supported models and whether they are cached")
    args = parser.parse_args(argv)

    if args.list:
        list_models(args.cache_dir)
        return 0
    names = MODELS if args.all else args.models
    if not names:
        parser.error("name at least one model, or use --all or --list")
    if args.mirror and not args.mirror.startswith(("http://", "https://", "file://")):
        parser.error(f"--mirror must start with http://, https:// or file://, got {args.mirror!r}")

    failed = []
    for name in names:
        try:
            fetch(name, args.cache_dir, args.mirror, args.timeout)
        except (FetchError, OSError) as exc:
            print(f"{name}: FAILED: {exc}", file=sys.stderr)
            failed.append(name)
        except KeyboardInterrupt:
            print(f"\ninterrupted; no partial file was left in {args.cache_dir}", file=sys.stderr)
            return 130

    if failed:
        print(
            f"\n{len(failed)} of {len(names)} failed: {', '.join(failed)}\n"
            "No network? Use --mirror URL with your lab's server, "
            f"or copy the checkpoint files into {args.cache_dir}",
            file=sys.stderr,
        )
        return 1
    print(f"\nall {len(names)} present in {args.cache_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

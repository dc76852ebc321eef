"""Fetch classic paintings (public domain, from Wikimedia Commons) as style images for notebook 09.

The notebooks never need them: their style images ship with scikit-image or are drawn by
the package (`cs231n_vis.style.STYLE_IMAGES`). With internet, or a lab mirror, this adds
the paintings of the style-transfer papers; `style.style_image("starry_night")` then loads
one from the paintings folder (`$CS231N_VIS_PAINTINGS`, default ~/.cache/cs231n_vis/paintings).

    python data_scripts/fetch_paintings.py starry_night great_wave
    python data_scripts/fetch_paintings.py --all --mirror http://labserver:8000/paintings/
    CS231N_VIS_MIRROR=http://labserver:8000/paintings/ python data_scripts/fetch_paintings.py --all
    python data_scripts/fetch_paintings.py --list

Hashes. Every file is checked against the SHA-256 recorded in PAINTINGS below before it
gets its final name. This script was written without internet access, so the hashes could
not be computed then, and none was invented: they are recorded on the first online fetch.
Until an entry has its hash, the script refuses it, unless you pass --trust-first-download:
it then downloads the file, checks that it is an image, saves it, and prints the SHA-256 to
record in PAINTINGS (look at the image first). From then on every fetch is verified.

A download is checked in memory (complete, hash, readable as an image) and only then
written, to a temporary file beside its target that is renamed into place when complete
(cs231n_vis.files.atomic_open); an error or Ctrl-C leaves nothing behind.
"""

import argparse
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling script, when run from anywhere
from fetch_weights import FetchError, download  # noqa: E402  (HTTP errors and cut transfers, handled once)

from cs231n_vis.files import atomic_open, sha256_of  # noqa: E402
from cs231n_vis.style import PAINTINGS_ENV_VAR, paintings_dir  # noqa: E402

MIRROR_ENV_VAR = "CS231N_VIS_MIRROR"


@dataclass(frozen=True)
class Painting:
    """url: where Wikimedia serves it; sha256: the full hex digest, None until recorded on the
    first online fetch (see the module docstring); credit: what it is and why we may use it."""

    url: str
    sha256: str | None
    credit: str

    @property
    def suffix(self) -> str:
        return Path(self.url).suffix.lower()


PAINTINGS = {
    "starry_night": Painting(
        "https://upload.wikimedia.org/wikipedia/commons/thumb/e/ea/Van_Gogh_-_Starry_Night_-_Google_Art_Project.jpg/"
        "1280px-Van_Gogh_-_Starry_Night_-_Google_Art_Project.jpg",
        None,  # recorded on the first online fetch
        "Vincent van Gogh, The Starry Night (1889), MoMA; public domain (Google Art Project, Wikimedia Commons)"),
    "great_wave": Painting(
        "https://upload.wikimedia.org/wikipedia/commons/thumb/a/a5/Tsunami_by_hokusai_19th_century.jpg/"
        "1280px-Tsunami_by_hokusai_19th_century.jpg",
        None,  # recorded on the first online fetch
        "Katsushika Hokusai, The Great Wave off Kanagawa (c. 1831); public domain (Wikimedia Commons)"),
    "composition_vii": Painting(
        "https://upload.wikimedia.org/wikipedia/commons/b/b4/Vassily_Kandinsky%2C_1913_-_Composition_7.jpg",
        None,  # recorded on the first online fetch
        "Wassily Kandinsky, Composition VII (1913), Tretyakov Gallery; public domain (Wikimedia Commons)"),
}


def file_name(name: str) -> str:
    """The painting's file name in the paintings folder and on a mirror: NAME + the URL's suffix."""
    if name not in PAINTINGS:
        raise FetchError(f"unknown painting {name!r}; available: {', '.join(PAINTINGS)}")
    return name + PAINTINGS[name].suffix


def _check_image(data: io.BytesIO, url: str) -> None:
    data.seek(0)
    try:
        with Image.open(data) as image:
            image.verify()
    except Exception as exc:  # PIL raises many kinds; any of them means "not an image"
        raise FetchError(f"{url} did not send an image ({type(exc).__name__}: {exc}); "
                         "an error page or a broken file on the server?") from None


def fetch(name: str, dest_dir, mirror: str | None = None, timeout: float = 60,
          trust_first_download: bool = False) -> tuple[Path, str]:
    """Make sure painting `name` is in `dest_dir`; return (its path, its SHA-256).

    `mirror`: a base URL (http://, https:// or file://) of a folder holding the same file
    names (`file_name(name)`), used instead of Wikimedia. An entry without a recorded hash
    is refused unless `trust_first_download` (then the hash is returned for recording).
    """
    filename, painting = file_name(name), PAINTINGS[name]
    expected = painting.sha256
    if expected is None and not trust_first_download:
        raise FetchError(
            f"no SHA-256 is recorded for {name!r} yet, so its download cannot be verified. Hashes are "
            "recorded on the first online fetch: run again with --trust-first-download, look at the "
            f"image, and record the printed hash in PAINTINGS in {Path(__file__).name}")
    url = f"{mirror.rstrip('/')}/{filename}" if mirror else painting.url
    dest_dir = Path(dest_dir)
    target = dest_dir / filename
    if target.exists():
        digest = sha256_of(target)
        if expected is None or digest == expected:
            print(f"{name}: {target} is already present" + (" (hash OK)" if expected else " (unverified)")
                  + ", skipping")
            return target, digest
        print(f"{name}: {target} has the wrong hash, downloading it again")

    print(f"{name}: downloading {url}")
    received = io.BytesIO()  # a few MB: checked in memory, written only once it passed
    digest = download(url, received, timeout)
    if expected is not None and digest != expected:
        raise FetchError(f"{url} is not the right file: its SHA-256 is {digest}, expected {expected} "
                         "(a corrupt or different file on the server; replace it there and run again)")
    _check_image(received, url)
    dest_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(target, "wb") as partial:  # a temporary name, renamed when complete
        partial.write(received.getbuffer())
    print(f"{name}: saved {target} ({target.stat().st_size / 1e6:.1f} MB, "
          + ("hash OK)" if expected else "UNVERIFIED: no hash was recorded)"))
    return target, digest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fetch public-domain paintings as style images (hash-checked).")
    parser.add_argument("paintings", nargs="*", metavar="NAME", help=f"one of: {', '.join(PAINTINGS)}")
    parser.add_argument("--all", action="store_true", help="fetch every painting")
    parser.add_argument("--list", action="store_true", help="list the paintings and whether they are here")
    parser.add_argument("--dest", type=Path, default=paintings_dir(),
                        help=f"where to put them (default: ${PAINTINGS_ENV_VAR} or %(default)s)")
    parser.add_argument("--mirror", metavar="URL", default=os.environ.get(MIRROR_ENV_VAR) or None,
                        help=f"base URL (http://, https:// or file://) of a lab mirror with the same file names "
                             f"(default: ${MIRROR_ENV_VAR})")
    parser.add_argument("--timeout", type=float, default=60,
                        help="seconds to wait for the server (default: %(default)s)")
    parser.add_argument("--trust-first-download", action="store_true",
                        help="accept a painting whose hash is not recorded yet, and print the hash to record")
    args = parser.parse_args(argv)

    if args.list:
        for name, painting in PAINTINGS.items():
            status = "present" if (args.dest / file_name(name)).exists() else "missing"
            recorded = "hash recorded" if painting.sha256 else "no hash yet"
            print(f"{name:<16} {status:<8} {recorded:<14} {painting.credit}")
        return 0
    names = list(PAINTINGS) if args.all else args.paintings
    if not names:
        parser.error("name at least one painting, or use --all or --list")
    if args.mirror and not args.mirror.startswith(("http://", "https://", "file://")):
        parser.error(f"--mirror (or ${MIRROR_ENV_VAR}) must start with http://, https:// or file://, "
                     f"got {args.mirror!r}")

    failed, to_record = [], {}
    for name in names:
        try:
            path, digest = fetch(name, args.dest, args.mirror, args.timeout, args.trust_first_download)
            if PAINTINGS[name].sha256 is None:
                to_record[name] = digest
        except (FetchError, OSError) as exc:
            print(f"{name}: FAILED: {exc}", file=sys.stderr)
            failed.append(name)
        except KeyboardInterrupt:
            print(f"\ninterrupted; no partial file was left in {args.dest}", file=sys.stderr)
            return 130
    for name, digest in to_record.items():
        print(f'record in PAINTINGS: "{name}": sha256="{digest}"')
    if failed:
        print(f"\n{len(failed)} of {len(names)} failed: {', '.join(failed)}\n"
              f"No network? Use --mirror URL (or ${MIRROR_ENV_VAR}) with your lab's server, "
              f"or copy the files into {args.dest}", file=sys.stderr)
        return 1
    print(f"\nall {len(names)} present in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

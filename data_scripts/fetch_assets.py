"""Fetch the course's online-only assets (hash-checked), into this machine's caches or a lab mirror.

Run it with the environment's Python (the one that has cs231n_vis installed):

    .venv/bin/python data_scripts/fetch_assets.py --list
    .venv/bin/python data_scripts/fetch_assets.py squeezenet1_1 vgg16        # into this machine's caches
    .venv/bin/python data_scripts/fetch_assets.py --kind weights --kind content
    .venv/bin/python data_scripts/fetch_assets.py --all --dest /srv/cs231n-mirror --trust-first-download
    CS231N_VIS_MIRROR=http://labserver:8000/ .venv/bin/python data_scripts/fetch_assets.py --all

The registry is cs231n_vis/assets.py (ASSETS). --dest DIR writes the mirror layout
DIR/<kind>/<file> and DIR/registry.lock.json; serve DIR over HTTP or share it, and set
CS231N_VIS_MIRROR on every machine. Entries without a full SHA-256 in the registry are
fetched only with --trust-first-download, which records the hash it saw in the destination's
lock file (every later fetch from it is verified against that). The exit code is 0 exactly
when everything requested is present and verified.
"""

import argparse
import sys

try:
    from cs231n_vis import assets
except ImportError:  # run with a Python that does not have the package
    sys.exit(f"cannot import cs231n_vis with {sys.executable}: run this script with the course environment's "
             "Python, e.g. .venv/bin/python data_scripts/fetch_assets.py (after `make course` or "
             "`python -m venv .venv && .venv/bin/pip install -e .`)")


def _size(asset) -> str:
    return f"{asset.size / 1e6:.1f} MB" if asset.size else "?"


def list_assets(dest) -> None:
    print(f"{'name':<16} {'kind':<9} {'status':<8} {'hash':<7} {'size':>9}  {'file':<28} what")
    for name, asset in assets.ASSETS.items():
        status = "present" if assets.asset_path(name, dest).is_file() else "missing"
        _, check = assets.known_hash(name, dest)
        what = asset.source.split(" (")[0]  # the full source and licence: cs231n_vis/assets.py
        print(f"{name:<16} {asset.kind:<9} {status:<8} {check:<7} {_size(asset):>9}  {asset.filename:<28} {what}")
    where = dest if dest is not None else "this machine's caches (weights: torch hub's)"
    print(f"\nhash: full = SHA-256 in the registry, lock = recorded in {assets.LOCK_FILE} by a trusted first "
          "download, prefix = torchvision's file-name prefix, none = needs --trust-first-download\n"
          f"status in {where}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Fetch the course's online-only assets, hash-checked, into this machine's caches or a lab mirror.")
    parser.add_argument("names", nargs="*", metavar="NAME", help="assets to fetch (see --list)")
    parser.add_argument("--all", action="store_true", help="every asset of the registry")
    parser.add_argument("--kind", action="append", choices=assets.KINDS, default=[],
                        help="every asset of this kind (may be repeated)")
    parser.add_argument("--list", action="store_true", help="list the registry and what is present")
    parser.add_argument("--dest", metavar="DIR",
                        help="a folder to fill in mirror layout (DIR/<kind>/<file>, DIR/registry.lock.json); "
                             "default: this machine's caches")
    parser.add_argument("--mirror", metavar="URL",
                        help=f"fetch from this mirror instead of upstream: http(s)://, file:// or a directory "
                             f"(default: ${assets.MIRROR_ENV_VAR})")
    parser.add_argument("--timeout", type=float, default=60,
                        help="seconds the server may stay silent before giving up (default: %(default)s)")
    parser.add_argument("--trust-first-download", action="store_true",
                        help="accept entries whose hash is not known yet and record the hash seen in the lock file")
    parser.add_argument("--progress", action="store_true", help="show a progress bar per download")
    args = parser.parse_args(argv)

    if args.list:
        list_assets(args.dest)
        return 0
    if args.all:
        chosen = list(assets.ASSETS)
    else:
        chosen = list(dict.fromkeys([*args.names, *assets.names(args.kind)])) if args.kind else list(args.names)
    if not chosen:
        parser.error("name at least one asset, or use --all, --kind or --list")

    failed = []
    for name in chosen:
        try:
            got = assets.fetch_asset(name, args.dest, mirror=args.mirror, timeout=args.timeout,
                                     trust_first_download=args.trust_first_download, allow_download=True,
                                     progress=args.progress)
        except assets.AssetError as exc:
            print(f"{name}: FAILED: {exc}", file=sys.stderr)
            failed.append(name)
            continue
        except KeyboardInterrupt:
            print("\ninterrupted; no partial file was left behind", file=sys.stderr)
            return 130
        if got.action == "present":
            print(f"{name}: present, {got.verified_by} OK ({got.path})")
        else:
            print(f"{name}: downloaded from {got.url}, {got.verified_by} OK ({got.path})")
        if got.verified_by == "trust-first-download":
            print(f"{name}: UNVERIFIED first download, sha256 {got.sha256} recorded in the lock file; "
                  "look at the file; to pin it for everyone, add it to ASSETS in cs231n_vis/assets.py")

    if failed:
        print(f"\n{len(failed)} of {len(chosen)} failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"\nall {len(chosen)} present and verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())

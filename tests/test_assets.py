"""cs231n_vis.assets and data_scripts/fetch_assets.py against a real HTTP server on 127.0.0.1
(port 0, never the internet) serving fixture files: a good one, a corrupt one, a truncated
transfer, a slow server, an error page. Every test keeps away from the real caches
(TORCH_HOME and CS231N_VIS_CACHE point into tmp_path)."""

import contextlib
import dataclasses
import functools
import hashlib
import http.server
import importlib.util
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from cs231n_vis import assets, models, style

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "data_scripts" / "fetch_assets.py"

_spec = importlib.util.spec_from_file_location("fetch_assets", SCRIPT)
fa = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fa)


def png_bytes(colour=(200, 40, 10), size=(24, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


GOOD = png_bytes()
OTHER = png_bytes((10, 200, 40))
CHECKPOINT = io.BytesIO()
torch.save({"weight": torch.arange(6.0).reshape(2, 3)}, CHECKPOINT)
CHECKPOINT = CHECKPOINT.getvalue()
TINY = f"tiny-{sha(CHECKPOINT)[:8]}.pth"  # a file name that carries its SHA-256 prefix, as torchvision's do


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No test touches the real caches, and no mirror or offline flag leaks in from the shell."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv(assets.CACHE_ENV_VAR, str(tmp_path / "cache"))
    for var in (assets.MIRROR_ENV_VAR, assets.OFFLINE_ENV_VAR, assets.PAINTINGS_ENV_VAR):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def usual_umask():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


# ---------------------------------------------------------------------------- the server

class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the server's folder; `server.behaviour[path]` makes a path misbehave:
    "truncate" announces the whole file and hangs up halfway, "slow" waits before answering,
    "stall" sends the headers and a few bytes, then waits."""

    def do_GET(self):
        self.server.requests.append(self.path)
        behaviour = self.server.behaviour.get(self.path)
        if behaviour is None:
            return super().do_GET()
        data = (Path(self.directory) / self.path.lstrip("/")).read_bytes()
        if behaviour == "slow":
            self.server.release.wait(10)
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        if behaviour == "stall":
            self.wfile.flush()
            self.server.release.wait(10)
        # "truncate": return now; the connection closes with half the announced bytes sent

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(root: Path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    httpd.requests, httpd.behaviour, httpd.release = [], {}, threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(root=root, url=f"http://127.0.0.1:{httpd.server_port}/", requests=httpd.requests,
                              behaviour=httpd.behaviour)
    finally:
        httpd.release.set()  # lets a slow or stalled handler finish
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    with serving(root) as running:
        yield running


def put(root: Path, kind: str, filename: str, data: bytes) -> Path:
    (root / kind).mkdir(parents=True, exist_ok=True)
    (root / kind / filename).write_bytes(data)
    return root / kind / filename


@pytest.fixture
def table(monkeypatch):
    """A registry of fixtures: "good" (full hash), "fresh" (no hash), "tiny" weights (prefix only)."""
    entries = {
        "good": assets.Asset("painting", "https://example.invalid/a/good.png", "good.png", sha(GOOD), len(GOOD),
                             "a fixture"),
        "fresh": assets.Asset("painting", "https://example.invalid/b/fresh.png", "fresh.png", None, None,
                              "a fixture without a hash"),
        "tiny": assets.Asset("weights", f"https://example.invalid/models/{TINY}", TINY, None, None, "a checkpoint"),
    }
    monkeypatch.setattr(assets, "ASSETS", entries)
    return entries


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


# ---------------------------------------------------------------------------- good files

def test_a_good_file_lands_verified_in_mirror_layout(server, table, tmp_path, usual_umask):
    put(server.root, "painting", "good.png", GOOD)
    dest = tmp_path / "mirror"
    got = assets.fetch_asset("good", dest, mirror=server.url, timeout=5)
    assert got.path == dest / "painting" / "good.png" and got.path.read_bytes() == GOOD
    assert (got.action, got.sha256, got.verified_by) == ("downloaded", sha(GOOD), "registry sha256")
    assert got.url == f"{server.url}painting/good.png" and server.requests == ["/painting/good.png"]
    assert listing(dest / "painting") == ["good.png"]
    assert got.path.stat().st_mode & 0o777 == 0o644  # readable by everyone sharing the mirror
    lock = json.loads((dest / assets.LOCK_FILE).read_text())
    assert lock["assets"]["good"]["sha256"] == sha(GOOD) and lock["assets"]["good"]["file"] == "painting/good.png"


def test_pooch_writes_a_temporary_file_and_moves_it_into_place_only_after_the_checks(server, table, tmp_path,
                                                                                     monkeypatch):
    put(server.root, "painting", "good.png", GOOD)
    folder = tmp_path / "mirror" / "painting"
    seen, check = [], assets._check_content

    def spy(name, path, url):  # runs inside pooch's download, after the bytes arrived
        seen.append((listing(folder), path.parent == folder, path.read_bytes() == GOOD))
        check(name, path, url)

    monkeypatch.setattr(assets, "_check_content", spy)
    assets.fetch("good", tmp_path / "mirror", mirror=server.url, timeout=5)
    [(during, beside, complete)] = seen
    assert "good.png" not in during and len(during) == 1 and beside and complete  # only the temporary file
    assert listing(folder) == ["good.png"]


def test_a_rerun_skips_present_files_and_replaces_a_wrong_one(server, table, tmp_path):
    put(server.root, "painting", "good.png", GOOD)
    dest = tmp_path / "mirror"
    assets.fetch("good", dest, mirror=server.url, timeout=5)
    again = assets.fetch_asset("good", dest, mirror=server.url, timeout=5)
    assert again.action == "present" and server.requests == ["/painting/good.png"]
    (dest / "painting" / "good.png").write_bytes(b"damaged")
    assert assets.fetch("good", dest, mirror=server.url, timeout=5).read_bytes() == GOOD
    assert len(server.requests) == 2


def test_the_upstream_url_without_a_mirror(server, table, tmp_path, monkeypatch):
    (server.root / "good.png").write_bytes(GOOD)
    monkeypatch.setitem(assets.ASSETS, "good", dataclasses.replace(table["good"], url=f"{server.url}good.png"))
    path = assets.fetch("good", tmp_path / "mirror", timeout=5)
    assert path.read_bytes() == GOOD and server.requests == ["/good.png"]


def test_the_mirror_variable_redirects_every_fetch(server, table, monkeypatch, tmp_path):
    put(server.root, "painting", "good.png", GOOD)
    monkeypatch.setenv(assets.MIRROR_ENV_VAR, server.url)
    path = assets.fetch("good", timeout=5)  # this machine's caches: paintings_dir()
    assert path == tmp_path / "cache" / "paintings" / "good.png" and path.read_bytes() == GOOD
    assert server.requests == ["/painting/good.png"]


@pytest.mark.parametrize("form", ["directory", "file_url"])
def test_a_local_mirror(form, table, tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    put(shared, "painting", "good.png", GOOD)
    monkeypatch.setenv(assets.MIRROR_ENV_VAR, str(shared) if form == "directory" else shared.as_uri())
    got = assets.fetch_asset("good", tmp_path / "dest")
    assert got.path.read_bytes() == GOOD and got.url == (shared / "painting" / "good.png").as_uri()


def test_weights_are_checked_against_the_prefix_in_their_name(server, table, tmp_path, usual_umask):
    put(server.root, "weights", TINY, CHECKPOINT)
    got = assets.fetch_asset("tiny", mirror=server.url, timeout=5)  # into torch hub's cache
    assert got.path == tmp_path / "torch_home" / "hub" / "checkpoints" / TINY
    assert got.verified_by == "file-name prefix" and got.path.stat().st_mode & 0o777 == 0o644
    assert torch.equal(torch.load(got.path, weights_only=True)["weight"], torch.arange(6.0).reshape(2, 3))


# ---------------------------------------------------------------------------- bad files

def test_a_corrupt_file_is_refused_names_both_hashes_and_leaves_nothing(server, table, tmp_path):
    corrupt = GOOD[:-8] + b"garbage!"  # same size, wrong bytes
    put(server.root, "painting", "good.png", corrupt)
    dest = tmp_path / "mirror"
    with pytest.raises(assets.HashMismatchError) as info:
        assets.fetch("good", dest, mirror=server.url, timeout=5)
    message = str(info.value)
    assert f"good.png from {server.url}painting/good.png is not the right file" in message
    assert sha(corrupt) in message and sha(GOOD) in message and "nothing was saved" in message
    assert listing(dest / "painting") == [] and not (dest / assets.LOCK_FILE).exists()


def test_weights_whose_hash_does_not_match_their_name_are_refused(server, table, tmp_path):
    put(server.root, "weights", TINY, CHECKPOINT + b"tampered")
    with pytest.raises(assets.HashMismatchError, match=f"file name says {sha(CHECKPOINT)[:8]}"):
        assets.fetch("tiny", mirror=server.url, timeout=5)
    assert listing(tmp_path / "torch_home" / "hub" / "checkpoints") == []


def test_a_truncated_transfer_is_refused_and_leaves_nothing(server, table, tmp_path):
    put(server.root, "painting", "good.png", GOOD)
    server.behaviour["/painting/good.png"] = "truncate"
    dest = tmp_path / "mirror"
    with pytest.raises(assets.DownloadError, match=r"cannot download 'good' from .*good.png: the connection closed "
                                                   r"before the whole file arrived .*IncompleteRead"):
        assets.fetch("good", dest, mirror=server.url, timeout=5)
    assert listing(dest / "painting") == []


@pytest.mark.parametrize("behaviour", ["slow", "stall"])
def test_a_timeout_is_reported_as_a_timeout_and_leaves_nothing(server, table, tmp_path, behaviour):
    put(server.root, "painting", "good.png", GOOD)
    server.behaviour["/painting/good.png"] = behaviour  # silent before the headers, or in the middle of the body
    dest = tmp_path / "mirror"
    with pytest.raises(assets.DownloadTimeoutError, match=r"timed out after 0.3 s") as info:
        assets.fetch("good", dest, mirror=server.url, timeout=0.3)
    assert isinstance(info.value, TimeoutError) and assets.MIRROR_ENV_VAR in str(info.value)
    assert listing(dest / "painting") == []


def test_no_network_names_the_asset_the_url_and_the_mirror_variable(table, tmp_path, monkeypatch):
    with socket.socket() as sock:  # a free port with nothing listening once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = f"http://127.0.0.1:{port}"
    monkeypatch.setitem(assets.ASSETS, "good", dataclasses.replace(table["good"], url=f"{dead}/good.png"))
    with pytest.raises(assets.DownloadError) as info:  # upstream unreachable
        assets.fetch("good", tmp_path / "mirror", timeout=5)
    message = str(info.value)
    assert f"cannot download 'good' from {dead}/good.png: cannot connect" in message and "refused" in message
    assert f"No network? Set {assets.MIRROR_ENV_VAR} to your lab's mirror" in message
    assert "fetch_assets.py good" in message
    monkeypatch.setenv(assets.MIRROR_ENV_VAR, dead)
    with pytest.raises(assets.DownloadError) as info:  # the mirror unreachable
        assets.fetch("good", tmp_path / "mirror", timeout=5)
    message = str(info.value)
    assert f"from {dead}/painting/good.png: cannot connect" in message
    assert f"Is the mirror {dead} (from {assets.MIRROR_ENV_VAR} or --mirror) up" in message
    assert listing(tmp_path / "mirror" / "painting") == []


def test_404_names_the_url(server, table, tmp_path):
    with pytest.raises(assets.DownloadError, match=f"from {server.url}painting/good.png: HTTP 404"):
        assets.fetch("good", tmp_path / "mirror", mirror=server.url, timeout=5)


def test_an_error_page_is_not_an_image(server, table, tmp_path):
    put(server.root, "painting", "fresh.png", b"<html><body>429 Too Many Requests</body></html>")
    dest = tmp_path / "mirror"
    with pytest.raises(assets.AssetError, match="did not send a usable painting file for 'fresh'"):
        assets.fetch("fresh", dest, mirror=server.url, timeout=5, trust_first_download=True)
    assert listing(dest / "painting") == [] and not (dest / assets.LOCK_FILE).exists()


def test_ctrl_c_leaves_nothing(table, tmp_path, monkeypatch, capsys):
    def interrupted(name, source, timeout, progress):
        def write(output):
            Path(output).write_bytes(GOOD[:10])  # some bytes arrived, then Ctrl-C
            raise KeyboardInterrupt
        return write

    monkeypatch.setattr(assets, "_fetch_bytes", interrupted)
    dest = tmp_path / "mirror"
    assert fa.main(["good", "--mirror", "http://127.0.0.1:9/", "--dest", str(dest)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert listing(dest / "painting") == []


# ---------------------------------------------------------------------------- unknown hashes and the lock

def test_an_entry_without_a_hash_is_refused_before_any_request(server, table, tmp_path):
    put(server.root, "painting", "fresh.png", GOOD)
    with pytest.raises(assets.UnverifiedAssetError, match="no SHA-256 is known for 'fresh'.*--trust-first-download"):
        assets.fetch("fresh", tmp_path / "mirror", mirror=server.url, timeout=5)
    assert server.requests == ["/registry.lock.json"]  # the mirror's lock was asked; it has none (404)
    with pytest.raises(assets.UnverifiedAssetError):
        assets.fetch("fresh", tmp_path / "mirror", timeout=5)  # upstream: nothing is even asked
    assert len(server.requests) == 1 and not (tmp_path / "mirror").exists()


def test_trust_first_download_records_the_hash_and_a_changed_file_is_then_refused(server, table, tmp_path):
    (server.root / "fresh.png").write_bytes(GOOD)
    upstream = dataclasses.replace(table["fresh"], url=f"{server.url}fresh.png")
    assets.ASSETS["fresh"] = upstream
    dest = tmp_path / "mirror"
    got = assets.fetch_asset("fresh", dest, timeout=5, trust_first_download=True)
    assert (got.verified_by, got.sha256) == ("trust-first-download", sha(GOOD))
    entry = json.loads((dest / assets.LOCK_FILE).read_text())["assets"]["fresh"]
    assert entry["sha256"] == sha(GOOD) and entry["verified_by"] == "trust-first-download"
    assert assets.known_hash("fresh", dest) == (sha(GOOD), "lock")

    # The lock is honoured: present files are verified against it, no trust needed any more...
    assert assets.fetch_asset("fresh", dest, timeout=5).verified_by == "lock"
    # ...and a changed upstream file is refused, also with --trust-first-download.
    (dest / "painting" / "fresh.png").unlink()
    (server.root / "fresh.png").write_bytes(OTHER)
    for trust in (False, True):
        with pytest.raises(assets.HashMismatchError, match=f"its SHA-256 is {sha(OTHER)}, expected {sha(GOOD)}"):
            assets.fetch("fresh", dest, timeout=5, trust_first_download=trust)
    assert listing(dest / "painting") == []


def test_machines_fetching_from_a_mirror_verify_against_its_lock(server, table, tmp_path):
    # The admin fills a mirror (trusting the first download); the server then serves that folder.
    upstream = tmp_path / "upstream"
    put(upstream, "painting", "fresh.png", GOOD)
    assets.fetch("fresh", server.root, mirror=str(upstream), trust_first_download=True)
    assert (server.root / assets.LOCK_FILE).is_file()

    got = assets.fetch_asset("fresh", mirror=server.url, timeout=5)  # a student's machine: no trust asked
    assert got.verified_by == "mirror lock" and got.path.read_bytes() == GOOD
    assert server.requests == ["/registry.lock.json", "/painting/fresh.png"]
    assert assets.fetch_asset("fresh", mirror=server.url).action == "present"  # verified by its own lock now
    assert len(server.requests) == 2

    (server.root / "painting" / "fresh.png").write_bytes(OTHER)  # someone replaced the file on the mirror
    with pytest.raises(assets.HashMismatchError, match=f"expected {sha(GOOD)}"):
        assets.fetch("fresh", tmp_path / "elsewhere", mirror=server.url, timeout=5)
    assert listing(tmp_path / "elsewhere" / "painting") == []


def test_a_present_file_without_any_hash_is_not_silently_accepted(table, tmp_path):
    put(tmp_path / "mirror", "painting", "fresh.png", GOOD)
    with pytest.raises(assets.UnverifiedAssetError, match="present but no SHA-256 is known"):
        assets.fetch("fresh", tmp_path / "mirror")
    assert assets.fetch_asset("fresh", tmp_path / "mirror", trust_first_download=True).verified_by == \
        "trust-first-download"
    assert assets.fetch_asset("fresh", tmp_path / "mirror").verified_by == "lock"


# ---------------------------------------------------------------------------- offline

def test_offline_uses_what_is_present_and_downloads_nothing(server, table, tmp_path, monkeypatch):
    put(server.root, "painting", "good.png", GOOD)
    monkeypatch.setenv(assets.MIRROR_ENV_VAR, server.url)
    monkeypatch.setenv(assets.OFFLINE_ENV_VAR, "1")
    with pytest.raises(assets.OfflineError, match=f"not on this machine .* and {assets.OFFLINE_ENV_VAR} is set"):
        assets.fetch("good")
    assert server.requests == []
    monkeypatch.setenv(assets.OFFLINE_ENV_VAR, "0")
    path = assets.fetch("good")
    monkeypatch.setenv(assets.OFFLINE_ENV_VAR, "1")
    assert assets.fetch("good") == path
    path.write_bytes(b"damaged")
    with pytest.raises(assets.HashMismatchError, match="corrupt or a different file.*Delete the file"):
        assets.fetch("good")
    assert len(server.requests) == 1


# ---------------------------------------------------------------------------- mirrors, fetch_all

@pytest.mark.parametrize("spec", ["ftp://example.invalid/", "/no/such/folder"])
def test_a_mirror_that_cannot_work_is_refused(spec, table, tmp_path):
    with pytest.raises(assets.AssetError, match="mirror"):
        assets.fetch("good", tmp_path / "mirror", mirror=spec)


def test_fetch_all_fills_a_mirror_and_reports_every_failure(server, table, tmp_path):
    put(server.root, "painting", "good.png", GOOD)
    put(server.root, "weights", TINY, CHECKPOINT)
    dest = tmp_path / "mirror"
    with pytest.raises(assets.AssetError, match=r"1 of 3 assets failed:\n  fresh: no SHA-256 is known"):
        assets.fetch_all(dest, mirror=server.url, timeout=5)
    assert listing(dest / "painting") == ["good.png"] and listing(dest / "weights") == [TINY]
    assert set(json.loads((dest / assets.LOCK_FILE).read_text())["assets"]) == {"good", "tiny"}
    assert assets.fetch_all(dest, kinds=["weights"], mirror=server.url) == {"tiny": dest / "weights" / TINY}


def test_unknown_names_list_the_known_ones(table):
    with pytest.raises(assets.UnknownAssetError, match="unknown asset 'lenet'; known: good, fresh, tiny"):
        assets.fetch("lenet")
    with pytest.raises(assets.AssetError, match="unknown kind"):
        assets.names(["pictures"])


# ---------------------------------------------------------------------------- the package uses it

def test_the_mirror_variable_redirects_load_model(server, tmp_path, monkeypatch):
    """A real squeezenet1_1 state dict (random weights) under a name carrying its SHA-256 prefix,
    served by the mirror; load_model fetches it into torch hub's cache and loads it."""
    torch.manual_seed(0)
    state = torchvision.models.squeezenet1_1(weights=None).state_dict()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    filename = f"squeezenet1_1-{sha(buffer.getvalue())[:8]}.pth"
    real = assets.ASSETS["squeezenet1_1"]
    monkeypatch.setitem(assets.ASSETS, "squeezenet1_1", dataclasses.replace(
        real, url=f"https://download.pytorch.org/models/{filename}", filename=filename, sha256=None, size=None))
    put(server.root, "weights", filename, buffer.getvalue())
    monkeypatch.setenv(assets.MIRROR_ENV_VAR, server.url)

    model = models.load_model("squeezenet1_1")
    loaded = model.net.state_dict()
    assert loaded.keys() == state.keys() and all(torch.equal(v, loaded[k]) for k, v in state.items())
    cached = tmp_path / "torch_home" / "hub" / "checkpoints" / filename
    assert cached.read_bytes() == buffer.getvalue() and listing(cached.parent) == [filename]
    assert server.requests == ["/registry.lock.json", f"/weights/{filename}"]
    monkeypatch.setenv(assets.OFFLINE_ENV_VAR, "1")  # the next load needs no server
    assert torch.equal(models.load_model("squeezenet1_1").net.features[0].weight, state["features.0.weight"])
    assert len(server.requests) == 2


def test_load_model_without_network_says_how_to_fetch(server, monkeypatch):
    monkeypatch.setenv(assets.MIRROR_ENV_VAR, server.url)  # an empty mirror: 404
    with pytest.raises(models.ModelUnavailableError) as info:
        models.load_model("squeezenet1_1")
    message = str(info.value)
    assert "squeezenet1_1-b8a52dc0.pth: HTTP 404" in message and assets.MIRROR_ENV_VAR in message
    assert "fetch_assets.py squeezenet1_1" in message and "load_model('efficientnet_lite0')" in message


def test_style_image_fetches_a_registered_painting(server, table, monkeypatch, tmp_path):
    put(server.root, "painting", "good.png", GOOD)
    monkeypatch.setenv(assets.MIRROR_ENV_VAR, server.url)
    x = style.style_image("good", size=8)
    assert x.shape == (1, 3, 8, 8) and abs(x[0, 0].mean().item() - 200 / 255) < 1e-3
    assert (tmp_path / "cache" / "paintings" / "good.png").is_file()
    with pytest.raises(FileNotFoundError, match=r"No style image 'fresh' .*: no SHA-256 is known for 'fresh'.*"
                                                r"fetch_assets.py fresh --trust-first-download"):
        style.style_image("fresh")


def imagenet_npz(n=3) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, 224, 224, 3), dtype=np.uint8)
    y = np.array([281, 8, 937][:n])
    buffer = io.BytesIO()
    # CS231n's file also holds a pickled label map: the loader must not need to unpickle it.
    np.savez(buffer, X=x, y=y, label_map=np.array({281: "tabby"}, dtype=object))
    return buffer.getvalue(), x, y


def test_imagenet_val_sample_from_a_mirror(server, monkeypatch):
    data, x, y = imagenet_npz()
    entry = assets.ASSETS["imagenet_val_25"]
    monkeypatch.setitem(assets.ASSETS, "imagenet_val_25", dataclasses.replace(entry, sha256=sha(data)))
    put(server.root, "sample", entry.filename, data)
    monkeypatch.setenv(assets.MIRROR_ENV_VAR, server.url)
    images, labels = assets.imagenet_val_sample()
    assert images.shape == (3, 3, 224, 224) and images.dtype == torch.float32
    assert torch.equal(images, torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255)
    assert labels.dtype == torch.int64 and labels.tolist() == y.tolist()
    assert assets.imagenet_val_sample(2)[0].shape[0] == 2


def test_imagenet_val_sample_missing_says_how_to_fetch_it(monkeypatch):
    monkeypatch.setenv(assets.OFFLINE_ENV_VAR, "1")
    with pytest.raises(FileNotFoundError) as info:
        assets.imagenet_val_sample()
    message = str(info.value)
    assert "fetch_assets.py imagenet_val_25 --trust-first-download" in message and assets.MIRROR_ENV_VAR in message


def test_content_images_from_a_mirror(server, monkeypatch):
    photos = {"coco_139": png_bytes((255, 0, 0), (40, 30)), "coco_285": png_bytes((0, 0, 255), (30, 40))}
    for name, data in photos.items():
        entry = dataclasses.replace(assets.ASSETS[name], sha256=sha(data), size=len(data))
        monkeypatch.setitem(assets.ASSETS, name, entry)
        put(server.root, "content", entry.filename, data)
    monkeypatch.setenv(assets.MIRROR_ENV_VAR, server.url)
    x = assets.content_images(16, which=["coco_139", "coco_285"])
    assert x.shape == (2, 3, 16, 16)
    assert torch.allclose(x[0, 0], torch.ones(16, 16)) and torch.allclose(x[1, 2], torch.ones(16, 16))
    with pytest.raises(assets.AssetError, match="not content images"):
        assets.content_images(16, which=["squeezenet1_1"])


# ---------------------------------------------------------------------------- the real registry

def test_the_weights_are_torchvisions_defaults_of_the_supported_models():
    assert assets.names(["weights"]) == list(models.TORCHVISION_MODELS)
    for name in models.TORCHVISION_MODELS:
        asset, weights = assets.ASSETS[name], torchvision.models.get_model_weights(name).DEFAULT
        assert asset.url == weights.url and asset.filename == weights.url.rsplit("/", 1)[1]
        assert asset.sha256 is None or asset.sha256.startswith(asset.hash_prefix)  # torch.hub's check agrees
        if asset.size is not None:  # torchvision's metadata gives the size in MiB
            assert round(asset.size / 2 ** 20, 3) == pytest.approx(weights.meta["_file_size"], abs=1e-3)


def test_the_registry_records_no_invented_hash():
    files = set()
    for name, asset in assets.ASSETS.items():
        assert re.fullmatch(r"[a-z0-9_]+", name) and asset.kind in assets.KINDS
        assert asset.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", asset.sha256)
        assert asset.source and asset.url.startswith(("https://", "http://"))
        assert (asset.kind, asset.filename) not in files
        files.add((asset.kind, asset.filename))
    for name in assets.names(["painting"]):
        painting = assets.ASSETS[name]
        assert painting.url.startswith("https://upload.wikimedia.org/wikipedia/commons/")
        assert painting.filename == name + ".jpg" and "public domain" in painting.source
    # Plain-http hosts are used only where the full hash is known, or nothing can be pinned yet.
    assert all(a.sha256 for a in assets.ASSETS.values() if a.kind == "content")
    assert assets.ASSETS["imagenet_val_25"].url == "http://cs231n.stanford.edu/imagenet_val_25.npz"


@pytest.mark.parametrize("torch_home", [True, False])
def test_the_weights_folder_is_torch_hubs_also_without_importing_torch(torch_home, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if not torch_home:
        monkeypatch.delenv("TORCH_HOME")
    assert assets._hub_dir_from_environment() == Path(torch.hub.get_dir())


def test_default_places(tmp_path):
    assert assets.weights_dir() == tmp_path / "torch_home" / "hub" / "checkpoints"
    assert assets.asset_path("starry_night") == tmp_path / "cache" / "paintings" / "starry_night.jpg"
    assert assets.asset_path("coco_139", tmp_path / "m") == tmp_path / "m" / "content" / "000000000139.jpg"


# ---------------------------------------------------------------------------- the command line

def test_cli_selects_by_kind_fills_a_mirror_and_prints_what_to_record(server, table, tmp_path, capsys):
    put(server.root, "painting", "good.png", GOOD)
    put(server.root, "painting", "fresh.png", GOOD)
    dest = tmp_path / "mirror"
    assert fa.main(["--kind", "painting", "--dest", str(dest), "--mirror", server.url]) == 1  # fresh: no hash
    captured = capsys.readouterr()
    assert "good: downloaded" in captured.out and "1 of 2 failed: fresh" in captured.err
    assert fa.main(["--kind", "painting", "--dest", str(dest), "--mirror", server.url,
                    "--trust-first-download"]) == 0
    out = capsys.readouterr().out
    assert "good: present, registry sha256 OK" in out and f"sha256 {sha(GOOD)} recorded" in out
    assert fa.main(["--all", "--dest", str(dest), "--mirror", server.url]) == 1  # tiny is not served
    assert "tiny: FAILED: cannot download 'tiny'" in capsys.readouterr().err


def run_script(*args, env_home):
    env = {k: v for k, v in os.environ.items() if k not in (assets.MIRROR_ENV_VAR, assets.OFFLINE_ENV_VAR)}
    env.update(TORCH_HOME=str(env_home / "torch_home"), **{assets.CACHE_ENV_VAR: str(env_home / "cache")})
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_reports_a_hash_mismatch_with_exit_code_1(server, tmp_path):
    put(server.root, "weights", "squeezenet1_1-b8a52dc0.pth", b"not squeezenet")
    result = run_script("squeezenet1_1", "--mirror", server.url, env_home=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "squeezenet1_1-b8a52dc0.pth from " in result.stderr and "has 14 bytes, expected 4958839" in result.stderr
    assert "1 of 1 failed: squeezenet1_1" in result.stderr
    assert listing(tmp_path / "torch_home" / "hub" / "checkpoints") == []


def test_cli_list_and_unknown_name(tmp_path):
    listed = run_script("--list", env_home=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^squeezenet1_1\s+weights\s+missing\s+full\s", listed.stdout, re.M)
    assert re.search(r"^starry_night\s+painting\s+missing\s+(none|lock)\s", listed.stdout, re.M)
    unknown = run_script("mona_lisa", env_home=tmp_path)
    assert unknown.returncode == 1 and "unknown asset 'mona_lisa'; known: squeezenet1_1" in unknown.stderr

"""data_scripts/fetch_weights.py against a real HTTP server on 127.0.0.1 (never the internet)."""

import contextlib
import functools
import hashlib
import http.server
import importlib.util
import io
import os
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torchvision

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "data_scripts" / "fetch_weights.py"

_spec = importlib.util.spec_from_file_location("fetch_weights", SCRIPT)
fw = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fw)


@pytest.fixture(autouse=True)
def private_torch_home(tmp_path, monkeypatch):
    """Keep every test away from the user's real torch cache."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


@contextlib.contextmanager
def serving(handler):
    """Run an HTTP server with `handler` on 127.0.0.1 while the block runs; yield its base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving `server.root`; `server.requests` lists the paths asked for."""
    root = tmp_path / "served"
    root.mkdir()
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    with serving(functools.partial(Handler, directory=str(root))) as url:
        yield SimpleNamespace(root=root, requests=requests, url=url)


@pytest.fixture
def usual_umask():
    """umask 022 (the usual one) while the test runs: files made for others are then 0644."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def tiny(monkeypatch):
    """A small real checkpoint; the model name "tiny" resolves to a file name carrying its hash."""
    buffer = io.BytesIO()
    torch.save({"weight": torch.arange(6.0).reshape(2, 3)}, buffer)
    content = buffer.getvalue()
    filename = f"tiny-{hashlib.sha256(content).hexdigest()[:8]}.pth"
    monkeypatch.setattr(fw, "weights_file", lambda name: (f"https://example.invalid/models/{filename}", filename))
    return SimpleNamespace(content=content, filename=filename)


def test_fetch_through_the_mirror_saves_the_verified_file(server, tiny, tmp_path, usual_umask):
    (server.root / tiny.filename).write_bytes(tiny.content)
    cache = tmp_path / "cache"
    path = fw.fetch("tiny", cache, mirror=server.url, timeout=5)
    assert path == cache / tiny.filename
    assert path.read_bytes() == tiny.content
    assert os.listdir(cache) == [tiny.filename]
    assert path.stat().st_mode & 0o777 == 0o644  # readable by everyone sharing the cache
    assert torch.equal(torch.load(path, weights_only=True)["weight"], torch.arange(6.0).reshape(2, 3))


def test_second_fetch_skips_the_download(server, tiny, tmp_path):
    (server.root / tiny.filename).write_bytes(tiny.content)
    cache = tmp_path / "cache"
    fw.fetch("tiny", cache, mirror=server.url, timeout=5)
    fw.fetch("tiny", cache, mirror=server.url, timeout=5)
    assert server.requests == [f"/{tiny.filename}"]


def test_a_cached_file_with_the_wrong_hash_is_downloaded_again(server, tiny, tmp_path):
    (server.root / tiny.filename).write_bytes(tiny.content)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / tiny.filename).write_bytes(b"truncated")
    assert fw.fetch("tiny", cache, mirror=server.url, timeout=5).read_bytes() == tiny.content
    assert len(server.requests) == 1


def test_file_mirror(tiny, tmp_path):
    served = tmp_path / "share"
    served.mkdir()
    (served / tiny.filename).write_bytes(tiny.content)
    path = fw.fetch("tiny", tmp_path / "cache", mirror=served.as_uri())
    assert path.read_bytes() == tiny.content


def test_hash_mismatch_is_an_error_and_leaves_nothing(server, tiny, tmp_path):
    (server.root / tiny.filename).write_bytes(tiny.content + b"corrupted")
    cache = tmp_path / "cache"
    with pytest.raises(fw.FetchError, match=f"{server.url}{tiny.filename} is not the right file"):
        fw.fetch("tiny", cache, mirror=server.url, timeout=5)
    assert os.listdir(cache) == []


def test_404_names_the_url_and_leaves_nothing(server, tiny, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(fw.FetchError, match=f"cannot download {server.url}{tiny.filename}: HTTP 404"):
        fw.fetch("tiny", cache, mirror=server.url, timeout=5)
    assert os.listdir(cache) == []


def test_connection_refused_is_an_error_and_leaves_nothing(tiny, tmp_path):
    with socket.socket() as sock:  # a free port with nothing listening once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cache = tmp_path / "cache"
    with pytest.raises(fw.FetchError, match=f"cannot download http://127.0.0.1:{port}/{tiny.filename}: .*refused"):
        fw.fetch("tiny", cache, mirror=f"http://127.0.0.1:{port}", timeout=5)
    assert os.listdir(cache) == []


def test_a_transfer_cut_short_is_an_error_and_leaves_nothing(tiny, tmp_path):
    half = len(tiny.content) // 2

    class HangsUpHalfway(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # announces the whole file, sends half of it, closes the connection
            self.send_response(200)
            self.send_header("Content-Length", str(len(tiny.content)))
            self.end_headers()
            self.wfile.write(tiny.content[:half])

        def log_message(self, *args):
            pass

    cache = tmp_path / "cache"
    with serving(HangsUpHalfway) as url, pytest.raises(
            fw.FetchError, match=f"cannot download {url}{tiny.filename}: the transfer stopped after "
                                 f"{half} of {len(tiny.content)} bytes"):
        fw.fetch("tiny", cache, mirror=url, timeout=5)
    assert os.listdir(cache) == []


def test_ctrl_c_leaves_nothing(tiny, tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(urllib.request, "urlopen", interrupted)
    cache = tmp_path / "cache"
    assert fw.main(["tiny", "--mirror", "http://127.0.0.1:9/", "--cache-dir", str(cache)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert os.listdir(cache) == []


def test_unknown_model_lists_the_supported_ones(tmp_path, capsys):
    with pytest.raises(fw.FetchError, match="unknown model 'lenet'; supported: squeezenet1_1, alexnet"):
        fw.fetch("lenet", tmp_path)
    assert fw.main(["lenet", "--cache-dir", str(tmp_path)]) == 1
    assert "supported: " + ", ".join(fw.MODELS) in capsys.readouterr().err


def test_a_mirror_without_a_scheme_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        fw.main(["squeezenet1_1", "--mirror", "/srv/weights", "--cache-dir", str(tmp_path)])
    assert "--mirror must start with http://, https:// or file://" in capsys.readouterr().err


@pytest.mark.parametrize("name", fw.MODELS)
def test_weights_file_is_torchvisions_default(name):
    url = torchvision.models.get_model_weights(name).DEFAULT.url
    assert fw.weights_file(name) == (url, url.rsplit("/", 1)[1])


def test_default_cache_dir_is_torch_hubs(tmp_path):
    assert fw.default_cache_dir() == tmp_path / "torch_home" / "hub" / "checkpoints"


def run_script(*args, env_home):
    env = {**os.environ, "TORCH_HOME": str(env_home)}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_reports_a_hash_mismatch_with_exit_code_1(server, tmp_path):
    _, filename = fw.weights_file("squeezenet1_1")
    (server.root / filename).write_bytes(b"not squeezenet")
    cache = tmp_path / "cache"
    result = run_script("squeezenet1_1", "--mirror", server.url, "--cache-dir", str(cache), env_home=tmp_path)
    assert result.returncode == 1, result.stderr
    assert f"{server.url}{filename} is not the right file" in result.stderr
    assert "1 of 1 failed: squeezenet1_1" in result.stderr
    assert server.requests == [f"/{filename}"]
    assert os.listdir(cache) == []


def test_cli_list(tmp_path):
    result = run_script("--list", "--cache-dir", str(tmp_path), env_home=tmp_path)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("squeezenet1_1 "))
    assert "missing" in line and fw.weights_file("squeezenet1_1")[0] in line

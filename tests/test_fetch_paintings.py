"""data_scripts/fetch_paintings.py against a real HTTP server on 127.0.0.1 serving fixture
files — a good image, a corrupt one, a truncated transfer, an error page — never the internet."""

import functools
import hashlib
import http.server
import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from cs231n_vis import style
from test_fetch_weights import serving

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "data_scripts" / "fetch_paintings.py"

_spec = importlib.util.spec_from_file_location("fetch_paintings", SCRIPT)
fp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fp)


def png_bytes(colour=(200, 40, 10), size=(24, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


GOOD = png_bytes()
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()


@pytest.fixture
def server(tmp_path):
    """Serves `server.root` on 127.0.0.1; `server.requests` lists the paths asked for."""
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
def table(monkeypatch):
    """Two test paintings: "good" with its hash recorded, "fresh" without one."""
    paintings = {"good": fp.Painting("https://example.invalid/a/good.png", GOOD_SHA, "a fixture"),
                 "fresh": fp.Painting("https://example.invalid/b/fresh.png", None, "a fixture without a hash")}
    monkeypatch.setattr(fp, "PAINTINGS", paintings)
    monkeypatch.delenv(fp.MIRROR_ENV_VAR, raising=False)
    return paintings


@pytest.fixture
def usual_umask():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_good_file_is_saved_verified(server, table, tmp_path, usual_umask):
    (server.root / "good.png").write_bytes(GOOD)
    dest = tmp_path / "paintings"
    path, digest = fp.fetch("good", dest, mirror=server.url, timeout=5)
    assert path == dest / "good.png" and path.read_bytes() == GOOD and digest == GOOD_SHA
    assert os.listdir(dest) == ["good.png"]
    assert path.stat().st_mode & 0o777 == 0o644
    assert server.requests == ["/good.png"]


def test_the_mirror_comes_from_the_environment(server, table, tmp_path, monkeypatch, capsys):
    (server.root / "good.png").write_bytes(GOOD)
    monkeypatch.setenv(fp.MIRROR_ENV_VAR, server.url)
    dest = tmp_path / "paintings"
    assert fp.main(["good", "--dest", str(dest)]) == 0
    assert (dest / "good.png").read_bytes() == GOOD
    assert f"downloading {server.url}good.png" in capsys.readouterr().out


def test_the_original_url_when_there_is_no_mirror(server, table, tmp_path, monkeypatch):
    (server.root / "good.png").write_bytes(GOOD)
    monkeypatch.setitem(fp.PAINTINGS, "good", fp.Painting(f"{server.url}good.png", GOOD_SHA, "direct"))
    path, _ = fp.fetch("good", tmp_path / "p", timeout=5)
    assert path.read_bytes() == GOOD


def test_a_corrupt_file_is_refused_and_leaves_nothing(server, table, tmp_path):
    (server.root / "good.png").write_bytes(GOOD[:-8] + b"garbage!")
    dest = tmp_path / "paintings"
    with pytest.raises(fp.FetchError, match=f"{server.url}good.png is not the right file: its SHA-256 is"):
        fp.fetch("good", dest, mirror=server.url, timeout=5)
    assert not dest.exists() or os.listdir(dest) == []


def test_a_truncated_transfer_is_refused_and_leaves_nothing(table, tmp_path):
    half = len(GOOD) // 2

    class HangsUpHalfway(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(GOOD)))
            self.end_headers()
            self.wfile.write(GOOD[:half])

        def log_message(self, *args):
            pass

    dest = tmp_path / "paintings"
    with serving(HangsUpHalfway) as url, pytest.raises(
            fp.FetchError, match=f"the transfer stopped after {half} of {len(GOOD)} bytes"):
        fp.fetch("good", dest, mirror=url, timeout=5)
    assert not dest.exists() or os.listdir(dest) == []


def test_an_entry_without_a_hash_is_refused_before_any_request(server, table, tmp_path, capsys):
    (server.root / "fresh.png").write_bytes(GOOD)
    with pytest.raises(fp.FetchError, match="no SHA-256 is recorded for 'fresh'.*--trust-first-download"):
        fp.fetch("fresh", tmp_path / "p", mirror=server.url, timeout=5)
    assert fp.main(["fresh", "--dest", str(tmp_path / "p"), "--mirror", server.url]) == 1
    assert "recorded on the first online fetch" in capsys.readouterr().err
    assert server.requests == [] and not (tmp_path / "p").exists()


def test_trust_first_download_saves_it_and_prints_the_hash_to_record(server, table, tmp_path, capsys):
    (server.root / "fresh.png").write_bytes(GOOD)
    dest = tmp_path / "p"
    assert fp.main(["fresh", "--dest", str(dest), "--mirror", server.url, "--trust-first-download"]) == 0
    out = capsys.readouterr().out
    assert f'record in PAINTINGS: "fresh": sha256="{GOOD_SHA}"' in out and "UNVERIFIED" in out
    assert (dest / "fresh.png").read_bytes() == GOOD


def test_an_error_page_is_not_an_image(server, table, tmp_path):
    (server.root / "fresh.png").write_bytes(b"<html><body>429 Too Many Requests</body></html>")
    dest = tmp_path / "p"
    with pytest.raises(fp.FetchError, match=f"{server.url}fresh.png did not send an image"):
        fp.fetch("fresh", dest, mirror=server.url, timeout=5, trust_first_download=True)
    assert not dest.exists() or os.listdir(dest) == []


def test_a_present_file_is_kept_and_a_wrong_one_replaced(server, table, tmp_path):
    (server.root / "good.png").write_bytes(GOOD)
    dest = tmp_path / "p"
    fp.fetch("good", dest, mirror=server.url, timeout=5)
    fp.fetch("good", dest, mirror=server.url, timeout=5)
    assert server.requests == ["/good.png"]
    (dest / "good.png").write_bytes(b"damaged")
    assert fp.fetch("good", dest, mirror=server.url, timeout=5)[0].read_bytes() == GOOD
    assert len(server.requests) == 2


def test_404_names_the_url(server, table, tmp_path):
    with pytest.raises(fp.FetchError, match=f"cannot download {server.url}good.png: HTTP 404"):
        fp.fetch("good", tmp_path / "p", mirror=server.url, timeout=5)


def test_a_fetched_painting_is_a_style_image(server, table, tmp_path, monkeypatch):
    (server.root / "good.png").write_bytes(GOOD)
    monkeypatch.setenv(style.PAINTINGS_ENV_VAR, str(tmp_path / "paintings"))
    fp.fetch("good", style.paintings_dir(), mirror=server.url, timeout=5)
    x = style.style_image("good", size=8)
    assert x.shape == (1, 3, 8, 8) and abs(x[0, 0].mean().item() - 200 / 255) < 1e-3


def test_the_real_table_records_no_invented_hash():
    for name, painting in fp.PAINTINGS.items():
        assert re.fullmatch(r"[a-z_]+", name)
        assert painting.url.startswith("https://upload.wikimedia.org/wikipedia/commons/")
        assert painting.suffix in (".jpg", ".png")
        assert painting.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", painting.sha256)
        assert "public domain" in painting.credit


def test_cli_list_and_unknown_name(tmp_path):
    env = {**os.environ, fp.PAINTINGS_ENV_VAR: str(tmp_path)}
    listed = subprocess.run([sys.executable, str(SCRIPT), "--list"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^starry_night\s+missing\s+(no hash yet|hash recorded)", listed.stdout, re.M)
    unknown = subprocess.run([sys.executable, str(SCRIPT), "mona_lisa", "--dest", str(tmp_path)],
                             capture_output=True, text=True, env=env, timeout=120)
    assert unknown.returncode == 1 and "unknown painting 'mona_lisa'; available: starry_night" in unknown.stderr

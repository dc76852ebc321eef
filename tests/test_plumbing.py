"""files.py (atomic writes) and notebook.py (the setup cell)."""

import os

import pytest
import torch

from cs231n_vis import notebook
from cs231n_vis.files import atomic_open, write_atomic


def test_write_atomic_writes_text_and_bytes_readable_by_others(tmp_path):
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "a.txt", "héllo")
        write_atomic(tmp_path / "b.bin", b"\x00\x01")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644  # not tempfile's 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin"]


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "page.html"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_open(target, "w") as file:
            file.write("half of the new pa")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["page.html"]


def test_atomic_open_refuses_append_and_read_modes(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(tmp_path / "x", "a"):
            pass


def test_setup_seeds_picks_the_device_and_loads_no_model_when_asked():
    first = notebook.setup(seed=3, model=None)
    a = torch.rand(3)
    notebook.setup(seed=3, model=None)
    assert torch.equal(a, torch.rand(3))
    assert first.model is None and first.device == notebook.pick_device()
    assert first.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_setup_loads_the_chosen_model_frozen_on_the_device():
    course = notebook.setup(model="shapes_cnn", device="cpu")
    assert course.model_name == "shapes_cnn" and not course.model.training
    assert next(course.model.parameters()).device.type == "cpu"


def test_versions_name_what_wrote_the_outputs():
    v = notebook.versions()
    assert v["torch"] == torch.__version__ and v["threads"] == str(torch.get_num_threads())
    assert {"python", "torchvision", "numpy", "cpu_capability", "cs231n_vis"} <= set(v)


def test_claim_raises_on_the_default_model_and_reports_on_another(capsys):
    from cs231n_vis import models, notebook
    default = models.load_model("efficientnet_lite0", pretrained=False)
    default.pretrained = True  # stands for the real weights: only the name and flag matter here
    assert notebook.claim(default, True, "maps are sparse") is True
    with pytest.raises(AssertionError, match="maps are sparse: does not hold. 0.2 < 0.5"):
        notebook.claim(default, False, "maps are sparse", measured="0.2 < 0.5")
    assert capsys.readouterr().out == ""
    other = models.load_model("squeezenet1_1", pretrained=False)
    assert notebook.claim(other, False, "maps are sparse", measured="0.2 < 0.5") is False
    out = capsys.readouterr().out
    assert "squeezenet1_1 (random weights)" in out and "does NOT hold" in out and "0.2 < 0.5" in out
    assert notebook.is_default_model(None) and not notebook.is_default_model(other)

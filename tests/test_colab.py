"""Colab and Binder: badges built from one repository address; the install runs on Colab only."""

import json
import re
import sys
import types
from pathlib import Path

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from cs231n_vis import course

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def cells(path):
    return json.loads(path.read_text())["cells"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_badges_point_at_the_notebooks_own_path(path):
    first = "".join(cells(path)[0]["source"])
    links = re.findall(r"\)\]\((https://(?:colab\.research\.google\.com|mybinder\.org)/[^)]*)\)", first)
    assert len(links) == 2, "an Open in Colab and a launch Binder badge under the title"
    colab, binder = links
    assert colab == f"https://colab.research.google.com/github/{course.REPOSITORY}/blob/{course.BRANCH}/notebooks/{path.name}"
    assert binder == f"https://mybinder.org/v2/gh/{course.REPOSITORY}/{course.BRANCH}?labpath=notebooks%2F{path.name}"
    setup = next("".join(c["source"]) for c in cells(path) if c["cell_type"] == "code")
    assert course.install_command() in setup


class FakeShell:
    """Stands in for IPython's get_ipython(): records the magics the cell runs."""

    def __init__(self):
        self.magics = []

    def run_line_magic(self, name, line, *args):
        self.magics.append((name, line))


def run_colab_guard(path):
    """Run the setup cell's first block (up to the first blank line) as IPython would."""
    setup = next("".join(c["source"]) for c in cells(path) if c["cell_type"] == "code")
    guard = setup.split("\n\n")[0]
    assert '"google.colab" in sys.modules' in guard
    shell = FakeShell()
    exec(TransformerManager().transform_cell(guard), {"get_ipython": lambda: shell})
    return shell.magics


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_installs_nothing_outside_colab_and_the_package_on_colab(path, monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert run_colab_guard(path) == []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    magics = run_colab_guard(path)
    assert magics == [("pip", course.install_command().removeprefix("%pip "))]
    assert "torch" not in magics[0][1], "Colab brings its own torch: do not reinstall it"


def test_set_badges_is_idempotent_and_keeps_outputs(tmp_path):
    source = NOTEBOOKS[0]
    copy = tmp_path / source.name
    copy.write_bytes(source.read_bytes())
    assert course.set_badges(copy) is False  # the committed notebooks are up to date
    nb = json.loads(copy.read_text())
    nb["cells"][0]["source"] = ["# 01 · A title\n", "\n", "Intro text."]
    copy.write_text(json.dumps(nb))
    assert course.set_badges(copy) is True
    again = json.loads(copy.read_text())
    assert "".join(again["cells"][0]["source"]) == f"# 01 · A title\n\n{course.badges(source.name)}\n\nIntro text."
    assert [c.get("outputs") for c in again["cells"]] == [c.get("outputs") for c in nb["cells"]]
    assert course.set_badges(copy) is False

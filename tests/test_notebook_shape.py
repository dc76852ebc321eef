"""Every notebook has the course's shape (DESIGN.md §5); nbval checks what the cells print."""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def cells(path):
    return json.loads(path.read_text())["cells"]


def text(cell):
    return "".join(cell["source"])


def test_there_are_numbered_notebooks():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_shape(path):
    nb = cells(path)
    markdown = "\n".join(text(c) for c in nb if c["cell_type"] == "markdown")
    code = [c for c in nb if c["cell_type"] == "code"]
    assert text(nb[0]).startswith(f"# {path.name[:2]} "), "first cell: the title with the notebook's number"
    assert "## Theory" in markdown and "## What to look for" in markdown
    assert "## Exercises" in markdown and "## References" in markdown
    assert re.search(r"arXiv:\d{4}\.\d{4,5}", markdown), "cite the papers with their arXiv id"
    setup = text(code[0])
    assert '"google.colab" in sys.modules' in setup and "notebook.setup(" in setup
    assert any("### BEGIN SOLUTION" in text(c) and "### END SOLUTION" in text(c) for c in code)
    for cell in code:
        source = text(cell)
        assert len(source.splitlines()) <= 16, f"a code cell longer than ~15 lines:\n{source}"
        assert not source.rstrip().endswith(";"), "end plotting cells with plt.show(), not ';'"
        assert cell["execution_count"] is not None, "notebooks are stored executed (nbval's baseline)"
        assert not any(o["output_type"] == "error" for o in cell["outputs"])
        assert "PLACEHOLDER" not in source
        tags = cell.get("metadata", {}).get("tags", [])
        if "nbval-ignore-output" in tags:  # DESIGN.md §5: an excluded output is followed by a check
            following = code[code.index(cell) + 1:]
            # an assert, or notebook.claim (which asserts on the default model, reports on others)
            assert following and ("assert " in text(following[0]) or "notebook.claim(" in text(following[0])), \
                f"a cell excluded from nbval must be followed by an assertion of its claim:\n{source}"
    assert "PLACEHOLDER" not in markdown
    assert not re.search(r"\b(NARRATIVE|SPREAD)_", markdown + "".join(text(c) for c in code))
    written = json.loads(path.read_text())["metadata"].get("cs231n_vis", {}).get("written_with", {})
    assert {"torch", "python", "cpu_capability", "threads"} <= set(written), "metadata: versions that wrote it"

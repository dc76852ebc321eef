"""The notebooks' weight and cleanliness: sizes a student can open on GitHub, no stored progress
bars or stderr (DESIGN.md §5, issue 17). The word budget and the no-machinery rule join these
tests once notebooks 04-06 are rewritten (they are over budget today)."""
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BYTES_PER_NOTEBOOK, BYTES_IN_ALL = 2_000_000, 12_000_000
PROGRESS_BAR = re.compile(r"\d+%\|")


def _cells(path, kind):
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == kind]


def _output_text(output):
    return "".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/plain", ""))


def test_the_ten_notebooks_are_there():
    assert len(NOTEBOOKS) == 10, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_stored_outputs_are_light_and_clean(path):
    size = path.stat().st_size
    assert size <= BYTES_PER_NOTEBOOK, f"{path.name}: {size / 1e6:.2f} MB (budget 2 MB)"
    for i, cell in enumerate(_cells(path, "code")):
        for output in cell.get("outputs", []):
            assert output.get("name") != "stderr", f"{path.name} code cell {i} stored stderr: {_output_text(output)[:200]}"
            assert not PROGRESS_BAR.search(_output_text(output)), f"{path.name} code cell {i} stored a progress bar"


def test_all_notebooks_fit_the_course_budget():
    sizes = {p.name[:2]: p.stat().st_size for p in NOTEBOOKS}
    assert sum(sizes.values()) <= BYTES_IN_ALL, {k: f"{v / 1e6:.2f} MB" for k, v in sizes.items()}

"""The student edition (`make student`): nbgrader's preprocessors over the solution notebooks."""

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from cs231n_vis.course import student_edition

ROOT = Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
REGION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
SCHEME = re.compile(r"=== BEGIN MARK SCHEME ===\n(.*?)=== END MARK SCHEME ===", re.S)


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    return {p.name: p for p in student_edition(ROOT / "notebooks", out)}


def sources(path):
    return ["".join(c["source"]) for c in json.loads(Path(path).read_text())["cells"]]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_solution_text_survives(path, edition):
    solution = "\n".join(sources(path))
    regions = REGION.findall(solution) + SCHEME.findall(solution)
    assert len(regions) >= 2, "every notebook has at least two exercises with solutions or mark schemes"
    student = json.loads(edition[path.name].read_text())
    text = "\n".join("".join(c["source"]) for c in student["cells"])
    for region in regions:
        body = "\n".join(line for line in region.splitlines() if line.strip())
        assert body not in text, f"solution text survived:\n{body[:300]}"
    assert "BEGIN SOLUTION" not in text and "MARK SCHEME" not in text
    assert text.count("raise NotImplementedError()") == solution.count("### BEGIN SOLUTION")
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in student["cells"] if c["cell_type"] == "code"), "outputs are cleared"
    locked = [c for c in student["cells"] if c["metadata"].get("nbgrader", {}).get("grade")
              and c["cell_type"] == "code"]
    assert locked and all(c["metadata"]["nbgrader"]["locked"] for c in locked), "check cells are locked"
    assert "cs231n_vis" not in student["metadata"] and "widgets" not in student["metadata"]


def test_same_cells_as_nbgrader_generate_assignment(tmp_path, edition):
    """A teacher who runs nbgrader itself (no course database) gets the same student notebooks."""
    source = tmp_path / "source" / "course"
    source.mkdir(parents=True)
    for path in NOTEBOOKS:
        (source / path.name).write_bytes(path.read_bytes())
    nbgrader = Path(sys.executable).parent / "nbgrader"
    run = subprocess.run([str(nbgrader), "generate_assignment", "course", "--no-db", "--force"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    for path in NOTEBOOKS:
        theirs = json.loads((tmp_path / "release" / "course" / path.name).read_text())["cells"]
        ours = json.loads(edition[path.name].read_text())["cells"]
        assert ours == theirs, f"{path.name}: the student edition differs from nbgrader's"


def test_a_student_notebook_runs_up_to_its_first_exercise_and_stops_there(edition):
    """Notebook 02 (the quickest): everything before the first stub runs; the stub raises."""
    nb = nbformat.read(edition["02_filters.ipynb"], as_version=4)
    first_stub = next(i for i, c in enumerate(nb.cells) if "raise NotImplementedError()" in c.source)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "notebooks")}})
    with pytest.raises(CellExecutionError) as failure:
        client.execute()
    assert failure.value.ename == "NotImplementedError"
    failed = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
              and any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert failed and failed[0] >= first_stub, "a cell before the first exercise failed"
    ran = [c for c in nb.cells[:first_stub] if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in ran), "every cell before the exercise ran"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_student_notebook_is_the_solution_notebook_up_to_its_first_stub(path, edition):
    """The cells before the first stub are the solution notebook's own, which nbval runs in full
    on every CI run; the stub itself stops a student with NotImplementedError (executed for
    notebook 02 above: running all ten would double the test time)."""
    ours, theirs = sources(edition[path.name]), sources(path)
    first_stub = next(i for i, text in enumerate(ours) if "raise NotImplementedError()" in text)
    assert ours[:first_stub] == theirs[:first_stub], "a cell before the first exercise differs"
    assert "### BEGIN SOLUTION" in theirs[first_stub], "the first stub replaces the first solution"
    assert not any("### BEGIN SOLUTION" in text for text in theirs[:first_stub])


def test_a_notebook_with_an_unclosed_solution_writes_nothing(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n")
    cell.metadata["nbgrader"] = {"grade": False, "grade_id": "f", "locked": False,
                                 "schema_version": 3, "solution": True, "task": False}
    nb.cells.append(cell)
    nbformat.write(nb, src / "01_broken.ipynb")
    with pytest.raises(Exception, match="END SOLUTION|delimiter|solution"):
        student_edition(src, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())

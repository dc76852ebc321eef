"""nbgrader grades the course fairly: a real round trip with three simulated students.

release -> fetch / submit (each student in its own folder and exchange cache) -> collect ->
autograde -> generate_feedback -> export, with nbgrader's command line and the course's
labs/nbgrader/nbgrader_config.py, on the two fastest notebooks (all ten: `make grading-check`).
Expected points come from the notebooks' nbgrader metadata, so this holds whatever they contain.
"""

import csv
import html
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
spec = importlib.util.spec_from_file_location("coursework", ROOT / "labs" / "nbgrader" / "coursework.py")
coursework = importlib.util.module_from_spec(spec)
sys.modules["coursework"] = coursework
spec.loader.exec_module(coursework)

NOTEBOOKS = [ROOT / "notebooks" / name for name in ("02_filters.ipynb", "03_maximally_activating_patches.ipynb")]
ASSIGNMENT = "week1"
STUDENTS = ("correct", "untouched", "mistaken")
# One round trip for the whole module: under `make test`'s workers (--dist loadgroup) every test
# here runs in the worker that built it.
pytestmark = pytest.mark.xdist_group("grading-round-trip")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    env = coursework.nbgrader_env(config_dir=root / "jupyter-config")
    env["OMP_NUM_THREADS"] = "1"  # the grading kernels: one thread each, as under `make test`
    coursework.make_course_dir(ROOT / "notebooks", root, {ASSIGNMENT: [p.name for p in NOTEBOOKS]})
    exchange = root / "exchange"
    coursework.release(root, ASSIGNMENT, exchange, env)
    mistake = coursework.choose_mistake(NOTEBOOKS)

    def writer(student):
        def write(folder):
            for path in NOTEBOOKS:
                if student == "untouched":
                    continue
                coursework.answer(folder / path.name, path, folder / path.name,
                                  mistake if student == "mistaken" and path.name == mistake.notebook else None)
        return write

    for student in STUDENTS:
        coursework.fetch_and_submit(student, ASSIGNMENT, root / "students" / student, exchange, env, writer(student))
    coursework.grade(root, ASSIGNMENT, exchange, env)
    # The teacher marks the written answers (formgrader's job) of the correct student only.
    assert coursework.give_manual_marks(root, ASSIGNMENT, "correct") == sum(
        1 for p in NOTEBOOKS for g in coursework.grade_cells(p).values() if not g["auto"])
    coursework.nbgrader("export", "--to", str(root / "grades.csv"), cwd=root, env=env)
    with open(root / "grades.csv", newline="") as f:
        exported = {row["student_id"]: row for row in csv.DictReader(f)}
    return {"root": root, "env": env, "mistake": mistake, "grades": coursework.grades(root, ASSIGNMENT),
            "csv": exported}


def autograded(path):
    return {k: g["points"] for k, g in coursework.grade_cells(path).items() if g["auto"]}


def test_the_released_notebooks_are_the_student_edition(course):
    released = course["root"] / "release" / ASSIGNMENT
    for path in NOTEBOOKS:
        text = (released / path.name).read_text()
        assert "BEGIN SOLUTION" not in text and coursework.STUB in text
        assert text.count(coursework.STUB) == len(coursework.exercises(path))


def test_the_correct_student_gets_every_point(course):
    got = course["grades"]["correct"]
    for path in NOTEBOOKS:
        for grade_id, points in coursework.grade_cells(path).items():
            g = got[path.stem][grade_id]
            assert g["max_score"] == points["points"], f"{path.name} {grade_id}: max {g['max_score']} in the gradebook"
            assert g["score"] == points["points"], f"{path.name} {grade_id}: {g['score']} of {points['points']}"
    total = sum(g["points"] for p in NOTEBOOKS for g in coursework.grade_cells(p).values())
    assert float(course["csv"]["correct"]["score"]) == total == float(course["csv"]["correct"]["max_score"])


def test_the_untouched_student_gets_nothing_for_a_check_that_calls_a_stub(course):
    got = course["grades"]["untouched"]
    stub_checks = 0
    for path in NOTEBOOKS:
        for grade_id, calls in coursework.calls_a_stub(path).items():
            if calls:
                stub_checks += 1
                assert got[path.stem][grade_id]["score"] == 0, f"{path.name} {grade_id} scored with a stub"
        for grade_id, g in coursework.grade_cells(path).items():
            if not g["auto"]:  # a written answer left as released: nbgrader gives 0 without the teacher
                assert got[path.stem][grade_id]["score"] == 0 and not got[path.stem][grade_id]["needs_manual_grade"]
    assert stub_checks >= 2 * len(NOTEBOOKS)
    assert float(course["csv"]["untouched"]["score"]) == sum(
        autograded(p)[k] for p in NOTEBOOKS for k, calls in coursework.calls_a_stub(p).items() if not calls)


def test_the_mistaken_student_loses_exactly_that_exercises_points(course):
    mistake, got = course["mistake"], course["grades"]["mistaken"]
    assert mistake.exercise.checks, "the exercise with the mistake has autograded checks"
    for path in NOTEBOOKS:
        for grade_id, points in autograded(path).items():
            lost = path.name == mistake.notebook and grade_id in mistake.exercise.checks
            expected = 0 if lost else points
            assert got[path.stem][grade_id]["score"] == expected, (
                f"{path.name} {grade_id}: {got[path.stem][grade_id]['score']}, expected {expected} "
                f"(mistake: {mistake.what} in {mistake.notebook} {mistake.exercise.grade_id})")
    lost_points = sum(mistake.exercise.checks.values())
    assert float(course["csv"]["mistaken"]["score"]) == sum(sum(autograded(p).values()) for p in NOTEBOOKS) - lost_points


def test_the_mistaken_students_feedback_shows_the_checks_message(course):
    mistake, root = course["mistake"], course["root"]
    stem = Path(mistake.notebook).stem
    graded = json.loads((root / "autograded" / "mistaken" / ASSIGNMENT / mistake.notebook).read_text())
    errors = [o for c in graded["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") in mistake.exercise.checks
              for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors, "the failed check shows its error in the autograded notebook"
    feedback = (root / "feedback" / "mistaken" / ASSIGNMENT / f"{stem}.html").read_text()
    for error in errors:
        assert error["ename"] == "AssertionError" and error["evalue"].strip(), \
            f"the check fails with its own message, not {error['ename']}: {error['evalue']!r}"
        assert html.escape(error["evalue"].strip(), quote=False) in feedback or error["evalue"].strip() in feedback, \
            f"the feedback page does not show the check's message {error['evalue']!r}"
    assert (root / "feedback" / "correct" / ASSIGNMENT / f"{stem}.html").exists()


def test_validate_passes_the_solutions_and_inverted_fails_every_test_of_the_student_edition(course):
    """`nbgrader validate` exits 0 even when tests fail, so its message is what is checked; on the
    fastest notebook only (each validation executes it once more)."""
    root, env, path = course["root"], course["env"], NOTEBOOKS[0]
    run = coursework.nbgrader("validate", str(path), cwd=root, env=env)
    assert "Success! Your notebook passes all the tests." in run.stdout, run.stdout[-3000:]
    student = root / "release" / ASSIGNMENT / path.name
    run = coursework.nbgrader("validate", "--invert", str(student), cwd=root, env=env)
    assert "Success! The notebook does not pass any tests." in run.stdout, run.stdout[-3000:]

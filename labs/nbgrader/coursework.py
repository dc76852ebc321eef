"""The course's notebooks as nbgrader coursework: a course directory, simulated students, grades.

    python labs/nbgrader/coursework.py course build/coursework       # `make coursework`
    python labs/nbgrader/coursework.py check build/grading-check     # `make grading-check`

`course` writes an nbgrader course directory: this folder's nbgrader_config.py and
source/<assignment>/<notebook>.ipynb, one assignment per notebook (named after it, e.g.
02_filters), from the solution notebooks (the single source). A teacher then runs nbgrader's own
commands there (labs/README.md).

`check` is the slow, once-per-release check that every notebook grades correctly: all ten
notebooks released as one assignment, a student who pastes the solutions back submits them,
autograde, and every autograded point must be there. It prints the time it took.

The same functions run the round trip of tests/test_grading.py (three simulated students on the
two fastest notebooks). Everything goes through nbgrader's command line, as a teacher types it;
the grades are read back through nbgrader's gradebook API.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CONFIG = HERE / "nbgrader_config.py"
COURSE_ID = "cs231n-vis"
STUB = "raise NotImplementedError()"


# ---- running nbgrader ------------------------------------------------------------------------

def nbgrader_env(base: dict | None = None, config_dir: Path | None = None) -> dict:
    """The environment for nbgrader: the Python environment's bin first on PATH.

    nbgrader runs `alembic` by name when it creates or upgrades the gradebook, so a teacher
    who calls `.venv/bin/nbgrader` without activating the venv gets "No such file or
    directory: 'alembic'". ``config_dir`` isolates the run from the user's ~/.jupyter.
    """
    env = dict(os.environ if base is None else base)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir] + [p for p in env.get("PATH", "").split(os.pathsep) if p and p != bin_dir])
    if config_dir is not None:
        env["JUPYTER_CONFIG_DIR"] = str(config_dir)
    return env


def nbgrader(*args: str, cwd: Path, env: dict, timeout: float = 3600) -> subprocess.CompletedProcess:
    """Run one nbgrader command; raise with its output when it fails."""
    command = [str(Path(sys.executable).parent / "nbgrader"), *args]
    run = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if run.returncode != 0:
        raise RuntimeError(f"`nbgrader {' '.join(args)}` failed ({run.returncode}) in {cwd}:\n"
                           f"{run.stdout[-3000:]}\n{run.stderr[-5000:]}")
    return run


# ---- the course directory --------------------------------------------------------------------

def make_course_dir(notebooks: Path, root: Path, assignments: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """Write an nbgrader course directory at ``root``: the course config and source/.

    ``assignments`` maps an assignment name to notebook file names; by default one assignment
    per notebook, named after it. Returns the mapping used.
    """
    found = sorted(p.name for p in Path(notebooks).glob("[0-9][0-9]_*.ipynb"))
    if assignments is None:
        assignments = {Path(name).stem: [name] for name in found}
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CONFIG, root / "nbgrader_config.py")
    for assignment, names in assignments.items():
        folder = root / "source" / assignment
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copyfile(Path(notebooks) / name, folder / name)
    return assignments


# ---- what the notebooks' nbgrader metadata says ------------------------------------------------

def _nbgrader(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


@dataclass
class Exercise:
    """A code cell the student writes (a solution cell) and the autograded checks after it."""

    notebook: str
    grade_id: str
    source: str                 # the solution, as in the solution notebook
    names: list[str]            # the functions it defines (what later cells call)
    checks: dict[str, int]      # grade_id -> points of the autograded check cells that follow it


def grade_cells(path: Path) -> dict[str, dict]:
    """Every grade cell of a notebook: grade_id -> {"points", "auto" (a code check cell)}."""
    cells = json.loads(Path(path).read_text())["cells"]
    return {_nbgrader(c)["grade_id"]: {"points": float(_nbgrader(c).get("points", 0)),
                                      "auto": c["cell_type"] == "code"}
            for c in cells if _nbgrader(c).get("grade")}


def exercises(path: Path) -> list[Exercise]:
    """The code exercises of a solution notebook, in order, each with the check cells between
    it and the next code exercise."""
    cells = json.loads(Path(path).read_text())["cells"]
    found: list[Exercise] = []
    for cell in cells:
        meta = _nbgrader(cell)
        if cell["cell_type"] != "code" or not meta:
            continue
        if meta.get("solution") and not meta.get("grade"):
            source = _source(cell)
            names = re.findall(r"^def\s+(\w+)\s*\(", source, flags=re.M)
            found.append(Exercise(Path(path).name, meta["grade_id"], source, names, {}))
        elif meta.get("grade") and found:
            found[-1].checks[meta["grade_id"]] = float(meta.get("points", 0))
    return found


def calls_a_stub(path: Path) -> dict[str, bool]:
    """For each autograded check cell: whether it calls a function that a code exercise defines
    (in the student edition, a stub that raises NotImplementedError)."""
    cells = json.loads(Path(path).read_text())["cells"]
    names = {n for ex in exercises(path) for n in ex.names}
    return {_nbgrader(c)["grade_id"]: any(re.search(rf"\b{re.escape(n)}\s*\(", _source(c)) for n in names)
            for c in cells if _nbgrader(c).get("grade") and c["cell_type"] == "code"}


# ---- simulated students ----------------------------------------------------------------------

# A plausible mistake per exercise where the course knows one (the one the exercise is about);
# elsewhere the first of the generic slips below that applies. (old text, new text, what it is)
KNOWN_MISTAKES = {
    "ex2-roughness": [("weight.flatten(2).var(dim=2).mean(dim=1)", "weight.flatten(1).var(dim=1)",
                       "the variance over all channels together (the naive measure the exercise warns about)"),
                      ("weight.flatten(2).var(dim=2, unbiased=False).mean(dim=1)",
                       "weight.flatten(1).var(dim=1, unbiased=False)",
                       "the variance over all channels together (the naive measure the exercise warns about)")],
    "ex2-merge-topk": [("descending=True", "descending=False", "sorted ascending: kept the k smallest scores")],
    "ex1-rf-recursion": [("offset -= padding * jump", "offset -= padding", "padding counted in pixels of the layer's input, not of the image")],
}
GENERIC_MISTAKES = [
    ("descending=True", "descending=False", "sorted the wrong way"),
    ("unbiased=False", "unbiased=True", "the unbiased variance where the population variance is meant"),
    ("-=", "+=", "a sign error in an update"),
    (".amax(", ".amin(", "min where max is meant"),
    (".max(", ".min(", "min where max is meant"),
    (" - ", " + ", "a sign error"),
]


@dataclass
class Mistake:
    notebook: str
    exercise: Exercise
    old: str
    new: str
    what: str


def choose_mistake(paths: list[Path]) -> Mistake:
    """A plausible mistake in one exercise: the last code exercise of the first notebook where one
    applies (nothing graded after it calls it, so it costs exactly that exercise's checks)."""
    for path in paths:
        found = exercises(path)
        if not found:
            continue
        last = found[-1]
        for old, new, what in KNOWN_MISTAKES.get(last.grade_id, []) + GENERIC_MISTAKES:
            if old in last.source:
                return Mistake(Path(path).name, last, old, new, what)
    raise LookupError(f"no known or generic mistake applies to the last exercise of {[p.name for p in paths]}")


def answer(released: Path, solution: Path, out: Path, mistake: Mistake | None = None) -> None:
    """Write a student's copy of ``released``: every solution cell (code and written answers)
    pasted back from ``solution`` (matched by grade_id), with ``mistake`` applied if given.
    Locked cells are left as released (nbgrader checks their checksums)."""
    answers = {_nbgrader(c)["grade_id"]: _source(c) for c in json.loads(Path(solution).read_text())["cells"]
               if _nbgrader(c).get("solution")}
    nb = json.loads(Path(released).read_text())
    for cell in nb["cells"]:
        grade_id = _nbgrader(cell).get("grade_id")
        if _nbgrader(cell).get("solution") and grade_id in answers:
            text = answers[grade_id]
            if mistake is not None and grade_id == mistake.exercise.grade_id:
                assert mistake.old in text
                text = text.replace(mistake.old, mistake.new, 1)
            cell["source"] = text
    Path(out).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def fetch_and_submit(student: str, assignment: str, home: Path, exchange: Path, env: dict,
                     write=None) -> Path:
    """A student fetches ``assignment`` into ``home`` (their own working directory and exchange
    cache), ``write(folder)`` edits the notebooks in place, and the student submits."""
    home.mkdir(parents=True, exist_ok=True)
    common = [f"--course={COURSE_ID}", f"--Exchange.root={exchange}", f"--Exchange.cache={home / '.nbgrader-cache'}",
              f"--student={student}"]
    nbgrader("fetch_assignment", assignment, *common, cwd=home, env=env)
    if write is not None:
        write(home / assignment)
    nbgrader("submit", assignment, *common, cwd=home, env=env)
    return home / assignment


def release(root: Path, assignment: str, exchange: Path, env: dict) -> None:
    """The teacher: generate the student edition (with the gradebook) and release it."""
    exchange.mkdir(parents=True, exist_ok=True)
    exchange.chmod(0o1777)  # as on a server: every student writes here (sticky, like /tmp)
    nbgrader("generate_assignment", assignment, "--force", cwd=root, env=env)
    nbgrader("release_assignment", assignment, f"--Exchange.root={exchange}", "--force", cwd=root, env=env)


def grade(root: Path, assignment: str, exchange: Path, env: dict) -> dict[str, float]:
    """The teacher: collect, autograde, generate feedback. Returns each phase's seconds."""
    seconds = {}
    for phase, args in [("collect", ["collect", assignment, f"--Exchange.root={exchange}"]),
                        ("autograde", ["autograde", assignment, "--force"]),
                        ("generate_feedback", ["generate_feedback", assignment, "--force"])]:
        start = time.perf_counter()
        nbgrader(*args, cwd=root, env=env)
        seconds[phase] = time.perf_counter() - start
    return seconds


def grades(root: Path, assignment: str) -> dict[str, dict[str, dict[str, dict]]]:
    """student -> notebook -> grade_id -> {score, max_score, auto_score, needs_manual_grade},
    read from the course's gradebook."""
    from nbgrader.api import Gradebook

    found: dict = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for submission in gb.assignment_submissions(assignment):
            student = submission.student.id
            for nb in submission.notebooks:
                found.setdefault(student, {})[nb.name] = {
                    g.name: {"score": g.score, "max_score": g.max_score, "auto_score": g.auto_score,
                             "needs_manual_grade": g.needs_manual_grade}
                    for g in nb.grades}
    return found


def give_manual_marks(root: Path, assignment: str, student: str, fraction: float = 1.0) -> int:
    """What the teacher does in formgrader for the written answers: a manual score on every
    grade that needs one (``fraction`` of its points). Returns how many were given."""
    from nbgrader.api import Gradebook

    given = 0
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        submission = gb.find_submission(assignment, student)
        for nb in submission.notebooks:
            for g in nb.grades:
                if g.needs_manual_grade:
                    g.manual_score = fraction * g.max_score
                    given += 1
        gb.db.commit()
    return given


# ---- the command line ------------------------------------------------------------------------

def check_all(notebooks: Path, root: Path) -> int:
    """Grade all notebooks, solutions pasted back, as one assignment; print the time; return 0 if
    every autograded point is there."""
    if root.exists():
        shutil.rmtree(root)
    env = nbgrader_env(config_dir=root / "jupyter-config")
    names = sorted(p.name for p in Path(notebooks).glob("[0-9][0-9]_*.ipynb"))
    make_course_dir(notebooks, root, {"all": names})
    exchange = root / "exchange"
    start = time.perf_counter()
    release(root, "all", exchange, env)

    def paste_solutions(folder):
        for name in names:
            answer(folder / name, Path(notebooks) / name, folder / name)

    fetch_and_submit("solutions", "all", root / "students" / "solutions", exchange, env, paste_solutions)
    seconds = grade(root, "all", exchange, env)
    total = time.perf_counter() - start
    got = grades(root, "all")["solutions"]
    failures = 0
    for name in names:
        expected = {k: v["points"] for k, v in grade_cells(Path(notebooks) / name).items() if v["auto"]}
        scores = {k: got[Path(name).stem][k]["score"] for k in expected}
        lost = {k: (scores[k], expected[k]) for k in expected if scores[k] != expected[k]}
        failures += bool(lost)
        print(f"{name}: {sum(scores.values()):g} / {sum(expected.values()):g} autograded points"
              + (f"  LOST {lost}" if lost else ""))
    print(f"{len(names)} notebooks graded with the solutions in {total:.0f} s "
          f"(autograde {seconds['autograde']:.0f} s); {'all points' if not failures else f'{failures} notebooks lost points'}")
    return 1 if failures else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["course", "check"])
    parser.add_argument("root", type=Path)
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks")
    args = parser.parse_args(argv)
    if args.what == "course":
        made = make_course_dir(args.notebooks, args.root)
        print(f"Wrote the course directory {args.root}: nbgrader_config.py and {len(made)} assignments in source/ "
              f"({', '.join(made)})")
        return 0
    return check_all(args.notebooks, args.root.resolve())


if __name__ == "__main__":
    sys.exit(main())

"""Execute the course's notebooks and write them as an HTML site.

    python -m cs231n_vis.course [--notebooks notebooks] [--out build/html] [--inplace] [--only 06 07]
    python -m cs231n_vis.course --student build/student     # the student edition (nbgrader)

Each notebook runs top to bottom in a fresh kernel, in order, from the
notebooks folder. The executed copies go to ``--out`` as HTML, with an
``index.html`` that links them; the notebooks themselves are left untouched
unless ``--inplace`` is given (that is how their stored outputs, the nbval
baseline, are refreshed).
"""

from __future__ import annotations

import argparse
import html
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from .files import write_atomic
from .notebook import versions


def notebook_title(nb: nbformat.NotebookNode, fallback: str) -> str:
    """The first Markdown heading of the notebook."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return fallback


def execute(path: Path, timeout: int = 600) -> nbformat.NotebookNode:
    """Run a notebook top to bottom in a fresh kernel, from its own folder."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nb.metadata["cs231n_vis"] = {"written_with": versions()}  # what produced the stored outputs
    return nb


def index_page(entries: list[tuple[str, str]]) -> str:
    """An HTML page linking each (file name, title), in order."""
    items = "\n".join(f'    <li><a href="{html.escape(href)}">{html.escape(title)}</a></li>'
                      for href, title in entries)
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>cs231n-vis: what ConvNets learn</title></head>
<body>
  <h1>cs231n-vis: what ConvNets learn</h1>
  <p>The course's notebooks, executed on the embedded default model. Read them in order.</p>
  <ol>
{items}
  </ol>
</body>
</html>
"""


def build(notebooks: Path, out: Path, inplace: bool = False,
          only: list[str] | None = None) -> list[tuple[str, str, float]]:
    """Execute every notebook in ``notebooks`` in order; write HTML pages and the index.

    ``only``: notebook numbers ("06") or names; then just those are executed (the
    index is written only for a full build, so that it never lists a partial course).
    """
    paths = sorted(notebooks.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"No numbered notebooks (NN_name.ipynb) in {notebooks}.")
    if only:
        chosen = [p for p in paths if any(p.name.startswith(o) or p.stem == o for o in only)]
        if not chosen:
            raise FileNotFoundError(f"No notebook matches {only} in {notebooks}; "
                                    f"there are {[p.name for p in paths]}.")
        paths = chosen
    out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter()
    done = []
    for path in paths:
        start = time.perf_counter()
        nb = execute(path)
        seconds = time.perf_counter() - start
        if inplace:
            write_atomic(path, nbformat.writes(nb) + "\n")
        body, _ = exporter.from_notebook_node(nb)
        write_atomic(out / f"{path.stem}.html", body)
        done.append((f"{path.stem}.html", notebook_title(nb, path.stem), seconds))
        print(f"{path.name}: executed in {seconds:.1f} s", flush=True)
    if not only:
        write_atomic(out / "index.html", index_page([(href, title) for href, title, _ in done]))
    return done


# nbgrader's `generate_assignment` pipeline without its course database (SaveCells) and
# without the header/footer and autotest steps, which are no-ops for these notebooks:
# a teacher who runs `nbgrader generate_assignment` gets the same student notebooks.
STUDENT_PREPROCESSORS = ("LockCells", "ClearSolutions", "ClearOutput", "CheckCellMetadata",
                         "ComputeChecksums", "ClearHiddenTests", "ClearMarkScheme",
                         "ComputeChecksums", "CheckCellMetadata")


def student_edition(notebooks: Path, out: Path) -> list[Path]:
    """Write the student edition of every notebook to ``out`` and return the paths.

    The solution notebooks are the single source: nbgrader's own preprocessors replace
    each ``### BEGIN SOLUTION … ### END SOLUTION`` region by a stub that raises
    ``NotImplementedError``, each written answer (a mark scheme) by "YOUR ANSWER HERE",
    clear every output and lock the check cells. The run metadata and widget state of
    the solution edition are dropped. Nothing is half-written: each file is written
    atomically, after every notebook has been converted.
    """
    import nbgrader.preprocessors as nbp

    paths = sorted(notebooks.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"No numbered notebooks (NN_name.ipynb) in {notebooks}.")
    converted = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        resources: dict = {}
        for name in STUDENT_PREPROCESSORS:
            nb, resources = getattr(nbp, name)().preprocess(nb, resources)
        nb.metadata.pop("cs231n_vis", None)
        nb.metadata.pop("widgets", None)
        converted.append((out / path.name, nbformat.writes(nb) + "\n"))
    out.mkdir(parents=True, exist_ok=True)
    for target, text in converted:
        write_atomic(target, text)
    return [target for target, _ in converted]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebooks", type=Path, default=Path("notebooks"))
    parser.add_argument("--out", type=Path, default=Path("build/html"))
    parser.add_argument("--inplace", action="store_true", help="also save the executed notebooks over the sources")
    parser.add_argument("--only", nargs="+", metavar="NN", help="execute just these notebooks (numbers or names)")
    parser.add_argument("--student", type=Path, metavar="DIR",
                        help="write the student edition (solutions and outputs cleared) to DIR; executes nothing")
    args = parser.parse_args(argv)
    if args.student:
        written = student_edition(args.notebooks, args.student)
        print(f"Wrote the student edition of {len(written)} notebooks to {args.student}")
        return 0
    done = build(args.notebooks, args.out, inplace=args.inplace, only=args.only)
    print(f"Wrote {len(done)} notebooks" + ("" if args.only else f" and {args.out / 'index.html'}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Execute the course's notebooks and write them as an HTML site.

    python -m cs231n_vis.course [--notebooks notebooks] [--out build/html] [--inplace] [--only 06 07]
                                [--jobs N] [--threads T]
    python -m cs231n_vis.course --student build/student     # the student edition (nbgrader)
    python -m cs231n_vis.course --badges                    # Colab/Binder badges from REPOSITORY

Each notebook runs top to bottom in a fresh kernel, from the notebooks folder;
several at once (``--jobs``), each kernel with its own thread count. The executed copies go to ``--out`` as HTML, with an
``index.html`` that links them; the notebooks themselves are left untouched
unless ``--inplace`` is given (that is how their stored outputs, the nbval
baseline, are refreshed).

The site works with no network: equations are typeset by a MathJax copied into
the site (from the ``jupyter-server-mathjax`` package), every widget is drawn as a
static view of its last state, solutions and mark schemes are folded behind a
"show" control, and nothing is loaded from a CDN.
"""

from __future__ import annotations

import argparse
import copy
import html
import multiprocessing
import os
import re
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from . import __version__
from .files import write_atomic
from .models import default_model_name
from .notebook import versions

# The course's public repository: the one place the Colab and Binder badges and the Colab
# install line of every notebook are built from (`python -m cs231n_vis.course --badges`).
REPOSITORY, BRANCH = "cs231n-vis/cs231n-vis", "main"
BADGE_LINE = re.compile(r"^\[!\[Open In Colab\].*$", re.M)
INSTALL_LINE = re.compile(r'^([ \t]*)%pip install -q "git\+https://github\.com/[^"]*"[ \t]*$', re.M)
TEMPLATES = Path(__file__).parent / "templates"
MATHJAX = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"  # relative to the site
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def notebook_title(nb: nbformat.NotebookNode, fallback: str) -> str:
    """The first Markdown heading of the notebook."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return fallback


# The kernel's own log (e.g. "Kernel is running over TCP without encryption") is not the
# notebook's output: keep it off the terminal. Cell output, stderr included, is still recorded.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def execute(path: Path, timeout: int = 600,
            threads: int | None = None) -> tuple[nbformat.NotebookNode, float | None]:
    """Run a notebook top to bottom in a fresh kernel, from its own folder: (notebook, peak MB).

    ``threads``: the kernel's thread count (``OMP_NUM_THREADS`` and the BLAS ones); None
    leaves the environment as it is. The peak is the kernel's largest resident memory in MB,
    where the system reports it (Linux; else None)."""
    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    if threads is not None:
        env.update({name: str(threads) for name in THREAD_VARIABLES})
    peak: list[float | None] = [None]

    def read_peak(**_) -> None:  # after each cell, while the kernel runs (the high-water mark only grows)
        peak[0] = _peak_memory_mb(client.km) or peak[0]

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                            extra_arguments=KERNEL_ARGUMENTS, on_cell_executed=read_peak,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)
    nb.metadata["cs231n_vis"] = {"written_with": versions()}  # what produced the stored outputs
    return nb, peak[0]


def _peak_memory_mb(km) -> float | None:
    """The kernel process's peak resident memory (VmHWM), or None where it cannot be read."""
    pid = getattr(getattr(km, "provisioner", None), "pid", None)
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (OSError, TypeError):
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) / 1024 if match else None


def default_jobs() -> tuple[int, int]:
    """How many notebooks to run at once and with how many threads each, for this machine.

    On a 2-core machine two notebooks at a time with one thread each finished the course
    in less time than one at a time with two threads (measured: see the README); much of
    a notebook is single-threaded Python, plotting and kernel start-up. At most four at
    once (each kernel holds up to ~2 GB)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    jobs = max(1, min(4, cores))
    return jobs, max(1, cores // jobs)


def _run(path: str, threads: int | None) -> tuple[str, float, float | None]:
    """A pool worker: execute one notebook; return it as text, its seconds and peak memory."""
    start = time.perf_counter()
    nb, peak = execute(Path(path), threads=threads)
    return nbformat.writes(nb) + "\n", time.perf_counter() - start, peak


def badges(name: str) -> str:
    """The "Open in Colab" and "launch Binder" badges of notebook ``name`` (one Markdown line)."""
    colab = f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/notebooks/{name}"
    binder = f"https://mybinder.org/v2/gh/{REPOSITORY}/{BRANCH}?labpath=notebooks%2F{name}"
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab}) "
            f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder})")


def install_command() -> str:
    """What the setup cell runs on Colab: the package from the repository (Colab has torch)."""
    return f'%pip install -q "git+https://github.com/{REPOSITORY}@{BRANCH}"'


def set_badges(path: Path) -> bool:
    """Write the badges under the title and the install line into the setup cell of ``path``.

    Returns whether the file changed. Outputs are untouched (the lines are Markdown and a
    branch that does not run outside Colab), so nbval's baseline stays valid.
    """
    nb = nbformat.read(path, as_version=4)
    title = nb.cells[0]
    line = badges(path.name)
    if BADGE_LINE.search(title.source):
        new_title = BADGE_LINE.sub(line, title.source, count=1)
    else:
        head, _, rest = title.source.partition("\n")
        new_title = f"{head}\n\n{line}\n{rest}" if rest else f"{head}\n\n{line}"
    setup = next(c for c in nb.cells if c.cell_type == "code")
    if not INSTALL_LINE.search(setup.source):
        raise ValueError(f"{path.name}: the setup cell has no '%pip install -q \"git+https://github.com/...\"' "
                         f"line to update.")
    new_setup = INSTALL_LINE.sub(lambda m: m.group(1) + install_command(), setup.source, count=1)
    if (new_title, new_setup) == (title.source, setup.source):
        return False
    title.source, setup.source = new_title, new_setup
    write_atomic(path, nbformat.writes(nb) + "\n")
    return True


def summary(nb: nbformat.NotebookNode) -> str:
    """The first sentence of the notebook's introduction (the text under its title)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            body = " ".join(line for line in cell.source.splitlines()[1:]
                            if line.strip() and not BADGE_LINE.match(line))
            body = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", body)  # [text](link) → text
            body = re.sub(r"[*_`]", "", body)
            match = re.match(r"(.+?[.?!])(\s|$)", body)
            return (match.group(1) if match else body).strip()
    return ""


def static_widgets(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` in which every widget output is static HTML of its saved state.

    A live widget needs a kernel and the widget manager from a CDN; the course's pages have
    neither, so each widget is drawn as it was left: images as images, labels and HTML as
    text, controls as "description: value", boxes as boxes. The widget state is dropped.
    """
    nb = copy.deepcopy(nb)
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                continue
            body = _widget_html(state, view.get("model_id"))
            output["data"] = {"text/html": (
                '<div class="static-widget">' + body + '<div class="note">A static view of the '
                "widget as it was saved; run the notebook to use the controls.</div></div>")}
    nb.metadata.pop("widgets", None)
    return nb


def _widget_html(state: dict, model_id: str | None) -> str:
    entry = state.get(model_id or "")
    if entry is None:
        return "<p>(widget state not saved)</p>"
    name, values = entry.get("model_name", ""), entry.get("state", {})
    if name in ("VBoxModel", "HBoxModel", "BoxModel", "GridBoxModel"):
        direction = "row" if name == "HBoxModel" else "column"
        children = "".join(_widget_html(state, ref.removeprefix("IPY_MODEL_"))
                           for ref in values.get("children", []))
        return f'<div style="display:flex;flex-direction:{direction};gap:0.4em">{children}</div>'
    if name == "ImageModel":
        data = next((b["data"] for b in entry.get("buffers", []) if b.get("path") == ["value"]), None)
        if data is None:
            return ""
        width = values.get("width") or ""
        size = f' width="{html.escape(str(width))}"' if width else ""
        return f'<img src="data:image/{values.get("format", "png")};base64,{data}"{size} alt="widget image">'
    if name == "HTMLModel":
        return f"<div>{values.get('value', '')}</div>"
    if name in ("LabelModel", "TextModel", "TextareaModel"):
        return f"<div>{html.escape(str(values.get('value', '')))}</div>"
    if "value" in values or "index" in values:
        value = values.get("value")
        if value is None and "_options_labels" in values and values.get("index") is not None:
            value = values["_options_labels"][values["index"]]
        label = values.get("description") or name.removesuffix("Model")
        return (f'<span class="control">{html.escape(str(label))}: '
                f"<b>{html.escape(str(value))}</b></span>")
    return ""


def exporter() -> HTMLExporter:
    """nbconvert's HTML exporter with the course template and the site's own MathJax."""
    return HTMLExporter(template_name="course", extra_template_basedirs=[str(TEMPLATES)],
                        mathjax_url=MATHJAX)


def copy_mathjax(out: Path) -> None:
    """MathJax 2.7 from the ``jupyter-server-mathjax`` package, into ``out/mathjax``."""
    import jupyter_server_mathjax

    source = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (out / "mathjax" / "MathJax.js").exists():
        shutil.copytree(source, out / "mathjax", dirs_exist_ok=True)


def page(nb: nbformat.NotebookNode, previous: str | None, following: str | None) -> str:
    """One notebook as a page of the site (badges become text links: their images are online)."""
    resources = {"course_nav": {"previous": previous, "next": following}}
    nb = static_widgets(nb)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = re.sub(r"\[!\[([^\]]*)\]\([^)]*\)\]\(([^)]*)\)", r"[\1](\2)", cell.source)
    body, _ = exporter().from_notebook_node(nb, resources=resources)
    return body


def index_page(entries: list[dict], *, model: str, version: str) -> str:
    """The course's front page: each entry has ``href``, ``title``, ``summary``, ``seconds``
    and, optionally, ``peak_mb`` (the kernel's peak memory)."""
    def cost(e: dict) -> str:
        peak = f", peak memory {e['peak_mb']:.0f} MB" if e.get("peak_mb") else ""
        return f'{e["seconds"]:.0f} s{peak}'

    rows = "\n".join(
        f'    <li><a href="{html.escape(e["href"])}">{html.escape(e["title"])}</a>'
        f'<span class="time">{cost(e)}</span>'
        f'<p>{html.escape(e["summary"])}</p></li>' for e in entries)
    total = sum(e["seconds"] for e in entries)
    peaks = [e["peak_mb"] for e in entries if e.get("peak_mb")]
    largest = f"; the largest peak memory of one notebook's kernel: {max(peaks):.0f} MB" if peaks else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>cs231n-vis: what ConvNets learn</title>
<style>
  body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 52em;
          margin: 2em auto; padding: 0 1em; line-height: 1.5; color: #222; }}
  h1 {{ margin-bottom: 0.2em; }}
  .meta {{ color: #555; font-size: 0.95em; }}
  ol {{ padding-left: 1.4em; }}
  li {{ margin: 0.9em 0; }}
  li a {{ font-weight: 600; font-size: 1.08em; }}
  li p {{ margin: 0.2em 0 0 0; color: #333; }}
  .time {{ color: #777; font-size: 0.85em; margin-left: 0.8em; }}
</style>
</head>
<body>
  <h1>cs231n-vis: what ConvNets learn</h1>
  <p>Ten notebooks on what convolutional networks learn and how to look inside them,
  executed on the model <code>{html.escape(model)}</code> with the course package
  <code>cs231n_vis {html.escape(version)}</code>. Read them in order; each page shows the code, its
  output and the exercises (solutions fold out under "Show the solution").</p>
  <p class="meta">Run time of each notebook when this site was built: {total:.0f} s in all{largest}.</p>
  <ol>
{rows}
  </ol>
</body>
</html>
"""


def build(notebooks: Path, out: Path, inplace: bool = False,
          only: list[str] | None = None, jobs: int | None = 1, threads: int | None = None) -> list[dict]:
    """Execute every notebook in ``notebooks``; write HTML pages and the index.

    ``only``: notebook numbers ("06") or names; then just those are executed (the
    index is written only for a full build, so that it never lists a partial course).
    ``jobs``: notebooks executed at once, each in its own kernel (None: ``default_jobs()``);
    ``threads``: each kernel's thread count (None: the environment's with one job, else
    ``default_jobs()``'s). Prints one progress line per notebook as it starts and as it ends;
    a failing notebook stops the build with its error.
    """
    paths = sorted(notebooks.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"No numbered notebooks (NN_name.ipynb) in {notebooks}.")
    names = [f"{p.stem}.html" for p in paths]
    if only:
        chosen = [p for p in paths if any(p.name.startswith(o) or p.stem == o for o in only)]
        if not chosen:
            raise FileNotFoundError(f"No notebook matches {only} in {notebooks}; "
                                    f"there are {[p.name for p in paths]}.")
        paths = chosen
    if jobs is None:
        jobs, auto_threads = default_jobs()
        threads = threads if threads is not None else auto_threads
    jobs = max(1, min(jobs, len(paths)))
    out.mkdir(parents=True, exist_ok=True)
    copy_mathjax(out)
    done: dict[Path, dict] = {}
    number = {path: k for k, path in enumerate(paths, 1)}

    def finished(path: Path, text: str, seconds: float, peak: float | None) -> None:
        nb = nbformat.reads(text, as_version=4)
        if inplace:
            write_atomic(path, text)
        i = names.index(f"{path.stem}.html")
        previous, following = names[i - 1] if i else None, names[i + 1] if i + 1 < len(names) else None
        write_atomic(out / names[i], page(nb, previous, following))
        done[path] = {"href": names[i], "title": notebook_title(nb, path.stem), "summary": summary(nb),
                      "seconds": seconds, "peak_mb": peak}
        memory = f", peak memory {peak:.0f} MB" if peak else ""
        print(f"[{number[path]}/{len(paths)}] {path.name}: executed in {seconds:.1f} s{memory}", flush=True)

    if jobs == 1:
        for path in paths:
            print(f"[{number[path]}/{len(paths)}] {path.name}: running ...", flush=True)
            finished(path, *_run(str(path), threads))
    else:
        # Processes, not threads: each runs its kernel's event loop on its own.
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            running = {}
            for path in paths:
                running[pool.submit(_run, str(path), threads)] = path
            started = 0
            for path in paths[:jobs]:
                started += 1
                print(f"[{number[path]}/{len(paths)}] {path.name}: running ...", flush=True)
            try:
                for future in as_completed(running):
                    finished(running[future], *future.result())
                    if started < len(paths):
                        following = paths[started]
                        started += 1
                        print(f"[{number[following]}/{len(paths)}] {following.name}: running ...", flush=True)
            except BaseException:
                for future in running:
                    future.cancel()
                raise
    entries = [done[path] for path in paths]
    if not only:
        write_atomic(out / "index.html", index_page(entries, model=default_model_name(), version=__version__))
    return entries


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
    parser.add_argument("--jobs", type=int, metavar="N",
                        help="notebooks executed at once (default: one per core, at most 4, one thread each "
                             "on 2 cores; with --inplace: 1, with the environment's threads)")
    parser.add_argument("--threads", type=int, metavar="T", help="each kernel's thread count")
    parser.add_argument("--student", type=Path, metavar="DIR",
                        help="write the student edition (solutions and outputs cleared) to DIR; executes nothing")
    parser.add_argument("--badges", action="store_true",
                        help="write the Colab/Binder badges and the Colab install line from REPOSITORY")
    args = parser.parse_args(argv)
    if args.badges:
        paths = sorted(args.notebooks.glob("[0-9][0-9]_*.ipynb"))
        changed = [p.name for p in paths if set_badges(p)]
        print(f"Badges for {REPOSITORY}@{BRANCH}: {len(changed)} of {len(paths)} notebooks updated")
        return 0
    if args.student:
        written = student_edition(args.notebooks, args.student)
        print(f"Wrote the student edition of {len(written)} notebooks to {args.student}")
        return 0
    # The stored outputs (--inplace) are nbval's baseline: written one notebook at a time with
    # every thread, a CPU profile other than the one the tests check them under.
    jobs = args.jobs if args.jobs is not None else (1 if args.inplace else None)
    done = build(args.notebooks, args.out, inplace=args.inplace, only=args.only, jobs=jobs, threads=args.threads)
    print(f"Wrote {len(done)} notebooks" + ("" if args.only else f" and {args.out / 'index.html'}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import ipywidgets as widgets
import nbformat
import pytest

from cs231n_vis import course
from cs231n_vis.course import build

ROOT = Path(__file__).parent.parent


def write_notebook(path, title, code, intro="text"):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {title}\n\n{intro}"),
                                         nbformat.v4.new_code_cell(code)])
    nbformat.write(nb, path)


def test_build_executes_in_order_and_writes_an_index(tmp_path, capsys):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    write_notebook(nbs / "02_second.ipynb", "Second topic", "print(6 * 7)", "Multiplying. More text.")
    write_notebook(nbs / "01_first.ipynb", "First topic", "import os; print(os.getcwd())")
    (nbs / "scratch.ipynb").write_text("not a course notebook")  # not numbered: ignored
    out = tmp_path / "html"

    done = build(nbs, out)

    assert [d["href"] for d in done] == ["01_first.html", "02_second.html"]
    index = (out / "index.html").read_text()
    assert index.index('href="01_first.html">First topic') < index.index('href="02_second.html">Second topic')
    assert "<p>Multiplying.</p>" in index  # the one-line summary: the intro's first sentence
    assert "efficientnet_lite0" in index and course.__version__ in index
    assert "42" in (out / "02_second.html").read_text()
    assert str(nbs) in (out / "01_first.html").read_text()  # ran from the notebooks folder
    assert nbformat.read(nbs / "02_second.ipynb", as_version=4).cells[1].outputs == []  # sources untouched
    assert sorted(p.name for p in out.iterdir()) == ["01_first.html", "02_second.html", "index.html", "mathjax"]
    progress = capsys.readouterr().out
    assert "[1/2] 01_first.ipynb: running" in progress and "[2/2] 02_second.ipynb: executed in" in progress


def test_build_inplace_stores_outputs(tmp_path):
    write_notebook(tmp_path / "01_only.ipynb", "Only", "print('stored')")
    build(tmp_path, tmp_path / "html", inplace=True)
    outputs = nbformat.read(tmp_path / "01_only.ipynb", as_version=4).cells[1].outputs
    assert outputs[0].text == "stored\n"


def test_only_executes_the_chosen_notebooks_and_writes_no_index(tmp_path):
    write_notebook(tmp_path / "01_a.ipynb", "A", "print('a')")
    write_notebook(tmp_path / "02_b.ipynb", "B", "raise ValueError('not run')")
    done = build(tmp_path, tmp_path / "html", only=["01"])
    assert [d["href"] for d in done] == ["01_a.html"] and not (tmp_path / "html" / "index.html").exists()
    with pytest.raises(FileNotFoundError, match="No notebook matches"):
        build(tmp_path, tmp_path / "html", only=["07"])


def test_a_failing_notebook_stops_the_build_with_its_error(tmp_path):
    write_notebook(tmp_path / "01_bad.ipynb", "Bad", "raise ValueError('broken cell')")
    with pytest.raises(Exception, match="broken cell"):
        build(tmp_path, tmp_path / "html")
    assert not (tmp_path / "html" / "index.html").exists()


def test_parallel_build_gives_each_kernel_its_threads_and_records_peak_memory(tmp_path, capsys):
    for k in (1, 2, 3):
        write_notebook(tmp_path / f"0{k}_n{k}.ipynb", f"N{k}", "import os; print('threads=' + os.environ['OMP_NUM_THREADS'])")
    done = build(tmp_path, tmp_path / "html", jobs=2, threads=1)
    assert [d["href"] for d in done] == ["01_n1.html", "02_n2.html", "03_n3.html"]  # course order
    for d in done:
        assert "threads=1" in (tmp_path / "html" / d["href"]).read_text()
        assert 10 < d["peak_mb"] < 2000, d  # a Python kernel holds tens of MB
    printed = capsys.readouterr().out
    assert all(f"[{k}/3] 0{k}_n{k}.ipynb: executed in" in printed for k in (1, 2, 3))
    assert "peak memory" in (tmp_path / "html" / "index.html").read_text()


def test_a_failing_notebook_stops_a_parallel_build_too(tmp_path):
    write_notebook(tmp_path / "01_good.ipynb", "Good", "print(1)")
    write_notebook(tmp_path / "02_bad.ipynb", "Bad", "raise ValueError('broken cell')")
    with pytest.raises(Exception, match="broken cell"):
        build(tmp_path, tmp_path / "html", jobs=2)
    assert not (tmp_path / "html" / "index.html").exists()


def test_default_jobs_use_every_core_with_one_thread_each_on_two_cores(monkeypatch):
    monkeypatch.setattr(course.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert course.default_jobs() == (2, 1)
    monkeypatch.setattr(course.os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert course.default_jobs() == (4, 4)


def test_no_notebooks_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No numbered notebooks"):
        build(tmp_path, tmp_path / "html")


class Links(HTMLParser):
    """Every asset (script, stylesheet, image) and every link of a page."""

    def __init__(self):
        super().__init__()
        self.assets, self.links = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img", "iframe", "source") and attrs.get("src"):
            self.assets.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.assets.append(attrs["href"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])


def local_target(site: Path, page: Path, url: str) -> Path | None:
    parsed = urlparse(url)
    if parsed.scheme in ("data",) or url.startswith("#"):
        return None
    assert not parsed.scheme and not parsed.netloc, f"{page.name} loads {url} from the network"
    return (page.parent / unquote(parsed.path)).resolve()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The course site rendered from the stored notebooks (what `make course` writes after executing)."""
    out = tmp_path_factory.mktemp("site")
    course.copy_mathjax(out)
    paths = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    names = [f"{p.stem}.html" for p in paths]
    entries = []
    for i, path in enumerate(paths):
        nb = nbformat.read(path, as_version=4)
        (out / names[i]).write_text(course.page(nb, names[i - 1] if i else None,
                                                names[i + 1] if i + 1 < len(names) else None))
        entries.append({"href": names[i], "title": course.notebook_title(nb, path.stem),
                        "summary": course.summary(nb), "seconds": 1.0})
    (out / "index.html").write_text(course.index_page(entries, model="efficientnet_lite0", version="0"))
    return out


def test_every_asset_and_link_of_the_site_resolves_with_no_network(site):
    pages = sorted(site.glob("*.html"))
    assert len(pages) >= 6
    for page in pages:
        parser = Links()
        parser.feed(page.read_text())
        for url in parser.assets:
            target = local_target(site, page, url)
            assert target is None or target.exists(), f"{page.name}: missing asset {url}"
        for url in parser.links:
            if urlparse(url).scheme in ("http", "https", "mailto"):
                continue  # papers and references: links to follow, not assets the page needs
            target = local_target(site, page, url)
            assert target is None or target.exists(), f"{page.name}: broken link {url}"
    assert (site / "mathjax" / "config" / "TeX-AMS-MML_HTMLorMML-full.js").exists()


def test_mathjax_is_told_to_use_the_only_fonts_the_site_has(site):
    """MathJax's HTML-CSS output tries its TeX fonts first; the copy has STIX-Web only, and a
    prime (x') then fails as "[Math Processing Error]" (seen in headless Chromium)."""
    fonts = site / "mathjax" / "jax" / "output" / "HTML-CSS" / "fonts"
    assert (fonts / "STIX-Web" / "fontdata.js").exists() and not (fonts / "TeX").exists()
    text = (site / "10_fast_style_transfer.html").read_text()
    config = re.search(r'MathJax\.Hub\.Config\(\{"HTML-CSS": \{([^}]*)\}\}\)', text)
    assert config, "the page configures MathJax's HTML-CSS fonts"
    assert 'availableFonts: []' in config.group(1) and 'webFont: "STIX-Web"' in config.group(1)


def test_pages_fold_solutions_and_show_widgets_statically(site):
    text = (site / "01_layer_activations.html").read_text()
    assert 'src="mathjax/MathJax.js' in text and "cdnjs" not in text and "unpkg" not in text
    assert "require.min.js" not in text and "widget-view+json" not in text
    n_solutions = text.count('<details class="solution">')
    assert n_solutions >= 4  # 2 code solutions and 2 mark schemes in notebook 01
    assert "Show the solution" in text and "Show the mark scheme" in text
    assert text.count('class="static-widget"') == 1 and 'alt="widget image"' in text
    assert re.search(r"layer: <b>net\.", text), "the dropdown's saved value is shown"


def test_static_widget_view_shows_each_kind_of_widget():
    image = widgets.Image(value=b"\x89PNG fake", format="png", width=100)
    box = widgets.VBox([widgets.HBox([widgets.Dropdown(options=["a", "b"], value="b", description="pick"),
                                      widgets.IntSlider(value=3, description="n")]),
                        widgets.Label("a <label>"), image])
    state = widgets.Widget.get_manager_state(drop_defaults=False, widgets=None)["state"]
    # The saved state as nbconvert stores it: binary buffers base64-encoded, by path.
    import base64
    for model_id, entry in state.items():
        if entry["model_name"] == "ImageModel":
            entry["buffers"] = [{"path": ["value"], "encoding": "base64",
                                 "data": base64.b64encode(b"\x89PNG fake").decode()}]
            entry["state"].pop("value", None)
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("box")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        course.WIDGET_VIEW: {"model_id": box.model_id, "version_major": 2, "version_minor": 0},
        "text/plain": "VBox(...)"})]
    nb.cells.append(cell)
    nb.metadata["widgets"] = {course.WIDGET_STATE: {"state": state, "version_major": 2, "version_minor": 0}}
    static = course.static_widgets(nb)
    html = static.cells[0].outputs[0]["data"]["text/html"]
    assert "pick: <b>b</b>" in html and "n: <b>3</b>" in html and "a &lt;label&gt;" in html
    assert 'src="data:image/png;base64,' + base64.b64encode(b"\x89PNG fake").decode() in html
    assert "widgets" not in static.metadata and "widgets" in nb.metadata  # the original is untouched

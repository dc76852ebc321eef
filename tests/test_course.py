import nbformat
import pytest

from cs231n_vis.course import build


def write_notebook(path, title, code):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {title}\n\ntext"),
                                         nbformat.v4.new_code_cell(code)])
    nbformat.write(nb, path)


def test_build_executes_in_order_and_writes_an_index(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    write_notebook(nbs / "02_second.ipynb", "Second topic", "print(6 * 7)")
    write_notebook(nbs / "01_first.ipynb", "First topic", "import os; print(os.getcwd())")
    (nbs / "scratch.ipynb").write_text("not a course notebook")  # not numbered: ignored
    out = tmp_path / "html"

    done = build(nbs, out)

    assert [href for href, _, _ in done] == ["01_first.html", "02_second.html"]
    index = (out / "index.html").read_text()
    assert index.index('href="01_first.html">First topic') < index.index('href="02_second.html">Second topic')
    assert "42" in (out / "02_second.html").read_text()
    assert str(nbs) in (out / "01_first.html").read_text()  # ran from the notebooks folder
    assert nbformat.read(nbs / "02_second.ipynb", as_version=4).cells[1].outputs == []  # sources untouched
    assert sorted(p.name for p in out.iterdir()) == ["01_first.html", "02_second.html", "index.html"]


def test_build_inplace_stores_outputs(tmp_path):
    write_notebook(tmp_path / "01_only.ipynb", "Only", "print('stored')")
    build(tmp_path, tmp_path / "html", inplace=True)
    outputs = nbformat.read(tmp_path / "01_only.ipynb", as_version=4).cells[1].outputs
    assert outputs[0].text == "stored\n"


def test_a_failing_notebook_stops_the_build_with_its_error(tmp_path):
    write_notebook(tmp_path / "01_bad.ipynb", "Bad", "raise ValueError('broken cell')")
    with pytest.raises(Exception, match="broken cell"):
        build(tmp_path, tmp_path / "html")
    assert not (tmp_path / "html" / "index.html").exists()


def test_no_notebooks_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No numbered notebooks"):
        build(tmp_path, tmp_path / "html")

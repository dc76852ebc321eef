"""environment.yml (Binder / repo2docker, conda users) builds the same environment as `make`.

repo2docker creates the conda environment (python and pip from conda-forge), then runs the
pip section. conda-forge cannot be reached from this project's machines (their registries are
PyPI, Debian's and npm's), so the conda half is checked by reading the file. The pip half is
resolved here exactly as written, by a fresh virtual environment's own pip on the pinned python
(`pip install --dry-run`, about a minute); `make test` itself installs `-e .[course,test]` from
the package registries in a fresh virtual environment on every CI run — a superset of it.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_is_python_pip_and_the_package_with_its_course_extra():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    python = [d for d in conda if d.startswith("python")]
    assert len(python) == 1 and "pip" in conda and len(conda) == 2, \
        "conda brings python and pip only: every other dependency lives in pyproject.toml"
    assert pip == [["-e .[course]"]], "the pip section installs the package with the course extra (Jupyter)"
    version = python[0].split("=", 1)[1]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert SpecifierSet(project["requires-python"]).contains(version + ".0"), \
        f"environment.yml pins python {version}, which pyproject's requires-python refuses"
    assert "course" in project["optional-dependencies"]
    names = {Requirement(r).name for r in project["optional-dependencies"]["course"]}
    assert {"jupyterlab", "ipykernel"} <= names, "Binder opens JupyterLab: the course extra must bring it"



def test_the_pip_section_resolves_in_a_fresh_environment_on_the_pinned_python(tmp_path):
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    pinned = python.split("=", 1)[1]
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if running != pinned:
        pytest.skip(f"environment.yml pins python {pinned}; this is python {running}")
    (pip_args,) = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "env")], check=True)
    report = tmp_path / "report.json"
    args = [arg for line in pip_args for arg in line.split()]  # "-e .[course]" -> "-e", ".[course]"
    done = subprocess.run([str(tmp_path / "env" / "bin" / "python"), "-m", "pip", "install", "--dry-run", "--quiet",
                           "--report", str(report), *args], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, f"pip could not resolve environment.yml's pip section:\n{done.stderr[-3000:]}"
    resolved = {item["metadata"]["name"].lower(): item["metadata"]["version"]
                for item in json.loads(report.read_text())["install"]}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert resolved.get(project["name"].lower()) == project["version"]
    assert {"torch", "torchvision", "jupyterlab", "ipykernel", "ipywidgets"} <= set(resolved), sorted(resolved)

"""environment.yml (Binder / repo2docker, conda users) builds the same environment as `make`.

repo2docker creates the conda environment (python and pip from conda-forge), then runs the
pip section. conda-forge cannot be reached from this project's machines (their registries are
PyPI, Debian's and npm's), so the conda half is checked by reading the file. The pip half is
checked to be exactly `-e .[course]`, which `make test` installs (with the test extra) from the
package registries in a fresh virtual environment on the pinned python on every CI run.
"""

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


def test_make_test_installs_on_the_pinned_python():
    """The pip section is exactly `-e .[course]` (above), and `make test` installs `-e .[course,test]`,
    a superset, from the package registries in a fresh virtual environment on every CI run: on the
    pinned Python, that install is the proof that the section resolves. (A separate `pip install
    --dry-run` of the section in a second fresh environment cost a minute and checked the same.)"""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    pinned = python.split("=", 1)[1]
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if running != pinned:
        pytest.skip(f"environment.yml pins python {pinned}; these tests run on python {running}")
    from importlib.metadata import distribution

    installed = distribution("cs231n-vis")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert installed.version == project["version"]
    course = {Requirement(r).name for r in project["optional-dependencies"]["course"]}
    missing = [name for name in course if not _installed(name)]
    assert not missing, f"the course extra did not install: {missing}"


def _installed(name: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(name)
        return True
    except PackageNotFoundError:
        return False

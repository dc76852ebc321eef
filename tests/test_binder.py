"""environment.yml (Binder / repo2docker, conda users) builds the same environment as `make`.

repo2docker creates the conda environment (python and pip from conda-forge), then runs the
pip section. conda-forge cannot be reached from this project's machines, so the conda half is
checked by reading the file; the pip half is `pip install -e .[course]`, and `make test`
itself runs `pip install -e .[course,test]` from the package registries in a fresh
virtual environment on every CI run — a superset of the same install.
"""

from pathlib import Path

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


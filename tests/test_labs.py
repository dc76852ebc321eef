"""The lab configurations in labs/: the Kubernetes values against the chart's schema, and the
settings the hub, nbgrader and the cluster must agree on (fast; no hub, no cluster)."""

import copy
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from traitlets.config import Config

ROOT = Path(__file__).parent.parent
LABS = ROOT / "labs"


def _module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


validate = _module(LABS / "z2jh" / "validate.py", "z2jh_validate")
coursework = _module(LABS / "nbgrader" / "coursework.py", "coursework")


def load_config_file(path):
    """A traitlets config file (JupyterHub's or nbgrader's) read as their loaders do."""
    c = Config()
    namespace = {"get_config": lambda: c, "__file__": str(path)}
    exec(compile(Path(path).read_text(), str(path), "exec"), namespace)
    return c, namespace


@pytest.fixture(scope="module")
def config():
    return yaml.safe_load((LABS / "z2jh" / "config.yaml").read_text())


# ---- Zero to JupyterHub ------------------------------------------------------------------------

def test_the_vendored_schema_is_the_reference_copy():
    text = (LABS / "z2jh" / "vendor" / "README.md").read_text()
    import hashlib
    for name in ("values.schema.json", "values.yaml"):
        digest = hashlib.sha256((LABS / "z2jh" / "vendor" / name).read_bytes()).hexdigest()
        assert digest in text, f"{name}: its hash is not the one vendor/README.md records"
    assert "BSD 3-Clause" in (LABS / "z2jh" / "vendor" / "LICENSE").read_text()


def test_the_course_config_is_valid_merged_over_the_charts_defaults(config):
    assert validate.errors(config) == []
    assert validate.main([str(LABS / "z2jh" / "config.yaml")]) == 0


def test_the_bare_config_alone_is_not_valid_values(config):
    """Why the merge: the chart's schema requires top-level keys only its defaults provide."""
    schema = __import__("json").loads(validate.SCHEMA.read_text())
    import jsonschema
    problems = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(config)]
    assert any("is a required property" in p for p in problems), problems


@pytest.mark.parametrize("path, value, expected", [
    (("singleuser", "memory", "limt"), "4G", "Additional properties are not allowed ('limt' was unexpected)"),
    (("singleuser", "extraVolumez"), [], "Additional properties are not allowed ('extraVolumez' was unexpected)"),
    (("cull", "timeout"), "an hour", "'an hour' is not of type"),
    (("singleuser", "cpu", "limit"), "two", "'two' is not of type 'number', 'null'"),
    (("singleuser", "image", "pullPolicy"), "Sometimes", "'Sometimes' is not one of"),
])
def test_a_typo_or_a_wrong_type_is_refused(config, path, value, expected):
    broken = copy.deepcopy(config)
    node = broken
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    found = validate.errors(broken)
    where = ".".join(path[:-1]) if "Additional" in expected else ".".join(path)
    assert any(line.startswith(f"{where}: ") and expected in line for line in found), found


def test_helm_merge_rules():
    defaults = {"a": {"b": 1, "c": [1, 2]}, "d": {"e": 2}, "f": 3}
    assert validate.merge(defaults, {"a": {"c": [9]}, "d": None, "g": 4}) == {"a": {"b": 1, "c": [9]}, "f": 3, "g": 4}
    assert defaults == {"a": {"b": 1, "c": [1, 2]}, "d": {"e": 2}, "f": 3}, "the defaults are not modified"


def test_the_cluster_config_agrees_with_itself_and_the_course(config):
    single = config["singleuser"]
    threads = {k: single["extraEnv"][k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    assert set(threads.values()) == {str(int(single["cpu"]["limit"]))}, "thread variables match the CPU limit"
    gpu = [p for p in single["profileList"] if "nvidia.com/gpu" in p.get("kubespawner_override", {}).get("extra_resource_limits", {})]
    assert gpu, "a GPU profile"
    override = gpu[0]["kubespawner_override"]
    assert set(override["environment"].values()) == {str(int(override["cpu_limit"]))}
    mounts = {m["mountPath"]: m["name"] for m in single["storage"]["extraVolumeMounts"]}
    volumes = {v["name"]: v for v in single["storage"]["extraVolumes"]}
    assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
    nbgrader_config, _ = load_config_file(LABS / "nbgrader" / "nbgrader_config.py")
    exchange = nbgrader_config.Exchange.root
    assert "persistentVolumeClaim" in volumes[mounts[exchange]], "the exchange is a shared volume at Exchange.root"
    assert f'c.Exchange.root = "{exchange}"' in single["extraFiles"]["nbgrader-config"]["stringData"]
    assert config["cull"]["enabled"] is True
    assert "CS231N_VIS_MIRROR" in single["extraEnv"]


def _gigabytes(text):
    number, unit = re.fullmatch(r"([\d.]+)\s*([KMGT]i?)?", str(text)).groups()
    return float(number) * {"K": 1e-6, "M": 1e-3, "G": 1, "T": 1e3}[(unit or "G")[0]]


def test_the_memory_limit_holds_the_largest_measured_notebook(config):
    """The peaks quoted in the config's comment (from `make course`'s index page) are the ones
    labs/README.md gives; the limit holds the largest with a margin."""
    text = (LABS / "z2jh" / "config.yaml").read_text()
    comment = re.search(r"peak memory \(MB\):(.*?)\. The limit", text, re.S).group(1)
    peaks = {k: int(v) for k, v in re.findall(r"(\d\d) (\d+)", comment)}
    assert len(peaks) == 10
    lines = (LABS / "README.md").read_text().splitlines()
    row = lambda label: [x.strip() for x in next(l for l in lines if l.startswith(f"| {label} |")).strip("|").split("|")][1:]
    assert dict(zip(row("notebook"), map(int, row("peak MB")))) == peaks, "labs/README.md's sizing table"
    assert _gigabytes(config["singleuser"]["memory"]["limit"]) >= max(peaks.values()) / 1000 + 0.5


# ---- The Littlest JupyterHub snippet and nbgrader's course config ---------------------------------

def test_the_hub_snippet_gives_threads_from_the_quota():
    c, namespace = load_config_file(LABS / "tljh" / "jupyterhub_config.d" / "cs231n_vis.py")
    env = c.Spawner.environment
    env = env.get_value({}) if hasattr(env, "get_value") else env
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        assert env[variable](SimpleNamespace(cpu_limit=2.0)) == "2"
        assert env[variable](SimpleNamespace(cpu_limit=0.5)) == "1"
        assert env[variable](SimpleNamespace(cpu_limit=None)) == str(namespace["DEFAULT_THREADS"])
    assert env["CS231N_VIS_MIRROR"] == namespace["MIRROR"]


def test_the_tljh_setup_script_parses_and_sets_the_limits():
    assert subprocess.run(["bash", "-n", str(LABS / "tljh" / "setup.sh")]).returncode == 0
    text = (LABS / "tljh" / "setup.sh").read_text()
    for command in ("tljh-config set limits.memory", "tljh-config set limits.cpu", "tljh-config set services.cull.timeout"):
        assert command in text


def test_the_grading_config():
    c, _ = load_config_file(LABS / "nbgrader" / "nbgrader_config.py")
    assert c.Execute.timeout >= 3 * 52, "the slowest cell (52 s on one thread) with a margin"
    assert c.Execute.iopub_timeout >= 30, "a loaded grading server delivers a cell's last outputs late"
    assert c.IgnorePattern.enabled
    pattern = re.compile(c.IgnorePattern.pattern)
    assert pattern.search("Matplotlib is building the font cache; this may take a moment.\n")
    for real in ("UserWarning: The given NumPy array is not writable", "Traceback (most recent call last):",
                 "AssertionError: got 0.5, expected 1.0", "RuntimeWarning: divide by zero encountered"):
        assert not pattern.search(real), f"the ignore pattern would hide {real!r}"


def test_the_course_directory_has_one_assignment_per_notebook(tmp_path):
    made = coursework.make_course_dir(ROOT / "notebooks", tmp_path)
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(made) == [Path(n).stem for n in notebooks]
    for name in notebooks:
        assert (tmp_path / "source" / Path(name).stem / name).read_bytes() == (ROOT / "notebooks" / name).read_bytes()
    assert (tmp_path / "nbgrader_config.py").read_text() == (LABS / "nbgrader" / "nbgrader_config.py").read_text()


def test_every_notebook_has_exercises_a_mistake_applies_to():
    """The metadata the grading test relies on: code exercises followed by autograded checks."""
    paths = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for path in paths:
        found = coursework.exercises(path)
        assert found and all(ex.checks for ex in found), f"{path.name}: an exercise without an autograded check"
        assert any(coursework.calls_a_stub(path).values())
    assert coursework.choose_mistake(paths[1:3]).exercise.checks

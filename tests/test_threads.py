"""Under a lab's CPU quota, notebook.setup() runs as many torch threads as the quota allows."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cs231n_vis.notebook import lab_threads

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize("environ, expected", [
    ({}, None),
    ({"CPU_LIMIT": "2"}, 2),
    ({"CPU_LIMIT": "2.0"}, 2),          # JupyterHub writes the float
    ({"CPU_LIMIT": "1.5"}, 1),          # a fraction rounds down...
    ({"CPU_LIMIT": "0.5"}, 1),          # ...but never below one thread
    ({"OMP_NUM_THREADS": "3"}, 3),
    ({"CPU_LIMIT": "2", "OMP_NUM_THREADS": "8"}, 2),   # the quota itself wins
    ({"CPU_LIMIT": "", "OMP_NUM_THREADS": "4"}, 4),    # an empty limit counts as unset
    ({"CPU_LIMIT": "two", "OMP_NUM_THREADS": "1"}, 1),  # so does one that is not a number
    ({"CPU_LIMIT": "0"}, None),
    ({"CPU_LIMIT": "-2"}, None),
    ({"CPU_LIMIT": "nan"}, None),
    ({"CPU_LIMIT": "inf"}, None),
])
def test_lab_threads_reads_the_quota(environ, expected):
    assert lab_threads(environ) == expected


def test_setup_follows_cpu_limit_not_the_host_cores():
    """In a fresh interpreter (torch reads OMP_NUM_THREADS only when it starts): CPU_LIMIT=3.0,
    then 1. Three threads is more than the default on a 2-core runner and fewer than on a large
    machine, so the count can only come from the quota."""
    env = {k: v for k, v in os.environ.items() if k not in ("CPU_LIMIT", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["CPU_LIMIT"] = "3.0"
    code = ("import os, torch\n"
            "from cs231n_vis import notebook\n"
            "notebook.setup(model=None); print(torch.get_num_threads())\n"
            "os.environ['CPU_LIMIT'] = '1'; notebook.setup(model=None); print(torch.get_num_threads())\n")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stderr == "", f"setup() wrote to stderr: {run.stderr[-1000:]}"
    assert run.stdout.split() == ["3", "1"], f"threads after setup() under CPU_LIMIT 3.0, then 1: {run.stdout.split()}"

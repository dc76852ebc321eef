"""cs231n-vis on The Littlest JupyterHub: copy into /opt/tljh/config/jupyterhub_config.d/
(TLJH loads every *.py there after its own settings), then `sudo tljh-config reload hub`.

Plain JupyterHub reads it too: `load_subconfig("…/cs231n_vis.py")` in jupyterhub_config.py
(tests/test_hub.py starts a real hub with it). labs/README.md explains each setting.
"""

import math
import os

c = get_config()  # noqa: F821 (JupyterHub's config loader defines it)

# Where the lab keeps the course and the asset mirror (labs/tljh/setup.sh puts them there).
COURSE_DIR = os.environ.get("CS231N_VIS_COURSE_DIR", "/srv/data/cs231n-vis")     # read-only for students
MIRROR = os.environ.get("CS231N_VIS_MIRROR", "/srv/data/cs231n-vis-mirror")      # fetch_assets.py --dest
COURSE_ID = "cs231n-vis"                                                          # nbgrader's course id
DEFAULT_THREADS = 2  # without a CPU limit (e.g. `tljh-config unset limits.cpu`): a fair share, not every core


def threads(spawner) -> str:
    """One thread per CPU of the user's quota (`tljh-config set limits.cpu 2` sets the spawner's
    cpu_limit; SystemdSpawner enforces it as a CPU quota). A quota is not a smaller machine: the
    user's processes still see every core, and torch and the BLAS libraries would start a thread per
    core, which on a 64-core server under a 2-CPU quota makes cells many times slower. A fractional
    quota rounds down, never below one."""
    limit = getattr(spawner, "cpu_limit", None)
    return str(max(1, math.floor(limit)) if limit else DEFAULT_THREADS)


# JupyterHub calls a callable value with the spawner when it starts the user's server, so each
# server gets its own user's quota. CPU_LIMIT / MEM_LIMIT are passed by JupyterHub itself when the
# limits are set; notebook.setup() reads CPU_LIMIT too.
c.Spawner.environment.update({
    "OMP_NUM_THREADS": threads,
    "MKL_NUM_THREADS": threads,
    "OPENBLAS_NUM_THREADS": threads,
    "CS231N_VIS_MIRROR": MIRROR,          # every asset a notebook needs comes from the lab's mirror
    "CS231N_VIS_COURSE_DIR": COURSE_DIR,  # where `cp -r` copies a fresh set of notebooks from
})

# nbgrader on the hub: students in the nbgrader group see the course's assignments (fetch and
# submit through the exchange in /srv/nbgrader/exchange, labs/tljh/setup.sh); instructors and
# teaching assistants in the formgrade group can open the course's formgrader
# (labs/tljh/jupyterhub_config.d/cs231n_vis_formgrader.py, which needs the grader's system user).
# Add people with `tljh-config add-item users.admin NAME` for instructors, or through the hub's
# admin page / REST API for groups.
c.JupyterHub.load_groups.update({
    f"nbgrader-{COURSE_ID}": {"users": []},
    f"formgrade-{COURSE_ID}": {"users": []},
})
c.JupyterHub.load_roles.extend([
    {"name": f"nbgrader-{COURSE_ID}", "groups": [f"nbgrader-{COURSE_ID}"],
     "scopes": ["list:services", f"read:services!service={COURSE_ID}"]},
    {"name": f"formgrade-{COURSE_ID}", "groups": [f"formgrade-{COURSE_ID}"],
     "scopes": [f"access:services!service={COURSE_ID}"]},
])

# The idle culler: TLJH runs jupyterhub-idle-culler by default (`tljh-config set services.cull.timeout
# 3600`, setup.sh); an idle server frees its memory for the next student.

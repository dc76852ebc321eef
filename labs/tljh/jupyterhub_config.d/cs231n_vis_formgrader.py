"""nbgrader's formgrader for the course as a hub service (nbgrader's "JupyterHub with one course"
setup). It runs as the system user `grader-cs231n-vis`, whose home holds the course directory
(`make coursework`, then copy build/coursework to /home/grader-cs231n-vis/cs231n-vis), so it
needs root to start: tests/test_hub.py (no root) loads cs231n_vis.py only.

Create the user first: `sudo useradd -m grader-cs231n-vis`; put instructors in the
`formgrade-cs231n-vis` group (cs231n_vis.py defines it and its role).
"""

c = get_config()  # noqa: F821

COURSE_ID = "cs231n-vis"
GRADER = f"grader-{COURSE_ID}"

c.JupyterHub.services.append({
    "name": COURSE_ID,
    "url": "http://127.0.0.1:9999",
    "command": ["/opt/tljh/user/bin/jupyterhub-singleuser", "--debug"],
    "user": GRADER,
    "cwd": f"/home/{GRADER}/{COURSE_ID}",
    "environment": {"JUPYTERHUB_DEFAULT_URL": "/lab", "PATH": "/opt/tljh/user/bin:/usr/bin:/bin"},  # nbgrader runs alembic by name
})
c.JupyterHub.load_roles.append(
    {"name": f"{GRADER}-service", "services": [COURSE_ID], "scopes": ["read:users:groups", "list:users", "list:groups"]},
)

#!/usr/bin/env bash
# cs231n-vis on The Littlest JupyterHub (one server, 30 students): run once as root on a TLJH
# server (https://tljh.jupyter.org/), from a clone of the repository. labs/README.md explains
# every step and how the limits below were sized.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
COURSE_DIR=/srv/data/cs231n-vis          # the course, read-only for students
MIRROR=/srv/data/cs231n-vis-mirror       # every online asset, fetched once (hash-checked)
EXCHANGE=/srv/nbgrader/exchange          # nbgrader's exchange, writable by every student

# 1. The course environment: the package and Jupyter into TLJH's user environment.
/opt/tljh/user/bin/pip install "${REPO}[course]"

# 2. The course folder, shared read-only, and a link to it in every new user's home.
install -d -m 755 "${COURSE_DIR}"
cp -r "${REPO}/notebooks" "${REPO}/README.md" "${COURSE_DIR}/"
chmod -R a+rX,go-w "${COURSE_DIR}"
ln -sfn "${COURSE_DIR}" /etc/skel/cs231n-vis

# 3. The asset mirror (needs internet once; afterwards the lab runs offline).
/opt/tljh/user/bin/python "${REPO}/data_scripts/fetch_assets.py" --all --dest "${MIRROR}" --trust-first-download
chmod -R a+rX,go-w "${MIRROR}"

# 4. Limits per user (SystemdSpawner enforces them) and the idle culler (on by default in TLJH).
#    Memory: the largest notebook peak (04: 3.1 GB) plus room for the student's own cells.
tljh-config set limits.memory 4G
tljh-config set limits.cpu 2
tljh-config set services.cull.timeout 3600      # an idle server is stopped after an hour
tljh-config set services.cull.every 300

# 5. The hub settings of this course: thread counts from the quota, the mirror, nbgrader's groups.
install -m 644 "${REPO}/labs/tljh/jupyterhub_config.d/cs231n_vis.py" /opt/tljh/config/jupyterhub_config.d/
# The formgrader service (needs its system user, see the file):
# useradd -m grader-cs231n-vis
# install -m 644 "${REPO}/labs/tljh/jupyterhub_config.d/cs231n_vis_formgrader.py" /opt/tljh/config/jupyterhub_config.d/

# 6. nbgrader: the exchange, and the students' side of the extension (instructors keep formgrader).
install -d -m 1777 "${EXCHANGE}"
cat > /opt/tljh/user/etc/jupyter/nbgrader_config.py <<PY
c = get_config()
c.Exchange.root = "${EXCHANGE}"
c.Exchange.path_includes_course = True
c.CourseDirectory.course_id = "cs231n-vis"
PY
/opt/tljh/user/bin/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader:formgrader
/opt/tljh/user/bin/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader:create-assignment
/opt/tljh/user/bin/jupyter server extension disable --sys-prefix nbgrader.server_extensions.formgrader

tljh-config reload hub

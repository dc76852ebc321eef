"""A real JupyterHub with the lab's configuration (labs/tljh/jupyterhub_config.d/cs231n_vis.py).

JupyterHub and configurable-http-proxy (npm, installed by `make test` into build/npm) on
127.0.0.1; for the test only, an authenticator and a spawner that need no root and no system
users (DummyAuthenticator, SimpleLocalProcessSpawner: servers run as this user, homes in a temp
folder; a real lab uses TLJH's SystemdSpawner, which also enforces the limits). Two users are
created through the REST API with different CPU quotas, their servers started, and in each
user's kernel (the user server's kernels API and its websocket) the first cells of notebook 02
run and the thread count and mirror variable are read back. Nothing is left running.
"""

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
SNIPPET = ROOT / "labs" / "tljh" / "jupyterhub_config.d" / "cs231n_vis.py"
BIN = Path(sys.executable).parent
NOTEBOOK = ROOT / "notebooks" / "02_filters.ipynb"
FIRST_CELLS = 2                     # the setup cell and the one after it
QUOTA = {"ada": 1, "bob": 3}        # CPUs per user: 3 is neither this runner's core count nor 1


def _proxy() -> Path | None:
    for candidate in (ROOT / "build" / "npm" / "node_modules" / ".bin" / "configurable-http-proxy",
                      shutil.which("configurable-http-proxy")):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    return None


requests = pytest.importorskip("requests")
psutil = pytest.importorskip("psutil")
pytest.importorskip("jupyterhub", reason="JupyterHub is not installed (the test extra: pip install -e '.[test]')")
pytestmark = [
    pytest.mark.skipif(shutil.which("npm") is None and _proxy() is None,
                       reason="npm is missing, so configurable-http-proxy (an npm package) cannot be installed: "
                              "the JupyterHub lab test is skipped"),
    pytest.mark.skipif(_proxy() is None and shutil.which("npm") is not None,
                       reason="configurable-http-proxy is not installed: run `make test` (it runs "
                              "`npm install --prefix build/npm configurable-http-proxy`)"),
]


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


CONFIG = """
c = get_config()
load_subconfig({snippet!r})                       # the lab's configuration, as TLJH loads it

# For the test only: no root, no system users, everything on 127.0.0.1.
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.JupyterHub.db_url = "sqlite:///{tmp}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{tmp}/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = "{tmp}/jupyterhub.pid"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "{tmp}/home/{{username}}"
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = {args!r}                            # ["--allow-root"] where the tests run as root
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180
c.JupyterHub.services = [{{"name": "course-test", "api_token": {token!r}}}]
c.JupyterHub.load_roles.append({{"name": "course-test", "services": ["course-test"],
    "scopes": ["admin:users", "admin:servers", "access:servers", "list:users", "read:users"]}})

QUOTA = {quota!r}
def per_user_quota(spawner):                      # what tljh-config limits.cpu sets, per user here
    spawner.cpu_limit = QUOTA[spawner.user.name]
c.Spawner.pre_spawn_hook = per_user_quota
"""


class Hub:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.port, hub_port, api_port = _free_ports(3)
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(16)
        self.mirror = tmp / "srv" / "cs231n-vis-mirror"
        self.course = tmp / "srv" / "cs231n-vis"
        self.mirror.mkdir(parents=True)
        self.course.mkdir(parents=True)
        (tmp / "home").mkdir()
        (tmp / "jupyterhub_config.py").write_text(CONFIG.format(
            snippet=str(SNIPPET), port=self.port, hub_port=hub_port, api_port=api_port, proxy=str(_proxy()),
            tmp=tmp, singleuser=str(BIN / "jupyterhub-singleuser"), token=self.token, quota=QUOTA,
            args=["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "CPU_LIMIT", "OMP_", "MKL_", "OPENBLAS_"))}
        env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])        # jupyterhub-singleuser, node
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])  # this checkout's package
        env["CS231N_VIS_MIRROR"] = str(self.mirror)
        env["CS231N_VIS_COURSE_DIR"] = str(self.course)
        env["JUPYTER_CONFIG_DIR"] = str(tmp / "jupyter-config")
        self.log = open(tmp / "jupyterhub.log", "w")
        self.process = subprocess.Popen([str(BIN / "jupyterhub"), "-f", str(tmp / "jupyterhub_config.py")],
                                        cwd=tmp, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self.seen: dict[int, psutil.Process] = {}

    def remember_processes(self):
        """Every process the hub started (proxy, user servers, kernels) while it runs."""
        try:
            for p in psutil.Process(self.process.pid).children(recursive=True):
                self.seen.setdefault(p.pid, p)
        except psutil.NoSuchProcess:
            pass

    def api(self, method, path, **kwargs):
        r = requests.request(method, f"{self.url}/hub/api{path}", headers={"Authorization": f"token {self.token}"},
                             timeout=60, **kwargs)
        return r

    def wait(self, what, check, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the hub exited while waiting for {what}:\n{self.log_tail()}"
            self.remember_processes()
            try:
                if check():
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log_tail()}")

    def log_tail(self):
        self.log.flush()
        return (self.tmp / "jupyterhub.log").read_text()[-4000:]

    def stop(self) -> list[str]:
        """Stop the servers and the hub; returns the processes that had to be killed."""
        self.remember_processes()
        if self.process.poll() is None:
            for name in QUOTA:
                try:
                    self.api("DELETE", f"/users/{name}/server")
                except requests.RequestException:
                    pass
            self.process.send_signal(signal.SIGTERM)  # cleanup_servers / cleanup_proxy: the hub stops both
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        killed = []
        gone, alive = psutil.wait_procs(list(self.seen.values()), timeout=20)
        for p in alive:
            try:
                killed.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=10)
        self.log.close()
        return killed


async def _run_in_kernel(ws_url, token, code, timeout=300):
    """Execute ``code`` in a kernel through the server's websocket (the Jupyter messaging protocol);
    returns (stdout, stderr); raises on an error."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    conn = await websocket_connect(HTTPRequest(ws_url, headers={"Authorization": f"token {token}"}))
    try:
        msg_id = uuid.uuid4().hex
        conn.write_message(json.dumps({
            "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        out, err, done = [], [], False
        deadline = time.monotonic() + timeout
        while not done:
            raw = await asyncio.wait_for(conn.read_message(), max(1.0, deadline - time.monotonic()))
            assert raw is not None, "the kernel's websocket closed"
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                (out if content["name"] == "stdout" else err).append(content["text"])
            elif kind == "error":
                raise AssertionError(f"{content['ename']}: {content['evalue']}\n" + "\n".join(content["traceback"])[-3000:])
            elif kind == "status" and content["execution_state"] == "idle":
                done = True
        return "".join(out), "".join(err)
    finally:
        conn.close()


def _ready(hub, name):
    server = hub.api("GET", f"/users/{name}").json()["servers"].get("")
    assert server is not None, f"{name}'s server failed to start:\n{hub.log_tail()}"
    return server["ready"]


def test_a_lab_hub_gives_each_user_their_thread_count_and_the_mirror(tmp_path):
    nb = json.loads(NOTEBOOK.read_text())
    first = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"][:FIRST_CELLS]
    probe = ("import json, os, torch, cs231n_vis\n"
             "print(json.dumps({'threads': torch.get_num_threads(), 'package': cs231n_vis.__file__,\n"
             "  **{k: os.environ.get(k) for k in ('CPU_LIMIT', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS',\n"
             "     'OPENBLAS_NUM_THREADS', 'CS231N_VIS_MIRROR', 'CS231N_VIS_COURSE_DIR')}}))")
    hub = Hub(tmp_path)
    report, killed = {}, []
    try:
        hub.wait("the hub's API", lambda: hub.api("GET", "/").status_code == 200, 120)
        r = hub.api("POST", "/users", json={"usernames": list(QUOTA)})
        assert r.status_code == 201, r.text
        for name in QUOTA:
            r = hub.api("POST", f"/users/{name}/server")
            assert r.status_code in (201, 202), r.text
        for name in QUOTA:
            hub.wait(f"{name}'s server", lambda: _ready(hub, name), 200)
        headers = {"Authorization": f"token {hub.token}"}
        for name in QUOTA:
            r = requests.post(f"{hub.url}/user/{name}/api/kernels", headers=headers, json={"name": "python3"}, timeout=60)
            assert r.status_code == 201, r.text
            ws = f"ws://127.0.0.1:{hub.port}/user/{name}/api/kernels/{r.json()['id']}/channels"
            hub.remember_processes()
            start = time.perf_counter()
            outputs = [asyncio.run(_run_in_kernel(ws, hub.token, cell)) for cell in first]
            stdout, _ = asyncio.run(_run_in_kernel(ws, hub.token, probe))
            report[name] = {**json.loads(stdout.strip().splitlines()[-1]), "seconds": round(time.perf_counter() - start, 1),
                            "first cells printed": outputs[0][0].strip()}
            print(f"{name} (quota {QUOTA[name]} CPU): {report[name]}")
            hub.remember_processes()
    finally:
        killed = hub.stop()
    for name, quota in QUOTA.items():
        got = report[name]
        assert got["CPU_LIMIT"] == str(float(quota)), got           # JupyterHub passes the quota
        assert got["OMP_NUM_THREADS"] == got["MKL_NUM_THREADS"] == got["OPENBLAS_NUM_THREADS"] == str(quota), got
        assert got["threads"] == quota, f"{name}: torch runs {got['threads']} threads under a {quota}-CPU quota"
        assert got["CS231N_VIS_MIRROR"] == str(hub.mirror) and got["CS231N_VIS_COURSE_DIR"] == str(hub.course), got
        assert Path(got["package"]).is_relative_to(ROOT), f"the kernel imported another cs231n_vis: {got['package']}"
    assert hub.seen, "the test saw the hub's processes"
    assert not killed, f"processes left running after the hub stopped (killed now): {killed}"

"""A pytest plugin: one line per notebook as its last cell finishes (``-p notebook_progress``).

nbval makes every code cell a test item (``notebooks/NN_name.ipynb::Cell 3``). In parallel
workers (pytest-xdist, ``--dist loadfile``: one notebook per worker, in order, in one
kernel) the usual per-file lines are gone, so this prints, for each notebook, when its last
cell has run: how many cells passed or failed and the seconds its cells took.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict

import pytest


class NotebookProgress:
    def __init__(self, config: pytest.Config):
        self.config = config
        self.cells: Counter[str] = Counter()        # notebook -> its number of cells
        self.done: Counter[str] = Counter()
        self.outcomes: dict[str, Counter[str]] = defaultdict(Counter)
        self.seconds: Counter[str] = Counter()
        self.started = time.perf_counter()

    def _count(self, nodeids) -> None:
        if self.cells:  # every xdist worker collects the same items: count them once
            return
        for nodeid in nodeids:
            path = nodeid.split("::")[0]
            if path.endswith(".ipynb"):
                self.cells[path] += 1

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._count(item.nodeid for item in session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        self._count(ids)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        path = report.nodeid.split("::")[0]
        if path not in self.cells:
            return
        self.seconds[path] += report.duration
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.outcomes[path][report.outcome] += 1
        if report.when != "teardown":
            return
        self.done[path] += 1
        if self.done[path] == self.cells[path]:
            counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(self.outcomes[path].items()))
            elapsed = time.perf_counter() - self.started
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                # after a row of progress dots: start a line of its own
                if getattr(getattr(reporter, "_tw", None), "width_of_current_line", 0):
                    reporter.write("\n")
                reporter.write_line(f"{path}: {counts} ({self.seconds[path]:.0f} s of cells; "
                                    f"{elapsed:.0f} s since the start)")


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller (or a run without workers) reports
        config.pluginmanager.register(NotebookProgress(config), "notebook-progress-lines")

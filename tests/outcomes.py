"""What ran in this pytest session and how it ended, for tests about other tests (the bad-input catalogue).

``tests/conftest.py`` feeds it from ``pytest_runtest_logreport`` and moves the tests that read it to the end of
the run (``LAST``), so they see every other test's outcome.

``make test`` runs the suite on two pytest-xdist workers, where no test can be sure to run after all the others:
the parallel run leaves out ``LAST`` and its controller, which gets every worker's reports, ``save``s the outcomes;
a second pytest run of ``LAST`` alone ``load``s them (``RBFT_TEST_OUTCOMES_OUT`` / ``_IN``, set by the Makefile,
which deletes the file first, so a stale one is never read).
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["OUTCOMES", "COLLECTED", "LAST", "record", "outcomes_of", "save", "load"]

OUTCOMES: dict[str, str] = {}  # node id -> "passed" | "failed" | "skipped"
COLLECTED: set[str] = set()
LAST = ("tests/core/test_bad_inputs.py::test_every_catalogue_test_ran_and_passed_in_this_run",)
_RANK = {"passed": 0, "skipped": 1, "failed": 2}


def record(nodeid: str, when: str, outcome: str) -> None:
    """Keep the worst outcome of a test's phases (a failing teardown fails a passed test)."""
    if when != "call" and outcome == "passed":
        return  # a setup or teardown that passed says nothing about the test
    current = OUTCOMES.get(nodeid)
    if current is None or _RANK[outcome] > _RANK[current]:
        OUTCOMES[nodeid] = outcome


def outcomes_of(path: str, name: str) -> dict[str, str]:
    """Outcomes of ``path::name`` and of its parametrisations (``name[sqlite]``, ...) in this session."""
    base = f"{path}::{name}"
    return {nodeid: outcome for nodeid, outcome in OUTCOMES.items() if nodeid == base or nodeid.startswith(base + "[")}


def save(path: Path) -> None:
    path.write_text(json.dumps(OUTCOMES, indent=0, sort_keys=True), encoding="utf-8")


def load(path: Path) -> None:
    """The outcomes another pytest run of this make test saved (refused when missing: the catalogue cannot be
    proven from nothing)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no saved test outcomes; run the whole suite with make test")
    for nodeid, outcome in json.loads(path.read_text(encoding="utf-8")).items():
        OUTCOMES.setdefault(nodeid, outcome)

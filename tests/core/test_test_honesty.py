"""Tests that cannot lie (issue #14): a missing browser fails on CI, and the bad-input catalogue test fails
unless every test it names ran and passed in the same session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _pytest(*args: str, **env: str) -> subprocess.CompletedProcess:
    # not the make test run's outcome file either: an inner run must neither overwrite nor read it
    base = {k: v for k, v in os.environ.items()
            if k not in ("CI", "RBFT_TEST_BROWSER_REQUIRED", "RBFT_TEST_OUTCOMES_OUT", "RBFT_TEST_OUTCOMES_IN")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *args],
                          capture_output=True, text=True, timeout=300, cwd=REPO,
                          env={**base, "PYTHONPATH": str(REPO), **env})


def test_a_missing_browser_fails_on_ci_and_skips_only_elsewhere(tmp_path):
    absent = str(tmp_path / "no-chromium")
    test = "tests/browser/test_browser_present.py::test_chromium_starts"
    on_ci = _pytest(test, RBFT_TEST_CHROMIUM=absent, CI="true")
    assert on_ci.returncode == 1 and "1 error" in on_ci.stdout and "required here" in on_ci.stdout, on_ci.stdout[-2000:]
    under_make = _pytest(test, RBFT_TEST_CHROMIUM=absent, RBFT_TEST_BROWSER_REQUIRED="1")
    assert under_make.returncode == 1, under_make.stdout[-2000:]
    locally = _pytest(test, RBFT_TEST_CHROMIUM=absent)
    assert locally.returncode == 0 and "1 skipped" in locally.stdout, locally.stdout[-2000:]


def test_the_catalogue_check_fails_when_its_tests_did_not_run():
    alone = _pytest("tests/core/test_bad_inputs.py::test_every_catalogue_test_ran_and_passed_in_this_run")
    assert alone.returncode == 1
    assert "tests/core/test_importer.py::test_empty_source_is_an_error did not run in this session" in alone.stdout
    # and the existence check alone still passes
    assert _pytest("tests/core/test_bad_inputs.py::test_every_catalogue_row_points_to_a_real_test").returncode == 0


def test_outcomes_keep_the_worst_phase():
    from tests import outcomes

    outcomes.record("x.py::t", "setup", "passed")
    outcomes.record("x.py::t", "call", "passed")
    outcomes.record("x.py::t", "teardown", "failed")
    outcomes.record("x.py::s", "setup", "skipped")
    assert outcomes.outcomes_of("x.py", "t") == {"x.py::t": "failed"}
    assert outcomes.outcomes_of("x.py", "s") == {"x.py::s": "skipped"}
    del outcomes.OUTCOMES["x.py::t"], outcomes.OUTCOMES["x.py::s"]


def test_outcomes_saved_by_one_run_are_read_by_the_next_and_a_missing_file_is_refused(tmp_path):
    """How make test proves the catalogue after its parallel run: the controller saves, the last run loads."""
    import pytest

    from tests import outcomes

    before = dict(outcomes.OUTCOMES)
    try:
        outcomes.OUTCOMES.clear()
        outcomes.record("x.py::t[sqlite]", "call", "passed")
        outcomes.record("x.py::t[postgresql]", "call", "failed")
        outcomes.save(tmp_path / "outcomes.json")
        outcomes.OUTCOMES.clear()
        outcomes.load(tmp_path / "outcomes.json")
        assert outcomes.outcomes_of("x.py", "t") == {"x.py::t[sqlite]": "passed", "x.py::t[postgresql]": "failed"}
        with pytest.raises(FileNotFoundError, match="no saved test outcomes; run the whole suite with make test"):
            outcomes.load(tmp_path / "missing.json")
    finally:
        outcomes.OUTCOMES.clear()
        outcomes.OUTCOMES.update(before)


def test_an_inner_pytest_run_does_not_write_the_make_test_outcome_file(tmp_path, monkeypatch):
    saved = tmp_path / "outcomes.json"
    monkeypatch.setenv("RBFT_TEST_OUTCOMES_OUT", str(saved))
    inner = _pytest("tests/core/test_test_honesty.py::test_outcomes_keep_the_worst_phase")
    assert inner.returncode == 0 and not saved.exists()

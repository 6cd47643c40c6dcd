"""Concurrent reviewers on overlapping items through gradio_client against a real app subprocess.

Small counts here (bench/bench_concurrency.py runs 8 x 200): no accepted edit may be lost, every stale
save is refused with a conflict message and kept in the history, and no reviewer sees "database is locked".
"""

from __future__ import annotations

import pytest

from tests.review_load import check_against_db, run_collision, run_review_load
from tests.review_world import make_review_world, start_app, stop_app


@pytest.mark.both_backends
def test_concurrent_reviewers_lose_no_edit(tmp_path, db_url, data_dir):
    ids = make_review_world(db_url, tmp_path / "w", extra=1)
    items = [f"homes/{ext}" for ext in sorted(ids)]  # 4 items shared by 4 reviewers
    proc, url = start_app(db_url, data_dir)
    try:
        clash = run_collision(url, items[0], reviewers=4)  # four tabs save one item at the same version
        report = run_review_load(url, items, reviewers=4, saves=15, seed=1)
    finally:
        stop_app(proc)
    check_against_db(db_url, clash)
    check_against_db(db_url, report)
    print(report.figures())
    # the stale saves this test is about really happened: one of the four simultaneous saves won, three were
    # refused with a message and kept in the history
    assert (len(clash.accepted), len(clash.refused), clash.other_errors) == (1, 3, [])
    assert clash.lost == [] and clash.refused_not_kept == [] and clash.revision_rows == 1
    assert all("Not saved" in message and "saved by clash" in message for _, _, message in clash.refused)
    assert len(report.accepted) + len(report.refused) + len(report.other_errors) == 60
    assert report.other_errors == [] and report.locked_errors == 0
    assert report.lost == [] and report.revision_rows == len(report.accepted) > 0
    assert report.refused_not_kept == []
    assert all("Not saved" in message and "saved by " in message for _, _, message in report.refused)

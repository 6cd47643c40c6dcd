"""Several reviewers per item at 20,000 videos: every query of a reviewer's own queue ("not yet answered by me",
doubt first) and of the adjudication queue uses an index, EXPLAINed as in ``test_queue_plans``: PostgreSQL after
ANALYZE, SQLite as the app runs it."""

from __future__ import annotations

import os
import re

import pytest
from sqlalchemy import event

from db import counters
from db.engine import make_engine, session_scope
from rbft_core.review import adjudication
from rbft_core.review import workspace as ws
from tests.db.test_queue_plans import _PG, _SQLITE, _explain  # the same 70/10/15/5 dataset, at another size

pytestmark = pytest.mark.both_backends

N = 20_000
TABLES = ("reviews", "videos", "suggestions", "review_responses")
REVIEWERS = 10
# Items g with g % 4 != 0 are answered by reviewers r(g % 10) and r((g + 3) % 10): 15,000 items with two responses,
# about 2,600 submitted per reviewer; a response with (g + shift) % 7 == 0 is a draft (not an answer). Items with
# both answers submitted are ready; those with one stay in the queue of every reviewer but the one who answered.
_RESPONSES = (
    "INSERT INTO review_responses (dataset_id, video_id, suggestion_id, reviewer, rationale, label, status, version, "
    "shown_at, saved_at, created_at) SELECT 1, g, g, 'r' || ((g + {shift}) % 10), '{{}}', 'normal', "
    "CASE WHEN (g + {shift}) % 7 = 0 THEN 'draft' ELSE 'accepted' END, 1, {now}, {now}, {now} FROM {rows} WHERE g % 4 <> 0")
_READY = ("UPDATE reviews SET status = 'ready' WHERE status IN ('pending', 'draft') AND video_id % 4 <> 0 "
          "AND video_id % 7 <> 0 AND (video_id + 3) % 7 <> 0")


def _answered_by(reviewer: int, g: int) -> bool:
    return g % 4 != 0 and any((g + shift) % 10 == reviewer and (g + shift) % 7 != 0 for shift in (0, 3))


def _populate(url: str, dialect: str) -> None:
    pg = dialect == "postgresql"
    rows = "generate_series(1, {n}) g" if pg else "g"
    with make_engine(url).begin() as conn:
        for statement in _PG if pg else _SQLITE:
            statement = statement.format(n=N)
            conn.exec_driver_sql(statement.replace("%", "%%") if pg else statement)
        for shift in (0, 3):
            statement = _RESPONSES.format(shift=shift, now="now()" if pg else "CURRENT_TIMESTAMP", rows=rows)
            if not pg:
                statement = statement.replace(" SELECT 1,", " WITH RECURSIVE g(g) AS (SELECT 1 UNION ALL SELECT g + 1 "
                                              "FROM g WHERE g < {n}) SELECT 1,")
            statement = statement.replace("{n}", str(N))
            conn.exec_driver_sql(statement.replace("%", "%%") if pg else statement)
        conn.exec_driver_sql(_READY.replace("%", "%%") if pg else _READY)
        conn.exec_driver_sql("UPDATE datasets SET reviews_per_item = 2")
    with session_scope(url) as s:
        counters.rebuild(s, 1)
    if pg:
        with make_engine(url).connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")


def _full_scans(plan: str, dialect: str) -> list[str]:
    if dialect == "postgresql":
        return [t for t in TABLES if re.search(rf"Seq Scan on {t}\b", plan)]
    return [t for t in TABLES if re.search(rf"\bSCAN {t}\b", plan)]


def test_a_reviewers_queue_and_the_adjudication_queue_use_indexes_at_20k(db_url, db_backend):
    _populate(db_url, db_backend)
    sent: list[tuple[str, object]] = []
    engine = make_engine(db_url)

    def capture(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and any(f" {t}" in statement for t in TABLES):
            sent.append((statement, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        mine = ws.ReviewFilter(dataset="big", reviewer="r3")
        first = ws.neighbour(db_url, mine, None)
        second = ws.neighbour(db_url, mine, first)
        assert ws.neighbour(db_url, mine, second, backwards=True) == first
        place, size = ws.queue_place(db_url, mine, second)
        everyone = ws.queue_place(db_url, ws.ReviewFilter(dataset="big"), None)[1]
        assert place == 2 and 0 < size < everyone  # r3's answered items are not in r3's queue
        status = ws.queue_status(db_url, ws.ReviewFilter(dataset="big", reviewer="r3", label="abnormal"), first)
        assert status["size"] > 0
        ready = adjudication.neighbour(db_url, "big", None)
        assert ready is not None and adjudication.queue_status(db_url, "big", ready)["place"] == 1
        for review_id in (first, second):  # r3 never gets an item r3 submitted
            assert not _answered_by(3, ws.load_item(db_url, review_id).video_id)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert any("review_responses" in statement for statement, _ in sent)
    bad = {}
    for statement, params in sent:
        plan = _explain(db_url, db_backend, statement, params)
        if os.environ.get("RBFT_SHOW_PLANS"):
            print(f"\n{statement[:200]}\n--> {plan}")
        if _full_scans(plan, db_backend) or not re.search(r"index|primary key", plan, re.IGNORECASE):
            bad[statement] = plan
    assert not bad, "\n\n".join(f"{s}\n--> {p}" for s, p in bad.items())

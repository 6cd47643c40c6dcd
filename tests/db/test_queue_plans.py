"""Every query the review queue runs uses an index at 200,000 reviews: EXPLAIN (PostgreSQL, after ANALYZE) and
EXPLAIN QUERY PLAN (SQLite, no statistics, as the app runs it) of the statements the workspace really sends."""

from __future__ import annotations

import os
import re

import pytest
from sqlalchemy import event

from db import counters
from db.engine import make_engine, session_scope
from rbft_core.review import workspace as ws
from rbft_core.review.flags import FLAG_BITS

pytestmark = pytest.mark.both_backends

N = 200_000
BIG_TABLES = ("reviews", "videos", "suggestions")

# One dataset of N videos, one suggestion and one review each (70% pending, 10% draft, 15% accepted, 5% rejected;
# a third abnormal; a fifth test; 10% edited; 1 in 97 parse failures; "zebra" in 1 of 1000 texts; flags: 1 in 7
# an orphan subject, 1 in 11 a contradiction and an orphan, 1 in 13 a label word).
_ORPHAN, _CONTRA, _LEAK = FLAG_BITS["orphan_subject"], FLAG_BITS["contradiction"], FLAG_BITS["label_leak"]
_FLAGS = (f"CASE WHEN g % 7 = 0 THEN {_ORPHAN} WHEN g % 11 = 0 THEN {_ORPHAN | _CONTRA} WHEN g % 13 = 0 THEN {_LEAK} "
          "ELSE 0 END")
_PG = [
    "INSERT INTO datasets (id, name, preset, role, task, labels, criteria, created_at) VALUES "
    "(1, 'big', 'smart-home', '', '', '[\"normal\", \"abnormal\"]', '', now())",
    "INSERT INTO videos (id, dataset_id, external_id, path, source_root, sha256, size_bytes, split, label, readable, "
    "meta, created_at) SELECT g, 1, 'v' || lpad(g::text, 6, '0'), '/v.mp4', '', md5(g::text), 0, "
    "CASE WHEN g % 5 = 0 THEN 'test' ELSE 'train' END, CASE WHEN g % 3 = 0 THEN 'abnormal' ELSE 'normal' END, "
    "true, '{{}}', now() FROM generate_series(1, {n}) g",
    "INSERT INTO suggestions (id, video_id, model_id, prompt_version, rationale, "
    "conclusion, raw_text, parse_status, label_hint, mean_logprob, gen_params, doubt_score, doubt_reason, flag_bits, "
    "created_at) SELECT g, g, 'm', 'p', '{{\"subjects\": \"a man in a hoodie\", \"attributes\": \"adult\", "
    "\"actions\": \"walks up\", \"scenes\": \"porch\"}}', 'This is normal.', '', "
    "CASE WHEN g % 97 = 0 THEN 'failed' ELSE 'ok' END, true, -0.5, '{{}}', (g * 7919 % 100000) / 100.0, '', "
    f"{_FLAGS}, now() FROM generate_series(1, {{n}}) g",
    "INSERT INTO reviews (id, video_id, suggestion_id, rationale, status, excluded, version, updated_at, dataset_id, "
    "split, queue_label, queue_key, edited, parse_failed, flag_bits, search_doc) SELECT g, g, g, "
    "(CASE WHEN g % 10 = 7 THEN '{{\"subjects\": \"a woman in a coat\"}}' ELSE '{{}}' END)::json, "
    "CASE WHEN g % 20 < 3 THEN 'accepted' WHEN g % 20 = 3 THEN 'rejected' WHEN g % 20 < 6 THEN 'draft' "
    "ELSE 'pending' END, false, 1, now(), 1, CASE WHEN g % 5 = 0 THEN 'test' ELSE 'train' END, "
    "CASE WHEN g % 3 = 0 THEN 'abnormal' ELSE 'normal' END, -((g * 7919 % 100000) / 100.0), g % 10 = 7, "
    f"g % 97 = 0, {_FLAGS}, 'v' || lpad(g::text, 6, '0') || ' a man in a hoodie ' || "
    "CASE WHEN g % 1000 = 7 THEN 'zebra' ELSE 'parcel' END FROM generate_series(1, {n}) g",
]
_SQLITE = [s.replace("now()", "CURRENT_TIMESTAMP").replace("END)::json", "END)").replace("md5(g::text)", "printf('%064d', g)")
           .replace("lpad(g::text, 6, '0')", "printf('%06d', g)").replace("true", "1").replace("false", "0")
           .replace("generate_series(1, {n}) g", "g").replace(" SELECT g,", " WITH RECURSIVE g(g) AS (SELECT 1 "
                                                             "UNION ALL SELECT g + 1 FROM g WHERE g < {n}) SELECT g,")
           for s in _PG]


def _populate(url: str, dialect: str) -> None:
    with make_engine(url).begin() as conn:
        for statement in _PG if dialect == "postgresql" else _SQLITE:
            statement = statement.format(n=N)
            conn.exec_driver_sql(statement.replace("%", "%%") if dialect == "postgresql" else statement)
        if dialect == "postgresql":
            for table in ("datasets", "videos", "suggestions", "reviews"):
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    with session_scope(url) as s:
        counters.rebuild(s, 1)
    if dialect == "postgresql":  # real statistics (and a visibility map), as autovacuum leaves them
        with make_engine(url).connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")


def _explain(url: str, dialect: str, statement: str, params) -> str:
    prefix = "EXPLAIN " if dialect == "postgresql" else "EXPLAIN QUERY PLAN "
    with make_engine(url).connect() as conn:
        rows = conn.exec_driver_sql(prefix + statement, params).all()
    return "\n".join(str(r[-1]) for r in rows)


def _full_scans(plan: str, dialect: str) -> list[str]:
    if dialect == "postgresql":
        return [t for t in BIG_TABLES if re.search(rf"Seq Scan on {t}\b", plan)]
    return [t for t in BIG_TABLES if re.search(rf"\bSCAN {t}\b", plan)]  # SEARCH is a seek, SCAN reads all


def test_every_queue_query_uses_an_index_at_200k(db_url: str, db_backend: str) -> None:
    _populate(db_url, db_backend)
    sent: list[tuple[str, object]] = []
    engine = make_engine(db_url)

    def capture(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and any(f" {t}" in statement for t in BIG_TABLES):
            sent.append((statement, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        filters = [ws.ReviewFilter(dataset="big"), ws.ReviewFilter(dataset="big", status="all"),
                   ws.ReviewFilter(dataset="big", status="accepted", label="abnormal", split="test"),
                   ws.ReviewFilter(dataset="big", edited="edited"), ws.ReviewFilter(dataset="big", parse_failed=True),
                   ws.ReviewFilter(dataset="big", search="zebra"), ws.ReviewFilter(dataset="big", search="v00012"),
                   ws.ReviewFilter(dataset="big", flag="orphan_subject"), ws.ReviewFilter(dataset="big", flag="flagged"),
                   ws.ReviewFilter(dataset="big", flag="unflagged", label="abnormal"),
                   ws.ReviewFilter(dataset="big", flag="label_leak", search="zebra")]
        for flt in filters:
            first = ws.neighbour(db_url, flt, None)
            assert first is not None, flt
            second = ws.neighbour(db_url, flt, first)
            assert ws.neighbour(db_url, flt, second, backwards=True) == first
            assert ws.queue_place(db_url, flt, second)[0] == 2
        place, size = ws.queue_place(db_url, ws.ReviewFilter(dataset="big"), 100_006)  # deep in a long queue
        assert size == N * 16 // 20 and 1000 < place < size
        counts = ws.review_counts(db_url, "big")
        assert counts == {"pending": N * 16 // 20, "draft": N // 10, "accepted": N * 3 // 20, "edited": 0,
                          "rejected": N // 20, "excluded": 0, "total": N}
        assert ws.find_item(db_url, "big", "v012345") == 12345
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(sent) > 30
    bad = {}
    for statement, params in sent:
        plan = _explain(db_url, db_backend, statement, params)
        if os.environ.get("RBFT_SHOW_PLANS"):
            print(f"\n{statement[:160]}\n--> {plan}")
        if _full_scans(plan, db_backend) or not re.search(r"index|primary key", plan, re.IGNORECASE):
            bad[statement] = plan
    assert not bad, "\n\n".join(f"{s}\n--> {p}" for s, p in bad.items())

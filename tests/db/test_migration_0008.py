"""Migration 0008 moves the four fixed rationale columns into JSON without losing a row: a database at revision 0007
filled with suggestions, reviews, revisions and responses is upgraded and checked row by row, read back through the
app, taken down again and up again; on old SQLite versions the batch (table rebuild) path is taken and checked too.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import datetime, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, select, text

from db import counters
from db import review_queries as rq
from db.curated_queries import curated_examples
from db.engine import alembic_config, init_db, make_engine, session_factory
from db.models import Base
from db.search import include_object
from rbft_core.models.prompts import DEFAULT_DIMENSIONS
from rbft_core.review import workspace

pytestmark = pytest.mark.both_backends  # each test runs on SQLite and on PostgreSQL

FOUR = tuple(d.name for d in DEFAULT_DIMENSIONS)
WORDS = ("a man", "dark hoodie", "parcel", "porch at night", "a café ☕", 'says "hi"', "walks, then runs", "dog")
NOW = datetime(2027, 1, 20, 12, 0, tzinfo=timezone.utc)


def _text(rng: random.Random) -> str:
    return "; ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))


def _fill_0007(conn, rng: random.Random) -> dict:
    """Two datasets at revision 0007, with every kind of row that holds rationale text; returns what was written."""
    meta = MetaData()
    meta.reflect(conn)
    t = meta.tables
    want = {"suggestions": {}, "reviews": {}, "review_revisions": {}, "responses": {}, "response_revisions": {}}
    for ds in (1, 2):
        conn.execute(t["datasets"].insert().values(id=ds, name=f"d{ds}", preset="smart-home", role="", task="",
                                                   labels=["normal", "abnormal"], criteria="", created_at=NOW))
    sid, rid = 0, 0
    for vid in range(1, 25):
        ds, label = 1 + vid % 2, rng.choice(["normal", "abnormal"])
        conn.execute(t["videos"].insert().values(
            id=vid, dataset_id=ds, external_id=f"clip_{vid}", path=f"/v/{vid}.mp4", source_root="", sha256=f"{vid:064x}",
            size_bytes=1, split=rng.choice(["train", "test"]), label=label, readable=True, meta={}, created_at=NOW))
        if vid % 7 == 0:
            continue  # a video without a suggestion yet
        for _ in range(rng.randint(1, 2)):
            sid += 1
            texts = {d: ("" if rng.random() < 0.2 else _text(rng)) for d in FOUR}
            conn.execute(t["suggestions"].insert().values(
                id=sid, video_id=vid, model_id="m", prompt_version="rationale-v1", conclusion="This is normal.",
                raw_text=str(texts), parse_status="ok", label_hint=True, mean_logprob=-0.5, gen_params={},
                doubt_score=1.5, doubt_reason="", flags=[], flag_bits=0, dimension_logprobs={"subjects": {
                    "min_logprob": -0.1, "token": "a"}}, created_at=NOW, **texts))
            want["suggestions"][sid] = texts
        rid += 1
        stored = {d: (None if rng.random() < 0.5 else _text(rng)) for d in FOUR}
        conn.execute(t["reviews"].insert().values(
            id=rid, video_id=vid, suggestion_id=sid, label=None, status=rng.choice(["pending", "draft", "accepted"]),
            excluded=False, reviewer="ann", version=2, updated_at=NOW, dataset_id=ds, split="train",
            queue_label=label, queue_key=-1.5, edited=any(v is not None for v in stored.values()), parse_failed=False,
            flag_bits=0, search_doc=f"clip_{vid}", **stored))
        want["reviews"][rid] = stored
        before = {**dict.fromkeys(FOUR), "label": None, "status": "pending", "excluded": False, "reviewer": None,
                  "version": 1, "suggestion_id": sid, "updated_at": "2027-01-20T12:00:00+00:00"}
        after = {**before, **stored, "reviewer": "ann", "version": 2}
        conn.execute(t["review_revisions"].insert().values(id=rid, review_id=rid, version=2, before=before,
                                                           after=after, reviewer="ann", created_at=NOW))
        want["review_revisions"][rid] = (before, after)
        answer = {d: _text(rng) for d in FOUR}
        conn.execute(t["review_responses"].insert().values(
            id=rid, dataset_id=ds, video_id=vid, suggestion_id=sid, reviewer="bob", rationale=answer, label=label,
            status="accepted", version=1, shown_at=NOW, saved_at=NOW, created_at=NOW))
        want["responses"][rid] = answer
        history = ({}, {"rationale": answer, "label": label, "status": "accepted", "suggestion_id": sid,
                        "version": 1, "saved_at": "2027-01-20T12:00:00+00:00"})
        conn.execute(t["response_revisions"].insert().values(id=rid, response_id=rid, version=1, before=history[0],
                                                             after=history[1], created_at=NOW))
        want["response_revisions"][rid] = history
    return want


def _migrate(url: str, step, revision: str, check=None):
    """``step(cfg, revision)`` (command.upgrade / downgrade) as the ``alembic`` CLI runs it (db/migrations/env.py):
    on SQLite with foreign keys off, so a batch rebuild cannot cascade; then ``check(conn)`` on the same connection."""
    cfg = alembic_config(url)
    with make_engine(url).connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                step(cfg, revision)
                if check is not None:
                    check(conn)
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def _columns(conn, table: str) -> set[str]:
    meta = MetaData()
    meta.reflect(conn, only=[table])
    return set(meta.tables[table].c.keys())


def _check_head(url: str, want: dict) -> None:
    engine = make_engine(url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": include_object})
        assert compare_metadata(ctx, Base.metadata) == []  # the schema of db/models.py, indexes included
        meta = MetaData()
        meta.reflect(conn)
        t = meta.tables
        assert not set(FOUR) & _columns(conn, "suggestions") and not set(FOUR) & _columns(conn, "reviews")
        assert [r.dimensions for r in conn.execute(select(t["datasets"].c.dimensions))] == \
            [[d.to_dict() for d in DEFAULT_DIMENSIONS]] * 2
        suggestions = dict(conn.execute(select(t["suggestions"].c.id, t["suggestions"].c.rationale)).all())
        assert suggestions == want["suggestions"]
        assert all(list(text) == list(FOUR) for text in suggestions.values())  # every key, in the dimensions' order
        reviews = {r.id: r for r in conn.execute(select(t["reviews"]))}
        assert {i: r.rationale for i, r in reviews.items()} == {
            i: {d: v for d, v in stored.items() if v is not None} for i, stored in want["reviews"].items()}
        assert all(r.suggestion_id is not None and r.version == 2 for r in reviews.values())  # no SET NULL, no rewrite
        revisions = {r.id: (r.before, r.after) for r in conn.execute(select(t["review_revisions"]))}
        assert revisions == want["review_revisions"]
        assert dict(conn.execute(select(t["review_responses"].c.id, t["review_responses"].c.rationale)).all()) == \
            want["responses"]
        assert {r.id: (r.before, r.after) for r in conn.execute(select(t["response_revisions"]))} == \
            want["response_revisions"]
        assert conn.execute(text("SELECT count(*) FROM videos")).scalar() == 24


def _check_through_the_app(url: str, want: dict) -> None:
    with session_factory(url)() as s:
        for ds in (1, 2):
            assert counters.recount(s, ds)  # the JSON reads back through the app's own queries
            for row in curated_examples(s, ds, statuses=None):
                if row["review_id"] is None:
                    continue
                stored = want["reviews"][row["review_id"]]
                suggested = want["suggestions"][row["suggestion_id"]]
                expect = {d: stored[d] if stored[d] is not None else suggested[d] for d in FOUR}
                assert row["rationale"] == (expect if any(v is not None for v in stored.values()) else suggested)
        searched = rq.QueueFilter(dataset_id=2, statuses=None, search="clip_1")
        assert rq.queue_place(s, searched, 1)[0] > 0  # the search index (rebuilt after a batch rebuild) finds it
        item = rq.review_item(s, 1)
        assert [k for k in item["review"] if k in FOUR] == list(FOUR)
        assert {d: item["review"][d] for d in FOUR} == want["reviews"][1]
    shown = workspace.history(url, 1)
    assert shown[0]["changes"] == [(d, None, v) for d, v in want["reviews"][1].items() if v is not None]


@pytest.mark.parametrize("drop", ["native", "batch"])
def test_0008_moves_the_four_columns_into_json_row_by_row(empty_db_url: str, db_backend: str, drop: str,
                                                          monkeypatch) -> None:
    if drop == "batch":
        if db_backend != "sqlite":
            pytest.skip("the batch (table rebuild) path is SQLite's before 3.35")
        monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))  # what the migration asks
    url, rng = empty_db_url, random.Random(8)
    cfg = alembic_config(url)
    with make_engine(url).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0007")
        want = _fill_0007(conn, rng)
    init_db(url)  # the app's own upgrade: foreign keys off on SQLite, the search triggers restored after
    _check_head(url, want)
    _check_through_the_app(url, want)

    def back_at_0007(conn) -> None:  # the four columns come back with exactly the old values
        back = {r.id: {d: getattr(r, d) for d in FOUR} for r in conn.execute(text("SELECT * FROM reviews"))}
        assert back == want["reviews"]
        sugg = {r.id: {d: getattr(r, d) for d in FOUR} for r in conn.execute(text("SELECT * FROM suggestions"))}
        assert sugg == want["suggestions"]
        assert "dimensions" not in _columns(conn, "datasets") and "rationale" not in _columns(conn, "reviews")
        assert conn.execute(text("SELECT count(*) FROM review_revisions")).scalar() == len(want["review_revisions"])

    _migrate(url, command.downgrade, "0007", back_at_0007)
    _migrate(url, command.upgrade, "head")
    _check_head(url, want)


def test_0008_downgrade_refuses_a_dataset_with_other_dimensions(db_url: str) -> None:
    """Going back to 0007 would leave a fifth dimension's text nowhere: refused, naming the dataset."""
    from db import queries

    with session_factory(db_url)() as s:
        queries.get_or_create_dataset(s, "mod5", preset="moderation", labels=["hateful", "offensive", "normal"],
                                      dimensions=[*(d.to_dict() for d in DEFAULT_DIMENSIONS),
                                                  {"name": "speech", "description": "on-screen text and speech",
                                                   "required": False}])
        s.commit()
    cfg = alembic_config(db_url)
    with make_engine(db_url).begin() as conn:
        cfg.attributes["connection"] = conn
        with pytest.raises(RuntimeError, match="dataset 'mod5' uses the dimension.s. speech"):
            command.downgrade(cfg, "0007")

"""Repository functions on a fresh SQLite file per test."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db import queries as q
from db import curated_queries as cq
from db.engine import session_factory, session_scope
from db.models import Review, ReviewRevision
from rbft_core.errors import ConfigError, ConflictError, DataError

pytestmark = pytest.mark.both_backends  # each test runs on SQLite and on PostgreSQL


def _dataset_with_videos(session: Session, n: int = 3) -> tuple[int, list[int]]:
    ds = q.get_or_create_dataset(session, "home", preset="smart-home", labels=["abnormal", "normal"])
    ids = []
    for i in range(n):
        v = q.add_video(
            session,
            ds.id,
            external_id=f"v{i}",
            path=f"/videos/v{i}.mp4",
            sha256=f"{i:064x}",
            label="normal" if i % 2 else "abnormal",
            split="test" if i == 0 else "train",
        )
        ids.append(v.id)
    return ds.id, ids


def _suggest(session: Session, video_id: int, model: str = "m", prompt: str = "p1", text_: str = "a dog") -> int:
    s = q.add_suggestion(
        session, video_id, model_id=model, prompt_version=prompt, subjects=text_, parse_status="ok"
    )
    return s.id


def test_get_or_create_dataset_is_idempotent(session: Session) -> None:
    a = q.get_or_create_dataset(session, "home", labels=["normal", "abnormal"])
    b = q.get_or_create_dataset(session, "home", labels=["x"])
    assert a.id == b.id and b.labels == ["normal", "abnormal"]
    assert [d.name for d in q.list_datasets(session)] == ["home"]


def test_get_dataset_missing_lists_existing(session: Session) -> None:
    q.get_or_create_dataset(session, "home")
    q.get_or_create_dataset(session, "hate")
    with pytest.raises(DataError, match=r"dataset 'nope' not found \(existing datasets: hate, home\)"):
        q.get_dataset(session, "nope")


def test_dedupe_by_sha_is_enforced(session: Session) -> None:
    ds_id, _ = _dataset_with_videos(session, 1)
    assert q.find_video_by_sha(session, ds_id, f"{0:064x}").external_id == "v0"
    with pytest.raises(IntegrityError):
        q.add_video(
            session, ds_id, external_id="other", path="/x.mp4", sha256=f"{0:064x}", label="normal", split="train"
        )


def test_foreign_keys_enforced(session: Session) -> None:
    with pytest.raises(IntegrityError):
        session.execute(text("INSERT INTO import_runs (dataset_id, source, format, report, created_at) "
                             "VALUES (999, 's', 'folder', '{}', '2025-01-01')"))


def test_videos_for_generation_skips_done_and_unreadable(session: Session) -> None:
    ds_id, ids = _dataset_with_videos(session, 4)
    broken = q.add_video(session, ds_id, external_id="bad", path="/bad.mp4", sha256="f" * 64, label="normal",
                         split="train", readable=False, error="zero bytes")
    _suggest(session, ids[1])
    _suggest(session, ids[2], prompt="p0")  # other prompt version: still to do
    todo = q.videos_for_generation(session, ds_id, "train", "m", "p1")
    assert [v.id for v in todo] == [ids[2], ids[3]]
    assert broken.id not in [v.id for v in q.videos_for_generation(session, ds_id, None, "m", "p1", overwrite=True)]
    assert [v.id for v in q.videos_for_generation(session, ds_id, "train", "m", "p1", overwrite=True)] == ids[1:]
    assert q.count_suggested_videos(session, ds_id, "train", "m", "p1") == 1
    assert q.count_suggested_videos(session, ds_id, None, "m", "p0") == 1
    assert q.count_suggested_videos(session, ds_id, "test", "m", "p1") == 0


def test_suggestion_creates_review_and_repoints_untouched_one(session: Session) -> None:
    _, ids = _dataset_with_videos(session, 1)
    first = _suggest(session, ids[0])
    review = session.query(Review).filter_by(video_id=ids[0]).one()
    assert (review.status, review.suggestion_id, review.version) == ("pending", first, 1)
    assert review.rationale == {}  # every dimension: the suggestion's text
    second = _suggest(session, ids[0], text_="a cat")
    assert q.get_review(session, review.id).suggestion_id == second
    q.save_review(session, review.id, expected_version=1, reviewer="ann", subjects="a cat", status="accepted")
    _suggest(session, ids[0], text_="a bird")
    assert q.get_review(session, review.id).suggestion_id == second  # a saved review keeps its suggestion


def test_add_suggestion_validates_parse_status(session: Session) -> None:
    _, ids = _dataset_with_videos(session, 1)
    with pytest.raises(ConfigError, match="parse_status"):
        q.add_suggestion(session, ids[0], model_id="m", prompt_version="p", parse_status="great")


def test_save_review_conflict_keeps_both_versions(db_url: str) -> None:
    with session_scope(db_url) as s:
        _, ids = _dataset_with_videos(s, 1)
        _suggest(s, ids[0])
        review_id = s.query(Review).one().id
    # Two reviewers load version 1; Ann saves first.
    with session_scope(db_url) as ann:
        saved = q.save_review(ann, review_id, expected_version=1, reviewer="ann", subjects="two raccoons")
        assert saved.version == 2
    with session_scope(db_url) as bob, pytest.raises(ConflictError) as info:
        q.save_review(bob, review_id, expected_version=1, reviewer="bob", subjects="one bear")
    message = str(info.value)
    assert "saved by ann at" in message and "two raccoons" in message and "you edited version 1" in message
    assert info.value.attempted == {"subjects": "one bear"}
    assert info.value.current["subjects"] == "two raccoons"
    # Bob reloads and saves on top: both versions stay in the history.
    with session_scope(db_url) as bob:
        q.save_review(bob, review_id, expected_version=2, reviewer="bob", subjects="one bear", status="accepted")
    with session_factory(db_url)() as s:
        history = q.review_history(s, review_id)
        assert [(r.version, r.reviewer, r.after["subjects"]) for r in history] == [
            (2, "ann", "two raccoons"),
            (3, "bob", "one bear"),
        ]
        assert history[0].before["subjects"] is None and history[1].before["subjects"] == "two raccoons"
        assert q.get_review(s, review_id).status == "accepted"


def test_version_check_is_atomic(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that passed the read check still loses if another write lands before its UPDATE."""
    with session_scope(db_url) as s:
        _, ids = _dataset_with_videos(s, 1)
        _suggest(s, ids[0])
        review_id = s.query(Review).one().id
    factory = session_factory(db_url)
    with factory() as slow:
        stale = q.get_review(slow, review_id)  # slow reader sees version 1
        with session_scope(factory) as fast:
            q.save_review(fast, review_id, expected_version=1, reviewer="fast", scenes="garage")
        # Simulate the race: the pre-check passes on a stale object, the UPDATE must not.
        assert stale.version == 1
        original_get = q.get_review
        calls = []

        def stale_first(session: Session, rid: int) -> Review:
            calls.append(rid)
            return stale if len(calls) == 1 else original_get(session, rid)

        monkeypatch.setattr(q, "get_review", stale_first)
        with pytest.raises(ConflictError, match="saved by fast"):
            q.save_review(slow, review_id, expected_version=1, reviewer="slow", scenes="kitchen")
        slow.rollback()
    with factory() as s:
        assert [r.reviewer for r in q.review_history(s, review_id)] == ["fast"]


def test_revisions_are_append_only(session: Session) -> None:
    _, ids = _dataset_with_videos(session, 1)
    _suggest(session, ids[0])
    review_id = session.query(Review).one().id
    for version, scenes in enumerate(["porch", "porch at night", "driveway"], start=1):
        q.save_review(session, review_id, expected_version=version, reviewer="ann", scenes=scenes)
    history = q.review_history(session, review_id)
    assert [r.version for r in history] == [2, 3, 4]
    assert [r.after["scenes"] for r in history] == ["porch", "porch at night", "driveway"]
    assert all(h.before["scenes"] == p.after["scenes"] for p, h in zip(history, history[1:]))
    assert session.query(ReviewRevision).count() == 3


def test_save_review_rejects_unknown_field_and_status(session: Session) -> None:
    _, ids = _dataset_with_videos(session, 1)
    _suggest(session, ids[0])
    review_id = session.query(Review).one().id
    with pytest.raises(ConfigError, match="colour"):
        q.save_review(session, review_id, expected_version=1, reviewer="ann", colour="red")
    with pytest.raises(ConfigError, match="status must be one of"):
        q.save_review(session, review_id, expected_version=1, reviewer="ann", status="done")
    with pytest.raises(DataError, match="review 999 not found"):
        q.save_review(session, 999, expected_version=1, reviewer="ann", status="accepted")


def test_dataset_counts(session: Session) -> None:
    ds_id, ids = _dataset_with_videos(session, 4)
    q.add_video(session, ds_id, external_id="bad", path="/bad.mp4", sha256="f" * 64, label="normal",
                split="train", readable=False, error="zero bytes")
    _suggest(session, ids[0])
    _suggest(session, ids[1])
    review = session.query(Review).filter_by(video_id=ids[1]).one()
    q.save_review(session, review.id, expected_version=1, reviewer="ann", status="accepted")
    counts = q.dataset_counts(session, ds_id)
    assert counts == {
        "total": 5,
        "labels": {"abnormal": 2, "normal": 3},
        "splits": {"test": 1, "train": 4},
        "label_split": {"test": {"abnormal": 1}, "train": {"abnormal": 1, "normal": 3}},
        "review_status": {"pending": 1, "draft": 0, "accepted": 1, "rejected": 0, "none": 3},
        "unreadable": 1,
    }


def test_record_import_run(session: Session) -> None:
    ds_id, _ = _dataset_with_videos(session, 1)
    run = q.record_import_run(session, ds_id, "/src", "folder", {"imported": 1})
    assert run.id and run.report == {"imported": 1}


def test_session_scope_rolls_back(db_url: str) -> None:
    with pytest.raises(RuntimeError), session_scope(db_url) as s:
        q.get_or_create_dataset(s, "lost")
        raise RuntimeError("boom")
    with session_scope(db_url) as s:
        assert q.list_datasets(s) == []


def test_begin_snapshot_pins_one_view_of_the_database(db_url: str) -> None:
    """An export reads everything from one snapshot: a commit landing meanwhile is not half-seen."""
    with session_scope(db_url) as s:
        _dataset_with_videos(s, 2)
    factory = session_factory(db_url)
    with factory() as reader:
        cq.begin_snapshot(reader)
        before = len(q.list_datasets(reader))
        with session_scope(factory) as writer:
            q.get_or_create_dataset(writer, "late", labels=["a", "b"])
        assert len(q.list_datasets(reader)) == before == 1
        reader.rollback()
        assert len(q.list_datasets(reader)) == 2  # a new transaction sees the commit

"""Counters kept on write and the queue columns of reviews agree with a full recount after random operations
(imports, suggestions, saves, bulk actions, deletes), and the indexed queue walks exactly the brute-force queue."""

from __future__ import annotations

import random
import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from db import counters, writes
from db import queries as q
from db import review_queries as rq
from db.models import Review, Suggestion, Video
from db.review_state import derived_columns
from rbft_core.models.prompts import DEFAULT_DIMENSIONS
from rbft_core.errors import ConflictError
from rbft_core.review.flags import ALL_FLAG_BITS, FLAG_BITS, masks_with

pytestmark = pytest.mark.both_backends  # each test runs on SQLite and on PostgreSQL

# Some of these make flags (a dog in a hoodie, "unusual" naming a label, a word three times in a row).
WORDS = ("man", "hoodie", "parcel", "dog", "door", "night", "porch", "courier", "van", "garden", "cat", "bike",
         "unusual")
LABELS = ["normal", "abnormal", "unclear"]
FIELDS = tuple(d.name for d in DEFAULT_DIMENSIONS)  # the datasets here keep the paper's four dimensions


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4)))


def _import(session: Session, rng: random.Random, dataset_id: int, start: int, n: int) -> list[int]:
    rows = [{"external_id": f"v{start + i:05d}", "path": f"/v{start + i}.mp4", "sha256": f"{dataset_id}-{start + i}",
             "label": rng.choice(LABELS), "split": rng.choice(["train", "train", "val", "test"]),
             "readable": rng.random() > 0.1} for i in range(n)]
    if n == 1:
        row = rows[0]
        return [q.add_video(session, dataset_id, **{k: row.pop(k) for k in ("external_id", "path", "sha256", "label",
                                                                             "split")}, **row).id]
    return writes.add_videos(session, dataset_id, rows)


def _suggest(session: Session, rng: random.Random, video_ids: list[int]) -> None:
    rows = []
    for vid in video_ids:
        status = rng.choice(["ok", "ok", "ok", "partial", "failed"])
        fields = {f: ("" if status == "failed" else _text(rng)) for f in FIELDS}
        rows.append({"video_id": vid, "model_id": "m", "prompt_version": "p", "parse_status": status,
                     "conclusion": f"This is {rng.choice(LABELS)}.", "mean_logprob": -rng.random() * 4, **fields})
    if len(rows) == 1:
        q.add_suggestion(session, **rows[0])
    else:
        writes.add_suggestions(session, rows)


def _save(session: Session, rng: random.Random, review: Review) -> None:
    changes: dict = {"status": rng.choice(["draft", "accepted", "accepted", "rejected", "pending"])}
    for f in FIELDS:
        if rng.random() < 0.3:
            changes[f] = rng.choice([None, _text(rng)])
    if rng.random() < 0.2:
        changes["label"] = rng.choice([None, *LABELS])
    if rng.random() < 0.15:
        changes["excluded"] = rng.random() < 0.5
    if rng.random() < 0.1:
        newest = session.scalar(select(Suggestion.id).where(Suggestion.video_id == review.video_id)
                                .order_by(Suggestion.id.desc()))
        changes["suggestion_id"] = newest
    version = review.version if rng.random() > 0.05 else review.version + 7  # now and then a stale save
    try:
        q.save_review(session, review.id, expected_version=version, reviewer="r", **changes)
    except ConflictError:  # a stale version, or another writer saved it first (the concurrent test)
        assert version != review.version or q.get_review(session, review.id).version != review.version


def _filter(rng: random.Random, dataset_id: int, with_search: bool = True) -> rq.QueueFilter:
    return rq.QueueFilter(
        dataset_id=dataset_id,
        statuses=rng.choice([None, None, ("pending", "draft"), ("pending", "draft"), ("accepted",), ("rejected",)]),
        label=rng.choice(["", "", "", *LABELS]), split=rng.choice(["", "", "", "train", "test"]),
        edited=rng.choice([None, None, None, True, False]), parse_failed=rng.random() < 0.15,
        search=rng.choice(["", "", "", "", "hood", "dog", "v0001", "cat porch"]) if with_search else "",
        flags=rng.choice([None, None, None, None, 0, ALL_FLAG_BITS, *FLAG_BITS.values()]))


def _truth(session: Session, dataset_id: int) -> list[dict]:
    """Every review of the dataset with what its queue columns must be, computed from the source of truth."""
    out = []
    for review, video in session.execute(select(Review, Video).join(Video, Video.id == Review.video_id)
                                         .where(Video.dataset_id == dataset_id)
                                         .execution_options(populate_existing=True)):
        sug = session.get(Suggestion, review.suggestion_id) if review.suggestion_id else None
        stored = {"label": review.label, "rationale": review.rationale}
        sugd = None if sug is None else {n: getattr(sug, n) for n in ("rationale", "conclusion", "doubt_score",
                                                                       "parse_status", "flag_bits")}
        vid = {"dataset_id": video.dataset_id, "external_id": video.external_id, "split": video.split,
               "label": video.label}
        out.append({"review": review, "expected": derived_columns(stored, sugd, vid)})
    return out


def _brute_queue(rows: list[dict], flt: rq.QueueFilter) -> list[int]:
    words = re.findall(r"[^\W_]+", flt.search.lower())
    keep = []
    for row in rows:
        r, e = row["review"], row["expected"]
        if flt.statuses and r.status not in flt.statuses:
            continue
        if (flt.label and e["queue_label"] != flt.label) or (flt.split and e["split"] != flt.split):
            continue
        if (flt.edited is not None and e["edited"] != flt.edited) or (flt.parse_failed and not e["parse_failed"]):
            continue
        if flt.flags is not None and e["flag_bits"] not in masks_with(flt.flags):
            continue
        tokens = re.findall(r"[^\W_]+", e["search_doc"].lower())
        if not all(any(t.startswith(w) for t in tokens) for w in words):
            continue
        keep.append((e["queue_key"], r.video_id, r.id))
    return [review_id for *_key, review_id in sorted(keep)]


def _check(session: Session, rng: random.Random, dataset_ids: list[int]) -> None:
    session.flush()
    for dataset_id in dataset_ids:
        assert counters.stored(session, dataset_id) == counters.recount(session, dataset_id)
        rows = _truth(session, dataset_id)
        for row in rows:
            review = row["review"]
            got = {k: getattr(review, k) for k in row["expected"]}
            assert got == row["expected"], review.id
        for _ in range(8):
            flt = _filter(rng, dataset_id)
            expected = _brute_queue(rows, flt)
            walked, current = [], None
            while (current := rq.queue_neighbour(session, flt, current)) is not None:
                walked.append(current)
                assert len(walked) <= len(expected), "the walk went past the end"
            assert walked == expected, flt
            back, current = [], None
            while (current := rq.queue_neighbour(session, flt, current, backwards=True)) is not None:
                back.append(current)
                assert len(back) <= len(expected)
            assert back == expected[::-1]
            for place, review_id in list(enumerate(expected, 1))[:: max(1, len(expected) // 3)]:
                assert rq.queue_place(session, flt, review_id) == (place, len(expected))
            outside = [r["review"].id for r in rows if r["review"].id not in expected]
            if outside:
                assert rq.queue_place(session, flt, outside[0]) == (0, len(expected))


def test_counters_and_queue_match_a_recount_after_random_operations(session: Session) -> None:
    rng = random.Random(19)
    ds = [q.get_or_create_dataset(session, name, labels=LABELS).id for name in ("a", "b")]
    next_id = 0
    for dataset_id in ds:  # a start: 30 videos, 20 with a suggestion
        ids = _import(session, rng, dataset_id, next_id, 30)
        next_id += 30
        _suggest(session, rng, ids[:20])
    session.commit()
    for step in range(48):
        dataset_id = rng.choice(ds)
        op = rng.choice(["import", "import", "suggest", "suggest", "save", "save", "save", "bulk", "delete"])
        video_ids = list(session.scalars(select(Video.id).where(Video.dataset_id == dataset_id, Video.readable)))
        if op == "import":
            n = rng.choice([1, 5, 12])
            _import(session, rng, dataset_id, next_id, n)
            next_id += n
        elif op == "suggest" and video_ids:
            _suggest(session, rng, rng.sample(video_ids, min(len(video_ids), rng.choice([1, 12]))))
        elif op == "save":
            reviews = list(session.scalars(select(Review).where(Review.dataset_id == dataset_id)))
            for review in rng.sample(reviews, min(len(reviews), 5)):
                _save(session, rng, q.get_review(session, review.id))
        elif op == "bulk":
            flt = _filter(rng, dataset_id, with_search=rng.random() < 0.3)
            if rng.random() < 0.5:
                rq.bulk_update(session, flt, "bulk", untouched_only=True, only_statuses=("pending", "draft"),
                               status="accepted")
            else:
                rq.bulk_update(session, flt, "bulk", excluded=rng.random() < 0.7)
        elif op == "delete" and video_ids:
            writes.delete_videos(session, dataset_id, rng.sample(video_ids, min(len(video_ids), 3)))
        session.commit()
        if step % 6 == 5:
            _check(session, rng, ds)
    _check(session, rng, ds)
    assert sum(counters.review_counts(session, d)["total"] for d in ds) > 40  # the run did real work
    flagged = session.scalars(select(Suggestion.flag_bits)).all()
    assert {bits & FLAG_BITS[c] != 0 for bits in flagged for c in ("orphan_subject", "label_leak")} == {True, False}
    writes.delete_dataset(session, ds[1])
    session.commit()
    assert counters.stored(session, ds[1]) == {}
    _check(session, rng, ds[:1])


def test_counts_read_the_counters(session: Session) -> None:
    """review_counts / dataset_counts come from the counters: a recount table edited by hand shows through."""
    ds = q.get_or_create_dataset(session, "c", labels=LABELS).id
    ids = writes.add_videos(session, ds, [{"external_id": f"x{i}", "path": "/x", "sha256": f"s{i}", "label": "normal",
                                           "split": "train"} for i in range(3)])
    _suggest(session, random.Random(1), ids[:2])
    counts = rq.review_counts(session, ds)
    assert (counts["total"], counts["pending"]) == (2, 2)
    assert q.dataset_counts(session, ds)["review_status"]["none"] == 1
    counters.apply(session, {(ds, "pending", "normal", "normal", "train", True, False, False, False, 0): 5})
    assert rq.review_counts(session, ds)["pending"] >= 5
    assert counters.rebuild(session, ds) == counters.recount(session, ds)
    assert rq.review_counts(session, ds)["pending"] == 2


def test_concurrent_writers_keep_the_counters_exact(db_url: str) -> None:
    """Four threads save, bulk-exclude and add suggestions at once: no deadlock, no lost count."""
    import threading

    from db.engine import session_factory, session_scope

    with session_scope(db_url) as s:
        dataset_id = q.get_or_create_dataset(s, "busy", labels=LABELS).id
        ids = _import(s, random.Random(0), dataset_id, 0, 40)
        _suggest(s, random.Random(1), ids)
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(15):
                with session_scope(db_url) as s:
                    op = rng.random()
                    if op < 0.6:
                        review_id = rng.choice(list(s.scalars(select(Review.id).where(Review.dataset_id == dataset_id))))
                        _save(s, rng, q.get_review(s, review_id))
                    elif op < 0.8:
                        rq.bulk_update(s, _filter(rng, dataset_id, with_search=False), f"t{seed}",
                                       excluded=rng.random() < 0.5)
                    else:
                        _suggest(s, rng, rng.sample(ids, 3))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with session_factory(db_url)() as s:
        _check(s, random.Random(2), [dataset_id])

"""Writes in bulk: videos, suggestions (with the reviews they open), deletes; counters and queue columns follow.

``db.queries.add_video`` / ``add_suggestion`` are these with one row. A call runs a few statements whatever
the number of rows (multi-row INSERT ... RETURNING, one read of what is already there, one counter upsert), so
200,000 rows go in within seconds per transaction. Flush, never commit: the caller commits (an importer
every few hundred rows, generation once per batch).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from db import counters
from db.models import PARSE_STATUSES, Dataset, Review, Suggestion, Video, utcnow
from db.review_state import PARSE_RANK, derived_columns, review_key, video_key
from rbft_core.errors import ConfigError, DataError
from rbft_core.models.prompts import dimensions_from_records
from rbft_core.review.doubt import doubt_of
from rbft_core.review.flags import check_suggestion, expected_prompt, flag_bits

__all__ = ["add_videos", "add_suggestions", "delete_videos", "delete_dataset", "dimensions_for_write",
           "VIDEO_DEFAULTS"]

_CHUNK = 500
VIDEO_DEFAULTS: dict[str, Any] = {
    "source_root": "", "size_bytes": 0, "readable": True, "error": None, "duration_s": None, "fps": None,
    "width": None, "height": None, "num_frames": None, "codec": None, "meta": None,
}
_SUGGESTION_DEFAULTS: dict[str, Any] = {
    "conclusion": "", "raw_text": "", "label_hint": True, "mean_logprob": None, "gen_params": None, "flags": None,
    "flag_bits": 0, "dimension_logprobs": None,
}
# What a suggestion row may hold besides one text per dimension of its dataset.
_SUGGESTION_COLUMNS = frozenset({"video_id", "model_id", "prompt_version", "parse_status", "doubt_score",
                                 "doubt_reason", "created_at", *_SUGGESTION_DEFAULTS})
_REVIEW_NONE: dict[str, Any] = {"label": None, "rationale": {}}  # every dimension: the suggestion's text


def dimensions_for_write(session: Session, dataset_id: int) -> list[dict[str, Any]]:
    """The dataset's dimension records, read by a caller about to write text under their names, so that a rename
    (``db.dimension_queries.lock_dataset``) cannot slip between the read and the write: PostgreSQL share-locks the
    dataset's row until the transaction ends (``FOR KEY SHARE``, the lock a foreign key check takes anyway, so
    writers do not wait for each other); SQLite first takes the database's write lock with a write that changes
    nothing (one writer at a time), so this read and every later one see the newest definition."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(Dataset).where(Dataset.id == dataset_id).values(name=Dataset.name)
                        .execution_options(synchronize_session=False))
    stmt = select(Dataset.dimensions).where(Dataset.id == dataset_id).with_for_update(read=True, key_share=True)
    return list(session.scalar(stmt) or [])


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _expire(session: Session, cls: type, ids: set[int]) -> None:
    """ORM objects already loaded for these rows see the bulk writes on their next access."""
    identity_map = session.identity_map
    if not len(identity_map):
        return
    for row_id in ids:
        obj = identity_map.get(identity_key(cls, row_id))
        if obj is not None:
            session.expire(obj)


def _insert(session: Session, model: type, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` (all with the same keys) in few statements; returns their new ids in order.

    PostgreSQL: multi-row INSERT ... RETURNING, matched to the rows in order. SQLite has one writer at a time:
    after the first row this transaction holds the write lock and a new rowid is the largest one plus one, so
    the other rows get the next ids explicitly and go in with one executemany (RETURNING in order would cost
    one statement per row there).
    """
    table = model.__table__
    if not rows:
        return []
    if session.get_bind().dialect.name != "sqlite":
        ids: list[int] = []
        for chunk in _chunks(rows):
            ids += session.scalars(insert(table).returning(table.c.id, sort_by_parameter_order=True), list(chunk)).all()
        return ids
    first = int(session.execute(insert(table), rows[0]).inserted_primary_key[0])
    ids = list(range(first, first + len(rows)))
    if len(rows) > 1:
        session.execute(insert(table), [{**row, "id": i} for row, i in zip(rows[1:], ids[1:])])
    return ids


def add_videos(session: Session, dataset_id: int, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert videos (each: external_id, path, sha256, label, split, optional probe fields); returns their ids.

    Raises ``IntegrityError`` (nothing inserted from the failing chunk) when a sha or id is already there.
    """
    now = utcnow()
    values = []
    for row in rows:
        if row["split"] not in ("train", "val", "test"):
            raise ConfigError(f"split {row['split']!r} of video {row['external_id']!r} must be train, val or test")
        value = {**VIDEO_DEFAULTS, **row, "dataset_id": dataset_id, "created_at": now}
        value["meta"] = dict(value["meta"] or {})
        values.append(value)
    session.flush()
    ids = _insert(session, Video, values)
    deltas: Counter = Counter()
    for value in values:
        deltas[video_key(dataset_id, label=value["label"], split=value["split"], readable=value["readable"])] += 1
    counters.apply(session, deltas)
    return ids


def _context(session: Session, video_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Per video: the video, its dataset (labels, prompt, dimensions), its review (or None) and the parse status of
    the review's current suggestion."""
    out: dict[int, dict[str, Any]] = {}
    dimensions: dict[int, Any] = {}  # per dataset, checked once
    current = Suggestion.__table__.alias("current")
    for chunk in _chunks(video_ids):
        rows = session.execute(
            select(Video.id, Video.dataset_id, Video.external_id, Video.split, Video.label, Video.readable,
                   Dataset.name, Dataset.labels, Dataset.preset, Dataset.role, Dataset.task, Dataset.criteria,
                   Review.id.label("review_id"), Review.status, Review.version, Review.label.label("r_label"),
                   Review.excluded, Review.suggestion_id, Review.queue_label, Review.edited, Review.parse_failed,
                   Review.flag_bits, Review.rationale.label("r_rationale"), current.c.parse_status.label("s_parse"))
            .join(Dataset, Dataset.id == Video.dataset_id)
            .outerjoin(Review, Review.video_id == Video.id)
            .outerjoin(current, current.c.id == Review.suggestion_id)
            .where(Video.id.in_(list(chunk)))
        ).mappings().all()
        for row in rows:
            video = {k: row[k] for k in ("dataset_id", "external_id", "split", "label", "readable")}
            review = None
            if row["review_id"] is not None:
                review = {"id": row["review_id"], "status": row["status"], "version": row["version"],
                          "label": row["r_label"], "excluded": bool(row["excluded"]), "suggestion_id": row["suggestion_id"],
                          "queue_label": row["queue_label"], "edited": bool(row["edited"]),
                          "parse_failed": bool(row["parse_failed"]), "flag_bits": int(row["flag_bits"] or 0),
                          "parse_status": row["s_parse"], "rationale": dict(row["r_rationale"] or {})}
            dims = dimensions.get(row["dataset_id"])
            if dims is None:  # the text is written under these names: read them for a write (a rename waits)
                records = dimensions_for_write(session, row["dataset_id"])
                dims = dimensions[row["dataset_id"]] = dimensions_from_records(records, f"dataset {row['name']!r}")
            prompt = (row["preset"] or "", row["role"] or "", row["task"] or "", row["criteria"] or "")
            out[row["id"]] = {"video": video, "labels": list(row["labels"] or []), "prompt": prompt, "review": review,
                              "dimensions": dims, "dataset": row["name"]}
    return out


def _rationale(row: dict[str, Any], ctx: dict[str, Any]) -> dict[str, str]:
    """The row's text per dimension of its dataset, in order ("" where it has none); any other key is refused."""
    names = [d.name for d in ctx["dimensions"]]
    unknown = sorted(set(row) - _SUGGESTION_COLUMNS - set(names))
    if unknown:
        raise ConfigError(f"suggestion field(s) {', '.join(unknown)} are neither columns nor dimensions of dataset "
                          f"{ctx['dataset']} (its dimensions: {', '.join(names)}); rename them to its dimensions")
    return {name: str(row.get(name) or "") for name in names}


def _doubt(fields: dict[str, Any], texts: dict[str, str], ctx: dict[str, Any]) -> dict[str, Any]:
    """Flags and doubt of a new suggestion (rows that bring their own doubt score keep it, without flags)."""
    if "doubt_score" in fields:
        return {}
    review = ctx["review"] or {}
    label = review.get("label") or ctx["video"]["label"]
    preset, role, task, criteria = ctx["prompt"]
    dims = ctx["dimensions"]
    hint = label if fields.get("label_hint", True) else None
    prompt = expected_prompt(preset, role, task, tuple(ctx["labels"]), criteria, hint, dims)
    flags = check_suggestion(fields=texts, conclusion=fields.get("conclusion") or "", label=label,
                             labels=ctx["labels"], parse_status=fields["parse_status"], prompt=prompt,
                             raw_text=fields.get("raw_text") or "", confidence=fields.get("dimension_logprobs"),
                             dimensions=dims)
    doubt = doubt_of(parse_status=fields["parse_status"], fields=texts, conclusion=fields.get("conclusion") or "",
                     label=label, labels=ctx["labels"], mean_logprob=fields.get("mean_logprob"), flags=flags,
                     confidence=fields.get("dimension_logprobs"), dimensions=dims)
    return {"doubt_score": doubt.score, "doubt_reason": doubt.reason, "flags": [f.to_dict() for f in flags],
            "flag_bits": flag_bits(flags)}


def rescore_suggestions(session: Session, dataset_id: int) -> tuple[int, int]:
    """Recompute the flags and doubt of every suggestion of a dataset from its stored text, with the dataset's
    dimensions and labels as they are now (after a change of its dimensions: which are required, their names);
    the reviews pointing at a changed suggestion follow (queue order, flag filter), and so do the counters.
    The text stays as written. Returns (suggestions looked at, suggestions whose flags or doubt changed).

    The caller holds the dataset's lock (``db.dimension_queries.lock_dataset``): saves wait until it commits.
    """
    session.flush()
    video_ids = session.scalars(select(Video.id).where(Video.dataset_id == dataset_id).order_by(Video.id)).all()
    seen = changed = 0
    deltas: Counter = Counter()
    for chunk in _chunks(video_ids):
        context = _context(session, list(chunk))
        rows = session.execute(
            select(Suggestion.id, Suggestion.video_id, Suggestion.rationale, Suggestion.parse_status,
                   Suggestion.conclusion, Suggestion.raw_text, Suggestion.label_hint, Suggestion.mean_logprob,
                   Suggestion.dimension_logprobs, Suggestion.flags, Suggestion.flag_bits, Suggestion.doubt_score,
                   Suggestion.doubt_reason)
            .where(Suggestion.video_id.in_(list(chunk)))
        ).mappings().all()
        updates = []
        for row in rows:
            ctx = context[row["video_id"]]
            texts = {d.name: str((row["rationale"] or {}).get(d.name) or "") for d in ctx["dimensions"]}
            fields = {k: row[k] for k in ("parse_status", "conclusion", "raw_text", "label_hint", "mean_logprob",
                                          "dimension_logprobs")}
            new = _doubt(fields, texts, ctx)
            seen += 1
            if (new["flags"], new["flag_bits"], new["doubt_score"], new["doubt_reason"]) == (
                    list(row["flags"] or []), row["flag_bits"], row["doubt_score"], row["doubt_reason"]):
                continue
            updates.append({"sid": row["id"], **new})
            review = ctx["review"]
            if review is not None and review["suggestion_id"] == row["id"] and review["flag_bits"] != new["flag_bits"]:
                deltas[_key(ctx["video"], review)] -= 1
                review["flag_bits"] = new["flag_bits"]
                deltas[_key(ctx["video"], review)] += 1
        if updates:
            table = Suggestion.__table__
            session.execute(table.update().where(table.c.id == bindparam("sid")).values(
                flags=bindparam("flags"), flag_bits=bindparam("flag_bits"),
                doubt_score=bindparam("doubt_score"), doubt_reason=bindparam("doubt_reason")), updates)
            reviews = Review.__table__
            session.execute(reviews.update().where(reviews.c.suggestion_id == bindparam("sid")).values(
                flag_bits=bindparam("flag_bits"), queue_key=bindparam("queue_key")),
                [{"sid": u["sid"], "flag_bits": u["flag_bits"],
                  "queue_key": -u["doubt_score"] if u["doubt_score"] else 0.0} for u in updates])
            changed += len(updates)
    counters.apply(session, deltas)
    if changed:
        session.expire_all()  # ORM objects already loaded see the new flags
    return seen, changed


def _key(video: dict[str, Any], review: dict[str, Any]) -> tuple:
    return review_key(video["dataset_id"], status=review["status"], queue_label=review["queue_label"],
                      video_label=video["label"], split=video["split"], readable=video["readable"],
                      edited=review["edited"], excluded=review["excluded"], parse_failed=review["parse_failed"],
                      flag_bits=review["flag_bits"])


def add_suggestions(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Add immutable suggestions (each: video_id, model_id, prompt_version, parse_status, the text of each
    dimension of the video's dataset under its name, conclusion, raw_text ...; a dimension left out is "").

    A video without a review gets a pending one pointing at its suggestion; a review still pending and never
    saved follows the newest suggestion unless it parsed worse than the one in place (compare-and-set, so a
    review saved meanwhile is left alone). Returns the new suggestion ids in the order of ``rows``.
    """
    for row in rows:
        if row.get("parse_status") not in PARSE_STATUSES:
            raise ConfigError(f"parse_status must be one of {', '.join(PARSE_STATUSES)}, got {row.get('parse_status')!r}")
    session.flush()
    video_ids = list(dict.fromkeys(int(r["video_id"]) for r in rows))
    context = _context(session, video_ids)
    missing = [v for v in video_ids if v not in context]
    if missing:
        raise DataError(f"video {missing[0]} not found; re-import the dataset before adding suggestions")
    now = utcnow()
    values = []
    for row in rows:
        ctx = context[int(row["video_id"])]
        texts = _rationale(row, ctx)
        columns = {k: v for k, v in row.items() if k in _SUGGESTION_COLUMNS}
        values.append({**_SUGGESTION_DEFAULTS, "created_at": now, **columns, "rationale": texts,
                       **_doubt(row, texts, ctx)})
    for value in values:
        value["gen_params"] = dict(value["gen_params"] or {})
        value["flags"] = list(value["flags"] or [])
        value["dimension_logprobs"] = dict(value["dimension_logprobs"] or {})
    ids = _insert(session, Suggestion, values)
    new_reviews: dict[int, dict[str, Any]] = {}
    deltas: Counter = Counter()
    for value, sid in zip(values, ids):
        ctx = context[int(value["video_id"])]
        video, review = ctx["video"], ctx["review"]
        suggestion = {**value, "id": sid}
        if review is None:  # the video's first suggestion opens a pending review
            review = {**_REVIEW_NONE, "rationale": {}, "status": "pending", "version": 1, "excluded": False,
                      "suggestion_id": sid, "parse_status": value["parse_status"],
                      **derived_columns(_REVIEW_NONE, suggestion, video)}
            ctx["review"] = new_reviews[int(value["video_id"])] = review
            deltas[video_key(video["dataset_id"], label=video["label"], split=video["split"],
                             readable=video["readable"])] -= 1
            deltas[_key(video, review)] += 1
            continue
        if review["status"] != "pending" or review["version"] != 1:
            continue  # saved reviews are left alone
        current = review.get("parse_status")
        if current is not None and PARSE_RANK[value["parse_status"]] < PARSE_RANK[current]:
            continue  # a failed rerun never hides a good rationale
        derived = derived_columns(review, suggestion, video)
        if "id" in review and not _repoint(session, review, sid, derived):
            continue
        deltas[_key(video, review)] -= 1
        review.update(derived, suggestion_id=sid, parse_status=value["parse_status"])
        deltas[_key(video, review)] += 1
    if new_reviews:
        columns = ("suggestion_id", "status", "version", "excluded", "label", "rationale", "dataset_id", "split",
                   "queue_label", "queue_key", "edited", "parse_failed", "flag_bits", "search_doc")
        inserts = [{"video_id": vid, "updated_at": now, **{c: r[c] for c in columns}} for vid, r in new_reviews.items()]
        session.execute(insert(Review.__table__), inserts)
    counters.apply(session, deltas)
    _expire(session, Video, set(video_ids))
    _expire(session, Review, {c["review"]["id"] for c in context.values() if c["review"] and "id" in c["review"]})
    return ids


def _repoint(session: Session, review: dict[str, Any], suggestion_id: int, derived: dict[str, Any]) -> bool:
    """Point a never-saved review at a newer suggestion unless someone saved it or repointed it meanwhile."""
    result = session.execute(
        update(Review)
        .where(Review.id == review["id"], Review.version == 1, Review.status == "pending",
               Review.suggestion_id.is_not_distinct_from(review["suggestion_id"]))
        .values(suggestion_id=suggestion_id, **derived)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def delete_videos(session: Session, dataset_id: int, video_ids: Sequence[int]) -> int:
    """Delete videos of a dataset with their suggestions, review and history; returns how many went."""
    deltas: Counter = Counter()
    gone = 0
    for chunk in _chunks(list(video_ids)):
        rows = session.execute(
            select(Video.id, Video.label, Video.split, Video.readable, Review.id.label("review_id"), Review.status,
                   Review.queue_label, Review.edited, Review.excluded, Review.parse_failed, Review.flag_bits)
            .outerjoin(Review, Review.video_id == Video.id)
            .where(Video.dataset_id == dataset_id, Video.id.in_(list(chunk)))
        ).mappings().all()
        for row in rows:
            video = {"dataset_id": dataset_id, "label": row["label"], "split": row["split"], "readable": row["readable"]}
            if row["review_id"] is None:
                deltas[video_key(dataset_id, label=row["label"], split=row["split"], readable=row["readable"])] -= 1
            else:
                deltas[_key(video, {k: row[k] for k in ("status", "queue_label", "edited", "excluded",
                                                        "parse_failed", "flag_bits")})] -= 1
        session.execute(delete(Video).where(Video.dataset_id == dataset_id, Video.id.in_([r["id"] for r in rows]))
                        .execution_options(synchronize_session=False))
        gone += len(rows)
    counters.apply(session, deltas)
    _expire(session, Video, set(int(v) for v in video_ids))
    return gone


def delete_dataset(session: Session, dataset_id: int) -> None:
    """Delete a dataset and everything in it (videos, suggestions, reviews, runs, counters)."""
    session.flush()
    session.execute(delete(Dataset).where(Dataset.id == dataset_id).execution_options(synchronize_session=False))
    session.expunge_all()

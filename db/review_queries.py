"""Queries for the review workspace: the doubt-first queue, one item, counts, bulk actions.

Kept apart from ``db.queries`` (datasets, videos, suggestions, single saves). Flush, never commit.
The queue is every review of a dataset matching a filter, ordered by the suggestion's doubt score
(highest first), then video id. The queue columns live on ``reviews`` itself (``queue_key`` = minus the doubt,
``queue_label``, ``split``, ``edited``, ``parse_failed``, ``flag_bits``; kept on write by ``db.review_state``), so
"next" and "previous" are index seeks on ``ix_reviews_queue``, one per non-empty (status, label, split, edited,
parse failed) segment of the filter (with a flag filter: on ``ix_reviews_flags``, one per (flag bits, ...)
segment), and the queue length and the counts are sums of ``dataset_counters`` rows: none of them reads the
dataset. A free-text search goes through the search index (``db.search``).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from sqlalchemy import and_, exists, func, insert, literal, select, true, tuple_, union_all, update
from sqlalchemy.orm import Session

from db import counters
from db.models import (
    Dataset,
    ImportRun,
    Review,
    ReviewResponse,
    ReviewRevision,
    Suggestion,
    Video,
    utcnow,
)
from db.queries import dimension_names, names_of, review_snapshot
from db.review_state import review_key
from db.search import restrict, search_words, unindexed
from rbft_core.errors import DataError
from rbft_core.review.flags import masks_with

__all__ = [
    "QueueFilter",
    "SUBMITTED",
    "answered_by",
    "queue_neighbour",
    "queue_place",
    "review_item",
    "find_review",
    "review_counts",
    "bulk_update",
    "record_refused_save",
    "newest_suggestion_id",
    "suggestion_parse_status",
    "latest_import_run",
]


@dataclass(frozen=True)
class QueueFilter:
    """Which reviews of a dataset are in the queue (empty / None values do not filter).

    ``flags``: None any; 0 only suggestions without a flag; else those with at least one of these flag bits.
    """

    dataset_id: int
    statuses: Optional[Sequence[str]] = ("pending", "draft")
    label: str = ""
    split: str = ""
    edited: Optional[bool] = None
    parse_failed: bool = False
    search: str = ""
    flags: Optional[int] = None
    # Several reviewers per item: leave out the items this reviewer has submitted a response for ("" keeps them)
    exclude_reviewer: str = ""

    def flag_masks(self) -> Optional[list[int]]:
        """The ``flag_bits`` values this filter takes (None: any)."""
        return None if self.flags is None else masks_with(self.flags)


SUBMITTED = ("accepted", "rejected")  # response statuses that count towards an item's k responses


def answered_by(reviewer: str) -> Any:
    """The review's video has a submitted response by ``reviewer``: one probe of uq_review_responses_video_reviewer."""
    return exists().where(ReviewResponse.video_id == Review.video_id, ReviewResponse.reviewer == reviewer,
                          ReviewResponse.status.in_(SUBMITTED))


def _not_mine(flt: "QueueFilter") -> Any:
    return ~answered_by(flt.exclude_reviewer) if flt.exclude_reviewer else true()


_ORDER = (Review.queue_key, Review.video_id)
_SEGMENT_CHUNK = 100  # index seeks per statement (SQLite allows 500 terms in one compound SELECT)


def _base(columns: Sequence[Any]) -> Any:
    return (
        select(*columns)
        .select_from(Review)
        .join(Video, Video.id == Review.video_id)
        .outerjoin(Suggestion, Suggestion.id == Review.suggestion_id)
    )


def _filtered(stmt: Any, flt: QueueFilter, dialect: str) -> Any:
    """``stmt`` on ``reviews`` limited to the queue (its own columns only: no join)."""
    words = search_words(flt.search)
    col = unindexed if words and dialect == "sqlite" else (lambda c: c)  # searched: start from the matches
    stmt = stmt.where(col(Review.dataset_id) == flt.dataset_id)
    if flt.statuses:
        stmt = stmt.where(col(Review.status).in_(list(flt.statuses)))
    if flt.label:
        stmt = stmt.where(col(Review.queue_label) == flt.label)
    if flt.split:
        stmt = stmt.where(col(Review.split) == flt.split)
    if flt.edited is not None:
        stmt = stmt.where(col(Review.edited) == bool(flt.edited))
    if flt.parse_failed:
        stmt = stmt.where(col(Review.parse_failed) == True)  # noqa: E712 - SQL, indexable
    if flt.flags is not None:
        stmt = stmt.where(col(Review.flag_bits).in_(flt.flag_masks()))
    if flt.exclude_reviewer:
        stmt = stmt.where(_not_mine(flt))
    return restrict(stmt, dialect, words) if words else stmt


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _segments(session: Session, flt: QueueFilter) -> list[tuple[tuple, int]]:
    return counters.queue_segments(session, flt.dataset_id, statuses=flt.statuses, label=flt.label, split=flt.split,
                                   edited=flt.edited, parse_failed=flt.parse_failed, flag_masks=flt.flag_masks())


def _in_segment(segment: tuple) -> Any:
    """A (status, label, split, edited, parse failed) segment, or (flag bits, ...) one under a flag filter."""
    flags = (Review.flag_bits == int(segment[0]),) if len(segment) == 6 else ()
    status, label, split, edited, failed = segment[-5:]
    return and_(*flags, Review.status == status, Review.queue_label == label, Review.split == split,
                Review.edited == bool(edited), Review.parse_failed == bool(failed))


def _key(session: Session, review_id: int) -> Optional[tuple[float, int]]:
    row = session.execute(select(Review.queue_key, Review.video_id).where(Review.id == review_id)).first()
    return (float(row[0]), int(row[1])) if row else None


def _after(key: Optional[tuple[float, int]], backwards: bool) -> Any:
    if key is None:
        return true()
    return tuple_(*_ORDER) < tuple_(*key) if backwards else tuple_(*_ORDER) > tuple_(*key)


def queue_neighbour(session: Session, flt: QueueFilter, review_id: Optional[int], *, backwards: bool = False) -> Optional[int]:
    """The review after (or before) ``review_id`` in queue order; the first (last) one when None or not found.

    Without a search: one index seek per non-empty segment of the filter (``db.counters.queue_segments``), the
    best of them wins, so the cost does not grow with the dataset. With a search: the search index.
    """
    key = _key(session, review_id) if review_id is not None else None
    order = [c.desc() for c in _ORDER] if backwards else list(_ORDER)
    columns = (Review.id, *_ORDER)
    if search_words(flt.search):
        stmt = _filtered(select(*columns), flt, _dialect(session)).where(_after(key, backwards))
        row = session.execute(stmt.order_by(*order).limit(1)).first()
        return int(row[0]) if row else None
    best: Optional[tuple] = None
    segments = [segment for segment, _n in _segments(session, flt)]
    for start in range(0, len(segments), _SEGMENT_CHUNK):
        seeks = [select(*columns).where(Review.dataset_id == flt.dataset_id, _in_segment(segment), _after(key, backwards),
                                        _not_mine(flt))
                 .order_by(*order).limit(1) for segment in segments[start:start + _SEGMENT_CHUNK]]
        rows = session.execute(union_all(*[s.subquery().select() for s in seeks]) if len(seeks) > 1 else seeks[0]).all()
        for row in rows:
            candidate = (float(row[1]), int(row[2]), int(row[0]))
            if best is None or (candidate > best if backwards else candidate < best):
                best = candidate
    return best[2] if best else None


def queue_place(session: Session, flt: QueueFilter, review_id: Optional[int]) -> tuple[int, int]:
    """(1-based place of ``review_id`` in the queue or 0 when it is not in it, queue length).

    Without a search the length is a sum of counters and the place counts, per segment, the index entries
    before the item: the cost grows with the place, not with the dataset (reviewed items leave a "todo" queue).
    """
    key = _key(session, review_id) if review_id is not None else None
    if search_words(flt.search):
        dialect = _dialect(session)
        size = int(session.scalar(_filtered(select(func.count()).select_from(Review), flt, dialect)) or 0)
        if key is None:
            return 0, size
        ahead = session.scalar(_filtered(select(func.count()).select_from(Review), flt, dialect).where(_after(key, True)))
        present = session.scalar(_filtered(select(func.count()).select_from(Review), flt, dialect)
                                 .where(Review.id == review_id))
        return (int(ahead or 0) + 1 if present else 0), size
    segments = _segments(session, flt)
    size = sum(n for _segment, n in segments) - _answered_in_filter(session, flt)
    if key is None:
        return 0, size
    own = session.execute(select(Review.flag_bits, Review.status, Review.queue_label, Review.split, Review.edited,
                                 Review.parse_failed).where(Review.id == review_id, _not_mine(flt))).first()
    names = {segment for segment, _n in segments}
    if own is None:
        return 0, size
    segment = (own[1], own[2], own[3], bool(own[4]), bool(own[5]))
    if (segment if flt.flags is None else (int(own[0]), *segment)) not in names:
        return 0, size
    ahead = 0
    for start in range(0, len(segments), _SEGMENT_CHUNK):
        counts = [select(func.count().label("n")).select_from(Review)
                  .where(Review.dataset_id == flt.dataset_id, _in_segment(segment), _after(key, True), _not_mine(flt))
                  for segment, _n in segments[start:start + _SEGMENT_CHUNK]]
        ahead += sum(int(n or 0) for n in session.scalars(union_all(*counts) if len(counts) > 1 else counts[0]))
    return ahead + 1, size


def _answered_in_filter(session: Session, flt: QueueFilter) -> int:
    """How many items of the filter ``flt.exclude_reviewer`` has answered: that reviewer's responses
    (ix_review_responses_dataset_reviewer), each item checked by one probe of its review. A correlated scalar
    subquery on purpose: PostgreSQL keeps it per response instead of hashing the whole queue, so the cost follows
    the reviewer's answers, not the dataset."""
    if not flt.exclude_reviewer:
        return 0
    mine = dataclasses.replace(flt, exclude_reviewer="")
    item = _filtered(select(literal(1)).select_from(Review).where(Review.video_id == ReviewResponse.video_id), mine,
                     _dialect(session)).scalar_subquery()
    stmt = (select(func.count()).select_from(ReviewResponse)
            .where(ReviewResponse.dataset_id == flt.dataset_id, ReviewResponse.reviewer == flt.exclude_reviewer,
                   ReviewResponse.status.in_(SUBMITTED), item == 1))
    return int(session.scalar(stmt) or 0)


def review_item(session: Session, review_id: int) -> dict[str, Any]:
    """One review with its video, suggestion and dataset as a plain dict (no ORM objects leave here)."""
    row = session.execute(
        _base([Review, Video, Suggestion, Dataset.name, Dataset.labels, Review.edited, Dataset.reviews_per_item,
               Dataset.dimensions])
        .join(Dataset, Dataset.id == Video.dataset_id)
        .where(Review.id == review_id)
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        raise DataError(f"review {review_id} not found; it may belong to a deleted dataset, reload the page")
    review, video, suggestion, dataset, labels, edited, k, dimensions = row
    names = names_of(dimensions)
    return {"review": review_snapshot(review, names) | {"id": review.id}, "video": _video_dict(video),
            "suggestion": _suggestion_dict(suggestion, names), "dataset": dataset, "labels": list(labels or []),
            "edited": bool(edited), "reviews_per_item": int(k or 1), "dimensions": list(dimensions or [])}


def _video_dict(video: Video) -> dict[str, Any]:
    names = ("id", "external_id", "path", "source_root", "sha256", "split", "label", "readable", "error",
             "duration_s", "codec")
    return {name: getattr(video, name) for name in names}


def _suggestion_dict(suggestion: Optional[Suggestion], dimensions: tuple[str, ...]) -> Optional[dict[str, Any]]:
    """The suggestion as one flat dict: its text under each dimension's name ("" where it has none), beside its
    columns (dimension names never take a column's name: ``models.prompts.RESERVED_NAMES``)."""
    if suggestion is None:
        return None
    names = ("id", "model_id", "prompt_version", "conclusion", "raw_text", "parse_status", "label_hint",
             "mean_logprob", "gen_params", "doubt_score", "doubt_reason", "flags", "created_at")
    text = suggestion.rationale or {}
    return {**{d: text.get(d) or "" for d in dimensions}, **{name: getattr(suggestion, name) for name in names}}


def find_review(session: Session, dataset_id: int, ref: str) -> Optional[int]:
    """The review of the video whose external id is ``ref``, else whose numeric id is ``ref``."""
    ref = ref.strip()
    stmt = _base([Review.id]).where(Video.dataset_id == dataset_id)
    found = session.scalar(stmt.where(Video.external_id == ref))
    if found is None and ref.isdigit():
        found = session.scalar(stmt.where(Video.id == int(ref)))
    return found


def review_counts(session: Session, dataset_id: int) -> dict[str, int]:
    """pending (incl. drafts), draft, accepted (untouched), edited (accepted with edits), rejected, excluded.

    Read from the counters kept on write (``db.counters``): a few rows, whatever the size of the dataset.
    """
    return counters.review_counts(session, dataset_id)


def bulk_update(session: Session, flt: QueueFilter, reviewer: str, *, untouched_only: bool = False,
                only_statuses: Optional[Sequence[str]] = None, **changes: Any) -> int:
    """Apply ``changes`` (status and/or excluded) to every review in the queue (one revision each); returns how many changed."""
    unknown = sorted(set(changes) - {"status", "excluded"})
    if unknown:
        raise DataError(f"bulk actions change status or excluded, not {', '.join(unknown)}")
    names = dimension_names(session, flt.dataset_id)
    stmt = _filtered(select(Review), flt, _dialect(session))
    if untouched_only:
        stmt = stmt.where(Review.edited == False, Review.label.is_(None))  # noqa: E712 - SQL
    if only_statuses:
        stmt = stmt.where(Review.status.in_(list(only_statuses)))
    targets = [r for r in session.scalars(stmt.execution_options(populate_existing=True))
               if any(getattr(r, k) != v for k, v in changes.items())]
    videos = _video_facts(session, [r.video_id for r in targets])
    now, revisions, deltas = utcnow(), [], Counter()
    for review in targets:
        before = review_snapshot(review, names)
        result = session.execute(update(Review).where(Review.id == review.id, Review.version == review.version,
                                                      Review.suggestion_id.is_not_distinct_from(review.suggestion_id))
                                 .values(**changes, reviewer=reviewer, version=review.version + 1, updated_at=now)
                                 .execution_options(synchronize_session=False))
        if result.rowcount != 1:  # saved by someone else meanwhile: theirs stands, nothing to record
            continue
        video = videos[review.video_id]
        deltas[_review_key(review, video, {})] -= 1
        deltas[_review_key(review, video, changes)] += 1
        after = {**before, **changes, "reviewer": reviewer, "version": review.version + 1,
                 "updated_at": now.isoformat(timespec="seconds")}
        revisions.append({"review_id": review.id, "version": review.version + 1, "before": before,
                          "after": after, "reviewer": reviewer, "created_at": now})
    if revisions:
        session.execute(insert(ReviewRevision), revisions)
    counters.apply(session, deltas)
    for review in targets:
        session.expire(review)
    session.flush()
    return len(revisions)


def _video_facts(session: Session, video_ids: list[int]) -> dict[int, tuple[str, bool]]:
    facts: dict[int, tuple[str, bool]] = {}
    for start in range(0, len(video_ids), 500):
        rows = session.execute(select(Video.id, Video.label, Video.readable)
                               .where(Video.id.in_(video_ids[start:start + 500]))).all()
        facts.update({int(i): (label, bool(ok)) for i, label, ok in rows})
    return facts


def _review_key(review: Review, video: tuple[str, bool], changes: dict[str, Any]) -> tuple:
    return review_key(review.dataset_id, status=changes.get("status", review.status), queue_label=review.queue_label,
                      video_label=video[0], split=review.split, readable=video[1], edited=review.edited,
                      excluded=changes.get("excluded", review.excluded), parse_failed=review.parse_failed,
                      flag_bits=review.flag_bits)


def record_refused_save(session: Session, review_id: int, reviewer: str, expected_version: int,
                        current: dict[str, Any], attempted: dict[str, Any]) -> None:
    """Keep a refused save in the history (``after.refused``): the losing text is never lost."""
    after = {**attempted, "refused": f"edited version {expected_version}, but version {current.get('version')} "
                                     "was saved first", "reviewer": reviewer}
    session.add(ReviewRevision(review_id=review_id, version=int(current.get("version") or 0), before=current,
                               after=after, reviewer=reviewer))
    session.flush()


def suggestion_parse_status(session: Session, suggestion_id: int) -> Optional[str]:
    return session.scalar(select(Suggestion.parse_status).where(Suggestion.id == suggestion_id))


def suggestion_texts(session: Session, suggestion_id: Optional[int]) -> dict[str, Optional[str]]:
    """The text of each dimension of a suggestion's dataset ("" where it has none; all None for no suggestion)."""
    suggestion = session.get(Suggestion, suggestion_id) if suggestion_id else None
    if suggestion is None:
        return {}
    names = names_of(session.scalar(select(Dataset.dimensions).join(Video, Video.dataset_id == Dataset.id)
                                    .where(Video.id == suggestion.video_id)))
    return {name: (suggestion.rationale or {}).get(name) or "" for name in names}


def snapshot_at_version(session: Session, review_id: int, version: int) -> Optional[dict[str, Any]]:
    """The review as it was at ``version`` (the ``before`` of the save that made ``version + 1``); None when the
    review never left that version or no history records it. Refused saves are not saves: they are skipped."""
    for revision in session.scalars(select(ReviewRevision).where(ReviewRevision.review_id == review_id,
                                                                 ReviewRevision.version == version + 1)
                                    .order_by(ReviewRevision.id)):
        if not (revision.after or {}).get("refused"):
            return dict(revision.before or {})
    return None


def newest_suggestion_id(session: Session, video_id: int) -> Optional[int]:
    return session.scalar(select(func.max(Suggestion.id)).where(Suggestion.video_id == video_id))


def latest_import_run(session: Session, dataset_id: int) -> Optional[dict[str, Any]]:
    run = session.scalar(select(ImportRun).where(ImportRun.dataset_id == dataset_id).order_by(ImportRun.id.desc()))
    if run is None:
        return None
    return {"id": run.id, "source": run.source, "format": run.format, "report": dict(run.report or {}),
            "created_at": run.created_at}

"""Queries for the review workspace: the doubt-first queue, one item, counts, bulk actions.

Kept apart from ``db.queries`` (datasets, videos, suggestions, single saves). Flush, never commit.
The queue is every review of a dataset matching a filter, ordered by the suggestion's doubt score
(highest first), then video id; "next" is a keyset query on that order, so it stays fast at 20,000 videos.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from sqlalchemy import and_, case, desc, func, insert, or_, select, update
from sqlalchemy.orm import Session

from db.models import (
    Dataset,
    ImportRun,
    Review,
    ReviewRevision,
    Suggestion,
    Video,
    utcnow,
)
from db.queries import RATIONALE_FIELDS, review_snapshot
from rbft_core.errors import DataError

__all__ = [
    "QueueFilter",
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
    """Which reviews of a dataset are in the queue (empty / None values do not filter)."""

    dataset_id: int
    statuses: Optional[Sequence[str]] = ("pending", "draft")
    label: str = ""
    split: str = ""
    edited: Optional[bool] = None
    parse_failed: bool = False
    search: str = ""


_SCORE = func.coalesce(Suggestion.doubt_score, 0.0)
_LABEL = func.coalesce(Review.label, Video.label)


def _edited() -> Any:
    """1 when the reviewer's text differs from the suggestion in any of the four fields, else 0."""
    differs = [and_(getattr(Review, f).is_not(None), getattr(Review, f) != func.coalesce(getattr(Suggestion, f), ""))
               for f in RATIONALE_FIELDS]
    return case((or_(*differs), 1), else_=0)


def _base(columns: Sequence[Any]) -> Any:
    return (
        select(*columns)
        .select_from(Review)
        .join(Video, Video.id == Review.video_id)
        .outerjoin(Suggestion, Suggestion.id == Review.suggestion_id)
    )


def _filtered(stmt: Any, flt: QueueFilter) -> Any:
    stmt = stmt.where(Video.dataset_id == flt.dataset_id)
    if flt.statuses:
        stmt = stmt.where(Review.status.in_(list(flt.statuses)))
    if flt.label:
        stmt = stmt.where(_LABEL == flt.label)
    if flt.split:
        stmt = stmt.where(Video.split == flt.split)
    if flt.edited is not None:
        stmt = stmt.where(_edited() == (1 if flt.edited else 0))
    if flt.parse_failed:
        stmt = stmt.where(Suggestion.parse_status == "failed")
    if flt.search.strip():
        pattern = "%" + flt.search.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        columns = [Video.external_id, Suggestion.conclusion, *(getattr(Review, f) for f in RATIONALE_FIELDS),
                   *(getattr(Suggestion, f) for f in RATIONALE_FIELDS)]
        stmt = stmt.where(or_(*(c.ilike(pattern, escape="\\") for c in columns)))
    return stmt


def _key(session: Session, review_id: int) -> tuple[float, int] | None:
    row = session.execute(_base([_SCORE, Video.id]).where(Review.id == review_id)).first()
    return (float(row[0]), int(row[1])) if row else None


def queue_neighbour(session: Session, flt: QueueFilter, review_id: Optional[int], *, backwards: bool = False) -> Optional[int]:
    """The review after (or before) ``review_id`` in queue order; the first (last) one when None or not found."""
    key = _key(session, review_id) if review_id is not None else None
    stmt = _filtered(_base([Review.id]), flt)
    if key is not None:
        score, video_id = key
        if backwards:
            stmt = stmt.where(or_(_SCORE > score, and_(_SCORE == score, Video.id < video_id)))
        else:
            stmt = stmt.where(or_(_SCORE < score, and_(_SCORE == score, Video.id > video_id)))
    order = (_SCORE.asc(), Video.id.desc()) if backwards else (desc(_SCORE), Video.id.asc())
    return session.scalar(stmt.order_by(*order).limit(1))


def queue_place(session: Session, flt: QueueFilter, review_id: Optional[int]) -> tuple[int, int]:
    """(1-based place of ``review_id`` in the queue or 0 when it is not in it, queue length), in one scan."""
    key = _key(session, review_id) if review_id is not None else None
    if key is None:
        return 0, int(session.scalar(_filtered(_base([func.count()]), flt)) or 0)
    score, video_id = key
    before = or_(_SCORE > score, and_(_SCORE == score, Video.id < video_id))
    row = session.execute(_filtered(_base([func.count(), func.sum(case((before, 1), else_=0)),
                                           func.sum(case((Review.id == review_id, 1), else_=0))]), flt)).one()
    size, ahead, present = int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)
    return (ahead + 1 if present else 0), size


def review_item(session: Session, review_id: int) -> dict[str, Any]:
    """One review with its video, suggestion and dataset as a plain dict (no ORM objects leave here)."""
    row = session.execute(
        _base([Review, Video, Suggestion, Dataset.name, Dataset.labels, _edited().label("edited")])
        .join(Dataset, Dataset.id == Video.dataset_id)
        .where(Review.id == review_id)
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        raise DataError(f"review {review_id} not found; it may belong to a deleted dataset, reload the page")
    review, video, suggestion, dataset, labels, edited = row
    return {"review": review_snapshot(review) | {"id": review.id}, "video": _video_dict(video),
            "suggestion": _suggestion_dict(suggestion), "dataset": dataset, "labels": list(labels or []),
            "edited": bool(edited)}


def _video_dict(video: Video) -> dict[str, Any]:
    names = ("id", "external_id", "path", "source_root", "sha256", "split", "label", "readable", "error",
             "duration_s", "codec")
    return {name: getattr(video, name) for name in names}


def _suggestion_dict(suggestion: Optional[Suggestion]) -> Optional[dict[str, Any]]:
    if suggestion is None:
        return None
    names = ("id", "model_id", "prompt_version", *RATIONALE_FIELDS, "conclusion", "raw_text", "parse_status",
             "label_hint", "mean_logprob", "gen_params", "doubt_score", "doubt_reason", "created_at")
    return {name: getattr(suggestion, name) for name in names}


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

    Two passes, so that 20,000 rows are counted without reading their suggestions: statuses first, then
    "edited" only among the accepted reviews that hold any text of their own.
    """
    touched = or_(*(getattr(Review, f).is_not(None) for f in RATIONALE_FIELDS))
    rows = session.execute(
        select(Review.status, Review.excluded, func.count()).select_from(Review)
        .join(Video, Video.id == Review.video_id).where(Video.dataset_id == dataset_id)
        .group_by(Review.status, Review.excluded)
    ).all()
    counts = dict.fromkeys(("pending", "draft", "accepted", "edited", "rejected", "excluded", "total"), 0)
    for status, excluded, n in rows:
        counts["total"] += n
        counts["excluded"] += n if excluded else 0
        if status in ("pending", "draft"):
            counts["pending"] += n
            counts["draft"] += n if status == "draft" else 0
        else:
            counts[status] = counts.get(status, 0) + n
    edited = session.scalar(
        _base([func.count()]).where(Video.dataset_id == dataset_id, Review.status == "accepted", touched, _edited() == 1)
    )
    counts["edited"] = int(edited or 0)
    counts["accepted"] -= counts["edited"]
    return counts


def bulk_update(session: Session, flt: QueueFilter, reviewer: str, *, untouched_only: bool = False,
                only_statuses: Optional[Sequence[str]] = None, **changes: Any) -> int:
    """Apply ``changes`` to every review in the queue (one revision each); returns how many changed."""
    stmt = _filtered(_base([Review]), flt)
    if untouched_only:
        stmt = stmt.where(_edited() == 0, Review.label.is_(None))
    if only_statuses:
        stmt = stmt.where(Review.status.in_(list(only_statuses)))
    targets = [r for r in session.scalars(stmt) if any(getattr(r, k) != v for k, v in changes.items())]
    now, revisions = utcnow(), []
    for review in targets:
        before = review_snapshot(review)
        result = session.execute(update(Review).where(Review.id == review.id, Review.version == review.version)
                                 .values(**changes, reviewer=reviewer, version=review.version + 1, updated_at=now)
                                 .execution_options(synchronize_session=False))
        if result.rowcount != 1:  # saved by someone else meanwhile: theirs stands, nothing to record
            continue
        after = {**before, **changes, "reviewer": reviewer, "version": review.version + 1,
                 "updated_at": now.isoformat(timespec="seconds")}
        revisions.append({"review_id": review.id, "version": review.version + 1, "before": before,
                          "after": after, "reviewer": reviewer, "created_at": now})
    if revisions:
        session.execute(insert(ReviewRevision), revisions)
    session.flush()
    return len(revisions)


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
    """The four rationale fields of a suggestion (all None for no suggestion)."""
    suggestion = session.get(Suggestion, suggestion_id) if suggestion_id else None
    return {name: getattr(suggestion, name) if suggestion is not None else None for name in RATIONALE_FIELDS}


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

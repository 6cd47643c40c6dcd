"""Several reviewers per item: each reviewer's response, the move to adjudication, the dataset's k.

Kept apart from ``db.queries`` (the final review) and ``db.review_queries`` (the queue). A response is one row per
video and reviewer (``uq_review_responses_video_reviewer``): a reviewer's second save edits it under
compare-and-set on ``version`` and appends a ``ResponseRevision``; it is never a second response. Once an item
has as many submitted responses as its dataset asks for, its review moves from pending / draft to ``ready`` (a
revision of the review says so) in the same transaction: the reviewers' queues leave it, the adjudication queue
(status ``ready``, the same index) takes it. Flush, never commit.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from db.models import Dataset, ResponseRevision, Review, ReviewResponse, utcnow
from db.queries import dimension_names, iso_time, save_review
from db.review_queries import SUBMITTED
from rbft_core.errors import ConfigError, ConflictError

__all__ = ["response_of", "item_responses", "submitted_count", "save_response", "mirror_response",
           "set_review_settings", "review_settings", "lock_review", "parse_time", "MAX_REVIEWS_PER_ITEM"]

MAX_REVIEWS_PER_ITEM = 20
_NAMES = ("id", "dataset_id", "video_id", "suggestion_id", "reviewer", "rationale", "label", "status", "version")


def _as_dict(row: ReviewResponse) -> dict[str, Any]:
    out = {name: getattr(row, name) for name in _NAMES}
    out["rationale"] = dict(out["rationale"] or {})
    out.update(shown_at=iso_time(row.shown_at), saved_at=iso_time(row.saved_at))
    return out


def parse_time(value: Any) -> Optional[datetime]:
    """An ISO time (or datetime) as an aware datetime; None for empty or unreadable values."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value)) if value else None
        except ValueError:
            return None
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def response_of(session: Session, video_id: int, reviewer: str) -> Optional[dict[str, Any]]:
    """``reviewer``'s response for this video, or None."""
    row = session.scalar(select(ReviewResponse).where(ReviewResponse.video_id == video_id,
                                                      ReviewResponse.reviewer == reviewer)
                         .execution_options(populate_existing=True))
    return _as_dict(row) if row is not None else None


def item_responses(session: Session, video_id: int) -> list[dict[str, Any]]:
    """Every response for this video, first saved first."""
    rows = session.scalars(select(ReviewResponse).where(ReviewResponse.video_id == video_id)
                           .order_by(ReviewResponse.created_at, ReviewResponse.id)
                           .execution_options(populate_existing=True))
    return [_as_dict(row) for row in rows]


def submitted_count(session: Session, video_id: int) -> int:
    return int(session.scalar(select(func.count()).select_from(ReviewResponse).where(
        ReviewResponse.video_id == video_id, ReviewResponse.status.in_(SUBMITTED))) or 0)


def lock_review(session: Session, video_id: int) -> Review:
    """The video's review, locked until the transaction ends, so two reviewers submitting the k-th response at once
    both count the other's. The lock is a write that changes nothing: a row lock on PostgreSQL, and on SQLite the
    database's write lock taken as the transaction's first statement (every later read sees the newest data)."""
    session.execute(update(Review).where(Review.video_id == video_id)
                    .values(version=Review.version, updated_at=Review.updated_at)
                    .execution_options(synchronize_session=False))
    review = session.scalar(select(Review).where(Review.video_id == video_id)
                            .execution_options(populate_existing=True))
    if review is None:
        raise ConfigError(f"video {video_id} has no review yet (no suggestion was generated for it); generate "
                          "rationales for it first")
    return review


def _check(status: str, label: Optional[str], rationale: dict[str, Any]) -> None:
    if status not in (*SUBMITTED, "draft"):
        raise ConfigError(f"response status must be draft, accepted or rejected, got {status!r}")
    if not label:
        raise ConfigError("a response needs a label; pick one from the list")
    if not isinstance(rationale, dict):
        raise ConfigError("a response's rationale is an object keyed by dimension name")


def _conflict(video_id: int, reviewer: str, expected: int, current: Optional[dict[str, Any]]) -> ConflictError:
    now = current["version"] if current else 0
    when = (current or {}).get("saved_at") or "an unknown time"
    err = ConflictError(f"your response for video {video_id} is at version {now} (saved at {when}, perhaps in another "
                        f"tab); this page edited version {expected}. Nothing was saved: reopen the item, re-apply "
                        "your edit and save again.")
    err.current = current or {}  # type: ignore[attr-defined]
    return err


def save_response(session: Session, *, video_id: int, reviewer: str, expected_version: int,
                  rationale: dict[str, Any], label: str, status: str, suggestion_id: Optional[int],
                  shown_at: Any = None, reviews_per_item: int = 1) -> dict[str, Any]:
    """Write ``reviewer``'s response (``expected_version`` 0: their first) and move the item on when it has k.

    A second response by the same reviewer is impossible: the first save inserts, every later one compares and
    sets the version of that same row. Raises ``ConflictError`` when the row moved on meanwhile. ``shown_at``: when
    the page showed the item for this save (kept with ``saved_at``: the time the latest save took).
    """
    _check(status, label, rationale)
    review = lock_review(session, video_id)
    names = dimension_names(session, review.dataset_id, for_write=True)
    if set(rationale) != set(names):  # the page's dimensions are not (or no longer) the dataset's
        raise ConfigError(f"a response gives the dimensions {', '.join(sorted(rationale)) or 'none'}, but the "
                          f"dataset has {', '.join(names)} (they changed since the item was opened); nothing was "
                          "saved: reopen the item and save again")
    current = response_of(session, video_id, reviewer)
    if (current["version"] if current else 0) != expected_version:
        raise _conflict(video_id, reviewer, expected_version, current)
    values = {"rationale": {n: rationale[n] for n in names}, "label": label, "status": status, "suggestion_id": suggestion_id,
              "saved_at": utcnow()}
    shown = parse_time(shown_at)
    if current is None:  # the review's lock serialises this reviewer's tabs: no second row can appear meanwhile
        row_id = session.execute(insert(ReviewResponse).values(
            dataset_id=review.dataset_id, video_id=video_id, reviewer=reviewer, version=1, shown_at=shown,
            created_at=values["saved_at"], **values).returning(ReviewResponse.id)).scalar_one()
    else:
        row_id = current["id"]
        result = session.execute(update(ReviewResponse).where(ReviewResponse.id == row_id,
                                                              ReviewResponse.version == expected_version)
                                 .values(version=ReviewResponse.version + 1, **values,
                                         **({"shown_at": shown} if shown else {}))
                                 .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            raise _conflict(video_id, reviewer, expected_version, response_of(session, video_id, reviewer))
    after = response_of(session, video_id, reviewer)
    session.add(ResponseRevision(response_id=row_id, version=after["version"], before=_history(current),
                                 after=_history(after)))
    if reviews_per_item > 1:
        _move_item(session, review, reviewer, reviews_per_item)
    session.flush()
    return after


def _history(response: Optional[dict[str, Any]]) -> dict[str, Any]:
    if response is None:
        return {}
    return {k: response[k] for k in ("rationale", "label", "status", "suggestion_id", "version", "saved_at")}


def _move_item(session: Session, review: Review, reviewer: str, k: int) -> bool:
    """pending / draft -> ready once k responses are submitted; ready -> pending when fewer are (a response went
    back to draft, or k was raised). True when the review moved."""
    n = submitted_count(session, review.video_id)
    if review.status in ("pending", "draft") and n >= k:
        target, note = "ready", f"{n} of {k} responses in: ready for adjudication"
    elif review.status == "ready" and n < k:
        target, note = "pending", f"{n} of {k} responses submitted: back with the reviewers"
    else:
        return False
    save_review(session, review.id, expected_version=review.version, reviewer=reviewer, note=note, status=target)
    return True


def mirror_response(session: Session, review: Review, reviewer: str, rationale: dict[str, str], label: str,
                    shown_at: Any = None) -> None:
    """One reviewer per item: the save just made to the review, kept as that reviewer's response too (for the
    quality figures: time per item, suggestion vs final). The review's own compare-and-set guarded the save."""
    current = response_of(session, review.video_id, reviewer)
    status = review.status if review.status in (*SUBMITTED, "draft") else "draft"
    save_response(session, video_id=review.video_id, reviewer=reviewer,
                  expected_version=current["version"] if current else 0, rationale=rationale, label=label,
                  status=status, suggestion_id=review.suggestion_id, shown_at=shown_at, reviews_per_item=1)


def review_settings(session: Session, dataset_id: int) -> dict[str, Any]:
    dataset = session.get(Dataset, dataset_id, populate_existing=True)
    return {"reviews_per_item": int(dataset.reviews_per_item or 1), "adjudicators": list(dataset.adjudicators or [])}


def set_review_settings(session: Session, dataset_id: int, admin: str, *, reviews_per_item: Optional[int] = None,
                        adjudicators: Optional[list[str]] = None) -> dict[str, Any]:
    """Change k and / or the assigned adjudicators (``admin`` signs the revisions). A new k re-sorts the open items
    with responses at once: pending / draft with k submitted become ``ready``, ``ready`` with fewer ``pending``."""
    dataset = session.get(Dataset, dataset_id)
    if reviews_per_item is not None:
        k = int(reviews_per_item)
        if not 1 <= k <= MAX_REVIEWS_PER_ITEM:
            raise ConfigError(f"reviews per item must be between 1 and {MAX_REVIEWS_PER_ITEM}, got {k}")
        dataset.reviews_per_item = k
        answered = select(ReviewResponse.video_id).where(ReviewResponse.dataset_id == dataset_id,
                                                          ReviewResponse.status.in_(SUBMITTED))
        open_ids = session.scalars(select(Review.video_id).where(
            Review.dataset_id == dataset_id, Review.status.in_(("pending", "draft", "ready")),
            Review.video_id.in_(answered))).all()
        for video_id in open_ids:
            _move_item(session, lock_review(session, video_id), admin, k)
    if adjudicators is not None:
        dataset.adjudicators = sorted({a.strip() for a in adjudicators if a and a.strip()})
    session.flush()
    return review_settings(session, dataset_id)

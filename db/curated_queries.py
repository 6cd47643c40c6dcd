"""Curated examples: the one definition of a video's effective rationale and label (the reviewed text where
there is a review, else the model's suggestion), read under one snapshot for exports and training."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import (
    Review,
    Suggestion,
    Video,
)
from db.queries import dimension_names, iso_time

__all__ = ["begin_snapshot", "curated_examples"]


def begin_snapshot(session: Session) -> None:
    """Make every later SELECT of this session's transaction see one snapshot of the database.

    Call it first thing in a fresh session. SQLite's Python driver runs SELECTs outside any
    transaction, so each would see the newest commits; an explicit deferred ``BEGIN`` plus one read
    pins the WAL snapshot until the session ends. PostgreSQL gets REPEATABLE READ.
    """
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect == "sqlite":
        raw = connection.connection.dbapi_connection
        if raw is not None and not raw.in_transaction:
            connection.exec_driver_sql("BEGIN")
        connection.exec_driver_sql("SELECT count(*) FROM datasets").all()  # the snapshot starts at the first read
    elif dialect == "postgresql":
        connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


def _curated_row(row: Any, names: tuple[str, ...]) -> dict[str, Any]:
    suggested = row.s_rationale or {}
    suggestion = {d: suggested.get(d) or "" for d in names} if row.suggestion_id else None
    stored = {d: row.r_rationale[d] for d in names if (row.r_rationale or {}).get(d) is not None}
    review = None
    if stored:  # a dimension the reviewer never set still means "the suggestion's text"
        review = {d: stored[d] if d in stored else (suggestion or {}).get(d, "") for d in names}
    return {
        "video_id": row.video_id, "external_id": row.external_id, "path": row.path, "sha256": row.sha256,
        "split": row.split, "label": row.review_label or row.video_label, "video_label": row.video_label,
        "review_label": row.review_label, "suggestion_id": row.suggestion_id, "suggestion_fields": suggestion,
        "parse_status": row.parse_status, "model_id": row.model_id, "prompt_version": row.prompt_version,
        "review_id": row.review_id, "review_fields": review, "status": row.status or "none",
        "excluded": bool(row.excluded), "reviewer": row.reviewer, "version": row.version,
        "updated_at": iso_time(row.updated_at), "edited": review is not None and review != suggestion,
        "rationale": review if review is not None else suggestion,
    }


def curated_examples(
    session: Session,
    dataset_id: int,
    *,
    splits: Any = None,
    statuses: Any = ("accepted",),
    edited: bool | None = None,
    labels: Any = None,
    include_excluded: bool = False,
) -> list[dict[str, Any]]:
    """Readable videos of a dataset with their effective rationale and label, oldest video first.

    The one place that decides what a curated example is (export and training both use it):
    ``rationale`` is the review's text per dimension of the dataset (in its order) when a reviewer saved any (a
    dimension left unset keeps the suggestion's text), else the suggestion's; the suggestion is the one the review
    points at, else the video's newest. ``edited``: the review's fields differ from the suggestion's. ``label`` is the
    review's label correction, else the video's. ``status`` is the review status, ``"none"`` without a
    review. Filters: ``splits``/``statuses``/``labels`` (None: all), ``edited`` (None: both), and
    excluded videos only with ``include_excluded``. Rows are plain dicts (no ORM objects).
    """
    newest = (
        select(Suggestion.video_id.label("video_id"), func.max(Suggestion.id).label("sid"))
        .group_by(Suggestion.video_id)
        .subquery()
    )
    status = func.coalesce(Review.status, "none")
    label = func.coalesce(Review.label, Video.label)
    stmt = (
        select(
            Video.id.label("video_id"), Video.external_id, Video.path, Video.sha256, Video.split,
            Video.label.label("video_label"), Review.label.label("review_label"), Suggestion.id.label("suggestion_id"),
            Suggestion.rationale.label("s_rationale"), Suggestion.parse_status, Suggestion.model_id,
            Suggestion.prompt_version, Review.id.label("review_id"), Review.rationale.label("r_rationale"),
            status.label("status"), Review.excluded, Review.reviewer, Review.version, Review.updated_at,
        )
        .outerjoin(Review, Review.video_id == Video.id)
        .outerjoin(newest, newest.c.video_id == Video.id)
        .outerjoin(Suggestion, Suggestion.id == func.coalesce(Review.suggestion_id, newest.c.sid))
        .where(Video.dataset_id == dataset_id, Video.readable.is_(True))
        .order_by(Video.id)
    )
    if splits is not None:
        stmt = stmt.where(Video.split.in_(list(splits)))
    if statuses is not None:
        stmt = stmt.where(status.in_(list(statuses)))
    if labels is not None:
        stmt = stmt.where(label.in_(list(labels)))
    if not include_excluded:
        stmt = stmt.where(func.coalesce(Review.excluded, False).is_(False))
    names = dimension_names(session, dataset_id)
    rows = [_curated_row(r, names) for r in session.execute(stmt)]
    if edited is not None:
        rows = [r for r in rows if r["edited"] is edited]
    return rows

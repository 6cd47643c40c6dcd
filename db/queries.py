"""Repository functions: the only place with SQL.

Every function takes a ``Session``, flushes, and never commits: the caller commits once per user event
or job step (``db.engine.session_scope``), so several calls combine into one transaction.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from db.models import (
    PARSE_STATUSES,
    REVIEW_STATUSES,
    Dataset,
    ImportRun,
    Review,
    ReviewRevision,
    Suggestion,
    Video,
    utcnow,
)
from rbft_core.errors import ConfigError, ConflictError, DataError
from rbft_core.review.doubt import doubt_of
from rbft_core.names import check_dataset_name

__all__ = [
    "REVIEW_FIELDS",
    "get_or_create_dataset",
    "find_dataset",
    "get_dataset",
    "list_datasets",
    "find_video_by_sha",
    "find_video_by_external_id",
    "add_video",
    "videos_for_generation",
    "count_suggested_videos",
    "add_suggestion",
    "get_review",
    "review_history",
    "save_review",
    "dataset_counts",
    "label_counts",
    "record_import_run",
    "source_roots",
    "review_snapshot",
    "iso_time",
]

RATIONALE_FIELDS = ("subjects", "attributes", "actions", "scenes")
MAX_LABEL_CHARS = 100  # the label columns are VARCHAR(100)
# What a reviewer may change with ``save_review``.
REVIEW_FIELDS = (*RATIONALE_FIELDS, "label", "status", "excluded")


# ----------------------------------------------------------------------------------------- datasets
def get_or_create_dataset(
    session: Session,
    name: str,
    *,
    preset: str = "custom",
    role: str = "",
    task: str = "",
    labels: list[str] | None = None,
    criteria: str = "",
) -> Dataset:
    """Return the dataset called ``name``, creating it with these settings when it does not exist.

    An existing dataset keeps its settings, except that an empty label set is filled from ``labels``.
    """
    name = (name or "").strip()
    dataset = session.scalar(select(Dataset).where(Dataset.name == name)) if name else None
    if dataset is None:
        name = check_dataset_name(name)  # no separators, '..', control characters; at most 100 characters
    long_labels = [label for label in labels or [] if len(label) > MAX_LABEL_CHARS]
    if long_labels:
        raise ConfigError(f"label {long_labels[0][:40]!r}... is {len(long_labels[0])} characters; labels may have at "
                          f"most {MAX_LABEL_CHARS} (both databases enforce it): use a short name per class")
    if dataset is None:
        dataset = Dataset(
            name=name, preset=preset, role=role, task=task, labels=list(labels or []), criteria=criteria
        )
        session.add(dataset)
    elif not dataset.labels and labels:
        dataset.labels = list(labels)
    session.flush()
    return dataset


def find_dataset(session: Session, name: str) -> Dataset | None:
    return session.scalar(select(Dataset).where(Dataset.name == name))


def get_dataset(session: Session, name: str) -> Dataset:
    """Return the dataset called ``name``; the error lists the datasets that do exist."""
    dataset = find_dataset(session, name)
    if dataset is None:
        names = [d.name for d in list_datasets(session)]
        existing = ", ".join(names) if names else "none yet"
        raise DataError(
            f"dataset {name!r} not found (existing datasets: {existing}); "
            f"create it with `rbft import {name} SOURCE` or pick an existing one"
        )
    return dataset


def list_datasets(session: Session) -> list[Dataset]:
    return list(session.scalars(select(Dataset).order_by(Dataset.name)))


# ------------------------------------------------------------------------------------------- videos
def find_video_by_sha(session: Session, dataset_id: int, sha256: str) -> Video | None:
    return session.scalar(select(Video).where(Video.dataset_id == dataset_id, Video.sha256 == sha256))


def find_video_by_external_id(session: Session, dataset_id: int, external_id: str) -> Video | None:
    return session.scalar(
        select(Video).where(Video.dataset_id == dataset_id, Video.external_id == external_id)
    )


def add_video(
    session: Session,
    dataset_id: int,
    *,
    external_id: str,
    path: str,
    sha256: str,
    label: str,
    split: str,
    source_root: str = "",
    size_bytes: int = 0,
    readable: bool = True,
    error: str | None = None,
    duration_s: float | None = None,
    fps: float | None = None,
    width: int | None = None,
    height: int | None = None,
    num_frames: int | None = None,
    codec: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Video:
    """Add one video row (no review yet: that appears with its first suggestion)."""
    if split not in ("train", "val", "test"):
        raise ConfigError(f"split {split!r} of video {external_id!r} must be train, val or test")
    video = Video(
        dataset_id=dataset_id,
        external_id=external_id,
        path=path,
        source_root=source_root,
        sha256=sha256,
        size_bytes=size_bytes,
        label=label,
        split=split,
        readable=readable,
        error=error,
        duration_s=duration_s,
        fps=fps,
        width=width,
        height=height,
        num_frames=num_frames,
        codec=codec,
        meta=dict(meta or {}),
    )
    session.add(video)
    session.flush()
    return video


def videos_for_generation(
    session: Session,
    dataset_id: int,
    split: str | None,
    model_id: str,
    prompt_version: str,
    overwrite: bool = False,
    video_ids: list[int] | None = None,
) -> list[Video]:
    """Readable videos of ``split`` (None: all splits) that still need a rationale from this model+prompt.

    With ``overwrite`` every readable video is returned (a newer suggestion is added; old ones stay);
    ``video_ids`` keeps only those videos (regenerating one rationale from the review page).
    """
    stmt = select(Video).where(Video.dataset_id == dataset_id, Video.readable.is_(True))
    if video_ids is not None:
        stmt = stmt.where(Video.id.in_(list(video_ids)))
    if split is not None:
        stmt = stmt.where(Video.split == split)
    if not overwrite:
        done = exists().where(
            Suggestion.video_id == Video.id,
            Suggestion.model_id == model_id,
            Suggestion.prompt_version == prompt_version,
        )
        stmt = stmt.where(~done)
    return list(session.scalars(stmt.order_by(Video.id)))


def count_suggested_videos(
    session: Session, dataset_id: int, split: str | None, model_id: str, prompt_version: str
) -> int:
    """How many readable videos of ``split`` (None: all) already have a suggestion from this model+prompt."""
    done = exists().where(
        Suggestion.video_id == Video.id,
        Suggestion.model_id == model_id,
        Suggestion.prompt_version == prompt_version,
    )
    stmt = select(func.count()).select_from(Video).where(
        Video.dataset_id == dataset_id, Video.readable.is_(True), done
    )
    if split is not None:
        stmt = stmt.where(Video.split == split)
    return int(session.scalar(stmt) or 0)


# ------------------------------------------------------------------------------ suggestions, reviews
def add_suggestion(session: Session, video_id: int, **fields: Any) -> Suggestion:
    """Add an immutable suggestion and make sure the video has a review pointing at useful output.

    The video gets a pending review (four fields None: "use the suggestion") when it has none; a review
    still pending and never saved is pointed at this newest suggestion unless it parsed worse than the
    one in place (a failed rerun never hides a good rationale). Saved reviews are left alone.
    """
    status = fields.get("parse_status")
    if status not in PARSE_STATUSES:
        raise ConfigError(f"parse_status must be one of {', '.join(PARSE_STATUSES)}, got {status!r}")
    review = session.scalar(select(Review).where(Review.video_id == video_id))
    suggestion = Suggestion(video_id=video_id, **fields, **_doubt_columns(session, video_id, review, fields))
    session.add(suggestion)
    session.flush()
    if review is None:
        session.add(Review(video_id=video_id, suggestion_id=suggestion.id, status="pending", version=1))
    elif review.status == "pending" and review.version == 1:
        # follow the newest suggestion, unless it parsed worse than the one in place
        current = session.get(Suggestion, review.suggestion_id) if review.suggestion_id else None
        rank = {"failed": 0, "partial": 1, "ok": 2}
        if current is None or rank[suggestion.parse_status] >= rank[current.parse_status]:
            review.suggestion_id = suggestion.id
    session.flush()
    return suggestion


def _doubt_columns(session: Session, video_id: int, review: Review | None, fields: dict[str, Any]) -> dict[str, Any]:
    """doubt_score / doubt_reason for a new suggestion (rbft_core.review.doubt), unless the caller gave them."""

    if "doubt_score" in fields:
        return {}
    row = session.execute(
        select(Video.label, Dataset.labels).join(Dataset, Dataset.id == Video.dataset_id).where(Video.id == video_id)
    ).first()
    if row is None:
        raise DataError(f"video {video_id} not found; re-import the dataset before adding suggestions")
    doubt = doubt_of(
        parse_status=fields["parse_status"],
        fields={name: fields.get(name) for name in RATIONALE_FIELDS},
        conclusion=fields.get("conclusion") or "",
        label=(review.label if review is not None and review.label else row.label),
        labels=list(row.labels or []),
        mean_logprob=fields.get("mean_logprob"),
    )
    return {"doubt_score": doubt.score, "doubt_reason": doubt.reason}


def get_review(session: Session, review_id: int) -> Review:
    review = session.get(Review, review_id, populate_existing=True)
    if review is None:
        raise DataError(f"review {review_id} not found; it may belong to a deleted dataset, reload the page")
    return review


def review_history(session: Session, review_id: int) -> list[ReviewRevision]:
    """Every saved change of a review, oldest first."""
    stmt = select(ReviewRevision).where(ReviewRevision.review_id == review_id).order_by(ReviewRevision.id)
    return list(session.scalars(stmt))


def review_snapshot(review: Review) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(review, name) for name in REVIEW_FIELDS}
    data.update(reviewer=review.reviewer, version=review.version, suggestion_id=review.suggestion_id)
    data["updated_at"] = iso_time(review.updated_at)
    return data


def iso_time(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite returns naive datetimes; they were written in UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.isoformat(timespec="seconds")


def _conflict(review: Review, expected_version: int, attempted: dict[str, Any]) -> ConflictError:
    when = iso_time(review.updated_at) or "an unknown time"
    text = "; ".join(f"{name}: {getattr(review, name)!r}" for name in RATIONALE_FIELDS)
    err = ConflictError(
        f"review {review.id} (video {review.video_id}) was saved by {review.reviewer or 'someone'} at {when} "
        f"(now version {review.version}; you edited version {expected_version}). "
        f"Their version: status {review.status!r}, label {review.label!r}; {text}. "
        "Your changes were not saved: reload the review, re-apply your edit and save again."
    )
    # The UI shows both side by side; neither version is lost.
    err.current = review_snapshot(review)  # type: ignore[attr-defined]
    err.attempted = attempted  # type: ignore[attr-defined]
    return err


def save_review(
    session: Session, review_id: int, *, expected_version: int, reviewer: str, note: str | None = None, **changes: Any
) -> Review:
    """Save a reviewer's changes if nobody saved since ``expected_version``; append a revision (with ``note``,
    why the app made this change, in its ``after``).

    Raises ``ConflictError`` (with ``.current`` and ``.attempted``) when the review moved on meanwhile.
    """
    allowed = (*REVIEW_FIELDS, "suggestion_id")  # suggestion_id: adopt a regenerated suggestion
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise ConfigError(f"cannot save review field(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    if "status" in changes and changes["status"] not in REVIEW_STATUSES:
        raise ConfigError(f"review status must be one of {', '.join(REVIEW_STATUSES)}, got {changes['status']!r}")
    review = get_review(session, review_id)
    if review.version != expected_version:
        raise _conflict(review, expected_version, changes)
    before = review_snapshot(review)
    # Compare-and-set in one statement: two writers cannot both pass the version check.
    result = session.execute(
        update(Review)
        .where(Review.id == review_id, Review.version == expected_version)
        .values(**changes, reviewer=reviewer, version=Review.version + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise _conflict(get_review(session, review_id), expected_version, changes)
    review = get_review(session, review_id)
    after = review_snapshot(review) | ({"note": note} if note else {})
    session.add(ReviewRevision(review_id=review_id, version=review.version, before=before, after=after, reviewer=reviewer))
    session.flush()
    return review


# --------------------------------------------------------------------------------- counts, imports
def dataset_counts(session: Session, dataset_id: int) -> dict[str, Any]:
    """Counts for the dataset page: total, per label, per split, per label within split, per review status.

    ``review_status`` has every status (0 when unused) plus ``none`` for videos without a suggestion yet.
    """
    rows = session.execute(
        select(Video.label, Video.split, Video.readable, func.count())
        .where(Video.dataset_id == dataset_id)
        .group_by(Video.label, Video.split, Video.readable)
    ).all()
    labels: Counter[str] = Counter()
    splits: Counter[str] = Counter()
    label_split: dict[str, Counter[str]] = {}
    unreadable = 0
    for label, split, readable, n in rows:
        labels[label] += n
        splits[split] += n
        label_split.setdefault(split, Counter())[label] += n
        if not readable:
            unreadable += n
    statuses = dict.fromkeys(REVIEW_STATUSES, 0)
    status_rows = session.execute(
        select(Review.status, func.count())
        .join(Video, Video.id == Review.video_id)
        .where(Video.dataset_id == dataset_id)
        .group_by(Review.status)
    ).all()
    for status, n in status_rows:
        statuses[status] = n
    total = sum(labels.values())
    statuses["none"] = total - sum(n for _, n in status_rows)
    return {
        "total": total,
        "labels": dict(sorted(labels.items())),
        "splits": dict(sorted(splits.items())),
        "label_split": {s: dict(sorted(c.items())) for s, c in sorted(label_split.items())},
        "review_status": statuses,
        "unreadable": unreadable,
    }


def label_counts(session: Session, dataset_id: int, *, readable_only: bool = False) -> dict[str, int]:
    """Videos per label, sorted by label."""
    stmt = select(Video.label, func.count()).where(Video.dataset_id == dataset_id)
    if readable_only:
        stmt = stmt.where(Video.readable.is_(True))
    rows = session.execute(stmt.group_by(Video.label).order_by(Video.label)).all()
    return {label: n for label, n in rows}


def record_import_run(
    session: Session, dataset_id: int, source: str, format: str, report: dict[str, Any]
) -> ImportRun:
    run = ImportRun(dataset_id=dataset_id, source=source, format=format, report=report)
    session.add(run)
    session.flush()
    return run


def source_roots(session: Session) -> list[str]:
    """The distinct folders datasets were imported from (what the web app may serve besides its data dir)."""
    stmt = select(Video.source_root).where(Video.source_root != "").distinct().order_by(Video.source_root)
    return list(session.scalars(stmt))

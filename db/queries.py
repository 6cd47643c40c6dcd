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

from db import counters, writes
from db.models import (
    REVIEW_STATUSES,
    Dataset,
    ImportRun,
    Review,
    ReviewRevision,
    Suggestion,
    Video,
    utcnow,
)
from db.review_state import derived_columns, review_key
from rbft_core.errors import ConfigError, ConflictError, DataError
from rbft_core.models.prompts import dimensions_from_records
from rbft_core.names import check_dataset_name

__all__ = [
    "REVIEW_FIELDS",
    "get_or_create_dataset",
    "dimension_names",
    "dimension_records",
    "names_of",
    "find_dataset",
    "get_dataset",
    "list_datasets",
    "find_video_by_sha",
    "find_video_by_external_id",
    "known_videos",
    "add_video",
    "videos_for_generation",
    "generation_candidates",
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

MAX_LABEL_CHARS = 100  # the label columns are VARCHAR(100)
# What a reviewer may change with ``save_review`` besides the text of the dataset's dimensions.
REVIEW_FIELDS = ("label", "status", "excluded")


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
    dimensions: list[dict[str, Any]] | None = None,
) -> Dataset:
    """Return the dataset called ``name``, creating it with these settings when it does not exist.

    ``dimensions``: the rationale dimensions of a new dataset ([{name, description, required}], checked; None: the
    paper's four). An existing dataset keeps its settings, except that an empty label set is filled from ``labels``.
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
        dims = None if dimensions is None else [d.to_dict() for d in
                                                dimensions_from_records(dimensions, f"dataset {name!r}")]
        dataset = Dataset(
            name=name, preset=preset, role=role, task=task, labels=list(labels or []), criteria=criteria,
            **({"dimensions": dims} if dims is not None else {}),
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


def names_of(records: Any) -> tuple[str, ...]:
    """The dimension names of stored dimension records ([{name, ...}]), in order."""
    return tuple(str(r["name"]) for r in records or [])


def dimension_records(session: Session, dataset_id: int, *, for_write: bool = False) -> list[dict[str, Any]]:
    """A dataset's rationale dimensions as stored ([{name, description, required}]); ``for_write``: read for a write
    of text under their names, safe against a concurrent rename (``writes.dimensions_for_write``)."""
    if for_write:
        return writes.dimensions_for_write(session, dataset_id)
    return list(session.scalar(select(Dataset.dimensions).where(Dataset.id == dataset_id)) or [])


def dimension_names(session: Session, dataset_id: int, *, for_write: bool = False) -> tuple[str, ...]:
    """The names of a dataset's rationale dimensions, in order (``for_write``: see ``dimension_records``)."""
    return names_of(dimension_records(session, dataset_id, for_write=for_write))


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
    **fields: Any,
) -> Video:
    """Add one video row (no review yet: that appears with its first suggestion); ``fields``: source_root,
    size_bytes, readable, error, duration_s, fps, width, height, num_frames, codec, meta."""
    unknown = sorted(set(fields) - set(writes.VIDEO_DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown video field(s) {', '.join(unknown)}")
    row = {"external_id": external_id, "path": path, "sha256": sha256, "label": label, "split": split, **fields}
    (video_id,) = writes.add_videos(session, dataset_id, [row])
    return session.get(Video, video_id)


def known_videos(session: Session, dataset_id: int, *, shas: list[str], external_ids: list[str]
                 ) -> tuple[dict[str, tuple[str, bool, str | None]], set[str]]:
    """What a dataset already holds of these files: {sha: (external id, readable, error)}, and the ids in use.

    Reads in chunks of 500 values, so an import of 100,000 rows costs a few hundred index lookups in all.
    """
    by_sha: dict[str, tuple[str, bool, str | None]] = {}
    ids: set[str] = set()
    for start in range(0, len(shas), 500):
        rows = session.execute(select(Video.sha256, Video.external_id, Video.readable, Video.error).where(
            Video.dataset_id == dataset_id, Video.sha256.in_(shas[start:start + 500]))).all()
        by_sha.update({sha: (ext, bool(ok), err) for sha, ext, ok, err in rows})
    for start in range(0, len(external_ids), 500):
        ids.update(session.scalars(select(Video.external_id).where(
            Video.dataset_id == dataset_id, Video.external_id.in_(external_ids[start:start + 500]))))
    return by_sha, ids


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


def generation_candidates(session: Session, dataset_id: int, split: str | None, model_id: str, prompt_version: str,
                          video_ids: list[int] | None = None) -> list[tuple[int, str, str, str, bool]]:
    """(video id, path, sha256, effective label, done) of every readable video of ``split`` (None: all), by id.

    ``done``: the video has a suggestion from this model + prompt. One query, no objects per video.
    """
    done = exists().where(Suggestion.video_id == Video.id, Suggestion.model_id == model_id,
                          Suggestion.prompt_version == prompt_version)
    stmt = (select(Video.id, Video.path, Video.sha256, func.coalesce(Review.label, Video.label), done)
            .outerjoin(Review, Review.video_id == Video.id)
            .where(Video.dataset_id == dataset_id, Video.readable.is_(True)))
    if video_ids is not None:
        stmt = stmt.where(Video.id.in_(list(video_ids)))
    if split is not None:
        stmt = stmt.where(Video.split == split)
    return [(int(i), p, sha, label, bool(d)) for i, p, sha, label, d in session.execute(stmt.order_by(Video.id))]


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

    The video gets a pending review (no text of its own: "use the suggestion") when it has none; a review
    still pending and never saved is pointed at this newest suggestion unless it parsed worse than the
    one in place (a failed rerun never hides a good rationale). Saved reviews are left alone.
    (``db.writes.add_suggestions`` does the same for many rows at once.)
    """
    (suggestion_id,) = writes.add_suggestions(session, [{"video_id": video_id, **fields}])
    return session.get(Suggestion, suggestion_id)


def get_review(session: Session, review_id: int) -> Review:
    review = session.get(Review, review_id, populate_existing=True)
    if review is None:
        raise DataError(f"review {review_id} not found; it may belong to a deleted dataset, reload the page")
    return review


def review_history(session: Session, review_id: int) -> list[ReviewRevision]:
    """Every saved change of a review, oldest first."""
    stmt = select(ReviewRevision).where(ReviewRevision.review_id == review_id).order_by(ReviewRevision.id)
    return list(session.scalars(stmt))


def review_snapshot(review: Review, names: tuple[str, ...]) -> dict[str, Any]:
    """The review as its revisions record it: each dimension of ``names`` (None: the suggestion's text), label,
    status, excluded, reviewer, version, suggestion and time."""
    text = review.rationale or {}
    data: dict[str, Any] = {name: text.get(name) for name in names}
    data.update({name: getattr(review, name) for name in REVIEW_FIELDS})
    data.update(reviewer=review.reviewer, version=review.version, suggestion_id=review.suggestion_id)
    data["updated_at"] = iso_time(review.updated_at)
    return data


def iso_time(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite returns naive datetimes; they were written in UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.isoformat(timespec="seconds")


def _conflict(review: Review, names: tuple[str, ...], expected_version: int,
              attempted: dict[str, Any]) -> ConflictError:
    when = iso_time(review.updated_at) or "an unknown time"
    text = "; ".join(f"{name}: {(review.rationale or {}).get(name)!r}" for name in names)
    err = ConflictError(
        f"review {review.id} (video {review.video_id}) was saved by {review.reviewer or 'someone'} at {when} "
        f"(now version {review.version}; you edited version {expected_version}). "
        f"Their version: status {review.status!r}, label {review.label!r}; {text}. "
        "Your changes were not saved: reload the review, re-apply your edit and save again."
    )
    # The UI shows both side by side; neither version is lost.
    err.current = review_snapshot(review, names)  # type: ignore[attr-defined]
    err.attempted = attempted  # type: ignore[attr-defined]
    return err


def _ordered(text: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """``text`` in the order of ``names`` (a key outside them, which no write makes, is kept at the end)."""
    return {**{n: text[n] for n in names if n in text}, **{k: v for k, v in text.items() if k not in names}}


def _video_facts(session: Session, video_id: int) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The video's queue facts and its dataset's dimension names, read for a write (``dimension_records``)."""
    row = session.execute(select(Video.dataset_id, Video.external_id, Video.split, Video.label, Video.readable)
                          .where(Video.id == video_id)).mappings().one()
    video = dict(row)
    return video, dimension_names(session, video["dataset_id"], for_write=True)


def save_review(
    session: Session, review_id: int, *, expected_version: int, reviewer: str, note: str | None = None, **changes: Any
) -> Review:
    """Save a reviewer's changes if nobody saved since ``expected_version``; append a revision (with ``note``,
    why the app made this change, in its ``after``).

    ``changes``: the text of any of the dataset's dimensions (None: back to the suggestion's text), ``label``,
    ``status``, ``excluded``, ``suggestion_id``. Raises ``ConflictError`` (with ``.current`` and ``.attempted``)
    when the review moved on meanwhile. The queue columns and the dataset's counters change in the same
    transaction.
    """
    review = get_review(session, review_id)
    video, names = _video_facts(session, review.video_id)
    allowed = (*names, *REVIEW_FIELDS, "suggestion_id")  # suggestion_id: adopt a regenerated suggestion
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise ConfigError(f"cannot save review field(s) {', '.join(unknown)}; allowed: {', '.join(allowed)} (the "
                          f"dimensions of this dataset are {', '.join(names)})")
    if "status" in changes and changes["status"] not in REVIEW_STATUSES:
        raise ConfigError(f"review status must be one of {', '.join(REVIEW_STATUSES)}, got {changes['status']!r}")
    columns = {k: v for k, v in changes.items() if k not in names}
    for _attempt in range(5):  # a generation may repoint a never-saved review meanwhile: read it again
        review = get_review(session, review_id)
        if review.version != expected_version:
            raise _conflict(review, names, expected_version, changes)
        before = review_snapshot(review, names)
        text = dict(review.rationale or {})
        for name in (n for n in names if n in changes):
            if changes[name] is None:
                text.pop(name, None)
            else:
                text[name] = changes[name]
        text = _ordered(text, names)
        stored = {"label": columns.get("label", review.label), "rationale": text}
        sid = changes.get("suggestion_id", review.suggestion_id)
        suggestion = session.get(Suggestion, sid) if sid is not None else None
        derived = derived_columns(stored, _suggestion_fields(suggestion), video)
        # Compare-and-set in one statement: two writers cannot both pass the version check.
        result = session.execute(
            update(Review)
            .where(Review.id == review_id, Review.version == expected_version,
                   Review.suggestion_id.is_not_distinct_from(review.suggestion_id))
            .values(**columns, rationale=text, **derived, reviewer=reviewer, version=Review.version + 1,
                    updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:
            break
    else:
        raise _conflict(get_review(session, review_id), names, expected_version, changes)
    deltas: Counter = Counter()
    deltas[_counter_key(review, video)] -= 1
    review = get_review(session, review_id)
    deltas[_counter_key(review, video)] += 1
    counters.apply(session, deltas)
    after = review_snapshot(review, names) | ({"note": note} if note else {})
    session.add(ReviewRevision(review_id=review_id, version=review.version, before=before, after=after, reviewer=reviewer))
    session.flush()
    return review


def _suggestion_fields(suggestion: Suggestion | None) -> dict[str, Any] | None:
    if suggestion is None:
        return None
    names = ("rationale", "conclusion", "doubt_score", "parse_status", "flag_bits")
    return {name: getattr(suggestion, name) for name in names}


def _counter_key(review: Review, video: Any) -> tuple:
    return review_key(video["dataset_id"], status=review.status, queue_label=review.queue_label,
                      video_label=video["label"], split=video["split"], readable=video["readable"],
                      edited=review.edited, excluded=review.excluded, parse_failed=review.parse_failed,
                      flag_bits=review.flag_bits)


# --------------------------------------------------------------------------------- counts, imports
def dataset_counts(session: Session, dataset_id: int) -> dict[str, Any]:
    """Counts for the dataset page (``db.counters.dataset_counts``: read from counters kept on write)."""
    return counters.dataset_counts(session, dataset_id)


def label_counts(session: Session, dataset_id: int, *, readable_only: bool = False) -> dict[str, int]:
    """Videos per label, sorted by label (from the counters)."""
    return counters.label_counts(session, dataset_id, readable_only=readable_only)


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

"""Counts kept on write: ``dataset_counters`` holds, per dataset and key (``db.models.COUNTER_KEY``), how many
videos share it. Every write that adds, changes or deletes a video or a review adds its +1 / -1 deltas here in
the same transaction (``apply``), so the counts the app shows read a few rows instead of the dataset.

``recount`` computes the same table from scratch (the tests compare the two after random operations). Deltas
are applied in key order as upserts, so two transactions never wait on each other's counter rows in a circle.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, Optional, Sequence

from sqlalchemy import Text, case, cast, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from db.models import (
    COUNTER_KEY,
    REVIEW_STATUSES,
    Dataset,
    DatasetCounter,
    Review,
    Suggestion,
    Video,
)
from db.review_state import is_edited

__all__ = ["Deltas", "apply", "stored", "recount", "rebuild", "dataset_counts", "label_counts", "review_counts",
           "queue_segments", "totals", "KEY_COLUMNS"]

# Statuses every count lists (0 when unused); "ready" (several reviews per item) appears only where it occurs, so
# datasets with one reviewer per item count exactly as before.
LISTED_STATUSES = tuple(s for s in REVIEW_STATUSES if s != "ready")
Deltas = Counter  # key tuple (dataset_id, *COUNTER_KEY) -> change in count
KEY_COLUMNS = ("dataset_id", *COUNTER_KEY)
_TABLE = DatasetCounter.__table__


def apply(session: Session, deltas: Mapping[tuple, int]) -> None:
    """Add ``deltas`` to the counters (one upsert, keys in sorted order)."""
    rows = [dict(zip(KEY_COLUMNS, key), n=n) for key, n in sorted(deltas.items()) if n]
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    for start in range(0, len(rows), 500):
        stmt = insert(_TABLE).values(rows[start:start + 500])
        stmt = stmt.on_conflict_do_update(index_elements=list(KEY_COLUMNS), set_={"n": _TABLE.c.n + stmt.excluded.n})
        session.execute(stmt)


def stored(session: Session, dataset_id: int) -> Counter:
    """The counters of a dataset as {key: n} (rows at 0 left out)."""
    rows = session.execute(select(*(_TABLE.c[c] for c in KEY_COLUMNS), _TABLE.c.n)
                           .where(_TABLE.c.dataset_id == dataset_id, _TABLE.c.n != 0)).all()
    return Counter({_norm(tuple(r[:-1])): int(r[-1]) for r in rows})


def _norm(key: tuple) -> tuple:
    return (int(key[0]), *key[1:5], *(bool(v) for v in key[5:9]), int(key[9] or 0))


def recount(session: Session, dataset_id: int) -> Counter:
    """The counters of a dataset computed from the videos, reviews and suggestions themselves (a full scan).

    Reviews that store no text of their own are unedited and counted by one GROUP BY; the others (the reviewer
    typed something) are read with both texts and compared by ``review_state.is_edited``, as every write does."""
    status = func.coalesce(Review.status, "none")
    label = func.coalesce(Review.label, Video.label)
    excluded = func.coalesce(Review.excluded, False)
    failed = case((Suggestion.parse_status == "failed", True), else_=False)
    flags = func.coalesce(Suggestion.flag_bits, 0)
    columns = (status, label, Video.label, Video.split, Video.readable, excluded, failed, flags)
    untouched = or_(Review.id.is_(None), cast(Review.rationale, Text) == "{}")

    def scan(stmt: Any) -> Any:
        return session.execute(stmt.select_from(Video).outerjoin(Review, Review.video_id == Video.id)
                               .outerjoin(Suggestion, Suggestion.id == Review.suggestion_id)
                               .where(Video.dataset_id == dataset_id))

    out: Counter = Counter()
    for *key, n in scan(select(*columns, func.count()).where(untouched).group_by(*columns)):
        out[_norm((dataset_id, *key[:5], False, *key[5:]))] += int(n)
    typed = scan(select(*columns, Review.rationale, Suggestion.rationale).where(~untouched))
    for *key, text, suggested in typed.yield_per(2000):
        edited = is_edited({"rationale": text}, {"rationale": suggested} if suggested is not None else None)
        out[_norm((dataset_id, *key[:5], edited, *key[5:]))] += 1
    return out


def rebuild(session: Session, dataset_id: int) -> Counter:
    """Replace a dataset's counters by a full recount (a repair; ``rbft`` never needs it in normal use)."""
    fresh = recount(session, dataset_id)
    session.execute(delete(_TABLE).where(_TABLE.c.dataset_id == dataset_id))
    apply(session, fresh)
    return fresh


def _rows(session: Session, dataset_id: int) -> list[dict[str, Any]]:
    return [dict(zip(KEY_COLUMNS, key), n=n) for key, n in stored(session, dataset_id).items()]


def dataset_counts(session: Session, dataset_id: int) -> dict[str, Any]:
    """Counts for the dataset page: total, per label, per split, per label within split, per review status.

    ``review_status`` has every status (0 when unused) plus ``none`` for videos without a suggestion yet.
    """
    labels: Counter[str] = Counter()
    splits: Counter[str] = Counter()
    label_split: dict[str, Counter[str]] = {}
    statuses = dict.fromkeys((*LISTED_STATUSES, "none"), 0)
    unreadable = 0
    for row in _rows(session, dataset_id):
        n = row["n"]
        labels[row["video_label"]] += n
        splits[row["split"]] += n
        label_split.setdefault(row["split"], Counter())[row["video_label"]] += n
        statuses[row["status"]] = statuses.get(row["status"], 0) + n
        unreadable += 0 if row["readable"] else n
    none = statuses.pop("none")
    return {
        "total": sum(labels.values()),
        "labels": {k: v for k, v in sorted(labels.items()) if v},
        "splits": {k: v for k, v in sorted(splits.items()) if v},
        "label_split": {s: {k: v for k, v in sorted(c.items()) if v} for s, c in sorted(label_split.items())
                        if sum(c.values())},
        "review_status": {**statuses, "none": none},
        "unreadable": unreadable,
    }


def label_counts(session: Session, dataset_id: int, *, readable_only: bool = False) -> dict[str, int]:
    """Videos per (imported) label, sorted by label."""
    out: Counter[str] = Counter()
    for row in _rows(session, dataset_id):
        if row["readable"] or not readable_only:
            out[row["video_label"]] += row["n"]
    return {k: v for k, v in sorted(out.items()) if v}


def review_counts(session: Session, dataset_id: int) -> dict[str, int]:
    """pending (incl. drafts), draft, accepted (untouched), edited (accepted with edits), rejected, excluded, total."""
    counts = dict.fromkeys(("pending", "draft", "accepted", "edited", "rejected", "excluded", "total"), 0)
    for row in _rows(session, dataset_id):
        status, n = row["status"], row["n"]
        if status == "none":
            continue
        counts["total"] += n
        counts["excluded"] += n if row["excluded"] else 0
        if status in ("pending", "draft"):
            counts["pending"] += n
            counts["draft"] += n if status == "draft" else 0
        elif status == "accepted" and row["edited"]:
            counts["edited"] += n
        else:
            counts[status] = counts.get(status, 0) + n
    return counts


def queue_segments(session: Session, dataset_id: int, *, statuses: Optional[Sequence[str]], label: str = "",
                   split: str = "", edited: Optional[bool] = None, parse_failed: bool = False,
                   flag_masks: Optional[Sequence[int]] = None) -> list[tuple[tuple, int]]:
    """The non-empty (status, label, split, edited, parse_failed) groups of reviews a queue filter takes, with sizes.

    Each group is one contiguous range of ``ix_reviews_queue`` in queue order, so the queue's next item is the
    first of a few index seeks and its length is the sum of the sizes. With ``flag_masks`` (the ``flag_bits``
    values the filter takes) each group is (flag_bits, status, label, split, edited, parse_failed): a contiguous
    range of ``ix_reviews_flags``.
    """
    wanted: Counter = Counter()
    masks = None if flag_masks is None else set(flag_masks)
    for row in _rows(session, dataset_id):
        if row["status"] == "none" or (statuses and row["status"] not in statuses):
            continue
        if (label and row["label"] != label) or (split and row["split"] != split):
            continue
        if (edited is not None and row["edited"] != edited) or (parse_failed and not row["parse_failed"]):
            continue
        if masks is not None and row["flag_bits"] not in masks:
            continue
        segment = (row["status"], row["label"], row["split"], row["edited"], row["parse_failed"])
        wanted[segment if masks is None else (row["flag_bits"], *segment)] += row["n"]
    return sorted((key, n) for key, n in wanted.items() if n > 0)



def totals(session: Session) -> dict[str, int]:
    """Over every dataset: ``datasets``, ``videos`` and videos per review status (``none``: no suggestion yet),
    read from the counters (one grouped sum, whatever the number of videos)."""
    by_status = dict.fromkeys((*LISTED_STATUSES, "none"), 0)
    for status, n in session.execute(select(_TABLE.c.status, func.sum(_TABLE.c.n)).group_by(_TABLE.c.status)):
        if n or status in by_status:
            by_status[status] = by_status.get(status, 0) + int(n or 0)
    datasets = int(session.scalar(select(func.count()).select_from(Dataset)) or 0)
    return {"datasets": datasets, "videos": sum(by_status.values()), **by_status}

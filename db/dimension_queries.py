"""A dataset's rationale dimensions: how much text each holds, a new definition, and renaming one with its text.

Dimension names are the keys of JSON columns (``suggestions.rationale`` and ``dimension_logprobs``,
``reviews.rationale``, ``review_responses.rationale``, the ``before`` / ``after`` of ``review_revisions`` and, under
``rationale``, of ``response_revisions``), so a rename rewrites those keys in every row of the dataset, in the
caller's transaction: all of it or none. Rows are read and written in chunks by primary key (the JSON is rewritten
in Python: the same code on SQLite and PostgreSQL). Flush, never commit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from db.models import Dataset, ResponseRevision, Review, ReviewResponse, ReviewRevision, Suggestion, Video

__all__ = ["lock_dataset", "text_counts", "set_dimensions", "rename_keys", "suggestions_without"]

_CHUNK = 1000
# The rows that hold text of a dimension: what a redefinition may not orphan.
HOLDERS = ("suggestions", "reviews", "responses")


def _rows(session: Session, columns: list, where: Any, key: Any) -> Iterator[list]:
    """``columns`` of the rows matching ``where``, in chunks ordered by ``key`` (a primary key, first column)."""
    last = 0
    while True:
        rows = session.execute(select(*columns).where(where, key > last).order_by(key).limit(_CHUNK)).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def lock_dataset(session: Session, dataset_id: int) -> None:
    """Hold the dataset against writers of text until the transaction ends, before anything is read: PostgreSQL
    locks its row ``FOR UPDATE`` (saves share-lock it, ``db.writes.dimensions_for_write``: those in flight finish
    first, later ones wait and then see the new names); SQLite takes the database's write lock with a write that
    changes nothing (one writer at a time), so every read after it sees the newest rows."""
    session.execute(select(Dataset.id).where(Dataset.id == dataset_id).with_for_update())
    session.execute(update(Dataset).where(Dataset.id == dataset_id).values(name=Dataset.name)
                    .execution_options(synchronize_session=False))


def _of_dataset(dataset_id: int) -> Any:
    return Suggestion.video_id.in_(select(Video.id).where(Video.dataset_id == dataset_id))


def text_counts(session: Session, dataset_id: int) -> dict[str, Counter]:
    """Per dimension name found in the dataset's text (defined or not): how many suggestions, reviews and responses
    hold non-empty text for it, e.g. ``{"speech": Counter(suggestions=12, reviews=2)}``."""
    out: dict[str, Counter] = {}
    sources = (("suggestions", Suggestion.id, Suggestion.rationale, _of_dataset(dataset_id)),
               ("reviews", Review.id, Review.rationale, Review.dataset_id == dataset_id),
               ("responses", ReviewResponse.id, ReviewResponse.rationale, ReviewResponse.dataset_id == dataset_id))
    for holder, key, column, where in sources:
        for chunk in _rows(session, [key, column], where, key):
            for _id, text in chunk:
                for name, value in (text or {}).items():
                    if value is not None and str(value).strip():
                        out.setdefault(name, Counter())[holder] += 1
    return out


def suggestions_without(session: Session, dataset_id: int, name: str) -> int:
    """How many suggestions of the dataset were written without the dimension ``name`` (before it was defined)."""
    missing = 0
    for chunk in _rows(session, [Suggestion.id, Suggestion.rationale], _of_dataset(dataset_id), Suggestion.id):
        missing += sum(name not in (text or {}) for _id, text in chunk)
    return missing


def set_dimensions(session: Session, dataset_id: int, records: list[dict[str, Any]]) -> None:
    """Store a dataset's dimension records ([{name, description, required}], already checked)."""
    session.execute(update(Dataset).where(Dataset.id == dataset_id).values(dimensions=list(records))
                    .execution_options(synchronize_session=False))
    session.flush()


def _renamed(mapping: Mapping[str, Any], renames: Mapping[str, str]) -> dict[str, Any]:
    return {renames.get(k, k): v for k, v in mapping.items()}


def _rewrite(session: Session, model: Any, names: tuple[str, ...], where: Any, change: Any) -> int:
    """Apply ``change(values) -> new values or None`` to the JSON columns ``names`` of every row of ``model`` matching
    ``where``; returns how many rows changed (Core statements on the table: one executemany per chunk)."""
    table = model.__table__
    columns = [table.c[name] for name in names]
    stmt = update(table).where(table.c.id == bindparam("row_id")).values(
        **{name: bindparam(f"v_{name}") for name in names})
    changed = 0
    for chunk in _rows(session, [table.c.id, *columns], where, table.c.id):
        batch = []
        for row_id, *values in chunk:
            new = change(values)
            if new is not None:
                batch.append({"row_id": row_id, **{f"v_{n}": v for n, v in zip(names, new)}})
        if batch:
            session.execute(stmt, batch)
            changed += len(batch)
    return changed


def rename_keys(session: Session, dataset_id: int, renames: Mapping[str, str]) -> Counter:
    """Rename dimension keys (old -> new) in every row of the dataset that holds them; returns rows changed per
    table. The dataset's own definition is the caller's (``set_dimensions``)."""
    if not renames:
        return Counter()

    def flat(values: list) -> list | None:
        if not any(set(v or {}) & set(renames) for v in values):
            return None
        return [_renamed(v or {}, renames) for v in values]

    def nested(values: list) -> list | None:
        if not any(set((v or {}).get("rationale") or {}) & set(renames) for v in values):
            return None
        return [{**(v or {}), **({"rationale": _renamed(v["rationale"], renames)} if (v or {}).get("rationale")
                                  else {})} for v in values]

    reviews = select(Review.id).where(Review.dataset_id == dataset_id)
    responses = select(ReviewResponse.id).where(ReviewResponse.dataset_id == dataset_id)
    done: Counter = Counter()
    done["suggestions"] = _rewrite(session, Suggestion, ("rationale", "dimension_logprobs"), _of_dataset(dataset_id),
                                   flat)
    done["reviews"] = _rewrite(session, Review, ("rationale",), Review.dataset_id == dataset_id, flat)
    done["responses"] = _rewrite(session, ReviewResponse, ("rationale",), ReviewResponse.dataset_id == dataset_id,
                                 flat)
    done["review_revisions"] = _rewrite(session, ReviewRevision, ("before", "after"),
                                        ReviewRevision.review_id.in_(reviews), flat)
    done["response_revisions"] = _rewrite(session, ResponseRevision, ("before", "after"),
                                          ResponseRevision.response_id.in_(responses), nested)
    session.flush()
    session.expire_all()
    return done

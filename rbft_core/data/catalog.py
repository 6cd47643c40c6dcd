"""Read-only views of what is in the database, shaped for the CLI and the UI."""

from __future__ import annotations

from typing import Any, Optional

from db import queries
from db.engine import init_db, session_scope

__all__ = ["dataset_overview"]


def dataset_overview(db_url: Optional[str] = None) -> list[dict[str, Any]]:
    """One row per dataset: labels, rationale dimensions, totals per split and per review status, unreadable
    videos."""

    init_db(db_url)
    rows = []
    with session_scope(db_url) as session:
        for ds in queries.list_datasets(session):
            counts = queries.dataset_counts(session, ds.id)
            rows.append(
                {
                    "name": ds.name,
                    "preset": ds.preset,
                    "labels": list(ds.labels or []),
                    "dimensions": [d["name"] for d in ds.dimensions or []],
                    "total": counts["total"],
                    "train": counts["splits"].get("train", 0),
                    "test": counts["splits"].get("test", 0),
                    "label_counts": counts["labels"],
                    **{s: counts["review_status"].get(s, 0) for s in ("pending", "draft", "accepted", "rejected")},
                    "unreadable": counts["unreadable"],
                }
            )
    return rows

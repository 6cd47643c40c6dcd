"""The review quality report of a dataset, from the database: its reviews and responses as the plain records
of ``rbft_core.review.quality`` (``ItemRecord`` / ``Response`` / ``Suggestion``), then ``quality_report``.

- The suggestion of an item is the one its review points at; its ``label`` is the one label its conclusion names
  (``models.rationale.named_labels``), None when it names none or several.
- The final text is the review's effective text (a field left unset is the suggestion's) and the final label the
  review's, for accepted items only: pending, ready and rejected items have no final text that trains.
- Responses are the submitted ones (accepted or rejected) of every reviewer, with the text they stood behind, the
  model and prompt of the suggestion they were shown and the time from showing the item to saving it. A response
  is "accepted unchanged" when it was accepted with the suggestion's text and the video's own label.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from db import queries
from db.engine import session_scope
from db.quality_queries import quality_rows
from rbft_core.models.prompts import dataset_preset
from rbft_core.models.rationale import named_labels
from rbft_core.review.quality import ItemRecord, Response, Suggestion, export_responses, normalise_text
from rbft_core.review.quality_report import quality_report

__all__ = ["quality_items", "dataset_quality"]


def _time(value: Any) -> Optional[datetime]:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)  # SQLite returns naive UTC times


def _suggested(item: dict[str, Any], dim: str) -> str:
    return (item["s_rationale"] or {}).get(dim) or ""


def _suggestion(row: dict[str, Any], labels: list[str], names: tuple[str, ...]) -> Optional[Suggestion]:
    if row["sid"] is None:
        return None
    named = named_labels(row["conclusion"] or "", labels)
    return Suggestion(dimensions={d: _suggested(row, d) for d in names}, conclusion=row["conclusion"] or "",
                      label=named[0] if len(named) == 1 else None, model_id=row["model_id"] or "",
                      prompt_version=row["prompt_version"] or "")


def _unchanged(row: dict[str, Any], item: dict[str, Any], names: tuple[str, ...]) -> bool:
    text = row["rationale"] or {}
    same = all(normalise_text(text.get(d) or "") == normalise_text(_suggested(item, d)) for d in names)
    return row["status"] == "accepted" and same and row["label"] == item["video_label"]


def quality_items(db_url: Optional[str], dataset: str) -> tuple[list[ItemRecord], tuple[str, ...]]:
    """One ``ItemRecord`` per reviewed video of ``dataset`` (the module says what each part holds), and the
    dataset's dimension names."""
    with session_scope(db_url) as s:
        ds = queries.get_dataset(s, dataset)
        labels, rows, names = list(ds.labels or []), quality_rows(s, ds.id), dataset_preset(ds).dimension_names
    answers: dict[int, list[dict[str, Any]]] = {}
    for row in rows["responses"]:
        answers.setdefault(row["video_id"], []).append(row)
    out = []
    for item in rows["items"]:
        final = item["status"] == "accepted"
        responses = [Response(item_id=item["external_id"], reviewer=r["reviewer"], label=r["label"],
                              dimensions={d: (r["rationale"] or {}).get(d) for d in names},
                              shown_at=_time(r["shown_at"]), saved_at=_time(r["saved_at"]),
                              model_id=r["model_id"] or "", prompt_version=r["prompt_version"] or "",
                              accepted_unchanged=_unchanged(r, item, names))
                     for r in answers.get(item["video_id"], [])]
        stored = item["rationale"] or {}
        out.append(ItemRecord(
            item_id=item["external_id"], suggestion=_suggestion(item, labels, names), responses=responses,
            final_dimensions={d: stored[d] if stored.get(d) is not None else _suggested(item, d) for d in names}
            if final else None, final_label=(item["label"] or item["video_label"]) if final else None))
    return out, names


def dataset_quality(db_url: Optional[str], dataset: str, *, with_responses: bool = False) -> dict[str, Any]:
    """The quality report of ``dataset`` (``quality_report``'s dict, plus ``dataset``); ``with_responses`` adds
    ``responses``, the exported rows the figures were computed from (``export_responses``)."""
    items, names = quality_items(db_url, dataset)
    report = {"dataset": dataset, **quality_report(items, names)}
    if with_responses:
        report["responses"] = export_responses(items, names)
    return report

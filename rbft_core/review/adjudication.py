"""Adjudication: the final text of an item that several reviewers answered.

The adjudication queue is the items whose reviews are ``ready`` (all k responses submitted), doubt first, through
the same index as the review queue. The adjudicator sees the k responses side by side, each with its word diff
against the model's suggestion, starts from one of them (or the suggestion) for every field or one field at a
time, edits, and finalises: that writes the review (accepted or rejected, with a revision naming the responses),
the only text that trains. Adjudicating an item with fewer than k submitted responses is refused with the count
and the fix; who may adjudicate is ``rbft_core.auth.can_adjudicate``'s call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from db import queries
from db import response_queries as rsq
from db.engine import session_scope
from db.review_queries import SUBMITTED
from rbft_core.auth import can_adjudicate, require_role
from rbft_core.errors import ConfigError, DataError
from rbft_core.review import workspace
from rbft_core.review.diffs import field_diff
from rbft_core.review.items import ReviewFilter, ReviewItem, reviewer_name

__all__ = ["AdjudicationItem", "SOURCE_SUGGESTION", "queue", "load", "neighbour", "queue_status", "pick", "finalise",
           "settings", "change_settings"]

SOURCE_SUGGESTION = "suggestion"


@dataclass
class AdjudicationItem:
    """The final review (``item``: its current text) and every response to it, each with ``diffs`` by dimension
    (word pieces against the suggestion) and ``seconds`` (shown to saved, None when unknown)."""

    item: ReviewItem
    responses: list[dict[str, Any]]
    k: int

    @property
    def submitted(self) -> list[dict[str, Any]]:
        return [r for r in self.responses if r["status"] in SUBMITTED]


def queue(dataset: str) -> ReviewFilter:
    """The adjudication queue of ``dataset``: its ``ready`` items, most doubtful first."""
    return ReviewFilter(dataset=dataset, status="ready")


def neighbour(db_url: Optional[str], dataset: str, review_id: Optional[int], *, backwards: bool = False
              ) -> Optional[int]:
    return workspace.neighbour(db_url, queue(dataset), review_id, backwards=backwards)


def queue_status(db_url: Optional[str], dataset: str, review_id: Optional[int]) -> dict[str, Any]:
    return workspace.queue_status(db_url, queue(dataset), review_id)


def _seconds(response: dict[str, Any]) -> Optional[float]:
    shown, saved = rsq.parse_time(response.get("shown_at")), rsq.parse_time(response.get("saved_at"))
    return (saved - shown).total_seconds() if shown and saved else None


def load(db_url: Optional[str], review_id: int) -> AdjudicationItem:
    item = workspace.load_item(db_url, review_id)
    with session_scope(db_url) as s:
        responses = rsq.item_responses(s, item.video_id)
    suggested = item.suggestion or {}
    for response in responses:
        response["diffs"] = {dim: field_diff(suggested.get(dim), response["rationale"].get(dim))
                             for dim in item.names}
        response["seconds"] = _seconds(response)
    return AdjudicationItem(item=item, responses=responses, k=item.reviews_per_item)


def pick(adj: AdjudicationItem, source: str, fields: dict[str, str], dimension: str = "") -> dict[str, str]:
    """``fields`` with the text of ``source`` (a reviewer's name or "suggestion") put in: every dimension, or only
    ``dimension``. The result is what the adjudicator edits further (merging) before finalising."""
    names = adj.item.names
    if source == SOURCE_SUGGESTION:
        text = {dim: (adj.item.suggestion or {}).get(dim) or "" for dim in names}
    else:
        found = [r for r in adj.responses if r["reviewer"] == source]
        if not found:
            names = ", ".join(r["reviewer"] for r in adj.responses) or "none yet"
            raise ConfigError(f"no response by {source!r} to {adj.item.external_id} (responses: {names}); pick one "
                              "of them or the suggestion")
        text = {dim: found[0]["rationale"].get(dim) or "" for dim in names}
    if dimension and dimension not in names:
        raise ConfigError(f"field must be one of {', '.join(names)} (or empty for all), got {dimension!r}")
    return {dim: text[dim] if not dimension or dim == dimension else fields.get(dim) or "" for dim in names}


def finalise(db_url: Optional[str], review_id: int, *, expected_version: int, adjudicator: Optional[str],
             action: str, fields: dict[str, Optional[str]], label: Optional[str], picked: str = "",
             login: Optional[str] = None) -> None:
    """Write the final review from the responses: ``action`` "accept" (the text in ``fields``) or "reject".

    ``login``: the signed-in user whose role is checked (None: no sign-in, a local app). Refused (``DataError``)
    when the item has fewer submitted responses than its dataset asks for."""
    if action not in ("accept", "reject"):
        raise ConfigError(f"adjudication finalises with accept or reject, got {action!r}")
    adj = load(db_url, review_id)
    item, done = adj.item, adj.submitted
    who = reviewer_name(adjudicator)
    with session_scope(db_url) as s:
        assigned = rsq.review_settings(s, queries.get_dataset(s, item.dataset).id)["adjudicators"]
    can_adjudicate(db_url, login, item.dataset, assigned)
    if len(done) < adj.k:
        missing = adj.k - len(done)
        raise DataError(
            f"{item.external_id} has {len(done)} of {adj.k} responses (dataset {item.dataset} asks for {adj.k} "
            f"reviews per item), so it cannot be adjudicated yet: wait until {missing} more reviewer"
            f"{'s' if missing > 1 else ''} submitted, or let an admin lower the reviews per item "
            f"(`rbft review-settings {item.dataset} --k {max(len(done), 1)}`)")
    changes = workspace.prepare_save(item, "edit" if action == "accept" else "reject", fields, label)
    names = ", ".join(f"{r['reviewer']} ({r['status']})" for r in done)
    note = f"adjudicated from {len(done)} responses: {names}" + (f"; started from {picked}" if picked else "")
    workspace.store(db_url, item, expected_version, who, changes, note=note)


def settings(db_url: Optional[str], dataset: str) -> dict[str, Any]:
    """``{"reviews_per_item": k, "adjudicators": [...]}`` of ``dataset``."""
    with session_scope(db_url) as s:
        return rsq.review_settings(s, queries.get_dataset(s, dataset).id)


def change_settings(db_url: Optional[str], dataset: str, admin: Optional[str], *,
                    reviews_per_item: Optional[int] = None, adjudicators: Optional[list[str]] = None,
                    login: Optional[str] = None) -> dict[str, Any]:
    """An admin sets k and / or assigns adjudication (``admin`` signs the revisions of items it moves; ``login``
    is the signed-in user whose role is checked, None without sign-in)."""
    require_role(db_url, login, "admin", f"changing the review settings of {dataset}")
    with session_scope(db_url) as s:
        return rsq.set_review_settings(s, queries.get_dataset(s, dataset).id, reviewer_name(admin),
                                       reviews_per_item=reviews_per_item, adjudicators=adjudicators)

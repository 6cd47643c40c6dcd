"""The reviewer's side of the review page, whatever the dataset's reviews per item (k).

k = 1 (every dataset until an admin raises it): exactly the workspace's saves, the review is the final text; the
save is also kept as the reviewer's response, with the time from showing the item to saving it.

k > 1: each reviewer answers independently. The page shows the reviewer their own response (else the model's
text), never another reviewer's; a save writes only their response (``db.response_queries.save_response``: one
per video and reviewer, a second save edits it under compare-and-set). The item leaves that reviewer's queue once
they submitted (accept / edit / reject); with k submitted responses it moves to ``ready`` and waits for the
adjudicator (``rbft_core.review.adjudication``), whose text alone trains.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional

from db import response_queries as rsq
from db.engine import session_scope
from rbft_core.errors import ConflictError
from rbft_core.review import workspace
from rbft_core.review.diffs import normalise
from rbft_core.review.items import Action, ReviewItem, reviewer_name

__all__ = ["load", "save", "autosave", "own_response"]

_FINAL = ("accepted", "rejected")


def own_response(db_url: Optional[str], video_id: int, reviewer: str) -> Optional[dict[str, Any]]:
    with session_scope(db_url) as s:
        return rsq.response_of(s, video_id, reviewer)


def _overlay(item: ReviewItem, mine: Optional[dict[str, Any]], submitted: int) -> ReviewItem:
    """The item as this reviewer sees it: their response's text, label, status and version (0: none yet)."""
    suggested = {dim: (item.suggestion or {}).get(dim) or "" for dim in item.names}
    text = (mine or {}).get("rationale") or {}
    fields = {dim: text[dim] if text.get(dim) is not None else suggested[dim] for dim in item.names}
    return replace(item, version=mine["version"] if mine else 0, status=mine["status"] if mine else "pending",
                   reviewer=mine["reviewer"] if mine else None, updated_at=mine["saved_at"] if mine else None,
                   fields=fields, label=mine["label"] if mine else item.video_label, stored=dict(fields),
                   edited=any(normalise(fields[d]) != normalise(suggested[d]) for d in item.names),
                   submitted=submitted)


def load(db_url: Optional[str], review_id: int, reviewer: Optional[str]) -> ReviewItem:
    """The item for ``reviewer``: the review itself where k = 1, else their own response over it."""
    item = workspace.load_item(db_url, review_id)
    if item.reviews_per_item == 1:
        return item
    with session_scope(db_url) as s:
        mine = rsq.response_of(s, item.video_id, reviewer_name(reviewer))
        submitted = rsq.submitted_count(s, item.video_id)
    return _overlay(item, mine, submitted)


def _answer(db_url: Optional[str], item: ReviewItem, expected_version: int, reviewer: str, changes: dict[str, Any],
            shown_at: Optional[str]) -> None:
    if item.final_status in _FINAL:
        raise ConflictError(f"Not saved: {item.external_id} was finalised ({item.final_status}) by {item.reviewer} at "
                            f"{item.updated_at}; responses to it are closed. Your text is still in the form: copy "
                            "it if you need it, then open the next item (Alt+N).")
    text, label = workspace.effective_text(item, changes)
    with session_scope(db_url) as s:
        rsq.save_response(s, video_id=item.video_id, reviewer=reviewer, expected_version=expected_version,
                          rationale=text, label=label, status=changes["status"],
                          suggestion_id=(item.suggestion or {}).get("id"), shown_at=shown_at,
                          reviews_per_item=item.reviews_per_item)


def save(db_url: Optional[str], review_id: int, *, expected_version: int, reviewer: Optional[str], action: Action,
         fields: dict[str, Optional[str]], label: Optional[str], shown_at: Optional[str] = None) -> None:
    """Accept as is / save edit / reject / draft: the review (k = 1) or the reviewer's own response (k > 1)."""
    item = workspace.load_item(db_url, review_id)
    if item.reviews_per_item == 1:
        workspace.save(db_url, review_id, expected_version=expected_version, reviewer=reviewer, action=action,
                       fields=fields, label=label, shown_at=shown_at)
        return
    _answer(db_url, item, expected_version, reviewer_name(reviewer),
            workspace.prepare_save(item, action, fields, label), shown_at)


def autosave(db_url: Optional[str], review_id: int, *, expected_version: int, reviewer: Optional[str],
             fields: dict[str, Optional[str]], label: Optional[str], shown_at: Optional[str] = None) -> bool:
    """Moving on: a draft when the typed text or label differs from what is stored; True when something was saved.
    k > 1: the reviewer's response becomes a draft (a submitted one no longer counts until submitted again)."""
    item = workspace.load_item(db_url, review_id)
    if item.reviews_per_item == 1:
        return workspace.autosave(db_url, review_id, expected_version=expected_version, reviewer=reviewer,
                                  fields=fields, label=label, shown_at=shown_at)
    who = reviewer_name(reviewer)
    mine = own_response(db_url, item.video_id, who)
    shown = _overlay(item, mine, 0)
    changes = workspace.prepare_save(item, "draft", fields, label)
    text, typed_label = workspace.effective_text(item, changes)
    if typed_label == shown.label and all(text[d] == normalise(shown.fields[d]) for d in item.names):
        return False
    _answer(db_url, item, expected_version, who, changes, shown_at)
    return True

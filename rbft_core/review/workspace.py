"""The review workspace's logic: the doubt-first queue, one item, saves with an audit trail, bulk actions.

A reviewer sees the model's suggestion (immutable) beside the human version (the review). Saving
stores a field only where it differs from the suggestion (None means "the suggestion's text"), so
"edited" is always "differs from the model". Every save names its reviewer and the version it edited;
a save over a newer version is refused (``ConflictError``) and the refused text is kept in the history.
The UI (ui/review_tab.py) calls only this module; the media (player, frame strip) is in review_media.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional

from db import queries
from db import response_queries as rsq
from db import review_queries as rq
from db.engine import session_scope
from db.review_queries import QueueFilter
from rbft_core.errors import ConfigError, ConflictError, DataError
from rbft_core.models.prompts import dimensions_from_records
from rbft_core.review import media as review_media
from rbft_core.review.diffs import field_diff, normalise as _normalise
from rbft_core.review.items import (
    ACTION_STATUS,
    ACTIONS,
    EDITED_FILTERS,
    FLAG_FILTERS,
    MAX_FIELD_CHARS,
    STATUS_FILTERS,
    Action,
    ReviewFilter,
    ReviewItem,
    reviewer_name,
)

__all__ = [
    "MAX_FIELD_CHARS", "STATUS_FILTERS", "EDITED_FILTERS", "FLAG_FILTERS", "ACTIONS", "ReviewFilter", "ReviewItem",
    "load_item", "queue_place", "queue_status", "neighbour", "warm_next", "find_item", "dataset_names", "review_counts", "history", "save", "autosave",
    "bulk_accept_untouched", "bulk_exclude", "adopt_newest", "field_diff", "dataset_labels",
    "prepare_save", "effective_text", "store", "ACTION_STATUS",
]

def _session(db_url: Optional[str]):
    return session_scope(db_url)


def _dataset_id(session, name: str) -> int:
    return queries.get_dataset(session, name).id


def _queue(session, flt: "ReviewFilter") -> QueueFilter:
    return flt.query(queries.get_dataset(session, flt.dataset))


def dataset_names(db_url: Optional[str]) -> list[str]:
    with _session(db_url) as s:
        return [d.name for d in queries.list_datasets(s)]


def dataset_labels(db_url: Optional[str], dataset: str) -> list[str]:
    with _session(db_url) as s:
        return list(queries.get_dataset(s, dataset).labels or [])


def _item(row: dict[str, Any], newer: Optional[int]) -> ReviewItem:
    review, video, suggestion = row["review"], row["video"], row["suggestion"]
    dims = dimensions_from_records(row["dimensions"], f"dataset {row['dataset']!r}")
    names = tuple(d.name for d in dims)
    suggested = {dim: (suggestion or {}).get(dim) or "" for dim in names}
    stored = {dim: review.get(dim) for dim in names}
    return ReviewItem(
        review_id=review["id"], version=review["version"], status=review["status"], excluded=bool(review["excluded"]),
        reviewer=review["reviewer"], updated_at=review["updated_at"], dataset=row["dataset"], labels=row["labels"],
        video_id=video["id"], external_id=video["external_id"], split=video["split"], video_label=video["label"],
        label=review["label"] or video["label"], video_path=video["path"], sha256=video["sha256"],
        fields={dim: stored[dim] if stored[dim] is not None else suggested[dim] for dim in names},
        suggestion=suggestion, edited=row["edited"], dimensions=dims, stored=stored, reviews_per_item=row["reviews_per_item"],
        final_status=review["status"], newer_suggestion_id=newer if suggestion is None or (newer and newer != suggestion["id"]) else None,
    )


def load_item(db_url: Optional[str], review_id: int) -> ReviewItem:
    """One review with its video and suggestion."""

    with _session(db_url) as s:
        row = rq.review_item(s, review_id)
        return _item(row, rq.newest_suggestion_id(s, row["video"]["id"]))


def queue_place(db_url: Optional[str], flt: ReviewFilter, review_id: Optional[int]) -> tuple[int, int]:
    """(place of ``review_id`` in the queue, 0 when not in it; queue length)."""

    with _session(db_url) as s:
        return rq.queue_place(s, _queue(s, flt), review_id)


def queue_status(db_url: Optional[str], flt: ReviewFilter, review_id: Optional[int]) -> dict[str, Any]:
    """The open item's place, the queue length and the dataset's review counts, in one session.

    Cheap at any size (counters kept on write, index seeks), so the page can show them with the item itself
    instead of in a follow-up event: ``{"place": int, "size": int, "counts": review_counts(...)}``.
    """

    with _session(db_url) as s:
        query = _queue(s, flt)
        place, size = rq.queue_place(s, query, review_id)
        return {"place": place, "size": size, "counts": rq.review_counts(s, query.dataset_id)}


def neighbour(db_url: Optional[str], flt: ReviewFilter, review_id: Optional[int], *,
              backwards: bool = False) -> Optional[int]:
    """The next (previous) review in the queue after ``review_id``, wrapping around; None when empty."""

    with _session(db_url) as s:
        query = _queue(s, flt)
        found = rq.queue_neighbour(s, query, review_id, backwards=backwards)
        if found is None and review_id is not None:  # past the end: start again (skipped items come back)
            found = rq.queue_neighbour(s, query, None, backwards=backwards)
    return found


def warm_next(db_url: Optional[str], flt: ReviewFilter, review_id: int) -> None:
    """Prepare the next item's player file and frames in the background, while the reviewer reads this one."""

    def work() -> None:
        target = neighbour(db_url, flt, review_id)
        if target is not None and target != review_id:
            item = load_item(db_url, target)
            review_media.item_media(item.video_path, item.sha256, (item.suggestion or {}).get("gen_params"))

    review_media.prefetch(work)


def find_item(db_url: Optional[str], dataset: str, ref: str) -> int:
    """The review of the video called ``ref`` (external id, or database id) in ``dataset``."""

    ref = (ref or "").strip()
    if not ref:
        raise ConfigError("type a video id (as shown in the header, e.g. clip_007 or 42) and press Enter")
    with _session(db_url) as s:
        found = rq.find_review(s, _dataset_id(s, dataset), ref)
    if found is None:
        raise DataError(f"no reviewable video {ref!r} in dataset {dataset}; use an id shown in the header "
                        "(videos without a generated rationale have nothing to review yet)")
    return found


def review_counts(db_url: Optional[str], dataset: str) -> dict[str, int]:
    with _session(db_url) as s:
        return rq.review_counts(s, _dataset_id(s, dataset))


_NOT_CHANGES = ("reviewer", "version", "updated_at", "note", "refused")  # in a revision, but not the review's text


def history(db_url: Optional[str], review_id: int) -> list[dict[str, Any]]:
    """Every revision, newest first: who, when, and each changed value before -> after (refused saves too): the
    dimensions the revision recorded (the dataset's, in order), then label, status, excluded and suggestion."""

    with _session(db_url) as s:
        rows = queries.review_history(s, review_id)
        out = []
        for rev in rows:
            before, after = rev.before or {}, rev.after or {}
            changes = [(n, before.get(n), after.get(n)) for n in after
                       if n not in _NOT_CHANGES and before.get(n) != after.get(n)]
            out.append({"version": rev.version, "reviewer": rev.reviewer, "when": queries.iso_time(rev.created_at),
                        "refused": after.get("refused"), "note": after.get("note"), "changes": changes})
    return out[::-1]


# ------------------------------------------------------------------------------------------------ saving
def _reviewer(name: Optional[str]) -> str:
    return reviewer_name(name)


def _check_shown(item: ReviewItem, fields: dict[str, Optional[str]]) -> None:
    """The page must send exactly the dataset's dimensions: other names mean they changed since it opened the item
    (a rename, a new definition), and a text typed for one dimension must never land in another."""
    sent, names = set(fields), set(item.names)
    if sent != names:
        raise ConfigError(f"the page sent the dimensions {', '.join(sorted(sent)) or 'none'}, but dataset "
                          f"{item.dataset} has {', '.join(item.names)} (they changed since the item was opened); "
                          "nothing was saved: reopen the item (Alt+J; your typing is kept in this browser) and save "
                          "again")


def _changes(item: ReviewItem, fields: dict[str, Optional[str]], label: Optional[str]) -> dict[str, Any]:
    """Review columns for these edits: None where a field equals the suggestion (or the label the video's)."""
    _check_shown(item, fields)
    suggested = (item.suggestion or {})
    changes: dict[str, Any] = {}
    for dim in item.names:
        value = _normalise(fields.get(dim))
        if value == _normalise(suggested.get(dim)):
            changes[dim] = None
            continue
        if len(value) > MAX_FIELD_CHARS:
            raise ConfigError(f"{dim} is {len(value):,} characters; the limit is {MAX_FIELD_CHARS:,} per field. "
                              "Shorten it and save again (nothing was saved).")
        changes[dim] = value
    label = (label or "").strip() or item.video_label
    if item.labels and label not in item.labels:
        raise ConfigError(f"label {label!r} is not one of {', '.join(item.labels)}; pick one from the list")
    changes["label"] = None if label == item.video_label else label
    return changes


def store(db_url: Optional[str], item: ReviewItem, expected_version: int, reviewer: str, changes: dict,
          note: Optional[str] = None, *, mirror: Optional[dict[str, Any]] = None) -> None:
    """Save ``changes`` to the review (a refused save is kept in its history). ``mirror`` ({"shown_at": ...}): one
    reviewer per item, the same text is kept as that reviewer's response too (time per item, quality figures)."""
    try:
        with _session(db_url) as s:
            review = queries.save_review(s, item.review_id, expected_version=expected_version, reviewer=reviewer,
                                         note=note, **changes)
            if mirror is not None:
                rsq.mirror_response(s, review, reviewer, *effective_text(item, changes), mirror.get("shown_at"))
    except ConflictError as exc:
        current = getattr(exc, "current", {}) or {}
        with _session(db_url) as s:
            rq.record_refused_save(s, item.review_id, reviewer, expected_version, current,
                                   getattr(exc, "attempted", changes))
        raise ConflictError(_conflict_message(item, expected_version, current)) from exc


def effective_text(item: ReviewItem, changes: dict[str, Any]) -> tuple[dict[str, str], str]:
    """The full text and label that ``changes`` (None: the suggestion's text, the video's label) stand for."""
    suggested = item.suggestion or {}
    text = {dim: changes[dim] if changes.get(dim) is not None else _normalise(suggested.get(dim)) for dim in item.names}
    return text, changes.get("label") or item.video_label


def _conflict_message(item: ReviewItem, expected_version: int, current: dict[str, Any]) -> str:
    """Who saved first and what they saved (None fields mean "the model's text")."""
    theirs = "; ".join(f"{dim}: {current[dim]!r}" for dim in item.names if current.get(dim) is not None)
    label = current.get("label") or item.video_label
    return (f"Not saved: {item.external_id} was saved by {current.get('reviewer') or 'someone'} at "
            f"{current.get('updated_at') or 'an unknown time'} (now version {current.get('version')}; you edited "
            f"version {expected_version}). Their version: status {current.get('status')}, label {label}; "
            f"{theirs or 'every dimension is the model text'}{'; other fields: the model text' if theirs else ''}. "
            "Your version is kept in the history panel (marked refused): reopen the item (Alt+J), "
            "re-apply your edit and save again.")


def prepare_save(item: ReviewItem, action: str, fields: dict[str, Optional[str]], label: Optional[str]) -> dict:
    """The review columns a save with ``action`` writes (status included), checked: limits, label set, and "accept"
    only when the text is the suggestion's as is (else "edit")."""
    if action not in ACTIONS:
        raise ConfigError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    changes = _changes(item, fields, label)
    changed = [dim for dim in item.names if changes[dim] is not None]
    if action == "accept" and changed:
        raise ConfigError(f"the text differs from the suggestion in {', '.join(changed)}, so it is not "
                          "'as is': press Save edit (Alt+S) to keep your text, or Revert (Alt+Z) to restore "
                          "the suggestion")
    return {**changes, "status": ACTION_STATUS[action]}


def _one_reviewer(item: ReviewItem) -> None:
    if item.reviews_per_item > 1:
        raise ConfigError(f"dataset {item.dataset} asks for {item.reviews_per_item} reviews per item: a reviewer's "
                          "save is their own response (rbft_core.review.responses), the final text the adjudicator's")


def save(db_url: Optional[str], review_id: int, *, expected_version: int, reviewer: Optional[str], action: Action,
         fields: dict[str, Optional[str]], label: Optional[str], shown_at: Optional[str] = None) -> None:
    """Save the reviewer's fields and label with the status ``action`` implies (one reviewer per item).

    "accept" accepts the suggestion as is and is refused when the fields differ from it (use "edit").
    ``shown_at``: when the item was shown to this reviewer (their response records the time it took).
    """
    item = load_item(db_url, review_id)
    _one_reviewer(item)
    store(db_url, item, expected_version, _reviewer(reviewer), prepare_save(item, action, fields, label),
          mirror={"shown_at": shown_at})


def _seen_at(db_url: Optional[str], item: ReviewItem, version: int) -> Optional[dict[str, str]]:
    """The text and label the reviewer was shown at ``version`` (None when the history does not record it)."""
    with _session(db_url) as s:
        snap = rq.snapshot_at_version(s, item.review_id, version)
        if snap is None:
            return None
        model = rq.suggestion_texts(s, snap.get("suggestion_id"))
    seen = {dim: snap.get(dim) if snap.get(dim) is not None else model.get(dim) for dim in item.names}
    return {**{dim: _normalise(text) for dim, text in seen.items()}, "label": snap.get("label") or item.video_label}


def _untouched_since(db_url: Optional[str], item: ReviewItem, expected_version: int,
                     fields: dict[str, Optional[str]], label: Optional[str]) -> bool:
    """True when what the page sends is exactly what it was shown at ``expected_version`` (nothing was typed)."""
    seen = _seen_at(db_url, item, expected_version)
    if seen is None:
        return False
    typed_label = (label or "").strip() or item.video_label
    return typed_label == seen["label"] and all(_normalise(fields.get(dim)) == seen[dim] for dim in item.names)


def autosave(db_url: Optional[str], review_id: int, *, expected_version: int, reviewer: Optional[str],
             fields: dict[str, Optional[str]], label: Optional[str], shown_at: Optional[str] = None) -> bool:
    """Save a draft when the fields or label differ from the stored version; True when something was saved.

    Moving on from an item someone else saved meanwhile saves nothing (and records no refused revision) when
    the reviewer typed nothing: the page still holds the text of ``expected_version``, which is not an edit.
    """
    item = load_item(db_url, review_id)
    _one_reviewer(item)
    if expected_version != item.version and _untouched_since(db_url, item, expected_version, fields, label):
        return False
    changes = _changes(item, fields, label)
    stored = {**item.stored, "label": None if item.label == item.video_label else item.label}
    if all(changes[name] == stored[name] for name in (*item.names, "label")):
        return False
    store(db_url, item, expected_version, _reviewer(reviewer), {**changes, "status": "draft"},
          mirror={"shown_at": shown_at})
    return True


def bulk_accept_untouched(db_url: Optional[str], flt: ReviewFilter, reviewer: Optional[str]) -> int:
    """Accept every pending or draft item in the queue whose text and label are the model's; returns the count.
    Refused where several reviewers answer each item: there the adjudicator writes every final text."""

    with _session(db_url) as s:
        dataset = queries.get_dataset(s, flt.dataset)
        if dataset.reviews_per_item > 1:
            raise ConfigError(f"dataset {dataset.name} asks for {dataset.reviews_per_item} reviews per item, so "
                              "nothing is accepted in bulk: each item is finalised in the Adjudicate tab")
        return rq.bulk_update(s, replace(flt, reviewer="").query(dataset), _reviewer(reviewer), untouched_only=True,
                              only_statuses=("pending", "draft"), status="accepted")


def bulk_exclude(db_url: Optional[str], flt: ReviewFilter, reviewer: Optional[str], excluded: bool = True) -> int:
    """Exclude (or include again) every item in the queue from training; returns the count changed."""

    with _session(db_url) as s:
        return rq.bulk_update(s, _queue(s, replace(flt, reviewer="")), _reviewer(reviewer), excluded=excluded)


_PARSE_RANK = {"failed": 0, "partial": 1, "ok": 2}


def adopt_newest(db_url: Optional[str], review_id: int, reviewer: Optional[str]) -> str:
    """After a regeneration, point the review at its video's newest suggestion.

    Returns "adopted", "none" (nothing newer) or "worse" (the newer one parsed worse than the current
    one and is not adopted: a failed rerun never hides a good rationale, as in ``add_suggestion``).

    A regeneration never changes what a reviewer decided: for a draft, accepted or rejected review the
    effective text stays exactly as it was (a field that meant "the model's text" now holds that text), status
    and label are untouched, and the revision says why. Only a pending review takes the new text.
    """

    item = load_item(db_url, review_id)
    if item.newer_suggestion_id is None:
        return "none"
    with _session(db_url) as s:
        newer = rq.suggestion_parse_status(s, item.newer_suggestion_id)
    current = (item.suggestion or {}).get("parse_status")
    if current is not None and _PARSE_RANK.get(newer, 0) < _PARSE_RANK.get(current, 0):
        return "worse"
    changes, note = {"suggestion_id": item.newer_suggestion_id}, None
    if item.status != "pending":
        with _session(db_url) as s:
            newest = rq.suggestion_texts(s, item.newer_suggestion_id)
        for dim in item.names:
            kept = _normalise(item.fields[dim])
            changes[dim] = None if kept == _normalise(newest.get(dim)) else kept
        note = (f"regenerated: the new suggestion {item.newer_suggestion_id} is shown beside the review; the "
                f"{item.status} text is kept as it was (fields that were the model's text now hold that text)")
    store(db_url, item, item.version, _reviewer(reviewer), changes, note=note)
    return "adopted"

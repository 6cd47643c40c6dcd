"""HTML for the review page. Every piece of user or model text goes through ``html.escape``: a rationale
that contains markup or script is shown as text, never run."""

from __future__ import annotations

from html import escape
from typing import Any, Optional, Sequence

from rbft_core.review.flags import FLAG_NAMES
from rbft_core.review.diffs import field_diff
from rbft_core.review.items import ReviewItem

__all__ = ["header_html", "place_html", "suggestion_html", "status_html", "diff_html", "history_html", "counts_html",
           "empty_html", "notice_html", "job_html"]

_CLIP = 300  # characters of a value shown in the history table


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def header_html(item: ReviewItem, frame_times_s: Sequence[float] = ()) -> str:
    # data-*: which review and version the page shows and the dimensions its boxes hold, in order, for the browser's
    # unsaved-typing keeper (ui/typing_keeper.py), and the exact times of the frames the model sees, for the
    # player's frame step (ui/player.py)
    frames = " ".join(f"{float(t):.6f}" for t in frame_times_s)
    opened = (f'data-review="{item.review_id}" data-version="{item.version}" data-dataset="{_e(item.dataset)}" '
              f'data-video="{_e(item.external_id)}" data-dims="{_e(" ".join(item.names))}" data-frames="{frames}"')
    return (f'<div class="rv-header" {opened}>{_e(item.dataset)} › <b>Video {_e(item.video_id)}</b> · <code>{_e(item.external_id)}</code> · '
            f'{_e(item.split)} · label <b>{_e(item.video_label)}</b></div>')


def empty_html(dataset: str) -> str:
    return (f'<div class="rv-header">{_e(dataset)} › <b>Nothing to review in this filter</b>. Change the filter, '
            'or generate rationales from the Datasets tab.</div>')


def place_html(position: int, size: int) -> str:
    where = (f"{position} of {size} in this filter" if position
             else f"not in this filter ({size} items are)" if size else "not in this filter (it is empty now)")
    return f'<div class="rv-place">{_e(where)}</div>'


def notice_html(text: str) -> str:
    return f'<div class="rv-notice">⚠ {_e(text)}</div>' if text else ""


def suggestion_html(item: ReviewItem) -> str:
    sug = item.suggestion
    if sug is None:
        return '<div class="rv-suggestion"><i>No suggestion: the model has not described this video yet.</i></div>'
    logprob = sug.get("mean_logprob")
    meta = [f"model <code>{_e(sug.get('model_id'))}</code>", f"prompt {_e(sug.get('prompt_version'))}",
            f"label hint {'on' if sug.get('label_hint') else 'off'}", f"parse {_e(sug.get('parse_status'))}",
            f"{logprob:.2f}/token" if isinstance(logprob, (int, float)) else "no likelihood"]
    rows = "".join(f'<dt>{dim}</dt><dd class="rv-sug-{dim}">{_e(sug.get(dim)) or "<i>(empty)</i>"}</dd>'
                   for dim in item.names)
    conclusion = f'<dt>conclusion</dt><dd>{_e(sug.get("conclusion")) or "<i>(none)</i>"}</dd>'
    newer = ('<div class="rv-notice">This video has a newer suggestion than the one shown (a regeneration '
             'still finishing, or one that parsed worse and was not applied).</div>' if item.newer_suggestion_id else "")
    return (f'<div class="rv-suggestion"><div class="rv-meta">{" · ".join(meta)}</div>'
            f'<div class="rv-doubt">Why it is here: {_why(sug)}</div>'
            f'<dl>{rows}{conclusion}</dl>{newer}</div>')


def _why(sug: dict[str, Any]) -> str:
    """Each automatic check that fired, with its reason (``rbft_core.review.flags``); else the doubt's reason (a
    failed parse, the likelihood). The doubt reason of a flagged suggestion is its flags' reasons: not repeated."""
    flags = [f for f in sug.get("flags") or [] if isinstance(f, dict)]
    reason = _e(sug.get("doubt_reason")) or "—"
    if not flags:
        return reason
    lead = reason if sug.get("parse_status") == "failed" else ""
    items = "".join(f'<li class="rv-flag rv-flag-{_e(f.get("code"))}"><b>⚑ {_e(FLAG_NAMES.get(f.get("code"), f.get("code")))}'
                    f'</b>: {_e(f.get("reason"))}</li>' for f in flags)
    return f'{lead}<ul class="rv-flags">{items}</ul>'



def status_html(item: ReviewItem, unsaved: bool = False) -> str:
    marker = ('<span class="rv-edited">✎ edited</span>' if item.edited
              else '<span class="rv-untouched">untouched</span>')
    label = (f' · label corrected {_e(item.video_label)} → <b>{_e(item.label)}</b>'
             if item.label != item.video_label else "")
    who = f" · v{item.version} by {item.reviewer} at {item.updated_at}" if item.reviewer else f" · v{item.version}"
    excluded = ' · <span class="rv-excluded">excluded from training</span>' if item.excluded else ""
    pending = ' · <span class="rv-unsaved">unsaved changes</span>' if unsaved else ""
    if item.reviews_per_item > 1:  # the reviewer's own response; the final text is the adjudicator's
        mine = item.status if item.version else "not answered yet"
        return (f'<div class="rv-status">your response <b class="rv-st-{_e(item.status)}">{_e(mine)}</b> · {marker}'
                f'{label} · <span class="rv-k">{item.submitted} of {item.reviews_per_item} responses submitted</span>'
                f' · final <b>{_e(item.final_status)}</b>{excluded}{_e(who)}{pending}</div>')
    return (f'<div class="rv-status">status <b class="rv-st-{_e(item.status)}">{_e(item.status)}</b> · '
            f'{marker}{label}{excluded}{_e(who)}{pending}</div>')


def diff_html(item: ReviewItem, fields: Optional[dict[str, str]] = None) -> str:
    """What the editable fields change against the suggestion, word by word."""
    shown = fields if fields is not None else item.fields
    suggested = item.suggestion or {}
    parts = []
    for dim in item.names:
        pieces = field_diff(suggested.get(dim), shown.get(dim))
        if not pieces:
            continue
        body = "".join(_e(text) if op == "=" else f"<{'del' if op == '-' else 'ins'}>{_e(text)}</{'del' if op == '-' else 'ins'}>"
                       for op, text in pieces)
        parts.append(f"<div><b>{dim}</b>: {body}</div>")
    if not parts:
        return '<div class="rv-diff"><i>Same text as the suggestion.</i></div>'
    return '<div class="rv-diff">' + "".join(parts) + "</div>"


def _clip(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= _CLIP else text[:_CLIP] + f"… (+{len(text) - _CLIP} chars)"


def history_html(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return '<div class="rv-history"><i>No revisions yet.</i></div>'
    out = []
    for row in rows:
        changes = "".join(f"<li><b>{_e(name)}</b>: {_e(_clip(before)) or '<i>∅</i>'} → {_e(_clip(after)) or '<i>∅</i>'}</li>"
                          for name, before, after in row["changes"]) or "<li><i>no field changed</i></li>"
        refused = f' <span class="rv-refused">REFUSED: {_e(row["refused"])}</span>' if row.get("refused") else ""
        note = f' <span class="rv-note">{_e(row["note"])}</span>' if row.get("note") else ""
        out.append(f'<div class="rv-rev"><b>v{_e(row["version"])}</b> by {_e(row["reviewer"])} at '
                   f'{_e(row["when"])}{refused}{note}<ul>{changes}</ul></div>')
    return '<div class="rv-history">' + "".join(out) + "</div>"


def counts_html(counts: dict[str, int]) -> str:
    names = ("pending", "accepted", "edited", "rejected")
    parts = [f'<span class="rv-c-{n}">{n} <b>{counts.get(n, 0)}</b></span>' for n in names]
    ready = f" · ready for adjudication {counts['ready']}" if counts.get("ready") else ""
    extra = (f" (drafts {counts.get('draft', 0)}){ready} · excluded {counts.get('excluded', 0)} · "
             f"total {counts.get('total', 0)}")
    return '<div class="rv-counts">' + " · ".join(parts) + _e(extra) + "</div>"


def job_html(status: dict[str, Any], note: str = "") -> str:
    progress = float(status.get("progress") or 0.0)
    error = f" — {_e(status.get('error'))}" if status.get("error") else (f" — {_e(note)}" if note else "")
    return (f'<div class="rv-job">job {_e(status.get("id"))} {_e(status.get("status"))} '
            f'<progress value="{progress:.3f}" max="1"></progress> {_e(status.get("progress_text"))}{error}</div>')


CSS = """
.rv-diff ins { background: #c8f7c5; text-decoration: none; }
.rv-diff del { background: #f7c5c5; }
.rv-edited { color: #b35900; font-weight: bold; }
.rv-refused { color: #b00020; font-weight: bold; }
.rv-notice { background: #fff3cd; padding: 4px 8px; border-radius: 4px; }
.rv-suggestion dt { font-weight: bold; margin-top: 4px; }
.rv-suggestion dd { margin-left: 8px; white-space: pre-wrap; }
.rv-history { max-height: 320px; overflow-y: auto; font-size: 90%; }
"""

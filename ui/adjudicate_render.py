"""HTML for the Adjudicate tab: the k responses side by side, each field as a word diff against the suggestion.
Every piece of user or model text goes through ``html.escape``."""

from __future__ import annotations

from html import escape
from typing import Any, Optional

from rbft_core.review.adjudication import AdjudicationItem

__all__ = ["responses_html", "header_html", "settings_html", "empty_html", "CSS"]


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _pieces(pieces: list[tuple[str, str]], text: Optional[str]) -> str:
    if not pieces:  # the same text as the suggestion
        return f'<span class="adj-same">{_e(text) or "<i>(empty)</i>"}</span>'
    tags = {"-": "del", "+": "ins"}
    return "".join(_e(t) if op == "=" else f"<{tags[op]}>{_e(t)}</{tags[op]}>" for op, t in pieces)


def header_html(adj: AdjudicationItem) -> str:
    item = adj.item
    return (f'<div class="adj-header" data-review="{item.review_id}">{_e(item.dataset)} › <b>Video {_e(item.video_id)}'
            f'</b> · <code>{_e(item.external_id)}</code> · {_e(item.split)} · label <b>{_e(item.video_label)}</b> · '
            f'{len(adj.submitted)} of {adj.k} responses · final <b class="adj-final">{_e(item.final_status)}</b>'
            f'{" by " + _e(item.reviewer) if item.reviewer else ""}</div>')


def empty_html(dataset: str, k: int) -> str:
    why = (f"dataset {_e(dataset)} asks for one review per item: nothing to adjudicate (an admin can raise it "
           "below)" if k <= 1 else f"no item of {_e(dataset)} has all {k} responses yet")
    return f'<div class="adj-header"><b>Nothing to adjudicate</b>: {why}.</div>'


def responses_html(adj: AdjudicationItem) -> str:
    """One column per response (reviewer, status, label, seconds), one row per dimension."""
    if not adj.responses:
        return '<div class="adj-responses"><i>No responses yet.</i></div>'
    head = "".join(f'<th class="adj-reviewer">{_e(r["reviewer"])}<br><small>{_e(r["status"])} · label '
                   f'{_e(r["label"])} · v{_e(r["version"])}{_took(r.get("seconds"))}</small></th>'
                   for r in adj.responses)
    rows = "".join(f'<tr><th>{dim}</th>' + "".join(
        f'<td class="adj-cell">{_pieces(r["diffs"][dim], r["rationale"].get(dim))}</td>' for r in adj.responses)
        + "</tr>" for dim in adj.item.names)
    return f'<div class="adj-responses"><table><tr><th></th>{head}</tr>{rows}</table></div>'


def _took(seconds: Optional[float]) -> str:
    return f" · {seconds:.0f} s" if seconds is not None else ""


def settings_html(settings: dict[str, Any], note: str = "") -> str:
    assigned = ", ".join(settings.get("adjudicators") or []) or "any adjudicator or admin"
    extra = f" · {_e(note)}" if note else ""
    return (f'<div class="adj-settings">{_e(settings["reviews_per_item"])} review(s) per item · adjudication: '
            f'{_e(assigned)}{extra}</div>')


CSS = """
.adj-responses table { border-collapse: collapse; width: 100%; }
.adj-responses td, .adj-responses th { border: 1px solid #ddd; padding: 4px 6px; vertical-align: top; }
.adj-responses ins { background: #c8f7c5; text-decoration: none; }
.adj-responses del { background: #f7c5c5; }
.adj-same { color: #555; }
"""

"""The Review tab's component groups: the queue filters, the four rationale fields, the buttons, and their layout."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import gradio as gr

from rbft_core.models.prompts import DIMENSIONS
from rbft_core.review import workspace as review
from ui.common import Updates, Values
from ui.keys import label as key_label

__all__ = ["ReviewFilters", "RationaleForm", "ReviewButtons", "filters_row", "rationale_form", "review_buttons"]


@dataclass
class ReviewFilters:
    """The queue's filters besides the dataset, in ``review_open``'s input order."""

    status: gr.Dropdown
    label: gr.Dropdown
    split: gr.Dropdown
    edited: gr.Dropdown
    parse_failed: gr.Checkbox
    search: gr.Textbox


@dataclass
class RationaleForm:
    """The four editable dimensions, named and ordered as ``DIMENSIONS``."""

    subjects: gr.Textbox
    attributes: gr.Textbox
    actions: gr.Textbox
    scenes: gr.Textbox

    def read(self, values: Values) -> dict[str, str]:
        return {f.name: values[getattr(self, f.name)] for f in fields(self)}

    def fill(self, texts: dict[str, Any]) -> Updates:
        return {getattr(self, f.name): texts[f.name] for f in fields(self)}


@dataclass
class ReviewButtons:
    accept: gr.Button
    edit: gr.Button
    reject: gr.Button
    prev: gr.Button
    skip: gr.Button
    next: gr.Button
    revert: gr.Button
    regen: gr.Button


def _button(text: str, elem_id: str, variant: str = "secondary") -> gr.Button:
    return gr.Button(key_label(text, elem_id), elem_id=elem_id, variant=variant, size="sm")


def filters_row() -> tuple[gr.Dropdown, ReviewFilters, gr.Textbox]:
    with gr.Row():
        # allow_custom_value: choices arrive per session on page load; the handlers validate every value.
        dataset = gr.Dropdown(label="Dataset", choices=[], scale=2, elem_id="rv-dataset", allow_custom_value=True)
        filters = ReviewFilters(
            status=gr.Dropdown(label="Status", choices=list(review.STATUS_FILTERS), value="todo", scale=1),
            label=gr.Dropdown(label="Label", choices=[("any", "")], value="", scale=1, allow_custom_value=True),
            split=gr.Dropdown(label="Split", choices=[("any", ""), "train", "val", "test"], value="", scale=1),
            edited=gr.Dropdown(label="Edited", choices=list(review.EDITED_FILTERS), value="any", scale=1),
            parse_failed=gr.Checkbox(label="Parse failed only", value=False, scale=1),
            search=gr.Textbox(label=key_label("Search text, Enter", "rv-search"), placeholder="words in the rationale or id",
                              scale=2, elem_id="rv-search"))
        reviewer = gr.Textbox(label="Reviewer", placeholder="your name (login name when signed in)", scale=1,
                              elem_id="rv-reviewer")
    return dataset, filters, reviewer


def review_buttons() -> ReviewButtons:
    with gr.Row():
        accept, edit = _button("Accept as is", "rv-accept", "primary"), _button("Save edit", "rv-save")
        reject = _button("Reject", "rv-reject", "stop")
    with gr.Row():
        prev, skip = _button("◀ Previous", "rv-prev"), _button("Skip", "rv-skip")
        next_ = _button("Next ▶", "rv-next")
    with gr.Row():
        revert, regen = _button("Revert to suggestion", "rv-revert"), _button("Regenerate", "rv-regen")
    return ReviewButtons(accept=accept, edit=edit, reject=reject, prev=prev, skip=skip, next=next_, revert=revert,
                         regen=regen)


def rationale_form() -> RationaleForm:
    return RationaleForm(**{dim: gr.Textbox(label=key_label(dim.capitalize(), f"rv-{dim}"), lines=2, max_lines=8,
                                            elem_id=f"rv-{dim}") for dim in DIMENSIONS})

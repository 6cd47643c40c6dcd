"""The Review tab's component groups: the queue filters, the rationale form, the buttons, and their layout.

The form has ``MAX_DIMENSIONS`` text boxes (Gradio builds its components once, before any dataset is chosen); each
item shows the first as many as its dataset has dimensions, labelled with their names and descriptions, and hides
the rest. Box ``i`` has the elem_id ``<prefix>-dim-<i>`` (``rv-dim-1`` ... for the Review tab, ``adj-dim-1`` ... for
the Adjudicate tab; Alt+1 ... Alt+8 focus those of the tab shown: ``ui.keys``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable, Sequence

import gradio as gr

from rbft_core.models.prompts import DEFAULT_DIMENSIONS, MAX_DIMENSIONS, Dimension
from rbft_core.review import workspace as review
from rbft_core.review.flags import FLAG_CODES, FLAG_NAMES
from ui.common import Updates, Values
from ui.keys import label as key_label

__all__ = ["ReviewFilters", "RationaleForm", "ReviewButtons", "FLAG_CHOICES", "filters_row", "rationale_form",
           "review_buttons", "box_id", "dimension_caption", "review_caption", "keyed_button"]


@dataclass
class ReviewFilters:
    """The queue's filters besides the dataset, in ``review_open``'s input order."""

    status: gr.Dropdown
    label: gr.Dropdown
    split: gr.Dropdown
    edited: gr.Dropdown
    parse_failed: gr.Checkbox
    search: gr.Textbox
    flag: gr.Dropdown


def box_id(prefix: str, index: int) -> str:
    """The elem_id of the form's ``index``-th box (0-based): ``rv-dim-1`` is the first."""
    return f"{prefix}-dim-{index + 1}"


@dataclass
class RationaleForm:
    """One text box per dimension, ``MAX_DIMENSIONS`` of them: an item's dataset says how many show and what they
    are called. Values are read and written by dimension name, in the dataset's order."""

    d1: gr.Textbox
    d2: gr.Textbox
    d3: gr.Textbox
    d4: gr.Textbox
    d5: gr.Textbox
    d6: gr.Textbox
    d7: gr.Textbox
    d8: gr.Textbox

    def boxes(self) -> list[gr.Textbox]:
        return [getattr(self, f.name) for f in fields(self)]

    def read(self, values: Values, names: Sequence[str]) -> dict[str, str]:
        """The typed text of each dimension ``names`` (the open item's, in order)."""
        return {name: values[box] for name, box in zip(names, self.boxes())}

    def show(self, dimensions: Sequence[Dimension], texts: dict[str, Any], caption: Callable[[int, Dimension], str]
             ) -> Updates:
        """Label, describe and fill the first boxes with ``dimensions``' text; hide and empty the others."""
        out: Updates = {}
        for i, box in enumerate(self.boxes()):
            if i < len(dimensions):
                dim = dimensions[i]
                out[box] = gr.Textbox(value=texts.get(dim.name) or "", label=caption(i, dim), info=dim.description,
                                      visible=True)
            else:
                out[box] = gr.Textbox(value="", visible=False)
        return out

    def fill(self, texts: dict[str, Any], names: Sequence[str]) -> Updates:
        """Only the text of the boxes of ``names`` (labels and visibility as they are)."""
        return {box: texts.get(name) or "" for name, box in zip(names, self.boxes())}

    def clear(self) -> Updates:
        return {box: "" for box in self.boxes()}


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


# The automatic checks' flags (rbft_core.review.flags) as filter choices: (shown, value).
FLAG_CHOICES = [("any", ""), ("any flag", "flagged"), ("no flag", "unflagged"),
                *[(FLAG_NAMES[code], code) for code in FLAG_CODES]]


def keyed_button(text: str, elem_id: str, variant: str = "secondary") -> gr.Button:
    """A small button whose caption names its key (``ui.keys``)."""
    return gr.Button(key_label(text, elem_id), elem_id=elem_id, variant=variant, size="sm")


def _dropdown(text: str, elem_id: str, **kwargs: Any) -> gr.Dropdown:
    return gr.Dropdown(label=key_label(text, elem_id), elem_id=elem_id, **kwargs)


def filters_row() -> tuple[gr.Dropdown, ReviewFilters, gr.Textbox]:
    """The dataset, the queue's filters and the reviewer's name, each with its key (``ui.keys``: the "Filter"
    group; a list opens on its key, the parse-failed box toggles)."""
    with gr.Row():
        # allow_custom_value: choices arrive per session on page load; the handlers validate every value.
        dataset = _dropdown("Dataset", "rv-dataset", choices=[], scale=2, allow_custom_value=True)
        filters = ReviewFilters(
            status=_dropdown("Status", "rv-filter-status", choices=list(review.STATUS_FILTERS), value="todo",
                             scale=1),
            label=_dropdown("Label", "rv-filter-label", choices=[("any", "")], value="", scale=1,
                            allow_custom_value=True),
            split=_dropdown("Split", "rv-filter-split", choices=[("any", ""), "train", "val", "test"], value="",
                            scale=1),
            edited=_dropdown("Edited", "rv-filter-edited", choices=list(review.EDITED_FILTERS), value="any", scale=1),
            parse_failed=gr.Checkbox(label=key_label("Parse failed only", "rv-filter-parse"), value=False, scale=1,
                                     elem_id="rv-filter-parse"),
            search=gr.Textbox(label=key_label("Search text, Enter", "rv-search"), placeholder="words in the rationale or id",
                              scale=2, elem_id="rv-search"),
            flag=_dropdown("Flag", "rv-flag", choices=FLAG_CHOICES, value="", scale=1))
        reviewer = gr.Textbox(label=key_label("Reviewer", "rv-reviewer"), scale=1, elem_id="rv-reviewer",
                              placeholder="your name (login name when signed in)")
    return dataset, filters, reviewer


def review_buttons() -> ReviewButtons:
    with gr.Row():
        accept, edit = keyed_button("Accept as is", "rv-accept", "primary"), keyed_button("Save edit", "rv-save")
        reject = keyed_button("Reject", "rv-reject", "stop")
    with gr.Row():
        prev, skip = keyed_button("◀ Previous", "rv-prev"), keyed_button("Skip", "rv-skip")
        next_ = keyed_button("Next ▶", "rv-next")
    with gr.Row():
        revert, regen = keyed_button("Revert to suggestion", "rv-revert"), keyed_button("Regenerate", "rv-regen")
    return ReviewButtons(accept=accept, edit=edit, reject=reject, prev=prev, skip=skip, next=next_, revert=revert,
                         regen=regen)


def dimension_caption(dim: Dimension) -> str:
    """A box's label: the dimension's name as a caption, "(optional)" where it may stay empty."""
    return dim.name.replace("_", " ").capitalize() + ("" if dim.required else " (optional)")


def review_caption(index: int, dim: Dimension) -> str:
    """The Review tab's label of box ``index``: the caption and its key, e.g. "Subjects (Alt+1)"."""
    return key_label(dimension_caption(dim), box_id("rv", index))


def rationale_form(prefix: str = "rv", caption: Callable[[int, Dimension], str] = review_caption) -> RationaleForm:
    """The form, built showing the paper's four dimensions (each item relabels it for its dataset)."""
    boxes = []
    for i in range(MAX_DIMENSIONS):
        dim = DEFAULT_DIMENSIONS[i] if i < len(DEFAULT_DIMENSIONS) else None
        boxes.append(gr.Textbox(label=caption(i, dim) if dim else f"Dimension {i + 1}", info=dim.description if dim
                                else None, lines=2, max_lines=8, elem_id=box_id(prefix, i), visible=dim is not None))
    return RationaleForm(*boxes)

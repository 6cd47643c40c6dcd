"""Adjudicate tab: items that several reviewers answered, their responses side by side, the final text.

The queue is the dataset's ``ready`` items (every response it asks for is in), doubt first. The adjudicator starts
from a response or the suggestion (all fields, or one field at a time), edits, and finalises: only that text
trains. Admins set the reviews per item and assign adjudication here too. State holds only ids and versions; the
logic is ``rbft_core.review.adjudication``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Optional

import gradio as gr

from rbft_core.models.prompts import Dimension
from rbft_core.review import adjudication
from rbft_core.review import media as review_media
from rbft_core.review import workspace as review
from ui import adjudicate_render as render
from ui.common import Events, Updates, Values, components
from ui.keys import label as key_label
from ui.media import serve
from ui.review_forms import RationaleForm, box_id, dimension_caption, keyed_button, rationale_form
from ui.review_render import history_html, place_html, suggestion_html

__all__ = ["AdjudicateTab", "build_adjudicate_tab", "on_page_load", "on_open", "on_use", "on_finalise", "on_move",
           "on_settings"]


@dataclass
class AdjudicateTab:
    dataset: gr.Dropdown
    adjudicator: gr.Textbox
    k: gr.Number
    assigned: gr.Textbox
    save_settings: gr.Button
    settings: gr.HTML
    header: gr.HTML
    place: gr.HTML
    video: gr.Video
    suggestion: gr.HTML
    responses: gr.HTML
    source: gr.Dropdown
    dimension: gr.Dropdown
    use: gr.Button
    fields: RationaleForm
    label: gr.Dropdown
    accept: gr.Button
    reject: gr.Button
    prev: gr.Button
    next: gr.Button
    history: gr.HTML
    review_id: gr.State
    version: gr.State
    picked: gr.State  # where the text in the form was started from (the final revision's note names it)
    dims: gr.State  # the open item's dimension names, in the order of the form's boxes

    def item_outputs(self) -> list:
        return [self.review_id, self.version, self.picked, self.header, self.place, self.video, self.suggestion,
                self.responses, self.source, self.dimension, *components(self.fields), self.label, self.history,
                self.dims]

    def attach(self, demo: gr.Blocks, db_url: Optional[str]) -> None:
        ev = Events(self, db_url)
        private = dict(api_visibility="private")
        opened = [self.settings, self.k, self.assigned, *self.item_outputs()]
        loaded = ev.on(demo.load, on_page_load, [], [self.dataset], **private)
        ev.on(loaded.then, on_open, [self.dataset], opened, **private)
        ev.on(self.dataset.input, on_open, [self.dataset], opened, api_name="adjudicate_open")
        ev.on(self.save_settings.click, on_settings, [self.dataset, self.adjudicator, self.k, self.assigned], opened,
              api_name="adjudicate_settings")
        ev.on(self.use.click, on_use, [self.review_id, self.source, self.dimension, *components(self.fields),
                                       self.dims], [self.picked, *components(self.fields)], api_name="adjudicate_use")
        context = [self.dataset, self.review_id, self.version, self.picked, self.adjudicator,
                   *components(self.fields), self.label, self.dims]
        for action, button in (("accept", self.accept), ("reject", self.reject)):
            ev.on(button.click, partial(on_finalise, action=action), context, self.item_outputs(),
                  api_name=f"adjudicate_{action}", trigger_mode="once")
        for direction, button in (("next", self.next), ("prev", self.prev)):
            ev.on(button.click, partial(on_move, direction=direction), [self.dataset, self.review_id],
                  self.item_outputs(), api_name=f"adjudicate_{direction}")


def _caption(index: int, dim: Dimension) -> str:
    """Box ``index``'s label with its key, e.g. "Final subjects (Alt+1)"."""
    return key_label(f"Final {dimension_caption(dim).lower()}", box_id("adj", index))


def _login(request: Optional[gr.Request]) -> Optional[str]:
    return getattr(request, "username", None) if request is not None else None


def _item(tab: AdjudicateTab, db_url: Optional[str], dataset: str, review_id: Optional[int]) -> Updates:
    if review_id is None:
        k = adjudication.settings(db_url, dataset)["reviews_per_item"] if dataset else 1
        status = adjudication.queue_status(db_url, dataset, None) if dataset else {"size": 0}
        return {tab.review_id: None, tab.version: None, tab.picked: "", tab.header: render.empty_html(dataset, k),
                tab.place: place_html(0, status["size"]), tab.video: None, tab.suggestion: "", tab.responses: "",
                tab.source: gr.Dropdown(choices=[], value=None),
                tab.dimension: gr.Dropdown(choices=[("all fields", "")], value=""), **tab.fields.clear(), tab.dims: [], tab.label: gr.Dropdown(choices=[], value=None), tab.history: ""}
    adj = adjudication.load(db_url, review_id)
    item = adj.item
    media = review_media.item_media(item.video_path, item.sha256, (item.suggestion or {}).get("gen_params"))
    serve(db_url, media.video)
    status = adjudication.queue_status(db_url, dataset, review_id)
    sources = [adjudication.SOURCE_SUGGESTION, *[r["reviewer"] for r in adj.responses]]
    return {tab.review_id: item.review_id, tab.version: item.version, tab.picked: "",
            tab.header: render.header_html(adj), tab.place: place_html(status["place"], status["size"]),
            tab.video: media.video, tab.suggestion: suggestion_html(item), tab.responses: render.responses_html(adj),
            tab.source: gr.Dropdown(choices=sources, value=sources[1] if len(sources) > 1 else sources[0]),
            tab.dimension: gr.Dropdown(choices=[("all fields", ""), *item.names], value=""),
            **tab.fields.show(item.dimensions, item.fields, _caption), tab.dims: list(item.names),
            tab.label: gr.Dropdown(choices=item.labels, value=item.label),
            tab.history: history_html(review.history(db_url, review_id))}


def _opened(tab: AdjudicateTab, db_url: Optional[str], dataset: str, note: str = "") -> Updates:
    settings = adjudication.settings(db_url, dataset)
    first = adjudication.neighbour(db_url, dataset, None)
    return {tab.settings: render.settings_html(settings, note), tab.k: settings["reviews_per_item"],
            tab.assigned: ", ".join(settings["adjudicators"]), **_item(tab, db_url, dataset, first)}


# --------------------------------------------------------------------------------------- handlers
def on_page_load(tab: AdjudicateTab, db_url: Optional[str], values: Values) -> Updates:
    names = review.dataset_names(db_url)
    return {tab.dataset: gr.Dropdown(choices=names, value=names[0] if names else None)}


def on_open(tab: AdjudicateTab, db_url: Optional[str], values: Values) -> Updates:
    """The dataset's settings and its adjudication queue from the most doubtful ready item."""
    dataset = values[tab.dataset]
    if not dataset:
        return {tab.settings: "<i>No dataset yet: import videos in the Datasets tab.</i>", **_item(tab, db_url, "", None)}
    return _opened(tab, db_url, dataset)


def on_settings(tab: AdjudicateTab, db_url: Optional[str], values: Values, *, request: gr.Request) -> Updates:
    """Admins: set the reviews per item (k) and the logins assigned to adjudicate (comma-separated; empty: any)."""
    dataset = values[tab.dataset]
    assigned = [name for name in (values[tab.assigned] or "").split(",") if name.strip()]
    who = _login(request) or (values[tab.adjudicator] or "").strip() or "admin"
    adjudication.change_settings(db_url, dataset, who, reviews_per_item=int(values[tab.k] or 1),
                                 adjudicators=assigned, login=_login(request))
    return _opened(tab, db_url, dataset, note="saved")


def on_use(tab: AdjudicateTab, db_url: Optional[str], values: Values) -> Updates:
    """Put the text of a response (or the suggestion) into the final form: every field, or the one chosen."""
    if values[tab.review_id] is None:
        return {}
    adj = adjudication.load(db_url, values[tab.review_id])
    source = values[tab.source] or adjudication.SOURCE_SUGGESTION
    names = values[tab.dims] or []
    text = adjudication.pick(adj, source, tab.fields.read(values, names), values[tab.dimension] or "")
    return {tab.picked: source, **tab.fields.fill(text, names)}


def on_finalise(tab: AdjudicateTab, db_url: Optional[str], values: Values, *, action: str,
                request: gr.Request) -> Updates:
    """Write the final text (accept) or reject the item, then open the next ready one."""
    dataset, review_id = values[tab.dataset], values[tab.review_id]
    if review_id is None:
        raise gr.Error("no item is open; the adjudication queue of this dataset is empty")
    login = _login(request)
    adjudication.finalise(db_url, review_id, expected_version=values[tab.version], action=action,
                          adjudicator=login or values[tab.adjudicator], login=login,
                          fields=tab.fields.read(values, values[tab.dims] or []),
                          label=values[tab.label], picked=values[tab.picked] or "")
    return _item(tab, db_url, dataset, adjudication.neighbour(db_url, dataset, review_id))


def on_move(tab: AdjudicateTab, db_url: Optional[str], values: Values, *, direction: str) -> Updates:
    dataset = values[tab.dataset]
    target = adjudication.neighbour(db_url, dataset, values[tab.review_id], backwards=direction == "prev")
    return _item(tab, db_url, dataset, target)


# ---------------------------------------------------------------------------------------- layout
def build_adjudicate_tab() -> AdjudicateTab:
    with gr.Row():
        dataset = gr.Dropdown(label=key_label("Dataset", "adj-dataset"), choices=[], scale=2, elem_id="adj-dataset",
                              allow_custom_value=True)
        adjudicator = gr.Textbox(label=key_label("Adjudicator", "adj-adjudicator"), scale=1, elem_id="adj-adjudicator",
                                 placeholder="your name (login name when signed in)")
    with gr.Accordion("Reviews per item and adjudication (admins)", open=False):
        with gr.Row():
            k = gr.Number(label="Reviews per item (k)", value=1, minimum=1, maximum=20, precision=0, elem_id="adj-k")
            assigned = gr.Textbox(label="Adjudication assigned to (logins, comma-separated; empty: any adjudicator)",
                                  elem_id="adj-assigned")
            save_settings = gr.Button("Save settings", size="sm", elem_id="adj-save-settings")
    settings = gr.HTML(elem_id="adj-settings")
    header, place = gr.HTML(elem_id="adj-header"), gr.HTML(elem_id="adj-place")
    with gr.Row(equal_height=False):
        with gr.Column(scale=4, min_width=300):
            video = gr.Video(label="Video", interactive=False, height=260, elem_id="adj-video")
            gr.Markdown("**Model suggestion**")
            suggestion = gr.HTML(elem_id="adj-suggestion")
        with gr.Column(scale=6, min_width=400):
            gr.Markdown("**Responses** (each field as a word diff against the suggestion)")
            responses = gr.HTML(elem_id="adj-responses")
    with gr.Row():
        source = gr.Dropdown(label=key_label("Start from", "adj-source"), choices=[], elem_id="adj-source",
                             allow_custom_value=True)
        dimension = gr.Dropdown(label=key_label("Field", "adj-dimension"), choices=[("all fields", "")], value="",
                                elem_id="adj-dimension")
        use = keyed_button("Use", "adj-use")
    fields = rationale_form("adj", _caption)
    label = gr.Dropdown(label=key_label("Final label", "adj-label"), choices=[], elem_id="adj-label",
                        allow_custom_value=True)
    with gr.Row():
        accept, reject = keyed_button("Finalise", "adj-accept", "primary"), keyed_button("Reject item", "adj-reject", "stop")
        prev, next_ = keyed_button("◀ Previous", "adj-prev"), keyed_button("Next ▶", "adj-next")
    gr.Markdown("**History of the final review** (newest first)")
    history = gr.HTML(elem_id="adj-history")
    return AdjudicateTab(dataset=dataset, adjudicator=adjudicator, k=k, assigned=assigned, save_settings=save_settings,
                         settings=settings, header=header, place=place, video=video, suggestion=suggestion,
                         responses=responses, source=source, dimension=dimension, use=use, fields=fields, label=label,
                         accept=accept, reject=reject, prev=prev, next=next_, history=history,
                         review_id=gr.State(None), version=gr.State(None), picked=gr.State(""), dims=gr.State([]))

"""Review tab: each video beside its suggestion and the editable four-dimension rationale.

Keyboard first (ui/keys.py), autosaves a draft when the reviewer moves on, refuses to save over a
newer version, and shows every revision. State holds only ids, the filter and the visited ids; all
logic lives in rbft_core.review.workspace (queue, saves) and rbft_core.review.media (player, frame strip).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Callable, Optional

import gradio as gr

from rbft_core.errors import ConfigError, ConflictError
from rbft_core.jobs.runner import job_status
from rbft_core.models.prompts import DIMENSIONS
from rbft_core.review import media as review_media
from rbft_core.review import workspace as review
from rbft_core.tabs import review as review_logic
from ui import review_render as render
from ui.common import bind, ui_errors
from ui.keys import label as key_label
from ui.media import serve

__all__ = ["ReviewTab", "build_review_tab", "on_page_load", "on_dataset", "on_open", "on_act", "on_move", "on_jump", "on_revert", "on_diff",
           "on_regenerate", "on_regen_tick", "on_bulk", "NAV_LIMIT"]

NAV_LIMIT = 100  # visited ids kept for "Previous"


@dataclass
class ReviewTab:
    dataset: gr.Dropdown
    filters: list  # status, label, split, edited, parse failed, search
    reviewer: gr.Textbox
    header: gr.HTML
    video: gr.Video
    frames: gr.Gallery
    fields: list  # four Textboxes, DIMENSIONS order
    label: gr.Dropdown
    buttons: dict  # name -> Button
    item_outputs: list  # what every navigation returns (see _render)
    state: gr.State  # the filter
    open_fn: Callable
    db_url: Optional[str]
    progress_outputs: list  # queue place, counts

    def attach_page_load(self, demo: gr.Blocks) -> None:
        """On every page load: list the datasets, pick the first, open its queue."""
        opened = demo.load(bind(on_page_load, self.db_url), None, [self.dataset, self.filters[1]],
                           api_visibility="private").then(
            self.open_fn, [self.dataset, *self.filters], [self.state, *self.item_outputs], api_visibility="private")
        self.then_progress(opened)

    def then_progress(self, event: Any, api_name: Optional[str] = None) -> Any:
        """After ``event`` shows an item: its place in the queue and the counts (a follow-up event)."""
        visibility = {"api_name": api_name} if api_name else {"api_visibility": "private"}
        return event.then(bind(on_progress, self.db_url), [self.state, self.item_outputs[0]], self.progress_outputs,
                          show_progress="hidden", **visibility)


def _who(request: Optional[gr.Request], typed: Optional[str]) -> str:
    user = getattr(request, "username", None) if request is not None else None
    return user or (typed or "").strip() or "anonymous"


def _filter(state: Optional[dict]) -> review.ReviewFilter:
    if not state:
        raise ConfigError("no dataset open; pick one in the Dataset box")
    return review.ReviewFilter(**state)


def _fields(values: tuple) -> dict[str, str]:
    return dict(zip(DIMENSIONS, values))


# -------------------------------------------------------------------------------------- rendering
def _render(db_url: Optional[str], flt: review.ReviewFilter, review_id: Optional[int], nav: list) -> tuple:
    """Values for ``item_outputs``: ids, header, media, suggestion, fields, label, status, diff, history.

    Queue place and counts are not here: they cost a scan of the whole dataset each, so a follow-up event
    (``on_progress``) brings them just after the item is shown."""
    if review_id is None:
        blank = [""] * len(DIMENSIONS)
        return (None, None, nav, render.empty_html(flt.dataset), None, [], "", "", *blank,
                gr.Dropdown(choices=[], value=None), "", "", "")
    item = review.load_item(db_url, review_id)
    params = (item.suggestion or {}).get("gen_params")
    media = review_media.item_media(item.video_path, item.sha256, params)
    serve(db_url, media.video, *[path for path, _ in media.frames])
    review.warm_next(db_url, flt, review_id)
    return (item.review_id, item.version, nav, render.header_html(item), media.video, media.frames,
            render.notice_html(media.notice), render.suggestion_html(item), *[item.fields[d] for d in DIMENSIONS],
            gr.Dropdown(choices=item.labels, value=item.label), render.status_html(item), render.diff_html(item),
            render.history_html(review.history(db_url, review_id)))


def _go(db_url, flt, current: Optional[int], nav: list, *, backwards: bool = False) -> tuple:
    if backwards and nav:
        target, nav = nav[-1], nav[:-1]
    else:
        target = review.neighbour(db_url, flt, current, backwards=backwards)
        if current is not None and target is not None and target != current and not backwards:
            nav = (nav + [current])[-NAV_LIMIT:]
    return _render(db_url, flt, target, nav)


def _autosave(db_url, review_id: int, version: int, who: str, values: tuple, label: Optional[str]) -> None:
    """Save a draft before moving on. A stale draft (someone saved meanwhile) does not block moving on:
    it is refused, kept in the history, and the reviewer is told."""
    try:
        review.autosave(db_url, review_id, expected_version=version, reviewer=who, fields=_fields(values), label=label)
    except ConflictError as exc:
        gr.Warning(html.escape(str(exc), quote=False), duration=None)


# --------------------------------------------------------------------------------------- handlers
@ui_errors
def on_progress(db_url, state, review_id):
    """The open item's place in the queue and the dataset's counts (after every navigation)."""
    if not state:
        return "", ""
    flt = _filter(state)
    position, size = review.queue_place(db_url, flt, review_id)
    return render.place_html(position, size), render.counts_html(review.review_counts(db_url, flt.dataset))


@ui_errors
def on_open(db_url, dataset, status, label, split, edited, parse_failed, search):
    """Apply the dataset and filters: the queue starts at its most doubtful item."""
    if not dataset:
        return (None, *_render_none())
    flt = review.ReviewFilter(dataset=dataset, status=status or "todo", label=label or "", split=split or "",
                              edited=edited or "any", parse_failed=bool(parse_failed), search=search or "")
    return (flt.to_dict(), *_render(db_url, flt, review.neighbour(db_url, flt, None), []))


def _render_none() -> tuple:
    blank = [""] * len(DIMENSIONS)
    return (None, None, [], "<i>No dataset yet: import videos in the Datasets tab.</i>", None, [], "", "", *blank,
            gr.Dropdown(choices=[], value=None), "", "", "")


def _label_filter(labels: list[str]) -> gr.Dropdown:
    return gr.Dropdown(choices=[("any", ""), *labels], value="")


@ui_errors
def on_page_load(db_url):
    names = review.dataset_names(db_url)
    first = names[0] if names else None
    labels = review.dataset_labels(db_url, first) if first else []
    return gr.Dropdown(choices=names, value=first), _label_filter(labels)


@ui_errors
def on_dataset_list(db_url):
    """Datasets made since the page loaded appear when the box is opened."""
    return gr.Dropdown(choices=review.dataset_names(db_url))


@ui_errors
def on_dataset(db_url, dataset):
    return _label_filter(review.dataset_labels(db_url, dataset) if dataset else [])


@ui_errors
def on_act(action, db_url, state, review_id, version, nav, reviewer, subjects, attributes, actions, scenes, label, request: gr.Request):
    """Accept as is / save edit / reject, then open the next item in the queue."""
    flt = _filter(state)
    if review_id is None:
        raise gr.Error("no item is open; change the filter or press Next (Alt+N)")
    review.save(db_url, review_id, expected_version=version, reviewer=_who(request, reviewer), action=action,
                fields=_fields((subjects, attributes, actions, scenes)), label=label)
    return _go(db_url, flt, review_id, nav)


@ui_errors
def on_move(direction, db_url, state, review_id, version, nav, reviewer, subjects, attributes, actions, scenes, label, request: gr.Request):
    """next / prev save a draft first when the text changed; skip leaves the item exactly as stored."""
    flt = _filter(state)
    if review_id is not None and direction != "skip":
        _autosave(db_url, review_id, version, _who(request, reviewer), (subjects, attributes, actions, scenes), label)
    return _go(db_url, flt, review_id, nav, backwards=direction == "prev")


@ui_errors
def on_jump(db_url, state, review_id, version, nav, reviewer, subjects, attributes, actions, scenes, label, ref, request: gr.Request):
    flt = _filter(state)
    target = review.find_item(db_url, flt.dataset, ref)
    if review_id is not None:
        _autosave(db_url, review_id, version, _who(request, reviewer), (subjects, attributes, actions, scenes), label)
        nav = (nav + [review_id])[-NAV_LIMIT:]
    return _render(db_url, flt, target, nav)


@ui_errors
def on_revert(db_url, review_id):
    """Put the model's text back into the fields (nothing is saved until an action)."""
    if review_id is None:
        return (*[gr.skip()] * len(DIMENSIONS), gr.skip())
    item = review.load_item(db_url, review_id)
    sug = item.suggestion or {}
    return (*[sug.get(d) or "" for d in DIMENSIONS], render.diff_html(item, {d: sug.get(d) or "" for d in DIMENSIONS}))


@ui_errors
def on_diff(db_url, review_id, subjects, attributes, actions, scenes, label):
    """Diff and status marker for what is typed now (on blur of a field)."""
    if review_id is None:
        return gr.skip(), gr.skip()
    item = review.load_item(db_url, review_id)
    typed = _fields((subjects, attributes, actions, scenes))
    unsaved = any((typed[d] or "").strip() != (item.fields[d] or "").strip() for d in DIMENSIONS) or label != item.label
    return render.diff_html(item, typed), render.status_html(item, unsaved=unsaved)


@ui_errors
def on_regenerate(db_url, review_id):
    if review_id is None:
        raise gr.Error("no item is open to regenerate")
    job_id = review_logic.regenerate(db_url, review_id)
    return {"job": job_id, "review": review_id}, gr.Timer(active=True), f"regeneration job {job_id} started"


@ui_errors
def on_regen_tick(db_url, regen, state, review_id, nav, reviewer, request: gr.Request):
    """Poll the regeneration job; when it succeeds, adopt the new suggestion and reload the item."""

    if not regen:
        return (None, gr.Timer(active=False), "", *[gr.skip()] * len(_OUTPUT_NAMES))
    status = job_status(db_url, regen["job"])
    if status["status"] in ("queued", "running"):
        return (regen, gr.skip(), render.job_html(status), *[gr.skip()] * len(_OUTPUT_NAMES))
    note = ""
    if status["status"] == "succeeded":
        note = _ADOPTED[review.adopt_newest(db_url, regen["review"], _who(request, reviewer))]
    reload = review_id == regen["review"] and state
    values = _render(db_url, _filter(state), review_id, nav) if reload else [gr.skip()] * len(_OUTPUT_NAMES)
    return (None, gr.Timer(active=False), render.job_html(status, note), *values)


_ADOPTED = {"adopted": "the new suggestion is shown", "none": "no new suggestion was written (see the job log)",
            "worse": "the new suggestion parsed worse than the current one, which is kept"}


@ui_errors
def on_bulk(kind, db_url, state, review_id, nav, reviewer, request: gr.Request):
    """Accept every untouched item in the filter, or exclude every item in the filter from training."""
    flt = _filter(state)
    who = _who(request, reviewer)
    if kind == "accept":
        n = review.bulk_accept_untouched(db_url, flt, who)
        gr.Info(f"accepted {n} untouched items in this filter")
    else:
        n = review.bulk_exclude(db_url, flt, who)
        gr.Info(f"excluded {n} items in this filter from training")
    return _render(db_url, flt, review_id, nav)


_OUTPUT_NAMES = ("review_id", "version", "nav", "header", "video", "frames", "notice", "suggestion", *DIMENSIONS,
                 "label", "status", "diff", "history")



# ---------------------------------------------------------------------------------------- layout
def _button(text: str, elem_id: str, variant: str = "secondary") -> gr.Button:
    return gr.Button(key_label(text, elem_id), elem_id=elem_id, variant=variant, size="sm")


def _filters_row() -> tuple[gr.Dropdown, list, gr.Textbox]:
    with gr.Row():
        # allow_custom_value: choices arrive per session on page load; the handlers validate every value.
        dataset = gr.Dropdown(label="Dataset", choices=[], scale=2, elem_id="rv-dataset", allow_custom_value=True)
        status = gr.Dropdown(label="Status", choices=list(review.STATUS_FILTERS), value="todo", scale=1)
        label = gr.Dropdown(label="Label", choices=[("any", "")], value="", scale=1, allow_custom_value=True)
        split = gr.Dropdown(label="Split", choices=[("any", ""), "train", "val", "test"], value="", scale=1)
        edited = gr.Dropdown(label="Edited", choices=list(review.EDITED_FILTERS), value="any", scale=1)
        failed = gr.Checkbox(label="Parse failed only", value=False, scale=1)
        search = gr.Textbox(label="Search text", placeholder="words in the rationale or id", scale=2)
        reviewer = gr.Textbox(label="Reviewer", placeholder="your name (login name when signed in)", scale=1,
                              elem_id="rv-reviewer")
    return dataset, [status, label, split, edited, failed, search], reviewer


def _media_column() -> tuple:
    with gr.Column(scale=5, min_width=320):
        header = gr.HTML(elem_id="rv-header")
        place = gr.HTML(elem_id="rv-place")
        notice = gr.HTML(elem_id="rv-notice")
        video = gr.Video(label="Video", interactive=False, height=300, elem_id="rv-video")
        frames = gr.Gallery(label="Frames the model sees", columns=4, height=290, object_fit="contain",
                            allow_preview=True, elem_id="rv-frames")
    return header, place, notice, video, frames


def _editor_column() -> tuple:
    with gr.Column(scale=4, min_width=300):
        fields = [gr.Textbox(label=key_label(dim.capitalize(), f"rv-{dim}"), lines=2, max_lines=8,
                             elem_id=f"rv-{dim}") for dim in DIMENSIONS]
        label = gr.Dropdown(label=key_label("Label", "rv-label"), choices=[], elem_id="rv-label",
                            allow_custom_value=True)
        status = gr.HTML(elem_id="rv-status")
        with gr.Row():
            buttons = {"accept": _button("Accept as is", "rv-accept", "primary"), "edit": _button("Save edit", "rv-save"),
                       "reject": _button("Reject", "rv-reject", "stop")}
        with gr.Row():
            buttons.update(prev=_button("◀ Previous", "rv-prev"), skip=_button("Skip", "rv-skip"),
                           next=_button("Next ▶", "rv-next"))
        with gr.Row():
            buttons.update(revert=_button("Revert to suggestion", "rv-revert"),
                           regen=_button("Regenerate", "rv-regen"))
        jump = gr.Textbox(label=key_label("Jump to video id, Enter", "rv-jump"), elem_id="rv-jump", max_lines=1)
    return fields, label, status, buttons, jump


def build_review_tab(db_url: Optional[str]) -> ReviewTab:
    dataset, filters, reviewer = _filters_row()
    with gr.Row():
        counts = gr.HTML(elem_id="rv-counts")
        bulk_accept = gr.Button("Accept all untouched in filter", size="sm", elem_id="rv-bulk-accept")
        bulk_exclude = gr.Button("Exclude filter from training", size="sm", elem_id="rv-bulk-exclude")
    with gr.Row(equal_height=False):
        header, place, notice, video, frames = _media_column()
        with gr.Column(scale=4, min_width=300):
            gr.Markdown("**Model suggestion** (read-only)")
            suggestion = gr.HTML(elem_id="rv-suggestion")
        fields, label, status, buttons, jump = _editor_column()
    with gr.Row():
        with gr.Column():
            diff = gr.HTML(elem_id="rv-diff")
            job = gr.HTML(elem_id="rv-job")
        with gr.Column():
            gr.Markdown("**History** (newest first)")
            history = gr.HTML(elem_id="rv-history")
    state, review_id, version, nav, regen = gr.State(None), gr.State(None), gr.State(None), gr.State([]), gr.State(None)
    timer = gr.Timer(2.0, active=False)
    tab = ReviewTab(dataset=dataset, filters=filters, reviewer=reviewer, header=header, video=video, frames=frames,
                    fields=fields, label=label, buttons=buttons,
                    item_outputs=[review_id, version, nav, header, video, frames, notice, suggestion, *fields, label,
                                  status, diff, history],
                    state=state, open_fn=bind(on_open, db_url), db_url=db_url, progress_outputs=[place, counts])
    _wire_queue(tab, jump)
    _wire_edits(tab, diff, status)
    _wire_jobs_and_bulk(tab, regen, timer, job, bulk_accept, bulk_exclude)
    return tab


def _ctx(tab: ReviewTab) -> list:
    return [tab.state, tab.item_outputs[0], tab.item_outputs[1], tab.item_outputs[2], tab.reviewer, *tab.fields,
            tab.label]


def _wire_queue(tab: ReviewTab, jump: gr.Textbox) -> None:
    db_url, private = tab.db_url, dict(api_visibility="private")
    # Progress and errors show on the header only: an error must not cover the reviewer's typed text.
    progress = dict(show_progress_on=[tab.header])
    opened = tab.dataset.input(bind(on_dataset, db_url), [tab.dataset], [tab.filters[1]], **private).then(
        tab.open_fn, [tab.dataset, *tab.filters], [tab.state, *tab.item_outputs], api_name="review_open", **progress)
    tab.then_progress(opened, api_name="review_progress")
    tab.dataset.focus(bind(on_dataset_list, db_url), None, [tab.dataset], show_progress="hidden", **private)
    for comp in tab.filters:
        trigger = comp.submit if isinstance(comp, gr.Textbox) else comp.input
        tab.then_progress(trigger(tab.open_fn, [tab.dataset, *tab.filters], [tab.state, *tab.item_outputs],
                                  **private, **progress))
    for name in ("accept", "edit", "reject"):
        tab.then_progress(tab.buttons[name].click(bind(on_act, name, db_url), _ctx(tab), tab.item_outputs,
                                                  api_name=f"review_{name}", trigger_mode="once", **progress))
    for name in ("next", "prev", "skip"):
        tab.then_progress(tab.buttons[name].click(bind(on_move, name, db_url), _ctx(tab), tab.item_outputs,
                                                  api_name=f"review_{name}", trigger_mode="once", **progress))
    tab.then_progress(jump.submit(bind(on_jump, db_url), [*_ctx(tab), jump], tab.item_outputs,
                                  api_name="review_jump", **progress))


def _wire_edits(tab: ReviewTab, diff: gr.HTML, status: gr.HTML) -> None:
    review_id = tab.item_outputs[0]
    tab.buttons["revert"].click(bind(on_revert, tab.db_url), [review_id], [*tab.fields, diff],
                                api_name="review_revert")
    for comp in [*tab.fields, tab.label]:
        comp.blur(bind(on_diff, tab.db_url), [review_id, *tab.fields, tab.label], [diff, status],
                  api_visibility="private", trigger_mode="always_last", show_progress="hidden")


def _wire_jobs_and_bulk(tab: ReviewTab, regen, timer, job, bulk_accept, bulk_exclude) -> None:
    db_url, review_id, nav = tab.db_url, tab.item_outputs[0], tab.item_outputs[2]
    tab.buttons["regen"].click(bind(on_regenerate, db_url), [review_id], [regen, timer, job],
                               api_name="review_regenerate")
    timer.tick(bind(on_regen_tick, db_url), [regen, tab.state, review_id, nav, tab.reviewer],
               [regen, timer, job, *tab.item_outputs], api_name="review_regen_poll", show_progress="hidden")
    for kind, button in (("accept", bulk_accept), ("exclude", bulk_exclude)):
        tab.then_progress(button.click(bind(on_bulk, kind, db_url), [tab.state, review_id, nav, tab.reviewer],
                                       tab.item_outputs, api_name=f"review_bulk_{kind}",
                                       show_progress_on=[tab.header]))

"""Review tab: each video beside its suggestion and the editable rationale, one box per dimension of its dataset.

Keyboard first (ui/keys.py), autosaves a draft when the reviewer moves on, refuses to save over a
newer version, and shows every revision. State holds only ids, the filter and the visited ids; all
logic lives in rbft_core.review.workspace (queue, saves) and rbft_core.review.media (player, frame strip).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from typing import Optional

import gradio as gr

from rbft_core.auth import require_role
from rbft_core.errors import ConfigError, ConflictError
from rbft_core.jobs.runner import job_status
from rbft_core.review import media as review_media
from rbft_core.review import responses
from rbft_core.review import workspace as review
from rbft_core.tabs import review as review_logic
from ui import review_render as render
from ui.common import Events, Updates, Values, components
from ui.keys import label as key_label
from ui.media import serve
from ui.player import player_bar_html
from ui.review_forms import (
    RationaleForm,
    ReviewButtons,
    ReviewFilters,
    filters_row,
    keyed_button,
    rationale_form,
    review_buttons,
    review_caption,
)

__all__ = ["ReviewTab", "build_review_tab", "on_page_load", "on_dataset", "on_dataset_list", "on_open", "on_act", "on_move", "on_jump", "on_revert", "on_diff", "on_regenerate", "on_regen_tick", "on_bulk",
           "NAV_LIMIT"]

NAV_LIMIT = 100  # visited ids kept for "Previous"


@dataclass
class ReviewTab:
    dataset: gr.Dropdown
    filters: ReviewFilters
    reviewer: gr.Textbox
    counts: gr.HTML
    bulk_accept: gr.Button
    bulk_exclude: gr.Button
    header: gr.HTML
    place: gr.HTML
    notice: gr.HTML
    video: gr.Video
    player: gr.HTML  # speed, frame step, keys: browser-side only (ui/player.py)
    frames: gr.Gallery
    suggestion: gr.HTML
    fields: RationaleForm
    label: gr.Dropdown
    status: gr.HTML
    buttons: ReviewButtons
    jump: gr.Textbox
    diff: gr.HTML
    job: gr.HTML
    history: gr.HTML
    state: gr.State  # the filter (ReviewFilter.to_dict) of the open queue
    review_id: gr.State
    version: gr.State  # the open item's version: a save compares and sets it
    nav: gr.State  # visited review ids, for "Previous"
    regen: gr.State  # {"job", "review"} of a regeneration running
    timer: gr.Timer
    shown: gr.State  # {"review", "at"}: when the open item was shown (its response records the time to save)
    dims: gr.State  # the open item's dimension names, in the order of the form's boxes

    def item_outputs(self) -> list:
        """What every navigation shows (the API returns them in this order, gr.State left out): the item, then its
        place in the queue and the dataset's counts, all in one response."""
        return [self.review_id, self.version, self.nav, self.header, self.video, self.frames, self.notice,
                self.suggestion, *components(self.fields), self.label, self.status, self.diff, self.history,
                self.place, self.counts, self.shown, self.dims]

    def context(self) -> list:
        """What every save and move reads: reviewer, typed fields and label (the API's inputs)."""
        return [self.state, self.review_id, self.version, self.nav, self.reviewer, *components(self.fields),
                self.label, self.shown, self.dims]

    def typed(self, values: Values) -> dict[str, str]:
        """The text typed for each dimension of the open item."""
        return self.fields.read(values, values[self.dims] or [])

    def attach(self, demo: gr.Blocks, db_url: Optional[str]) -> None:
        ev = Events(self, db_url)
        _wire_queue(ev, self)
        _wire_edits(ev, self)
        _wire_jobs_and_bulk(ev, self)
        # On every page load: list the datasets, pick the first, open its queue.
        loaded = ev.on(demo.load, on_page_load, [], [self.dataset, self.filters.label], api_visibility="private")
        ev.on(loaded.then, on_open, [self.dataset, *components(self.filters)], [self.state, *self.item_outputs()],
              api_visibility="private")


def _login(request: Optional[gr.Request]) -> Optional[str]:
    return getattr(request, "username", None) if request is not None else None


def _who(request: Optional[gr.Request], typed: Optional[str]) -> str:
    return _login(request) or (typed or "").strip() or "anonymous"


def _filter(state: Optional[dict], who: str = "") -> review.ReviewFilter:
    """The open queue, worked by ``who`` (with several reviews per item, their "todo" leaves out what they answered)."""
    if not state:
        raise ConfigError("no dataset open; pick one in the Dataset box")
    return review.ReviewFilter(**{**state, **({"reviewer": who} if who else {})})


def _shown_at(tab: ReviewTab, values: Values) -> Optional[str]:
    shown = values[tab.shown] or {}
    return shown.get("at") if shown.get("review") == values[tab.review_id] else None


# -------------------------------------------------------------------------------------- rendering
def _blank(tab: ReviewTab, header: str, nav: list, progress: Optional[Updates] = None) -> Updates:
    return {tab.review_id: None, tab.version: None, tab.nav: nav, tab.header: header, tab.video: None, tab.shown: None,
            tab.frames: [], tab.notice: "", tab.suggestion: "", **tab.fields.clear(), tab.dims: [],
            tab.label: gr.Dropdown(choices=[], value=None), tab.status: "", tab.diff: "", tab.history: "",
            **(progress or {tab.place: "", tab.counts: ""})}


def _progress(tab: ReviewTab, db_url: Optional[str], flt: review.ReviewFilter, review_id: Optional[int]) -> Updates:
    """The item's place in the queue and the dataset's counts: counters kept on write and index seeks, cheap at
    any size, so they come with the item instead of in a follow-up event."""
    status = review.queue_status(db_url, flt, review_id)
    place = render.place_html(status["place"], status["size"]) if review_id is not None else ""
    return {tab.place: place, tab.counts: render.counts_html(status["counts"])}


def _item(tab: ReviewTab, db_url: Optional[str], flt: review.ReviewFilter, review_id: Optional[int],
          nav: list) -> Updates:
    """Every item output: ids, header, media, suggestion, fields, label, status, diff, history, queue place
    and counts."""
    if review_id is None:
        return _blank(tab, render.empty_html(flt.dataset), nav, _progress(tab, db_url, flt, None))
    item = responses.load(db_url, review_id, flt.reviewer)
    params = (item.suggestion or {}).get("gen_params")
    media = review_media.item_media(item.video_path, item.sha256, params)
    serve(db_url, media.video, *[path for path, _ in media.frames])
    review.warm_next(db_url, flt, review_id)
    return {tab.review_id: item.review_id, tab.version: item.version, tab.nav: nav,
            tab.header: render.header_html(item, media.times_s), tab.video: media.video, tab.frames: media.frames,
            tab.notice: render.notice_html(media.notice), tab.suggestion: render.suggestion_html(item),
            **tab.fields.show(item.dimensions, item.fields, review_caption), tab.dims: list(item.names),
            tab.label: gr.Dropdown(choices=item.labels, value=item.label),
            tab.status: render.status_html(item), tab.diff: render.diff_html(item),
            tab.history: render.history_html(review.history(db_url, review_id)),
            tab.shown: {"review": item.review_id, "at": datetime.now(timezone.utc).isoformat()}, **_progress(tab, db_url, flt, item.review_id)}


def _go(tab: ReviewTab, db_url, flt, current: Optional[int], nav: list, *, backwards: bool = False) -> Updates:
    if backwards and nav:
        target, nav = nav[-1], nav[:-1]
    else:
        target = review.neighbour(db_url, flt, current, backwards=backwards)
        if current is not None and target is not None and target != current and not backwards:
            nav = (nav + [current])[-NAV_LIMIT:]
    return _item(tab, db_url, flt, target, nav)


def _autosave(tab: ReviewTab, db_url, values: Values, who: str) -> None:
    """Save a draft before moving on. A stale draft (someone saved meanwhile) does not block moving on:
    it is refused, kept in the history, and the reviewer is told."""
    try:
        responses.autosave(db_url, values[tab.review_id], expected_version=values[tab.version], reviewer=who,
                           fields=tab.typed(values), label=values[tab.label], shown_at=_shown_at(tab, values))
    except ConflictError as exc:
        gr.Warning(html.escape(str(exc), quote=False), duration=None)


def _label_filter(labels: list[str]) -> gr.Dropdown:
    return gr.Dropdown(choices=[("any", ""), *labels], value="")


# --------------------------------------------------------------------------------------- handlers
def on_open(tab: ReviewTab, db_url: Optional[str], values: Values, *, request: gr.Request) -> Updates:
    """Apply the dataset and filters: the queue starts at its most doubtful item (for the signed-in reviewer: among
    the items they have not answered, where the dataset asks for several reviews per item)."""
    dataset, f = values[tab.dataset], tab.filters
    if not dataset:
        return {tab.state: None, **_blank(tab, "<i>No dataset yet: import videos in the Datasets tab.</i>", [])}
    flt = review.ReviewFilter(dataset=dataset, status=values[f.status] or "todo", label=values[f.label] or "",
                              split=values[f.split] or "", edited=values[f.edited] or "any",
                              parse_failed=bool(values[f.parse_failed]), search=values[f.search] or "",
                              flag=values[f.flag] or "", reviewer=_login(request) or "")
    return {tab.state: flt.to_dict(), **_item(tab, db_url, flt, review.neighbour(db_url, flt, None), [])}


def on_page_load(tab: ReviewTab, db_url: Optional[str], values: Values) -> Updates:
    names = review.dataset_names(db_url)
    first = names[0] if names else None
    labels = review.dataset_labels(db_url, first) if first else []
    return {tab.dataset: gr.Dropdown(choices=names, value=first), tab.filters.label: _label_filter(labels)}


def on_dataset_list(tab: ReviewTab, db_url: Optional[str], values: Values) -> Updates:
    """Datasets made since the page loaded appear when the box is opened."""
    return {tab.dataset: gr.Dropdown(choices=review.dataset_names(db_url))}


def on_dataset(tab: ReviewTab, db_url: Optional[str], values: Values) -> Updates:
    dataset = values[tab.dataset]
    return {tab.filters.label: _label_filter(review.dataset_labels(db_url, dataset) if dataset else [])}


def on_act(tab: ReviewTab, db_url: Optional[str], values: Values, *, action: str, request: gr.Request) -> Updates:
    """Accept as is / save edit / reject (the review, or with several reviews per item the reviewer's own response),
    then open the next item in the queue."""
    who = _who(request, values[tab.reviewer])
    flt, review_id = _filter(values[tab.state], who), values[tab.review_id]
    if review_id is None:
        raise gr.Error("no item is open; change the filter or press Next (Alt+N)")
    responses.save(db_url, review_id, expected_version=values[tab.version], reviewer=who, action=action,
                   fields=tab.typed(values), label=values[tab.label], shown_at=_shown_at(tab, values))
    return _go(tab, db_url, flt, review_id, values[tab.nav])


def on_move(tab: ReviewTab, db_url: Optional[str], values: Values, *, direction: str, request: gr.Request) -> Updates:
    """next / prev save a draft first when the text changed; skip leaves the item exactly as stored."""
    who = _who(request, values[tab.reviewer])
    flt, review_id = _filter(values[tab.state], who), values[tab.review_id]
    if review_id is not None and direction != "skip":
        _autosave(tab, db_url, values, who)
    return _go(tab, db_url, flt, review_id, values[tab.nav], backwards=direction == "prev")


def on_jump(tab: ReviewTab, db_url: Optional[str], values: Values, *, request: gr.Request) -> Updates:
    who = _who(request, values[tab.reviewer])
    flt, review_id, nav = _filter(values[tab.state], who), values[tab.review_id], values[tab.nav]
    target = review.find_item(db_url, flt.dataset, values[tab.jump])
    if review_id is not None:
        _autosave(tab, db_url, values, who)
        nav = (nav + [review_id])[-NAV_LIMIT:]
    return _item(tab, db_url, flt, target, nav)


def on_revert(tab: ReviewTab, db_url: Optional[str], values: Values) -> Updates:
    """Put the model's text back into the fields (nothing is saved until an action)."""
    if values[tab.review_id] is None:
        return {}
    item = review.load_item(db_url, values[tab.review_id])
    suggested = {d: (item.suggestion or {}).get(d) or "" for d in item.names}
    return {**tab.fields.fill(suggested, item.names), tab.diff: render.diff_html(item, suggested)}


def on_diff(tab: ReviewTab, db_url: Optional[str], values: Values, *, request: gr.Request) -> Updates:
    """Diff and status marker for what is typed now (on blur of a field)."""
    if values[tab.review_id] is None:
        return {}
    item = responses.load(db_url, values[tab.review_id], _who(request, values[tab.reviewer]))
    typed, label = tab.typed(values), values[tab.label]
    unsaved = any((typed.get(d) or "").strip() != (item.fields[d] or "").strip() for d in item.names) \
        or label != item.label
    return {tab.diff: render.diff_html(item, typed), tab.status: render.status_html(item, unsaved=unsaved)}


def on_regenerate(tab: ReviewTab, db_url: Optional[str], values: Values) -> Updates:
    review_id = values[tab.review_id]
    if review_id is None:
        raise gr.Error("no item is open to regenerate")
    job_id = review_logic.regenerate(db_url, review_id)
    return {tab.regen: {"job": job_id, "review": review_id}, tab.timer: gr.Timer(active=True),
            tab.job: f"regeneration job {job_id} started"}


_ADOPTED = {"adopted": "the new suggestion is shown", "none": "no new suggestion was written (see the job log)",
            "worse": "the new suggestion parsed worse than the current one, which is kept"}


def on_regen_tick(tab: ReviewTab, db_url: Optional[str], values: Values, *, request: gr.Request) -> Updates:
    """Poll the regeneration job; when it succeeds, adopt the new suggestion and reload the item.

    What the reviewer typed into that item is saved as a draft before the reload (the reload would otherwise put
    the stored text over it); a regeneration that failed changes nothing, so nothing is re-rendered."""
    regen, state, review_id = values[tab.regen], values[tab.state], values[tab.review_id]
    if not regen:
        return {tab.regen: None, tab.timer: gr.Timer(active=False), tab.job: ""}
    status = job_status(db_url, regen["job"])
    if status["status"] in ("queued", "running"):
        return {tab.regen: regen, tab.job: render.job_html(status)}
    note, shown, who = "", {}, _who(request, values[tab.reviewer])
    if status["status"] == "succeeded":
        open_here = review_id == regen["review"] and bool(state)
        if open_here:
            _autosave(tab, db_url, values, who)
        note = _ADOPTED[review.adopt_newest(db_url, regen["review"], who)]
        if open_here:
            shown = _item(tab, db_url, _filter(state, who), review_id, values[tab.nav])
    return {tab.regen: None, tab.timer: gr.Timer(active=False), tab.job: render.job_html(status, note), **shown}


def on_bulk(tab: ReviewTab, db_url: Optional[str], values: Values, *, kind: str, request: gr.Request) -> Updates:
    """Accept every untouched item in the filter, or exclude every item in the filter from training (admins)."""
    who = _who(request, values[tab.reviewer])
    flt = _filter(values[tab.state], who)
    require_role(db_url, _login(request), "admin", "a bulk action")
    if kind == "accept":
        n = review.bulk_accept_untouched(db_url, flt, who)
        gr.Info(f"accepted {n} untouched items in this filter")
    else:
        n = review.bulk_exclude(db_url, flt, who)
        gr.Info(f"excluded {n} items in this filter from training")
    return _item(tab, db_url, flt, values[tab.review_id], values[tab.nav])


# ----------------------------------------------------------------------------------------- wiring
def _wire_queue(ev: Events, tab: ReviewTab) -> None:
    opens, shows = [tab.dataset, *components(tab.filters)], [tab.state, *tab.item_outputs()]
    # Progress and errors show on the header only: an error must not cover the reviewer's typed text.
    private, progress = dict(api_visibility="private"), dict(show_progress_on=[tab.header])
    chosen = ev.on(tab.dataset.input, on_dataset, [tab.dataset], [tab.filters.label], **private)
    ev.on(chosen.then, on_open, opens, shows, api_name="review_open", **progress)
    ev.on(tab.dataset.focus, on_dataset_list, [], [tab.dataset], show_progress="hidden", **private)
    for comp in components(tab.filters):
        trigger = comp.submit if isinstance(comp, gr.Textbox) else comp.input
        ev.on(trigger, on_open, opens, shows, **private, **progress)
    b = tab.buttons
    for action, button in (("accept", b.accept), ("edit", b.edit), ("reject", b.reject)):
        ev.on(button.click, partial(on_act, action=action), tab.context(), tab.item_outputs(),
              api_name=f"review_{action}", trigger_mode="once", **progress)
    for direction, button in (("next", b.next), ("prev", b.prev), ("skip", b.skip)):
        ev.on(button.click, partial(on_move, direction=direction), tab.context(), tab.item_outputs(),
              api_name=f"review_{direction}", trigger_mode="once", **progress)
    ev.on(tab.jump.submit, on_jump, [*tab.context(), tab.jump], tab.item_outputs(), api_name="review_jump",
          **progress)


def _wire_edits(ev: Events, tab: ReviewTab) -> None:
    typed = [*components(tab.fields), tab.label]
    ev.on(tab.buttons.revert.click, on_revert, [tab.review_id], [*components(tab.fields), tab.diff],
          api_name="review_revert")
    for comp in typed:
        ev.on(comp.blur, on_diff, [tab.review_id, tab.reviewer, *typed, tab.dims], [tab.diff, tab.status],
              api_visibility="private",
              trigger_mode="always_last", show_progress="hidden")


def _wire_jobs_and_bulk(ev: Events, tab: ReviewTab) -> None:
    ev.on(tab.buttons.regen.click, on_regenerate, [tab.review_id], [tab.regen, tab.timer, tab.job],
          api_name="review_regenerate")
    ev.on(tab.timer.tick, on_regen_tick, [tab.regen, *tab.context()], [tab.regen, tab.timer, tab.job,
                                                                       *tab.item_outputs()],
          api_name="review_regen_poll", show_progress="hidden")
    for kind, button in (("accept", tab.bulk_accept), ("exclude", tab.bulk_exclude)):
        ev.on(button.click, partial(on_bulk, kind=kind), [tab.state, tab.review_id, tab.nav, tab.reviewer],
              tab.item_outputs(), api_name=f"review_bulk_{kind}", show_progress_on=[tab.header])


# ---------------------------------------------------------------------------------------- layout
def build_review_tab() -> ReviewTab:
    dataset, filters, reviewer = filters_row()
    with gr.Row():
        counts = gr.HTML(elem_id="rv-counts")
        bulk_accept = keyed_button("Accept all untouched in filter", "rv-bulk-accept")
        bulk_exclude = keyed_button("Exclude filter from training", "rv-bulk-exclude")
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320):
            header, place = gr.HTML(elem_id="rv-header"), gr.HTML(elem_id="rv-place")
            notice = gr.HTML(elem_id="rv-notice")
            video = gr.Video(label="Video", interactive=False, height=300, elem_id="rv-video")
            player = gr.HTML(player_bar_html(), elem_id="rv-player")
            frames = gr.Gallery(label="Frames the model sees", columns=4, height=290, object_fit="contain",
                                allow_preview=True, elem_id="rv-frames")
        with gr.Column(scale=4, min_width=300):
            gr.Markdown("**Model suggestion** (read-only)")
            suggestion = gr.HTML(elem_id="rv-suggestion")
        with gr.Column(scale=4, min_width=300):
            form = rationale_form()
            label = gr.Dropdown(label=key_label("Label", "rv-label"), choices=[], elem_id="rv-label",
                                allow_custom_value=True)
            status = gr.HTML(elem_id="rv-status")
            buttons = review_buttons()
            jump = gr.Textbox(label=key_label("Jump to video id, Enter", "rv-jump"), elem_id="rv-jump", max_lines=1)
    with gr.Row():
        with gr.Column():
            diff, job = gr.HTML(elem_id="rv-diff"), gr.HTML(elem_id="rv-job")
        with gr.Column():
            gr.Markdown("**History** (newest first)")
            history = gr.HTML(elem_id="rv-history")
    return ReviewTab(dataset=dataset, filters=filters, reviewer=reviewer, counts=counts, bulk_accept=bulk_accept,
                     bulk_exclude=bulk_exclude, header=header, place=place, notice=notice, video=video, player=player,
                     frames=frames,
                     suggestion=suggestion, fields=form, label=label, status=status, buttons=buttons, jump=jump,
                     diff=diff, job=job, history=history, state=gr.State(None), review_id=gr.State(None),
                     version=gr.State(None), nav=gr.State([]), regen=gr.State(None), timer=gr.Timer(2.0, active=False),
                     shown=gr.State(None), dims=gr.State([]))

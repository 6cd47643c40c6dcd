"""Inspect tab: attention overlays of two runs side by side, masking one video, the test-split experiment.

A box is drawn by clicking two corners on the frame (Gradio's select event gives the pixel clicked), or typed
as x0, y0, x1, y1 (source pixels); an optional time range limits it. The frame is shown enlarged by a whole number
to at least 480 px wide (``rbft_core.inspection.display``), and a click is mapped back to source pixels. Attention
overlays are enlarged smoothly; each frame of an overlay can be opened large from the gallery under it. The
experiment runs as a background job (``rbft mask-experiment``) polled by a gr.Timer only while it runs. State
holds only small values (job id, the frame being drawn on and the first corner).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any, Optional

import gradio as gr

from rbft_core.data.catalog import dataset_overview
from rbft_core.inspection.display import MIN_DISPLAY_WIDTH_PX, to_source
from rbft_core.inspection.mask_reports import (
    TABLE_COLUMNS,
    latest_experiment,
    table_rows,
)
from rbft_core.jobs.runner import job_status
from rbft_core.tabs import inspect as ins
from ui.common import Events, Updates, Values, components
from ui.review_render import job_html

__all__ = ["InspectTab", "BoxForm", "build_inspect_tab", "on_page_load", "on_dataset", "on_video", "on_attention",
           "on_click", "on_mask", "on_save_box", "on_start", "on_poll", "on_overlay_frames", "MODEL_QUEUE"]

# Attention and masking load up to two models in the web process (under the device lock jobs take): one request
# at a time across both events, queued in order, so eight browser tabs never load sixteen models at once.
MODEL_QUEUE = {"concurrency_limit": 1, "concurrency_id": "inspect-model"}

_REGIONS = [("critical-object boxes in the video metadata (demo world)", "meta"), ("boxes drawn here", "drawn"),
            ("motion (frame differencing)", "motion"), ("each model's top attention cells", "attention")]


@dataclass
class BoxForm:
    """A box in source pixels and an optional time range (seconds, empty: the whole video)."""

    x0: gr.Number
    y0: gr.Number
    x1: gr.Number
    y1: gr.Number
    t0: gr.Textbox
    t1: gr.Textbox


@dataclass
class InspectTab:
    dataset: gr.Dropdown
    run_a: gr.Dropdown
    run_b: gr.Dropdown
    video: gr.Dropdown
    query: gr.Radio
    first: gr.Number
    last: gr.Number
    head_agg: gr.Radio
    relative: gr.Checkbox
    show: gr.Button
    overlay_a: gr.Image
    overlay_b: gr.Image
    frames_a: gr.Gallery  # run A's overlay, one frame each, to enlarge
    frames_b: gr.Gallery
    attn_note: gr.Markdown
    frame: gr.Image
    box: BoxForm
    fill: gr.Dropdown
    align: gr.Checkbox
    note: gr.Markdown
    mask: gr.Button
    save: gr.Button
    original: gr.Video
    masked: gr.Video
    result: gr.HTML
    source: gr.Dropdown
    exp_fill: gr.Dropdown
    k_random: gr.Number
    seed: gr.Number
    exp_align: gr.Checkbox
    start: gr.Button
    progress: gr.HTML
    table: gr.Dataframe
    chart: gr.Image
    frame_state: gr.State  # {"video_id", "path", "size", "scale"} of the frame drawn on
    corner: gr.State  # the first corner clicked, until the second
    job: gr.State
    timer: gr.Timer

    def per_dataset(self) -> list:
        return [self.run_a, self.run_b, self.video, self.table, self.chart]

    def attach(self, demo: gr.Blocks, db_url: Optional[str]) -> None:
        ev, box = Events(self, db_url), components(self.box)
        ev.on(self.dataset.input, on_dataset, [self.dataset], self.per_dataset(), api_name="inspect_dataset")
        ev.on(self.video.change, on_video, [self.video], [self.frame, self.frame_state, self.note],
              api_name="inspect_video")
        ev.on(self.show.click, on_attention, [self.run_a, self.run_b, self.video, self.query, self.first, self.last,
                                              self.head_agg, self.relative],
              [self.overlay_a, self.overlay_b, self.attn_note], api_name="inspect_attention", **MODEL_QUEUE)
        for overlay in (self.overlay_a, self.overlay_b):
            ev.on(overlay.change, on_overlay_frames, [self.overlay_a, self.overlay_b], [self.frames_a, self.frames_b],
                  api_visibility="private", show_progress="hidden")
        corners = [self.box.x0, self.box.y0, self.box.x1, self.box.y1]
        ev.on(self.frame.select, on_click, [self.frame_state, self.corner], [self.corner, *corners, self.frame,
                                                                            self.note], api_visibility="private")
        ev.on(self.mask.click, on_mask, [self.run_a, self.run_b, self.video, *box, self.fill, self.align],
              [self.original, self.masked, self.result], api_name="inspect_mask", **MODEL_QUEUE)
        ev.on(self.save.click, on_save_box, [self.dataset, self.video, *box], [self.note], api_name="inspect_save_box")
        ev.on(self.start.click, on_start, [self.dataset, self.run_a, self.run_b, self.source, self.exp_fill,
                                           self.k_random, self.seed, self.exp_align],
              [self.job, self.timer, self.progress], api_name="inspect_start")
        ev.on(self.timer.tick, on_poll, [self.job], [self.job, self.timer, self.progress, self.table, self.chart],
              api_name="inspect_poll", show_progress="hidden")
        ev.on(demo.load, on_page_load, [], [self.dataset, *self.per_dataset()], api_visibility="private")


def _run_choices(db_url, dataset):
    runs = ins.list_runs(db_url, dataset) if dataset else []
    return [(f"{r['run_id']} ({r['kind']})", r["run_id"]) for r in runs]


def _experiment(tab: InspectTab, dataset: Optional[str]) -> Updates:
    found = latest_experiment(dataset) if dataset else None
    if not found:
        return {tab.table: gr.Dataframe(value=[], headers=TABLE_COLUMNS), tab.chart: None}
    return {tab.table: gr.Dataframe(value=table_rows(found["models"]), headers=TABLE_COLUMNS),
            tab.chart: found["files"]["png"]}


def _dataset_choices(tab: InspectTab, db_url: Optional[str], dataset: Optional[str]) -> Updates:
    """Run A / B (direct SFT and RB-FT's Stage II when there are), the videos (test split first), the experiment."""
    runs = _run_choices(db_url, dataset)
    kinds = [c[0].rsplit("(", 1)[-1].rstrip(")") for c in runs]
    first = next((runs[i][1] for i, k in enumerate(kinds) if k == "direct_sft"), runs[0][1] if runs else None)
    second = next((runs[i][1] for i, k in enumerate(kinds) if k == "stage2"), runs[1][1] if len(runs) > 1 else None)
    videos = [(f"{v['external_id']} ({v['label']}, {v['split']})", v["video_id"])
              for v in ins.list_videos(db_url, dataset, None)] if dataset else []
    videos.sort(key=lambda c: "(test" not in c[0].rsplit(",", 1)[0] and ", test)" not in c[0])
    return {tab.run_a: gr.Dropdown(choices=runs, value=first), tab.run_b: gr.Dropdown(choices=runs, value=second),
            tab.video: gr.Dropdown(choices=videos, value=videos[0][1] if videos else None),
            **_experiment(tab, dataset)}


def _seconds(text) -> Optional[float]:
    text = str(text or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise gr.Error(f"time {escape(text)!r} is not a number of seconds; type e.g. 1.5 or leave it empty") from None


def _boxes(box: BoxForm, values: Values) -> list[list[Any]]:
    """The form's box as ``[[x0, y0, x1, y1, t0, t1]]``, the shape ``rbft_core.tabs.inspect`` takes."""
    corners = [values[box.x0], values[box.y0], values[box.x1], values[box.y1]]
    if None in corners:
        raise gr.Error("draw a box first: click two corners on the frame, or type x0, y0, x1, y1")
    return [[*corners, _seconds(values[box.t0]), _seconds(values[box.t1])]]


def _probs(cond) -> str:
    return f"<b>{escape(cond['pred'])}</b> " + ", ".join(f"{escape(k)} {v:.3f}" for k, v in cond["probs"].items())


def _video_id(values: Values, tab: InspectTab) -> int:
    if values[tab.video] is None:
        raise gr.Error("pick a video first")
    return int(values[tab.video])


# --------------------------------------------------------------------------------------- handlers
def on_dataset(tab: InspectTab, db_url: Optional[str], values: Values) -> Updates:
    return _dataset_choices(tab, db_url, values[tab.dataset])


def on_page_load(tab: InspectTab, db_url: Optional[str], values: Values) -> Updates:
    names = [r["name"] for r in dataset_overview(db_url)]
    first = names[0] if names else None
    return {tab.dataset: gr.Dropdown(choices=names, value=first), **_dataset_choices(tab, db_url, first)}


def on_video(tab: InspectTab, db_url: Optional[str], values: Values) -> Updates:
    if values[tab.video] is None:
        return {tab.frame: None, tab.frame_state: None, tab.note: None}
    video_id = int(values[tab.video])
    frame = ins.frame_for_boxes(db_url, video_id)
    (w, h), scale = frame["source_size"], frame["scale"]
    shown = f" (shown {scale}x)" if scale > 1 else ""
    return {tab.frame: frame["path"],
            tab.frame_state: {"video_id": video_id, "path": frame["path"], "size": [w, h], "scale": scale},
            tab.note: f"Frame {w}x{h} px{shown}, {frame['duration_s']:.1f} s: click two corners to draw a box "
                      "(boxes are in source pixels)."}


def on_attention(tab: InspectTab, db_url: Optional[str], values: Values) -> Updates:
    if values[tab.video] is None or not (values[tab.run_a] or values[tab.run_b]):
        raise gr.Error("pick a video and at least one run")
    layers = (int(values[tab.first]), int(values[tab.last]))
    shown: Updates = {}
    notes = []
    for run, overlay in ((tab.run_a, tab.overlay_a), (tab.run_b, tab.overlay_b)):
        run_id = values[run]
        if not run_id:
            shown[overlay] = None
            continue
        out = ins.attention_overlay(db_url, run_id, int(values[tab.video]), query=values[tab.query], layers=layers,
                                    head_agg=values[tab.head_agg], relative=bool(values[tab.relative]))
        shown[overlay] = out["png"]
        share = f"{out['share']:.2f} of the video attention on the critical object" if out["share"] is not None else ""
        notes.append(f"**{escape(run_id)}**: layers {out['layers'][0]}-{out['layers'][-1]}; {share}; "
                     f"frames: {escape(out['sampling_note'])}")
    return {**shown, tab.attn_note: "  \n".join(notes)}


def on_click(tab: InspectTab, db_url: Optional[str], values: Values, *, evt: gr.SelectData) -> Updates:
    """First click: a corner; second click: the box (filled into x0..y1 and drawn on the frame)."""
    frame, corner, box = values[tab.frame_state], values[tab.corner], tab.box
    if not frame:
        raise gr.Error("pick a video first")
    x, y = to_source(evt.index, int(frame.get("scale") or 1), frame["size"])  # shown pixels -> source pixels
    if corner is None:
        return {tab.corner: [x, y], box.x0: x, box.y0: y, tab.note: "first corner set; click the opposite corner"}
    drawn = [min(corner[0], x), min(corner[1], y), max(corner[0], x), max(corner[1], y)]
    try:
        preview = ins.preview_box(frame["path"], drawn, int(frame.get("scale") or 1))
    except Exception as exc:  # a zero-area click pair: say so and start again
        return {tab.corner: None, tab.note: escape(str(exc))}
    return {tab.corner: None, box.x0: drawn[0], box.y0: drawn[1], box.x1: drawn[2], box.y1: drawn[3],
            tab.frame: preview, tab.note: f"box {[round(v) for v in drawn]}"}


def on_overlay_frames(tab: InspectTab, db_url: Optional[str], values: Values) -> Updates:
    """Each run's overlay, one frame per gallery item (click one to see it large)."""
    return {tab.frames_a: ins.overlay_frames_of(values[tab.overlay_a]) or None,
            tab.frames_b: ins.overlay_frames_of(values[tab.overlay_b]) or None}


def on_mask(tab: InspectTab, db_url: Optional[str], values: Values) -> Updates:
    video_id = _video_id(values, tab)
    out = ins.mask_one_video(db_url, [values[tab.run_a], values[tab.run_b]], video_id, _boxes(tab.box, values),
                             fill=values[tab.fill], align_to_grid=bool(values[tab.align]))
    rows = "".join(f"<tr><td>{escape(run)}</td><td>{_probs(r['before'])}</td><td>{_probs(r['after'])}</td>"
                   f"<td>{_probs(r['random'])}</td></tr>" for run, r in out["runs"].items())
    notices = "".join(f'<p class="rv-notice">{escape(n)}</p>' for n in out["notices"])
    table = (f"{notices}<p>true label: <b>{escape(out['truth'])}</b></p><table id='inspect-mask-table'><tr><th>run</th>"
             f"<th>original</th><th>masked</th><th>random box (control)</th></tr>{rows}</table>")
    return {tab.original: out["original_clip"], tab.masked: out["masked_clip"], tab.result: table}


def on_save_box(tab: InspectTab, db_url: Optional[str], values: Values) -> Updates:
    video_id = _video_id(values, tab)
    path = ins.save_drawn_boxes(db_url, values[tab.dataset], video_id, _boxes(tab.box, values))
    return {tab.note: f"box saved to {escape(str(path))} (use regions \"boxes drawn here\" in the experiment)"}


def on_start(tab: InspectTab, db_url: Optional[str], values: Values) -> Updates:
    dataset = values[tab.dataset]
    job_id = ins.start_experiment(db_url, dataset, [values[tab.run_a], values[tab.run_b]],
                                  regions_source=values[tab.source], fill=values[tab.exp_fill],
                                  k_random=int(values[tab.k_random]), seed=int(values[tab.seed]),
                                  align_to_grid=bool(values[tab.exp_align]))
    return {tab.job: {"job": job_id, "dataset": dataset}, tab.timer: gr.Timer(active=True),
            tab.progress: f"masking experiment job {job_id} started"}


def on_poll(tab: InspectTab, db_url: Optional[str], values: Values) -> Updates:
    job = values[tab.job]
    if not job:
        return {tab.job: None, tab.timer: gr.Timer(active=False)}
    status = job_status(db_url, job["job"])
    if status["status"] in ("queued", "running"):
        return {tab.job: job, tab.progress: job_html(status)}
    return {tab.job: None, tab.timer: gr.Timer(active=False), tab.progress: job_html(status),
            **_experiment(tab, job["dataset"])}


# ---------------------------------------------------------------------------------------- layout
def _box_form() -> BoxForm:
    with gr.Row():
        x0, y0, x1, y1 = (gr.Number(label=n, precision=1, elem_id=f"inspect-{n}") for n in ("x0", "y0", "x1", "y1"))
    with gr.Row():
        t0 = gr.Textbox(label="from (s; empty: start)", elem_id="inspect-t0")
        t1 = gr.Textbox(label="to (s; empty: end)", elem_id="inspect-t1")
    return BoxForm(x0=x0, y0=y0, x1=x1, y1=y1, t0=t0, t1=t1)


def build_inspect_tab() -> InspectTab:
    with gr.Row():
        dataset = gr.Dropdown(label="Dataset", choices=[], elem_id="inspect-dataset", allow_custom_value=True)
        run_a = gr.Dropdown(label="Run A (e.g. direct SFT)", choices=[], elem_id="inspect-run-a")
        run_b = gr.Dropdown(label="Run B (e.g. RB-FT)", choices=[], elem_id="inspect-run-b")
        video = gr.Dropdown(label="Video", choices=[], elem_id="inspect-video")
    with gr.Row():
        query = gr.Radio(["answer", "rationale"], value="answer", label="Query tokens")
        first = gr.Number(label="First layer", value=0, precision=0)
        last = gr.Number(label="Last layer (-1: last)", value=-1, precision=0)
        head_agg = gr.Radio(["mean", "max"], value="mean", label="Heads")
        relative = gr.Checkbox(label="Relative to a generic prompt", value=False)
        show = gr.Button("Show attention", variant="primary", elem_id="inspect-show")
    with gr.Row():
        with gr.Column():
            overlay_a = gr.Image(label="Run A attention", type="filepath", interactive=False,
                                 elem_id="inspect-overlay-a")
            frames_a = gr.Gallery(label="Run A per frame (click one to enlarge)", columns=4, height=300,
                                  allow_preview=True, object_fit="contain", elem_id="inspect-frames-a")
        with gr.Column():
            overlay_b = gr.Image(label="Run B attention", type="filepath", interactive=False,
                                 elem_id="inspect-overlay-b")
            frames_b = gr.Gallery(label="Run B per frame (click one to enlarge)", columns=4, height=300,
                                  allow_preview=True, object_fit="contain", elem_id="inspect-frames-b")
    attn_note = gr.Markdown(elem_id="inspect-attn-note")
    with gr.Row():
        frame = gr.Image(label="Click two corners to draw a box", type="filepath", interactive=False,
                         elem_id="inspect-frame", min_width=MIN_DISPLAY_WIDTH_PX + 40)
        with gr.Column():
            box = _box_form()
            with gr.Row():
                fill = gr.Dropdown(label="Fill", choices=["black", "mean", "blur"], value="black")
                align = gr.Checkbox(label="Align to the model's token grid", value=False)
            note = gr.Markdown(elem_id="inspect-box-note")
            with gr.Row():
                mask = gr.Button("Mask this video", variant="primary", elem_id="inspect-mask")
                save = gr.Button("Save box for experiments", size="sm")
    with gr.Row():
        original = gr.Video(label="Original", elem_id="inspect-original")
        masked = gr.Video(label="Masked", elem_id="inspect-masked")
    result = gr.HTML(elem_id="inspect-mask-result")
    with gr.Accordion("Experiments: mask the critical object vs random boxes on the test split (job)", open=True):
        with gr.Row():
            source = gr.Dropdown(label="Regions", choices=_REGIONS, value="meta")
            exp_fill = gr.Dropdown(label="Fill", choices=["black", "mean", "blur"], value="black")
            k_random = gr.Number(label="Random trials", value=3, precision=0, minimum=1)
            seed = gr.Number(label="Seed", value=0, precision=0)
            exp_align = gr.Checkbox(label="Align to token grid", value=False)
            start = gr.Button("Run experiment", variant="primary", elem_id="inspect-start")
        progress = gr.HTML(elem_id="inspect-job")
        table = gr.Dataframe(headers=TABLE_COLUMNS, interactive=False, label="Per model", elem_id="inspect-table")
        chart = gr.Image(label="Accuracy: original / critical masked / random masked", type="filepath",
                         interactive=False, elem_id="inspect-chart")
    return InspectTab(dataset=dataset, run_a=run_a, run_b=run_b, video=video, query=query, first=first, last=last,
                      head_agg=head_agg, relative=relative, show=show, overlay_a=overlay_a, overlay_b=overlay_b,
                      frames_a=frames_a, frames_b=frames_b, attn_note=attn_note, frame=frame, box=box, fill=fill,
                      align=align, note=note, mask=mask,
                      save=save, original=original, masked=masked, result=result, source=source, exp_fill=exp_fill,
                      k_random=k_random, seed=seed, exp_align=exp_align, start=start, progress=progress, table=table,
                      chart=chart, frame_state=gr.State(None), corner=gr.State(None), job=gr.State(None),
                      timer=gr.Timer(1.0, active=False))

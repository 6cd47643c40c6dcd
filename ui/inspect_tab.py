"""Inspect tab: attention overlays of two runs side by side, masking one video, the test-split experiment.

A box is drawn by clicking two corners on the frame (Gradio's select event gives the pixel clicked), or typed
as x0, y0, x1, y1 (source pixels); an optional time range limits it. The experiment runs as a background job
(``rbft mask-experiment``) polled by a gr.Timer only while it runs. State holds only small values (job id,
the frame being drawn on and the first corner).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Callable, Optional

import gradio as gr

from rbft_core.data.catalog import dataset_overview
from rbft_core.inspection.mask_reports import (
    TABLE_COLUMNS,
    latest_experiment,
    table_rows,
)
from rbft_core.jobs.runner import job_status
from rbft_core.tabs import inspect as ins
from ui.common import bind, ui_errors
from ui.review_render import job_html

__all__ = ["InspectTab", "build_inspect_tab", "on_page_load", "on_dataset", "on_video", "on_attention", "on_click",
           "on_mask", "on_save_box", "on_start", "on_poll"]

_REGIONS = [("critical-object boxes in the video metadata (demo world)", "meta"), ("boxes drawn here", "drawn"),
            ("motion (frame differencing)", "motion"), ("each model's top attention cells", "attention")]


@dataclass
class InspectTab:
    dataset: gr.Dropdown
    load_fn: Callable
    load_outputs: list


def _run_choices(db_url, dataset):
    runs = ins.list_runs(db_url, dataset) if dataset else []
    return [(f"{r['run_id']} ({r['kind']})", r["run_id"]) for r in runs]


def _experiment(dataset):
    found = latest_experiment(dataset) if dataset else None
    if not found:
        return gr.Dataframe(value=[], headers=TABLE_COLUMNS), None
    return gr.Dataframe(value=table_rows(found["models"]), headers=TABLE_COLUMNS), found["files"]["png"]


@ui_errors
def on_dataset(db_url, dataset):
    runs = _run_choices(db_url, dataset)
    kinds = [c[0].rsplit("(", 1)[-1].rstrip(")") for c in runs]
    first = next((runs[i][1] for i, k in enumerate(kinds) if k == "direct_sft"), runs[0][1] if runs else None)
    second = next((runs[i][1] for i, k in enumerate(kinds) if k == "stage2"), runs[1][1] if len(runs) > 1 else None)
    videos = [(f"{v['external_id']} ({v['label']}, {v['split']})", v["video_id"])
              for v in ins.list_videos(db_url, dataset, None)] if dataset else []
    videos.sort(key=lambda c: "(test" not in c[0].rsplit(",", 1)[0] and ", test)" not in c[0])
    return (gr.Dropdown(choices=runs, value=first), gr.Dropdown(choices=runs, value=second),
            gr.Dropdown(choices=videos, value=videos[0][1] if videos else None), *_experiment(dataset))


@ui_errors
def on_page_load(db_url):
    names = [r["name"] for r in dataset_overview(db_url)]
    first = names[0] if names else None
    return gr.Dropdown(choices=names, value=first), *on_dataset(db_url, first)


@ui_errors
def on_video(db_url, video_id):
    if video_id is None:
        return None, None, None
    frame = ins.frame_for_boxes(db_url, int(video_id))
    w, h = frame["source_size"]
    return frame["path"], {"video_id": int(video_id), "path": frame["path"], "size": [w, h]}, \
        f"Frame {w}x{h} px, {frame['duration_s']:.1f} s: click two corners to draw a box."


@ui_errors
def on_attention(db_url, run_a, run_b, video_id, query, first, last, head_agg, relative):
    if video_id is None or not (run_a or run_b):
        raise gr.Error("pick a video and at least one run")
    layers = (int(first), int(last))
    images, notes = [], []
    for run_id in (run_a, run_b):
        if not run_id:
            images.append(None)
            continue
        out = ins.attention_overlay(db_url, run_id, int(video_id), query=query, layers=layers, head_agg=head_agg,
                                    relative=bool(relative))
        images.append(out["png"])
        share = f"{out['share']:.2f} of the video attention on the critical object" if out["share"] is not None else ""
        notes.append(f"**{escape(run_id)}**: layers {out['layers'][0]}-{out['layers'][-1]}; {share}; "
                     f"frames: {escape(out['sampling_note'])}")
    return images[0], images[1], "  \n".join(notes)


def on_click(frame, corner, evt: gr.SelectData):
    """First click: a corner; second click: the box (filled into x0..y1 and drawn on the frame)."""
    if not frame:
        raise gr.Error("pick a video first")
    x, y = (float(v) for v in evt.index)
    if corner is None:
        return [x, y], x, y, gr.skip(), gr.skip(), gr.skip(), "first corner set; click the opposite corner"
    box = [min(corner[0], x), min(corner[1], y), max(corner[0], x), max(corner[1], y)]
    try:
        preview = ins.preview_box(frame["path"], box)
    except Exception as exc:  # a zero-area click pair: say so and start again
        return None, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), escape(str(exc))
    return None, box[0], box[1], box[2], box[3], preview, f"box {[round(v) for v in box]}"


def _seconds(text) -> Optional[float]:
    text = str(text or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise gr.Error(f"time {escape(text)!r} is not a number of seconds; type e.g. 1.5 or leave it empty") from None


def _box(x0, y0, x1, y1, t0, t1):
    if None in (x0, y0, x1, y1):
        raise gr.Error("draw a box first: click two corners on the frame, or type x0, y0, x1, y1")
    return [[x0, y0, x1, y1, _seconds(t0), _seconds(t1)]]


def _probs(cond) -> str:
    return f"<b>{escape(cond['pred'])}</b> " + ", ".join(f"{escape(k)} {v:.3f}" for k, v in cond["probs"].items())


@ui_errors
def on_mask(db_url, run_a, run_b, video_id, x0, y0, x1, y1, t0, t1, fill, align):
    if video_id is None:
        raise gr.Error("pick a video first")
    out = ins.mask_one_video(db_url, [run_a, run_b], int(video_id), _box(x0, y0, x1, y1, t0, t1), fill=fill,
                             align_to_grid=bool(align))
    rows = "".join(f"<tr><td>{escape(run)}</td><td>{_probs(r['before'])}</td><td>{_probs(r['after'])}</td>"
                   f"<td>{_probs(r['random'])}</td></tr>" for run, r in out["runs"].items())
    notices = "".join(f'<p class="rv-notice">{escape(n)}</p>' for n in out["notices"])
    table = (f"{notices}<p>true label: <b>{escape(out['truth'])}</b></p><table id='inspect-mask-table'><tr><th>run</th>"
             f"<th>original</th><th>masked</th><th>random box (control)</th></tr>{rows}</table>")
    return out["original_clip"], out["masked_clip"], table


@ui_errors
def on_save_box(db_url, dataset, video_id, x0, y0, x1, y1, t0, t1):
    if video_id is None:
        raise gr.Error("pick a video first")
    path = ins.save_drawn_boxes(db_url, dataset, int(video_id), _box(x0, y0, x1, y1, t0, t1))
    return f"box saved to {escape(str(path))} (use regions \"boxes drawn here\" in the experiment)"


@ui_errors
def on_start(db_url, dataset, run_a, run_b, source, fill, k_random, seed, align):
    job_id = ins.start_experiment(db_url, dataset, [run_a, run_b], regions_source=source, fill=fill,
                                  k_random=int(k_random), seed=int(seed), align_to_grid=bool(align))
    return {"job": job_id, "dataset": dataset}, gr.Timer(active=True), f"masking experiment job {job_id} started"


@ui_errors
def on_poll(db_url, job):
    if not job:
        return None, gr.Timer(active=False), gr.skip(), gr.skip(), gr.skip()
    status = job_status(db_url, job["job"])
    html = job_html(status)
    if status["status"] in ("queued", "running"):
        return job, gr.skip(), html, gr.skip(), gr.skip()
    return None, gr.Timer(active=False), html, *_experiment(job["dataset"])


def _mask_panel():
    with gr.Row():
        frame = gr.Image(label="Click two corners to draw a box", type="filepath", interactive=False,
                         elem_id="inspect-frame")
        with gr.Column():
            with gr.Row():
                coords = [gr.Number(label=n, precision=1, elem_id=f"inspect-{n}") for n in ("x0", "y0", "x1", "y1")]
            with gr.Row():
                t0 = gr.Textbox(label="from (s; empty: start)", elem_id="inspect-t0")
                t1 = gr.Textbox(label="to (s; empty: end)", elem_id="inspect-t1")
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
    return frame, coords, t0, t1, fill, align, note, mask, save, original, masked, result


def build_inspect_tab(db_url: Optional[str]) -> InspectTab:
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
        overlay_a = gr.Image(label="Run A attention", type="filepath", interactive=False, elem_id="inspect-overlay-a")
        overlay_b = gr.Image(label="Run B attention", type="filepath", interactive=False, elem_id="inspect-overlay-b")
    attn_note = gr.Markdown(elem_id="inspect-attn-note")
    frame, coords, t0, t1, fill, align, note, mask, save, original, masked, result = _mask_panel()
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
    frame_state, corner, job, timer = gr.State(None), gr.State(None), gr.State(None), gr.Timer(1.0, active=False)
    per_dataset = [run_a, run_b, video, table, chart]
    dataset.input(bind(on_dataset, db_url), [dataset], per_dataset, api_name="inspect_dataset")
    video.change(bind(on_video, db_url), [video], [frame, frame_state, note], api_name="inspect_video")
    show.click(bind(on_attention, db_url), [run_a, run_b, video, query, first, last, head_agg, relative],
               [overlay_a, overlay_b, attn_note], api_name="inspect_attention")
    frame.select(on_click, [frame_state, corner], [corner, *coords, frame, note], api_visibility="private")
    mask.click(bind(on_mask, db_url), [run_a, run_b, video, *coords, t0, t1, fill, align], [original, masked, result],
               api_name="inspect_mask")
    save.click(bind(on_save_box, db_url), [dataset, video, *coords, t0, t1], [note], api_name="inspect_save_box")
    start.click(bind(on_start, db_url), [dataset, run_a, run_b, source, exp_fill, k_random, seed, exp_align],
                [job, timer, progress], api_name="inspect_start")
    timer.tick(bind(on_poll, db_url), [job], [job, timer, progress, table, chart], api_name="inspect_poll",
               show_progress="hidden")
    return InspectTab(dataset=dataset, load_fn=bind(on_page_load, db_url), load_outputs=[dataset, *per_dataset])

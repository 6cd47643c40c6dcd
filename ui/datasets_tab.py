"""Datasets tab: create a dataset, import videos and generate rationales (as jobs), counts and reports.

Imports and generation run as background jobs (rbft_core.jobs.runner); a gr.Timer polls the job only while
one runs, and the page re-attaches to a running job when it loads. State holds only the job id,
its kind and dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Callable, Optional

import gradio as gr

from rbft_core.data import catalog
from rbft_core.data.importer import FORMATS
from rbft_core.demo import demo_model_path
from rbft_core.jobs.runner import job_status
from rbft_core.models.prompts import PRESETS
from rbft_core.tabs import datasets
from ui.common import bind, ui_errors
from ui.review_render import job_html

__all__ = ["DatasetsTab", "build_datasets_tab", "on_refresh", "on_create", "on_import", "on_generate",
           "on_select", "on_poll", "on_preset", "on_page_load"]

_OVERVIEW = ["dataset", "preset", "labels", "videos", "train", "test", "pending", "accepted", "rejected", "unreadable"]


@dataclass
class DatasetsTab:
    table: gr.Dataframe
    refresh: gr.Button
    refresh_fn: Callable
    outputs: list
    selected: gr.Dropdown
    load_fn: Callable
    load_outputs: list


def on_refresh(db_url: Optional[str]):
    rows = catalog.dataset_overview(db_url)
    return [[r["name"], r["preset"], ", ".join(r["labels"]), r["total"], r["train"], r["test"],
             r["pending"], r["accepted"], r["rejected"], r["unreadable"]] for r in rows]


def _names(db_url) -> list[str]:
    return [r["name"] for r in catalog.dataset_overview(db_url)]


@ui_errors
def on_preset(preset):
    fields = datasets.preset_fields(preset)
    return fields["role"], fields["task"], fields["labels"], fields["criteria"]


@ui_errors
def on_create(db_url, name, preset, role, task, labels, criteria):
    made = datasets.create_dataset(db_url, name, preset=preset, role=role, task=task, labels=labels, criteria=criteria)
    gr.Info(f"dataset {made['name']} created with labels {', '.join(made['labels'])}")
    return on_refresh(db_url), gr.Dropdown(choices=_names(db_url), value=made["name"])


@ui_errors
def on_import(db_url, dataset, source, manifest, fmt):
    staged = datasets.stage_manifest(manifest) if manifest else None
    job_id = datasets.start_import(db_url, dataset, source, manifest=staged, fmt=fmt or "auto")
    return {"job": job_id, "kind": "import", "dataset": dataset.strip()}, gr.Timer(active=True), \
        f"import job {job_id} started"


@ui_errors
def on_generate(db_url, dataset, model, num_frames, batch_size, split, label_hint):
    job_id = datasets.start_generation(db_url, dataset, model, num_frames=num_frames, batch_size=batch_size,
                                       split=split, label_hint=label_hint)
    return {"job": job_id, "kind": "generate", "dataset": dataset}, gr.Timer(active=True), \
        f"generation job {job_id} started"


def _detail_tables(db_url, dataset):
    if not dataset:
        return [], [], "", []
    detail = datasets.dataset_detail(db_url, dataset)
    splits = sorted(detail["label_split"])
    per_label = [[label, *[detail["label_split"][s].get(label, 0) for s in splits], n]
                 for label, n in detail["labels"].items()]
    statuses = [[status, n] for status, n in detail["review_status"].items()]
    run = datasets.import_report(db_url, dataset)
    if run is None:
        return gr.Dataframe(value=per_label, headers=["label", *splits, "total"]), statuses, "No import yet.", []
    report = run["report"]
    summary = (f"Last import from {run['source']} ({run['format']}): {report.get('imported', 0)} imported, "
               f"{report.get('unchanged', 0)} unchanged, {len(report.get('failed', []))} failed.")
    failed = [[f.get("path", ""), f.get("error", "")] for f in report.get("failed", [])]
    return gr.Dataframe(value=per_label, headers=["label", *splits, "total"]), statuses, summary, failed


@ui_errors
def on_select(db_url, dataset):
    """Counts per label x split and per review status, and the latest import report of ``dataset``."""
    return _detail_tables(db_url, dataset)


@ui_errors
def on_poll(db_url, job, selected):
    """Poll the running job; when it ends, stop the timer and refresh the counts and the report."""

    if not job:
        return None, gr.Timer(active=False), "", *[gr.skip()] * 6
    status = job_status(db_url, job["job"])
    html = f"{escape(job['kind'])} of {escape(job['dataset'])}: " + job_html(status)
    if status["status"] in ("queued", "running"):
        return job, gr.skip(), html, *[gr.skip()] * 6
    names = _names(db_url)
    shown = job["dataset"] if job["dataset"] in names else selected
    return (None, gr.Timer(active=False), html, on_refresh(db_url), gr.Dropdown(choices=names, value=shown),
            *_detail_tables(db_url, shown))


@ui_errors
def on_page_load(db_url):
    """Datasets, the first one's details, and the job still running for it (re-attached)."""
    names = _names(db_url)
    first = names[0] if names else None
    job = datasets.active_job(db_url, first) if first else None
    return (on_refresh(db_url), gr.Dropdown(choices=names, value=first), *_detail_tables(db_url, first), job,
            gr.Timer(active=job is not None))


def _create_form():
    with gr.Accordion("Create a dataset", open=False):
        with gr.Row():
            name = gr.Textbox(label="Name", placeholder="front-door")
            preset = gr.Dropdown(label="Preset", choices=[*PRESETS, "custom"], value="smart-home")
            labels = gr.Textbox(label="Labels (comma-separated)", value=datasets.preset_fields("smart-home")["labels"])
        role = gr.Textbox(label="Expert role", value=datasets.preset_fields("smart-home")["role"])
        task = gr.Textbox(label="Task", value=datasets.preset_fields("smart-home")["task"])
        criteria = gr.Textbox(label="Decision criteria", lines=3, value=datasets.preset_fields("smart-home")["criteria"])
        create = gr.Button("Create dataset", variant="primary")
    return name, preset, role, task, labels, criteria, create


def _import_form():
    with gr.Accordion("Import videos (runs as a job)", open=False):
        with gr.Row():
            source = gr.Textbox(label="Video folder on the server", placeholder="/data/videos")
            fmt = gr.Dropdown(label="Format", choices=list(FORMATS), value="auto")
        manifest = gr.File(label="Manifest (optional): CSV/JSONL path,label[,split,id], SmartHome-Bench CSV, "
                                 "MultiHateClip TSV", file_types=list(datasets.MANIFEST_SUFFIXES), type="filepath")
        start = gr.Button("Import into the selected dataset", variant="primary")
    return source, manifest, fmt, start


def _generate_form():
    with gr.Accordion("Generate rationales (runs as a job)", open=False):
        with gr.Row():
            # the demo's pre-trained base model when `rbft demo build` has run (make run does)
            model = gr.Textbox(label="Model (local folder or hub id)", placeholder="Qwen/Qwen2.5-VL-7B-Instruct",
                               value=demo_model_path())
            frames = gr.Number(label="Frames", value=8, precision=0, minimum=1, maximum=32)
            batch = gr.Number(label="Batch size", value=4, precision=0, minimum=1)
            split = gr.Dropdown(label="Split", choices=["train", "val", "test", "all"], value="train")
            hint = gr.Checkbox(label="Tell the model the label", value=True)
        start = gr.Button("Generate", variant="primary")
    return model, frames, batch, split, hint, start


def build_datasets_tab(db_url: Optional[str]) -> DatasetsTab:
    table = gr.Dataframe(headers=_OVERVIEW, interactive=False, label="Datasets")
    refresh = gr.Button("Refresh", size="sm")
    selected = gr.Dropdown(label="Dataset (import target, details, generation)", choices=[], allow_custom_value=True,
                           elem_id="ds-selected")
    name, preset, role, task, labels, criteria, create = _create_form()
    source, manifest, fmt, start_import = _import_form()
    model, frames, batch, split, hint, start_generate = _generate_form()
    progress = gr.HTML(elem_id="ds-job")
    with gr.Row():
        per_label = gr.Dataframe(label="Videos per label and split", interactive=False)
        per_status = gr.Dataframe(headers=["review status", "videos"], label="Reviews", interactive=False)
    report = gr.Markdown(elem_id="ds-report")
    failed = gr.Dataframe(headers=["file", "why it was not imported"], label="Failed files", interactive=False,
                          wrap=True)
    job, timer = gr.State(None), gr.Timer(1.0, active=False)
    details = [per_label, per_status, report, failed]
    refresh.click(bind(on_refresh, db_url), None, [table], api_name="datasets_refresh")
    preset.input(on_preset, [preset], [role, task, labels, criteria], api_visibility="private")
    create.click(bind(on_create, db_url), [name, preset, role, task, labels, criteria], [table, selected],
                 api_name="datasets_create")
    selected.input(bind(on_select, db_url), [selected], details, api_name="datasets_select")
    start_import.click(bind(on_import, db_url), [selected, source, manifest, fmt], [job, timer, progress],
                       api_name="datasets_import")
    start_generate.click(bind(on_generate, db_url), [selected, model, frames, batch, split, hint], [job, timer, progress],
                         api_name="datasets_generate")
    timer.tick(bind(on_poll, db_url), [job, selected], [job, timer, progress, table, selected, *details],
               api_name="datasets_poll", show_progress="hidden")
    load_fn = bind(on_page_load, db_url)
    return DatasetsTab(table=table, refresh=refresh, refresh_fn=bind(on_refresh, db_url), outputs=[table],
                       selected=selected, load_fn=load_fn, load_outputs=[table, selected, *details, job, timer])

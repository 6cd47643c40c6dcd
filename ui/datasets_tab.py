"""Datasets tab: create a dataset, import videos and generate rationales (as jobs), counts and reports.

Imports and generation run as background jobs (rbft_core.jobs.runner); a gr.Timer polls the job only while
one runs, and the page re-attaches to a running job when it loads. State holds only the job id,
its kind and dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any, Optional

import gradio as gr

from rbft_core.data import catalog
from rbft_core.data.importer import FORMATS
from rbft_core.demo import demo_model_path
from rbft_core.errors import ConfigError
from rbft_core.jobs.runner import job_status
from rbft_core.models.prompts import PRESETS
from rbft_core.tabs import datasets
from ui.common import Events, Updates, Values
from ui.review_render import job_html

__all__ = ["DatasetsTab", "CreateForm", "ImportForm", "GenerateForm", "build_datasets_tab", "on_refresh", "on_create",
           "on_import", "on_generate", "on_generate_model", "on_select", "on_failed_page", "on_poll", "on_preset", "on_page_load"]

FAILED_PAGE = 100  # failed files per page

_OVERVIEW = ["dataset", "preset", "labels", "videos", "train", "test", "pending", "accepted", "rejected", "unreadable"]


@dataclass
class CreateForm:
    name: gr.Textbox
    preset: gr.Dropdown
    role: gr.Textbox
    task: gr.Textbox
    labels: gr.Textbox
    criteria: gr.Textbox
    dimensions: gr.Textbox  # one "name: description" per line, "?" after an optional one's name
    create: gr.Button


@dataclass
class ImportForm:
    source: gr.Textbox
    manifest: gr.File
    fmt: gr.Dropdown
    workers: gr.Number  # hashing / probing processes, 0: one per core
    start: gr.Button


@dataclass
class GenerateForm:
    model: gr.Textbox
    frames: gr.Number
    frames_note: gr.Markdown  # where the frame count came from (the model folder, or the built-in default)
    batch: gr.Number
    split: gr.Dropdown
    hint: gr.Checkbox
    nproc: gr.Number  # generation processes (torchrun), each with its share of the videos
    start: gr.Button


@dataclass
class DatasetsTab:
    table: gr.Dataframe
    refresh: gr.Button
    selected: gr.Dropdown
    create: CreateForm
    imports: ImportForm
    generate: GenerateForm
    progress: gr.HTML
    per_label: gr.Dataframe
    per_status: gr.Dataframe
    report: gr.Markdown
    failed: gr.Dataframe
    failed_page: gr.Number  # which page of the failed files is shown (1-based, FAILED_PAGE rows each)
    job: gr.State  # {"job", "kind", "dataset"} of the job this page follows
    timer: gr.Timer

    def details(self) -> list:
        return [self.per_label, self.per_status, self.report, self.failed, self.failed_page]

    def attach(self, demo: gr.Blocks, db_url: Optional[str]) -> None:
        ev, c, i, g = Events(self, db_url), self.create, self.imports, self.generate
        ev.on(self.refresh.click, on_refresh, [], [self.table], api_name="datasets_refresh")
        ev.on(c.preset.input, on_preset, [c.preset], [c.role, c.task, c.labels, c.criteria, c.dimensions],
              api_visibility="private")
        ev.on(c.create.click, on_create, [c.name, c.preset, c.role, c.task, c.labels, c.criteria, c.dimensions],
              [self.table, self.selected], api_name="datasets_create")
        ev.on(self.selected.input, on_select, [self.selected], self.details(), api_name="datasets_select")
        started = [self.job, self.timer, self.progress]
        ev.on(i.start.click, on_import, [self.selected, i.source, i.manifest, i.fmt, i.workers], started,
              api_name="datasets_import")
        ev.on(self.failed_page.submit, on_failed_page, [self.selected, self.failed_page],
              [self.failed, self.failed_page], api_name="datasets_failed_page")
        ev.on(g.model.change, on_generate_model, [g.model], [g.frames, g.frames_note], api_visibility="private")
        ev.on(g.start.click, on_generate, [self.selected, g.model, g.frames, g.batch, g.split, g.hint, g.nproc],
              started, api_name="datasets_generate")
        ev.on(self.timer.tick, on_poll, [self.job, self.selected],
              [*started, self.table, self.selected, *self.details()], api_name="datasets_poll",
              show_progress="hidden")
        ev.on(demo.load, on_page_load, [], [self.table, self.selected, *self.details(), self.job, self.timer],
              api_visibility="private")


def _overview(db_url: Optional[str]) -> list[list[Any]]:
    rows = catalog.dataset_overview(db_url)
    return [[r["name"], r["preset"], ", ".join(r["labels"]), r["total"], r["train"], r["test"],
             r["pending"], r["accepted"], r["rejected"], r["unreadable"]] for r in rows]


def _names(db_url) -> list[str]:
    return [r["name"] for r in catalog.dataset_overview(db_url)]


def _details(tab: DatasetsTab, db_url: Optional[str], dataset: Optional[str]) -> Updates:
    """Counts per label x split and per review status, and the latest import report of ``dataset``."""
    if not dataset:
        return {tab.per_label: [], tab.per_status: [], tab.report: "", **_failed_page(tab, None, None, 1)}
    detail = datasets.dataset_detail(db_url, dataset)
    splits = sorted(detail["label_split"])
    per_label = [[label, *[detail["label_split"][s].get(label, 0) for s in splits], n]
                 for label, n in detail["labels"].items()]
    shown = {tab.per_label: gr.Dataframe(value=per_label, headers=["label", *splits, "total"]),
             tab.per_status: [[status, n] for status, n in detail["review_status"].items()]}
    dims = "Rationale dimensions: " + ", ".join(
        f"**{d['name']}**{'' if d['required'] else ' (optional)'} ({d['description']})" for d in detail["dimensions"])
    run = datasets.import_report(db_url, dataset)
    if run is None:
        return {**shown, tab.report: f"{dims}\n\nNo import yet.", **_failed_page(tab, None, None, 1)}
    report = run["report"]
    summary = (f"Last import from {run['source']} ({run['format']}): {report.get('imported', 0):,} imported, "
               f"{report.get('unchanged', 0):,} unchanged, {int(report.get('failed_total', 0)):,} failed.")
    return {**shown, tab.report: f"{dims}\n\n{summary}", **_failed_page(tab, db_url, dataset, 1)}


def _failed_page(tab: DatasetsTab, db_url: Optional[str], dataset: Optional[str], page: Any) -> Updates:
    """One page of the newest import's failed files (read from its list on disk, never all of it at once)."""
    if not dataset:
        return {tab.failed: [], tab.failed_page: gr.Number(value=1, label="Failed files: page 1 of 1")}
    try:
        wanted = max(1, int(page or 1))
    except (TypeError, ValueError):
        raise ConfigError(f"failed-files page must be a whole number, got {page!r}") from None
    got = datasets.import_failures(db_url, dataset, wanted - 1, FAILED_PAGE)
    rows = [[f.get("path", ""), f.get("error", "")] for f in got["rows"]]
    label = f"Failed files: page {got['page'] + 1} of {got['pages']} ({got['total']:,} in all), Enter to show"
    return {tab.failed: rows, tab.failed_page: gr.Number(value=got["page"] + 1, label=label, maximum=got["pages"])}


def _whole(value: Any, what: str, default: int) -> int:
    if value in (None, ""):
        return default
    if float(value) != int(float(value)):
        raise ConfigError(f"{what} must be a whole number, got {value!r}")
    return int(float(value))


def _following(tab: DatasetsTab, job: dict[str, Any], text: str) -> Updates:
    return {tab.job: job, tab.timer: gr.Timer(active=True), tab.progress: text}


# --------------------------------------------------------------------------------------- handlers
def on_refresh(tab: DatasetsTab, db_url: Optional[str], values: Values) -> Updates:
    return {tab.table: _overview(db_url)}


def on_preset(tab: DatasetsTab, db_url: Optional[str], values: Values) -> Updates:
    form = tab.create
    fields = datasets.preset_fields(values[form.preset])
    return {form.role: fields["role"], form.task: fields["task"], form.labels: fields["labels"],
            form.criteria: fields["criteria"], form.dimensions: fields["dimensions"]}


def on_create(tab: DatasetsTab, db_url: Optional[str], values: Values) -> Updates:
    form = tab.create
    made = datasets.create_dataset(db_url, values[form.name], preset=values[form.preset], role=values[form.role],
                                   task=values[form.task], labels=values[form.labels], criteria=values[form.criteria],
                                   dimensions=values[form.dimensions] or "")
    gr.Info(f"dataset {made['name']} created with labels {', '.join(made['labels'])} and the rationale dimensions "
            f"{', '.join(made['dimensions'])}")
    return {tab.table: _overview(db_url), tab.selected: gr.Dropdown(choices=_names(db_url), value=made["name"])}


def on_import(tab: DatasetsTab, db_url: Optional[str], values: Values) -> Updates:
    form, dataset = tab.imports, values[tab.selected]
    staged = datasets.stage_manifest(values[form.manifest]) if values[form.manifest] else None
    job_id = datasets.start_import(db_url, dataset, values[form.source], manifest=staged,
                                   fmt=values[form.fmt] or "auto", workers=_whole(values[form.workers], "workers", 0))
    return _following(tab, {"job": job_id, "kind": "import", "dataset": dataset.strip()},
                      f"import job {job_id} started")


def on_generate(tab: DatasetsTab, db_url: Optional[str], values: Values) -> Updates:
    form, dataset = tab.generate, values[tab.selected]
    job_id = datasets.start_generation(db_url, dataset, values[form.model], num_frames=values[form.frames],
                                       batch_size=values[form.batch], split=values[form.split],
                                       label_hint=values[form.hint],
                                       nproc_per_node=_whole(values[form.nproc], "processes", 1))
    return _following(tab, {"job": job_id, "kind": "generate", "dataset": dataset},
                      f"generation job {job_id} started")


def on_generate_model(tab: DatasetsTab, db_url: Optional[str], values: Values) -> Updates:
    """The model's frame count in the field, and where it came from beside it (the user may change it)."""
    frames, note = datasets.generation_frames(values[tab.generate.model])
    return {tab.generate.frames: frames, tab.generate.frames_note: note}


def on_select(tab: DatasetsTab, db_url: Optional[str], values: Values) -> Updates:
    return _details(tab, db_url, values[tab.selected])


def on_failed_page(tab: DatasetsTab, db_url: Optional[str], values: Values) -> Updates:
    """Another page of the failed files of the selected dataset's newest import."""
    return _failed_page(tab, db_url, values[tab.selected], values[tab.failed_page])


def on_poll(tab: DatasetsTab, db_url: Optional[str], values: Values) -> Updates:
    """Poll the running job; when it ends, stop the timer and refresh the counts and the report."""
    job = values[tab.job]
    if not job:
        return {tab.job: None, tab.timer: gr.Timer(active=False), tab.progress: ""}
    status = job_status(db_url, job["job"])
    html = f"{escape(job['kind'])} of {escape(job['dataset'])}: " + job_html(status)
    if status["status"] in ("queued", "running"):
        return {tab.job: job, tab.progress: html}
    names = _names(db_url)
    shown = job["dataset"] if job["dataset"] in names else values[tab.selected]
    return {tab.job: None, tab.timer: gr.Timer(active=False), tab.progress: html, tab.table: _overview(db_url),
            tab.selected: gr.Dropdown(choices=names, value=shown), **_details(tab, db_url, shown)}


def on_page_load(tab: DatasetsTab, db_url: Optional[str], values: Values) -> Updates:
    """Datasets, the first one's details, and the job still running for it (re-attached)."""
    names = _names(db_url)
    first = names[0] if names else None
    job = datasets.active_job(db_url, first) if first else None
    return {tab.table: _overview(db_url), tab.selected: gr.Dropdown(choices=names, value=first),
            **_details(tab, db_url, first), tab.job: job, tab.timer: gr.Timer(active=job is not None)}


# ---------------------------------------------------------------------------------------- layout
def _create_form() -> CreateForm:
    smart_home = datasets.preset_fields("smart-home")
    with gr.Accordion("Create a dataset", open=False):
        with gr.Row():
            name = gr.Textbox(label="Name", placeholder="front-door")
            preset = gr.Dropdown(label="Preset", choices=[*PRESETS, "custom"], value="smart-home")
            labels = gr.Textbox(label="Labels (comma-separated)", value=smart_home["labels"])
        role = gr.Textbox(label="Expert role", value=smart_home["role"])
        task = gr.Textbox(label="Task", value=smart_home["task"])
        criteria = gr.Textbox(label="Decision criteria", lines=3, value=smart_home["criteria"])
        dimensions = gr.Textbox(label="Rationale dimensions: one 'name: description' per line, '?' after the name of "
                                      "an optional one (e.g. speech?: on-screen text and speech)", lines=4,
                                value=smart_home["dimensions"], elem_id="ds-dimensions")
        create = gr.Button("Create dataset", variant="primary")
    return CreateForm(name=name, preset=preset, role=role, task=task, labels=labels, criteria=criteria,
                      dimensions=dimensions, create=create)


def _import_form() -> ImportForm:
    with gr.Accordion("Import videos (runs as a job)", open=False):
        with gr.Row():
            source = gr.Textbox(label="Video folder on the server", placeholder="/data/videos")
            fmt = gr.Dropdown(label="Format", choices=list(FORMATS), value="auto")
            workers = gr.Number(label="Hashing processes (0: one per core)", value=0, precision=0, minimum=0,
                                maximum=64)
        manifest = gr.File(label="Manifest (optional): CSV/JSONL path,label[,split,id], SmartHome-Bench CSV, "
                                 "MultiHateClip TSV", file_types=list(datasets.MANIFEST_SUFFIXES), type="filepath")
        start = gr.Button("Import into the selected dataset", variant="primary")
    return ImportForm(source=source, manifest=manifest, fmt=fmt, workers=workers, start=start)


def _generate_form() -> GenerateForm:
    with gr.Accordion("Generate rationales (runs as a job)", open=False):
        with gr.Row():
            # the demo's pre-trained base model when `rbft demo build` has run (make run does)
            model = gr.Textbox(label="Model (local folder or hub id)", placeholder="Qwen/Qwen2.5-VL-7B-Instruct",
                               value=demo_model_path(), elem_id="ds-gen-model")
            default_frames, note = datasets.generation_frames(model.value)
            with gr.Column(min_width=160):
                frames = gr.Number(label="Frames", value=default_frames, precision=0, minimum=1, maximum=32,
                                   elem_id="ds-gen-frames")
                frames_note = gr.Markdown(note, elem_id="ds-gen-frames-note")
            batch = gr.Number(label="Batch size", value=4, precision=0, minimum=1)
            split = gr.Dropdown(label="Split", choices=["train", "val", "test", "all"], value="train")
            hint = gr.Checkbox(label="Tell the model the label", value=True)
            nproc = gr.Number(label="Processes (torchrun; GPUs shared among them)", value=1, precision=0, minimum=1,
                              maximum=64)
        start = gr.Button("Generate", variant="primary")
    return GenerateForm(model=model, frames=frames, frames_note=frames_note, batch=batch, split=split, hint=hint, nproc=nproc,
                        start=start)


def build_datasets_tab() -> DatasetsTab:
    table = gr.Dataframe(headers=_OVERVIEW, interactive=False, label="Datasets")
    refresh = gr.Button("Refresh", size="sm")
    selected = gr.Dropdown(label="Dataset (import target, details, generation)", choices=[], allow_custom_value=True,
                           elem_id="ds-selected")
    create, imports, generate = _create_form(), _import_form(), _generate_form()
    progress = gr.HTML(elem_id="ds-job")
    with gr.Row():
        per_label = gr.Dataframe(label="Videos per label and split", interactive=False)
        per_status = gr.Dataframe(headers=["review status", "videos"], label="Reviews", interactive=False)
    report = gr.Markdown(elem_id="ds-report")
    failed = gr.Dataframe(headers=["file", "why it was not imported"], label="Failed files", interactive=False,
                          wrap=True)
    failed_page = gr.Number(label="Failed files: page 1 of 1", value=1, precision=0, minimum=1)
    return DatasetsTab(table=table, refresh=refresh, selected=selected, create=create, imports=imports,
                       generate=generate, progress=progress, per_label=per_label, per_status=per_status,
                       report=report, failed=failed, failed_page=failed_page, job=gr.State(None), timer=gr.Timer(1.0, active=False))

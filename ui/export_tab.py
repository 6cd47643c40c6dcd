"""Export tab: pick a dataset, a selection and a format, preview the counts and first rows, download the zip.

The export itself runs as a background job (``rbft_core.tabs.export``): a gr.Timer polls it only while it runs,
showing videos placed / total, and the page re-attaches to the newest export job when it loads (running: the
progress bar; finished: the download). State holds only the job id.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, Optional

import gradio as gr

from rbft_core.data import catalog
from rbft_core.errors import ConfigError
from rbft_core.export.dataset import (
    FORMATS,
    ExportConfig,
    preview_export,
)
from rbft_core.review.curation import STATUSES, Selection
from rbft_core.tabs import export as exports
from ui.common import Events, Updates, Values
from ui.review_render import job_html

__all__ = ["ExportTab", "build_export_tab", "export_config", "on_load", "on_dataset", "on_preview", "on_export",
           "on_poll"]

_STAGES = [("Stage I + Stage II", "both"), ("Stage I: video + expert prompt -> rationale", "1"),
           ("Stage II: video + classification prompt -> label", "2")]
_PREVIEW_HEADERS = ["video", "split", "label", "status", "edited", "reviewer", "rationale"]


@dataclass
class ExportTab:
    dataset: gr.Dropdown
    fmt: gr.Radio
    stage: gr.Radio
    splits: gr.CheckboxGroup
    statuses: gr.CheckboxGroup
    edited: gr.Radio
    labels: gr.CheckboxGroup
    include_excluded: gr.Checkbox
    copy_videos: gr.Checkbox
    name: gr.Textbox
    preview: gr.Button
    summary: gr.Markdown
    table: gr.Dataframe
    export: gr.Button
    download: gr.DownloadButton
    progress: gr.HTML
    job: gr.State  # {"job": id} of the export job this page follows
    timer: gr.Timer

    def selection_inputs(self) -> list:
        """What preview and export read, in the API's order."""
        return [self.dataset, self.fmt, self.stage, self.splits, self.statuses, self.edited, self.labels,
                self.include_excluded, self.copy_videos, self.name]

    def attach(self, demo: gr.Blocks, db_url: Optional[str]) -> None:
        ev = Events(self, db_url)
        ev.on(self.dataset.change, on_dataset, [self.dataset], [self.labels], api_visibility="private")
        ev.on(self.preview.click, on_preview, self.selection_inputs(), [self.summary, self.table],
              api_name="export_preview")
        followed = [self.job, self.timer, self.progress, self.summary, self.download]
        ev.on(self.export.click, on_export, self.selection_inputs(), followed, api_name="export_zip")
        ev.on(self.timer.tick, on_poll, [self.job], followed, api_name="export_poll", show_progress="hidden")
        ev.on(demo.load, on_load, [], [self.dataset, *followed], api_visibility="private")


def export_config(tab: ExportTab, values: Values) -> ExportConfig:
    """The form as the typed config ``rbft_core.export`` takes; refuses an empty selection."""
    splits, statuses, labels = values[tab.splits], values[tab.statuses], values[tab.labels]
    for what, ticked in (("split", splits), ("review status", statuses), ("label", labels)):
        if not ticked:
            raise ConfigError(f"no {what} is ticked; tick at least one {what} to export")
    selection = Selection(splits=splits, statuses=statuses, edited=values[tab.edited], labels=labels,
                          include_excluded=bool(values[tab.include_excluded]))
    return ExportConfig(format=values[tab.fmt], stages=values[tab.stage], selection=selection,
                        copy_videos=bool(values[tab.copy_videos]), name=values[tab.name] or "")


def _dataset(tab: ExportTab, values: Values) -> str:
    if not values[tab.dataset]:
        raise gr.Error("no dataset chosen; import one first (`rbft import NAME SOURCE`) and pick it here")
    return values[tab.dataset]


def _summary(p: dict) -> str:
    c = p["counts"]
    stages = "; ".join(f"Stage {s[-1]}: " + (", ".join(f"{n} {k}" for k, n in c[s].items()) or "none")
                       for s in ("stage1", "stage2") if int(s[-1]) in p["stages"])
    lines = [f"**{c['videos']} videos** of `{p['dataset']}` ({p['selection']}).",
             f"{stages}. Edited rationales: {c['edited']}; without rationale: {c['without_rationale']}; "
             f"missing on disk: {c['missing_videos']}."]
    if p["message"]:
        lines.append(f"⚠️ {p['message']}")
    return "\n\n".join(lines)


def _job_view(tab: ExportTab, status: dict[str, Any]) -> Updates:
    """The export job as the page shows it: progress while it runs; the summary and the download once done."""
    html = f"export of {escape(str(status.get('dataset') or ''))}: " + job_html(status)
    if status["status"] in ("queued", "running"):
        return {tab.job: {"job": status["id"]}, tab.timer: gr.Timer(active=True), tab.progress: html,
                tab.download: gr.DownloadButton(visible=False)}
    done: Updates = {tab.job: None, tab.timer: gr.Timer(active=False), tab.progress: html}
    if status.get("zip"):
        name = Path(status["zip"]).name
        done[tab.summary] = f"Exported: `{status['zip']}` ({escape(status.get('progress_text') or '')})."
        done[tab.download] = gr.DownloadButton(label=f"Download {name}", value=status["zip"], visible=True)
    else:
        why = "its zip is no longer on disk" if status["status"] == "succeeded" else f"it {status['status']}"
        done[tab.summary] = f"No zip to download: {why}; export again."
        done[tab.download] = gr.DownloadButton(visible=False)
    return done


# --------------------------------------------------------------------------------------- handlers
def on_load(tab: ExportTab, db_url: Optional[str], values: Values) -> Updates:
    """Datasets, and the newest export job: re-attached while it runs, its download once it has finished."""
    names = [row["name"] for row in catalog.dataset_overview(db_url)]
    shown = {tab.dataset: gr.Dropdown(choices=names, value=names[0] if names else None)}
    latest = exports.latest_export(db_url)
    if latest is None:
        return shown
    return {**shown, **_job_view(tab, latest)}


def on_dataset(tab: ExportTab, db_url: Optional[str], values: Values) -> Updates:
    labels = next((row["labels"] for row in catalog.dataset_overview(db_url) if row["name"] == values[tab.dataset]),
                  [])
    return {tab.labels: gr.CheckboxGroup(choices=labels, value=labels)}


def on_preview(tab: ExportTab, db_url: Optional[str], values: Values) -> Updates:
    dataset = _dataset(tab, values)
    preview = preview_export(db_url, dataset, export_config(tab, values))
    rows = [[r[h] for h in _PREVIEW_HEADERS] for r in preview["rows"]]
    return {tab.summary: _summary(preview), tab.table: rows}


def on_export(tab: ExportTab, db_url: Optional[str], values: Values) -> Updates:
    """Start the export job (an empty selection is refused first) and follow it."""
    dataset, config = _dataset(tab, values), export_config(tab, values)
    job_id = exports.start_export(db_url, dataset, config)
    return {tab.job: {"job": job_id}, tab.timer: gr.Timer(active=True),
            tab.progress: f"export job {job_id} of {escape(dataset)} started",
            tab.summary: f"Exporting `{escape(dataset)}` as a job; the zip is offered here when it is written.",
            tab.download: gr.DownloadButton(visible=False)}


def on_poll(tab: ExportTab, db_url: Optional[str], values: Values) -> Updates:
    """Poll the export job; when it ends, stop the timer and offer its zip."""
    job = values[tab.job]
    if not job:
        return {tab.job: None, tab.timer: gr.Timer(active=False)}
    return _job_view(tab, exports.export_status(db_url, job["job"]))


# ---------------------------------------------------------------------------------------- layout
def build_export_tab() -> ExportTab:
    with gr.Row():
        dataset = gr.Dropdown(choices=[], label="Dataset", interactive=True)
        fmt = gr.Radio(list(FORMATS), value="llamafactory", label="Format")
        stage = gr.Radio(_STAGES, value="both", label="Content")
    with gr.Row():
        splits = gr.CheckboxGroup(["train", "val", "test"], value=["train", "val", "test"], label="Splits")
        statuses = gr.CheckboxGroup(list(STATUSES), value=["accepted"], label="Review status")
        edited = gr.Radio([("edited or not", "any"), ("edited only", "yes"), ("untouched only", "no")], value="any",
                          label="Rationale edited by the reviewer")
        labels = gr.CheckboxGroup([], value=[], label="Labels")
    with gr.Row():
        include_excluded = gr.Checkbox(False, label="Include excluded videos")
        copy_videos = gr.Checkbox(True, label="Copy videos into the zip")
        name = gr.Textbox(label="Export name", placeholder="<dataset>-<format>")
    with gr.Row():
        preview = gr.Button("Preview")
        export = gr.Button("Export zip", variant="primary")
        download = gr.DownloadButton("Download", visible=False, elem_id="export-download")
    progress = gr.HTML(elem_id="export-job")
    summary = gr.Markdown(elem_id="export-summary")
    table = gr.Dataframe(headers=_PREVIEW_HEADERS, interactive=False, label="First rows", wrap=True)
    return ExportTab(dataset=dataset, fmt=fmt, stage=stage, splits=splits, statuses=statuses, edited=edited,
                     labels=labels, include_excluded=include_excluded, copy_videos=copy_videos, name=name,
                     preview=preview, summary=summary, table=table, export=export, download=download,
                     progress=progress, job=gr.State(None), timer=gr.Timer(1.0, active=False))

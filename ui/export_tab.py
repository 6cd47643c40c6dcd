"""Export tab: pick a dataset, a selection and a format, preview the counts and first rows, download the zip."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from typing import Callable, Optional
from uuid import uuid4

import gradio as gr

from rbft_core.data import catalog
from rbft_core.errors import ConfigError, RbftError
from rbft_core.export.dataset import (
    FORMATS,
    ExportConfig,
    export_dataset,
    preview_export,
)
from rbft_core.review.curation import STATUSES, Selection
from rbft_core.settings import data_dir

__all__ = ["ExportTab", "build_export_tab", "on_load", "on_dataset", "on_preview", "on_export"]

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
    load_fn: Callable
    load_outputs: list


def on_load(db_url: Optional[str]):
    names = [row["name"] for row in catalog.dataset_overview(db_url)]
    return gr.Dropdown(choices=names, value=names[0] if names else None)


def on_dataset(db_url: Optional[str], dataset: Optional[str]):
    labels = next((row["labels"] for row in catalog.dataset_overview(db_url) if row["name"] == dataset), [])
    return gr.CheckboxGroup(choices=labels, value=labels)


def _config(fmt, stage, splits, statuses, edited, labels, include_excluded, copy_videos, name) -> ExportConfig:
    for what, values in (("split", splits), ("review status", statuses), ("label", labels)):
        if not values:
            raise ConfigError(f"no {what} is ticked; tick at least one {what} to export")
    selection = Selection(splits=splits, statuses=statuses, edited=edited, labels=labels,
                          include_excluded=bool(include_excluded))
    return ExportConfig(format=fmt, stages=stage, selection=selection, copy_videos=bool(copy_videos),
                        name=name or "")


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


def on_preview(db_url: Optional[str], dataset, fmt, stage, splits, statuses, edited, labels, include_excluded,
               copy_videos, name):
    if not dataset:
        raise gr.Error("no dataset chosen; import one first (`rbft import NAME SOURCE`) and pick it here")
    try:
        config = _config(fmt, stage, splits, statuses, edited, labels, include_excluded, copy_videos, name)
        preview = preview_export(db_url, dataset, config)
    except RbftError as exc:
        raise gr.Error(str(exc)) from None
    rows = [[r[h] for h in _PREVIEW_HEADERS] for r in preview["rows"]]
    return _summary(preview), rows


def on_export(db_url: Optional[str], dataset, fmt, stage, splits, statuses, edited, labels, include_excluded,
              copy_videos, name):
    if not dataset:
        raise gr.Error("no dataset chosen; import one first (`rbft import NAME SOURCE`) and pick it here")
    # One fresh folder per click: two browsers exporting the same name never overwrite each other.
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S") + "-" + uuid4().hex[:6]
    try:
        config = _config(fmt, stage, splits, statuses, edited, labels, include_excluded, copy_videos, name)
        result = export_dataset(db_url, dataset, config, data_dir() / "exports" / stamp)
    except RbftError as exc:
        raise gr.Error(str(exc)) from None
    c = result.counts
    text = (f"Exported {c['videos']} videos to `{result.folder}` ({c['missing_videos']} missing on disk, "
            "listed in manifest.json).")
    return text, gr.DownloadButton(label=f"Download {result.zip_path.name}", value=str(result.zip_path), visible=True)


def build_export_tab(db_url: Optional[str]) -> ExportTab:
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
        download = gr.DownloadButton("Download", visible=False)
    summary = gr.Markdown()
    table = gr.Dataframe(headers=_PREVIEW_HEADERS, interactive=False, label="First rows", wrap=True)

    inputs = [dataset, fmt, stage, splits, statuses, edited, labels, include_excluded, copy_videos, name]
    dataset.change(partial(on_dataset, db_url), inputs=[dataset], outputs=[labels])
    preview.click(partial(on_preview, db_url), inputs=inputs, outputs=[summary, table])
    export.click(partial(on_export, db_url), inputs=inputs, outputs=[summary, download])
    return ExportTab(dataset=dataset, fmt=fmt, stage=stage, splits=splits, statuses=statuses, edited=edited,
                     labels=labels, include_excluded=include_excluded, copy_videos=copy_videos, name=name,
                     preview=preview, summary=summary, table=table, export=export, download=download,
                     load_fn=partial(on_load, db_url), load_outputs=[dataset])

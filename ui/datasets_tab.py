"""Datasets tab: what is in the database (counts per label, split and review status)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, Optional

import gradio as gr

from rbft_core import catalog

__all__ = ["DatasetsTab", "build_datasets_tab", "on_refresh"]


@dataclass
class DatasetsTab:
    table: gr.Dataframe
    refresh: gr.Button
    refresh_fn: Callable
    outputs: list


def on_refresh(db_url: Optional[str]):
    rows = catalog.dataset_overview(db_url)
    return [[r["name"], r["preset"], ", ".join(r["labels"]), r["total"], r["train"], r["test"],
             r["pending"], r["accepted"], r["rejected"], r["unreadable"]] for r in rows]


def build_datasets_tab(db_url: Optional[str]) -> DatasetsTab:
    table = gr.Dataframe(
        headers=["dataset", "preset", "labels", "videos", "train", "test", "pending", "accepted", "rejected", "unreadable"],
        interactive=False,
        label="Datasets",
    )
    refresh = gr.Button("Refresh")
    fn = partial(on_refresh, db_url)
    refresh.click(fn, inputs=None, outputs=[table])
    return DatasetsTab(table=table, refresh=refresh, refresh_fn=fn, outputs=[table])

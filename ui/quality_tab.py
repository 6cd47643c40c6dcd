"""Quality tab: how well reviewers agree, how much they change the model's text, how fast they work.

Computed on demand for the chosen dataset (``rbft_core.tabs.quality``, the same report as ``rbft quality``):
label agreement (Krippendorff's alpha, Cohen's kappa for two reviewers), per dimension the text agreement between
reviewers and the suggestion vs the final text, per reviewer and per model / prompt version the throughput, and
three plots.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any, Optional

import gradio as gr
import pandas as pd

from rbft_core.review import workspace as review
from rbft_core.tabs.quality import DIMENSION_HEADERS, MODEL_HEADERS, REVIEWER_HEADERS, quality_view
from ui.common import Events, Updates, Values

__all__ = ["QualityTab", "build_quality_tab", "on_page_load", "on_show"]


@dataclass
class QualityTab:
    dataset: gr.Dropdown
    show: gr.Button
    summary: gr.HTML
    dimensions: gr.Dataframe
    reviewers: gr.Dataframe
    models: gr.Dataframe
    agreement: gr.Plot
    edits: gr.Plot
    throughput: gr.Plot

    def outputs(self) -> list:
        return [self.summary, self.dimensions, self.reviewers, self.models, self.agreement, self.edits,
                self.throughput]

    def attach(self, demo: gr.Blocks, db_url: Optional[str]) -> None:
        ev = Events(self, db_url)
        ev.on(demo.load, on_page_load, [], [self.dataset], api_visibility="private")
        ev.on(self.show.click, on_show, [self.dataset], self.outputs(), api_name="quality_show")
        ev.on(self.dataset.input, on_show, [self.dataset], self.outputs(), api_visibility="private")


def _stat(entry: dict[str, Any]) -> str:
    if entry.get("value") is None:
        return f'<b>n/a</b> <span class="q-reason">({escape(entry.get("reason") or "undefined")})</span>'
    return f'<b class="q-value">{entry["value"]:.3f}</b> over {entry["n_items"]} items'


def _summary_html(summary: dict[str, Any]) -> str:
    c, kappa, changed = summary["counts"], summary["kappa"], summary["conclusion_changed"]
    pair = f" ({escape(' vs '.join(kappa.get('reviewers') or []))})" if kappa.get("value") is not None else ""
    share = "n/a" if changed["share"] is None else f"{100 * changed['share']:.1f}%"
    return (f'<div class="q-summary"><div>{c["items"]} items, {c["responses"]} responses from {c["reviewers"]} '
            f'reviewers; {c["items_with_two_or_more"]} items answered by two or more.</div>'
            f'<div class="q-alpha">Labels: Krippendorff\'s alpha (nominal) {_stat(summary["alpha"])}</div>'
            f'<div class="q-kappa">Cohen\'s kappa{pair}: {_stat(kappa)}</div>'
            f'<div>Conclusion changed in the final label: {share} of {changed["n_items"]} items.</div></div>')


def on_page_load(tab: QualityTab, db_url: Optional[str], values: Values) -> Updates:
    names = review.dataset_names(db_url)
    return {tab.dataset: gr.Dropdown(choices=names, value=names[0] if names else None)}


def on_show(tab: QualityTab, db_url: Optional[str], values: Values) -> Updates:
    """The quality report of the chosen dataset: summary, tables, plots."""
    if not values[tab.dataset]:
        raise gr.Error("no dataset chosen; pick one in the Dataset box (import videos first if it is empty)")
    view = quality_view(db_url, values[tab.dataset])
    return {tab.summary: _summary_html(view.summary),
            tab.dimensions: pd.DataFrame(view.dimensions, columns=DIMENSION_HEADERS),
            tab.reviewers: pd.DataFrame(view.reviewers, columns=REVIEWER_HEADERS),
            tab.models: pd.DataFrame(view.models, columns=MODEL_HEADERS),
            tab.agreement: view.figures["agreement"], tab.edits: view.figures["edit_distance"],
            tab.throughput: view.figures["throughput"]}


def build_quality_tab() -> QualityTab:
    with gr.Row():
        dataset = gr.Dropdown(label="Dataset", choices=[], scale=3, elem_id="q-dataset", allow_custom_value=True)
        show = gr.Button("Show quality", variant="primary", scale=1, elem_id="q-show")
    summary = gr.HTML(elem_id="q-summary")
    gr.Markdown("**Per dimension**: agreement between reviewers (token F1, character similarity, alpha on the text)"
                " and the model's suggestion against the final text")
    dimensions = gr.Dataframe(headers=DIMENSION_HEADERS, interactive=False, elem_id="q-dimensions")
    with gr.Row():
        reviewers = gr.Dataframe(headers=REVIEWER_HEADERS, interactive=False, label="Per reviewer",
                                 elem_id="q-reviewers")
        models = gr.Dataframe(headers=MODEL_HEADERS, interactive=False, label="Per model and prompt version",
                              elem_id="q-models")
    with gr.Row():
        agreement = gr.Plot(label="Agreement per dimension", elem_id="q-agreement")
        edits = gr.Plot(label="Edit distance, suggestion vs final", elem_id="q-edits")
    throughput = gr.Plot(label="Throughput over time", elem_id="q-throughput")
    return QualityTab(dataset=dataset, show=show, summary=summary, dimensions=dimensions, reviewers=reviewers,
                      models=models, agreement=agreement, edits=edits, throughput=throughput)

"""The Quality tab's job: a dataset's review quality report as the tab shows it (a summary, three tables and the
three figures), computed from the database on demand (``rbft_core.review.quality_source``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from rbft_core.review.quality_plots import agreement_figure, edit_distance_figure, throughput_figure
from rbft_core.review.quality_source import dataset_quality

__all__ = ["QualityView", "DIMENSION_HEADERS", "REVIEWER_HEADERS", "MODEL_HEADERS", "quality_view"]

DIMENSION_HEADERS = ["dimension", "token F1", "char similarity", "text alpha", "suggestion vs final: items",
                     "edited", "mean edit distance"]
REVIEWER_HEADERS = ["reviewer", "items", "items/hour", "median s/item", "acceptance"]
MODEL_HEADERS = ["model", "prompt version", "items", "items/hour", "median s/item", "acceptance"]


@dataclass
class QualityView:
    report: dict[str, Any]
    summary: dict[str, Any]  # alpha, kappa (each value or None, with the reason) and the counts
    dimensions: list[list[Any]]
    reviewers: list[list[Any]]
    models: list[list[Any]]
    figures: dict[str, Any]  # "agreement", "edit_distance", "throughput" -> matplotlib Figure


def _round(value: Optional[float], digits: int = 3) -> Optional[float]:
    return None if value is None else round(value, digits)


def _work(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[list[Any]]:
    return [[*(r[k] or "-" for k in keys), r["n_items"], _round(r["items_per_hour"], 1),
             _round(r["median_s_per_item"], 1), _round(r["acceptance_rate"])] for r in rows]


def quality_view(db_url: Optional[str], dataset: str) -> QualityView:
    report = dataset_quality(db_url, dataset)
    labels, edits = report["labels"], report["edits"]["dimensions"]
    dims = [[d, _round(t["token_f1"]["mean"]), _round(t["char_similarity"]["mean"]), _round(t["alpha"]["value"]),
             edits[d]["n_items"], _round(edits[d]["share_edited"]), _round(edits[d]["mean_distance"])]
            for d, t in report["text"].items()]
    summary = {"alpha": labels["alpha"], "kappa": labels["cohen_kappa"], "counts": report["counts"],
               "conclusion_changed": report["edits"]["conclusion_changed"]}
    figures = {"agreement": agreement_figure(report), "edit_distance": edit_distance_figure(report),
               "throughput": throughput_figure(report)}
    return QualityView(report=report, summary=summary, dimensions=dims,
                       reviewers=_work(report["throughput"]["by_reviewer"], ("reviewer",)),
                       models=_work(report["throughput"]["by_model"], ("model_id", "prompt_version")), figures=figures)

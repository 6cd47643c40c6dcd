"""Figures of the review quality report (``quality_report``): agreement per dimension, the edit distance
distribution per dimension, and throughput over time. Each takes the report dict, so the CLI and the Quality
view draw from the same JSON, and returns a ``matplotlib.figure.Figure`` (no pyplot: no global figure state,
safe in the app's worker threads)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["AGREEMENT_SERIES", "agreement_figure", "edit_distance_figure", "throughput_figure", "write_quality_plots"]

# (report key under text[dimension], the value's key, legend label)
AGREEMENT_SERIES = (("token_f1", "mean", "token F1"), ("char_similarity", "mean", "char similarity"),
                    ("alpha", "value", "alpha (text distance)"))


def _figure(width_in: float, height_in: float):
    from matplotlib.figure import Figure  # matplotlib loads only when a figure is drawn

    return Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")


def agreement_figure(report: dict[str, Any]):
    """Grouped bars: per dimension, the mean token F1, the mean char similarity and the text alpha between
    reviewers. An undefined value has no bar; "n/a" is written in its place. The title gives the label alpha."""
    dims = report["dimensions"]
    fig = _figure(max(5.0, 1.4 * len(dims) + 2.0), 3.6)
    ax = fig.subplots()
    width = 0.8 / len(AGREEMENT_SERIES)
    for s, (key, value_key, label) in enumerate(AGREEMENT_SERIES):
        xs = [i + (s - (len(AGREEMENT_SERIES) - 1) / 2) * width for i in range(len(dims))]
        values = [report["text"][d][key][value_key] for d in dims]
        shown = [(x, v) for x, v in zip(xs, values) if v is not None]
        ax.bar([x for x, _ in shown], [v for _, v in shown], width, label=label)
        for x, v in zip(xs, values):
            if v is None:
                ax.text(x, 0.02, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_xticks(range(len(dims)), dims)
    ax.set_xlim(-0.5, len(dims) - 0.5)
    ax.axhline(0, color="black", linewidth=0.6)
    lowest = min([0.0] + [b.get_height() for b in ax.patches])  # alpha can be negative
    ax.set_ylim(min(-0.1, lowest - 0.05), 1.05)
    ax.set_ylabel("agreement")
    alpha = report["labels"]["alpha"]["value"]
    ax.set_title(f"Agreement per dimension (labels: alpha {'n/a' if alpha is None else f'{alpha:.2f}'})",
                 fontsize=10)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=len(AGREEMENT_SERIES), fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def edit_distance_figure(report: dict[str, Any]):
    """One histogram per dimension of the normalised edit distance of the edited items (suggestion vs final)."""
    dims = report["dimensions"]
    cols = min(len(dims), 4)
    rows = math.ceil(len(dims) / cols)
    fig = _figure(2.6 * cols + 0.6, 2.3 * rows + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, d in zip(axes, dims):
        e = report["edits"]["dimensions"][d]
        edges, counts = e["histogram"]["edges"], e["histogram"]["counts"]
        ax.bar(edges[:-1], counts, width=[b - a for a, b in zip(edges, edges[1:])], align="edge",
               edgecolor="white")
        ax.set_xlim(0, 1)
        ax.set_title(f"{d}: {e['n_edited']} of {e['n_items']} edited", fontsize=9)
        ax.set_xlabel("edit distance", fontsize=8)
    for ax in axes[len(dims):]:
        fig.delaxes(ax)
    axes[0].set_ylabel("items")
    fig.suptitle("Suggestion vs final: normalised edit distance of edited items", fontsize=10)
    return fig


def throughput_figure(report: dict[str, Any]):
    """Items per hour of each reviewer over time, one line per reviewer, one point per bin."""
    over = report["over_time"]
    fig = _figure(7.0, 3.2)
    ax = fig.subplots()
    starts = [datetime.fromisoformat(b) for b in over["bins"]]
    for s in over["series"]:
        ax.plot(starts, s["items_per_hour"], marker="o", markersize=3, linewidth=1.4, label=s["reviewer"])
    ax.set_ylabel("items per hour")
    bin_s = over["bin_s"]
    ax.set_title("Throughput over time" + (f" (bins of {bin_s / 3600:g} h)" if bin_s else ""), fontsize=10)
    if over["series"]:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no saved responses", ha="center", va="center", transform=ax.transAxes)
    if len(starts) == 1 and bin_s:  # one bin: show that bin's own span, not matplotlib's default years
        ax.set_xlim(starts[0] - timedelta(seconds=bin_s), starts[0] + timedelta(seconds=2 * bin_s))
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return fig


def write_quality_plots(report: dict[str, Any], folder: Path) -> dict[str, Path]:
    """The three figures as PNGs in ``folder``: {"agreement", "edit_distance", "throughput"} -> path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, draw in (("agreement", agreement_figure), ("edit_distance", edit_distance_figure),
                       ("throughput", throughput_figure)):
        out[name] = folder / f"quality-{name}.png"
        draw(report).savefig(out[name])
    return out

"""Masking experiment reports: JSON (everything), CSV (one row per model), PNG bar chart; find the newest."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import numpy as np

from rbft_core.names import file_slug
from rbft_core.settings import data_dir

__all__ = ["write_reports", "latest_experiment", "TABLE_COLUMNS", "table_rows"]

TABLE_COLUMNS = ["name", "run_id", "n", "accuracy_original", "accuracy_critical", "accuracy_random", "drop_critical",
                 "drop_random", "drop_ratio", "drop_ratio_ci", "flip_rate_critical", "flip_rate_random",
                 "delta_logp_true_critical", "delta_logp_true_random", "sampling_note"]


def _reports_dir() -> Path:
    out = data_dir() / "reports"
    out.mkdir(parents=True, exist_ok=True)
    return out


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, list):
        return "[" + ", ".join(f"{v:.3f}" for v in value) + "]"
    return "" if value is None else value


def table_rows(models: list[dict]) -> list[list]:
    return [[_fmt(m.get(c)) for c in TABLE_COLUMNS] for m in models]


def write_reports(result) -> dict[str, str]:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
    base = _reports_dir() / f"mask-{file_slug(result.dataset)}-{stamp}"  # no dot in it: with_suffix stays right
    files = {"json": str(base.with_suffix(".json")), "csv": str(base.with_suffix(".csv")),
             "png": str(base.with_suffix(".png"))}
    with open(files["csv"], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(TABLE_COLUMNS)
        writer.writerows(table_rows(result.models))
    _bar_chart(result.models, Path(files["png"]), result.config)
    Path(files["json"]).write_text(json.dumps({**result.to_json(), "files": files}, indent=2, default=str))
    return files


def _bar_chart(models: list[dict], out: Path, config: dict) -> None:
    import matplotlib  # matplotlib loads only when a figure is drawn

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt  # matplotlib loads only when a figure is drawn

    bars = [("original", "accuracy_original", "#4c72b0"), ("critical masked", "accuracy_critical", "#c44e52"),
            ("random masked", "accuracy_random", "#8c8c8c")]
    x = np.arange(len(models))
    fig, ax = plt.subplots(figsize=(max(4.0, 2.2 * len(models) + 1.5), 3.4))
    for i, (label, key, colour) in enumerate(bars):
        values = [100 * m[key] for m in models]
        ax.bar(x + (i - 1) * 0.26, values, 0.26, label=label, color=colour)
        for xi, v in zip(x, values):
            ax.text(xi + (i - 1) * 0.26, v + 1, f"{v:.0f}", ha="center", fontsize=7)
    ax.set_xticks(x, [f"{m['name']}\nratio {m['drop_ratio']:.2f}" if m.get("drop_ratio") is not None else m["name"]
                      for m in models], fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 110)
    ax.set_title(f"masking ({config.get('regions_source')}, fill {config.get('fill')}, "
                 f"{config.get('k_random')} random trials)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def latest_experiment(dataset: str) -> Optional[dict]:
    """The newest masking report of ``dataset`` (parsed JSON), or None."""
    for path in sorted(_reports_dir().glob(f"mask-{file_slug(dataset)}-*.json"), reverse=True):
        report = json.loads(path.read_text())
        if report.get("dataset") == dataset:
            return report
    return None

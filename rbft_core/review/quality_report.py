"""The review quality report: every metric of ``quality``, ``quality_text`` and ``quality_work`` in one
JSON-serialisable dict (what ``rbft quality DATASET --json`` prints), and its Markdown rendering.

Shape (``schema`` "rbft.quality/1"; every number may be null where undefined, with a ``reason`` beside it)::

    {"schema", "dimensions": [...],
     "counts": {"items", "responses", "reviewers", "items_with_two_or_more"},
     "methods": {name: text},
     "labels": {"alpha": Agreement, "cohen_kappa": Agreement + "reviewers": [a, b],
                "kappa_by_pair": [{"reviewers": [a, b], ...Agreement}]},
     "text": {dimension: {"token_f1": MeanScore, "char_similarity": MeanScore, "alpha": Agreement}},
     "edits": {"dimensions": {dimension: DimensionEdits.to_dict()}, "conclusion_changed": {"n_items", "n_changed", "share"}},
     "throughput": {"by_reviewer": [{"reviewer", ...Throughput}],
                    "by_model": [{"model_id", "prompt_version", ...Throughput}]},
     "over_time": throughput_over_time(...),
     "reliability": {"label": ReliabilityData.to_dict()}   # only with include_reliability=True}

Agreement is ``{"value", "reason", "n_items", "n_values", "method"}``; MeanScore ``{"mean", "n_pairs",
"n_items", "method"}``.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from rbft_core.review.quality import (
    KAPPA_METHOD, LABEL_ALPHA_METHOD, LABEL_FIELD, ItemRecord, check_dimensions, kappa_by_pair, label_alpha,
    label_kappa, latest_responses, responses_to_reliability,
)
from rbft_core.review.quality_text import (
    CHAR_SIMILARITY_METHOD, MAX_EXACT_PAIRS, TEXT_ALPHA_METHOD, TOKEN_F1_METHOD, text_alpha, text_similarity,
)
from rbft_core.review.quality_work import (
    ACCEPTANCE_METHOD, CONCLUSION_METHOD, EDIT_METHOD, MAX_ITEM_S, THROUGHPUT_METHOD, by_model, by_reviewer,
    conclusion_changes, edit_metrics, throughput, throughput_over_time,
)

__all__ = ["SCHEMA", "quality_report", "render_quality_markdown"]

SCHEMA = "rbft.quality/1"


def quality_report(items: Sequence[ItemRecord], dimensions: Sequence[str], *, max_item_s: float = MAX_ITEM_S,
                   bin_s: Optional[float] = None, max_pairs: int = MAX_EXACT_PAIRS,
                   include_reliability: bool = False) -> dict[str, Any]:
    """Every quality metric of ``items`` over the rationale ``dimensions`` (see the module for the shape).

    ``max_item_s``: the idle cap for seconds per item; ``bin_s``: the bin of the throughput over time (None:
    chosen from the span); ``max_pairs``: above this many pairs of distinct answers, text alpha's expected
    disagreement is estimated from that many random pairs (``quality_text.alpha_with_distance``);
    ``include_reliability``: add the label reliability data ``krippendorff.alpha`` reads.
    """
    dims = check_dimensions(dimensions)
    items = list(items)
    latest = [latest_responses(item) for item in items]
    kappa, pair = label_kappa(items)
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "dimensions": list(dims),
        "counts": {"items": len(items), "responses": sum(map(len, latest)),
                   "reviewers": len({r for given in latest for r in given}),
                   "items_with_two_or_more": sum(len(given) >= 2 for given in latest)},
        "methods": {"label_alpha": LABEL_ALPHA_METHOD, "cohen_kappa": KAPPA_METHOD, "token_f1": TOKEN_F1_METHOD,
                    "char_similarity": CHAR_SIMILARITY_METHOD, "text_alpha": TEXT_ALPHA_METHOD,
                    "edit_distance": EDIT_METHOD, "conclusion_changed": CONCLUSION_METHOD,
                    "throughput": THROUGHPUT_METHOD, "acceptance": ACCEPTANCE_METHOD},
        "labels": {"alpha": label_alpha(items).to_dict(),
                   "cohen_kappa": {**kappa.to_dict(), "reviewers": list(pair)},
                   "kappa_by_pair": [{"reviewers": [a, b], **k.to_dict()} for a, b, k in kappa_by_pair(items)]},
        "text": {d: {**{name: s.to_dict() for name, s in text_similarity(items, d).items()},
                     "alpha": text_alpha(items, d, max_pairs).to_dict()} for d in dims},
        "edits": {"dimensions": {d: e.to_dict() for d, e in edit_metrics(items, dims).items()},
                  "conclusion_changed": conclusion_changes(items).to_dict()},
        "throughput": {
            "max_item_s": max_item_s,
            "by_reviewer": [{"reviewer": t.key[0], **t.to_dict()}
                            for t in throughput(items, dims, by_reviewer, max_item_s)],
            "by_model": [{"model_id": t.key[0], "prompt_version": t.key[1], **t.to_dict()}
                         for t in throughput(items, dims, by_model, max_item_s)]},
        "over_time": throughput_over_time(items, bin_s),
    }
    if include_reliability:
        report["reliability"] = {LABEL_FIELD: responses_to_reliability(items, LABEL_FIELD).to_dict()}
    return report


def _num(value: Optional[float], digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _pct(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _stat(entry: dict[str, Any], key: str = "value") -> str:
    """A value, or "n/a (reason)" when it is undefined."""
    if entry.get(key) is None and entry.get("reason"):
        return f"n/a ({entry['reason']})"
    return _num(entry.get(key))


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    return [line(header), "|" + "---|" * len(header)] + [line(r) for r in rows]


def render_quality_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: counts, label agreement, text agreement, edits, throughput, then the methods."""
    c, labels = report["counts"], report["labels"]
    out = ["# Review quality", "",
           f"{c['items']} items, {c['responses']} responses from {c['reviewers']} reviewers; "
           f"{c['items_with_two_or_more']} items answered by two or more.", "", "## Labels", "",
           f"- Krippendorff's alpha (nominal): {_stat(labels['alpha'])} over {labels['alpha']['n_items']} items",
           f"- Cohen's kappa: {_stat(labels['cohen_kappa'])}"
           + (f" ({' vs '.join(labels['cohen_kappa']['reviewers'])}, {labels['cohen_kappa']['n_items']} items)"
              if labels["cohen_kappa"]["value"] is not None else "")]
    if len(labels["kappa_by_pair"]) > 1:
        out += [""] + _table(["reviewers", "kappa", "items"],
                             [[" vs ".join(p["reviewers"]), _stat(p), str(p["n_items"])] for p in labels["kappa_by_pair"]])
    out += ["", "## Text agreement between reviewers", ""]
    out += _table(["dimension", "token F1", "char similarity", "alpha (text distance)", "pairs"],
                  [[d, _num(t["token_f1"]["mean"]), _num(t["char_similarity"]["mean"]), _stat(t["alpha"]),
                    str(t["token_f1"]["n_pairs"])] for d, t in report["text"].items()])
    edits = report["edits"]
    out += ["", "## Suggestion vs final", ""]
    out += _table(["dimension", "items", "edited", "mean distance", "median distance"],
                  [[d, str(e["n_items"]), _pct(e["share_edited"]), _num(e["mean_distance"]),
                    _num(e["median_distance"])] for d, e in edits["dimensions"].items()])
    changed = edits["conclusion_changed"]
    out += ["", f"Conclusion changed: {_pct(changed['share'])} of {changed['n_items']} items."]
    tp = report["throughput"]
    out += ["", "## Throughput", ""]
    out += _table(["reviewer", "items", "items/hour", "median s/item", "accepted"],
                  [[t["reviewer"], str(t["n_items"]), _num(t["items_per_hour"], 1), _num(t["median_s_per_item"], 1),
                    _pct(t["acceptance_rate"])] for t in tp["by_reviewer"]])
    out += [""] + _table(["model", "prompt version", "items", "items/hour", "median s/item", "accepted"],
                         [[t["model_id"] or "unknown", t["prompt_version"] or "-", str(t["n_items"]),
                           _num(t["items_per_hour"], 1), _num(t["median_s_per_item"], 1), _pct(t["acceptance_rate"])]
                          for t in tp["by_model"]])
    out += ["", "## Methods", ""] + [f"- {name}: {text}" for name, text in report["methods"].items()]
    return "\n".join(out) + "\n"

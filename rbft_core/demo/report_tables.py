"""The demo report's tables, computed from its raw runs (``docs/demo-results.json``'s ``runs``) alone.

Every accuracy is a mean over seeds and test clips with a 95 % bootstrap interval over both
(``report_stats.bootstrap_interval``); every comparison is paired (the same clips, the same seeds). A run whose
predictions are all one class is listed by seed in a ``single_class`` column wherever its accuracy is used.
"""

from __future__ import annotations

import statistics
from typing import Optional

from rbft_core.demo.report_stats import (
    bootstrap_interval,
    discordant,
    mcnemar_exact,
    sign_test,
    verdict,
)

__all__ = ["build_tables", "select_config", "find_runs", "single_class", "correct_matrix"]


def find_runs(runs: list[dict], **label) -> list[dict]:
    """Runs whose label has every given value, by seed."""
    out = [r for r in runs if all(r["label"].get(k) == v for k, v in label.items())]
    return sorted(out, key=lambda r: r["label"].get("seed", 0))


def single_class(evaluation: dict) -> bool:
    return len(set(evaluation["predicted"])) < 2


def correct(evaluation: dict, truth: list[str]) -> list[int]:
    return [int(p == t) for p, t in zip(evaluation["predicted"], truth)]


def correct_matrix(runs: list[dict], split: str, truth: list[str]) -> list[list[int]]:
    return [correct(r["eval"][split], truth) for r in runs if split in r.get("eval", {})]


def _interval(matrix) -> Optional[dict]:
    found = bootstrap_interval(matrix) if matrix else None
    return found.to_dict() if found else None


def _flags(runs: list[dict], split: str) -> list[int]:
    return [r["label"].get("seed") for r in runs if split in r.get("eval", {}) and single_class(r["eval"][split])]


def _paired(first: list[dict], second: list[dict], truth: list[str], split: str = "test"):
    """Runs of two arms paired by seed -> (seeds, difference matrix first - second, per-seed rows)."""
    by_seed = {r["label"]["seed"]: r for r in second if split in r.get("eval", {})}
    seeds, diffs, rows = [], [], []
    for run in first:
        other = by_seed.get(run["label"]["seed"])
        if other is None or split not in run.get("eval", {}):
            continue
        a, b = correct(run["eval"][split], truth), correct(other["eval"][split], truth)
        only_a, only_b = discordant(a, b)
        seeds.append(run["label"]["seed"])
        diffs.append([x - y for x, y in zip(a, b)])
        rows.append({"seed": run["label"]["seed"], "first": sum(a) / len(a), "second": sum(b) / len(b),
                     "diff": (sum(a) - sum(b)) / len(a), "only_first": only_a, "only_second": only_b,
                     "mcnemar_p": mcnemar_exact(only_a, only_b)})
    return seeds, diffs, rows


def select_config(runs: list[dict], arm: str, grid: list[tuple[float, float]], truth: list[str]) -> dict:
    """The grid point with the best mean validation accuracy (ties: macro-F1, then the grid's order)."""
    rows = []
    for lr, epochs in grid:
        found = find_runs(runs, arm=arm, lr=lr, epochs=epochs, fraction=1.0, source=_main_source(arm), hint=True)
        found = [r for r in found if "val" in r.get("eval", {})]
        if not found:
            continue
        acc = statistics.fmean(r["eval"]["val"]["metrics"]["accuracy"] for r in found)
        f1 = statistics.fmean(r["eval"]["val"]["metrics"]["macro_f1"] for r in found)
        rows.append({"arm": arm, "lr": lr, "epochs": epochs, "val_accuracy": _interval(correct_matrix(found, "val", truth)),
                     "val_accuracy_mean": acc, "val_macro_f1": f1, "seeds": [r["label"]["seed"] for r in found],
                     "single_class": _flags(found, "val")})
    best = max(rows, key=lambda r: (round(r["val_accuracy_mean"], 9), round(r["val_macro_f1"], 9)), default=None)
    for row in rows:
        row["chosen"] = row is best
    return {"rows": rows, "lr": best["lr"] if best else None, "epochs": best["epochs"] if best else None}


def _main_source(arm: str) -> str:
    return "suggestions" if arm == "RB-FT" else "-"


def _arm_row(name: str, runs: list[dict], truth: list[str], **extra) -> dict:
    accs = [r["eval"]["test"]["metrics"]["accuracy"] for r in runs if "test" in r.get("eval", {})]
    f1s = [r["eval"]["test"]["metrics"]["macro_f1"] for r in runs if "test" in r.get("eval", {})]
    return {"method": name, **extra, "accuracy": _interval(correct_matrix(runs, "test", truth)),
            "macro_f1_mean": statistics.fmean(f1s) if f1s else None, "per_seed": accs,
            "seeds": [r["label"].get("seed") for r in runs if "test" in r.get("eval", {})],
            "single_class": _flags(runs, "test")}


def _comparison(first, second, truth, names=("RB-FT", "direct SFT")) -> dict:
    seeds, diffs, rows = _paired(first, second, truth)
    interval = bootstrap_interval(diffs) if diffs else None
    return {"diff": interval.to_dict() if interval else None, "verdict": verdict(interval, *names),
            "per_seed": rows, "sign_test": sign_test([r["diff"] for r in rows]), "seeds": seeds}


def build_tables(doc: dict) -> dict:
    """Every table of the page from ``doc["runs"]`` (and the rationale statistics for the label-hint table)."""
    runs, truth = doc["runs"], doc["truth"]["test"]
    sel = doc["selection"]
    chosen = {arm: dict(lr=sel[arm]["lr"], epochs=sel[arm]["epochs"]) for arm in sel}
    sft = find_runs(runs, arm="direct SFT", fraction=1.0, hint=True, **chosen["direct SFT"])
    rbft = find_runs(runs, arm="RB-FT", fraction=1.0, hint=True, source="suggestions", **chosen["RB-FT"])
    zero = find_runs(runs, arm="zero-shot")
    tables: dict = {"grid": [row for arm in sel for row in sel[arm]["rows"]],
                    "selection": {arm: chosen[arm] for arm in chosen}}
    tables["main"] = [_arm_row("zero-shot", zero, truth),
                      _arm_row("direct SFT", sft, truth, **chosen["direct SFT"]),
                      _arm_row("RB-FT", rbft, truth, source="model suggestions", **chosen["RB-FT"])]
    tables["paired"] = _comparison(rbft, sft, truth)
    # A baseline that predicts one class is broken, not beaten: the same comparison on the seeds where both arms
    # learned something (neither predicted a single class on the test split), when any seed collapsed.
    collapsed = set(_flags(sft, "test")) | set(_flags(rbft, "test"))
    tables["paired_learned"] = None
    if collapsed:
        kept = [[r for r in arm if r["label"].get("seed") not in collapsed] for arm in (rbft, sft)]
        tables["paired_learned"] = {**_comparison(*kept, truth), "collapsed_seeds": sorted(collapsed)}

    curve = []
    for fraction in doc["meta"]["report"]["fractions"]:
        a = find_runs(runs, arm="RB-FT", fraction=fraction, hint=True, source="suggestions", **chosen["RB-FT"])
        b = find_runs(runs, arm="direct SFT", fraction=fraction, hint=True, **chosen["direct SFT"])
        seeds = set(doc["meta"]["report"]["ablation_seeds"])
        a, b = [r for r in a if r["label"]["seed"] in seeds], [r for r in b if r["label"]["seed"] in seeds]
        comparison = _comparison(a, b, truth)
        curve.append({"fraction": fraction, "train_clips": doc["meta"]["train_clips"].get(str(fraction)),
                      "rbft": _interval(correct_matrix(a, "test", truth)),
                      "sft": _interval(correct_matrix(b, "test", truth)), "diff": comparison["diff"],
                      "verdict": comparison["verdict"], "seeds": comparison["seeds"],
                      "single_class": {"RB-FT": _flags(a, "test"), "direct SFT": _flags(b, "test")}})
    tables["learning_curve"] = curve

    seeds = set(doc["meta"]["report"]["ablation_seeds"])
    base = [r for r in rbft if r["label"]["seed"] in seeds]
    sources = []
    for source, share in (("suggestions", None), ("reviewed", None), ("mix", doc["meta"]["report"]["mix_share"])):
        found = base if source == "suggestions" else [
            r for r in find_runs(runs, arm="RB-FT", fraction=1.0, hint=True, source=source, **chosen["RB-FT"])
            if r["label"]["seed"] in seeds and (share is None or r["label"]["human_share"] == share)]
        if not found:
            continue
        vs_sft = _comparison(found, sft, truth)
        vs_model = _comparison(found, base, truth, (source, "model suggestions"))
        sources.append({"source": source, "human_share": share, "rbft": _interval(correct_matrix(found, "test", truth)),
                        "diff_vs_sft": vs_sft["diff"], "verdict_vs_sft": vs_sft["verdict"],
                        "diff_vs_suggestions": vs_model["diff"] if source != "suggestions" else None,
                        "verdict_vs_suggestions": vs_model["verdict"] if source != "suggestions" else "-",
                        "seeds": vs_sft["seeds"], "single_class": _flags(found, "test")})
    tables["rationale_source"] = sources

    off = [r for r in find_runs(runs, arm="RB-FT", fraction=1.0, hint=False, source="suggestions", **chosen["RB-FT"])
           if r["label"]["seed"] in seeds]
    rat = doc.get("rationales", {})
    hint_rows = []
    for name, found, stats in (("on", base, rat.get("hint", {})), ("off", off, rat.get("no_hint", {}))):
        hint_rows.append({"hint": name, "names_own_label": stats.get("names_own_label"),
                          "names_other_label": stats.get("names_other_label"), "parse_ok": stats.get("parse_ok"),
                          "rbft": _interval(correct_matrix(found, "test", truth)), "seeds": [r["label"]["seed"] for r in found],
                          "single_class": _flags(found, "test")})
    effect = _comparison(base, off, truth, ("hint on", "hint off"))
    tables["label_hint"] = {"rows": hint_rows, "diff": effect["diff"], "verdict": effect["verdict"]}
    tables["faithfulness"] = _faithfulness(sft, rbft)
    return tables


def _faith_matrices(runs: list[dict]) -> dict:
    found = [r["faith"] for r in runs if r.get("faith")]
    crit = [[o - c for o, c in zip(f["original"], f["critical"])] for f in found]
    rand = [[o - x for o, x in zip(f["original"], f["random"])] for f in found]
    gap = [[x - c for c, x in zip(f["critical"], f["random"])] for f in found]  # drop(critical) - drop(random)
    share = [f["attention_share"] for f in found]
    excess = [[s - a for s, a in zip(f["attention_share"], f["area_share"])] for f in found]
    area = [f["area_share"] for f in found]
    return {"crit": crit, "rand": rand, "gap": gap, "share": share, "excess": excess, "area": area,
            "seeds": [r["label"]["seed"] for r in runs if r.get("faith")],
            "k_random": found[0]["k_random"] if found else None}


def _faithfulness(sft: list[dict], rbft: list[dict]) -> dict:
    rows, mats = [], {}
    for arm, runs in (("direct SFT", sft), ("RB-FT", rbft)):
        m = mats[arm] = _faith_matrices(runs)
        rows.append({"arm": arm, "drop_critical": _interval(m["crit"]), "drop_random": _interval(m["rand"]),
                     "gap": _interval(m["gap"]), "attention_share": _interval(m["share"]),
                     "area_share": _interval(m["area"]), "attention_excess": _interval(m["excess"]),
                     "seeds": m["seeds"], "k_random": m["k_random"]})
    pairs = [(a, b) for sa, a in zip(mats["RB-FT"]["seeds"], mats["RB-FT"]["gap"])
             for sb, b in zip(mats["direct SFT"]["seeds"], mats["direct SFT"]["gap"]) if sa == sb]
    vs_sft = bootstrap_interval([[x - y for x, y in zip(a, b)] for a, b in pairs]) if pairs else None
    gap = bootstrap_interval(mats["RB-FT"]["gap"]) if mats["RB-FT"]["gap"] else None
    excess = bootstrap_interval(mats["RB-FT"]["excess"]) if mats["RB-FT"]["excess"] else None
    return {"rows": rows, "gap_vs_sft": vs_sft.to_dict() if vs_sft else None,
            "claim": claim_sentence(gap, vs_sft, excess),
            "reproduced": bool(gap and gap.low > 0)}


def claim_sentence(gap, vs_sft, excess) -> str:
    """Whether the paper's faithfulness claim holds here, decided by the intervals alone."""
    if gap is None:
        return "The faithfulness claim was not measured."
    if gap.low > 0:
        head = ("The paper's claim is reproduced: masking the critical object hurts RB-FT more than masking "
                "same-size random boxes (the interval of the difference lies above 0)")
    elif gap.high < 0:
        head = ("The paper's claim is not reproduced: masking the critical object hurts RB-FT less than masking "
                "same-size random boxes")
    else:
        head = ("The paper's claim is not reproduced: masking the critical object does not hurt RB-FT significantly "
                "more than masking same-size random boxes (the interval of the difference includes 0)")
    if vs_sft is not None:
        head += ("; and significantly more than it hurts direct SFT" if vs_sft.low > 0 else
                 "; nor does it hurt RB-FT significantly more than direct SFT" if gap.low <= 0 else
                 "; but not significantly more than it hurts direct SFT")
    if excess is not None:
        head += (". RB-FT's attention on the critical object is above its area share" if excess.low > 0 else
                 ". RB-FT's attention on the critical object is not significantly above its area share")
    return head + "."

"""The Markdown of ``docs/demo-results.md``, rendered from the report's JSON alone (numbers as measured).

Every sentence that states a direction is decided by an interval (``report_stats.verdict``,
``report_tables.claim_sentence``); the page never says more than its intervals allow.
"""

from __future__ import annotations

import statistics
from typing import Optional, Sequence

from rbft_core.demo.report_stats import fmt_interval

__all__ = ["render_markdown", "mean_sd", "main_sentence"]


def mean_sd(values: Sequence[float]) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.fmean(values):.1f} ± {100 * sd:.1f}"


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _p(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3f}" if value >= 0.001 else "< 0.001"


def _flag(seeds) -> str:
    """The single-class column: which seeds predicted one class only (they are in the mean, and named here)."""
    if isinstance(seeds, dict):
        parts = [f"{arm}: {_seeds(s)}" for arm, s in seeds.items() if s]
        return "⚠ " + "; ".join(parts) if parts else "-"
    return f"⚠ {_seeds(seeds)}" if seeds else "-"


def _seeds(seeds) -> str:
    named = [str(s) for s in seeds if s is not None]
    return f"seeds {', '.join(named)}" if named else "single class"  # zero-shot has no seed


def _ci(value, signed: bool = False) -> str:
    return fmt_interval(value, signed=signed)


def main_sentence(paired: dict) -> str:
    """The verdict sentence of the main comparison: a direction only when the interval excludes 0."""
    verdict, diff = paired["verdict"], paired.get("diff")
    if diff is None:
        return "RB-FT vs direct SFT was not measured."
    sign = paired["sign_test"]
    tail = (f"pooled difference {_ci(diff, True)} points (95 % bootstrap interval over test clips and seeds); "
            f"RB-FT ahead on {sign['positive']} of {sign['positive'] + sign['negative'] + sign['ties']} seeds "
            f"(sign test p = {_p(sign['p'])})")
    if verdict == "no significant difference":
        return f"**No significant difference** between RB-FT and direct SFT: {tail}."
    return f"**{verdict[0].upper() + verdict[1:]}**: {tail}."


def _header(doc: dict) -> list[str]:
    meta, rep = doc["meta"], doc["meta"]["report"]
    n = {s: len(doc["clips"].get(s, [])) for s in ("val", "test")}
    train = meta["train_clips"].get("1.0")
    smoke = ([f"> **Smoke run of the fast configuration** (tiny test model, {n['test']} test clips, seeds "
              f"{', '.join(map(str, rep['seeds']))}): it shows the report's tables, not the demo's result. The result "
              "is `rbft demo report` (the full configuration).", ""] if rep.get("name") == "fast" else [])
    return [
        "# Demo results: zero-shot vs direct SFT vs RB-FT in the synthetic smart-home world",
        "",
        *smoke,
        f"Written by `{meta['command']}` (its steps took {meta.get('compute_seconds', meta['seconds']) / 60:.1f} min "
        f"summed over {rep.get('workers', 1)} worker processes; the last invocation {meta['seconds'] / 60:.1f} min wall; "
        f"{meta['load']} at its end) and "
        f"rendered from `docs/demo-results.json`, which holds every run (spec, seed, metrics, predictions). "
        f"{train} train / {n['val']} validation / {n['test']} test clips, stratified per label; seeds "
        f"{', '.join(map(str, rep['seeds']))}. Accuracies in percent as **mean [95 % interval]**: the mean over "
        "seeds and test clips, the interval a bootstrap that resamples both seeds and clips. Hyperparameters were "
        "chosen on the validation split only; the test split was used for nothing but the numbers below.",
        "",
    ]


def _verdicts(t: dict) -> list[str]:
    out = ["## Verdict", "", "- " + main_sentence(t["paired"]), "- " + t["faithfulness"]["claim"]]
    for row in t["main"]:
        if row["single_class"]:
            which = [str(x) for x in row["single_class"] if x is not None]
            seeds = f" on seeds {', '.join(which)}" if which else ""
            out.append(f"- {row['method']} predicted a single class{seeds} (flagged ⚠ in the tables; in the mean, "
                       "not hidden).")
    learned = t.get("paired_learned")
    if learned is not None:
        out.append("- " + learned_sentence(learned))
    return out + [""]


def learned_sentence(learned: dict) -> str:
    """The main comparison again on the seeds where neither arm collapsed to one class: a baseline that predicts one
    class is broken, not beaten, so a win that rests on those seeds is not a win over a working baseline."""
    collapsed = ", ".join(map(str, learned["collapsed_seeds"]))
    if not learned["seeds"]:
        return (f"Every seed has an arm predicting a single class ({collapsed}): there is no comparison against a "
                "baseline that learned anything, so the verdict above is against a broken baseline.")
    kept = ", ".join(map(str, learned["seeds"]))
    return (f"Without the seeds where an arm predicted a single class ({collapsed}), on seeds {kept} only: pooled "
            f"difference {_ci(learned['diff'], True)} points, **{learned['verdict']}**. Only this comparison is "
            "against a direct SFT that learned something.")


def _grid(t: dict) -> list[str]:
    out = ["## 1. Tuning on the validation split", "",
           "Each trained arm picks lr and epochs by validation accuracy (ties: macro-F1); Stage I is fixed.", "",
           "| arm | lr | epochs | val accuracy [95 % CI] | val macro-F1 | single class | chosen |", "|---|---|---|---|---|---|---|"]
    for r in t["grid"]:
        out.append(f"| {r['arm']} | {r['lr']:g} | {r['epochs']:g} | {_ci(r['val_accuracy'])} | {_pct(r['val_macro_f1'])} | "
                   f"{_flag(r['single_class'])} | {'**yes**' if r['chosen'] else ''} |")
    return out + [""]


def _main(t: dict) -> list[str]:
    out = ["## 2. Test accuracy of each arm (chosen recipe, every seed)", "",
           "| method | lr | epochs | accuracy [95 % CI] | macro-F1 (mean) | accuracy per seed | single class |",
           "|---|---|---|---|---|---|---|"]
    for r in t["main"]:
        per_seed = ", ".join(f"{100 * a:.1f}" + ("*" if s in r["single_class"] else "")
                             for a, s in zip(r["per_seed"], r["seeds"]))
        lr = f"{r['lr']:g}" if r.get("lr") else "-"
        ep = f"{r['epochs']:g}" if r.get("epochs") else "-"
        out.append(f"| {r['method']} | {lr} | {ep} | {_ci(r['accuracy'])} | {_pct(r['macro_f1_mean'])} | {per_seed} | "
                   f"{_flag(r['single_class'])} |")
    return out + ["", "`*`: that seed predicted a single class on the whole test split.", ""]


def _paired(t: dict) -> list[str]:
    p = t["paired"]
    out = ["## 3. Paired comparison: RB-FT − direct SFT on the same test clips", "",
           "| seed | RB-FT | direct SFT | difference (points) | only RB-FT right | only direct SFT right | McNemar exact p |",
           "|---|---|---|---|---|---|---|"]
    for r in p["per_seed"]:
        out.append(f"| {r['seed']} | {_pct(r['first'])} | {_pct(r['second'])} | {100 * r['diff']:+.1f} | {r['only_first']} | "
                   f"{r['only_second']} | {_p(r['mcnemar_p'])} |")
    s = p["sign_test"]
    out += ["", f"Pooled difference: {_ci(p['diff'], True)} points. Sign test across seeds: {s['positive']} positive, "
            f"{s['negative']} negative, {s['ties']} tied, exact p = {_p(s['p'])}. Verdict: **{p['verdict']}**.", ""]
    return out


def _curve(t: dict) -> list[str]:
    out = ["## 4. Learning curve: share of the training labels", "",
           "Both arms with their chosen recipe on a nested, stratified share of the train clips (RB-FT: Stage I and "
           "Stage II on that share).", "",
           "| train labels | train clips | direct SFT | RB-FT | RB-FT − direct SFT | verdict | single class |",
           "|---|---|---|---|---|---|---|"]
    for r in t["learning_curve"]:
        out.append(f"| {100 * r['fraction']:.0f} % | {r['train_clips'] or '-'} | {_ci(r['sft'])} | {_ci(r['rbft'])} | "
                   f"{_ci(r['diff'], True)} | {r['verdict']} | {_flag(r['single_class'])} |")
    return out + [""]


def _sources(t: dict) -> list[str]:
    names = {"suggestions": "model suggestions", "reviewed": "oracle-reviewed (simulated expert)",
             "mix": "50/50 mix"}
    out = ["## 5. Rationale source of Stage I", "",
           "| Stage-I rationales | RB-FT accuracy | − direct SFT | verdict | − model suggestions | verdict | single class |",
           "|---|---|---|---|---|---|---|"]
    for r in t["rationale_source"]:
        name = names.get(r["source"], r["source"])
        if r["source"] == "mix":
            name = f"mix ({100 * r['human_share']:.0f} % reviewed)"
        out.append(f"| {name} | {_ci(r['rbft'])} | {_ci(r['diff_vs_sft'], True)} | {r['verdict_vs_sft']} | "
                   f"{_ci(r['diff_vs_suggestions'], True)} | {r['verdict_vs_suggestions']} | {_flag(r['single_class'])} |")
    return out + [""]


def _hint(t: dict) -> list[str]:
    h = t["label_hint"]
    out = ["## 6. Label hint while the base model writes rationales", "",
           "| label hint | rationales naming their own label | naming the other label | parse ok | RB-FT accuracy | single class |",
           "|---|---|---|---|---|---|"]
    for r in h["rows"]:
        out.append(f"| {r['hint']} | {_pct(r['names_own_label'])} % | {_pct(r['names_other_label'])} % | "
                   f"{_pct(r['parse_ok'])} % | {_ci(r['rbft'])} | {_flag(r['single_class'])} |")
    return out + ["", f"Effect of the hint on RB-FT's accuracy (on − off): {_ci(h['diff'], True)} points: **{h['verdict']}**.", ""]


def _faith(t: dict) -> list[str]:
    f = t["faithfulness"]
    k = next((r["k_random"] for r in f["rows"] if r["k_random"]), "-")
    out = ["## 7. Faithfulness: does the decision rest on the critical object?", "",
           f"Accuracy drop (points) when the critical object's per-frame boxes are blacked out vs {k} same-size random "
           "boxes per clip (the same boxes for both arms), and the answer position's attention on the critical object "
           "vs the object's share of the frame (what uniform attention gives). Paired per clip and seed.", "",
           "| arm | drop: critical object | drop: random boxes | critical − random | attention share | area share | attention − area |",
           "|---|---|---|---|---|---|---|"]
    for r in f["rows"]:
        out.append(f"| {r['arm']} | {_ci(r['drop_critical'], True)} | {_ci(r['drop_random'], True)} | "
                   f"{_ci(r['gap'], True)} | {_ci(r['attention_share'])} | {_ci(r['area_share'])} | "
                   f"{_ci(r['attention_excess'], True)} |")
    out += ["", f"(critical − random) of RB-FT − that of direct SFT: {_ci(f['gap_vs_sft'], True)} points.", "",
            f"**{f['claim']}**", ""]
    return out


def _how(doc: dict) -> list[str]:
    meta, rep, rat = doc["meta"], doc["meta"]["report"], doc.get("rationales", {})
    demo, world, build = meta["demo"], meta["world"], meta["build"]
    pre, cap = demo["pretrain"], build.get("caption", {})
    hint = rat.get("hint", {})
    exact = ", ".join(f"{k} {100 * v:.0f} %" for k, v in (hint.get("field_exact") or {}).items())
    return [
        "## How it was run", "",
        f"- World: {world['num_clips']} clips ({world['num_frames']} frames, {world['size'][0]}x{world['size'][1]} px, "
        f"{world['fps']:g} fps), seed {world['seed']}, labels from the domain rules in `rbft_core/demo/world.py`, "
        f"split {100 * (1 - rep['val_fraction'] - rep['test_fraction']):.0f} / {100 * rep['val_fraction']:.0f} / "
        f"{100 * rep['test_fraction']:.0f} % train / val / test per label; the model sees {demo['sample_frames']} frames.",
        f"- Base model: the `{demo['name']}` demo build (key {build.get('key')}): tiny Qwen2.5-VL (hidden "
        f"{pre['hidden_size']}, {pre['num_layers']} layers), pre-trained on generic captions; held-out caption check: "
        f"parse ok {100 * cap.get('parse_ok', 0):.0f} %, right subject {100 * cap.get('subject_named', 0):.0f} %.",
        f"- Rationales: written by the base model for the train clips ({hint.get('n', 0)} suggestions, parse ok "
        f"{_pct(hint.get('parse_ok'))} %, exact match with the scene graph: {exact or '-'}). Oracle-reviewed = the same "
        "clips after a *simulated* expert review that rewrites each rationale from the scene graph (reviewer "
        "`oracle (simulated expert: scene graph)`); it stands in for the human review step.",
        f"- Training: LoRA rank {rep['lora_rank']} on the language model and lm_head, vision merger trained, batch "
        f"{rep['batch_size']}; RB-FT Stage I {rep['stage1_epochs']:g} epochs at lr {rep['stage1_lr']:g}, Stage II from "
        f"M_inter. Grid: lr {', '.join(f'{v:g}' for v in rep['grid_lr'])} x epochs "
        f"{', '.join(f'{v:g}' for v in rep['grid_epochs'])}, selected on seeds {', '.join(map(str, rep['select_seeds']))}. "
        f"Ablations (sections 4-6) on seeds {', '.join(map(str, rep['ablation_seeds']))}. Predictions by label likelihood.",
        "- Statistics (`rbft_core/demo/report_stats.py`): 95 % percentile bootstrap (2000 resamples of seeds and of "
        "test clips); McNemar exact (binomial on the discordant clips); sign test (binomial over seeds, ties dropped). "
        "A direction is stated only when its interval excludes 0.",
        "- Determinism: every run is a typed spec (`runs/<id>/spec.yaml`); a spec gives the same metrics alone "
        "(`rbft run spec.yaml`) or inside this report (`tests/core/test_demo_report_determinism.py`).",
        f"- Reproduce: `{meta['command']}` (resumable: steps are kept in `results.jsonl` of the work folder); "
        "re-render this page without training: `rbft demo report --from docs/demo-results.json`.",
        "",
    ]


def render_markdown(doc: dict) -> str:
    t = doc["tables"]
    lines = [*_header(doc), *_verdicts(t), *_grid(t), *_main(t), *_paired(t), *_curve(t), *_sources(t), *_hint(t),
             *_faith(t), *_how(doc)]
    return "\n".join(lines)

"""The demo report's statistics against hand-computed values, and its verdicts on synthetic results both ways.

No model runs here: the tables and the page are built from synthetic runs shaped like ``docs/demo-results.json``.
"""

from __future__ import annotations

import random

import pytest

from rbft_core.demo.report import dumps
from rbft_core.demo.report_md import render_markdown
from rbft_core.demo.report_stats import (
    Interval,
    binomial_two_sided,
    bootstrap_interval,
    discordant,
    fmt_interval,
    mcnemar_exact,
    sign_test,
    verdict,
)
from rbft_core.demo.report_tables import build_tables, claim_sentence, select_config

TABLES = ("grid", "main", "paired", "learning_curve", "rationale_source", "label_hint", "faithfulness")


# ------------------------------------------------------------------------------------------ exact tests
@pytest.mark.parametrize("k, n, expected", [
    (0, 5, 2 / 32),                      # 2 * P(X <= 0) = 2 * 1/32
    (5, 5, 2 / 32),                      # symmetric
    (1, 7, 2 * (1 + 7) / 128),           # 0.125
    (2, 10, 2 * (1 + 10 + 45) / 1024),   # 0.109375
    (4, 10, 2 * (1 + 10 + 45 + 120 + 210) / 1024),  # 0.75390625
    (3, 6, 1.0),                         # the middle outcome: nothing is less likely in both tails
    (0, 0, 1.0),
    (0, 1, 1.0),                         # 2 * 1/2
    (0, 20, 2 / 2 ** 20),
])
def test_binomial_two_sided_matches_hand_computed_values(k, n, expected):
    assert binomial_two_sided(k, n) == pytest.approx(expected, abs=1e-15)


def test_mcnemar_uses_only_the_discordant_clips():
    # 10 clips: both right on 3, both wrong on 0, only A right on 6, only B right on 1 -> Binomial(7, 1/2), k = 1
    a = [1, 1, 1, 1, 1, 1, 1, 1, 1, 0]
    b = [1, 1, 1, 0, 0, 0, 0, 0, 0, 1]
    assert discordant(a, b) == (6, 1)
    assert mcnemar_exact(6, 1) == mcnemar_exact(1, 6) == pytest.approx(0.125)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 8) == pytest.approx(2 / 256)
    with pytest.raises(ValueError):
        discordant([1, 0], [1])


def test_sign_test_drops_ties():
    assert sign_test([0.1, 0.2, 0.05, 0.3, 0.1]) == {"positive": 5, "negative": 0, "ties": 0, "p": pytest.approx(0.0625)}
    assert sign_test([0.1, 0.0, -0.2]) == {"positive": 1, "negative": 1, "ties": 1, "p": 1.0}
    assert sign_test([0.1, 0.1, 0.1, -0.1, 0.1, 0.1])["p"] == pytest.approx(2 * (1 + 6) / 64)


def test_bootstrap_interval_is_seeded_and_covers_the_mean():
    assert bootstrap_interval([]) is None
    const = bootstrap_interval([[1, 1, 1], [1, 1, 1]])
    assert (const.mean, const.low, const.high) == (1.0, 1.0, 1.0)
    rng = random.Random(0)
    matrix = [[int(rng.random() < 0.7) for _ in range(300)] for _ in range(5)]
    a, b = bootstrap_interval(matrix), bootstrap_interval(matrix)
    assert a == b and a.seeds == 5 and a.clips == 300
    assert a.low < a.mean < a.high and a.low < 0.7 < a.high
    # the binomial standard error of 1500 draws at p = 0.7 is 1.2 points: the interval is about +-2.3 points
    assert 0.02 < a.high - a.low < 0.08
    # seed-to-seed variation widens the interval: one seed far off moves it
    skewed = [row[:] for row in matrix] + [[0] * 300]
    assert bootstrap_interval(skewed).high - bootstrap_interval(skewed).low > a.high - a.low


def test_verdict_follows_the_interval_only():
    assert verdict(Interval(0.05, 0.01, 0.09, 5, 200)) == "RB-FT beats direct SFT"
    assert verdict(Interval(0.05, -0.01, 0.11, 5, 200)) == "no significant difference"
    assert verdict(Interval(-0.05, -0.09, -0.01, 5, 200)) == "direct SFT beats RB-FT"
    assert verdict(None) == "not measured"
    assert fmt_interval(Interval(0.722, 0.651, 0.79, 5, 200)) == "72.2 [65.1, 79.0]"
    assert fmt_interval({"mean": 0.05, "low": -0.01, "high": 0.1, "seeds": 1, "clips": 2}, signed=True) == "+5.0 [-1.0, +10.0]"


# ------------------------------------------------------------------------------------------ synthetic runs
def _run(arm, seed, correct, truth, *, lr=2e-3, epochs=12.0, fraction=1.0, source=None, hint=True, share=None,
         split="test", faith=None):
    predicted = [t if c else ("normal" if t == "abnormal" else "abnormal") for t, c in zip(truth, correct)]
    label = {"arm": arm, "lr": lr, "epochs": epochs, "seed": seed, "fraction": fraction,
             "source": source or ("suggestions" if arm == "RB-FT" else "-"), "human_share": share, "hint": hint}
    ev = {"run_id": f"{arm}-{seed}", "spec": {}, "predicted": predicted, "p_abnormal": [0.5] * len(truth),
          "metrics": {"accuracy": sum(correct) / len(correct), "macro_f1": sum(correct) / len(correct), "n": len(truth)}}
    return {"key": f"{arm}{seed}{lr}{epochs}{fraction}{source}{hint}{split}", "label": label, "run_id": ev["run_id"],
            "spec": {"seed": seed}, "train": {"seconds": 1.0}, "eval": {split: ev}, "stage1": None, "faith": faith}


def _faith(n, crit_drop, rng):
    original = [1] * n
    return {"k_random": 5, "original": original, "critical": [int(rng.random() > crit_drop) for _ in range(n)],
            "random": [1.0 - 0.2 * rng.random() * 0.1 for _ in range(n)], "attention_share": [0.12] * n,
            "area_share": [0.08] * n}


def synthetic_doc(rbft_acc: float, sft_acc: float, crit_drop: float, *, seeds=(0, 1, 2, 3, 4), n=200) -> dict:
    """A report JSON with the given accuracies: every arm, grid point and ablation present."""
    rng = random.Random(1)
    truth = ["normal", "abnormal"] * (n // 2)
    val = ["normal", "abnormal"] * 20

    def draws(p, size=n):
        return [int(rng.random() < p) for _ in range(size)]

    runs = [{"key": "zs", "label": {"arm": "zero-shot"}, "run_id": "zs", "spec": {}, "train": None, "stage1": None,
             "faith": None, "eval": {"test": {"run_id": "zs", "spec": {}, "predicted": ["normal"] * n,
                                              "p_abnormal": [0.1] * n, "metrics": {"accuracy": 0.5, "macro_f1": 0.33}}}}]
    for arm, acc in (("direct SFT", sft_acc), ("RB-FT", rbft_acc)):
        for lr in (1e-3, 2e-3):
            right = round(40 * (acc - (0.2 if lr == 1e-3 else 0)))  # 2e-3 wins on validation
            runs.append(_run(arm, 0, [1] * right + [0] * (40 - right), val, lr=lr, split="val"))
        for seed in seeds:
            runs.append(_run(arm, seed, draws(acc), truth, faith=_faith(n, crit_drop if arm == "RB-FT" else 0.0, rng)))
            for fraction in (0.25, 0.5):
                runs.append(_run(arm, seed, draws(acc - 0.1), truth, fraction=fraction))
    for seed in seeds:
        runs.append(_run("RB-FT", seed, draws(rbft_acc), truth, source="reviewed"))
        runs.append(_run("RB-FT", seed, draws(rbft_acc), truth, source="mix", share=0.5))
        runs.append(_run("RB-FT", seed, draws(rbft_acc), truth, hint=False))
    doc = {"meta": {"command": "rbft demo report", "seconds": 60.0, "compute_seconds": 60.0, "load": "load average 1",
                    "report": {"seeds": list(seeds), "ablation_seeds": list(seeds), "select_seeds": [0],
                               "fractions": [0.25, 0.5, 1.0], "mix_share": 0.5, "val_fraction": 0.15,
                               "test_fraction": 0.4, "lora_rank": 16, "batch_size": 8, "stage1_epochs": 3.0,
                               "stage1_lr": 2e-3, "grid_lr": [1e-3, 2e-3], "grid_epochs": [12.0]},
                    "train_clips": {"0.25": 58, "0.5": 117, "1.0": 234},
                    "demo": {"name": "full", "sample_frames": 4, "pretrain": {"hidden_size": 128, "num_layers": 3}},
                    "world": {"num_clips": 520, "num_frames": 16, "size": [112, 84], "fps": 8.0, "seed": 0},
                    "build": {"key": "k", "caption": {"parse_ok": 1.0, "subject_named": 0.4}}},
           "clips": {"test": [f"c{i}" for i in range(n)], "val": [f"v{i}" for i in range(40)]},
           "truth": {"test": truth, "val": val},
           "rationales": {"hint": {"n": 234, "parse_ok": 0.96, "names_own_label": 0.3, "names_other_label": 0.01,
                                   "field_exact": {"subjects": 0.5}},
                          "no_hint": {"n": 234, "parse_ok": 0.95, "names_own_label": 0.0, "names_other_label": 0.0}},
           "runs": runs}
    doc["selection"] = {arm: select_config(runs, arm, [(1e-3, 12.0), (2e-3, 12.0)], val) for arm in ("direct SFT", "RB-FT")}
    doc["tables"] = build_tables(doc)
    return doc


def test_a_clear_win_is_called_a_win_and_every_table_has_intervals():
    doc = synthetic_doc(rbft_acc=0.85, sft_acc=0.6, crit_drop=0.4)
    t = doc["tables"]
    assert set(TABLES) <= set(t)
    assert t["paired"]["diff"]["low"] > 0 and t["paired"]["verdict"] == "RB-FT beats direct SFT"
    assert t["selection"]["RB-FT"] == {"lr": 2e-3, "epochs": 12.0}  # the better grid point on validation
    assert [r["chosen"] for r in t["grid"] if r["arm"] == "RB-FT"] == [False, True]
    assert all({"mean", "low", "high"} <= set(r["accuracy"]) for r in t["main"])
    assert [r["fraction"] for r in t["learning_curve"]] == [0.25, 0.5, 1.0]
    assert all(r["diff"] and r["rbft"] and r["sft"] for r in t["learning_curve"])
    assert [r["source"] for r in t["rationale_source"]] == ["suggestions", "reviewed", "mix"]
    assert [r["hint"] for r in t["label_hint"]["rows"]] == ["on", "off"] and t["label_hint"]["diff"]
    assert t["faithfulness"]["reproduced"] and "claim is reproduced" in t["faithfulness"]["claim"]
    assert all(r["gap"] and r["attention_excess"] for r in t["faithfulness"]["rows"])
    assert t["main"][0]["single_class"] == [None]  # zero-shot predicts one class: flagged
    page = render_markdown(doc)
    assert "**RB-FT beats direct SFT**" in page and "no significant difference between RB-FT" not in page.lower()
    assert "⚠ single class" in page and "claim is reproduced" in page
    for header in ("Tuning on the validation split", "Test accuracy of each arm", "Paired comparison",
                   "Learning curve", "Rationale source", "Label hint", "Faithfulness"):
        assert header in page
    assert page.count(" [") > 30  # intervals everywhere


def test_a_tie_is_called_no_significant_difference_and_the_claim_not_reproduced():
    doc = synthetic_doc(rbft_acc=0.62, sft_acc=0.6, crit_drop=0.0)
    t = doc["tables"]
    assert t["paired"]["diff"]["low"] <= 0 <= t["paired"]["diff"]["high"]
    assert t["paired"]["verdict"] == "no significant difference"
    assert not t["faithfulness"]["reproduced"] and "not reproduced" in t["faithfulness"]["claim"]
    page = render_markdown(doc)
    assert "**No significant difference** between RB-FT and direct SFT" in page
    assert "RB-FT beats direct SFT" not in page
    assert "claim is not reproduced" in page


def test_single_class_seeds_are_flagged_not_hidden():
    doc = synthetic_doc(rbft_acc=0.8, sft_acc=0.6, crit_drop=0.3)
    sft = [r for r in doc["runs"] if r["label"].get("arm") == "direct SFT" and r["label"].get("fraction") == 1.0
           and "test" in r["eval"] and r["label"]["seed"] in (1, 3)]
    for run in sft:
        run["eval"]["test"]["predicted"] = ["normal"] * len(doc["truth"]["test"])
    t = build_tables(doc)
    row = next(r for r in t["main"] if r["method"] == "direct SFT")
    assert row["single_class"] == [1, 3] and len(row["per_seed"]) == 5  # in the mean, and named
    doc["tables"] = t
    page = render_markdown(doc)
    assert "⚠ seeds 1, 3" in page and "direct SFT predicted a single class on seeds 1, 3" in page
    # the comparison is repeated without the collapsed seeds, and the page says so
    learned = t["paired_learned"]
    assert learned["seeds"] == [0, 2, 4] and learned["collapsed_seeds"] == [1, 3]
    assert "Without the seeds where an arm predicted a single class (1, 3), on seeds 0, 2, 4 only" in page
    assert synthetic_doc(rbft_acc=0.8, sft_acc=0.6, crit_drop=0.3)["tables"]["paired_learned"] is None


def test_claim_sentence_follows_the_intervals():
    up, zero, down = Interval(0.1, 0.05, 0.15, 5, 200), Interval(0.0, -0.02, 0.03, 5, 200), Interval(-0.1, -0.2, -0.05, 5, 200)
    assert claim_sentence(up, up, up).startswith("The paper's claim is reproduced")
    assert "significantly more than it hurts direct SFT" in claim_sentence(up, up, up)
    assert "but not significantly more than it hurts direct SFT" in claim_sentence(up, zero, up)
    assert claim_sentence(zero, zero, zero).startswith("The paper's claim is not reproduced")
    assert "hurts RB-FT less" in claim_sentence(down, None, None)
    assert "not significantly above its area share" in claim_sentence(up, None, zero)


def test_the_json_writer_round_trips_and_keeps_one_line_per_run():
    import json

    doc = synthetic_doc(rbft_acc=0.8, sft_acc=0.6, crit_drop=0.3, seeds=(0, 1), n=20)
    text = dumps(doc)
    assert json.loads(text) == json.loads(json.dumps(doc))
    run_lines = [line for line in text.splitlines() if line.startswith('  {"key"')]
    assert len(run_lines) == len(doc["runs"])


def test_the_results_store_survives_a_kill_mid_write(tmp_path):
    from rbft_core.demo.report_store import ResultStore, spec_key

    path = tmp_path / "results.jsonl"
    store = ResultStore(path)
    store.add({"type": "train", "key": spec_key({"lr": 1e-3}, "ctx"), "run_id": "a"})
    store.add({"type": "eval", "key": "k", "split": "test", "run_id": "a"})
    path.write_text(path.read_text() + '{"type": "train", "key": "half')  # killed while writing
    store = ResultStore(path)
    assert store.get("eval", "k", "test")["run_id"] == "a" and len(store.records) == 2
    store.add({"type": "faith", "key": "k", "run_id": "a"})
    again = ResultStore(path)
    assert len(again.records) == 3 and again.get("faith", "k")["run_id"] == "a"
    assert spec_key({"a": 1, "b": 2}) == spec_key({"b": 2, "a": 1}) != spec_key({"a": 1, "b": 3})


# ------------------------------------------------------------------------------------------ report data
def test_validation_and_curve_splits_are_stratified_nested_and_leave_test_alone():
    from collections import Counter
    from dataclasses import replace

    from rbft_core.demo import DemoConfig, stratified_split
    from rbft_core.demo.render import world_specs
    from rbft_core.demo.report import ReportConfig, report_world_spec
    from rbft_core.demo.report_data import curve_rows, split_rows

    rep = ReportConfig()
    world = report_world_spec(DemoConfig(), rep)
    specs = world_specs(world)
    split = stratified_split(specs, world.seed, world.test_fraction)
    rows = [{"id": s.clip_id, "label": s.label, "split": split[s.clip_id]} for s in specs]
    out = split_rows(rows, seed=world.seed, val_fraction=rep.val_fraction)
    counts = Counter((r["split"], r["label"]) for r in out)
    assert counts[("test", "normal")] == counts[("test", "abnormal")] == 100  # >= 200 test clips, balanced
    assert counts[("val", "normal")] == counts[("val", "abnormal")] == 35
    assert [r["id"] for r in out if r["split"] == "test"] == [r["id"] for r in rows if r["split"] == "test"]
    quarter, half = ({r["id"] for r in curve_rows(out, f, seed=0)} for f in (0.25, 0.5))
    assert quarter < half and len(half) == 116 and len(quarter) == 58
    assert all(r["split"] == "train" for r in curve_rows(out, 0.5, seed=0))
    # the base model does not depend on the world's size, seed or split: more clips reuse the built model
    assert DemoConfig(world=replace(world, num_clips=2000, seed=7, test_fraction=0.5)).cache_key() == DemoConfig().cache_key()


def test_a_rationale_names_a_label_only_as_a_word():
    from rbft_core.demo.report_data import names_label

    assert names_label('{"scenes": "porch", "conclusion": "abnormal"}', "abnormal")
    assert not names_label('{"conclusion": "abnormal"}', "normal")
    assert names_label("This looks Normal.", "normal") and not names_label("", "normal")

"""``rbft demo report --fast`` end to end: every table with intervals in the JSON and the page, the verdict
following its interval, re-rendering from the JSON without training, resuming after a kill, and the report's
runs reproduced alone by ``rbft run`` in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

TABLES = ("grid", "main", "paired", "learning_curve", "rationale_source", "label_hint", "faithfulness")
SECTIONS = ("## Verdict", "## 1. Tuning on the validation split", "## 2. Test accuracy of each arm",
            "## 3. Paired comparison", "## 4. Learning curve", "## 5. Rationale source", "## 6. Label hint",
            "## 7. Faithfulness")


def _cli(*args: str, data_dir: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "rbft_core.cli.main", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def fast_report(demo_base_model, tmp_path_factory):
    """One `rbft demo report --fast` (the session's fast demo build is reused): (page path, JSON, seconds, process)."""
    out = tmp_path_factory.mktemp("report") / "demo-results.md"
    started = time.perf_counter()
    proc = _cli("demo", "report", "--fast", "--out", str(out), data_dir=demo_base_model.model_dir.parents[1])
    seconds = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr[-4000:]
    print(f"rbft demo report --fast: {seconds:.0f} s wall")
    return out, json.loads(out.with_suffix(".json").read_text()), seconds, proc


def _is_interval(value) -> bool:
    return isinstance(value, dict) and {"mean", "low", "high", "seeds", "clips"} <= set(value) \
        and value["low"] <= value["mean"] <= value["high"]


def test_the_fast_report_writes_every_table_with_intervals(fast_report):
    page_path, doc, seconds, proc = fast_report
    t = doc["tables"]
    assert set(TABLES) <= set(t)
    assert all(_is_interval(r["val_accuracy"]) for r in t["grid"]) and sum(r["chosen"] for r in t["grid"]) == 2
    assert {r["arm"] for r in t["grid"]} == {"direct SFT", "RB-FT"} and len(t["grid"]) == 4
    assert [r["method"] for r in t["main"]] == ["zero-shot", "direct SFT", "RB-FT"]
    assert all(_is_interval(r["accuracy"]) for r in t["main"])
    assert _is_interval(t["paired"]["diff"]) and len(t["paired"]["per_seed"]) == 2
    assert all(0 <= r["mcnemar_p"] <= 1 for r in t["paired"]["per_seed"]) and "p" in t["paired"]["sign_test"]
    assert [r["fraction"] for r in t["learning_curve"]] == [0.25, 0.5, 1.0]
    assert all(_is_interval(r[k]) for r in t["learning_curve"] for k in ("rbft", "sft", "diff"))
    assert [r["source"] for r in t["rationale_source"]] == ["suggestions", "reviewed", "mix"]
    assert all(_is_interval(r["rbft"]) and _is_interval(r["diff_vs_sft"]) for r in t["rationale_source"])
    assert [r["hint"] for r in t["label_hint"]["rows"]] == ["on", "off"] and _is_interval(t["label_hint"]["diff"])
    assert all(r["names_own_label"] is not None for r in t["label_hint"]["rows"])
    faith = t["faithfulness"]
    assert all(_is_interval(r[k]) for r in faith["rows"] for k in ("drop_critical", "drop_random", "gap",
                                                                  "attention_share", "area_share"))
    assert all(r["k_random"] == 5 for r in faith["rows"]) and "claim" in faith["claim"]

    # every run: spec, seed, metrics, predictions on every test clip
    n_test, n_val = len(doc["clips"]["test"]), len(doc["clips"]["val"])
    assert n_test == 24 and n_val == 16 and len(doc["truth"]["test"]) == n_test
    for run in doc["runs"]:
        assert run["spec"] and run["eval"]
        for split, ev in run["eval"].items():
            assert len(ev["predicted"]) == len(ev["p_abnormal"]) == (n_test if split == "test" else n_val)
            assert 0 <= ev["metrics"]["accuracy"] <= 1
        if run["label"]["arm"] != "zero-shot":
            assert run["spec"]["seed"] == run["label"]["seed"] and run["train"]["train_examples"] > 0
    trained = [r for r in doc["runs"] if r["label"]["arm"] != "zero-shot"]
    assert len(trained) == 4 + 2 + 4 + 2 + 1  # grid, seed 1 of both arms, curve, sources, no hint
    assert sum(1 for r in trained if r["faith"]) == 4

    page = page_path.read_text()
    for section in SECTIONS:
        assert section in page
    assert page.count(" [") >= 40  # intervals in every table
    # the verdict sentence follows the interval (the page's first verdict; the learning curve, the rationale
    # sources and the comparison without collapsed seeds have verdicts of their own further on)
    diff = t["paired"]["diff"]
    verdict = page.split("## Verdict\n\n- ", 1)[1].split("\n", 1)[0]
    if diff["low"] > 0:
        assert verdict.startswith("**RB-FT beats direct SFT**")
    elif diff["high"] < 0:
        assert verdict.startswith("**Direct SFT beats RB-FT**")
    else:
        assert verdict.startswith("**No significant difference** between RB-FT and direct SFT")
    assert f"Verdict: **{t['paired']['verdict']}**" in page  # the paired table says the same
    assert ("claim is reproduced" in page) == faith["reproduced"]
    assert "demo report" in proc.stderr  # the progress bar
    assert doc["meta"]["compute_seconds"] > 0 and seconds < 900


def test_the_page_renders_from_the_json_alone(fast_report, tmp_path, demo_base_model):
    page_path, doc, _, _ = fast_report
    results = Path(doc["meta"]["workdir"]) / "results.jsonl"
    before = results.read_text()
    out = tmp_path / "again.md"
    started = time.perf_counter()
    proc = _cli("demo", "report", "--from", str(page_path.with_suffix(".json")), "--out", str(out),
                data_dir=tmp_path / "empty-data")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.read_text() == page_path.read_text()
    assert results.read_text() == before and time.perf_counter() - started < 60  # nothing trained


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_killed_report_resumes_and_its_retrained_runs_are_identical(fast_report, tmp_path, demo_base_model):
    page_path, doc, _, _ = fast_report
    results = Path(doc["meta"]["workdir"]) / "results.jsonl"
    records = _records(results)
    # kill the report while it trains the label-hint ablation's Stage II (the last training): that run, its
    # evaluation and every faithfulness record are lost, and the last line is half written
    cut = next(i for i, r in enumerate(records) if r["type"] == "train" and r["label"].get("hint") is False
               and "stage" not in r["label"])
    lost = records[cut:]
    assert {r["type"] for r in lost} == {"train", "eval", "faith"} and len(lost) >= 6
    results.write_text("".join(json.dumps(r) + "\n" for r in records[:cut]) + '{"type": "train", "key": "ab')
    out = tmp_path / "resumed.md"
    proc = _cli("demo", "report", "--fast", "--out", str(out), data_dir=demo_base_model.model_dir.parents[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = {(r["type"], r["key"], r.get("split", "")): r for r in _records(results)[cut:]}
    assert len(again) == len(lost)
    for old in lost:  # retrained in a fresh process after no other training: the same numbers
        new = again[(old["type"], old["key"], old.get("split", ""))]
        if old["type"] == "train":
            assert new["run_id"] != old["run_id"]  # a new run...
            assert new["metrics"]["train_loss"] == old["metrics"]["train_loss"]  # ...with the same numbers
        elif old["type"] == "eval":
            assert (new["predicted"], new["p_abnormal"]) == (old["predicted"], old["p_abnormal"])
        else:
            assert {k: new[k] for k in ("original", "critical", "random", "attention_share")} == \
                   {k: old[k] for k in ("original", "critical", "random", "attention_share")}
    resumed = json.loads(out.with_suffix(".json").read_text())
    assert resumed["tables"] == doc["tables"]


def test_a_report_run_is_reproduced_alone_by_rbft_run(fast_report, tmp_path):
    """The RB-FT Stage II of seed 1 (trained late in the report, after many other runs) alone in a fresh process,
    with a cold frame cache and torch's default thread count: same loss, same test predictions."""
    _, doc, _, _ = fast_report
    run = next(r for r in doc["runs"] if r["label"] == {**r["label"], "arm": "RB-FT", "seed": 1, "fraction": 1.0,
                                                         "source": "suggestions", "hint": True})
    workdir = Path(doc["meta"]["workdir"])
    spec_path = workdir / "runs" / run["run_id"] / "spec.yaml"
    assert spec_path.is_file()
    text = spec_path.read_text().replace("evaluate: false", "evaluate: true")
    (tmp_path / "spec.yaml").write_text(text)
    db = f"sqlite:///{workdir / 'report.db'}"
    proc = _cli("run", str(tmp_path / "spec.yaml"), "--json", "--db", db, data_dir=tmp_path / "fresh")
    assert proc.returncode == 0, proc.stderr[-3000:]
    alone = json.loads(proc.stdout.strip().splitlines()[-1])
    assert alone["run_id"] != run["run_id"]
    assert alone["train_loss"] == run["train"]["train_loss"]
    assert alone["eval"]["accuracy"] == run["eval"]["test"]["metrics"]["accuracy"]

    from db import job_queries as jq
    from db.engine import session_scope

    with session_scope(db) as s:
        preds = {p["video"]: p for p in jq.run_predictions(s, alone["run_id"])}
    assert [round(preds[c]["probs"]["abnormal"], 6) for c in doc["clips"]["test"]] == run["eval"]["test"]["p_abnormal"]
    assert [preds[c]["predicted"] for c in doc["clips"]["test"]] == run["eval"]["test"]["predicted"]

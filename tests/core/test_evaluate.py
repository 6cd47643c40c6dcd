"""Evaluation by label likelihood, metrics, comparison table, the pipeline and two-process training."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.engine import session_scope
from db.models import Prediction, Video
from rbft_core.specs.training import EvaluateSpec
from rbft_core.training.evaluate import classification_metrics, compare_runs, evaluate_run
from rbft_core.errors import DataError


def test_metrics_on_a_known_confusion():
    truth = ["normal", "normal", "abnormal", "abnormal", "abnormal"]
    pred = ["normal", "abnormal", "abnormal", "abnormal", "normal"]
    m = classification_metrics(truth, pred, ["normal", "abnormal"], scores=[0.1, 0.6, 0.9, 0.8, 0.4])
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["confusion_matrix"]["matrix"] == [[1, 1], [1, 2]]
    assert m["per_class"]["abnormal"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["normal"]["recall"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert m["roc_auc"] == pytest.approx(5 / 6)


def test_zero_shot_predicts_every_test_video_with_probabilities(world_dataset, tiny_model_dir):
    name, url = world_dataset
    report = evaluate_run(url, name, model=str(tiny_model_dir), cfg=EvaluateSpec(num_frames=4, max_pixels=3136))
    with session_scope(url) as s:
        n_test = s.scalar(select(func.count()).select_from(Video).where(Video.split == "test"))
        assert s.scalar(select(func.count()).select_from(Prediction)) == n_test
    assert report.kind == "zero_shot" and report.metrics["n"] == n_test
    for p in report.predictions:
        assert sum(p["probs"].values()) == pytest.approx(1.0)
        assert p["predicted"] == max(p["probs"], key=p["probs"].get)
    table = compare_runs(url, name)
    assert [r["name"] for r in table["rows"]] == ["zero-shot"]
    assert Path(table["csv"]).read_text().startswith("name,run_id,accuracy,macro_f1")


def test_compare_without_runs_says_what_to_do(world_dataset):
    name, url = world_dataset
    with pytest.raises(DataError, match="no evaluated runs"):
        compare_runs(url, name)


def _env(url, data_dir):
    return dict(os.environ, RBFT_DATABASE_URL=url, RBFT_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
                PYTHONPATH=str(Path(__file__).resolve().parents[2]))


@pytest.mark.slow
def test_pipeline_with_baselines_fills_the_comparison(world_dataset, tiny_model_dir, data_dir):
    name, url = world_dataset
    out = subprocess.run([sys.executable, "-m", "rbft_core.cli.main", "pipeline", name, "--model", str(tiny_model_dir),
                          "--with-baselines", "--epochs", "1", "--frames", "4", "--max-pixels", "3136", "--json"],
                         env=_env(url, data_dir), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert set(result["runs"]) >= {"stage1", "stage2", "zero_shot", "direct_sft"}
    names = [r["name"] for r in result["comparison"]["rows"]]
    assert names == ["zero-shot", "direct SFT", "Stage I", "RB-FT"]
    compare = subprocess.run([sys.executable, "-m", "rbft_core.cli.main", "compare", name, "--json"], env=_env(url, data_dir),
                             capture_output=True, text=True, timeout=120)
    assert [r["name"] for r in json.loads(compare.stdout)["rows"]] == names
    # what the Train tab shows: the Stage-I model's rationale beside each RB-FT prediction, plots of all four
    from rbft_core.tabs import runs as run_view

    os.environ["RBFT_DATA_DIR"] = str(data_dir)
    preds = run_view.predictions(url, result["runs"]["stage2"])
    assert preds and all(0.0 <= p["probability"] <= 1.0 and p["truth"] in ("normal", "abnormal") for p in preds)
    assert all(p["rationale"] for p in preds), "the Stage-I model wrote no rationale for some test video"
    assert run_view.predictions(url, result["runs"]["direct_sft"])[0]["rationale"] == ""  # no Stage I behind it
    table = run_view.comparison(url, name)
    assert [r["name"] for r in table["rows"]] == names and all(r["confusion"] for r in table["rows"])
    assert len(run_view.confusion_figure(table).axes) >= 4 and run_view.per_class_figure(table).axes
    history = {r["run_id"]: r for r in run_view.run_history(url, name)}
    stage2 = history[result["runs"]["stage2"]]
    assert stage2["parent"] == result["runs"]["stage1"] and stage2["adapter"] and stage2["accuracy"] is not None


@pytest.mark.slow
def test_two_process_training_on_cpu(world_dataset, tiny_model_dir, data_dir):
    name, url = world_dataset
    out = subprocess.run([sys.executable, "-m", "rbft_core.cli.main", "train", name, "--stage", "2", "--model", str(tiny_model_dir),
                          "--max-steps", "2", "--batch-size", "1", "--frames", "4", "--max-pixels", "3136", "--lora-rank", "4",
                          "--nproc-per-node", "2", "--master-port", "29517", "--run-id", "ddp", "--json"],
                         env=_env(url, data_dir), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    run_dir = data_dir / "runs" / "ddp"
    seen = [
        {v for line in (run_dir / f"data_order_rank{r}.jsonl").read_text().splitlines() for v in json.loads(line)}
        for r in (0, 1)
    ]
    assert seen[0] and seen[1] and not seen[0] & seen[1]  # disjoint shards
    assert (run_dir / "adapter" / "adapter_config.json").exists()
    lines = (run_dir / "trainer_log.jsonl").read_text().splitlines()
    assert len([l for l in lines if json.loads(l)["loss"] is not None]) == 2  # rank 0 alone logged
    assert json.loads(out.stdout.strip().splitlines()[-1])["global_step"] == 2

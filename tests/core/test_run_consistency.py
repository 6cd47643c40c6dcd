"""One run, one set of numbers: every view of a run reads the same accuracy, the Zero-shot button and the
pipeline's zero-shot are the same evaluation, and a run's spec file trains the run again.

Runs on the fast demo configuration (the pre-trained tiny base model and its world) with the CPU demo preset's
recipe, scaled down to two epochs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from db import job_queries as jq
from db.engine import session_scope
from rbft_core.demo import DEMO_DATASET
from rbft_core.data.importer import import_videos
from rbft_core.jobs.execute import execute
from rbft_core.specs import EvaluateSpec, MaskSpec, PipelineSpec, TrainSpec
from rbft_core.specs.training import DEFAULT_TARGETS
from rbft_core.tabs import runs as run_view
from rbft_core.tabs.train import LaunchRequest, launch_spec
from rbft_core.training.evaluate import compare_runs
from rbft_core.training.pipeline import zero_shot_spec
from tests.conftest import REPO_ROOT
from tests.review_world import free_port

pytestmark = pytest.mark.slow


def _rbft(args, db_url, data_dir):
    env = dict(os.environ, RBFT_DATA_DIR=str(data_dir), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1",
               PYTHONPATH=str(REPO_ROOT))
    out = subprocess.run([sys.executable, "-m", "rbft_core.cli.main", *args, "--db", db_url, "--json"],
                         capture_output=True, text=True, timeout=900, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


@pytest.fixture
def demo(demo_base_model, db_url, data_dir):
    build = demo_base_model
    import_videos(db_url, DEMO_DATASET, build.manifest.parent, manifest=build.manifest, fmt="jsonl",
                  preset="smart-home")
    stage = dict(dataset=DEMO_DATASET, model=str(build.model_dir), num_frames=build.config.sample_frames,
                 max_pixels=112 * 112, lora_rank=16, lora_alpha=32, lr=2e-3, epochs=2.0, batch_size=8,
                 target_modules=DEFAULT_TARGETS + "|lm_head", train_vision_merger=True)
    return build, stage


def _mask_original(result: dict, run_id: str) -> float:
    return next(m["accuracy_original"] for m in result["models"] if m["run_id"] == run_id)


def test_one_run_gets_the_same_test_accuracy_in_every_view(demo, db_url, data_dir):
    from gradio_client import Client

    from ui.app import build_app, page_assets

    build, stage = demo
    trained = _rbft(["train", DEMO_DATASET, "--stage", "2", "--model", stage["model"], "--frames", "4",
                     "--max-pixels", str(stage["max_pixels"]), "--lora-rank", "16", "--lora-alpha", "32", "--lr",
                     "0.002", "--epochs", "2", "--batch-size", "8", "--target-modules", stage["target_modules"],
                     "--train-vision-merger", "--evaluate"], db_url, data_dir)
    run_id = trained["run_id"]
    views = {"training's evaluation": trained["eval"]["accuracy"]}
    views["comparison"] = next(r["accuracy"] for r in compare_runs(db_url, DEMO_DATASET)["rows"] if r["run_id"] == run_id)
    views["Train tab comparison"] = next(r["accuracy"] for r in run_view.comparison(db_url, DEMO_DATASET)["rows"]
                                         if r["run_id"] == run_id)
    views["rbft evaluate --run"] = _rbft(["evaluate", DEMO_DATASET, "--run", run_id], db_url, data_dir)["metrics"]["accuracy"]
    masking = execute(MaskSpec(dataset=DEMO_DATASET, runs=(run_id,), k_random=1, bootstrap=0), db_url)
    views["masking experiment, original"] = _mask_original(masking, run_id)
    model = next(m for m in masking["models"] if m["run_id"] == run_id)
    assert model["n"] == model["n_split"] == trained["eval"]["n"]  # every test clip has its critical object's boxes
    assert model["sampling"]["num_frames"] == 4 and not model["sampling_override"]

    app = build_app(db_url)
    port = free_port()
    app.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                       **page_assets())
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        table = client.predict(DEMO_DATASET, api_name="/inspect_dataset")[3]
        table = table.get("value", table)  # a component update carries the table under "value"
    finally:
        app.close()
    column = table["headers"].index("accuracy_original")
    views["Inspect tab"] = next(row[column] for row in table["data"] if row[1] == run_id)
    rounded = {name: round(float(value), 4) for name, value in views.items()}
    assert len(set(rounded.values())) == 1, rounded


def test_zero_shot_button_and_pipeline_zero_shot_are_the_same_evaluation(demo, db_url, data_dir):
    build, stage = demo
    values = {k: stage[k] for k in ("num_frames", "max_pixels", "lr", "epochs", "batch_size", "lora_rank")}
    button = launch_spec(LaunchRequest(DEMO_DATASET, stage["model"], action="zero_shot", stage1=values,
                                       stage2=values))
    pipeline = zero_shot_spec(PipelineSpec(stage1=TrainSpec(stage=1, **stage), stage2=TrainSpec(stage=2, **stage)))
    assert button == pipeline  # the same spec: same sampling (frames, fps, max frames, max pixels) and batch
    first = execute(button, db_url)
    second = execute(pipeline, db_url)
    assert first["metrics"]["accuracy"] == second["metrics"]["accuracy"]
    for a, b in zip(first["predictions"], second["predictions"]):
        assert a["video_id"] == b["video_id"] and a["probs"] == pytest.approx(b["probs"], abs=1e-9)


def test_running_a_runs_spec_file_reproduces_its_metrics(demo, db_url, data_dir):
    build, stage = demo
    first = _rbft(["train", DEMO_DATASET, "--stage", "2", "--model", stage["model"], "--frames", "4",
                   "--max-pixels", str(stage["max_pixels"]), "--lr", "0.002", "--epochs", "2", "--batch-size", "8",
                   "--seed", "3", "--evaluate"], db_url, data_dir)
    spec_file = data_dir / "runs" / first["run_id"] / "spec.yaml"
    again = _rbft(["run", str(spec_file)], db_url, data_dir)
    assert again["run_id"] != first["run_id"]  # a new run, the old one untouched
    assert again["train_loss"] == pytest.approx(first["train_loss"], abs=1e-6)
    assert again["eval"]["accuracy"] == pytest.approx(first["eval"]["accuracy"], abs=1e-6)
    assert again["eval"]["macro_f1"] == pytest.approx(first["eval"]["macro_f1"], abs=1e-6)
    with session_scope(db_url) as s:
        a, b = (sorted(jq.run_predictions(s, r), key=lambda p: p["video_id"]) for r in (first["run_id"], again["run_id"]))
    assert [p["video_id"] for p in a] == [p["video_id"] for p in b] and len(a) == first["eval"]["n"]
    for pa, pb in zip(a, b):
        assert pa["probs"] == pytest.approx(pb["probs"], abs=1e-6)

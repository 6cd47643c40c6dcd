"""What the Train tab starts and shows: refusals before launch, readiness, the exact command and YAML,
queued jobs, and the live/results views read from real run folders."""

from __future__ import annotations

import csv
import fcntl
import json
import time

import pytest

from rbft_core.errors import ConfigError, DataError, ModelError
from rbft_core.specs import PipelineSpec, TrainSpec, load_spec
from rbft_core.tabs.train import (PRESETS, LaunchRequest, command_text, launch, launch_spec, readiness, spec_yaml,
                                  stage_configs)
from rbft_core.training.pipeline import zero_shot_spec

FAST = {"num_frames": 4, "max_pixels": 3136, "lr": 1e-3, "epochs": 1.0, "lora_rank": 4, "lora_alpha": 8, "batch_size": 2}


def _jobs(url) -> int:
    from db.engine import session_scope
    from db.models import Job
    from sqlalchemy import func, select

    with session_scope(url) as s:
        return s.scalar(select(func.count()).select_from(Job))


@pytest.mark.parametrize("field,value,named", [
    ("lr", 0.0, "learning rate (lr) must be > 0"),
    ("lr", -1e-4, "learning rate (lr) must be > 0"),
    ("num_frames", 0, "frames (num_frames) must be >= 1"),
    ("lora_rank", 0, "LoRA rank (lora_rank) must be >= 1"),
])
def test_invalid_settings_are_refused_before_launch_naming_the_field(world_dataset, tiny_model_dir, field, value, named):
    name, url = world_dataset
    for stage, title in (("stage1", "Stage I"), ("stage2", "Stage II")):
        req = LaunchRequest(name, str(tiny_model_dir), **{stage: {**FAST, field: value}})
        with pytest.raises(ConfigError) as err:
            launch(url, req)
        assert f"{title} settings: {named}" in str(err.value)
    assert _jobs(url) == 0


def test_a_base_model_that_does_not_exist_is_refused(world_dataset, tmp_path):
    name, url = world_dataset
    with pytest.raises(ModelError, match="no-such-model"):
        launch(url, LaunchRequest(name, str(tmp_path / "no-such-model"), stage1=FAST, stage2=FAST))
    assert _jobs(url) == 0


def test_a_dataset_with_one_class_is_refused(tmp_path, db_url, data_dir, tiny_model_dir):
    from rbft_core.demo import WorldSpec, render_world
    from rbft_core.data.importer import import_videos

    manifest = render_world(tmp_path / "world", WorldSpec(num_clips=6, num_frames=4, size=(64, 48)))
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    with open(tmp_path / "one.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "split"])
        for i, row in enumerate(rows):
            writer.writerow([row["path"], "normal", "test" if i < 2 else "train"])
    import_videos(db_url, "one", manifest.parent, manifest=tmp_path / "one.csv", fmt="csv", preset="smart-home")
    ready = readiness(db_url, "one")
    assert not ready.ok and "at least two classes" in ready.blocking[0] and "'normal'" in ready.blocking[0]
    with pytest.raises(DataError, match="at least two classes"):
        launch(db_url, LaunchRequest("one", str(tiny_model_dir), stage1=FAST, stage2=FAST))
    assert _jobs(db_url) == 0
    assert readiness(db_url, "one", action="zero_shot").ok  # zero-shot needs no second class


def test_readiness_counts_classes_and_rationales(world_dataset):
    from db import queries
    from db.engine import session_scope
    from db.models import Review, Video
    from sqlalchemy import select

    name, url = world_dataset
    ready = readiness(url, name)
    assert ready.ok, ready.blocking
    total = sum(c["train"] + c["val"] + c["test"] for c in ready.per_class)
    assert total == 12 and sorted(c["label"] for c in ready.per_class) == ["abnormal", "normal"]
    train = sum(c["train"] for c in ready.per_class)
    assert ready.rationales["usable"] == ready.rationales["model"] == train
    with session_scope(url) as s:  # an expert rejects one rationale: it leaves Stage I, and readiness says so
        review = s.scalars(select(Review).join(Video, Video.id == Review.video_id)
                           .where(Video.split == "train").order_by(Video.id)).first()
        queries.save_review(s, review.id, expected_version=review.version, status="rejected", reviewer="ann")
    ready = readiness(url, name)
    assert ready.rationales["rejected"] == 1 and ready.rationales["usable"] == train - 1
    assert any("1 rejected rationale" in w for w in ready.warnings)


def test_each_button_is_a_spec_whose_yaml_reads_back_equal(world_dataset, tiny_model_dir, tmp_path):
    name, url = world_dataset
    req = LaunchRequest(name, str(tiny_model_dir), stage1={**FAST, "lr": 5e-4}, stage2=FAST, rationale_source="mix",
                        human_share=0.5)
    assert command_text(req) == "rbft run spec.yaml"
    (tmp_path / "spec.yaml").write_text(spec_yaml(req))
    spec = load_spec(tmp_path / "spec.yaml")
    want1, want2 = stage_configs(req)
    assert isinstance(spec, PipelineSpec) and spec == launch_spec(req)
    assert spec.stage1 == want1 and spec.stage1.lr == 5e-4 and spec.stage1.rationale_source == "mix"
    assert spec.stage2.lr == want2.lr and spec.stage2.num_frames == 4 and spec.with_baselines
    demo = LaunchRequest(name, str(tiny_model_dir), stage1=FAST, stage2=FAST,
                         **PRESETS["CPU demo (tiny model)"]["common"])  # lm_head in the targets, merger trained
    assert all(c.target_modules.endswith("|lm_head") and c.train_vision_merger for c in stage_configs(demo))
    direct = launch_spec(LaunchRequest(name, str(tiny_model_dir), action="direct_sft", stage2=FAST))
    assert isinstance(direct, TrainSpec) and direct.kind == "direct_sft" and direct.evaluate
    zero = launch_spec(LaunchRequest(name, str(tiny_model_dir), action="zero_shot", stage2=FAST))
    # the Zero-shot button evaluates with Stage II's whole sampling, as the pipeline's zero-shot does
    assert zero == zero_shot_spec(spec.replace(stage2=spec.stage2.replace(lr=want2.lr)))
    assert (zero.num_frames, zero.max_pixels, zero.fps, zero.max_frames) == (4, want2.max_pixels, 0.0, 32)


def test_a_second_job_waits_queued_while_the_device_is_held(world_dataset, tiny_model_dir, data_dir):
    from rbft_core.tabs import runs as run_view
    from rbft_core.jobs.runner import default_device, job_status

    name, url = world_dataset
    lock_dir = data_dir / "locks"
    lock_dir.mkdir(exist_ok=True)
    with open(lock_dir / f"device-{default_device().replace(':', '')}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a running training job holds it
        job_id = launch(url, LaunchRequest(name, str(tiny_model_dir), action="zero_shot", stage2=FAST))
        time.sleep(3.0)
        assert job_status(url, job_id)["status"] == "queued"
        view = run_view.job_view(url, job_id)
        assert view["active"] and view["job"]["status"] == "queued"
        assert run_view.active_training_job(url, name) == {"job": job_id, "dataset": name, "model": str(tiny_model_dir)}
    deadline = time.monotonic() + 120
    while job_status(url, job_id)["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
    status = job_status(url, job_id)
    assert status["status"] == "succeeded", status
    rows = run_view.comparison(url, name)["rows"]
    assert [r["name"] for r in rows] == ["zero-shot"] and sorted(rows[0]["confusion"]["labels"]) == ["abnormal", "normal"]


def test_trainer_log_reader_skips_a_line_being_written(tmp_path):
    from rbft_core.tabs.runs import log_tail, read_trainer_log

    (tmp_path / "trainer_log.jsonl").write_text('{"current_steps": 1, "loss": 2.0}\n{"current_steps": 2, "lo')
    assert read_trainer_log(tmp_path) == [{"current_steps": 1, "loss": 2.0}]
    (tmp_path / "job.log").write_text("start\nstep:  10%|#  | 1/10\rstep:  50%|#####| 5/10\nend\n")
    # a carriage-returned progress bar keeps only its last state, and the log tail collapses it (rbft_core.log_filter)
    assert log_tail(tmp_path / "job.log") == "start\nend\n[1 progress-bar line hidden]"


def test_polling_reads_only_the_new_bytes_of_the_trainer_log(tmp_path):
    """A page polls a running job every second: each poll reads what was appended, not the whole log again."""
    from rbft_core.tabs.runs import read_trainer_log, trainer_log_reader

    log = tmp_path / "trainer_log.jsonl"
    head = "".join(f'{{"current_steps": {i}, "loss": 1.0, "pad": "{"x" * 200}"}}\n' for i in range(1, 2001))
    log.write_text(head + '{"current_steps": 2001, "lo')  # 2000 complete lines and one being written
    assert len(read_trainer_log(tmp_path)) == 2000
    before = trainer_log_reader(tmp_path).bytes_read
    assert before == log.stat().st_size
    for _ in range(5):  # polls while nothing was written read nothing
        assert len(read_trainer_log(tmp_path)) == 2000
    assert trainer_log_reader(tmp_path).bytes_read == before
    tail = 'ss": 0.5}\n{"current_steps": 2002, "loss": 0.4}\n'
    with open(log, "a") as handle:
        handle.write(tail)
    records = read_trainer_log(tmp_path)
    assert [r["current_steps"] for r in records[-2:]] == [2001, 2002] and records[-2]["loss"] == 0.5
    assert trainer_log_reader(tmp_path).bytes_read - before == len(tail)  # the appended bytes, once
    log.write_text('{"current_steps": 1, "loss": 9.0}\n')  # rewritten (a new run in the same folder)
    assert read_trainer_log(tmp_path) == [{"current_steps": 1, "loss": 9.0}]


@pytest.mark.both_backends
def test_direct_sft_job_reports_live_progress_and_ends_evaluated(world_dataset, tiny_model_dir, data_dir):
    from rbft_core.tabs import runs as run_view

    name, url = world_dataset
    job_id = launch(url, LaunchRequest(name, str(tiny_model_dir), action="direct_sft", stage2={**FAST, "epochs": 2.0}))
    seen_steps, deadline = set(), time.monotonic() + 300
    while time.monotonic() < deadline:
        view = run_view.job_view(url, job_id)
        if view["stage"]["total"]:
            seen_steps.add(view["stage"]["step"])
        if not view["active"]:
            break
        time.sleep(0.3)
    assert view["job"]["status"] == "succeeded", view["job"]
    assert [r["kind"] for r in view["runs"]] == ["direct_sft"]
    records = view["curves"][view["runs"][0]["run_id"]]["records"]
    assert records[-1]["current_steps"] == records[-1]["total_steps"] > 0 and any(r.get("loss") for r in records)
    assert view["runs"][0]["accuracy"] is not None  # --evaluate ran on the test split
    assert run_view.loss_figure(view["curves"]).axes[0].lines  # the curve is drawn
    assert run_view.predictions(url, view["runs"][0]["run_id"])

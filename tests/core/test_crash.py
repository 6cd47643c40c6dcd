"""Crash recovery with real processes and kill -9: the app, a training job, a generation job.

After each crash the database passes ``PRAGMA integrity_check`` (SQLite) and every review committed
before the crash is still there with its revision.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from sqlalchemy import func, select

from db import job_queries as jq
from db import queries
from db.engine import session_scope
from db.models import Review, Suggestion, Video
from rbft_core.review import workspace as review
from rbft_core.jobs.runner import job_status, recover_jobs, start_job, stop_job
from rbft_core.models.prompts import DEFAULT_DIMENSIONS
from rbft_core.models.rationale import parse_rationale
from rbft_core.specs import GenerateSpec, TrainSpec
from tests.review_world import REPO_ROOT, start_app, stop_app

pytestmark = pytest.mark.slow


def _wait(url, job_id, pred, timeout_s=180.0, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = job_status(url, job_id)
        if pred(status):
            return status
        time.sleep(0.3)
    raise AssertionError(f"job {job_id}: {what} not reached in {timeout_s} s: {job_status(url, job_id)}")


def _step(status) -> int:
    found = re.search(r"step (\d+)", status["progress_text"] or "")
    return int(found.group(1)) if found else 0


def _commit_a_review(url: str, dataset: str) -> tuple[int, int]:
    """A reviewer's saved edit before the crash: (review id, version)."""
    with session_scope(url) as s:
        video = s.scalars(select(Video).where(Video.dataset_id == queries.get_dataset(s, dataset).id)
                          .order_by(Video.id)).first()
        review_id = video.review.id
    item = review.load_item(url, review_id)
    review.save(url, review_id, expected_version=item.version, reviewer="before-crash", action="edit",
                fields={**item.fields, "subjects": "kept across the crash"}, label=item.label)
    return review_id, item.version + 1


def _assert_intact(url: str, committed: tuple[int, int]) -> None:
    review_id, version = committed
    with session_scope(url) as s:
        if s.bind.dialect.name == "sqlite":
            assert s.connection().exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            assert s.connection().exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
        saved = queries.get_review(s, review_id)
        assert (saved.version, saved.rationale.get("subjects"), saved.reviewer) == (version, "kept across the crash",
                                                                                     "before-crash")
        assert [r.after["subjects"] for r in queries.review_history(s, review_id)] == ["kept across the crash"]


def _train_spec(name, model, **extra):
    return TrainSpec(dataset=name, stage=2, model=str(model), batch_size=1, num_frames=4, max_pixels=3136,
                     lora_rank=4, **extra)


@pytest.mark.both_backends
def test_app_kill_9_leaves_the_training_job_running_and_restart_reattaches(world_dataset, tiny_model_dir, data_dir):
    name, url = world_dataset
    committed = _commit_a_review(url, name)
    spec = _train_spec(name, tiny_model_dir, max_steps=100000, save_steps=100000)
    os.environ["RBFT_TEST_JOB_SPEC"] = spec.to_yaml()
    try:
        app, base = start_app(url, data_dir, script=REPO_ROOT / "tests" / "app_with_job.py")
    finally:
        del os.environ["RBFT_TEST_JOB_SPEC"]
    with session_scope(url) as s:
        job_id = jq.list_jobs(s, 1)[0].id
    try:
        running = _wait(url, job_id, lambda st: _step(st) >= 1, what="first training step")
        assert running["status"] == "running"
        os.kill(app.pid, signal.SIGKILL)  # the app dies without any clean-up
        app.wait(timeout=30)
        time.sleep(1.5)
        assert job_status(url, job_id)["status"] == "running"  # the job is in its own process group
        app, base = start_app(url, data_dir)  # restart: the app recovers jobs at launch
        with urllib.request.urlopen(base, timeout=10) as page:
            assert page.status == 200
        after = job_status(url, job_id)
        assert after["status"] == "running" and after["error"] is None  # reattached, not marked interrupted
        assert recover_jobs(url) == []
        later = _wait(url, job_id, lambda st: _step(st) > _step(after), what="progress after the restart")
        assert later["status"] == "running" and later["progress"] > running["progress"]
    finally:
        stop_app(app)
        stop_job(url, job_id, timeout_s=60)
    _assert_intact(url, committed)


def _complete_checkpoints(run_dir):
    found = sorted(run_dir.glob("checkpoints/checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    complete = []
    for path in found:
        try:
            json.loads((path / "trainer_state.json").read_text())
            complete.append(path)
        except (OSError, ValueError):
            pass
    return complete


@pytest.mark.both_backends
def test_training_kill_9_mid_epoch_resumes_to_the_same_final_step(world_dataset, tiny_model_dir, data_dir):
    name, url = world_dataset
    committed = _commit_a_review(url, name)
    spec = _train_spec(name, tiny_model_dir, epochs=2, save_steps=1)
    reference = start_job(url, _train_spec(name, tiny_model_dir, epochs=2, save_steps=1000, run_id="reference"))
    expected = _wait(url, reference, lambda st: st["status"] in ("succeeded", "failed"), what="reference run")
    assert expected["status"] == "succeeded", expected
    final_steps = json.loads((data_dir / "runs" / "reference" / "all_results.json").read_text())["global_step"]
    assert final_steps >= 6

    job_id = start_job(url, spec)  # no run id: the resume hint must name the run
    deadline, found = time.monotonic() + 180, []
    while time.monotonic() < deadline:  # the third checkpoint (or a later one: only 3 are kept, older ones rotate)
        found = [p for p in (data_dir / "runs").glob("*/checkpoints/checkpoint-*")
                 if "reference" not in str(p) and int(p.name.split("-")[-1]) >= 3]
        if found or job_status(url, job_id)["status"] not in ("queued", "running"):
            break
        time.sleep(0.1)
    assert found, f"no checkpoint-3 or later within 180 s; job: {job_status(url, job_id)}"
    run_dir = found[0].parents[1]
    status = job_status(url, job_id)
    assert status["status"] == "running" and _step(status) < final_steps, status  # mid-run, not at the end
    with session_scope(url) as s:
        os.killpg(jq.get_job(s, job_id).pgid, signal.SIGKILL)
    _wait(url, job_id, lambda st: job_id in recover_jobs(url) or st["status"] == "interrupted", what="interrupted")
    interrupted = job_status(url, job_id)
    assert interrupted["status"] == "interrupted"
    hint = shlex.split(interrupted["error"].split("resume with: ", 1)[1])
    assert hint == ["rbft", "train", "--resume", "--run-id", run_dir.name]
    # tear the newest checkpoint, as a kill in the middle of writing it would: resume must skip it
    complete = _complete_checkpoints(run_dir)
    assert len(complete) >= 2, complete
    torn, expected_start = complete[-1], complete[-2]
    state = (torn / "trainer_state.json").read_bytes()
    (torn / "trainer_state.json").write_bytes(state[: len(state) // 2])

    resumed = subprocess.run([sys.executable, "-m", "rbft_core.cli.main", *hint[1:], "--db", url, "--json"],
                             capture_output=True, text=True, timeout=600,
                             env=dict(os.environ, RBFT_DATA_DIR=str(data_dir)))  # exactly the command the message gives
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    results = json.loads((run_dir / "all_results.json").read_text())
    assert results["global_step"] == final_steps
    assert results["resumed_from"] == expected_start.name  # the torn one was skipped, not loaded
    _assert_intact(url, committed)


@pytest.mark.both_backends
def test_generation_kill_9_leaves_no_partial_rows_and_rerun_completes(world_dataset, tiny_model_dir, data_dir):
    name, url = world_dataset
    committed = _commit_a_review(url, name)
    model = str(tiny_model_dir.resolve())
    spec = GenerateSpec(dataset=name, model=model, split="all", batch_size=2, num_frames=4, max_pixels=3136,
                        max_new_tokens=24)

    def generated() -> list[tuple[int, str]]:
        with session_scope(url) as s:
            return list(s.execute(select(Suggestion.video_id, Suggestion.parse_status)
                                  .where(Suggestion.model_id == model)).all())

    with session_scope(url) as s:
        total = s.scalar(select(func.count()).select_from(Video).where(Video.readable.is_(True)))
    job_id = start_job(url, spec)
    deadline = time.monotonic() + 180
    while not generated() and time.monotonic() < deadline:
        time.sleep(0.05)
    with session_scope(url) as s:
        os.killpg(jq.get_job(s, job_id).pgid, signal.SIGKILL)
    # SIGKILL is delivered asynchronously: recover once the process is really gone (dead or a zombie)
    _wait(url, job_id, lambda st: job_id in recover_jobs(url) or st["status"] == "interrupted", what="interrupted")
    assert job_status(url, job_id)["status"] == "interrupted"
    rows = generated()
    assert 0 < len(rows) < total, "the kill must land mid-run"
    assert len(rows) % 2 == 0  # whole batches only: a batch commits all its rows or none
    assert len({video for video, _ in rows}) == len(rows)  # never two rows for one video
    _assert_whole_rows(url, model, spec)

    rerun = start_job(url, spec)
    done = _wait(url, rerun, lambda st: st["status"] in ("succeeded", "failed"), what="rerun")
    assert done["status"] == "succeeded", done
    rows = generated()
    assert len(rows) == total and len({video for video, _ in rows}) == total  # the rest, and nothing twice
    _assert_whole_rows(url, model, spec)
    _assert_intact(url, committed)


def _assert_whole_rows(url, model, spec) -> None:
    """No partial row: each stored suggestion holds exactly what its own raw text parses to, with the batch's
    settings and likelihood, and its video's review exists and points at a suggestion of that video."""
    with session_scope(url) as s:
        for sug in s.scalars(select(Suggestion).where(Suggestion.model_id == model)):
            parsed = parse_rationale(sug.raw_text, DEFAULT_DIMENSIONS).to_fields()
            stored = {**sug.rationale, **{name: getattr(sug, name) for name in ("conclusion", "raw_text", "parse_status")}}
            assert stored == parsed, sug.id
            assert sug.gen_params["num_frames"] == spec.num_frames and sug.gen_params["batch_size"] == spec.batch_size
            assert sug.mean_logprob is not None
            review_row = s.scalar(select(Review).where(Review.video_id == sug.video_id))
            assert review_row is not None
            assert s.get(Suggestion, review_row.suggestion_id).video_id == sug.video_id

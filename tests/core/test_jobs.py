"""Detached jobs: real subprocesses in their own process groups; stop, queue, crash recovery."""

import json
import os
import signal
import time
from pathlib import Path

import pytest

from db.engine import session_scope
from db import job_queries as jq
from rbft_core.jobs.runner import job_status, recover_jobs, start_job, stop_job
from rbft_core.specs import EvaluateSpec, ImportSpec, TrainSpec


def _wait(url, job_id, statuses, timeout_s=120.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = job_status(url, job_id)
        if status["status"] in statuses:
            return status
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} still {job_status(url, job_id)} after {timeout_s} s")


def _long_train(name, model):
    return TrainSpec(dataset=name, stage=2, model=str(model), max_steps=400, batch_size=1, num_frames=4,
                     max_pixels=3136, lora_rank=4, save_steps=1000)


def _reimport(tmp_path, name="world-again"):
    """A quick job: import the world's clips again under a new name."""
    return ImportSpec(dataset=name, source=str(tmp_path / "world"), manifest=str(tmp_path / "world" / "manifest.jsonl"),
                      format="jsonl")


@pytest.mark.both_backends
def test_job_runs_detached_and_reports(world_dataset, data_dir, tmp_path):
    name, url = world_dataset
    spec = _reimport(tmp_path)
    job_id = start_job(url, spec)
    done = _wait(url, job_id, {"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    with session_scope(url) as s:
        job = jq.get_job(s, job_id)
        assert job.pgid == job.pid and job.started_at and job.ended_at
        # the row says what runs: kind, dataset and the spec file, which holds exactly the spec given
        assert (job.kind, job.dataset) == ("import", "world-again")
        assert Path(job.spec_path).read_text() == spec.to_yaml()
    assert done["command"] == f"rbft run {job.spec_path}"
    assert "job " + str(job_id) + " succeeded" in open(done["log_path"]).read()


def test_failed_job_keeps_the_message(world_dataset, data_dir, tmp_path):
    name, url = world_dataset
    job_id = start_job(url, TrainSpec(dataset=name, stage=1, model=str(tmp_path / "nope")))
    done = _wait(url, job_id, {"succeeded", "failed"})
    assert done["status"] == "failed" and "does not exist" in done["error"]


def test_stop_is_graceful_and_saves_the_adapter(world_dataset, tiny_model_dir, data_dir):
    name, url = world_dataset
    job_id = start_job(url, _long_train(name, tiny_model_dir))
    _wait(url, job_id, {"running"})
    deadline = time.monotonic() + 60
    while "step" not in job_status(url, job_id)["progress_text"] and time.monotonic() < deadline:
        time.sleep(0.3)
    assert stop_job(url, job_id, timeout_s=60) == "cancelled"
    status = job_status(url, job_id)
    runs = list((data_dir / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "adapter" / "adapter_config.json").exists()
    assert json.loads((runs[0] / "exit_status.json").read_text())["status"] == "cancelled"
    assert 0 < status["progress"] < 1
    # the job says what the stop kept (not "did not stop within 60 s; killed")
    last_step = json.loads((runs[0] / "trainer_log.jsonl").read_text().splitlines()[-1])["current_steps"]
    assert status["error"] == f"stopped, adapter saved at step {last_step} ({runs[0] / 'adapter'})"


def test_second_compute_job_is_queued_then_runs(world_dataset, tiny_model_dir, data_dir):
    name, url = world_dataset
    first = start_job(url, _long_train(name, tiny_model_dir))
    _wait(url, first, {"running"})
    second = start_job(url, EvaluateSpec(dataset=name, model=str(tiny_model_dir), num_frames=4))
    time.sleep(3)
    assert job_status(url, second)["status"] == "queued"  # waits for the device, not run on top
    stop_job(url, first, timeout_s=60)
    assert _wait(url, second, {"succeeded", "failed"})["status"] == "succeeded"


@pytest.mark.both_backends
def test_kill_9_is_marked_interrupted_with_resume_hint(world_dataset, tiny_model_dir, data_dir):
    name, url = world_dataset
    job_id = start_job(url, _long_train(name, tiny_model_dir))
    _wait(url, job_id, {"running"})
    deadline = time.monotonic() + 60
    while jq_run_of(url, job_id) is None and time.monotonic() < deadline:  # killed once its run folder exists
        time.sleep(0.2)
    with session_scope(url) as s:
        pgid = jq.get_job(s, job_id).pgid
    os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while job_id not in recover_jobs(url) and time.monotonic() < deadline:
        time.sleep(0.2)
    status = job_status(url, job_id)
    assert status["status"] == "interrupted"
    run_id = jq_run_of(url, job_id)
    assert f"resume with: rbft train --resume --run-id {run_id}" in status["error"]


def jq_run_of(url, job_id):
    with session_scope(url) as s:
        return jq.run_id_of_job(s, job_id)


@pytest.mark.both_backends
def test_stop_of_finished_job_is_a_no_op(world_dataset, data_dir, tmp_path):
    name, url = world_dataset
    job_id = start_job(url, _reimport(tmp_path))
    _wait(url, job_id, {"succeeded"})
    assert stop_job(url, job_id) == "succeeded"


def test_cuda_out_of_memory_names_the_levers():
    import torch

    from rbft_core.jobs.runner import _describe

    text = _describe(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert text.startswith("CUDA out of memory")
    for lever in ("num_frames", "max_pixels", "batch_size"):
        assert lever in text

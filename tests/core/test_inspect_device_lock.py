"""The Inspect tab uses a model only while it holds the device lock jobs take (issue #14)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from rbft_core.errors import JobError
from rbft_core.jobs.runner import default_device
from rbft_core.locks import device_lock_path
from rbft_core.tabs import inspect as ins


def test_inspect_refuses_while_a_job_holds_the_device(db_url, data_dir, monkeypatch):
    monkeypatch.setattr(ins, "DEVICE_WAIT_S", 0.5)
    monkeypatch.setattr(ins, "load_inspect_model", lambda *a, **k: pytest.fail("loaded a model without the device"))
    path = device_lock_path(default_device())
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; h = open(sys.argv[1], 'a+'); "
                               "fcntl.flock(h, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)", str(path)],
                              stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"held"  # a training job has the device
        started = time.monotonic()
        with pytest.raises(JobError, match="is busy with another job .* the attention overlay needs it"):
            ins.attention_overlay(db_url, "run-a", 1)
        with pytest.raises(JobError, match="masking this video needs it"):
            ins.mask_one_video(db_url, ["run-a"], 1, [[0, 0, 10, 10]])
        assert time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()


def test_inspect_requests_take_turns_on_the_device(db_url, data_dir, monkeypatch):
    spans = []

    def fake(db_url, run_id, video_id, **kw):
        start = time.monotonic()
        time.sleep(0.4)
        spans.append((start, time.monotonic()))
        return {"png": run_id}

    monkeypatch.setattr(ins, "_attention_overlay", fake)
    threads = [threading.Thread(target=ins.attention_overlay, args=(db_url, f"r{i}", 1)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spans.sort()
    assert len(spans) == 3 and all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # never two at once

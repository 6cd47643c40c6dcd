"""The Inspect tab uses a model only while it holds the device lock jobs take (issue #14)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import gradio as gr
import pytest

from rbft_core.errors import JobError
from rbft_core.jobs.runner import default_device
from rbft_core.locks import device_lock_path
from rbft_core.tabs import inspect as ins
from ui.app import build_tabs


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


def test_attention_and_masking_share_one_queue_of_one_request():
    """Eight browser tabs asking for overlays and masks at once run one after another (Gradio's queue), not eight
    model loads side by side: both events carry concurrency_limit=1 and the same concurrency_id."""
    with gr.Blocks() as demo:
        build_tabs(demo, "sqlite:////nonexistent/never-opened.db")
    by_name = {fn.api_name: fn for fn in demo.fns.values()}
    attention, mask = by_name["inspect_attention"], by_name["inspect_mask"]
    assert attention.concurrency_limit == 1 and mask.concurrency_limit == 1
    assert attention.concurrency_id == mask.concurrency_id
    others = [fn for fn in demo.fns.values() if fn.api_name not in ("inspect_attention", "inspect_mask")]
    assert all(fn.concurrency_id != attention.concurrency_id for fn in others)  # nothing else waits in that queue

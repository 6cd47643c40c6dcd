"""Export tab events, called the way Gradio calls them (the wired function with positional values in the API's
order, through the shared adapter), without a server or a browser."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import gradio as gr
import pytest

from db import job_queries as jq
from db.engine import session_scope
from rbft_core.export.dataset import ExportConfig
from rbft_core.jobs.execute import execute
from rbft_core.tabs.export import export_spec, latest_export
from tests.export_world import build_world
from ui import export_tab

DEFAULTS = dict(fmt="hf", stage="both", splits=["train", "val", "test"], statuses=["accepted"], edited="any",
                labels=["normal", "abnormal"], include_excluded=False, copy_videos=True, name="")


def _args(**changes):
    values = {**DEFAULTS, **changes}
    return [values[k] for k in DEFAULTS]


@pytest.fixture
def world(db_url, tmp_path, data_dir):
    return build_world(db_url, tmp_path)


@pytest.fixture
def call(world):
    """``call(api_name, *values)``: the export tab's wired event function (request None, as no login)."""
    with gr.Blocks() as demo:
        export_tab.build_export_tab().attach(demo, world.db_url)
    events = {fn.api_name: fn for fn in demo.fns.values()}

    def run(api_name, *values):
        return events[api_name].fn(None, *values)
    return run


def _path(button) -> str:
    return button.value if isinstance(button.value, str) else button.value["path"]


def _wait_export(call, job, timeout_s: float = 120.0):
    """Poll like the page's timer does until the export job has ended; returns the poll's outputs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = call("export_poll", job)
        if out[0] is None:  # the job state is cleared when the job has ended
            return out
        time.sleep(0.3)
    raise AssertionError(f"export job {job} did not end within {timeout_s:.0f} s")


def test_load_and_dataset_fill_the_choices(call):
    assert call("on_load")[0].value == "homes"
    assert call("on_dataset", "homes").value == ["normal", "abnormal"]


def test_preview_shows_counts_and_first_rows(call):
    summary, rows = call("export_preview", "homes", *_args())
    assert "**2 videos**" in summary and "Stage 1: 2 train" in summary
    assert [r[0] for r in rows] == ["normal/v0.mp4", "abnormal/v1.mp4"]
    assert rows[1][4] is True and "two people" in rows[1][6]


def test_export_runs_as_a_job_and_ends_with_a_download_of_the_zip(call, data_dir):
    job, timer, progress, summary, button = call("export_zip", "homes", *_args(name="my/../export"))
    assert isinstance(job["job"], int) and timer.active and "started" in progress
    assert button.visible is False  # no download until the job has written the zip
    job_out, timer, progress, text, button = _wait_export(call, job)
    assert not timer.active and "succeeded" in progress and "<progress" in progress
    assert "2/2 videos placed" in progress  # files done / total
    assert isinstance(button, gr.DownloadButton) and button.visible
    path = _path(button)
    assert path.endswith("/my_export.zip") and "my_export.zip" in text
    assert len(list((data_dir / "exports").glob("*/my_export.zip"))) == 1  # one fresh folder per click
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("my_export/manifest.json"))
    assert manifest["counts"]["videos"] == 2


def test_page_load_reattaches_to_a_running_export_then_offers_its_download(world, call, data_dir):
    """A reload in the middle: the newest export job is running (its row says 1 of 3 done), the loaded page
    follows it with its progress bar; once the job has ended, the next poll offers its zip."""
    spec = export_spec("homes", ExportConfig(format="csv", name="reloaded"), data_dir / "exports" / "x")
    with session_scope(world.db_url) as s:
        job_id = jq.create_job(s, "export", [], device=None, run_dir=None, dataset="homes", model=None).id
    path = spec.write(data_dir / "jobs" / f"job-{job_id}" / "spec.yaml")
    with session_scope(world.db_url) as s:
        jq.update_job(s, job_id, spec_path=str(path), status="running", progress=1 / 3,
                      progress_text="1/2 videos copied")
    dataset, job, timer, progress, _summary, button = call("on_load")
    assert dataset.value == "homes" and job == {"job": job_id} and timer.active
    assert 'value="0.333"' in progress and "1/2 videos copied" in progress and button.visible is False
    assert call("export_poll", job)[0] == job  # still running: the timer keeps following it

    result = execute(spec, world.db_url)  # the job's work, then its final row
    with session_scope(world.db_url) as s:
        jq.update_job(s, job_id, status="succeeded", progress=1.0, progress_text="2/2 videos placed")
    job_out, timer, progress, text, button = call("export_poll", job)
    assert job_out is None and not timer.active and "succeeded" in progress
    assert button.visible and Path(result["zip"]).name == "reloaded.zip"
    assert Path(_path(button)).read_bytes() == Path(result["zip"]).read_bytes()  # (Gradio serves a copy)
    assert call("on_load")[5].visible  # a later page load still offers the finished export


def test_errors_are_gradio_errors_naming_the_fix(call, world):
    with pytest.raises(gr.Error, match="no split is ticked"):
        call("export_preview", "homes", *_args(splits=[]))
    with pytest.raises(gr.Error, match="match the selection .* nothing was written"):
        call("export_zip", "homes", *_args(statuses=["rejected"], labels=["normal"]))
    assert latest_export(world.db_url) is None  # refused before a job was started
    with pytest.raises(gr.Error, match="no dataset chosen"):
        call("export_zip", None, *_args())


def test_a_failed_export_job_says_so_and_offers_no_download(world, call):
    with session_scope(world.db_url) as s:
        job_id = jq.create_job(s, "export", [], device=None, run_dir=None, dataset="homes", model=None).id
        jq.update_job(s, job_id, status="failed", error="DataError: disk full; free space and export again")
    dataset, job, timer, progress, summary, button = call("on_load")
    assert job is None and not timer.active and button.visible is False
    assert "failed" in progress and "disk full" in progress and "No zip to download: it failed" in summary

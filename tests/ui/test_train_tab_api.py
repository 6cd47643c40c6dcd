"""Train tab handlers through gradio_client: readiness, command, refusals, a real job polled to the end,
stop, and the results it leaves."""

from __future__ import annotations

import html
import time

import pytest

from rbft_core.specs.training import DEFAULT_TARGETS
from rbft_core.tabs.train import STAGE_FIELDS
from tests.review_world import free_port

FAST = {"num_frames": 4, "fps": 0.0, "max_pixels": 3136, "lora_rank": 4, "lora_alpha": 8, "lr": 1e-3, "epochs": 1.0,
        "batch_size": 2, "grad_accum": 1, "max_steps": 0}


@pytest.fixture
def client(world_dataset, data_dir):
    from gradio_client import Client

    from ui.app import build_app, page_assets

    _name, url = world_dataset
    demo = build_app(url)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        **page_assets())
    yield Client(f"http://127.0.0.1:{port}/", verbose=False)
    demo.close()


def _form(dataset, model, s1=None, s2=None, source="reviewed", share=1.0, baselines=True, hint=True,
          targets=DEFAULT_TARGETS, merger=False):
    s1, s2 = {**FAST, **(s1 or {})}, {**FAST, **(s2 or {})}
    return [dataset, model, source, share, baselines, hint, targets, merger, *[s1[k] for k in STAGE_FIELDS],
            *[s2[k] for k in STAGE_FIELDS]]


def test_readiness_and_command(client, world_dataset, tiny_model_dir):
    name, _ = world_dataset
    text, table = client.predict(*_form(name, str(tiny_model_dir)), api_name="/train_check")
    assert text.startswith("**Ready to train.**") and "usable" in text
    assert sorted(row[0] for row in table["data"]) == ["abnormal", "normal"]
    command, yaml_text = client.predict("rbft", *_form(name, str(tiny_model_dir), s1={"lr": 5e-4}),
                                       api_name="/train_command")
    assert command == "rbft run spec.yaml"
    assert yaml_text.startswith("task: pipeline\n") and "stage1:" in yaml_text and "lr: 0.0005" in yaml_text


@pytest.mark.parametrize("changes,message", [
    ({"s1": {"lr": 0.0}}, "Stage I settings: learning rate (lr) must be > 0"),
    ({"s2": {"num_frames": 0}}, "Stage II settings: frames (num_frames) must be >= 1"),
    ({"s1": {"lora_rank": 0}}, "Stage I settings: LoRA rank (lora_rank) must be >= 1"),
])
def test_bad_settings_are_refused_with_the_field_named(client, world_dataset, tiny_model_dir, changes, message):
    from gradio_client.exceptions import AppError

    name, _ = world_dataset
    with pytest.raises(AppError) as err:
        client.predict(*_form(name, str(tiny_model_dir), **changes), api_name="/train_start_rbft")
    assert message in html.unescape(str(err.value))  # the toast renders HTML: the message is escaped


def test_missing_model_folder_is_refused(client, world_dataset, tmp_path):
    from gradio_client.exceptions import AppError

    name, _ = world_dataset
    with pytest.raises(AppError, match="nowhere"):
        client.predict(*_form(name, str(tmp_path / "nowhere")), api_name="/train_start_direct_sft")


def _poll(client, job, name, timeout_s=300.0):
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        out = client.predict(job, name, api_name="/train_poll")  # job id, timer, progress, plot, log, *results
        seen.append(out[2])
        if out[0] is None:
            return out, seen
        time.sleep(0.5)
    raise AssertionError(f"job did not end in {timeout_s} s: {seen[-1]}")


def test_the_spec_shown_is_byte_for_byte_the_spec_the_job_runs(client, world_dataset, tiny_model_dir):
    from db import job_queries as jq
    from db.engine import session_scope

    name, url = world_dataset
    for action in ("direct_sft", "zero_shot", "rbft"):
        form = _form(name, str(tiny_model_dir), s2={"lr": 7e-4, "num_frames": 2})
        _command, shown = client.predict(action, *form, api_name="/train_command")
        job, *_rest, command = client.predict(*form, api_name=f"/train_start_{action}")
        with session_scope(url) as s:
            spec_path = jq.get_job(s, job).spec_path
        assert open(spec_path, "rb").read() == shown.encode()  # the same bytes, not an equivalent
        assert command == f"rbft run {spec_path}"
        client.predict(job, api_name="/train_stop")
        _poll(client, job, name, timeout_s=120)


def test_direct_sft_runs_as_a_job_and_fills_the_results(client, world_dataset, tiny_model_dir):
    name, _ = world_dataset
    job, _timer, progress, _plot, _log, command = client.predict(*_form(name, str(tiny_model_dir)),
                                                                 api_name="/train_start_direct_sft")
    assert job and "id='train-progress'" in progress
    assert command.startswith("rbft run ") and command.endswith("/spec.yaml")
    out, seen = _poll(client, job, name)
    assert "data-status='succeeded'" in out[2], out[2]
    assert any("step" in html for html in seen)
    runs, compare = out[5], out[6]
    assert runs["data"][0][1] == "direct SFT" and runs["data"][0][2] == "succeeded" and runs["data"][0][8] != ""
    assert compare["data"][0][0] == "direct SFT"
    preds = client.predict(runs["data"][0][0], api_name="/train_predictions")
    assert preds["data"] and {row[1] for row in preds["data"]} <= {"normal", "abnormal"}


def test_stop_cancels_the_job_and_lists_the_adapter_saved_so_far(client, world_dataset, tiny_model_dir):
    name, url = world_dataset
    job, *_ = client.predict(*_form(name, str(tiny_model_dir), s2={"epochs": 200.0}),
                             api_name="/train_start_direct_sft")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until training steps are being logged
        out = client.predict(job, name, api_name="/train_poll")
        if "data-step='0'" not in out[2] and "data-total='0'" not in out[2]:
            break
        time.sleep(0.5)
    client.predict(job, api_name="/train_stop")
    out, _ = _poll(client, job, name, timeout_s=120)
    assert "data-status='cancelled'" in out[2], out[2]
    row = out[5]["data"][0]
    assert row[2] == "cancelled" and "/adapter" in row[10], row

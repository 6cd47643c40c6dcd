"""Issue #18 in the Train and Datasets tabs, through their handlers: the last job stays on screen after a reload
(marked finished, with its duration, curves and log), Stop is enabled only while a job runs and names it, and
the sampling fields default to the model folder's values and say where they came from."""

from __future__ import annotations

import json

import gradio as gr
import pytest

from rbft_core.models.model_sampling import write_model_sampling
from rbft_core.specs.sampling import Sampling
from rbft_core.tabs import datasets as datasets_logic
from rbft_core.tabs import train as train_logic
from tests.train_world import OWN_LINES, training_job
from ui import datasets_tab, train_tab


@pytest.fixture
def tab():
    with gr.Blocks():
        built = train_tab.build_train_tab()
    return built


def _lines_of(figure) -> int:
    return sum(len(ax.get_lines()) for ax in figure.axes)


def _texts_of(figure) -> list[str]:
    return [t.get_text() for ax in figure.axes for t in ax.texts]


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_reload_shows_the_last_finished_job_with_its_curves_log_and_duration(tab, world_dataset, data_dir, status):
    name, url = world_dataset
    job = training_job(url, data_dir, name, status=status, duration_s=192.0)
    shown = train_tab.on_page_load(tab, url, {})
    progress = shown[tab.progress]
    assert f"data-job='{job}'" in progress and f"data-status='{status}'" in progress
    assert "data-finished='1'" in progress and "finished after 3 min 12 s" in progress
    assert _lines_of(shown[tab.loss]) >= 1 and "no loss logged yet" not in _texts_of(shown[tab.loss])
    assert shown[tab.log].splitlines()[: len(OWN_LINES)] == OWN_LINES  # the project's lines, noise collapsed
    assert "library warning hidden" in shown[tab.log] and "warnings.warn(" not in shown[tab.log]
    assert shown[tab.job] is None and shown[tab.timer].active is False  # nothing to poll: it is over
    assert shown[tab.stop].interactive is False


def test_a_newer_job_replaces_the_finished_one_on_screen(tab, world_dataset, data_dir):
    name, url = world_dataset
    finished = training_job(url, data_dir, name, status="succeeded")
    assert f"data-job='{finished}'" in train_tab.on_page_load(tab, url, {})[tab.progress]
    running = training_job(url, data_dir, name, status="running", kind="train")  # another job starts
    shown = train_tab.on_page_load(tab, url, {})
    assert f"data-job='{running}'" in shown[tab.progress] and "data-finished='0'" in shown[tab.progress]
    assert shown[tab.job] == running and shown[tab.timer].active is True  # re-attached: polled until it ends
    assert shown[tab.stop].interactive is True and shown[tab.stop].value == f"Stop job {running} (train)"


def test_stop_is_enabled_only_while_a_job_runs_and_names_the_job(tab, world_dataset, data_dir):
    name, url = world_dataset
    assert tab.stop.interactive is False and tab.stop.value == "Stop (no job running)"  # as built: nothing runs
    job = training_job(url, data_dir, name, status="running", kind="pipeline")
    polled = train_tab.on_poll(tab, url, {tab.job: job, tab.points: None, tab.dataset: name})
    assert polled[tab.stop].interactive is True and polled[tab.stop].value == f"Stop job {job} (pipeline)"
    from db import job_queries as jq
    from db.engine import session_scope

    with session_scope(url) as s:
        jq.update_job(s, job, status="cancelled")
    ended = train_tab.on_poll(tab, url, {tab.job: job, tab.points: None, tab.dataset: name})
    assert ended[tab.stop].interactive is False and ended[tab.stop].value == "Stop (no job running)"
    assert "data-status='cancelled'" in ended[tab.progress] and "finished after" in ended[tab.progress]
    idle = train_tab.on_poll(tab, url, {tab.job: None, tab.points: None, tab.dataset: name})
    assert idle[tab.stop].interactive is False


def test_the_model_folders_sampling_fills_both_stages_and_says_where_it_came_from(tab, tmp_path):
    model = tmp_path / "my-model"
    model.mkdir()
    write_model_sampling(model, Sampling(num_frames=3, max_pixels=6272))
    shown = train_tab.on_model(tab, None, {tab.model: str(model)})
    for stage in (tab.stage1, tab.stage2):
        assert (shown[stage.num_frames], shown[stage.fps], shown[stage.max_pixels]) == (3, 0.0, 6272)
        assert stage.lr not in shown  # only sampling: the preset's other settings stay
    note = shown[tab.sampling_note]
    assert note.startswith("Sampling default: 3 frames at 6,272 px (frames, max pixels from ")
    assert note.endswith("my-model/rbft_sampling.json)")
    preset = train_tab.on_preset(tab, None, {tab.preset: "1 GPU, 24 GB (7B, LoRA r16)", tab.model: str(model)})
    assert preset[tab.stage1.num_frames] == 3 and preset[tab.stage1.batch_size] == 1  # a preset keeps the model's
    bare = train_tab.on_model(tab, None, {tab.model: str(tmp_path / "nowhere")})
    assert tab.stage1.num_frames not in bare and "the preset's values apply" in bare[tab.sampling_note]


def test_an_emptied_sampling_field_takes_the_model_folders_value_and_a_typed_one_wins(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    write_model_sampling(model, Sampling(num_frames=3, max_pixels=6272))
    req = train_logic.LaunchRequest(dataset="ds", model=str(model), action="direct_sft",
                                    stage1={"num_frames": None}, stage2={"num_frames": None, "max_pixels": 3136})
    s1, s2 = train_logic.stage_configs(req)
    assert (s1.num_frames, s1.max_pixels) == (3, 6272)  # empty: the model folder's
    assert (s2.num_frames, s2.max_pixels) == (3, 3136)  # typed: the user's


def test_generation_frames_default_to_the_model_folder_and_say_so(db_url, data_dir, tmp_path, monkeypatch):
    model = tmp_path / "gen-model"
    model.mkdir()
    write_model_sampling(model, Sampling(num_frames=5, max_pixels=6272))
    with gr.Blocks():
        tab = datasets_tab.build_datasets_tab()
    shown = datasets_tab.on_generate_model(tab, db_url, {tab.generate.model: str(model)})
    assert shown[tab.generate.frames] == 5
    assert shown[tab.generate.frames_note].startswith("5 frames: from ")
    assert shown[tab.generate.frames_note].endswith("gen-model/rbft_sampling.json")
    built_in = datasets_tab.on_generate_model(tab, db_url, {tab.generate.model: ""})
    assert built_in[tab.generate.frames] == 8 and built_in[tab.generate.frames_note] == "8 frames: built-in default"
    started = {}
    monkeypatch.setattr(datasets_logic, "start_job", lambda url, spec: started.setdefault("spec", spec) and 1)
    datasets_logic.create_dataset(db_url, "homes", preset="smart-home")
    datasets_logic.start_generation(db_url, "homes", str(model))  # frames left out
    assert (started["spec"].num_frames, started["spec"].max_pixels) == (5, 6272)
    started.clear()
    datasets_logic.start_generation(db_url, "homes", str(model), num_frames=7)  # typed: it wins
    assert (started["spec"].num_frames, started["spec"].max_pixels) == (7, 6272)
    assert json.loads((model / "rbft_sampling.json").read_text())["num_frames"] == 5  # the folder is only read

"""Train tab: settings and presets, a readiness check, the exact command, one-click RB-FT / baselines as
background jobs, the live view (progress, loss, log) and the results (runs, comparison, predictions).

Every start goes through ``rbft_core.tabs.train.launch`` (which calls ``rbft_core.jobs.runner.start_job`` with
an ``rbft`` command); every view is read by ``rbft_core.tabs.runs`` from the run folders. A gr.Timer polls
only while a job runs; the page re-attaches to a running job on load, so a reload or an app restart
shows it again.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import partial
from html import escape
from typing import Any, Optional

import gradio as gr
import pandas as pd

from rbft_core.data import catalog
from rbft_core.jobs.runner import stop_job_async
from rbft_core.tabs import runs as run_view
from rbft_core.tabs import train as train_launch
from rbft_core.tabs.train import PRESETS, STAGE_FIELDS, LaunchRequest
from ui.common import Events, Updates, Values, components

__all__ = ["TrainTab", "StageForm", "build_train_tab", "launch_request", "on_start", "on_check", "on_show_command",
           "on_poll", "on_stop", "on_results", "on_predictions", "on_page_load", "on_preset", "on_model"]

_DEFAULT_PRESET = "CPU demo (tiny model)"
_STOP_IDLE = "Stop (no job running)"
_SOURCES = [("model suggestions", "suggestions"), ("expert-reviewed (edit where there is one)", "reviewed"),
            ("mix (human share)", "mix")]
_RUN_HEADERS = ["run", "kind", "status", "parent", "steps", "settings", "duration s", "train loss", "accuracy",
                "macro-F1", "adapter"]
_PRED_HEADERS = ["video", "truth", "predicted", "probability", "correct", "Stage-I rationale"]

@dataclass
class StageForm:
    """One stage's settings, fields named and ordered as ``STAGE_FIELDS`` (``TrainSpec``'s names)."""

    num_frames: gr.Number
    fps: gr.Number
    max_pixels: gr.Number
    lora_rank: gr.Number
    lora_alpha: gr.Number
    lr: gr.Number
    epochs: gr.Number
    batch_size: gr.Number
    grad_accum: gr.Number
    max_steps: gr.Number

    def settings(self, values: Values) -> dict[str, Any]:
        """The stage's values keyed by setting name, as ``LaunchRequest.stage1/stage2`` takes them."""
        return {f.name: values[getattr(self, f.name)] for f in fields(self)}

    def fill(self, settings: dict[str, Any]) -> Updates:
        """The fields ``settings`` names (all of them for a preset, the model's sampling fields for a model)."""
        return {getattr(self, f.name): settings[f.name] for f in fields(self) if f.name in settings}


@dataclass
class TrainTab:
    dataset: gr.Dropdown
    model: gr.Textbox
    preset: gr.Dropdown
    sampling_note: gr.Markdown  # where the stages' sampling defaults came from (the model folder, or the preset)
    stage1: StageForm
    stage2: StageForm
    source: gr.Radio
    share: gr.Slider
    baselines: gr.Checkbox
    hint: gr.Checkbox
    targets: gr.Textbox
    merger: gr.Checkbox
    run_rbft: gr.Button
    run_direct: gr.Button
    run_zero: gr.Button
    check: gr.Button
    show: gr.Button
    stop: gr.Button
    readiness: gr.Markdown
    per_class: gr.Dataframe
    action: gr.Radio
    command: gr.Code
    config: gr.Code
    progress: gr.HTML
    loss: gr.Plot
    log: gr.Textbox
    refresh: gr.Button
    runs: gr.Dataframe
    compare: gr.Dataframe
    confusion: gr.Plot
    per_class_f1: gr.Plot
    run_pick: gr.Dropdown
    preds: gr.Dataframe
    job: gr.Number  # a hidden number (not State) so API clients can poll and stop by id like the page does
    points: gr.State  # loss points drawn so far: the plot is redrawn only when new ones arrived
    timer: gr.Timer

    def launch_inputs(self) -> list:
        """What every start, check and command reads, in the API's order."""
        return [self.dataset, self.model, self.source, self.share, self.baselines, self.hint, self.targets,
                self.merger, *components(self.stage1), *components(self.stage2)]

    def results(self) -> list:
        return [self.runs, self.compare, self.confusion, self.per_class_f1, self.run_pick, self.preds]

    def attach(self, demo: gr.Blocks, db_url: Optional[str]) -> None:
        ev, form = Events(self, db_url), self.launch_inputs()
        live = [self.job, self.points, self.timer, self.progress, self.loss, self.log]
        stages = [*components(self.stage1), *components(self.stage2)]
        ev.on(self.preset.input, on_preset, [self.preset, self.model], [self.targets, self.merger, *stages],
              api_visibility="private")
        ev.on(self.model.change, on_model, [self.model], [self.sampling_note, *stages], api_visibility="private")
        ev.on(self.check.click, on_check, form, [self.readiness, self.per_class], api_name="train_check")
        ev.on(self.show.click, on_show_command, [self.action, *form], [self.command, self.config],
              api_name="train_command")
        for button, action in ((self.run_rbft, "rbft"), (self.run_direct, "direct_sft"), (self.run_zero, "zero_shot")):
            ev.on(button.click, partial(on_start, action=action), form, [*live, self.command, self.stop],
                  api_name=f"train_start_{action}")
        ev.on(self.stop.click, on_stop, [self.job], [self.job, self.timer], api_name="train_stop")
        ev.on(self.timer.tick, on_poll, [self.job, self.points, self.dataset], [*live, *self.results(), self.stop],
              api_name="train_poll", show_progress="hidden")
        ev.on(self.refresh.click, on_results, [self.dataset], self.results(), api_name="train_results")
        ev.on(self.dataset.input, on_results, [self.dataset], self.results(), api_visibility="private")
        ev.on(self.run_pick.input, on_predictions, [self.run_pick], [self.preds], api_name="train_predictions")
        ev.on(demo.load, on_page_load, [], [self.dataset, self.model, *live, *self.results(), self.stop],
              api_visibility="private")


def launch_request(tab: TrainTab, values: Values, action: str) -> LaunchRequest:
    """The form as the typed request ``rbft_core.tabs.train`` launches from."""
    share = values[tab.share]
    return LaunchRequest(dataset=values[tab.dataset] or "", model=values[tab.model] or "", action=action,
                         stage1=tab.stage1.settings(values), stage2=tab.stage2.settings(values),
                         rationale_source=values[tab.source] or "reviewed",
                         human_share=float(share if share is not None else 1.0),
                         with_baselines=bool(values[tab.baselines]), label_hint=bool(values[tab.hint]),
                         target_modules=(values[tab.targets] or "").strip(),
                         train_vision_merger=bool(values[tab.merger]))


def _progress_html(view: dict[str, Any]) -> str:
    job, stage = view["job"], view["stage"]
    status = job["status"]
    pct = 100.0 * float(job.get("progress") or 0.0)
    finished = not view["active"]
    took = run_view.duration_text(view.get("duration_s"))
    parts = [f"job {job['id']} ({escape(job.get('kind') or '')}) <b>{escape(status)}</b>"
             + (f" · finished after {escape(took)}" if finished and took else ""),
             escape(job.get("progress_text") or "")]
    if status == "queued":
        parts.append("waiting for the device (another job holds it)")
    if stage["total"]:
        if "step" not in (job.get("progress_text") or ""):  # the job's own text already says step, loss, ETA
            parts.append(f"{escape(stage['name'])}: step {stage['step']}/{stage['total']}")
            if stage["eta"] and status == "running":
                parts.append(f"ETA {escape(stage['eta'])}")
            if stage["loss"] is not None:
                parts.append(f"loss {stage['loss']:.4f}")
        if stage["throughput"]:
            parts.append(f"{stage['throughput']:.2f} samples/s")
    if job.get("error"):
        parts.append(f"<span class='rv-refused'>{escape(job['error'])}</span>")
    return (f"<div id='train-progress' data-status='{escape(status)}' data-step='{stage['step']}' "
            f"data-total='{stage['total']}' data-job='{job['id']}' data-progress='{pct:.1f}' "
            f"data-finished='{int(finished)}' data-duration='{view.get('duration_s') or 0:.0f}'>"
            f"<progress value='{pct:.1f}' max='100' style='width:100%'></progress>"
            f"<div>{' · '.join(p for p in parts if p)} ({pct:.0f}% overall)</div></div>")


def _stop_button(view: Optional[dict[str, Any]]) -> gr.Button:
    """Stop is enabled only while a job runs (or waits for the device), and names the job it stops."""
    if view is None or not view["active"]:
        return gr.Button(value=_STOP_IDLE, interactive=False)
    job = view["job"]
    return gr.Button(value=f"Stop job {job['id']} ({job.get('kind') or 'job'})", interactive=True)


def _points(view: dict[str, Any]) -> int:
    return sum(len(c["records"]) for c in view["curves"].values())


def _run_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
    def num(v):
        return round(v, 4) if isinstance(v, float) else ("" if v is None else v)
    return [[r["run_id"], r["name"], r["status"], r["parent"], r["steps"], r["settings"], num(r["duration_s"]),
             num(r["train_loss"]), num(r["accuracy"]), num(r["macro_f1"]), r["adapter"]] for r in rows]


def _prediction_rows(db_url: Optional[str], run_id: Optional[str]) -> list[list[Any]]:
    if not run_id:
        return []
    return [[p["video"], p["truth"], p["predicted"], p["probability"], "yes" if p["correct"] else "no",
             p["rationale"]] for p in run_view.predictions(db_url, run_id)]


def _results(tab: TrainTab, db_url: Optional[str], dataset: Optional[str]) -> Updates:
    """Run history, comparison table, confusion matrices, per-class F1, and the run picker."""
    if not dataset:
        empty = {"labels": [], "rows": []}
        return {tab.runs: [], tab.compare: [], tab.confusion: run_view.confusion_figure(empty),
                tab.per_class_f1: run_view.per_class_figure(empty), tab.run_pick: gr.Dropdown(choices=[]),
                tab.preds: []}
    history = run_view.run_history(db_url, dataset)
    table = run_view.comparison(db_url, dataset)
    labels = table["labels"]
    compare = [[r["name"], r["run_id"], round(r["accuracy"], 4), round(r["macro_f1"], 4),
                *[round(r.get(f"f1_{l}", 0.0), 4) for l in labels]] for r in table["rows"]]
    evaluated = [r["run_id"] for r in history if r["accuracy"] is not None]
    first = next((r["run_id"] for r in table["rows"] if r["kind"] == "stage2"), evaluated[0] if evaluated else None)
    columns = ["model", "run", "accuracy", "macro-F1", *[f"F1 {l}" for l in labels]]
    return {tab.runs: _run_rows(history), tab.compare: pd.DataFrame(compare, columns=columns),
            tab.confusion: run_view.confusion_figure(table), tab.per_class_f1: run_view.per_class_figure(table),
            tab.run_pick: gr.Dropdown(choices=evaluated, value=first), tab.preds: _prediction_rows(db_url, first)}


# --------------------------------------------------------------------------------------- handlers
def on_preset(tab: TrainTab, db_url: Optional[str], values: Values) -> Updates:
    """The preset's settings; the sampling fields the model folder sets keep the model's values."""
    preset = PRESETS.get(values[tab.preset]) or PRESETS[_DEFAULT_PRESET]
    model, _note = train_launch.sampling_defaults(values[tab.model])
    return {tab.targets: preset["common"]["target_modules"], tab.merger: preset["common"]["train_vision_merger"],
            **tab.stage1.fill({**preset["stage1"], **model}), **tab.stage2.fill({**preset["stage2"], **model})}


def on_model(tab: TrainTab, db_url: Optional[str], values: Values) -> Updates:
    """A model typed or chosen: its folder's sampling fills both stages' frames / fps / max pixels (a value typed
    afterwards wins), and the note says where the values came from."""
    sampling, note = train_launch.sampling_defaults(values[tab.model])
    return {tab.sampling_note: note, **tab.stage1.fill(sampling), **tab.stage2.fill(sampling)}


def on_check(tab: TrainTab, db_url: Optional[str], values: Values) -> Updates:
    req = launch_request(tab, values, "rbft")
    ready = train_launch.readiness(db_url, req.dataset, rationale_source=req.rationale_source,
                                   human_share=req.human_share)
    r = ready.rationales
    note = (f"\n\nStage-I rationales in train: {r['usable']} usable ({r['human']} expert, {r['model']} model), "
            f"{r['missing']} missing, {r['rejected']} rejected, {r['excluded']} excluded; {r['incomplete']} usable "
            "ones leave a required dimension empty.")
    table = [[c["label"], c["train"], c["val"], c["test"]] for c in ready.per_class]
    return {tab.readiness: ready.to_markdown() + note, tab.per_class: table}


def on_show_command(tab: TrainTab, db_url: Optional[str], values: Values) -> Updates:
    req = launch_request(tab, values, values[tab.action])
    # the spec file itself, byte for byte what the job runs (save it as spec.yaml to run it by hand)
    return {tab.command: train_launch.command_text(req), tab.config: train_launch.spec_yaml(req)}


def on_start(tab: TrainTab, db_url: Optional[str], values: Values, *, action: str) -> Updates:
    job_id = train_launch.launch(db_url, launch_request(tab, values, action))
    view = run_view.job_view(db_url, job_id)
    queued = view["job"]["status"] == "queued"
    gr.Info(f"job {job_id} {'queued: it starts when the device is free' if queued else 'started'}")
    return {tab.job: job_id, tab.points: -1, tab.timer: gr.Timer(active=True), tab.progress: _progress_html(view),
            tab.loss: run_view.loss_figure(view["curves"]), tab.log: view["log"], tab.command: view["job"]["command"],
            tab.stop: _stop_button({**view, "active": True})}


def on_poll(tab: TrainTab, db_url: Optional[str], values: Values) -> Updates:
    """One tick: progress, the loss plot (redrawn only when new points arrived), log; results when it ends.
    ``job`` is a plain number, so an API client can watch any job the same way."""
    job_id = values[tab.job]
    if not job_id:
        return {tab.job: None, tab.points: None, tab.timer: gr.Timer(active=False), tab.stop: _stop_button(None)}
    view = run_view.job_view(db_url, int(job_id))
    now = _points(view)
    shown = {tab.progress: _progress_html(view), tab.log: view["log"]}
    if now != values[tab.points]:
        shown[tab.loss] = run_view.loss_figure(view["curves"])
    if view["active"]:
        return {tab.job: job_id, tab.points: now, **shown, tab.stop: _stop_button(view)}
    return {tab.job: None, tab.points: None, tab.timer: gr.Timer(active=False), **shown, tab.stop: _stop_button(None),
            **_results(tab, db_url, values[tab.dataset])}


def on_stop(tab: TrainTab, db_url: Optional[str], values: Values) -> Updates:
    job_id = values[tab.job]
    if not job_id:
        raise gr.Error("no training job is running on this page")
    stop_job_async(db_url, int(job_id), timeout_s=60.0)
    gr.Info(f"stopping job {int(job_id)}: it saves its adapter and ends; killed if not done within 60 s")
    return {tab.job: job_id, tab.timer: gr.Timer(active=True)}


def on_results(tab: TrainTab, db_url: Optional[str], values: Values) -> Updates:
    return _results(tab, db_url, values[tab.dataset])


def on_predictions(tab: TrainTab, db_url: Optional[str], values: Values) -> Updates:
    return {tab.preds: _prediction_rows(db_url, values[tab.run_pick])}


def on_page_load(tab: TrainTab, db_url: Optional[str], values: Values) -> Updates:
    """Datasets, the demo model when there is one, the running job re-attached (else the last one, shown finished
    with its curves and log until another starts), and the results."""
    names = [row["name"] for row in catalog.dataset_overview(db_url)]
    latest = run_view.latest_training_job(db_url)
    dataset = names[0] if names else None
    shown = {tab.job: None, tab.points: None, tab.progress: "", tab.loss: run_view.loss_figure({}), tab.log: ""}
    view = None
    if latest is not None:
        view = run_view.job_view(db_url, latest["job"])
        dataset = latest["dataset"] if latest["dataset"] in names else dataset
        shown = {tab.job: latest["job"] if view["active"] else None, tab.points: _points(view),
                 tab.progress: _progress_html(view), tab.loss: run_view.loss_figure(view["curves"]),
                 tab.log: view["log"]}
    active = view is not None and view["active"]
    model = ((latest or {}).get("model") if active else None) or train_launch.demo_model_dir() or ""
    return {tab.dataset: gr.Dropdown(choices=names, value=dataset), **({tab.model: model} if model else {}),
            **shown, tab.timer: gr.Timer(active=active), tab.stop: _stop_button(view),
            **_results(tab, db_url, dataset)}


# ---------------------------------------------------------------------------------------- layout
def _stage_form(stage: int, title: str, preset: dict[str, Any]) -> StageForm:
    with gr.Column(min_width=260):
        gr.Markdown(f"**{title}**")
        boxes = {key: gr.Number(label=train_launch.field_label(key), info=train_launch.field_help(key),
                                value=preset[key], elem_id=f"train-s{stage}-{key}",
                                precision=None if key in ("lr", "fps", "epochs") else 0) for key in STAGE_FIELDS}
    return StageForm(**boxes)


def build_train_tab() -> TrainTab:
    preset_values = PRESETS[_DEFAULT_PRESET]
    with gr.Row():
        dataset = gr.Dropdown(label="Dataset", choices=[], elem_id="train-dataset", allow_custom_value=True)
        model = gr.Textbox(label="Base model: local folder or hub id", elem_id="train-model",
                           placeholder="Qwen/Qwen2.5-VL-7B-Instruct or /models/qwen2.5-vl-7b")
        preset = gr.Dropdown(label="Preset", choices=list(PRESETS), value=_DEFAULT_PRESET, elem_id="train-preset")
    sampling_note = gr.Markdown(train_launch.sampling_defaults("")[1], elem_id="train-sampling-note")
    with gr.Accordion("Settings per stage", open=False):
        with gr.Row():
            stage1 = _stage_form(1, "Stage I: rationales", preset_values["stage1"])
            stage2 = _stage_form(2, "Stage II: labels", preset_values["stage2"])
            with gr.Column(min_width=260):
                source = gr.Radio(_SOURCES, value="reviewed", label="Stage-I rationale source")
                share = gr.Slider(0, 1, value=1.0, step=0.05, label="Human share (mix)")
                baselines = gr.Checkbox(True, label="Also zero-shot and direct SFT (the comparison's four rows)")
                hint = gr.Checkbox(True, label="Tell the model the label when generating missing rationales")
                targets = gr.Textbox(preset_values["common"]["target_modules"], label="LoRA target modules (regex)",
                                     elem_id="train-targets")
                merger = gr.Checkbox(preset_values["common"]["train_vision_merger"],
                                     label="Also train the vision-language merger", elem_id="train-merger")
    with gr.Row():
        run_rbft = gr.Button("Run RB-FT", variant="primary", elem_id="train-run-rbft")
        run_direct = gr.Button("Direct SFT baseline", elem_id="train-run-direct")
        run_zero = gr.Button("Zero-shot evaluation", elem_id="train-run-zero")
        check = gr.Button("Check readiness", elem_id="train-check")
        show = gr.Button("Show command", elem_id="train-show")
        stop = gr.Button(_STOP_IDLE, variant="stop", interactive=False, elem_id="train-stop")
    with gr.Row():
        readiness = gr.Markdown(elem_id="train-readiness")
        per_class = gr.Dataframe(headers=["label", "train", "val", "test"], label="Videos per class", interactive=False)
    with gr.Accordion("Command (copy it to run on a cluster)", open=False):
        action = gr.Radio([("RB-FT", "rbft"), ("direct SFT", "direct_sft"), ("zero-shot", "zero_shot")],
                          value="rbft", label="Command for")
        command = gr.Code(label="rbft command", language="shell", elem_id="train-command", interactive=False)
        config = gr.Code(label="config YAML", language="yaml", elem_id="train-yaml", interactive=False)
    progress = gr.HTML(elem_id="train-live")
    loss = gr.Plot(label="Loss", elem_id="train-loss")
    log = gr.Textbox(label="Log (tail; library warnings collapsed into the last line)", lines=8, max_lines=8,
                     interactive=False, elem_id="train-log", autoscroll=True)
    gr.Markdown("### Runs and results")
    refresh = gr.Button("Refresh results", size="sm", elem_id="train-refresh")
    runs = gr.Dataframe(headers=_RUN_HEADERS, label="Run history", interactive=False, wrap=True, elem_id="train-runs")
    compare = gr.Dataframe(headers=["model", "run", "accuracy", "macro-F1"], label="Comparison (test split)",
                           interactive=False, elem_id="train-compare")
    with gr.Row():
        confusion = gr.Plot(label="Confusion matrices")
        per_class_f1 = gr.Plot(label="Per-class F1")
    run_pick = gr.Dropdown(label="Per-video predictions of run", choices=[], elem_id="train-run-pick")
    preds = gr.Dataframe(headers=_PRED_HEADERS, label="Predictions (wrong and least confident first)",
                         interactive=False, wrap=True, elem_id="train-preds")
    job = gr.Number(None, visible=False, precision=0, label="job id", elem_id="train-job-id")
    return TrainTab(dataset=dataset, model=model, preset=preset, sampling_note=sampling_note, stage1=stage1, stage2=stage2, source=source,
                    share=share, baselines=baselines, hint=hint, targets=targets, merger=merger, run_rbft=run_rbft,
                    run_direct=run_direct, run_zero=run_zero, check=check, show=show, stop=stop, readiness=readiness,
                    per_class=per_class, action=action, command=command, config=config, progress=progress, loss=loss,
                    log=log, refresh=refresh, runs=runs, compare=compare, confusion=confusion,
                    per_class_f1=per_class_f1, run_pick=run_pick, preds=preds, job=job, points=gr.State(None),
                    timer=gr.Timer(1.5, active=False))

"""Train tab: settings and presets, a readiness check, the exact command, one-click RB-FT / baselines as
background jobs, the live view (progress, loss, log) and the results (runs, comparison, predictions).

Every start goes through ``rbft_core.tabs.train.launch`` (which calls ``rbft_core.jobs.runner.start_job`` with
an ``rbft`` command); every view is read by ``rbft_core.tabs.runs`` from the run folders. A gr.Timer polls
only while a job runs; the page re-attaches to a running job on load, so a reload or an app restart
shows it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any, Callable, Optional

import gradio as gr
import pandas as pd

from rbft_core.data import catalog
from rbft_core.jobs.runner import stop_job_async
from rbft_core.tabs import runs as run_view
from rbft_core.tabs import train as train_launch
from rbft_core.tabs.train import PRESETS, STAGE_FIELDS, LaunchRequest
from ui.common import bind, ui_errors

__all__ = ["TrainTab", "build_train_tab", "on_start", "on_check", "on_show_command", "on_poll", "on_stop",
           "on_results", "on_predictions", "on_page_load", "on_preset"]

_DEFAULT_PRESET = "CPU demo (tiny model)"
_SOURCES = [("model suggestions", "suggestions"), ("expert-reviewed (edit where there is one)", "reviewed"),
            ("mix (human share)", "mix")]
_RUN_HEADERS = ["run", "kind", "status", "parent", "steps", "settings", "duration s", "train loss", "accuracy",
                "macro-F1", "adapter"]
_PRED_HEADERS = ["video", "truth", "predicted", "probability", "correct", "Stage-I rationale"]
_LABELS = {"num_frames": "Frames", "fps": "or fps (0: frames)", "max_pixels": "Max pixels / frame",
           "lora_rank": "LoRA rank", "lora_alpha": "LoRA alpha", "lr": "Learning rate", "epochs": "Epochs",
           "batch_size": "Batch size", "grad_accum": "Grad. accumulation", "max_steps": "Max steps (0: epochs)"}


@dataclass
class TrainTab:
    load_fn: Callable
    load_outputs: list


def _request(action, dataset, model, source, share, baselines, hint, targets, merger, values) -> LaunchRequest:
    n = len(STAGE_FIELDS)
    keys = list(STAGE_FIELDS)
    return LaunchRequest(dataset=dataset or "", model=model or "", action=action,
                         stage1=dict(zip(keys, values[:n])), stage2=dict(zip(keys, values[n:2 * n])),
                         rationale_source=source or "reviewed", human_share=float(share if share is not None else 1.0),
                         with_baselines=bool(baselines), label_hint=bool(hint), target_modules=(targets or "").strip(),
                         train_vision_merger=bool(merger))


def on_preset(preset):
    values = PRESETS.get(preset) or PRESETS[_DEFAULT_PRESET]
    return [values["common"]["target_modules"], values["common"]["train_vision_merger"],
            *[values["stage1"][k] for k in STAGE_FIELDS], *[values["stage2"][k] for k in STAGE_FIELDS]]


@ui_errors
def on_check(db_url, dataset, model, source, share, baselines, hint, targets, merger, *values):
    req = _request("rbft", dataset, model, source, share, baselines, hint, targets, merger, values)
    ready = train_launch.readiness(db_url, req.dataset, rationale_source=req.rationale_source,
                                   human_share=req.human_share)
    r = ready.rationales
    note = (f"\n\nStage-I rationales in train: {r['usable']} usable ({r['human']} expert, {r['model']} model), "
            f"{r['missing']} missing, {r['rejected']} rejected, {r['excluded']} excluded.")
    table = [[c["label"], c["train"], c["val"], c["test"]] for c in ready.per_class]
    return ready.to_markdown() + note, table


@ui_errors
def on_show_command(db_url, action, dataset, model, source, share, baselines, hint, targets, merger, *values):
    req = _request(action, dataset, model, source, share, baselines, hint, targets, merger, values)
    # the spec file itself, byte for byte what the job runs (save it as spec.yaml to run it by hand)
    return train_launch.command_text(req), train_launch.spec_yaml(req)


def _start(action):
    @ui_errors
    def start(db_url, dataset, model, source, share, baselines, hint, targets, merger, *values):
        req = _request(action, dataset, model, source, share, baselines, hint, targets, merger, values)
        job_id = train_launch.launch(db_url, req)
        view = run_view.job_view(db_url, job_id)
        queued = view["job"]["status"] == "queued"
        gr.Info(f"job {job_id} {'queued: it starts when the device is free' if queued else 'started'}")
        return (job_id, -1, gr.Timer(active=True), _progress_html(view), run_view.loss_figure(view["curves"]),
                view["log"], view["job"]["command"])
    start.__name__ = f"on_start_{action}"
    return start


on_start = {action: _start(action) for action in ("rbft", "direct_sft", "zero_shot")}


def _progress_html(view: dict[str, Any]) -> str:
    job, stage = view["job"], view["stage"]
    status = job["status"]
    pct = 100.0 * float(job.get("progress") or 0.0)
    parts = [f"job {job['id']} <b>{escape(status)}</b>", escape(job.get("progress_text") or "")]
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
            f"data-total='{stage['total']}' data-job='{job['id']}' data-progress='{pct:.1f}'>"
            f"<progress value='{pct:.1f}' max='100' style='width:100%'></progress>"
            f"<div>{' · '.join(p for p in parts if p)} ({pct:.0f}% overall)</div></div>")


def _run_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
    def num(v):
        return round(v, 4) if isinstance(v, float) else ("" if v is None else v)
    return [[r["run_id"], r["name"], r["status"], r["parent"], r["steps"], r["settings"], num(r["duration_s"]),
             num(r["train_loss"]), num(r["accuracy"]), num(r["macro_f1"]), r["adapter"]] for r in rows]


@ui_errors
def on_poll(db_url, job_id, points, dataset):
    """One tick: progress, the loss plot (redrawn only when new points arrived), log; results when it ends.
    ``job_id`` is a plain number, so an API client can watch any job the same way."""
    if not job_id:
        return None, None, gr.Timer(active=False), *[gr.skip()] * 9
    view = run_view.job_view(db_url, int(job_id))
    now = sum(len(c["records"]) for c in view["curves"].values())
    plot = run_view.loss_figure(view["curves"]) if now != points else gr.skip()
    if view["active"]:
        return (job_id, now, gr.skip(), _progress_html(view), plot, view["log"], *[gr.skip()] * 6)
    return (None, None, gr.Timer(active=False), _progress_html(view), plot, view["log"], *on_results(db_url, dataset))


@ui_errors
def on_stop(db_url, job_id):
    if not job_id:
        raise gr.Error("no training job is running on this page")
    stop_job_async(db_url, int(job_id), timeout_s=60.0)
    gr.Info(f"stopping job {int(job_id)}: it saves its adapter and ends; killed if not done within 60 s")
    return job_id, gr.Timer(active=True)


@ui_errors
def on_results(db_url, dataset):
    """Run history, comparison table, confusion matrices, per-class F1, and the run picker."""
    if not dataset:
        empty = {"labels": [], "rows": []}
        return [], [], run_view.confusion_figure(empty), run_view.per_class_figure(empty), gr.Dropdown(choices=[]), []
    history = run_view.run_history(db_url, dataset)
    table = run_view.comparison(db_url, dataset)
    labels = table["labels"]
    compare = [[r["name"], r["run_id"], round(r["accuracy"], 4), round(r["macro_f1"], 4),
                *[round(r.get(f"f1_{l}", 0.0), 4) for l in labels]] for r in table["rows"]]
    evaluated = [r["run_id"] for r in history if r["accuracy"] is not None]
    first = next((r["run_id"] for r in table["rows"] if r["kind"] == "stage2"), evaluated[0] if evaluated else None)
    columns = ["model", "run", "accuracy", "macro-F1", *[f"F1 {l}" for l in labels]]
    return (_run_rows(history), pd.DataFrame(compare, columns=columns),
            run_view.confusion_figure(table), run_view.per_class_figure(table),
            gr.Dropdown(choices=evaluated, value=first), on_predictions(db_url, first) if first else [])


@ui_errors
def on_predictions(db_url, run_id):
    if not run_id:
        return []
    return [[p["video"], p["truth"], p["predicted"], p["probability"], "yes" if p["correct"] else "no",
             p["rationale"]] for p in run_view.predictions(db_url, run_id)]


@ui_errors
def on_page_load(db_url):
    """Datasets, the demo model when there is one, the running job re-attached, and the results."""
    names = [row["name"] for row in catalog.dataset_overview(db_url)]
    active = run_view.active_training_job(db_url)
    dataset = names[0] if names else None
    progress, plot, log, job_id, points = "", run_view.loss_figure({}), "", None, None
    if active is not None:
        view = run_view.job_view(db_url, active["job"])
        dataset = active["dataset"] if active["dataset"] in names else dataset
        job_id, points = active["job"], sum(len(c["records"]) for c in view["curves"].values())
        progress, plot, log = _progress_html(view), run_view.loss_figure(view["curves"]), view["log"]
    model = (active or {}).get("model") or train_launch.demo_model_dir() or ""
    return (gr.Dropdown(choices=names, value=dataset), gr.skip() if not model else model, job_id, points,
            gr.Timer(active=job_id is not None), progress, plot, log, *on_results(db_url, dataset))


def _stage_box(stage: int, title: str, preset: dict[str, Any]) -> list:
    boxes = []
    with gr.Column(min_width=260):
        gr.Markdown(f"**{title}**")
        for key in STAGE_FIELDS:
            precision = None if key in ("lr", "fps", "epochs") else 0
            boxes.append(gr.Number(label=_LABELS[key], value=preset[key], precision=precision,
                                   elem_id=f"train-s{stage}-{key}"))
    return boxes


def build_train_tab(db_url: Optional[str]) -> TrainTab:
    preset_values = PRESETS[_DEFAULT_PRESET]
    with gr.Row():
        dataset = gr.Dropdown(label="Dataset", choices=[], elem_id="train-dataset", allow_custom_value=True)
        model = gr.Textbox(label="Base model: local folder or hub id", elem_id="train-model",
                           placeholder="Qwen/Qwen2.5-VL-7B-Instruct or /models/qwen2.5-vl-7b")
        preset = gr.Dropdown(label="Preset", choices=list(PRESETS), value=_DEFAULT_PRESET, elem_id="train-preset")
    with gr.Accordion("Settings per stage", open=False):
        with gr.Row():
            stage1 = _stage_box(1, "Stage I: rationales", preset_values["stage1"])
            stage2 = _stage_box(2, "Stage II: labels", preset_values["stage2"])
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
        stop = gr.Button("Stop", variant="stop", elem_id="train-stop")
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
    log = gr.Textbox(label="Log (tail)", lines=8, max_lines=8, interactive=False, elem_id="train-log", autoscroll=True)
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

    # The job id is a hidden number (not State) so API clients can poll and stop by id like the page does.
    job = gr.Number(None, visible=False, precision=0, label="job id", elem_id="train-job-id")
    points, timer = gr.State(None), gr.Timer(1.5, active=False)
    form = [dataset, model, source, share, baselines, hint, targets, merger, *stage1, *stage2]
    live = [job, points, timer, progress, loss, log, command]
    results = [runs, compare, confusion, per_class_f1, run_pick, preds]
    preset.input(on_preset, [preset], [targets, merger, *stage1, *stage2], api_visibility="private")
    check.click(bind(on_check, db_url), form, [readiness, per_class], api_name="train_check")
    show.click(bind(on_show_command, db_url), [action, *form], [command, config], api_name="train_command")
    for button, name in ((run_rbft, "rbft"), (run_direct, "direct_sft"), (run_zero, "zero_shot")):
        button.click(bind(on_start[name], db_url), form, live, api_name=f"train_start_{name}")
    stop.click(bind(on_stop, db_url), [job], [job, timer], api_name="train_stop")
    timer.tick(bind(on_poll, db_url), [job, points, dataset], [job, points, timer, progress, loss, log, *results],
               api_name="train_poll", show_progress="hidden")
    refresh.click(bind(on_results, db_url), [dataset], results, api_name="train_results")
    dataset.input(bind(on_results, db_url), [dataset], results, api_visibility="private")
    run_pick.input(bind(on_predictions, db_url), [run_pick], [preds], api_name="train_predictions")
    return TrainTab(load_fn=bind(on_page_load, db_url),
                    load_outputs=[dataset, model, job, points, timer, progress, loss, log, *results])

"""The one function that runs any task spec, in this process.

``rbft run SPEC.yaml``, every other ``rbft`` task command, and the job runner all end here; the UI writes a
spec into the job folder and starts ``rbft run`` on it, so what the page shows is what runs. Progress and
stop requests reach the library as arguments; this module adapts nothing else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Optional

from db.engine import init_db
from rbft_core.data.importer import import_videos
from rbft_core.errors import ConfigError
from rbft_core.export.dataset import ExportConfig, export_dataset
from rbft_core.export.model import export_model
from rbft_core.inspection.masking import run_experiment
from rbft_core.inspection.overlays import attention_overlays
from rbft_core.jobs import launch
from rbft_core.models.generate import generate_rationales
from rbft_core.models.loading import check_model_source
from rbft_core.models.prompts import parse_dimensions
from rbft_core.review.curation import Selection
from rbft_core.specs import (
    AttentionSpec,
    EvaluateSpec,
    ExportModelSpec,
    ExportSpec,
    GenerateSpec,
    ImportSpec,
    MaskSpec,
    PipelineSpec,
    Spec,
    TrainSpec,
)
from rbft_core.specs.base import require
from rbft_core.task_context import Progress, StopCheck, phased
from rbft_core.training.evaluate import evaluate_run
from rbft_core.training.pipeline import run_pipeline
from rbft_core.training.train import train_stage

__all__ = ["execute", "TaskHooks"]


@dataclass
class TaskHooks:
    """What the caller (the CLI or the job runner) lends a task: progress, stop requests, its job id."""

    progress: Optional[Progress] = None
    should_stop: Optional[StopCheck] = None
    job_id: Optional[int] = None
    resume: bool = False


def execute(spec: Spec, db_url: Optional[str] = None, hooks: Optional[TaskHooks] = None) -> dict[str, Any]:
    """Run ``spec`` to the end and return its JSON-able result (``status`` included)."""
    hooks = hooks or TaskHooks()
    init_db(db_url)
    runner = _RUNNERS.get(type(spec))
    if runner is None:
        raise ConfigError(f"no executor for {type(spec).__name__}; use one of {', '.join(c.task for c in _RUNNERS)}")
    return runner(spec, db_url, hooks)


def _import(spec: ImportSpec, db_url, hooks: TaskHooks) -> dict[str, Any]:
    require(spec, "dataset", "source")
    report = import_videos(db_url, spec.dataset, spec.source, manifest=spec.manifest or None, fmt=spec.format,
                           preset=spec.preset, labels=list(spec.labels) or None,
                           dimensions=parse_dimensions(spec.dimensions, f"dataset {spec.dataset!r}"), seed=spec.seed,
                           test_fraction=spec.test_fraction, progress=hooks.progress, workers=spec.workers)
    return {"status": "succeeded" if report.ok else "failed", "summary": report.summary(), **report.to_json()}


def _generate(spec: GenerateSpec, db_url, hooks: TaskHooks) -> dict[str, Any]:
    require(spec, "dataset", "model")
    check_model_source(spec.model)
    if spec.nproc_per_node > 1 and not launch.is_rank():  # torchrun runs this spec once per process
        return launch.launch_generate(spec, db_url, hooks.progress, hooks.should_stop)
    report = generate_rationales(db_url, spec.dataset, spec.model, spec, progress=launch.shard_progress(hooks.progress),
                                 should_stop=hooks.should_stop)
    result = {"status": _stopped_or(hooks), **report.to_json()}
    if launch.is_rank():
        launch.write_shard_report(result)
    return result


def _train(spec: TrainSpec, db_url, hooks: TaskHooks) -> dict[str, Any]:
    check_model_source(spec.model)
    progress = phased(hooks.progress, 0, 2, f"train {spec.kind}") if spec.evaluate else hooks.progress
    result = train_stage(db_url, spec, resume=hooks.resume, progress=progress, should_stop=hooks.should_stop,
                         job_id=hooks.job_id)
    out: dict[str, Any] = {"status": result.status, "run_id": result.run_id, "run_dir": str(result.run_dir),
                           "global_step": result.global_step, "train_loss": result.train_loss,
                           "metrics": result.metrics}
    if spec.evaluate and result.status == "succeeded" and int(os.environ.get("RANK", "0")) == 0:
        report = evaluate_run(db_url, spec.dataset, run_id=result.run_id, cfg=EvaluateSpec(dataset=spec.dataset),
                              progress=phased(hooks.progress, 1, 2, f"evaluate {spec.kind}"),
                              should_stop=hooks.should_stop)
        out["eval"] = report.metrics
    return out


def _pipeline(spec: PipelineSpec, db_url, hooks: TaskHooks) -> dict[str, Any]:
    check_model_source(spec.stage1.model)
    return run_pipeline(db_url, spec, progress=hooks.progress, should_stop=hooks.should_stop, job_id=hooks.job_id)


def _evaluate(spec: EvaluateSpec, db_url, hooks: TaskHooks) -> dict[str, Any]:
    require(spec, "dataset")
    if not (spec.run or spec.model):
        raise ConfigError("evaluate needs `run` (a run id) or `model` (a base model, zero-shot)")
    if spec.model:
        check_model_source(spec.model)
    report = evaluate_run(db_url, spec.dataset, run_id=spec.run or None, model=spec.model or None, cfg=spec,
                          progress=hooks.progress, should_stop=hooks.should_stop)
    return {"status": _stopped_or(hooks), **report.to_json()}


def _mask(spec: MaskSpec, db_url, hooks: TaskHooks) -> dict[str, Any]:
    require(spec, "dataset")
    result = run_experiment(db_url, spec.dataset, spec, progress=hooks.progress, should_stop=hooks.should_stop)
    return {"status": "succeeded", "models": result.models, "files": result.files, "notices": result.notices}


def _attention(spec: AttentionSpec, db_url, hooks: TaskHooks) -> dict[str, Any]:
    require(spec, "dataset", "run")
    written = attention_overlays(db_url, spec, progress=hooks.progress, should_stop=hooks.should_stop)
    return {"status": _stopped_or(hooks), "written": written}


def _export(spec: ExportSpec, db_url, hooks: TaskHooks) -> dict[str, Any]:
    require(spec, "dataset", "out")
    selection = Selection(splits=spec.split, statuses=spec.status, edited=spec.edited, labels=spec.labels or None,
                          include_excluded=spec.include_excluded)
    config = ExportConfig(format=spec.format, stages=spec.stage, selection=selection, copy_videos=spec.copy_videos,
                          name=spec.name, overwrite=spec.overwrite)
    result = export_dataset(db_url, spec.dataset, config, spec.out, progress=hooks.progress)
    return {"status": "succeeded", **result.to_json()}


def _export_model(spec: ExportModelSpec, db_url, hooks: TaskHooks) -> dict[str, Any]:
    require(spec, "run", "out")
    result = export_model(db_url, spec.run, spec.out, merged=spec.merged, max_shard_size=spec.max_shard_size,
                          dtype=spec.dtype, overwrite=spec.overwrite)
    return {"status": "succeeded", **result.to_json()}


def _stopped_or(hooks: TaskHooks) -> str:
    return "cancelled" if hooks.should_stop and hooks.should_stop() else "succeeded"


_RUNNERS: dict[type, Callable[[Any, Optional[str], TaskHooks], dict[str, Any]]] = {
    ImportSpec: _import, GenerateSpec: _generate, TrainSpec: _train, PipelineSpec: _pipeline,
    EvaluateSpec: _evaluate, MaskSpec: _mask, AttentionSpec: _attention, ExportSpec: _export,
    ExportModelSpec: _export_model,
}

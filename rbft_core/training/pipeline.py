"""One-click RB-FT: generate missing rationales -> Stage I -> Stage II (from M_inter) -> evaluate, plus the
zero-shot and direct-SFT baselines. Each step is the same function its own task runs.

Every run is evaluated with its own sampling (from its spec). The zero-shot run uses Stage II's sampling, as
the Train tab's Zero-shot button does, so the two zero-shot rows are the same evaluation."""

from __future__ import annotations

from typing import Any, Optional

from rbft_core.models.generate import generate_rationales
from rbft_core.specs.data import GenerateSpec
from rbft_core.specs.training import EvaluateSpec, PipelineSpec
from rbft_core.task_context import Progress, StopCheck, phased, stop_requested
from rbft_core.training.evaluate import compare_runs, evaluate_run
from rbft_core.training.train import train_stage

__all__ = ["run_pipeline", "generation_spec", "zero_shot_spec"]


def generation_spec(spec: PipelineSpec) -> GenerateSpec:
    """Missing rationales are written with Stage I's frames and pixel budget."""
    s1 = spec.stage1
    return GenerateSpec(dataset=s1.dataset, model=s1.model, num_frames=s1.num_frames, max_pixels=s1.max_pixels,
                        label_hint=spec.label_hint, batch_size=spec.generate_batch_size, dtype=s1.dtype,
                        device=s1.device)


def zero_shot_spec(spec: PipelineSpec) -> EvaluateSpec:
    """The zero-shot baseline: the base model with Stage II's sampling (the Zero-shot button builds the same)."""
    s2 = spec.stage2
    return EvaluateSpec(dataset=s2.dataset, model=s2.model, num_frames=s2.num_frames, fps=s2.fps,
                        max_frames=s2.max_frames, max_pixels=s2.max_pixels, dtype=s2.dtype, device=s2.device)


def run_pipeline(db_url: Optional[str], spec: PipelineSpec, *, progress: Optional[Progress] = None,
                 should_stop: Optional[StopCheck] = None, job_id: Optional[int] = None) -> dict[str, Any]:
    """Run the whole method; returns the run ids, the status and the comparison table."""
    steps = ["generate rationales", "Stage I", "Stage II (RB-FT)", "evaluate Stage I", "evaluate RB-FT"]
    if spec.with_baselines:
        steps += ["zero-shot evaluation", "direct SFT", "evaluate direct SFT"]
    dataset = spec.stage1.dataset
    runs: dict[str, Any] = {}
    state = {"cancelled": False}

    def phase(name: str) -> tuple[bool, Optional[Progress]]:
        """(go on?, the progress of this phase); a stop request ends the pipeline before the next phase."""
        if state["cancelled"] or stop_requested(should_stop):
            state["cancelled"] = True
            return False, None
        return True, phased(progress, steps.index(name), len(steps), name)

    def trained(name: str, stage_spec) -> Optional[str]:
        go, p = phase(name)
        if not go:
            return None
        result = train_stage(db_url, stage_spec, progress=p, should_stop=should_stop, job_id=job_id)
        state["cancelled"] |= result.status == "cancelled"
        return result.run_id

    def evaluated(name: str, run_id: Optional[str]) -> None:
        go, p = phase(name) if run_id else (False, None)
        if go:
            evaluate_run(db_url, dataset, run_id=run_id, cfg=EvaluateSpec(dataset=dataset), progress=p,
                         should_stop=should_stop)

    go, p = phase("generate rationales")
    if go:
        runs["generate"] = generate_rationales(db_url, dataset, spec.stage1.model, generation_spec(spec),
                                               progress=p, should_stop=should_stop).to_json()
    # each stage's spec says it is evaluated after training, so `rbft run runs/<id>/spec.yaml` redoes both
    runs["stage1"] = trained("Stage I", spec.stage1.replace(run_id="", evaluate=True))
    if runs["stage1"] and not state["cancelled"]:
        runs["stage2"] = trained("Stage II (RB-FT)", spec.stage2.replace(
            stage=2, kind="stage2", init_from=runs["stage1"], run_id="", evaluate=True))
    evaluated("evaluate Stage I", runs.get("stage1"))
    evaluated("evaluate RB-FT", runs.get("stage2"))
    if spec.with_baselines:
        go, p = phase("zero-shot evaluation")
        if go:
            runs["zero_shot"] = evaluate_run(db_url, dataset, model=spec.stage2.model, cfg=zero_shot_spec(spec),
                                             progress=p, should_stop=should_stop).run_id
        runs["direct_sft"] = trained("direct SFT", spec.stage2.replace(
            stage=2, kind="direct_sft", init_from="", run_id="", evaluate=True))
        evaluated("evaluate direct SFT", runs.get("direct_sft"))
    runs = {k: v for k, v in runs.items() if v}
    result: dict[str, Any] = {"runs": runs, "status": "cancelled" if state["cancelled"] else "succeeded"}
    if not state["cancelled"]:
        result["comparison"] = compare_runs(db_url, dataset, "test")
    return result

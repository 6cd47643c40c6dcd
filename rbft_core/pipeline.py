"""One-click RB-FT: generate missing rationales -> Stage I -> Stage II (from M_inter) -> evaluate,
plus the zero-shot and direct-SFT baselines. Each step is the same function its own command runs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional

from rbft_core.evaluate import EvalConfig, compare_runs, evaluate_run
from rbft_core.generate import GenerateConfig, generate_rationales
from rbft_core.jobs import cancel_requested, set_phase
from rbft_core.train import TrainConfig, train_stage

__all__ = ["run_pipeline"]


def run_pipeline(
    db_url: Optional[str],
    stage1: TrainConfig,
    stage2: TrainConfig,
    *,
    gen_cfg: Optional[GenerateConfig] = None,
    eval_cfg: Optional[EvalConfig] = None,
    with_baselines: bool = False,
    progress=None,
) -> dict[str, Any]:
    """Run the whole method; returns the run ids and the comparison table."""
    steps = ["generate rationales", "Stage I", "Stage II (RB-FT)", "evaluate Stage I", "evaluate RB-FT"]
    if with_baselines:
        steps += ["zero-shot evaluation", "direct SFT", "evaluate direct SFT"]
    runs: dict[str, Any] = {}
    cancelled = False

    def phase(name: str) -> bool:
        nonlocal cancelled
        if cancel_requested():
            cancelled = True
            return False
        set_phase(steps.index(name), len(steps), name)
        if progress:
            progress(steps.index(name), len(steps), name)
        return True

    gen_cfg = gen_cfg or GenerateConfig(num_frames=stage1.num_frames, max_pixels=stage1.max_pixels)
    eval_cfg = eval_cfg or EvalConfig(num_frames=stage2.num_frames, fps=stage2.fps, max_pixels=stage2.max_pixels)
    if phase("generate rationales"):
        runs["generate"] = generate_rationales(db_url, stage1.dataset, stage1.model, gen_cfg).to_json()
    if phase("Stage I"):
        s1 = train_stage(db_url, stage1)
        runs["stage1"] = s1.run_id
        cancelled |= s1.status == "cancelled"
    if not cancelled and phase("Stage II (RB-FT)"):
        s2 = train_stage(db_url, replace(stage2, stage=2, kind="stage2", init_from=runs["stage1"], run_id=""))
        runs["stage2"] = s2.run_id
        cancelled |= s2.status == "cancelled"
    if not cancelled and phase("evaluate Stage I"):
        evaluate_run(db_url, stage1.dataset, run_id=runs["stage1"], cfg=eval_cfg)
    if not cancelled and phase("evaluate RB-FT"):
        evaluate_run(db_url, stage1.dataset, run_id=runs["stage2"], cfg=eval_cfg)
    if with_baselines and not cancelled and phase("zero-shot evaluation"):
        runs["zero_shot"] = evaluate_run(db_url, stage1.dataset, model=stage1.model, cfg=eval_cfg).run_id
    if with_baselines and not cancelled and phase("direct SFT"):
        direct = train_stage(db_url, replace(stage2, stage=2, kind="direct_sft", init_from="", run_id=""))
        runs["direct_sft"] = direct.run_id
        cancelled |= direct.status == "cancelled"
    if with_baselines and not cancelled and phase("evaluate direct SFT"):
        evaluate_run(db_url, stage1.dataset, run_id=runs["direct_sft"], cfg=eval_cfg)
    result: dict[str, Any] = {"runs": runs, "status": "cancelled" if cancelled else "succeeded"}
    if not cancelled:
        result["comparison"] = compare_runs(db_url, stage1.dataset, eval_cfg.split)
    return result

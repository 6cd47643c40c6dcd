"""Determinism on the demo: the same world renders to the same bytes, and the same run spec gives the same metrics
and predictions whatever ran before it in the process, with a cold or warm frame cache, and with one or two torch
threads.

(The report's own runs against `rbft run` in a fresh process: ``test_demo_report.py``.)
"""

from __future__ import annotations

import hashlib
import shutil

import pytest


def test_the_same_world_renders_to_the_same_bytes(tmp_path):
    """x264's CRF rate control wrote other bytes (other pixels) on each render of the same frames; the demo
    encodes with a constant quantiser and one thread now."""
    from rbft_core.demo import WorldSpec, render_world

    world = WorldSpec(num_clips=24, num_frames=16, size=(112, 84), fps=8.0, seed=5)
    digests = []
    for name in ("a", "b"):
        manifest = render_world(tmp_path / name, world)
        digests.append([hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((manifest.parent / "clips").glob("*.mp4"))])
    assert len(digests[0]) == 24 and digests[0] == digests[1]


def _import_with_rationales(db_url, build) -> str:
    from sqlalchemy import select

    from db import queries
    from db.engine import session_scope
    from db.models import Video
    from rbft_core.data.importer import import_videos

    import_videos(db_url, "det", build.manifest.parent, manifest=build.manifest, fmt="jsonl", preset="smart-home")
    with session_scope(db_url) as s:  # Stage-I targets: the scene graphs, recorded as suggestions
        for video in s.scalars(select(Video)):
            graph = video.meta["scene_graph"]
            queries.add_suggestion(s, video.id, model_id="scene-graph", prompt_version="rationale-v1",
                                   raw_text=str(graph), parse_status="ok", label_hint=True, mean_logprob=-1.0, **graph)
    return "det"


def _spec(build, dataset: str, **changes):
    from rbft_core.specs.training import DEFAULT_TARGETS, TrainSpec

    values = dict(dataset=dataset, model=str(build.model_dir), stage=2, kind="direct_sft", epochs=2.0,
                  num_frames=build.config.sample_frames, lr=4e-3, lora_rank=8, lora_alpha=16, batch_size=8, seed=3,
                  warmup_ratio=0.1, lora_dropout=0.0, target_modules=DEFAULT_TARGETS + "|lm_head",
                  train_vision_merger=True)
    return TrainSpec(**{**values, **changes})


def _train_and_evaluate(db_url, spec) -> dict:
    from rbft_core.specs.training import EvaluateSpec
    from rbft_core.training.evaluate import evaluate_run
    from rbft_core.training.train import train_stage

    result = train_stage(db_url, spec.replace(run_id=""))
    report = evaluate_run(db_url, spec.dataset, run_id=result.run_id, cfg=EvaluateSpec(dataset=spec.dataset))
    return {"train_loss": result.train_loss, "steps": result.global_step, "accuracy": report.metrics["accuracy"],
            "probs": [(p["video_id"], p["probs"]) for p in report.predictions], "run_id": result.run_id}


def _same(a: dict, b: dict) -> bool:
    return {k: v for k, v in a.items() if k != "run_id"} == {k: v for k, v in b.items() if k != "run_id"}


@pytest.mark.slow
def test_a_spec_gives_the_same_run_whatever_ran_before_it(demo_base_model, db_url, data_dir):
    import torch

    from rbft_core.data.frame_cache import default_frame_cache
    from rbft_core.models.generate import generate_rationales
    from rbft_core.specs.data import GenerateSpec
    from rbft_core.specs.training import EvaluateSpec
    from rbft_core.training.evaluate import evaluate_run
    from rbft_core.training.train import train_stage

    dataset = _import_with_rationales(db_url, demo_base_model)
    spec = _spec(demo_base_model, dataset)
    first = _train_and_evaluate(db_url, spec)  # cold frame cache

    # other work in between, each drawing from the global RNGs in its own way: another seed and lr, a Stage I and
    # an RB-FT Stage II on top of it, a zero-shot evaluation, greedy generation
    train_stage(db_url, spec.replace(seed=11, lr=2e-3))
    stage1 = train_stage(db_url, spec.replace(stage=1, kind="stage1", rationale_source="suggestions", epochs=1.0, seed=5))
    train_stage(db_url, spec.replace(kind="stage2", init_from=stage1.run_id, epochs=1.0))
    evaluate_run(db_url, dataset, model=str(demo_base_model.model_dir), cfg=EvaluateSpec(dataset=dataset))
    generate_rationales(db_url, dataset, str(demo_base_model.model_dir),
                        GenerateSpec(dataset=dataset, num_frames=4, batch_size=3, max_new_tokens=12, overwrite=True,
                                     video_ids=(1, 2, 3)))
    torch.manual_seed(1234)
    again = _train_and_evaluate(db_url, spec)  # warm frame cache, RNGs moved on
    assert _same(first, again), (first["train_loss"], again["train_loss"])

    # a cold frame cache (memory and disk) and another thread count
    default_frame_cache().clear_memory()
    shutil.rmtree(data_dir / "cache", ignore_errors=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(2 if threads == 1 else 1)
    try:
        cold = _train_and_evaluate(db_url, spec)
    finally:
        torch.set_num_threads(threads)
    assert _same(first, cold), (first["train_loss"], cold["train_loss"])
    assert first["run_id"] != again["run_id"] != cold["run_id"]  # three separate runs, one result

"""Stage I / Stage II LoRA training with transformers ``Trainer`` + peft.

Stage I fine-tunes the base model on rationales. Stage II starts from M_inter — the Stage-I adapter
merged into the base — and trains a new adapter on the labels (or continues the Stage-I adapter).
Direct SFT is Stage II from the base model. Every run writes ``runs/<run_id>/``:

    spec.yaml           the run's TrainSpec, sampling included (`rbft run runs/<id>/spec.yaml` trains it again)
    trainer_log.jsonl   LLaMA-Factory field names (current_steps, total_steps, loss, eval_loss, lr, ...)
    train.log           human-readable log
    adapter/            the peft adapter (adapter_config.json + adapter_model.safetensors)
    checkpoints/        checkpoint-N folders (`--resume` continues from the newest)
    all_results.json    final train metrics
    exit_status.json    {"status": succeeded|failed|cancelled, "error": ...}
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from db import job_queries as jq
from db import queries
from db.engine import session_scope
from rbft_core.data.frame_cache import FrameCache, default_frame_cache
from rbft_core.data.prefetch import FramePrefetcher
from rbft_core.errors import ConfigError, ModelError
from rbft_core.models.loading import load_vlm, sample_spec_for
from rbft_core.settings import data_dir
from rbft_core.specs import load_spec
from rbft_core.specs.training import TrainSpec
from rbft_core.task_context import Progress, StopCheck
from rbft_core.training import lean_step, sft_data
from rbft_core.training.dropout import use_pcg_dropout
from rbft_core.training.train_loop import run_trainer

__all__ = ["StageResult", "train_stage", "load_run_spec", "save_run_spec", "new_run_id", "load_run_model",
           "runs_root", "apply_adapters", "wrap_lora"]

log = logging.getLogger("rbft.train")


@dataclass
class StageResult:
    run_id: str
    run_dir: Path
    status: str
    global_step: int
    train_loss: Optional[float]
    metrics: dict[str, Any] = field(default_factory=dict)


def runs_root() -> Path:
    path = data_dir() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_run_id(kind: str) -> str:
    return f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{kind}-{os.urandom(2).hex()}"


def load_run_spec(path: str | Path) -> TrainSpec:
    """A training spec file (a run's ``spec.yaml``); refuses a spec of another task."""
    spec = load_spec(path)
    if not isinstance(spec, TrainSpec):
        raise ConfigError(f"{path} is a {spec.task} spec, not a training spec; run it with `rbft run {path}`")
    return spec


def save_run_spec(cfg: TrainSpec, run_dir: Path) -> Path:
    """``runs/<id>/spec.yaml``: the spec with an empty run id, so running the file again makes a new run."""
    return cfg.replace(run_id="").write(run_dir / "spec.yaml")


def seed_everything(seed: int) -> None:
    """Python, NumPy and torch RNGs (what ``transformers.set_seed`` seeds) to ``seed``."""
    from transformers import set_seed  # transformers is heavy: loaded only when a model runs

    set_seed(seed)


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def load_run_model(db_url: Optional[str], run_id: str, *, dtype: str = "auto", device: str = "auto", merge: bool = True):
    """Base model with a run's adapter chain applied (Stage II of RB-FT: base + Stage I merged + Stage II)."""

    chain = []
    with session_scope(db_url) as s:
        run = jq.get_run(s, run_id)
        base = run.base_model
        while run is not None:
            chain.append((run.id, run.run_dir))
            # a continued Stage-I adapter already holds Stage I: applying the parent too would count it twice
            continued = bool((run.config or {}).get("continue_adapter"))
            run = jq.get_run(s, run.parent_run_id) if run.parent_run_id and not continued else None
    lm = load_vlm(base, dtype=dtype, device=device)
    lm.model = apply_adapters(lm.model, [Path(d) / "adapter" for _, d in reversed(chain)], merge_last=merge)
    lm.model.eval()
    return lm


def apply_adapters(model, adapters: list[Path], merge_last: bool = True):
    from peft import (
        PeftModel,  # peft pulls in torch: loaded only when adapters are used
    )


    for i, adapter in enumerate(adapters):
        if not (adapter / "adapter_config.json").is_file():
            raise ModelError(f"adapter {adapter} is missing; the run did not finish — resume it or pick another run")
        model = PeftModel.from_pretrained(model, str(adapter))
        if i < len(adapters) - 1 or merge_last:
            model = model.merge_and_unload()
    return model


def wrap_lora(model, cfg: TrainSpec):
    from peft import (  # peft pulls in torch: loaded only when adapters are used
        LoraConfig,
        get_peft_model,
    )

    modules_to_save = None
    if cfg.train_vision_merger:
        modules_to_save = [name for name, _ in model.named_modules() if name.endswith("visual.merger")]
    lora = LoraConfig(
        r=cfg.lora_rank,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.target_modules,
        modules_to_save=modules_to_save or None,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def _prepare_model(db_url, cfg: TrainSpec):
    """The model to train: base (+ merged Stage-I adapter for RB-FT Stage II) with a LoRA adapter."""
    from peft import (
        PeftModel,  # peft pulls in torch: loaded only when adapters are used
    )


    lm = load_vlm(cfg.model, dtype=cfg.dtype, device=cfg.device)
    if cfg.init_from:
        parent = _parent_adapter(db_url, cfg.init_from)
        if cfg.continue_adapter:
            lm.model = PeftModel.from_pretrained(lm.model, str(parent), is_trainable=True)
            return lm
        lm.model = apply_adapters(lm.model, [parent], merge_last=True)  # M_inter
    lm.model = wrap_lora(lm.model, cfg)
    return lm


def _use_dropout_rng(model, cfg: TrainSpec) -> None:
    """LoRA dropout masks from PCG64 on CPU unless the spec asks for torch's own (``training/dropout.py``)."""
    if cfg.dropout_rng == "pcg64":
        log.info("LoRA dropout masks from PCG64: %d modules", use_pcg_dropout(model))


def _parent_adapter(db_url, run_id: str) -> Path:
    with session_scope(db_url) as s:
        run = jq.get_run(s, run_id)
        if run.kind != "stage1":
            raise ConfigError(f"init_from must name a Stage-I run; {run_id} is a {run.kind} run")
        return Path(run.run_dir) / "adapter"


def _mirror_run(db_url, cfg: TrainSpec, run_dir: Path, status: str, metrics: Optional[dict] = None,
                job_id: Optional[int] = None) -> None:

    if not _is_main_process():
        return
    with session_scope(db_url) as s:
        ds = queries.get_dataset(s, cfg.dataset)
        changes: dict[str, Any] = dict(
            dataset_id=ds.id, kind=cfg.kind, stage=cfg.stage, parent_run_id=cfg.init_from or None,
            base_model=cfg.model, status=status, run_dir=str(run_dir), config=cfg.to_dict(),
            job_id=job_id,
        )
        if metrics is not None:
            changes["metrics"] = metrics
        if status in {"succeeded", "failed", "cancelled"}:
            changes["ended_at"] = datetime.now(timezone.utc)
        jq.upsert_run(s, cfg.run_id, **changes)


def train_stage(db_url: Optional[str], cfg: TrainSpec, *, resume: bool = False, progress: Optional[Progress] = None,
                should_stop: Optional[StopCheck] = None, job_id: Optional[int] = None) -> StageResult:
    """Train one stage end to end; the run folder and its DB mirror say what happened.

    ``progress(step, total, text)`` hears every logged step; ``should_stop()`` is checked after each step (a stop
    saves a checkpoint and the adapter); ``job_id`` is recorded on the run."""

    cfg.run_id = cfg.run_id or new_run_id(cfg.kind)
    run_dir = runs_root() / cfg.run_id
    if resume and not (run_dir / "spec.yaml").exists():
        raise ConfigError(f"cannot resume run {cfg.run_id}: {run_dir}/spec.yaml does not exist; check the run id")
    examples, _preset, summary = sft_data.build_examples(
        db_url, cfg.dataset, cfg.stage, split=cfg.split, rationale_source=cfg.rationale_source,
        human_share=cfg.human_share, seed=cfg.seed,
    )
    sft_data.check_trainable(examples, cfg.stage, cfg.split, summary)
    eval_examples: list = []
    if cfg.split != "val":  # eval loss on the validation split when the dataset has one
        eval_examples, _, _ = sft_data.build_examples(
            db_url, cfg.dataset, cfg.stage, split="val", rationale_source=cfg.rationale_source, seed=cfg.seed
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    if _is_main_process():
        save_run_spec(cfg, run_dir)
    _mirror_run(db_url, cfg, run_dir, "running", job_id=job_id)
    started = time.time()
    try:
        # seed before the LoRA weights are drawn: otherwise their init depends on whatever this process ran
        # before (a run inside the pipeline or the demo report would differ from the same spec run alone)
        seed_everything(cfg.seed)
        lm = _prepare_model(db_url, cfg)
        _use_dropout_rng(lm.model, cfg)
        spec = sample_spec_for(lm.processor, num_frames=cfg.num_frames, fps=cfg.fps, max_frames=cfg.max_frames,
                               max_pixels=cfg.max_pixels)
        lean, why_not = lean_step.use_lean_step(lm.model, cfg)
        # the lean step reads a video's frames once per run: no in-memory copy is kept beside its features
        frames = FrameCache(default_frame_cache().root, max_items_in_memory=0) if lean else default_frame_cache()
        collator = sft_data.VideoSFTCollator(lm.processor, spec, frames)
        if lean:  # the processor and the frozen vision tower run once per video, not once per step
            collator = lean_step.LeanCollator(collator, lean_step.FeatureStore(cfg.vision_cache_mb * 2**20), lm.model)
        else:
            log.info("each step encodes its videos again: %s", why_not)
        prefetch = None
        if cfg.prefetch_frames and _is_main_process():
            prefetch = FramePrefetcher([(e.path, e.sha256) for e in [*examples, *eval_examples]], spec, frames)
        with prefetch or contextlib.nullcontext():
            outcome = run_trainer(lm, cfg, examples, collator, run_dir, resume=resume, eval_examples=eval_examples,
                                  progress=progress, should_stop=should_stop)
        if prefetch is not None:
            log.info("frames prefetched: %d videos decoded beside the steps, %d left to the collator",
                     prefetch.decoded, prefetch.failed)
    except BaseException as exc:
        _finish(db_url, cfg, run_dir, "failed", {"error": str(exc)[:2000]}, job_id)
        raise
    metrics = {**outcome.metrics, "train_examples": len(examples), "left_out": summary["left_out"],
               "seconds": round(time.time() - started, 2),
               **({"frames_prefetched": prefetch.decoded} if prefetch is not None else {})}
    _finish(db_url, cfg, run_dir, outcome.status, metrics, job_id)
    return StageResult(cfg.run_id, run_dir, outcome.status, outcome.global_step, outcome.metrics.get("train_loss"), metrics)


def _finish(db_url, cfg: TrainSpec, run_dir: Path, status: str, metrics: dict, job_id: Optional[int]) -> None:
    if _is_main_process():
        (run_dir / "all_results.json").write_text(json.dumps(metrics, indent=2, default=str))
        (run_dir / "exit_status.json").write_text(
            json.dumps({"status": status, "error": metrics.get("error"), "ended_at": datetime.now(timezone.utc).isoformat()})
        )
    _mirror_run(db_url, cfg, run_dir, status, metrics, job_id)

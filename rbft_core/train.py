"""Stage I / Stage II LoRA training with transformers ``Trainer`` + peft.

Stage I fine-tunes the base model on rationales. Stage II starts from M_inter — the Stage-I adapter
merged into the base — and trains a new adapter on the labels (or continues the Stage-I adapter).
Direct SFT is Stage II from the base model. Every run writes ``runs/<run_id>/``:

    config.yaml         everything needed to rerun it (`rbft train --config runs/<id>/config.yaml`)
    trainer_log.jsonl   LLaMA-Factory field names (current_steps, total_steps, loss, eval_loss, lr, ...)
    train.log           human-readable log
    adapter/            the peft adapter (adapter_config.json + adapter_model.safetensors)
    checkpoints/        checkpoint-N folders (`--resume` continues from the newest)
    all_results.json    final train metrics
    exit_status.json    {"status": succeeded|failed|cancelled, "error": ...}
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Optional

from rbft_core.errors import ConfigError

__all__ = ["TrainConfig", "StageResult", "train_stage", "load_config", "new_run_id", "load_run_model", "runs_root"]

DEFAULT_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
log = logging.getLogger("rbft.train")


@dataclass
class TrainConfig:
    """One training stage.

    Args:
        dataset: dataset name.
        stage: 1 (rationales) or 2 (labels).
        model: base model folder or hub id.
        init_from: Stage II only: the Stage-I run whose adapter is merged into the base (M_inter);
            empty for direct SFT.
        continue_adapter: Stage II from a Stage-I run: keep training its adapter instead of merging.
        num_frames / fps: uniform frame count, or frames per second (capped by max_frames).
        max_pixels: per-frame pixel budget.
        lora_rank / lora_alpha / lora_dropout: LoRA shape.
        target_modules: regex over module names (language model only by default).
        train_vision_merger: also train the vision-language merger (fully).
        lr, epochs, batch_size, grad_accum, warmup_ratio, weight_decay: optimisation.
        max_steps: stop after this many optimiser steps (0: from epochs).
        save_steps: checkpoint every N steps (0: only at the end).
        rationale_source / human_share: Stage-I targets (see ``sft_data.build_examples``).
    """

    dataset: str = ""
    stage: int = 1
    model: str = ""
    kind: Literal["stage1", "stage2", "direct_sft"] = "stage1"
    run_id: str = ""
    init_from: str = ""
    continue_adapter: bool = False
    split: str = "train"
    num_frames: int = 8
    fps: float = 0.0
    max_frames: int = 32
    max_pixels: int = 128 * 28 * 28
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: str = DEFAULT_TARGETS
    train_vision_merger: bool = False
    lr: float = 2e-4
    epochs: float = 2.0
    batch_size: int = 2
    grad_accum: int = 1
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    max_steps: int = 0
    save_steps: int = 0
    gradient_checkpointing: bool = False
    seed: int = 0
    rationale_source: str = "reviewed"
    human_share: float = 1.0
    dtype: str = "auto"
    device: str = "auto"
    deepspeed: str = ""  # a DeepSpeed JSON config, passed to TrainingArguments(deepspeed=...)
    fsdp: str = ""  # FSDP options, e.g. "full_shard auto_wrap", passed to TrainingArguments(fsdp=...)

    def __post_init__(self) -> None:
        self.stage = int(self.stage)
        if self.stage not in (1, 2):
            raise ConfigError(f"stage must be 1 or 2, got {self.stage}")
        if self.stage == 1:
            self.kind = "stage1"
        elif self.kind == "stage1":
            self.kind = "stage2" if self.init_from else "direct_sft"
        checks = [
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.epochs > 0 or self.max_steps > 0, f"epochs must be > 0, got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.grad_accum >= 1, f"grad_accum must be >= 1, got {self.grad_accum}"),
            (self.lora_rank >= 1, f"lora_rank must be >= 1, got {self.lora_rank}"),
            (self.lora_alpha > 0, f"lora_alpha must be > 0, got {self.lora_alpha}"),
            (0 <= self.lora_dropout < 1, f"lora_dropout must be within [0, 1), got {self.lora_dropout}"),
            (self.num_frames >= 1 or self.fps > 0, f"num_frames must be >= 1, got {self.num_frames}"),
            (self.fps >= 0, f"fps must be >= 0, got {self.fps}"),
            (self.max_pixels >= 28 * 28, f"max_pixels must be >= 784, got {self.max_pixels}"),
            (0 <= self.warmup_ratio < 1, f"warmup_ratio must be within [0, 1), got {self.warmup_ratio}"),
            (self.max_steps >= 0, f"max_steps must be >= 0, got {self.max_steps}"),
            (self.save_steps >= 0, f"save_steps must be >= 0, got {self.save_steps}"),
            (not (self.stage == 1 and self.init_from), "init_from is for Stage II only (Stage I starts from the base)"),
            (bool(self.dataset), "dataset must be given"),
            (bool(self.model), "model must be given (a local folder or hub id)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        try:
            re.compile(self.target_modules)
        except re.error as exc:
            raise ConfigError(f"target_modules is not a valid regex ({exc})") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown training setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)


@dataclass
class StageResult:
    run_id: str
    run_dir: Path
    status: str
    global_step: int
    train_loss: Optional[float]
    metrics: dict[str, Any] = field(default_factory=dict)


def runs_root() -> Path:
    from rbft_core.settings import data_dir

    path = data_dir() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_run_id(kind: str) -> str:
    return f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{kind}-{os.urandom(2).hex()}"


def load_config(path: str | Path) -> TrainConfig:
    import yaml

    values = yaml.safe_load(Path(path).read_text()) or {}
    return TrainConfig.from_dict(values)


def save_config(cfg: TrainConfig, run_dir: Path) -> None:
    import yaml

    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def load_run_model(db_url: Optional[str], run_id: str, *, dtype: str = "auto", device: str = "auto", merge: bool = True):
    """Base model with a run's adapter chain applied (Stage II of RB-FT: base + Stage I merged + Stage II)."""
    from db import job_queries as jq
    from db.engine import session_scope
    from rbft_core.models import load_vlm

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
    lm.model = _apply_adapters(lm.model, [Path(d) / "adapter" for _, d in reversed(chain)], merge_last=merge)
    lm.model.eval()
    return lm


def _apply_adapters(model, adapters: list[Path], merge_last: bool = True):
    from peft import PeftModel

    from rbft_core.errors import ModelError

    for i, adapter in enumerate(adapters):
        if not (adapter / "adapter_config.json").is_file():
            raise ModelError(f"adapter {adapter} is missing; the run did not finish — resume it or pick another run")
        model = PeftModel.from_pretrained(model, str(adapter))
        if i < len(adapters) - 1 or merge_last:
            model = model.merge_and_unload()
    return model


def _wrap_lora(model, cfg: TrainConfig):
    from peft import LoraConfig, get_peft_model

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


def _prepare_model(db_url, cfg: TrainConfig):
    """The model to train: base (+ merged Stage-I adapter for RB-FT Stage II) with a LoRA adapter."""
    from peft import PeftModel

    from rbft_core.models import load_vlm

    lm = load_vlm(cfg.model, dtype=cfg.dtype, device=cfg.device)
    if cfg.init_from:
        parent = _parent_adapter(db_url, cfg.init_from)
        if cfg.continue_adapter:
            lm.model = PeftModel.from_pretrained(lm.model, str(parent), is_trainable=True)
            return lm
        lm.model = _apply_adapters(lm.model, [parent], merge_last=True)  # M_inter
    lm.model = _wrap_lora(lm.model, cfg)
    return lm


def _parent_adapter(db_url, run_id: str) -> Path:
    from db import job_queries as jq
    from db.engine import session_scope

    with session_scope(db_url) as s:
        run = jq.get_run(s, run_id)
        if run.kind != "stage1":
            raise ConfigError(f"init_from must name a Stage-I run; {run_id} is a {run.kind} run")
        return Path(run.run_dir) / "adapter"


def _mirror_run(db_url, cfg: TrainConfig, run_dir: Path, status: str, metrics: Optional[dict] = None) -> None:
    from db import job_queries as jq
    from db import queries
    from db.engine import session_scope

    if not _is_main_process():
        return
    with session_scope(db_url) as s:
        ds = queries.get_dataset(s, cfg.dataset)
        changes: dict[str, Any] = dict(
            dataset_id=ds.id, kind=cfg.kind, stage=cfg.stage, parent_run_id=cfg.init_from or None,
            base_model=cfg.model, status=status, run_dir=str(run_dir), config=cfg.to_dict(),
            job_id=_current_job_id(),
        )
        if metrics is not None:
            changes["metrics"] = metrics
        if status in {"succeeded", "failed", "cancelled"}:
            changes["ended_at"] = datetime.now(timezone.utc)
        jq.upsert_run(s, cfg.run_id, **changes)


def _current_job_id() -> Optional[int]:
    from rbft_core import jobs

    return jobs._current.get("job_id")


def train_stage(db_url: Optional[str], cfg: TrainConfig, *, resume: bool = False) -> StageResult:
    """Train one stage end to end; the run folder and its DB mirror say what happened."""
    from rbft_core import sft_data
    from rbft_core.models import sample_spec_for
    from rbft_core.train_loop import run_trainer

    cfg.run_id = cfg.run_id or new_run_id(cfg.kind)
    run_dir = runs_root() / cfg.run_id
    if resume and not (run_dir / "config.yaml").exists():
        raise ConfigError(f"cannot resume run {cfg.run_id}: {run_dir}/config.yaml does not exist")
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
        save_config(cfg, run_dir)
    _mirror_run(db_url, cfg, run_dir, "running")
    started = time.time()
    try:
        lm = _prepare_model(db_url, cfg)
        spec = sample_spec_for(lm.processor, num_frames=cfg.num_frames, fps=cfg.fps, max_frames=cfg.max_frames,
                               max_pixels=cfg.max_pixels)
        collator = sft_data.VideoSFTCollator(lm.processor, spec, _frame_cache())
        outcome = run_trainer(lm, cfg, examples, collator, run_dir, resume=resume, eval_examples=eval_examples)
    except BaseException as exc:
        _finish(db_url, cfg, run_dir, "failed", {"error": str(exc)[:2000]})
        raise
    metrics = {**outcome.metrics, "train_examples": len(examples), "left_out": summary["left_out"],
               "seconds": round(time.time() - started, 2)}
    _finish(db_url, cfg, run_dir, outcome.status, metrics)
    return StageResult(cfg.run_id, run_dir, outcome.status, outcome.global_step, outcome.metrics.get("train_loss"), metrics)


def _frame_cache():
    from rbft_core.video import default_frame_cache

    return default_frame_cache()


def _finish(db_url, cfg: TrainConfig, run_dir: Path, status: str, metrics: dict) -> None:
    if _is_main_process():
        (run_dir / "all_results.json").write_text(json.dumps(metrics, indent=2, default=str))
        (run_dir / "exit_status.json").write_text(
            json.dumps({"status": status, "error": metrics.get("error"), "ended_at": datetime.now(timezone.utc).isoformat()})
        )
    _mirror_run(db_url, cfg, run_dir, status, metrics)

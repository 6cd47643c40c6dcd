"""The Trainer run of one stage: arguments, the LLaMA-Factory-style log, graceful stop, resume, save.

Kept apart from ``train.py`` (what to train) so this file reads as the loop: build arguments ->
(resume) -> train with callbacks (log, progress, stop check) -> save the adapter -> report.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Optional

from rbft_core.models.model_sampling import write_model_sampling
from rbft_core.training.heap import GrowthTrimmer, heap_trimmer
from rbft_core.training.lean_step import LeanCollator
from rbft_core.task_context import Progress, StopCheck, report, stop_requested

__all__ = ["Outcome", "run_trainer", "latest_checkpoint", "trainer_class"]


@dataclass
class Outcome:
    status: str
    global_step: int
    metrics: dict[str, Any] = field(default_factory=dict)


def latest_checkpoint(run_dir: Path) -> Optional[Path]:
    """The newest complete checkpoint: a kill -9 while saving leaves one without a readable trainer state."""
    checkpoints = sorted(
        (p for p in (run_dir / "checkpoints").glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
    )
    complete = [p for p in checkpoints if _complete(p)]
    return complete[-1] if complete else None


def _complete(checkpoint: Path) -> bool:
    """Trainer writes trainer_state.json last, after the weights, optimizer and RNG state."""
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
        return True
    except (OSError, ValueError):
        return False


class _ListDataset:
    def __init__(self, items):
        self.items = list(items)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def _hms(seconds: float) -> str:
    return str(timedelta(seconds=int(max(0.0, seconds))))


def _callbacks(run_dir: Path, world_size: int, progress, should_stop, trim_heap: bool):
    from transformers import (
        TrainerCallback,  # transformers is heavy: loaded only when a model runs
    )

    class LogWriter(TrainerCallback):
        """trainer_log.jsonl with LLaMA-Factory's field names; train.log in words; job progress."""

        def __init__(self):
            self.started = time.time()
            self.start_step = 0

        def on_train_begin(self, args, state, control, **kw):
            self.started, self.start_step = time.time(), state.global_step

        def on_log(self, args, state, control, logs=None, **kw):
            if not state.is_world_process_zero or not logs:
                return
            elapsed = time.time() - self.started
            done = max(1, state.global_step - self.start_step)
            remaining = elapsed / done * max(0, state.max_steps - state.global_step)
            record = {
                "current_steps": state.global_step,
                "total_steps": state.max_steps,
                "loss": logs.get("loss"),
                "eval_loss": logs.get("eval_loss"),
                "lr": logs.get("learning_rate"),
                "epoch": round(state.epoch or 0.0, 4),
                "percentage": round(100.0 * state.global_step / max(1, state.max_steps), 2),
                "elapsed_time": _hms(elapsed),
                "remaining_time": _hms(remaining),
                "throughput": round(done * args.train_batch_size * args.gradient_accumulation_steps * world_size / max(elapsed, 1e-6), 3),
            }
            with open(run_dir / "trainer_log.jsonl", "a") as handle:
                handle.write(json.dumps(record) + "\n")
            words = ", ".join(f"{k}={v}" for k, v in logs.items())
            with open(run_dir / "train.log", "a") as handle:
                handle.write(f"step {state.global_step}/{state.max_steps}: {words}\n")
            loss = logs.get("loss", logs.get("eval_loss"))
            report(progress, state.global_step, state.max_steps,
                         f"step {state.global_step}/{state.max_steps}" + (f", loss {loss:.4f}" if loss is not None else "")
                         + f", ETA {record['remaining_time']}")

    class StopCheck(TrainerCallback):
        """On a stop request: save a checkpoint at this step and end training (the adapter is saved after)."""

        stopped = False

        def on_step_end(self, args, state, control, **kw):
            if stop_requested(should_stop):
                StopCheck.stopped = True
                control.should_save = True
                control.should_training_stop = True

    class TrimHeap(TrainerCallback):
        """After an optimiser step that left the heap grown: freed memory goes back to the OS (``training/heap.py``)."""

        def __init__(self, trim):
            self.trim = trim

        def on_step_end(self, args, state, control, **kw):
            self.trim()

    trim = heap_trimmer() if trim_heap else None
    return LogWriter(), StopCheck, ([TrimHeap(GrowthTrimmer(trim))] if trim else [])


def _arguments(cfg, run_dir: Path, has_eval: bool):
    import torch  # torch is heavy: loaded only when a model runs
    from transformers import (
        TrainingArguments,  # transformers is heavy: loaded only when a model runs
    )

    cuda = cfg.device != "cpu" and torch.cuda.is_available()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    return TrainingArguments(
        output_dir=str(run_dir / "checkpoints"),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps or -1,
        lr_scheduler_type="cosine",
        warmup_steps=cfg.warmup_ratio,  # < 1: a ratio of the total steps
        weight_decay=cfg.weight_decay,
        logging_steps=1,
        eval_strategy="epoch" if has_eval else "no",
        save_strategy="steps",
        save_steps=cfg.save_steps or 10**9,
        save_total_limit=3,
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=cuda and cfg.dtype in ("auto", "bfloat16") and torch.cuda.is_bf16_supported(),
        use_cpu=not cuda,
        gradient_checkpointing=cfg.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if cfg.gradient_checkpointing else None,
        remove_unused_columns=False,
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
        ddp_backend=("gloo" if not cuda else "nccl") if world_size > 1 else None,
        ddp_find_unused_parameters=False if world_size > 1 else None,
        save_only_model=False,
        deepspeed=cfg.deepspeed or None,
        fsdp=cfg.fsdp or "",
    )


class _RecordingCollator:
    """Wraps the collator to record which videos this rank saw (multi-process runs)."""

    def __init__(self, inner, path: Path):
        self.inner, self.path = inner, path

    def __call__(self, examples):
        with open(self.path, "a") as handle:
            handle.write(json.dumps([e.video_id for e in examples]) + "\n")
        return self.inner(examples)


def trainer_class():
    """transformers' ``Trainer``, imported without ``datasets`` and the pandas and pyarrow it pulls in: 85 MB of
    resident memory a run here never uses (its examples are plain lists, ``_ListDataset``).

    ``transformers/trainer.py`` imports ``datasets`` at its top whenever the package is installed (the project
    installs it for the HF-datasets export) and only reads it to recognise a ``datasets.Dataset``. The check it
    binds, ``transformers.utils.is_datasets_available``, answers False while that module is first imported and is
    put back right after, so the rest of the process sees the truth. Once the module is loaded, it is used as is.
    """
    import transformers.utils as hf_utils  # transformers is heavy: loaded only when a model runs

    if "transformers.trainer" in sys.modules:
        return sys.modules["transformers.trainer"].Trainer
    real = hf_utils.is_datasets_available
    hf_utils.is_datasets_available = lambda: False
    try:
        return importlib.import_module("transformers.trainer").Trainer
    finally:
        hf_utils.is_datasets_available = real


def run_trainer(lm, cfg, examples, collator, run_dir: Path, *, resume: bool = False, eval_examples=(),
                progress: Optional[Progress] = None, should_stop: Optional[StopCheck] = None) -> Outcome:
    Trainer = trainer_class()

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    lean = collator if isinstance(collator, LeanCollator) else None
    if world_size > 1:
        collator = _RecordingCollator(collator, run_dir / f"data_order_rank{rank}.jsonl")
    log_writer, stop_check, extra = _callbacks(run_dir, world_size, progress, should_stop, cfg.trim_heap)
    args = _arguments(cfg, run_dir, bool(eval_examples))
    trainer = Trainer(
        model=lm.model,
        args=args,
        train_dataset=_ListDataset(examples),
        eval_dataset=_ListDataset(eval_examples) if eval_examples else None,
        data_collator=collator,
        callbacks=[log_writer, stop_check(), *extra],
    )
    from transformers.trainer_callback import (
        PrinterCallback,  # transformers is heavy: loaded only when a model runs
    )

    if lean is not None:  # the vision tower runs in the collator under the loop's own autocast
        lean.context = trainer.compute_loss_context_manager
    trainer.remove_callback(PrinterCallback)  # our LogWriter writes train.log; keep stdout quiet
    checkpoint = latest_checkpoint(run_dir) if resume else None
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    status = "cancelled" if stop_check.stopped else "succeeded"
    if trainer.is_world_process_zero():
        trainer.model.save_pretrained(str(run_dir / "adapter"))
        lm.processor.save_pretrained(str(run_dir / "adapter"))
        write_model_sampling(run_dir / "adapter", cfg.sampling)  # the adapter's default sampling is the run's
    metrics = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
    metrics["global_step"] = trainer.state.global_step
    metrics["resumed_from"] = checkpoint.name if checkpoint else None
    if lean is not None:  # videos through the vision tower (the plain path: every video of every step)
        metrics["vision_encodings"] = lean.store.encoded
        metrics["vision_cache_mb"] = round(lean.store.bytes / 2**20, 2)
    return Outcome(status=status, global_step=trainer.state.global_step, metrics=metrics)

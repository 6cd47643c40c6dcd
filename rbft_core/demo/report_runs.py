"""The demo report's steps: train (Stage I -> Stage II, or direct SFT), evaluate, mask — each recorded once.

Every step goes through the project's own functions (``training.train.train_stage``, ``training.evaluate.
evaluate_run``, ``demo.faithfulness`` -> ``inspection.masking.run_experiment``) with a typed spec, and its result
is appended to the report's ``ResultStore`` under the hash of that spec (a Stage II spec is keyed with its Stage I
key instead of the Stage-I run id, which differs between reports). A step whose key is stored is not run again,
so a killed report resumes where it stopped; a spec trains the same run alone or inside the report (train_stage
seeds every RNG before the LoRA weights are drawn), so a stored result stands for the spec.
"""

from __future__ import annotations

import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Callable, Optional

from sqlalchemy import select

from db.engine import session_scope
from db.models import Dataset, Video
from rbft_core.demo.faithfulness import faithfulness
from rbft_core.demo.report_store import ResultStore, spec_key
from rbft_core.errors import DataError
from rbft_core.specs.training import DEFAULT_TARGETS, EvaluateSpec, TrainSpec
from rbft_core.training.evaluate import evaluate_run
from rbft_core.training.train import train_stage

__all__ = ["ReportContext", "Chain", "Runner", "run_chain", "run_stage1", "run_zero_shot", "run_faithfulness",
           "stage_specs", "eval_spec", "chain_keys", "zero_shot_key", "faith_key", "ARMS", "TASKS"]

ARMS = ("direct SFT", "RB-FT")
Progress = Callable[[int, int, str], None]


@dataclass
class ReportContext:
    """Where a report's steps run and are recorded."""

    db_url: str
    model: str
    datasets: dict[str, str]  # role (main, curve-25, no-hint, ...) -> dataset name
    num_frames: int
    store: ResultStore
    key: str  # the world + base model + report recipe: part of every step's key
    recipe: dict = field(default_factory=dict)  # lora_rank, batch_size, stage1_epochs, stage1_lr, k_random
    progress: Optional[Progress] = None
    done: int = 0
    total: int = 0

    @property
    def main(self) -> str:
        return self.datasets["main"]

    def step(self, text: str) -> None:
        self.done += 1
        if self.progress:
            self.progress(min(self.done, self.total), self.total, text)

    def announce(self, text: str) -> None:
        if self.progress:
            self.progress(min(self.done, self.total), self.total, text)


@dataclass(frozen=True)
class Chain:
    """One trained arm: what it is (the label the tables select by) and where it is evaluated."""

    arm: str  # "direct SFT" | "RB-FT"
    lr: float
    epochs: float
    seed: int
    role: str = "main"  # which dataset trains it: main, curve-25, curve-50, no-hint
    source: str = "suggestions"  # RB-FT Stage-I rationales: suggestions | reviewed | mix
    human_share: float = 1.0
    splits: tuple[str, ...] = ("test",)

    def label(self) -> dict:
        fraction = int(self.role.split("-")[1]) / 100 if self.role.startswith("curve-") else 1.0
        return {"arm": self.arm, "lr": self.lr, "epochs": self.epochs, "seed": self.seed, "fraction": fraction,
                "source": self.source if self.arm == "RB-FT" else "-",
                "human_share": self.human_share if self.source == "mix" else None,
                "hint": self.role != "no-hint"}

    def describe(self) -> str:
        extra = "" if self.arm != "RB-FT" else f", {self.source}" + (f" {self.human_share:g}" if self.source == "mix" else "")
        return f"{self.arm} ({self.role}{extra}) lr {self.lr:g} x {self.epochs:g} ep, seed {self.seed}"


def stage_specs(ctx: ReportContext, chain: Chain) -> tuple[Optional[TrainSpec], TrainSpec]:
    """(Stage I or None, Stage II / direct SFT) specs of a chain; Stage II's ``init_from`` is filled when it runs."""
    # lm_head joins the LoRA targets: the tiny base model never answered with the label words, so their output
    # rows are untrained and LoRA on the decoder alone plateaus at p(label) ~ 1 % (measured).
    r = ctx.recipe
    common = dict(dataset=ctx.datasets[chain.role], model=ctx.model, num_frames=ctx.num_frames,
                  lora_rank=r["lora_rank"], lora_alpha=2 * r["lora_rank"], batch_size=r["batch_size"], seed=chain.seed,
                  warmup_ratio=0.1, lora_dropout=0.0, target_modules=DEFAULT_TARGETS + "|lm_head",
                  train_vision_merger=True)
    stage2 = TrainSpec(stage=2, kind="direct_sft" if chain.arm == "direct SFT" else "stage2", lr=chain.lr,
                       epochs=chain.epochs, **common)
    if chain.arm == "direct SFT":
        return None, stage2
    stage1 = TrainSpec(stage=1, lr=r["stage1_lr"], epochs=r["stage1_epochs"], rationale_source=chain.source,
                       human_share=chain.human_share, **common)
    return stage1, stage2


def eval_spec(ctx: ReportContext, split: str, **extra) -> EvaluateSpec:
    """Every evaluation of the report: the main dataset's ``split``, the run's own sampling, no answer text."""
    return EvaluateSpec(dataset=ctx.main, split=split, generate_answer=False, **extra)


def _train(ctx: ReportContext, spec: TrainSpec, key: str, label: dict, stage_key: Optional[str] = None) -> dict:
    found = ctx.store.get("train", key)
    if found:
        return found
    started = time.perf_counter()
    result = train_stage(ctx.db_url, spec.replace(run_id=""))
    if result.status != "succeeded":
        raise DataError(f"training {label} ended {result.status}; see {result.run_dir}/train.log")
    spec_dict = spec.replace(run_id=result.run_id).to_dict()
    return ctx.store.add({"type": "train", "key": key, "label": label, "stage": spec.stage, "run_id": result.run_id,
                          "spec": spec_dict, "stage1_key": stage_key, "metrics": result.metrics,
                          "seconds": round(time.perf_counter() - started, 2)})


def _evaluate(ctx: ReportContext, key: str, split: str, label: dict, *, run_id: str = "", model: str = "") -> dict:
    found = ctx.store.get("eval", key, split)
    if found:
        return found
    cfg = eval_spec(ctx, split, **({"model": model} if model else {}))
    started = time.perf_counter()
    report = evaluate_run(ctx.db_url, ctx.main, run_id=run_id or None, model=model or None, cfg=cfg)
    ids = _external_ids(ctx)
    preds = report.predictions
    keep = ("n", "accuracy", "macro_f1", "roc_auc", "per_class", "confusion_matrix", "sampling")
    return ctx.store.add({"type": "eval", "key": key, "split": split, "label": label, "run_id": report.run_id,
                          "spec": cfg.to_dict(), "metrics": {k: report.metrics.get(k) for k in keep},
                          "seconds": round(time.perf_counter() - started, 2),
                          "clips": [ids[p["video_id"]] for p in preds], "truth": [p["truth"] for p in preds],
                          "predicted": [p["predicted"] for p in preds],
                          "p_abnormal": [round(p["probs"].get("abnormal", 0.0), 6) for p in preds]})


def _external_ids(ctx: ReportContext) -> dict[int, str]:
    with session_scope(ctx.db_url) as s:
        return dict(s.execute(select(Video.id, Video.external_id).join(Dataset).where(Dataset.name == ctx.main)).all())


def chain_keys(ctx: ReportContext, chain: Chain) -> tuple[Optional[str], str]:
    """(Stage I key, Stage II key) of a chain: hashes of the specs (without run ids), the chain's role and context."""
    stage1, stage2 = stage_specs(ctx, chain)
    key1 = spec_key("train", stage1.to_dict(), ctx.key) if stage1 else None
    return key1, spec_key("train", stage2.to_dict(), key1, ctx.key)


def run_chain(ctx: ReportContext, chain: Chain) -> dict:
    """Train (or find) the chain's runs and evaluate the last one on each split; returns its train record."""
    stage1, stage2 = stage_specs(ctx, chain)
    key1, key2 = chain_keys(ctx, chain)
    label = chain.label()
    if stage1 is not None:
        first = _train(ctx, stage1, key1, {**label, "stage": 1})
        stage2 = stage2.replace(init_from=first["run_id"])
    record = _train(ctx, stage2, key2, label, key1)
    for split in chain.splits:
        _evaluate(ctx, key2, split, label, run_id=record["run_id"])
    return record


def run_stage1(ctx: ReportContext, chain: Chain) -> Optional[dict]:
    """Only the chain's Stage I (RB-FT), so every Stage I can train before the Stage-II grid needs it."""
    stage1, _ = stage_specs(ctx, chain)
    if stage1 is None:
        return None
    key1, _ = chain_keys(ctx, chain)
    return _train(ctx, stage1, key1, {**chain.label(), "stage": 1})


def zero_shot_key(ctx: ReportContext) -> str:
    return spec_key("zero-shot", eval_spec(ctx, "test", model=ctx.model).to_dict(), ctx.key)


def faith_key(ctx: ReportContext, train_key: str) -> str:
    return spec_key("faith", train_key, ctx.recipe["k_random"])


def run_zero_shot(ctx: ReportContext, chain: Optional[Chain] = None) -> dict:
    return _evaluate(ctx, zero_shot_key(ctx), "test", {"arm": "zero-shot"}, model=ctx.model)


def run_faithfulness(ctx: ReportContext, chain: Chain) -> dict:
    """Masking (critical object vs ``k_random`` same-size random boxes) and attention share of a trained chain."""
    _, train_key = chain_keys(ctx, chain)
    key = faith_key(ctx, train_key)
    found = ctx.store.get("faith", key)
    if not found:
        run_id = ctx.store.get("train", train_key)["run_id"]
        started = time.perf_counter()
        measured = faithfulness(ctx.db_url, ctx.main, run_id, k_random=ctx.recipe["k_random"])
        found = ctx.store.add({"type": "faith", "key": key, "label": chain.label(), **measured,
                               "seconds": round(time.perf_counter() - started, 2)})
    return found


TASKS = {"stage1": run_stage1, "chain": run_chain, "faith": run_faithfulness, "zero-shot": run_zero_shot}


def _worker_init(data_dir: str, threads: int) -> None:
    import torch  # torch is heavy: loaded only when a model runs
    from transformers.utils import logging as hf_logging  # transformers is heavy: loaded only when a model runs

    os.environ["RBFT_DATA_DIR"] = data_dir
    torch.set_num_threads(threads)
    warnings.filterwarnings("ignore")
    hf_logging.disable_progress_bar()  # one bar per model load would break the report's own progress bar


def _worker_task(fields: dict, task: str, chain: Optional[Chain]) -> None:
    """One step in a worker process: its own view of the results file, its records appended under the lock."""
    store = ResultStore(fields.pop("store_path"))
    ctx = ReportContext(**fields, store=store)
    TASKS[task](ctx, chain)


class Runner:
    """Runs steps in the report process (``workers`` 1) or in ``workers`` spawned processes, one thread each.

    A run's result does not depend on the process it ran in or on what ran there before (``train_stage`` seeds
    every RNG before drawing the LoRA weights; tests/core/test_demo_report_determinism.py), so steps that do not
    need each other run side by side; each appends its records itself, so a kill loses at most the steps running.
    """

    def __init__(self, ctx: ReportContext, *, workers: int, threads: int, data_dir: str):
        self.ctx, self.pool, self.workers = ctx, None, workers
        if workers > 1:
            self.pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_init,
                                            initargs=(data_dir, threads))

    def run(self, task: str, chains: list[Optional[Chain]], describe=None) -> None:
        ctx, describe = self.ctx, describe or (lambda c: c.describe() if c else task)
        if self.pool is None or len(chains) < 2:
            for chain in chains:
                ctx.announce(f"{task}: {describe(chain)}")
                TASKS[task](ctx, chain)
                ctx.step(f"{task}: {describe(chain)}")
            return
        fields = {"db_url": ctx.db_url, "model": ctx.model, "datasets": dict(ctx.datasets), "num_frames": ctx.num_frames,
                  "key": ctx.key, "recipe": dict(ctx.recipe), "store_path": str(ctx.store.path)}
        ctx.announce(f"{task}: {len(chains)} steps on {self.workers} processes")
        futures = {self.pool.submit(_worker_task, dict(fields), task, chain): chain for chain in chains}
        try:
            for future in as_completed(futures):
                future.result()
                ctx.store.reload()
                ctx.step(f"{task}: {describe(futures[future])}")
        finally:
            ctx.store.reload()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

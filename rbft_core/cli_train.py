"""``rbft`` training, evaluation and job commands: train, pipeline, evaluate, compare, runs, jobs, stop.

Multi-process training: ``--nproc-per-node N [--nnodes M --node-rank R --master-addr A --master-port P]``
re-launches the same ``rbft train --config runs/<id>/config.yaml`` under ``torch.distributed.run``
(DDP; gloo on CPU, nccl on CUDA). ``--deepspeed ds.json`` and ``--fsdp "full_shard auto_wrap"`` pass
through to ``TrainingArguments``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["register"]

_TRAIN_FLAGS = {
    # flag: (TrainConfig field, type)
    "--frames": ("num_frames", int),
    "--fps": ("fps", float),
    "--max-frames": ("max_frames", int),
    "--max-pixels": ("max_pixels", int),
    "--lora-rank": ("lora_rank", int),
    "--lora-alpha": ("lora_alpha", int),
    "--lora-dropout": ("lora_dropout", float),
    "--target-modules": ("target_modules", str),
    "--lr": ("lr", float),
    "--epochs": ("epochs", float),
    "--batch-size": ("batch_size", int),
    "--grad-accum": ("grad_accum", int),
    "--warmup-ratio": ("warmup_ratio", float),
    "--weight-decay": ("weight_decay", float),
    "--max-steps": ("max_steps", int),
    "--save-steps": ("save_steps", int),
    "--seed": ("seed", int),
    "--rationale-source": ("rationale_source", str),
    "--human-share": ("human_share", float),
    "--dtype": ("dtype", str),
    "--device": ("device", str),
    "--deepspeed": ("deepspeed", str),
    "--fsdp": ("fsdp", str),
    "--split": ("split", str),
}


def _add_train_flags(p: argparse.ArgumentParser, prefix: str = "") -> None:
    for flag, (dest, kind) in _TRAIN_FLAGS.items():
        p.add_argument(flag.replace("--", f"--{prefix}", 1), dest=f"{prefix.replace('-', '_')}{dest}", type=kind,
                       default=None)
    p.add_argument(f"--{prefix}gradient-checkpointing", dest=f"{prefix.replace('-', '_')}gradient_checkpointing",
                   action=argparse.BooleanOptionalAction, default=None)
    p.add_argument(f"--{prefix}train-vision-merger", dest=f"{prefix.replace('-', '_')}train_vision_merger",
                   action=argparse.BooleanOptionalAction, default=None)


def _overrides(args: argparse.Namespace, prefix: str = "") -> dict:
    """TrainConfig values given on the command line (only the tuning flags, never dataset/model)."""
    names = [dest for dest, _ in _TRAIN_FLAGS.values()] + ["gradient_checkpointing", "train_vision_merger"]
    values = {name: getattr(args, f"{prefix}{name}", None) for name in names}
    return {name: value for name, value in values.items() if value is not None}


def _add_dist_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nproc-per-node", type=int, default=1, help="processes on this node (torchrun)")
    p.add_argument("--nnodes", type=int, default=1)
    p.add_argument("--node-rank", type=int, default=0)
    p.add_argument("--master-addr", default="127.0.0.1")
    p.add_argument("--master-port", type=int, default=29500)


def _progress(args):
    from rbft_core.cli import _tqdm_progress

    return _tqdm_progress(args.command, "step")


def cmd_train(args: argparse.Namespace) -> int:
    from db.engine import init_db
    from rbft_core.errors import ConfigError
    from rbft_core.train import TrainConfig, load_config, runs_root, save_config, train_stage

    init_db(args.db)
    if args.config:
        cfg = load_config(args.config)
    elif args.resume and args.run_id:
        cfg = load_config(runs_root() / args.run_id / "config.yaml")
    else:
        if not args.dataset or not args.model:
            raise ConfigError("give DATASET and --model (or --config runs/<id>/config.yaml)")
        cfg = TrainConfig(dataset=args.dataset, stage=args.stage, model=args.model, init_from=args.init_from or "",
                          continue_adapter=args.continue_adapter, run_id=args.run_id or "", **_overrides(args))
    from rbft_core.models import check_model_source

    check_model_source(cfg.model)
    if (args.nproc_per_node > 1 or args.nnodes > 1) and "LOCAL_RANK" not in os.environ:
        rc = _launch_distributed(args, cfg)
        if rc == 0 and args.evaluate:
            _evaluate_after(args, cfg)
        return rc
    if args.evaluate:
        from rbft_core.jobs import set_phase

        set_phase(0, 2, f"train {cfg.kind}")
    result = train_stage(args.db, cfg, resume=args.resume)
    if args.evaluate and result.status == "succeeded" and int(os.environ.get("RANK", "0")) == 0:
        _evaluate_after(args, cfg)
    payload = {"run_id": result.run_id, "run_dir": str(result.run_dir), "status": result.status,
               "global_step": result.global_step, "train_loss": result.train_loss}
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(payload) if args.json else
              f"run {result.run_id} {result.status} after {result.global_step} steps (loss {result.train_loss}); {result.run_dir}")
    return 0 if result.status in ("succeeded", "cancelled") else 1


def _evaluate_after(args, cfg) -> None:
    """``rbft train --evaluate``: the trained run on the test split, with the frames it trained on."""
    from rbft_core.evaluate import EvalConfig, evaluate_run
    from rbft_core.jobs import set_phase

    set_phase(1, 2, f"evaluate {cfg.kind}")
    update, close = _progress(args)
    try:
        report = evaluate_run(args.db, cfg.dataset, run_id=cfg.run_id, progress=None if args.json else update,
                              cfg=EvalConfig(num_frames=cfg.num_frames, fps=cfg.fps, max_frames=cfg.max_frames,
                                             max_pixels=cfg.max_pixels))
    finally:
        close()
    if not args.json:
        m = report.metrics
        print(f"evaluated {cfg.run_id} on {m['n']} test videos: accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}")


def _launch_distributed(args, cfg) -> int:
    from rbft_core.train import new_run_id, runs_root, save_config

    cfg.run_id = cfg.run_id or new_run_id(cfg.kind)
    run_dir = runs_root() / cfg.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir)
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={args.nproc_per_node}",
               f"--nnodes={args.nnodes}", f"--node-rank={args.node_rank}", f"--master-addr={args.master_addr}",
               f"--master-port={args.master_port}", "-m", "rbft_core.cli", "train", "--config", str(run_dir / "config.yaml")]
    if args.resume:
        command.append("--resume")
    if args.json:
        command.append("--json")
    return subprocess.call(command, env=dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1")))


def cmd_pipeline(args: argparse.Namespace) -> int:
    from db.engine import init_db
    from rbft_core.errors import ConfigError
    from rbft_core.evaluate import EvalConfig
    from rbft_core.generate import GenerateConfig
    from rbft_core.models import check_model_source
    from rbft_core.pipeline import run_pipeline
    from rbft_core.train import TrainConfig

    init_db(args.db)
    if args.config:
        stage1, stage2, with_baselines, label_hint = _pipeline_config(args.config)
    else:
        if not args.dataset or not args.model:
            raise ConfigError("give DATASET and --model (or --config pipeline.yaml, as the Train tab shows it)")
        common = _overrides(args)
        stage1 = TrainConfig(dataset=args.dataset, stage=1, model=args.model, **{**common, **_overrides(args, "s1_")})
        stage2 = TrainConfig(dataset=args.dataset, stage=2, kind="stage2", model=args.model,
                             **{**common, **_overrides(args, "s2_")})
        with_baselines, label_hint = args.with_baselines, args.label_hint
    check_model_source(stage1.model)
    gen = GenerateConfig(num_frames=stage1.num_frames, max_pixels=stage1.max_pixels, label_hint=label_hint)
    ev = EvalConfig(num_frames=stage2.num_frames, fps=stage2.fps, max_pixels=stage2.max_pixels)
    update, close = _progress(args)
    try:
        result = run_pipeline(args.db, stage1, stage2, gen_cfg=gen, eval_cfg=ev, with_baselines=with_baselines,
                              progress=None if args.json else update)
    finally:
        close()
    if args.json:
        print(json.dumps(result, default=str))
    else:
        print(f"pipeline {result['status']}: " + ", ".join(f"{k} {v}" for k, v in result["runs"].items() if k != "generate"))
        if "comparison" in result:
            print(_table(result["comparison"]))
    return 0


def _pipeline_config(path: str):
    """A pipeline YAML (``stage1:``, ``stage2:``, ``with_baselines``, ``label_hint``) -> validated configs."""
    import yaml

    from rbft_core.errors import ConfigError
    from rbft_core.train import TrainConfig

    try:
        values = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read pipeline config {path}: {exc}") from None
    if not isinstance(values, dict) or not {"stage1", "stage2"} <= set(values):
        raise ConfigError(f"pipeline config {path} needs `stage1:` and `stage2:` sections (see the Train tab's "
                          "Show command)")
    stage1 = TrainConfig.from_dict({**values["stage1"], "run_id": ""})
    stage2 = TrainConfig.from_dict({**values["stage2"], "run_id": "", "stage": 2, "kind": "stage2"})
    return stage1, stage2, bool(values.get("with_baselines", False)), bool(values.get("label_hint", True))


def _table(comparison: dict) -> str:
    labels = comparison["labels"]
    head = f"{'model':<12} {'accuracy':>9} {'macro-F1':>9} " + " ".join(f"{'F1 ' + l:>12}" for l in labels)
    lines = [head]
    for row in comparison["rows"]:
        lines.append(f"{row['name']:<12} {row['accuracy']:>9.4f} {row['macro_f1']:>9.4f} "
                     + " ".join(f"{row.get('f1_' + l, 0.0):>12.4f}" for l in labels))
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from db.engine import init_db
    from rbft_core.evaluate import EvalConfig, evaluate_run

    init_db(args.db)
    cfg = EvalConfig(split=args.split, num_frames=args.frames, fps=args.fps, batch_size=args.batch_size)
    report = evaluate_run(args.db, args.dataset, run_id=args.run, model=args.model, cfg=cfg)
    m = report.metrics
    print(json.dumps(report.to_json(), default=str) if args.json else
          f"run {report.run_id} ({report.kind}) on {m['n']} {args.split} videos: accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from db.engine import init_db
    from rbft_core.evaluate import compare_runs

    init_db(args.db)
    result = compare_runs(args.db, args.dataset, args.split)
    print(json.dumps(result, default=str) if args.json else _table(result) + f"\nwritten: {result['csv']}, {result['json']}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from db import job_queries as jq
    from db.engine import init_db, session_scope

    init_db(args.db)
    with session_scope(args.db) as s:
        rows = [{"run_id": r.id, "kind": r.kind, "stage": r.stage, "status": r.status, "parent": r.parent_run_id,
                 "base_model": r.base_model, "run_dir": r.run_dir, "created_at": r.created_at, "ended_at": r.ended_at,
                 "metrics": r.metrics} for r in jq.list_runs(s)]
    if args.json:
        print(json.dumps(rows, default=str))
    else:
        for r in rows or [{"run_id": "no runs yet", "kind": "", "status": "", "parent": ""}]:
            print(f"{r['run_id']:<36} {r['kind']:<10} {r['status']:<10} {r.get('parent') or ''}")
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    from db.engine import init_db
    from rbft_core.jobs import list_job_rows, recover_jobs

    init_db(args.db)
    recover_jobs(args.db)
    rows = list_job_rows(args.db)
    if args.json:
        print(json.dumps(rows, default=str))
    else:
        for r in rows:
            print(f"{r['id']:>5} {r['kind']:<10} {r['status']:<11} {100 * r['progress']:5.1f}% {r['progress_text'][:60]}"
                  + (f"  error: {r['error']}" if r["error"] else ""))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from db.engine import init_db
    from rbft_core.jobs import stop_job

    init_db(args.db)
    print(f"job {args.job_id}: {stop_job(args.db, args.job_id, timeout_s=args.timeout_s)}")
    return 0


def register(sub, common) -> None:
    p = sub.add_parser("train", help="train one stage (LoRA): 1 = rationales, 2 = labels")
    p.add_argument("dataset", nargs="?")
    p.add_argument("--stage", type=int, default=1, choices=[1, 2])
    p.add_argument("--model", help="base model folder or hub id")
    p.add_argument("--init-from", help="Stage II: the Stage-I run merged into the base (omit for direct SFT)")
    p.add_argument("--continue-adapter", action="store_true", help="Stage II: keep training the Stage-I adapter")
    p.add_argument("--config", help="runs/<id>/config.yaml: rerun exactly that configuration")
    p.add_argument("--run-id", help="name of the run folder (default: time-kind-random)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint of --run-id / --config")
    p.add_argument("--evaluate", action="store_true", help="evaluate the trained run on the test split afterwards")
    p.add_argument("--json", action="store_true")
    _add_train_flags(p)
    _add_dist_flags(p)
    common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("pipeline", help="generate missing rationales -> Stage I -> Stage II -> evaluate")
    p.add_argument("dataset", nargs="?")
    p.add_argument("--model")
    p.add_argument("--config", help="a pipeline YAML (stage1: / stage2: sections), as the Train tab shows it")
    p.add_argument("--with-baselines", action="store_true", help="also zero-shot and direct SFT")
    p.add_argument("--label-hint", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--json", action="store_true")
    _add_train_flags(p)
    _add_train_flags(p, "s1-")
    _add_train_flags(p, "s2-")
    common(p)
    p.set_defaults(func=cmd_pipeline)

    p = sub.add_parser("evaluate", help="evaluate a run (--run) or a base model zero-shot (--model)")
    p.add_argument("dataset")
    p.add_argument("--run")
    p.add_argument("--model")
    p.add_argument("--split", default="test")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--fps", type=float, default=0.0)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--json", action="store_true")
    common(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("compare", help="zero-shot / direct SFT / Stage I / RB-FT table (CSV + JSON)")
    p.add_argument("dataset")
    p.add_argument("--split", default="test")
    p.add_argument("--json", action="store_true")
    common(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("runs", help="list training and evaluation runs")
    p.add_argument("--json", action="store_true")
    common(p)
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("jobs", help="list background jobs (marks lost ones interrupted)")
    p.add_argument("--json", action="store_true")
    common(p)
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("stop", help="stop a background job: graceful, then its process group is killed")
    p.add_argument("job_id", type=int)
    p.add_argument("--timeout-s", type=float, default=30.0)
    common(p)
    p.set_defaults(func=cmd_stop)

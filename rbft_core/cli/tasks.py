"""``rbft`` task commands: each builds a spec from its flags and runs it through the one executor.

    rbft run SPEC.yaml          any task spec (what the app's jobs run; a run folder's spec.yaml)
    rbft import / generate / train / pipeline / evaluate / mask-experiment / attention / export / export-model

The flags of each command are derived from its spec's fields (``rbft_core.specs.flags``): the help text,
default, unit and choices come from the dataclass, so the CLI and the spec cannot drift apart.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

from tqdm import tqdm

from rbft_core.errors import ConfigError
from rbft_core.inspection.mask_reports import TABLE_COLUMNS, table_rows
from rbft_core.jobs.execute import TaskHooks, execute
from rbft_core.models.model_sampling import fill_sampling, sampling_plan
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
    load_spec,
)
from rbft_core.specs.flags import add_spec_flags, spec_values
from rbft_core.specs.sampling import SAMPLING_FIELDS
from rbft_core.training.train import load_run_spec, new_run_id, runs_root

__all__ = ["register", "TqdmProgress", "run_spec"]

# Sampling flags a user leaves out take the model folder's value (rbft_core.models.model_sampling).
_GENERATE_SAMPLING = ("num_frames", "max_pixels")
# Pipeline stages share every TrainSpec flag (--lr applies to both; --s1-lr / --s2-lr to one stage), except these.
_NOT_PIPELINE = ("dataset", "stage", "kind", "run_id", "init_from", "continue_adapter", "evaluate")


class TqdmProgress:
    """A terminal progress bar driven by ``progress(done, total, text)`` callbacks."""

    def __init__(self, desc: str, unit: str):
        self.desc, self.unit, self.bar = desc, unit, None

    def __call__(self, done: float, total: float, text: str = "") -> None:
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, file=sys.stderr, dynamic_ncols=True)
        self.bar.total = total
        self.bar.update(done - self.bar.n)
        if text:
            self.bar.set_postfix_str(text[-40:], refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_spec(spec: Spec, args: argparse.Namespace, *, resume: bool = False) -> dict[str, Any]:
    """Execute ``spec`` with a terminal bar (none with --json); prints nothing itself."""
    bar = None if getattr(args, "json", False) else TqdmProgress(spec.task, "step")
    try:
        return execute(spec, args.db, TaskHooks(progress=bar, resume=resume))
    finally:
        if bar is not None:
            bar.close()


def _print(result: dict[str, Any], args: argparse.Namespace, human: Callable[[dict], str]) -> int:
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    print(json.dumps(result, ensure_ascii=False, default=str) if args.json else human(result))
    return 0 if result.get("status") in ("succeeded", "cancelled", None) else 1


def _human(result: dict[str, Any]) -> str:
    """A task result in words (each task's main figures)."""
    if "summary" in result:
        counts = result.get("counts", {})
        return result["summary"] + "".join(f"\n  {k}: {v}" for k, v in sorted(counts.items()))
    if "comparison" in result or "runs" in result and isinstance(result["runs"], dict):
        runs = ", ".join(f"{k} {v}" for k, v in result["runs"].items() if k != "generate")
        return f"pipeline {result['status']}: {runs}" + ("\n" + comparison_table(result["comparison"])
                                                          if "comparison" in result else "")
    if "global_step" in result:
        text = (f"run {result['run_id']} {result['status']} after {result['global_step']} steps "
                f"(loss {result['train_loss']}); {result['run_dir']}")
        if "eval" in result:
            m = result["eval"]
            text += f"\nevaluated on {m['n']} test videos: accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}"
        return text
    if "metrics" in result and "kind" in result:
        m = result["metrics"]
        note = f" (sampling override {m['sampling_override']})" if m.get("sampling_override") else ""
        return (f"run {result['run_id']} ({result['kind']}) on {m['n']} {result['split']} videos: accuracy "
                f"{m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}{note}")
    if "generated" in result:
        status = ", ".join(f"{k} {v}" for k, v in result["parse_status"].items())
        lines = [f"{result['generated']} suggestions written ({status}); {result['already_done']} videos already "
                 f"had one from this model and prompt {result['prompt_version']}"]
        return "\n".join(lines + [f"  skipped {f['path']}: {f['error']}" for f in result["failed"]])
    if "models" in result:
        rows = ["  ".join(TABLE_COLUMNS), *("  ".join(str(v) for v in r) for r in table_rows(result["models"]))]
        return "\n".join(rows + [f"written: {result['files']['json']}, {result['files']['csv']}, "
                                 f"{result['files']['png']}"])
    if "written" in result:
        return "\n".join(f"{w['video']}: {w['png']}" + (f", {w['mp4']}" if "mp4" in w else "") for w in result["written"])
    if "zip" in result:
        counts = result["counts"]
        stages = "; ".join(f"{k}: " + ", ".join(f"{n} {s}" for s, n in counts[k].items())
                           for k in ("stage1", "stage2") if counts.get(k))
        lines = [f"exported {counts['videos']} videos ({stages}) to {result['folder']}", f"zip: {result['zip']}"]
        return "\n".join(lines + [f"  missing on disk (left out): {m['path']}" for m in result["missing"]])
    if "chain" in result:
        chain = " -> ".join(link["run_id"] for link in result["chain"])
        return f"{'merged model' if result['merged'] else 'adapter'} (chain {chain}) written to {result['out']}"
    return json.dumps(result, default=str)


def comparison_table(comparison: dict) -> str:
    labels = comparison["labels"]
    head = f"{'model':<12} {'accuracy':>9} {'macro-F1':>9} " + " ".join(f"{'F1 ' + l:>12}" for l in labels)
    lines = [head]
    for row in comparison["rows"]:
        lines.append(f"{row['name']:<12} {row['accuracy']:>9.4f} {row['macro_f1']:>9.4f} "
                     + " ".join(f"{row.get('f1_' + l, 0.0):>12.4f}" for l in labels))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- commands
def cmd_run(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    if args.resume:
        if not isinstance(spec, TrainSpec):
            raise ConfigError(f"--resume continues a training run; {args.spec} is a {spec.task} spec, run it without --resume")
        spec = spec.replace(run_id=spec.run_id or _run_folder_of(args.spec))
    return _print(run_spec(spec, args, resume=args.resume), args, _human)


def _run_folder_of(path: str) -> str:
    """The run id of ``runs/<id>/spec.yaml`` (a run's spec is saved with an empty run id)."""
    folder = Path(path).resolve().parent
    if not (folder / "trainer_log.jsonl").exists() and not (folder / "checkpoints").exists():
        raise ConfigError(f"--resume needs a run folder's spec.yaml (runs/<id>/spec.yaml); {path} is not in one")
    return folder.name


def with_model_sampling(values: dict[str, Any], names: tuple[str, ...] = SAMPLING_FIELDS, *, what: str = "sampling",
                        json_output: bool = False) -> dict[str, Any]:
    """``values`` with the sampling fields not given on the command line taken from the model folder; prints
    the sampling and where each value came from (on stderr with ``--json``, so stdout stays one object)."""
    filled, found = fill_sampling(values, values.get("model"), names)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"{what}: {sampling_plan(filled, values, found, names)}", file=sys.stderr if json_output else sys.stdout,
              flush=True)
    return filled


def cmd_generate(args: argparse.Namespace) -> int:
    values = with_model_sampling({"dataset": args.dataset, **spec_values(args, GenerateSpec)}, _GENERATE_SAMPLING,
                                 json_output=args.json)
    return _print(run_spec(GenerateSpec.from_dict(values), args), args, _human)


def _simple(cls: type[Spec], *identity: str) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        values = {**{name: getattr(args, name) for name in identity}, **spec_values(args, cls)}
        if cls is EvaluateSpec and values.get("model") and not values.get("run"):  # zero-shot: the model's sampling
            values = with_model_sampling(values, what="zero-shot sampling", json_output=args.json)
        spec = cls.from_dict(values)
        return _print(run_spec(spec, args), args, _human)

    return command


def cmd_train(args: argparse.Namespace) -> int:
    if args.config:
        spec = load_run_spec(args.config)
    elif args.resume and args.run_id:
        spec = load_run_spec(runs_root() / args.run_id / "spec.yaml").replace(run_id=args.run_id)
    else:
        if not args.dataset or not args.model:
            raise ConfigError("give DATASET and --model (or --config runs/<id>/spec.yaml)")
        given = {"dataset": args.dataset, **spec_values(args, TrainSpec)}
        spec = TrainSpec.from_dict(with_model_sampling(given, json_output=args.json))
    if args.run_id and not spec.run_id:
        spec = spec.replace(run_id=args.run_id)
    if (args.nproc_per_node > 1 or args.nnodes > 1) and "LOCAL_RANK" not in os.environ:
        return _launch_distributed(args, spec)
    return _print(run_spec(spec, args, resume=args.resume), args, _human)


def _launch_distributed(args: argparse.Namespace, spec: TrainSpec) -> int:
    """Every rank runs the same spec (with its run id fixed) under ``torch.distributed.run``."""
    spec = spec.replace(run_id=spec.run_id or new_run_id(spec.kind))
    launch = spec.write(runs_root() / spec.run_id / "launch-spec.yaml")
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={args.nproc_per_node}",
               f"--nnodes={args.nnodes}", f"--node-rank={args.node_rank}", f"--master-addr={args.master_addr}",
               f"--master-port={args.master_port}", "-m", "rbft_core.cli.main", "run", str(launch)]
    command += ["--resume"] if args.resume else []
    command += ["--json"] if args.json else []
    return subprocess.call(command, env=dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1")))


def pipeline_spec_from_args(args: argparse.Namespace) -> PipelineSpec:
    common = {"dataset": args.dataset, **spec_values(args, TrainSpec)}  # both stages; --s1-x / --s2-x: one
    stage1, stage2 = (with_model_sampling({**common, **spec_values(args, TrainSpec, prefix=f"s{n}-"), "stage": n},
                                          what=f"Stage {'I' * n} sampling", json_output=args.json) for n in (1, 2))
    return PipelineSpec.from_dict({"stage1": stage1, "stage2": stage2, **spec_values(args, PipelineSpec)})


def cmd_pipeline(args: argparse.Namespace) -> int:
    if args.config:
        spec = load_spec(args.config)
        if not isinstance(spec, PipelineSpec):
            raise ConfigError(f"{args.config} is a {spec.task} spec; run it with `rbft run {args.config}`")
    else:
        if not args.dataset or not args.model:
            raise ConfigError("give DATASET and --model (or --config pipeline.yaml, as the Train tab shows it)")
        spec = pipeline_spec_from_args(args)
    return _print(run_spec(spec, args), args, _human)


# --------------------------------------------------------------------------------------------- parser
def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as one JSON object (default: off)")


def _dist_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("multi-process training (torch.distributed.run)")
    g.add_argument("--nproc-per-node", type=int, default=1, help="processes on this node (default: 1)")
    g.add_argument("--nnodes", type=int, default=1, help="nodes in the job (default: 1)")
    g.add_argument("--node-rank", type=int, default=0, help="rank of this node (default: 0)")
    g.add_argument("--master-addr", default="127.0.0.1", help="address of node 0 (default: 127.0.0.1)")
    g.add_argument("--master-port", type=int, default=29500, help="port on node 0 (default: 29500)")


def register(sub, common) -> None:
    p = sub.add_parser("run", help="run a task spec file (what the app's jobs run; a run's spec.yaml)")
    p.add_argument("spec", help="a spec YAML file with a `task:` line")
    p.add_argument("--resume", action="store_true", help="training: continue the run from its newest checkpoint "
                   "(default: off)")
    _json_flag(p)
    common(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("import", help="import labelled videos into a dataset")
    p.add_argument("dataset", help="dataset name (created when missing)")
    p.add_argument("source", help="folder with the videos (one subfolder per label for --format folder)")
    add_spec_flags(p, ImportSpec)
    _json_flag(p)
    common(p)
    p.set_defaults(func=_simple(ImportSpec, "dataset", "source"))

    p = sub.add_parser("generate", help="have the model write a rationale per video in the dataset's dimensions")
    p.add_argument("dataset", help="dataset name")
    add_spec_flags(p, GenerateSpec, from_model=_GENERATE_SAMPLING)
    _json_flag(p)
    common(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("train", help="train one stage (LoRA): 1 = rationales, 2 = labels")
    p.add_argument("dataset", nargs="?", help="dataset name")
    p.add_argument("--config", help="a training spec file (runs/<id>/spec.yaml) to train again (default: none)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint of --run-id / "
                   "--config (default: off)")
    add_spec_flags(p, TrainSpec, from_model=SAMPLING_FIELDS)
    _dist_flags(p)
    _json_flag(p)
    common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("pipeline", help="generate missing rationales -> Stage I -> Stage II -> evaluate")
    p.add_argument("dataset", nargs="?", help="dataset name")
    p.add_argument("--config", help="a pipeline spec file, as the Train tab shows it (default: none)")
    add_spec_flags(p, PipelineSpec)
    add_spec_flags(p, TrainSpec, exclude=_NOT_PIPELINE, group_title="both stages", from_model=SAMPLING_FIELDS)
    add_spec_flags(p, TrainSpec, prefix="s1-", exclude=(*_NOT_PIPELINE, "model"), group_title="Stage I only",
                   from_model=SAMPLING_FIELDS)
    add_spec_flags(p, TrainSpec, prefix="s2-", exclude=(*_NOT_PIPELINE, "model"), group_title="Stage II only",
                   from_model=SAMPLING_FIELDS)
    _json_flag(p)
    common(p)
    p.set_defaults(func=cmd_pipeline)

    for name, cls, identity, helptext in (
        ("evaluate", EvaluateSpec, "dataset", "evaluate a run (--run) or a base model zero-shot (--model)"),
        ("mask-experiment", MaskSpec, "dataset", "mask the critical object vs random boxes, per run"),
        ("attention", AttentionSpec, "dataset", "attention heatmaps of a run over videos (PNGs, heatmap mp4)"),
        ("export", ExportSpec, "dataset", "export a curated dataset (LLaMA-Factory, ms-swift, HF, CSV) as a zip"),
        ("export-model", ExportModelSpec, "run", "export a run's peft adapter, or the merged model (--merged)"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument(identity, help="run id" if identity == "run" else "dataset name")
        add_spec_flags(p, cls)
        _json_flag(p)
        common(p)
        p.set_defaults(func=_simple(cls, identity))

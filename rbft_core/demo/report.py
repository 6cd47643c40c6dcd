"""``rbft demo report``: the demo's experiment, as a reviewer would accept it -> docs/demo-results.{json,md}.

1. Data: a larger world (train / val / test, stratified per label) rendered with the demo's geometry, so the
   built base model is reused (``report_data``).
2. Tuning: each trained arm (direct SFT; RB-FT Stage II on the model's own rationales) picks lr and epochs from
   a small grid by validation accuracy; the test split is never used to choose.
3. The chosen recipe of each arm over every seed on the test split; paired statistics (``report_tables``).
4. The paper's questions: learning curve, rationale source, label hint, faithfulness (masking, attention).
Every step runs through the project's own functions with a typed spec and is appended to ``results.jsonl`` in
the report's work folder under its spec hash (``report_runs``): a killed report continues where it stopped.
The page is rendered from the JSON alone (``rerender``; ``rbft demo report --from docs/demo-results.json``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Optional

from db.engine import init_db
from rbft_core.demo import report_data as rd
from rbft_core.demo.prepare import DEMO_DATASET, DemoConfig, build_demo
from rbft_core.demo.render import WorldSpec
from rbft_core.demo.report_md import render_markdown
from rbft_core.demo.report_runs import (
    ARMS,
    Chain,
    ReportContext,
    Runner,
    chain_keys,
    faith_key,
    zero_shot_key,
)
from rbft_core.demo.report_store import ResultStore, spec_key
from rbft_core.demo.report_tables import build_tables, select_config
from rbft_core.errors import ConfigError

__all__ = ["ReportConfig", "run_report", "rerender", "assemble", "dumps", "report_world_spec", "ORACLE_REVIEWER",
           "oracle_review"]

ORACLE_REVIEWER = rd.ORACLE_REVIEWER
oracle_review = rd.oracle_review
Progress = Callable[[int, int, str], None]


@dataclass
class ReportConfig:
    """What ``rbft demo report`` runs (``ReportConfig()`` is the full report, ``ReportConfig.fast()`` the smoke run).

    Args:
        seeds: training seeds of the main comparison and the faithfulness tables (LoRA init and data order).
        select_seeds: seeds whose validation accuracy picks each arm's lr and epochs.
        ablation_seeds: seeds of the learning curve, rationale-source and label-hint tables (default: the first
            three seeds).
        grid_lr / grid_epochs: the tuning grid of both arms (direct SFT, RB-FT Stage II).
        stage1_epochs / stage1_lr: RB-FT Stage I (rationales), fixed.
        lora_rank / batch_size: the LoRA recipe of every arm.
        num_clips / val_fraction / test_fraction: the report's world (stratified per label).
        fractions: the learning curve's shares of the training labels.
        oracle / mix_share: also run RB-FT on simulated-expert-reviewed rationales and on a mix with this share.
            (The main rationales are written with the label hint, the authors' default; the ablation without.)
        k_random: same-size random-box trials per clip in the masking experiment.
        threads: torch CPU threads per process (results do not depend on it).
        workers: processes that run independent steps side by side (2 on 2 cores; results do not depend on it).
    """

    name: str = "full"
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    select_seeds: tuple[int, ...] = (0,)
    ablation_seeds: Optional[tuple[int, ...]] = None
    grid_lr: tuple[float, ...] = (2e-3, 4e-3)
    grid_epochs: tuple[float, ...] = (6.0, 12.0)
    stage1_epochs: float = 3.0
    stage1_lr: float = 2e-3
    lora_rank: int = 16
    batch_size: int = 8
    num_clips: int = 500
    val_fraction: float = 0.14
    test_fraction: float = 0.4
    fractions: tuple[float, ...] = (0.25, 0.5, 1.0)
    oracle: bool = True
    mix_share: float = 0.5
    k_random: int = 5
    generate_tokens: int = 96
    threads: int = 1
    workers: int = 2

    def __post_init__(self) -> None:
        self.seeds = tuple(int(s) for s in self.seeds)
        self.select_seeds = tuple(int(s) for s in self.select_seeds)
        self.ablation_seeds = tuple(int(s) for s in self.ablation_seeds) if self.ablation_seeds else self.seeds[:3]
        self.grid_lr, self.grid_epochs = tuple(map(float, self.grid_lr)), tuple(map(float, self.grid_epochs))
        self.fractions = tuple(sorted(float(f) for f in self.fractions))
        if not self.seeds:
            raise ConfigError("seeds must name at least one seed, e.g. 0,1,2,3,4")
        if not set(self.ablation_seeds) <= set(self.seeds):
            raise ConfigError(f"ablation_seeds {self.ablation_seeds} must be among seeds {self.seeds}")
        if not self.grid_lr or not self.grid_epochs or min(self.grid_lr + self.grid_epochs) <= 0:
            raise ConfigError("grid_lr and grid_epochs must list values > 0")
        if self.stage1_epochs <= 0 or self.stage1_lr <= 0:
            raise ConfigError("stage1_epochs and stage1_lr must be > 0")
        if not self.fractions or self.fractions[-1] != 1.0 or self.fractions[0] <= 0:
            raise ConfigError(f"fractions must be within (0, 1] and end with 1.0, got {self.fractions}")
        if not (0 < self.val_fraction and 0 < self.test_fraction and self.val_fraction + self.test_fraction < 1):
            raise ConfigError("val_fraction and test_fraction must be > 0 and leave clips to train on")
        if self.workers < 1 or self.threads < 1:
            raise ConfigError("workers and threads must be >= 1")
        if self.k_random < 1:
            raise ConfigError(f"k_random must be >= 1, got {self.k_random}")

    @classmethod
    def fast(cls, **changes) -> "ReportConfig":
        """The smoke run the tests use: the fast demo model, a small world, fewer seeds and grid points."""
        return cls(**{**dict(name="fast", seeds=(0, 1), select_seeds=(0,), ablation_seeds=(0,), grid_lr=(2e-3, 4e-3),
                             grid_epochs=(3.0,), stage1_epochs=2.0, num_clips=64, val_fraction=0.25,
                             test_fraction=0.375, k_random=5, generate_tokens=64), **changes})

    @classmethod
    def named(cls, name: str, **changes) -> "ReportConfig":
        return cls.fast(**changes) if name == "fast" else cls(**changes)

    def grid(self) -> list[tuple[float, float]]:
        return [(lr, ep) for lr in self.grid_lr for ep in self.grid_epochs]

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))


def report_world_spec(demo: DemoConfig, rep: ReportConfig) -> WorldSpec:
    """The demo's world geometry (so its base model is reused) with the report's clip count and test share."""
    return replace(demo.world, num_clips=rep.num_clips, test_fraction=rep.test_fraction)


def _plan(rep: ReportConfig, chosen: Optional[dict] = None) -> dict[str, list[Chain]]:
    """Every chain of the report; the final and ablation chains use each arm's chosen (lr, epochs)."""
    grid = [Chain(arm, lr, ep, seed, splits=("val",)) for seed in rep.select_seeds for arm in ARMS
            for lr, ep in rep.grid()]
    if chosen is None:  # only the count matters before the selection
        chosen = {arm: rep.grid()[0] for arm in ARMS}
    sft, rb = chosen["direct SFT"], chosen["RB-FT"]
    final = [c for seed in rep.seeds for c in (Chain("direct SFT", *sft, seed), Chain("RB-FT", *rb, seed))]
    ablation = []
    for seed in rep.ablation_seeds:
        for fraction in rep.fractions[:-1]:
            role = f"curve-{round(100 * fraction)}"
            ablation += [Chain("direct SFT", *sft, seed, role=role), Chain("RB-FT", *rb, seed, role=role)]
        if rep.oracle:
            ablation += [Chain("RB-FT", *rb, seed, source="reviewed"),
                         Chain("RB-FT", *rb, seed, source="mix", human_share=rep.mix_share)]
        ablation.append(Chain("RB-FT", *rb, seed, role="no-hint"))
    faith = [c for c in final]
    return {"grid": grid, "final": final, "ablation": ablation, "faith": faith}


def _stage1_chains(plan: dict[str, list[Chain]]) -> list[Chain]:
    """One chain per distinct RB-FT Stage I of the plan (Stage I does not depend on Stage II's lr and epochs)."""
    seen, out = set(), []
    for chain in plan["grid"] + plan["final"] + plan["ablation"]:
        if chain.arm == "RB-FT" and (chain.seed, chain.role, chain.source, chain.human_share) not in seen:
            seen.add((chain.seed, chain.role, chain.source, chain.human_share))
            out.append(chain)
    return out


def run_report(demo: Optional[DemoConfig] = None, rep: Optional[ReportConfig] = None, *, out_md: Optional[Path] = None,
               out_json: Optional[Path] = None, workdir: Optional[Path] = None,
               progress: Optional[Progress] = None) -> dict:
    """Build (or reuse) the demo, run (or resume) every step, write the JSON and the page; returns the JSON."""
    import torch  # torch is heavy: loaded only when a model runs
    from transformers.utils import logging as hf_logging  # transformers is heavy: loaded only when a model runs

    demo, rep = demo or DemoConfig(), rep or ReportConfig()
    started = time.perf_counter()
    build = build_demo(demo)
    world = report_world_spec(demo, rep)
    context = {"model": build.info["key"], "world": asdict(world), "val_fraction": rep.val_fraction,
               "fractions": rep.fractions, "label_hint": True, "generate_tokens": rep.generate_tokens}
    key = spec_key(context)
    workdir = Path(workdir or build.model_dir.parent / f"report-{demo.name}-{key[:8]}")
    workdir.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{workdir / 'report.db'}"
    previous, threads = os.environ.get("RBFT_DATA_DIR"), torch.get_num_threads()
    os.environ["RBFT_DATA_DIR"] = str(workdir)  # runs and frame cache of the report stay in its folder
    torch.set_num_threads(rep.threads)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # one bar per model load would break the report's own progress bar
    runner = None
    try:
        init_db(db_url)
        plan = _plan(rep)
        stage1 = _stage1_chains(plan)
        ctx = ReportContext(db_url=db_url, model=str(build.model_dir), datasets={}, num_frames=demo.sample_frames,
                            store=ResultStore(workdir / "results.jsonl"), key=key, progress=progress,
                            recipe={k: getattr(rep, k) for k in ("lora_rank", "batch_size", "stage1_epochs",
                                                                 "stage1_lr", "k_random")},
                            total=3 + len(stage1) + sum(len(v) for v in plan.values()))
        rationales = _prepare(ctx, rep, world, workdir)
        runner = Runner(ctx, workers=rep.workers, threads=rep.threads, data_dir=str(workdir))
        runner.run("zero-shot", [None], lambda _: "base model")
        runner.run("stage1", stage1)  # every Stage I first: they do not depend on the Stage-II choice
        runner.run("chain", plan["grid"])
        selection = _selection(ctx, rep)
        plan = _plan(rep, {arm: (selection[arm]["lr"], selection[arm]["epochs"]) for arm in ARMS})
        runner.run("chain", plan["final"] + plan["ablation"])
        runner.run("faith", plan["faith"])
        meta = {"demo": demo.to_dict(), "report": rep.to_dict(), "build": build.to_json(), "world": asdict(world),
                "context_key": key, "workdir": str(workdir), "seconds": round(time.perf_counter() - started, 1),
                "load": _load(), "command": f"rbft demo report{' --fast' if rep.name == 'fast' else ''}",
                "train_clips": _train_clips(ctx, rep)}
        doc = assemble(ctx.store, [*plan["grid"], *plan["final"], *plan["ablation"]], ctx, meta, rationales, selection)
    finally:
        if runner is not None:
            runner.close()
        torch.set_num_threads(threads)
        if bars:
            hf_logging.enable_progress_bar()
        if previous is None:
            os.environ.pop("RBFT_DATA_DIR", None)
        else:
            os.environ["RBFT_DATA_DIR"] = previous
    _write(doc, workdir / "report.json", out_json, out_md)
    return doc


def _prepare(ctx: ReportContext, rep: ReportConfig, world: WorldSpec, workdir: Path) -> dict:
    """Render and import the datasets, write (or find) the rationales; returns their statistics."""
    ctx.announce("rendering the report world")
    manifests = rd.render_report_world(workdir / "world", world, val_fraction=rep.val_fraction, fractions=rep.fractions)
    ctx.datasets.update(rd.import_report_datasets(ctx.db_url, DEMO_DATASET, manifests, no_hint=True))
    gen = {}
    for name, role, hint in (("hint", "main", True), ("no_hint", "no-hint", False)):
        ctx.announce(f"rationales ({name.replace('_', ' ')})")
        key = spec_key("generate", ctx.datasets[role], hint, ctx.key)
        if not ctx.store.get("generate", key):
            started = time.perf_counter()
            out = rd.generate(ctx.db_url, ctx.datasets[role], ctx.model, label_hint=hint, num_frames=ctx.num_frames,
                              max_new_tokens=rep.generate_tokens)
            if role == "main" and rep.oracle:
                rd.oracle_review(ctx.db_url, ctx.main)
            if role == "main":
                for other, dataset in ctx.datasets.items():
                    if other.startswith("curve-"):
                        rd.copy_suggestions(ctx.db_url, ctx.main, dataset)
            ctx.store.add({"type": "generate", "key": key, "spec": out["spec"],
                           "seconds": round(time.perf_counter() - started, 2)})
        gen[name] = ctx.store.get("generate", key)
        ctx.step(f"rationales ({name.replace('_', ' ')})")
    return {"hint": rd.rationale_stats(ctx.db_url, ctx.main), "no_hint": rd.rationale_stats(ctx.db_url, ctx.datasets["no-hint"]),
            "generation": gen}


def _selection(ctx: ReportContext, rep: ReportConfig) -> dict:
    runs = _runs(ctx.store, _plan(rep)["grid"], ctx)
    truth = _truth(ctx.store, runs, "val")
    return {arm: select_config(runs, arm, rep.grid(), truth) for arm in ARMS}


def _train_clips(ctx: ReportContext, rep: ReportConfig) -> dict:
    out = {}
    for record in ctx.store.of_type("train"):
        label = record["label"]
        if record["stage"] == 2 and label.get("hint") and str(label["fraction"]) not in out:
            out[str(label["fraction"])] = record["metrics"].get("train_examples")
    return {str(f): out.get(str(f)) for f in rep.fractions}


def _runs(store: ResultStore, chains: list[Chain], ctx: ReportContext) -> list[dict]:
    """The stored records of ``chains`` as runs: train record + evaluations (+ faithfulness), Stage I beside."""
    out, seen = [], set()
    for chain in chains:
        key1, key2 = chain_keys(ctx, chain)
        if key2 in seen or not store.get("train", key2):
            continue
        seen.add(key2)
        train = store.get("train", key2)
        stage1 = store.get("train", key1) if key1 else None
        evals = {split: store.get("eval", key2, split) for split in ("val", "test") if store.get("eval", key2, split)}
        faith = store.get("faith", faith_key(ctx, key2))
        out.append({"key": key2, "label": train["label"], "run_id": train["run_id"], "spec": train["spec"],
                    "train": train["metrics"], "eval": {s: _compact(e) for s, e in evals.items()},
                    "stage1": {"key": key1, "run_id": stage1["run_id"], "spec": stage1["spec"],
                               "train": stage1["metrics"]} if stage1 else None,
                    "faith": {k: v for k, v in faith.items() if k not in ("type", "key", "label")} if faith else None,
                    "_clips": {s: (e["clips"], e["truth"]) for s, e in evals.items()}})
    return out


def _compact(evaluation: dict) -> dict:
    return {k: evaluation[k] for k in ("run_id", "spec", "metrics", "predicted", "p_abnormal")}


def _truth(store: ResultStore, runs: list[dict], split: str) -> list[str]:
    orders = {tuple(r["_clips"][split][0]) for r in runs if split in r["_clips"]}
    if len(orders) > 1:
        raise ConfigError(f"the {split} evaluations list different clips; delete the report's work folder and rerun")
    for r in runs:
        if split in r["_clips"]:
            return r["_clips"][split][1]
    return []


def assemble(store: ResultStore, chains: list[Chain], ctx: ReportContext, meta: dict, rationales: dict,
             selection: dict) -> dict:
    """The JSON of the report: meta, every run (spec, seed, metrics, predictions), rationales, tables."""
    runs = _runs(store, chains, ctx)
    zero = store.get("eval", zero_shot_key(ctx), "test")
    runs.insert(0, {"key": zero["key"], "label": zero["label"], "run_id": zero["run_id"], "spec": zero["spec"],
                    "train": None, "eval": {"test": _compact(zero)}, "stage1": None, "faith": None,
                    "_clips": {"test": (zero["clips"], zero["truth"])}})
    clips = {s: list(_first(runs, s)[0]) for s in ("val", "test")}
    truth = {s: _truth(store, runs, s) for s in ("val", "test")}
    for r in runs:
        r.pop("_clips")
    meta["compute_seconds"] = round(_step_seconds(store, runs, ctx, rationales), 1)
    doc = {"meta": meta, "clips": clips, "truth": truth, "rationales": rationales, "selection": selection,
           "runs": runs}
    doc["tables"] = build_tables(doc)
    return doc


def _first(runs: list[dict], split: str):
    return next((r["_clips"][split] for r in runs if split in r["_clips"]), ([], []))


def _step_seconds(store: ResultStore, runs: list[dict], ctx: ReportContext, rationales: dict) -> float:
    """Seconds every step of this report took when it ran (a resumed report still counts its earlier steps)."""
    keys = {r["key"] for r in runs} | {r["stage1"]["key"] for r in runs if r["stage1"]}
    keys |= {faith_key(ctx, k) for k in keys}
    total = sum(g.get("seconds", 0.0) for g in rationales["generation"].values())
    return total + sum(r.get("seconds", 0.0) for (t, k, _), r in store.records.items() if k in keys and t != "generate")


def rerender(json_path: Path, out_md: Optional[Path] = None) -> dict:
    """Recompute the tables from the runs of a report's JSON and write the page; no training."""
    doc = json.loads(Path(json_path).read_text())
    doc["tables"] = build_tables(doc)
    _write(doc, None, None, out_md)
    return doc


def dumps(doc: dict) -> str:
    """The report JSON, diff-friendly: one line per run, per table and per meta entry."""
    def compact(value) -> str:
        return json.dumps(value, default=str, separators=(",", ":"))

    parts = []
    for key, value in doc.items():
        if key == "runs":
            inner = ",\n  ".join(compact(r) for r in value)
            parts.append(f'"runs": [\n  {inner}\n ]')
        elif isinstance(value, dict):
            inner = ",\n  ".join(f"{compact(k)}: {compact(v)}" for k, v in value.items())
            parts.append(f"{compact(key)}: {{\n  {inner}\n }}")
        else:
            parts.append(f"{compact(key)}: {compact(value)}")
    return "{\n " + ",\n ".join(parts) + "\n}"


def _write(doc: dict, *paths_and_md) -> None:
    *json_paths, out_md = paths_and_md
    text = dumps(doc)
    for path in json_paths:
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text + "\n")
    if out_md:
        Path(out_md).write_text(render_markdown(doc))


def _load() -> str:
    try:
        return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cores"
    except OSError:
        return "unknown"

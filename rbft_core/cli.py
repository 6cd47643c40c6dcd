"""The ``rbft`` command. Every long task is a CLI command first; the app starts these as jobs.

Global options (before or after the sub-command): ``--db URL`` (else ``RBFT_DATABASE_URL``, else a SQLite
file in the data directory) and ``--data-dir DIR`` (else ``RBFT_DATA_DIR``, else ``./data``).
Errors a user can act on print one line ``error: ...`` and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable, Optional, Sequence

from rbft_core.errors import RbftError

__all__ = ["main", "build_parser"]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=argparse.SUPPRESS, help="database URL (default: RBFT_DATABASE_URL or data/rbft.db)")
    parser.add_argument("--data-dir", default=argparse.SUPPRESS, help="data directory (default: RBFT_DATA_DIR or ./data)")


def _tqdm_progress(desc: str, unit: str) -> tuple[Callable[[int, int, str], None], Callable[[], None]]:
    """A tqdm bar driven by ``progress(done, total, name)`` callbacks; returns (callback, close)."""
    from tqdm import tqdm

    from rbft_core.jobs import job_progress

    bar: dict = {}

    def update(done: int, total: int, name: str = "") -> None:
        job_progress(done, total, name)
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)
        b = bar["bar"]
        b.total = total
        b.update(done - b.n)
        if name:
            b.set_postfix_str(name[-40:], refresh=False)

    def close() -> None:
        if "bar" in bar:
            bar["bar"].close()

    return update, close


def _print(payload: dict, as_json: bool, human: Callable[[dict], str]) -> None:
    print(json.dumps(payload, ensure_ascii=False, default=str) if as_json else human(payload))


# --------------------------------------------------------------------------------------------- commands
def cmd_import(args: argparse.Namespace) -> int:
    from db.engine import init_db
    from rbft_core.importer import import_videos

    init_db(args.db)
    update, close = _tqdm_progress("import", "video")
    try:
        report = import_videos(
            args.db,
            args.dataset,
            args.source,
            manifest=args.manifest,
            fmt=args.format,
            preset=args.preset,
            labels=[s.strip() for s in args.labels.split(",") if s.strip()] if args.labels else None,
            seed=args.seed,
            test_fraction=args.test_fraction,
            progress=None if args.json else update,
        )
    finally:
        close()

    def human(p: dict) -> str:
        counts = "\n".join(f"  {label}: {n}" for label, n in sorted(p["counts"].items()))
        return report.summary() + ("\n" + counts if counts else "")

    _print(report.to_json(), args.json, human)
    return 0 if report.ok else 1


def cmd_generate(args: argparse.Namespace) -> int:
    from db.engine import init_db
    from rbft_core.generate import GenerateConfig, generate_rationales

    init_db(args.db)
    cfg = GenerateConfig(
        split=None if args.split == "all" else args.split,
        num_frames=args.frames,
        max_pixels=args.max_pixels,
        batch_size=args.batch_size,
        label_hint=args.label_hint,
        overwrite=args.overwrite,
        video_ids=args.video_ids,
        max_new_tokens=args.max_new_tokens,
        dtype=args.dtype,
        device=args.device,
    )
    update, close = _tqdm_progress("generate", "video")
    try:
        report = generate_rationales(args.db, args.dataset, args.model, cfg, progress=None if args.json else update)
    finally:
        close()

    def human(p: dict) -> str:
        status = ", ".join(f"{k} {v}" for k, v in p["parse_status"].items())
        lines = [
            f"{p['generated']} suggestions written ({status}); {p['already_done']} videos already had one "
            f"from this model and prompt {p['prompt_version']}"
        ]
        lines += [f"  skipped {f['path']}: {f['error']}" for f in p["failed"]]
        return "\n".join(lines)

    _print(report.to_json(), args.json, human)
    return 0


def cmd_tiny_model(args: argparse.Namespace) -> int:
    from rbft_core.tiny import TinySpec, build_tiny_model

    out = build_tiny_model(args.out_dir, TinySpec(family=args.family, seed=args.seed), overwrite=True)
    _print({"model": str(out), "family": args.family}, args.json, lambda p: f"tiny {p['family']} model written to {p['model']}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from rbft_core.catalog import dataset_overview

    rows = dataset_overview(args.db)

    def human(p: dict) -> str:
        if not p["datasets"]:
            return "no datasets yet; create one with `rbft import NAME SOURCE`"
        return "\n".join(
            f"{d['name']} ({d['preset']}): {d['total']} videos ({d['train']} train, {d['test']} test), "
            f"labels {d['label_counts']}, {d['pending']} pending / {d['accepted']} accepted / "
            f"{d['rejected']} rejected reviews, {d['unreadable']} unreadable"
            for d in p["datasets"]
        )

    _print({"datasets": rows}, args.json, human)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from db.engine import init_db
    from rbft_core.settings import database_url

    init_db(args.db)
    print(f"database {database_url(args.db)} is at the newest schema")
    return 0


def _demo_config(args: argparse.Namespace):
    from rbft_core.demo import DemoConfig

    return DemoConfig.fast() if args.fast else DemoConfig()


def cmd_demo_build(args: argparse.Namespace) -> int:
    from rbft_core.demo import build_demo

    update, close = _tqdm_progress("demo build", "step")
    try:
        build = build_demo(_demo_config(args), progress=None if args.json else update, rebuild=args.rebuild)
    finally:
        close()

    def human(p: dict) -> str:
        cap = p["caption"]
        fields = ", ".join(f"{k} {100 * v:.0f}%" for k, v in cap["field_exact"].items())
        return (f"{'reused' if p['reused'] else 'built'} the {p['config']} demo (key {p['key']}, build {p['build_seconds']} s)\n"
                f"  world: {p['manifest']}\n  base model: {p['model']}\n"
                f"  held-out captions ({cap['clips']} clips): parse ok {100 * cap['parse_ok']:.0f}%, exact fields {fields}, "
                f"right subject {100 * cap['subject_named']:.0f}%")

    _print(build.to_json(), args.json, human)
    return 0


def cmd_demo_prepare(args: argparse.Namespace) -> int:
    from rbft_core.demo import prepare_demo

    update, close = _tqdm_progress("demo", "step")
    try:
        info = prepare_demo(args.db, config=_demo_config(args), progress=None if args.json else update)
    finally:
        close()
    _print(info, args.json, lambda p: "\n".join(f"{k}: {v}" for k, v in p.items()))
    return 0


def cmd_demo_report(args: argparse.Namespace) -> int:
    from rbft_core.demo.report import ReportConfig, run_report

    seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    rep = ReportConfig(seeds=seeds, oracle=args.oracle)
    update, close = _tqdm_progress("demo report", "run")
    try:
        summary = run_report(_demo_config(args), rep, out_md=args.out, progress=None if args.json else update)
    finally:
        close()

    def human(p: dict) -> str:
        from rbft_core.demo.report import mean_sd

        rows = [f"  {r['method']} ({r['source']}): accuracy {mean_sd(r['accuracy'])}, macro-F1 {mean_sd(r['macro_f1'])}"
                for r in p["rows"]]
        return "\n".join([f"demo report ({p['seconds']} s), written to {args.out}", *rows])

    _print(summary, args.json, human)
    return 0


# ----------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rbft", description="RB-FT Studio: rationale-bootstrapped fine-tuning of video VLMs")
    parser.add_argument("--db", default=None, help="database URL (default: RBFT_DATABASE_URL or data/rbft.db)")
    parser.add_argument("--data-dir", default=None, help="data directory (default: RBFT_DATA_DIR or ./data)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("import", help="import labelled videos into a dataset")
    p.add_argument("dataset")
    p.add_argument("source", help="folder with the videos (and one subfolder per label for --format folder)")
    p.add_argument("--manifest", help="CSV/JSONL manifest, SmartHome-Bench CSV or MultiHateClip TSV(s)")
    p.add_argument(
        "--format", default="auto", choices=["auto", "folder", "csv", "jsonl", "smarthome-bench", "multihateclip", "rbft-export"]
    )
    p.add_argument("--preset", default="smart-home", help="smart-home | moderation | custom (with --labels)")
    p.add_argument("--labels", help="comma-separated label set, e.g. normal,abnormal")
    p.add_argument("--seed", type=int, default=0, help="seed of the stratified train/test split")
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("generate", help="have the model write a four-dimension rationale per video")
    p.add_argument("dataset")
    p.add_argument("--model", required=True, help="local model folder or hub id")
    p.add_argument("--split", default="train", help="train | val | test | all")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--max-pixels", type=int, default=128 * 28 * 28)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--label-hint", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--video-id", type=int, action="append", dest="video_ids",
                   help="only this video (database id); repeat for several")
    p.add_argument("--max-new-tokens", type=int, default=160)
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("tiny-model", help="build a tiny random-weight VLM offline (tests, demos)")
    p.add_argument("out_dir")
    p.add_argument("--family", default="qwen2_5_vl", choices=["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tiny_model)

    p = sub.add_parser("datasets", help="list datasets with their counts")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("db", help="database maintenance")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="migrate the database to the newest schema")
    _common(up)
    up.set_defaults(func=cmd_db_upgrade)

    p = sub.add_parser("demo", help="the embedded demo: generated videos and a tiny model")
    demosub = p.add_subparsers(dest="demo_command", required=True)
    build = demosub.add_parser("build", help="render the demo world and pre-train the tiny base model (cached)")
    build.add_argument("--fast", action="store_true", help="the small configuration the tests use (seconds)")
    build.add_argument("--rebuild", action="store_true", help="build even when the cache matches")
    build.add_argument("--json", action="store_true")
    _common(build)
    build.set_defaults(func=cmd_demo_build)
    prep = demosub.add_parser("prepare", help="build (or reuse) the demo world and base model and import the dataset")
    prep.add_argument("--fast", action="store_true", help="the small configuration the tests use (seconds)")
    prep.add_argument("--json", action="store_true")
    _common(prep)
    prep.set_defaults(func=cmd_demo_prepare)
    rep = demosub.add_parser("report", help="zero-shot / direct SFT / RB-FT over seeds -> docs/demo-results.md")
    rep.add_argument("--fast", action="store_true", help="the small configuration (a smoke run, not the result)")
    rep.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    rep.add_argument("--oracle", action=argparse.BooleanOptionalAction, default=True,
                     help="also run RB-FT on simulated-expert-reviewed rationales")
    rep.add_argument("--out", default="docs/demo-results.md", help="Markdown file to write")
    rep.add_argument("--json", action="store_true")
    _common(rep)
    rep.set_defaults(func=cmd_demo_report)

    from rbft_core import cli_admin

    cli_admin.register(sub, _common)
    from rbft_core.cli_export import add_export_commands

    add_export_commands(sub, _common)
    from rbft_core import cli_train

    cli_train.register(sub, _common)
    from rbft_core import cli_inspect

    cli_inspect.register(sub, _common)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.data_dir:
        os.environ["RBFT_DATA_DIR"] = args.data_dir
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        return int(args.func(args) or 0)
    except RbftError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

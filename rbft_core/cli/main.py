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

from db.engine import init_db
from rbft_core.cli import admin, review, tasks, train
from rbft_core.cli.tasks import TqdmProgress
from rbft_core.data.catalog import dataset_overview
from rbft_core.demo import DemoConfig, build_demo, prepare_demo
from rbft_core.demo.report import ReportConfig, rerender, run_report
from rbft_core.demo.report_stats import fmt_interval
from rbft_core.errors import RbftError
from rbft_core.models.tiny import TinySpec, build_tiny_model
from rbft_core.settings import database_url

__all__ = ["main", "build_parser"]

JSON_HELP = "print the result as one JSON object (default: off)"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=argparse.SUPPRESS, help="database URL (default: RBFT_DATABASE_URL or data/rbft.db)")
    parser.add_argument("--data-dir", default=argparse.SUPPRESS, help="data directory (default: RBFT_DATA_DIR or ./data)")


def _print(payload: dict, as_json: bool, human: Callable[[dict], str]) -> None:
    print(json.dumps(payload, ensure_ascii=False, default=str) if as_json else human(payload))


# --------------------------------------------------------------------------------------------- commands
def cmd_tiny_model(args: argparse.Namespace) -> int:
    out = build_tiny_model(args.out_dir, TinySpec(family=args.family, seed=args.seed), overwrite=True)
    _print({"model": str(out), "family": args.family}, args.json, lambda p: f"tiny {p['family']} model written to {p['model']}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    rows = dataset_overview(args.db)

    def human(p: dict) -> str:
        if not p["datasets"]:
            return "no datasets yet; create one with `rbft import NAME SOURCE`"
        return "\n".join(
            f"{d['name']} ({d['preset']}): {d['total']} videos ({d['train']} train, {d['test']} test), "
            f"labels {d['label_counts']}, dimensions {', '.join(d['dimensions'])}, {d['pending']} pending / "
            f"{d['accepted']} accepted / "
            f"{d['rejected']} rejected reviews, {d['unreadable']} unreadable"
            for d in p["datasets"]
        )

    _print({"datasets": rows}, args.json, human)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    init_db(args.db)
    print(f"database {database_url(args.db)} is at the newest schema")
    return 0


def _demo_config(args: argparse.Namespace):
    return DemoConfig.fast() if args.fast else DemoConfig()


def cmd_demo_build(args: argparse.Namespace) -> int:
    bar = TqdmProgress("demo build", "step")
    try:
        build = build_demo(_demo_config(args), progress=None if args.json else bar, rebuild=args.rebuild)
    finally:
        bar.close()

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
    bar = TqdmProgress("demo", "step")
    try:
        info = prepare_demo(args.db, config=_demo_config(args), progress=None if args.json else bar)
    finally:
        bar.close()
    _print(info, args.json, lambda p: "\n".join(f"{k}: {v}" for k, v in p.items()))
    return 0


def cmd_demo_report(args: argparse.Namespace) -> int:
    if args.from_json:  # re-render the page from a report's JSON, no training
        summary = rerender(args.from_json, args.out)
    else:
        seeds = {"seeds": tuple(int(s) for s in args.seeds.split(",") if s.strip())} if args.seeds else {}
        rep = ReportConfig.named("fast" if args.fast else "full", oracle=args.oracle, **seeds)
        bar = TqdmProgress("demo report", "run")
        try:
            summary = run_report(_demo_config(args), rep, out_md=args.out, out_json=os.path.splitext(args.out)[0] + ".json",
                                 progress=None if args.json else bar)
        finally:
            bar.close()

    def human(p: dict) -> str:
        rows = [f"  {r['method']}: accuracy {fmt_interval(r['accuracy'])}" for r in p["tables"]["main"]]
        return "\n".join([f"demo report ({p['meta']['seconds']} s), written to {args.out}", *rows,
                          f"  RB-FT vs direct SFT: {p['tables']['paired']['verdict']}"])

    _print(summary, args.json, human)
    return 0


# ----------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rbft", description="RB-FT Studio: rationale-bootstrapped fine-tuning of video VLMs")
    parser.add_argument("--db", default=None, help="database URL (default: RBFT_DATABASE_URL or data/rbft.db)")
    parser.add_argument("--data-dir", default=None, help="data directory (default: RBFT_DATA_DIR or ./data)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("tiny-model", help="build a tiny random-weight VLM offline (tests, demos)")
    p.add_argument("out_dir", help="folder to write the model into (replaced if it exists)")
    p.add_argument("--family", default="qwen2_5_vl", choices=["qwen2_vl", "qwen2_5_vl", "qwen3_vl"],
                   help="model family (default: qwen2_5_vl)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights (default: 0)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_tiny_model)

    p = sub.add_parser("datasets", help="list datasets with their counts")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
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
    build.add_argument("--fast", action="store_true", help="the small configuration the tests use, seconds to build (default: off, the full demo)")
    build.add_argument("--rebuild", action="store_true", help="build even when the cache matches (default: off)")
    build.add_argument("--json", action="store_true", help=JSON_HELP)
    _common(build)
    build.set_defaults(func=cmd_demo_build)
    prep = demosub.add_parser("prepare", help="build (or reuse) the demo world and base model and import the dataset")
    prep.add_argument("--fast", action="store_true", help="the small configuration the tests use, seconds to build (default: off, the full demo)")
    prep.add_argument("--json", action="store_true", help=JSON_HELP)
    _common(prep)
    prep.set_defaults(func=cmd_demo_prepare)
    rep = demosub.add_parser("report", help="zero-shot / direct SFT / RB-FT over seeds -> docs/demo-results.md")
    rep.add_argument("--fast", action="store_true", help="the small configuration: a smoke run, not the result "
                     "(default: off)")
    rep.add_argument("--seeds", default="", help="comma-separated training seeds (default: 0-4, --fast: 0,1)")
    rep.add_argument("--oracle", action=argparse.BooleanOptionalAction, default=True,
                     help="also run RB-FT on simulated-expert-reviewed rationales (default: on)")
    rep.add_argument("--out", default="docs/demo-results.md", help="Markdown file to write, the JSON beside it "
                     "(default: docs/demo-results.md)")
    rep.add_argument("--from", dest="from_json", default="", help="re-render --out from this report JSON, no "
                     "training (default: none)")
    rep.add_argument("--json", action="store_true", help=JSON_HELP)
    _common(rep)
    rep.set_defaults(func=cmd_demo_report)

    tasks.register(sub, _common)
    train.register(sub, _common)
    admin.register(sub, _common)
    review.register(sub, _common)
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

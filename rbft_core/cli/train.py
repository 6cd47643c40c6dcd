"""``rbft`` commands about runs and jobs: compare, runs, jobs, stop. (Tasks such as train live in
``rbft_core.cli.tasks``.)"""

from __future__ import annotations

import argparse
import json

from db import job_queries as jq
from db.engine import init_db, session_scope
from rbft_core.cli.tasks import comparison_table
from rbft_core.jobs.runner import list_job_rows, recover_jobs, stop_job
from rbft_core.training.evaluate import compare_runs

__all__ = ["register"]


def cmd_compare(args: argparse.Namespace) -> int:
    init_db(args.db)
    result = compare_runs(args.db, args.dataset, args.split)
    print(json.dumps(result, default=str) if args.json else comparison_table(result) + f"\nwritten: {result['csv']}, {result['json']}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
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
    init_db(args.db)
    print(f"job {args.job_id}: {stop_job(args.db, args.job_id, timeout_s=args.timeout_s)}")
    return 0


def register(sub, common) -> None:
    p = sub.add_parser("compare", help="zero-shot / direct SFT / Stage I / RB-FT table (CSV + JSON)")
    p.add_argument("dataset", help="dataset name")
    p.add_argument("--split", default="test", help="split the runs were evaluated on (default: test)")
    p.add_argument("--json", action="store_true", help="print JSON (default: off)")
    common(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("runs", help="list training and evaluation runs")
    p.add_argument("--json", action="store_true", help="print JSON (default: off)")
    common(p)
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("jobs", help="list background jobs (marks lost ones interrupted)")
    p.add_argument("--json", action="store_true", help="print JSON (default: off)")
    common(p)
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("stop", help="stop a background job: graceful, then its process group is killed")
    p.add_argument("job_id", type=int, help="job id (see `rbft jobs`)")
    p.add_argument("--timeout-s", type=float, default=30.0, help="seconds to wait before killing (default: 30 s)")
    common(p)
    p.set_defaults(func=cmd_stop)

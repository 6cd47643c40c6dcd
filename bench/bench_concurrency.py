"""Concurrent reviewers: 8 gradio_client tabs x 200 saves each on 8 shared items, against the real app.

The app (``app.py``) runs as a subprocess on a temp SQLite file (``--db URL`` for another database, e.g.
a PostgreSQL URL). Each reviewer jumps to a random shared item and saves an edit with a unique text; a
save over a version someone else saved meanwhile must be refused with a conflict message. Prints the
figures; the goal is 0 lost edits (every accepted save is a revision), every stale save refused with a
message and kept in the history, and no "database is locked" seen by a reviewer. Exit status 1 otherwise.

    .venv/bin/python bench/bench_concurrency.py [--reviewers 8] [--saves 200] [--items 8] [--db URL]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviewers", type=int, default=8)
    parser.add_argument("--saves", type=int, default=200)
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--db", default=None, help="database URL (default: a temp SQLite file); must be empty")
    args = parser.parse_args()

    from db.engine import init_db
    from tests.review_load import check_against_db, run_review_load
    from tests.review_world import make_review_world, start_app, stop_app

    with tempfile.TemporaryDirectory(prefix="rbft-bench-conc-") as tmp:
        root = Path(tmp)
        os.environ["RBFT_DATA_DIR"] = str(root / "data")
        db_url = args.db or f"sqlite:///{root / 'rbft.db'}"
        init_db(db_url)
        ids = make_review_world(db_url, root / "w", extra=max(0, args.items - 3))
        proc, url = start_app(db_url, root / "data")
        try:
            report = run_review_load(url, [f"homes/{ext}" for ext in sorted(ids)], reviewers=args.reviewers,
                                     saves=args.saves, seed=7)
        finally:
            stop_app(proc)
        check_against_db(db_url, report)
    backend = db_url.split(":", 1)[0]
    print(f"concurrent review saves ({backend}, {len(ids)} shared items)")
    print(report.figures())
    for message in report.other_errors[:5]:
        print("  other error:", message[:300])
    ok = (not report.lost and not report.refused_not_kept and not report.other_errors and report.locked_errors == 0
          and all("saved by" in r[2] for r in report.refused))
    print("goal met: 0 lost edits, stale saves refused with a message, no 'database is locked'" if ok
          else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

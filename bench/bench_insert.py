"""Bulk insert through the db layer: N videos + one suggestion each (with the reviews and counters they open).

Rows go in through ``db.writes.add_videos`` / ``add_suggestions`` in transactions of ``--batch`` videos, the
way an import and a generation write them (doubt computed per suggestion, queue columns, search index and
counters kept). Baseline: the issue's measurement, 214 s for 200,000 rows one by one through ``db.queries``
(``--one-by-one`` runs that path again on the first ``--baseline-rows`` rows and extrapolates).

    .venv/bin/python bench/bench_insert.py --rows 200000            # goal <= 60 s on 2 cores
    .venv/bin/python bench/bench_insert.py --rows 200000 --db postgresql+psycopg://...  (an empty database)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TEXT = dict(subjects="a man in a dark hoodie; a parcel on the doormat",
            attributes="adult, dark hoodie, hood up, large backpack; one brown cardboard box",
            actions="walks up the path, looks around twice, picks up the parcel and leaves quickly",
            scenes="front porch of a house, daylight, doorbell camera looking down at the step")


def _rows(start: int, stop: int, clip: str, size: int) -> tuple[list[dict], list[dict]]:
    videos, suggestions = [], []
    for i in range(start, stop):
        label = "abnormal" if i % 3 == 0 else "normal"
        videos.append({"external_id": f"v{i:06d}", "path": clip, "sha256": f"{i:064x}", "label": label,
                       "split": "train", "size_bytes": size})
        conclusion = "This is normal." if i % 7 == 0 else f"This is {label}."
        suggestions.append({"model_id": "Qwen/Qwen2.5-VL-7B-Instruct", "prompt_version": "rationale-v1",
                            "conclusion": conclusion, "parse_status": "failed" if i % 97 == 0 else "ok",
                            "mean_logprob": -0.2 - (i % 50) / 10, "gen_params": {"num_frames": 8},
                            **({} if i % 97 == 0 else TEXT)})
    return videos, suggestions


def populate(db_url: str, clip: Path, n: int, batch: int = 5000, dataset: str = "bench") -> float:
    """Insert ``n`` videos + suggestions into ``dataset``; returns the seconds it took (schema upgrade excluded)."""
    from db import queries, writes
    from db.engine import init_db, session_scope

    init_db(db_url)
    started = time.perf_counter()
    with session_scope(db_url) as s:
        dataset_id = queries.get_or_create_dataset(s, dataset, preset="smart-home", labels=["normal", "abnormal"]).id
    size = clip.stat().st_size if clip.exists() else 0
    for start in range(0, n, batch):
        videos, suggestions = _rows(start, min(n, start + batch), str(clip), size)
        with session_scope(db_url) as s:
            ids = writes.add_videos(s, dataset_id, videos)
            writes.add_suggestions(s, [{"video_id": vid, **sug} for vid, sug in zip(ids, suggestions)])
    return time.perf_counter() - started


def one_by_one(db_url: str, clip: Path, n: int) -> float:
    """The old path: ``queries.add_video`` + ``queries.add_suggestion`` per row (2,000 rows per transaction)."""
    from db import queries
    from db.engine import init_db, session_scope

    init_db(db_url)
    started = time.perf_counter()
    with session_scope(db_url) as s:
        dataset_id = queries.get_or_create_dataset(s, "one-by-one", labels=["normal", "abnormal"]).id
    for start in range(0, n, 2000):
        videos, suggestions = _rows(start, min(n, start + 2000), str(clip), 0)
        with session_scope(db_url) as s:
            for video, sug in zip(videos, suggestions):
                row = queries.add_video(s, dataset_id, **{**video, "sha256": "x" + video["sha256"][1:]})
                queries.add_suggestion(s, row.id, **sug)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5000, help="videos per transaction")
    parser.add_argument("--db", default="", help="database URL (default: a new SQLite file)")
    parser.add_argument("--one-by-one", action="store_true", help="also time the one-row-at-a-time path")
    parser.add_argument("--baseline-rows", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-insert-") as tmp:
        os.environ.setdefault("RBFT_DATA_DIR", str(Path(tmp) / "data"))
        db_url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        clip = Path(tmp) / "clip.mp4"
        seconds = populate(db_url, clip, args.rows, args.batch)
        print(f"bulk: {args.rows:,} videos + suggestions (+ reviews, counters, search index) in {seconds:.1f} s "
              f"= {args.rows / seconds:,.0f} rows/s ({db_url.split(':', 1)[0]}; goal <= 60 s for 200,000)")
        if args.one_by_one:
            base = one_by_one(db_url, clip, args.baseline_rows)
            print(f"one by one through db.queries: {args.baseline_rows:,} rows in {base:.1f} s = "
                  f"{args.baseline_rows / base:,.0f} rows/s -> {args.rows / (args.baseline_rows / base):.0f} s for "
                  f"{args.rows:,} (ratio {base / args.baseline_rows * args.rows / seconds:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Import at scale: distinct generated clips (probe, hash, insert), then a large manifest that references them
(metadata and dedupe only: every hash is already known, so nothing is decoded again).

1. ``--clips`` distinct tiny clips (2-4 frames, 32x24 H.264, made here in a process pool; kept in
   ``--clips-dir`` for the next run) are imported from a CSV manifest into a fresh SQLite database: files/s.
2. A ``--rows`` manifest names those clips again and again (the first ``--clips`` rows with the ids of step 1,
   the rest with new ids: same content, so each is reported as a duplicate): rows/s. Goal: 100,000 rows in
   <= 30 s on 2 cores.

    .venv/bin/python bench/bench_import.py --clips 10000 --rows 100000 [--workers 2]
    .venv/bin/python bench/bench_import.py --clips 200 --rows 2000          (a quick check that it runs)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _make(task: tuple[str, int]) -> str:
    from tests.helpers import make_video

    path, i = task
    if not Path(path).exists():
        make_video(path, num_frames=2 + i % 3, size=(32, 24), fps=8, color_seed=i)
    return path


def make_clips(folder: Path, n: int, workers: int) -> float:
    """``n`` distinct clips in ``folder`` (existing ones are kept); returns the seconds it took."""
    started = time.perf_counter()
    tasks = [(str(folder / f"{i // 1000:03d}" / f"c{i:06d}.mp4"), i) for i in range(n)]
    for path, _ in tasks:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_make, tasks, chunksize=64))
    return time.perf_counter() - started


def write_manifest(path: Path, clips: int, rows: int) -> Path:
    lines = ["path,label,id"]
    for i in range(rows):
        c = i % clips
        lines.append(f"{c // 1000:03d}/c{c:06d}.mp4,{'abnormal' if c % 3 == 0 else 'normal'},"
                     f"{f'c{c:06d}' if i < clips else f'r{i:07d}'}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=0, help="import processes (0: one per core)")
    parser.add_argument("--clips-dir", default="", help="where the clips are kept (default: a temp folder)")
    args = parser.parse_args()
    from db.counters import recount, stored
    from db.engine import session_scope
    from db import queries
    from rbft_core.data.import_work import default_workers
    from rbft_core.data.importer import import_videos

    workers = args.workers or default_workers()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        root = Path(tmp)
        os.environ.setdefault("RBFT_DATA_DIR", str(root / "data"))
        clips_dir = Path(args.clips_dir) if args.clips_dir else root / "clips"
        made = make_clips(clips_dir, args.clips, workers)
        print(f"{args.clips:,} clips ready in {clips_dir} ({made:.1f} s to make; not part of the figures)", flush=True)
        db_url = f"sqlite:///{root / 'bench.db'}"

        first = write_manifest(root / "clips.csv", args.clips, args.clips)
        started = time.perf_counter()
        report = import_videos(db_url, "bench", clips_dir, manifest=first, workers=workers)
        seconds = time.perf_counter() - started
        assert report.imported == args.clips, report.summary()
        print(f"import {args.clips:,} new clips (hash + probe + insert): {seconds:.1f} s = "
              f"{args.clips / seconds:,.0f} files/s ({workers} workers)", flush=True)

        big = write_manifest(root / "rows.csv", args.clips, args.rows)
        started = time.perf_counter()
        again = import_videos(db_url, "bench", clips_dir, manifest=big, workers=workers)
        seconds = time.perf_counter() - started
        assert again.unchanged == args.clips and again.probed == 0 and again.imported == 0, again.summary()
        print(f"import a {args.rows:,}-row manifest of known clips (metadata + dedupe, {again.probed} decoded, "
              f"{len(again.failed):,} duplicates reported): {seconds:.1f} s = {args.rows / seconds:,.0f} rows/s "
              f"(goal for 100,000 rows: <= 30 s)")
        with session_scope(db_url) as s:
            dataset_id = queries.get_dataset(s, "bench").id
            assert stored(s, dataset_id) == recount(s, dataset_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())

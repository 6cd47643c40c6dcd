"""A training job as the runner leaves it, written straight into the database and a run folder: a job row (any
status, with start and end times), its run with a ``trainer_log.jsonl`` of loss points, and a job log with library
noise. The Train tab's views read exactly these, so tests of what a page shows need no training process."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from db import job_queries as jq
from db import queries
from db.engine import session_scope

__all__ = ["training_job", "NOISY_LOG", "OWN_LINES"]

OWN_LINES = ["pipeline: generating missing rationales (0 to do)", "stage1: step 4/4, loss 1.2000",
             "Stage I done: run r-stage1"]
_WARNING = ("/venv/lib/python3.11/site-packages/transformers/modeling_utils.py:2371: FutureWarning: "
            "`gradient_checkpointing_enable` with use_reentrant unset is deprecated")
NOISY_LOG = "\n".join([OWN_LINES[0], *[x for _ in range(7) for x in (_WARNING, "  warnings.warn(")],
                       " 50%|#####     | 2/4 [00:01<00:01,  1.50it/s]", *OWN_LINES[1:]]) + "\n"


def training_job(db_url: str, data_dir: Path, dataset: str, *, status: str = "succeeded", kind: str = "pipeline",
                 duration_s: float = 192.0, steps: int = 4) -> int:
    """A ``kind`` job of ``dataset`` in ``status`` whose run logged ``steps`` loss points; returns its id."""
    run_dir = data_dir / "runs" / f"r-{status}"
    run_dir.mkdir(parents=True, exist_ok=True)
    records = [{"current_steps": i, "total_steps": steps, "loss": 2.0 - 0.2 * i, "eval_loss": None, "lr": 1e-3,
                "epoch": i / steps, "percentage": 100.0 * i / steps, "elapsed_time": "0:00:01",
                "remaining_time": "0:00:00", "throughput": 1.0} for i in range(1, steps + 1)]
    (run_dir / "trainer_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    log = data_dir / "jobs" / f"job-{status}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(NOISY_LOG)
    ended = datetime.now(timezone.utc)
    active = status in ("queued", "running")
    with session_scope(db_url) as s:
        ds = queries.get_dataset(s, dataset)
        job = jq.create_job(s, kind, ["rbft", "run", "spec.yaml"], device="cpu", run_dir=str(run_dir),
                            dataset=dataset, model="/models/tiny")
        job.status, job.log_path, job.progress = status, str(log), 1.0 if status == "succeeded" else 0.5
        job.progress_text = "stage1: step 4/4" if not active else "stage1: step 2/4"
        job.started_at = ended - timedelta(seconds=duration_s)
        job.ended_at = None if active else ended
        job_id = job.id
        jq.upsert_run(s, f"r-{status}", kind="stage1", stage=1, run_dir=str(run_dir), dataset_id=ds.id,
                      base_model="/models/tiny", status=status, job_id=job_id, config={"num_frames": 4})
    return job_id

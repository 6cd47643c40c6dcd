"""Generation over several processes: ``GenerateSpec.nproc_per_node`` > 1 runs the spec under torchrun.

The launcher writes the spec to a folder, starts ``python -m torch.distributed.run --standalone
--nproc-per-node N -m rbft_core.cli.main run SPEC --json``, sums the ranks' progress into the caller's
``progress`` while they run, stops them on a stop request (SIGTERM; committed batches stay) and merges their
reports. Each rank (``rbft_core.models.generate``) takes its share of the batches from torchrun's ``RANK`` and
``WORLD_SIZE`` and writes its progress and report into the folder (``RBFT_SHARD_DIR``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from rbft_core.errors import JobError
from rbft_core.settings import data_dir, database_url
from rbft_core.specs import GenerateSpec
from rbft_core.task_context import Progress, StopCheck

__all__ = ["SHARD_DIR_ENV", "launch_generate", "shard_progress", "write_shard_report", "is_rank"]

SHARD_DIR_ENV = "RBFT_SHARD_DIR"


def is_rank() -> bool:
    """True inside a process torchrun started (it sets LOCAL_RANK)."""
    return "LOCAL_RANK" in os.environ


def _write(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, default=str))
    os.replace(tmp, path)


def shard_progress(progress: Optional[Progress]) -> Optional[Progress]:
    """In a rank: also write ``progress-<rank>.json`` for the launcher (at most twice a second)."""
    folder = os.environ.get(SHARD_DIR_ENV)
    if not folder:
        return progress
    path, last = Path(folder) / f"progress-{os.environ.get('RANK', '0')}.json", [0.0]

    def report(done: float, total: float, text: str = "") -> None:
        if progress is not None:
            progress(done, total, text)
        if time.monotonic() - last[0] >= 0.5 or done >= total:
            last[0] = time.monotonic()
            _write(path, {"done": done, "total": total, "text": text})

    return report


def write_shard_report(result: dict[str, Any]) -> None:
    """In a rank: leave this rank's result for the launcher."""
    folder = os.environ.get(SHARD_DIR_ENV)
    if folder:
        _write(Path(folder) / f"report-{os.environ.get('RANK', '0')}.json", result)


def _read_all(folder: Path, prefix: str) -> list[dict[str, Any]]:
    out = []
    for path in sorted(folder.glob(f"{prefix}-*.json")):
        try:
            out.append({"rank": int(path.stem.split("-")[1]), **json.loads(path.read_text())})
        except (ValueError, OSError):  # being replaced right now: read it next time
            continue
    return out


def launch_generate(spec: GenerateSpec, db_url: Optional[str], progress: Optional[Progress] = None,
                    should_stop: Optional[StopCheck] = None) -> dict[str, Any]:
    """Run ``spec`` in ``spec.nproc_per_node`` processes under torchrun; returns the merged report."""
    root = data_dir() / "generate"
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="shards-", dir=root))
    spec_path = spec.write(folder / "launch-spec.yaml")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={spec.nproc_per_node}",
               "-m", "rbft_core.cli.main", "run", str(spec_path), "--json", "--db", database_url(db_url)]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), **{SHARD_DIR_ENV: str(folder)})
    log = open(folder / "torchrun.log", "wb")
    started = time.perf_counter()
    # Same process group as this one: stopping a job (or Ctrl-C) reaches torchrun and its ranks too.
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    stopped = False
    try:
        while proc.poll() is None:
            time.sleep(0.5)
            if should_stop is not None and should_stop() and not stopped:
                stopped = True
                proc.send_signal(signal.SIGTERM)  # torchrun passes it on to the ranks; committed batches stay
            parts = _read_all(folder, "progress")
            if progress is not None and parts:
                progress(sum(p["done"] for p in parts), sum(p["total"] for p in parts),
                         f"{len(parts)}/{spec.nproc_per_node} processes")
    finally:
        if proc.poll() is None:  # this process is being stopped itself
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
    reports = _read_all(folder, "report")
    if proc.returncode != 0 and not stopped:
        tail = (folder / "torchrun.log").read_text(errors="replace")[-3000:]
        raise JobError(f"generation over {spec.nproc_per_node} processes failed (exit {proc.returncode}); "
                       f"log {folder / 'torchrun.log'}:\n{tail}")
    return _merge(reports, spec, stopped, time.perf_counter() - started, folder)


def _merge(reports: list[dict[str, Any]], spec: GenerateSpec, stopped: bool, seconds: float,
           folder: Path) -> dict[str, Any]:
    parse = {"ok": 0, "partial": 0, "failed": 0}
    for report in reports:
        for key, n in (report.get("parse_status") or {}).items():
            parse[key] = parse.get(key, 0) + int(n)
    first = reports[0] if reports else {}
    return {
        "status": "cancelled" if stopped else "succeeded",
        "dataset": first.get("dataset", spec.dataset), "model_id": first.get("model_id", spec.model),
        "prompt_version": first.get("prompt_version", ""),
        "generated": sum(int(r.get("generated", 0)) for r in reports),
        "already_done": sum(int(r.get("already_done", 0)) for r in reports),
        "parse_status": parse, "failed": [f for r in reports for f in r.get("failed", [])],
        "seconds": round(seconds, 3), "processes": spec.nproc_per_node,
        "shards": [{"rank": r["rank"], "generated": r.get("generated", 0), "seconds": r.get("seconds", 0)}
                   for r in reports],
        "shard_dir": str(folder),
    }

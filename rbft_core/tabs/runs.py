"""What the Train tab shows, read from the run folders (the source of truth) and their DB mirror.

- ``job_view``: one training job live — progress (step/total, ETA, throughput), the loss points of every
  run the job made so far, and the log tail. Reads ``trainer_log.jsonl``, so it works for a job started
  before a page reload or an app restart.
- ``run_history``, ``comparison``, ``predictions``: finished work.
- ``loss_figure``, ``confusion_figure``, ``per_class_figure``: matplotlib figures for ``gr.Plot``.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from db import job_queries as jq
from db import queries
from db.engine import session_scope
from rbft_core.jobs.runner import job_status, recover_jobs
from rbft_core.log_filter import filter_log
from rbft_core.specs.sampling import Sampling
from rbft_core.training.evaluate import KIND_NAMES, KIND_ORDER

__all__ = ["job_view", "active_training_job", "latest_training_job", "job_duration_s", "duration_text", "run_history", "comparison", "predictions", "read_trainer_log",
           "trainer_log_reader", "TrainerLogReader",
           "log_tail", "loss_figure", "confusion_figure", "per_class_figure", "TRAIN_JOB_KINDS"]

TRAIN_JOB_KINDS = ("pipeline", "train", "evaluate")


def _session(db_url):
    return session_scope(db_url)


class TrainerLogReader:
    """``trainer_log.jsonl`` of one run, read incrementally: each call reads only the bytes appended since the
    last one (a page polls a running job every second or two; a long run's log grows to megabytes)."""

    def __init__(self, path: Path):
        self.path, self.key, self.offset, self.bytes_read, self.pending = path, None, 0, 0, b""
        self.records: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        try:
            stat = self.path.stat()
        except OSError:
            return []
        key = (stat.st_dev, stat.st_ino)
        if key != self.key or stat.st_size < self.offset:  # a new or rewritten file (a resumed run): start over
            self.key, self.offset, self.records, self.pending = key, 0, [], b""
        if stat.st_size > self.offset:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read(stat.st_size - self.offset)
            self.bytes_read += len(data)
            self.offset += len(data)
            data, self.pending = self.pending + data, b""
            complete = data.rfind(b"\n") + 1  # a line being written right now (no newline yet) waits in memory
            self.pending = data[complete:]
            for line in data[:complete].decode("utf-8", errors="replace").splitlines():
                try:
                    self.records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return list(self.records)


_readers: "OrderedDict[str, TrainerLogReader]" = OrderedDict()
_readers_lock = threading.Lock()
_KEEP_READERS = 64


def trainer_log_reader(run_dir: str | Path) -> TrainerLogReader:
    """The process-wide incremental reader of a run's ``trainer_log.jsonl``."""
    path = Path(run_dir) / "trainer_log.jsonl"
    with _readers_lock:
        reader = _readers.get(str(path))
        if reader is None:
            reader = _readers[str(path)] = TrainerLogReader(path)
            while len(_readers) > _KEEP_READERS:
                _readers.popitem(last=False)
        _readers.move_to_end(str(path))
        return reader


def read_trainer_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """Records of ``trainer_log.jsonl``; a line being written right now (no newline yet) is skipped. Only the
    bytes appended since the previous call are read."""
    reader = trainer_log_reader(run_dir)
    with _readers_lock:  # two polls of the same job must not read the same bytes twice
        return reader.read()


def log_tail(path: Optional[str | Path], lines: int = 30) -> str:
    """The last ``lines`` of the project's own lines of a log; library warnings and tqdm bars are collapsed into
    one closing line (``rbft_core.log_filter``)."""
    if not path:
        return ""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return filter_log(text, lines)


def _adapter_note(run_dir: str) -> str:
    adapter = Path(run_dir) / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        return ""
    records = read_trainer_log(run_dir)  # the adapter is saved at the last logged step (end or graceful stop)
    step = records[-1].get("current_steps") if records else None
    return str(adapter) + (f" (step {step})" if step is not None else "")


def _run_row(run) -> dict[str, Any]:
    records = read_trainer_log(run.run_dir)
    last = records[-1] if records else {}
    ended = run.ended_at
    started = run.created_at
    duration = (ended - started).total_seconds() if ended and started else None
    if duration is None and started and run.status == "running":
        now = datetime.now(timezone.utc) if started.tzinfo else datetime.now()
        duration = (now - started).total_seconds()
    evals = next(iter((run.metrics or {}).get("eval", {}).values()), {})
    cfg = run.config or {}
    return {
        "run_id": run.id, "kind": run.kind, "name": KIND_NAMES.get(run.kind, run.kind), "stage": run.stage,
        "status": run.status, "parent": run.parent_run_id or "", "job_id": run.job_id, "run_dir": run.run_dir,
        "steps": f"{last.get('current_steps', '')}/{last.get('total_steps', '')}" if last else "",
        "settings": _settings_text(cfg), "duration_s": round(duration, 1) if duration is not None else None,
        "train_loss": (run.metrics or {}).get("train_loss"), "accuracy": evals.get("accuracy"),
        "macro_f1": evals.get("macro_f1"), "adapter": _adapter_note(run.run_dir), "base_model": run.base_model,
    }


def _settings_text(cfg: dict[str, Any]) -> str:
    if "eval" in cfg:  # a zero-shot run recorded before run specs
        return f"frames {cfg['eval'].get('num_frames')}"
    if cfg.get("task") == "evaluate" or "run" in cfg and "lr" not in cfg:
        return Sampling.of(cfg).describe()
    keys = (("lr", "lr"), ("epochs", "epochs"), ("lora_rank", "r"), ("num_frames", "frames"), ("batch_size", "batch"),
            ("rationale_source", "source"))
    return ", ".join(f"{short} {cfg[k]}" for k, short in keys if k in cfg and (k != "rationale_source" or cfg.get("stage") == 1))


def job_view(db_url: Optional[str], job_id: int) -> dict[str, Any]:
    """Everything the live panel shows for one job."""
    job = job_status(db_url, job_id)
    with _session(db_url) as s:
        runs = [_run_row(r) for r in jq.runs_of_job(s, job_id)]
    curves = {r["run_id"]: {"name": r["name"], "records": read_trainer_log(r["run_dir"])} for r in runs
              if r["kind"] != "zero_shot"}
    current = next((r for r in reversed(runs) if curves.get(r["run_id"], {}).get("records")), None)
    last = curves[current["run_id"]]["records"][-1] if current else {}
    stage = {
        "name": current["name"] if current else "",
        "step": last.get("current_steps", 0), "total": last.get("total_steps", 0),
        "eta": last.get("remaining_time", ""), "elapsed": last.get("elapsed_time", ""),
        "throughput": last.get("throughput"), "loss": last.get("loss"),
    }
    log = runs[-1]["run_dir"] + "/train.log" if runs and Path(runs[-1]["run_dir"], "train.log").is_file() else None
    return {"job": job, "runs": runs, "curves": curves, "stage": stage,
            "log": log_tail(job.get("log_path")) or log_tail(log), "active": job["status"] in ("queued", "running"),
            "duration_s": job_duration_s(job)}


def job_duration_s(job: dict[str, Any]) -> Optional[float]:
    """Seconds from the job's start (its creation while queued) to its end, or to now while it runs."""
    started = job.get("started_at") or job.get("created_at")
    if started is None:
        return None
    ended = job.get("ended_at") or (datetime.now(timezone.utc) if started.tzinfo else datetime.now())
    if (ended.tzinfo is None) != (started.tzinfo is None):  # SQLite returns naive UTC times
        ended, started = ended.replace(tzinfo=None), started.replace(tzinfo=None)
    return max(0.0, (ended - started).total_seconds())


def duration_text(seconds: Optional[float]) -> str:
    """``42 s``, ``3 min 12 s``, ``1 h 05 min``."""
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def active_training_job(db_url: Optional[str], dataset: Optional[str] = None) -> Optional[dict[str, Any]]:
    """The newest queued/running train, pipeline or evaluate job (of ``dataset`` when given) as
    ``{"job": id, "dataset": name, "model": base model}``: the page re-attaches to it after a reload or an app restart."""
    recover_jobs(db_url)  # a job whose process died is shown as interrupted, not as running forever
    with _session(db_url) as s:
        for job in jq.list_jobs(s, limit=200, kinds=TRAIN_JOB_KINDS):
            if job.status not in jq.ACTIVE_STATUSES:
                continue
            if dataset is None or job.dataset == dataset:
                return {"job": job.id, "dataset": job.dataset, "model": job.model}
    return None


def latest_training_job(db_url: Optional[str]) -> Optional[dict[str, Any]]:
    """The job the Train tab shows on load: the running one (re-attached), else the newest finished one (shown
    as finished, curves and log included, until another job starts), as ``{"job", "dataset", "model", "active"}``."""
    active = active_training_job(db_url)
    if active is not None:
        return {**active, "active": True}
    with _session(db_url) as s:
        for job in jq.list_jobs(s, limit=1, kinds=TRAIN_JOB_KINDS):
            return {"job": job.id, "dataset": job.dataset, "model": job.model, "active": False}
    return None


def run_history(db_url: Optional[str], dataset: str) -> list[dict[str, Any]]:
    with _session(db_url) as s:
        ds = queries.get_dataset(s, dataset)
        return [_run_row(r) for r in jq.list_runs(s, ds.id)]


def comparison(db_url: Optional[str], dataset: str, split: str = "test") -> dict[str, Any]:
    """The newest evaluated run of each kind, with per-class F1 and confusion matrices (no files written)."""

    with _session(db_url) as s:
        ds = queries.get_dataset(s, dataset)
        labels = list(ds.labels or [])
        newest: dict[str, dict[str, Any]] = {}
        for run in jq.list_runs(s, ds.id):  # newest first
            flat = (run.metrics or {}).get("eval", {}).get(split)
            if flat and run.kind not in newest:
                newest[run.kind] = {"run_id": run.id, "kind": run.kind, "name": KIND_NAMES.get(run.kind, run.kind),
                                    **flat, "confusion": _confusion(run.run_dir, split)}
    return {"labels": labels, "split": split, "rows": [newest[k] for k in KIND_ORDER if k in newest]}


def _confusion(run_dir: str, split: str) -> Optional[dict[str, Any]]:
    try:
        results = json.loads((Path(run_dir) / "eval_results.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return results.get("confusion_matrix") if results.get("split") == split else None


def predictions(db_url: Optional[str], run_id: str) -> list[dict[str, Any]]:
    """Per video: truth, prediction, its probability, and the rationale the run's Stage-I model writes
    for the video (the Stage-I run itself, or the parent of an RB-FT run), least confident first."""
    with _session(db_url) as s:
        run = jq.get_run(s, run_id)
        rationale_run = run.id if run.kind == "stage1" else (run.parent_run_id if run.kind == "stage2" else None)
        rows = jq.run_predictions(s, run_id)
        rationales = ({p["video_id"]: p["answer_text"] for p in jq.run_predictions(s, rationale_run)}
                      if rationale_run else {})
    out = []
    for p in rows:
        prob = float(p["probs"].get(p["predicted"], 0.0))
        out.append({"video_id": p["video_id"], "video": p["video"], "truth": p["truth"], "predicted": p["predicted"],
                    "probability": round(prob, 4), "correct": p["truth"] == p["predicted"],
                    "rationale": rationales.get(p["video_id"], "") if rationale_run else "",
                    "answer": p["answer_text"]})
    return sorted(out, key=lambda r: (r["correct"], r["probability"]))


# ----------------------------------------------------------------------------------------------- plots
def _pyplot():
    import matplotlib  # matplotlib loads only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # matplotlib loads only when a figure is drawn

    return plt


def loss_figure(curves: dict[str, dict[str, Any]], title: str = "Loss"):
    """Train loss (lines) and eval loss (markers) per run against the optimiser step."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
    drawn = False
    for run_id, curve in curves.items():
        train = [(r["current_steps"], r["loss"]) for r in curve["records"] if r.get("loss") is not None]
        evals = [(r["current_steps"], r["eval_loss"]) for r in curve["records"] if r.get("eval_loss") is not None]
        if train:
            line, = ax.plot(*zip(*train), label=f"{curve['name']} train", linewidth=1.6)
            drawn = True
            if evals:
                ax.plot(*zip(*evals), "o--", color=line.get_color(), label=f"{curve['name']} eval", markersize=4)
        elif evals:
            ax.plot(*zip(*evals), "o--", label=f"{curve['name']} eval", markersize=4)
            drawn = True
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=8, loc="upper right")
    else:
        ax.text(0.5, 0.5, "no loss logged yet", ha="center", va="center", transform=ax.transAxes, color="grey")
    fig.tight_layout()
    plt.close(fig)
    return fig


def confusion_figure(table: dict[str, Any]):
    """One confusion matrix per compared run, side by side."""
    plt = _pyplot()
    rows = [r for r in table["rows"] if r.get("confusion")]
    fig, axes = plt.subplots(1, max(1, len(rows)), figsize=(3.1 * max(1, len(rows)), 3.0), dpi=100, squeeze=False)
    for ax, row in zip(axes[0], rows):
        labels, matrix = row["confusion"]["labels"], row["confusion"]["matrix"]
        ax.imshow(matrix, cmap="Blues")
        for i, line in enumerate(matrix):
            for j, n in enumerate(line):
                ax.text(j, i, str(n), ha="center", va="center", color="black", fontsize=10)
        ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_title(row["name"], fontsize=10)
    axes[0][0].set_ylabel("truth")
    if not rows:
        axes[0][0].text(0.5, 0.5, "no evaluated runs yet", ha="center", va="center", color="grey")
        axes[0][0].axis("off")
    fig.tight_layout()
    plt.close(fig)
    return fig


def per_class_figure(table: dict[str, Any]):
    """Per-class F1 bars, one group per label, one bar per compared run."""
    plt = _pyplot()
    labels, rows = table["labels"], table["rows"]
    fig, ax = plt.subplots(figsize=(7, 3.0), dpi=100)
    width = 0.8 / max(1, len(rows))
    for k, row in enumerate(rows):
        xs = [i + (k - (len(rows) - 1) / 2) * width for i in range(len(labels))]
        ax.bar(xs, [row.get(f"f1_{label}", 0.0) for label in labels], width, label=row["name"])
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1")
    ax.set_title("Per-class F1")
    ax.grid(axis="y", alpha=0.3)
    if rows:
        ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig

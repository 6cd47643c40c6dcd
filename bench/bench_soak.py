"""Soak: one training job runs for --minutes (default 10) while it writes --stderr-mb-per-min (default 10 MB/min)
to stderr, the Train page is closed and reopened every minute, and the app is restarted --restarts times
(default 2). Prints

    stalls      progress (the job's step) not advancing for --stall-s while running, or the app not answering
                a request within 5 s (goal 0)
    re-attach   seconds from opening the page until its Train tab shows the running job (goal <= 5 s)
    final       the job's final status (goal succeeded)

The job is started like the Train tab starts it (``jobs.runner.start_job`` with a ``TrainSpec``), on the demo world
(12 rendered clips) with a tiny random Qwen2.5-VL; its step count is calibrated so it ends after about --minutes.
The stderr noise comes from a ``sitecustomize.py`` on the job's PYTHONPATH (only in the job process).
The page is a real headless chromium (/usr/bin/chromium through playwright); without it re-attach is "n/a".

    .venv/bin/python bench/bench_soak.py                      # the full soak: about 10-12 minutes
    .venv/bin/python bench/bench_soak.py --minutes 1 --restarts 1   # a quick check that it starts and reports
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
sys.path.insert(0, str(REPO))

CHROMIUM = "/usr/bin/chromium"
NOISE = '''
import os, sys, threading, time
def _noise():
    rate = float(os.environ.get("RBFT_SOAK_STDERR_BPS", "0"))
    line = ("soak noise " + "x" * 117 + "\\n")
    chunk = line * max(1, int(rate / 10 / len(line)))
    while True:
        sys.stderr.write(chunk)
        sys.stderr.flush()
        time.sleep(0.1)
try:
    _cmd = open("/proc/self/cmdline", "rb").read()
except OSError:
    _cmd = b""
if b"rbft_core.jobs.runner" in _cmd and float(os.environ.get("RBFT_SOAK_STDERR_BPS", "0")) > 0:
    threading.Thread(target=_noise, name="soak-noise", daemon=True).start()
'''


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _world(root: Path, db_url: str) -> str:
    from sqlalchemy import select

    from db import queries
    from db.engine import session_scope
    from db.models import Video
    from rbft_core.data.importer import import_videos
    from rbft_core.demo import WorldSpec, render_world

    manifest = render_world(root / "world", WorldSpec(num_clips=12, num_frames=8, size=(112, 84), test_fraction=0.3))
    import_videos(db_url, "world", manifest.parent, manifest=manifest, fmt="jsonl", preset="smart-home")
    with session_scope(db_url) as s:
        for video in s.scalars(select(Video)):
            graph = video.meta["scene_graph"]
            queries.add_suggestion(s, video.id, model_id="scene-graph", prompt_version="rationale-v1",
                                   raw_text=str(graph), parse_status="ok", label_hint=True, mean_logprob=-1.0, **graph)
    return "world"


def _spec(dataset: str, model: Path, steps: int):
    from rbft_core.specs import TrainSpec

    return TrainSpec(dataset=dataset, stage=2, model=str(model), max_steps=steps, batch_size=1, num_frames=4,
                     max_pixels=3136, lora_rank=4, save_steps=max(50, steps // 5))


def _wait_job(db_url: str, job_id: int, timeout_s: float) -> dict:
    from rbft_core.jobs.runner import job_status

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = job_status(db_url, job_id)
        if status["status"] not in ("queued", "running"):
            return status
        time.sleep(1.0)
    return job_status(db_url, job_id)


CALIBRATION_STEPS = 400


def _seconds_per_step(db_url: str, dataset: str, model: Path, data_dir: Path) -> float:
    """A short calibration job: wall seconds per step once the model is loaded."""
    from rbft_core.jobs.runner import start_job

    # enough steps that the trainer log's whole-second elapsed times resolve the rate (12 steps read as 0 s)
    job_id = start_job(db_url, _spec(dataset, model, CALIBRATION_STEPS).replace(run_id="soak-calibration"))
    status = _wait_job(db_url, job_id, 900)
    if status["status"] != "succeeded":
        raise SystemExit(f"calibration job {job_id} {status['status']}: {status['error']}")
    records = [json.loads(line) for line in (data_dir / "runs" / "soak-calibration" / "trainer_log.jsonl")
               .read_text().splitlines() if line.strip()]
    first, last = records[0], records[-1]
    elapsed = _hms(last["elapsed_time"]) - _hms(first["elapsed_time"])
    return max(0.002, elapsed / max(1, last["current_steps"] - first["current_steps"]))


def _hms(text: str) -> float:
    """``1 day, 2:03:04`` / ``0:01:23`` (the trainer log's elapsed time) -> seconds."""
    days = 0
    if "day" in text:
        head, text = text.split(",", 1)
        days = int(head.split()[0])
    hours, minutes, seconds = (float(x) for x in text.strip().split(":"))
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


class App:
    def __init__(self, db_url: str, data_dir: Path, env: dict):
        self.db_url, self.data_dir, self.env, self.proc, self.url = db_url, data_dir, env, None, ""

    def start(self) -> float:
        port = _free_port()
        log = open(self.data_dir / f"soak-app-{port}.log", "wb")
        began = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--port", str(port), "--db", self.db_url,
                                      "--data-dir", str(self.data_dir)], cwd=REPO, env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.url = f"http://127.0.0.1:{port}/"
        while time.monotonic() - began < 180:
            if self.proc.poll() is not None:
                raise SystemExit(f"the app exited ({self.proc.returncode}); see {log.name}")
            try:
                with urllib.request.urlopen(self.url, timeout=2):
                    return time.monotonic() - began
            except OSError:
                time.sleep(0.25)
        raise SystemExit(f"the app did not answer within 180 s; see {log.name}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)

    def answers_within(self, seconds: float) -> bool:
        try:
            with urllib.request.urlopen(self.url, timeout=seconds):
                return True
        except OSError:
            return False


def _reattach_seconds(browser, url: str, timeout_s: float = 60.0) -> float:
    """Open the page, go to the Train tab, and time until it shows the running job again; close it."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    began = time.monotonic()
    try:
        page.goto(url)
        page.get_by_role("tab", name="Train").click()
        page.wait_for_function("() => { const el = document.querySelector('#train-progress');"
                               " return el && ['queued', 'running'].includes(el.dataset.status); }",
                               timeout=timeout_s * 1000)
        return time.monotonic() - began
    except Exception:  # noqa: BLE001 - a page that never re-attaches is a result, not a crash of the bench
        return float("inf")
    finally:
        page.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--stderr-mb-per-min", type=float, default=10.0)
    parser.add_argument("--restarts", type=int, default=2)
    parser.add_argument("--reopen-every-s", type=float, default=60.0)
    parser.add_argument("--stall-s", type=float, default=30.0, help="no new step for this long while running = stall")
    args = parser.parse_args(argv)

    from rbft_core.jobs.runner import job_status, start_job
    from rbft_core.models.tiny import TinySpec, build_tiny_model

    root = Path(tempfile.mkdtemp(prefix="rbft-soak-"))
    data_dir = root / "data"
    data_dir.mkdir()
    os.environ["RBFT_DATA_DIR"] = str(data_dir)
    db_url = f"sqlite:///{root / 'rbft.db'}"
    noise_dir = root / "noise"
    noise_dir.mkdir()
    (noise_dir / "sitecustomize.py").write_text(NOISE)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(noise_dir), str(REPO)])  # the job inherits it
    os.environ["RBFT_SOAK_STDERR_BPS"] = str(args.stderr_mb_per_min * 1e6 / 60)
    env = dict(os.environ, OMP_NUM_THREADS="1")

    print(f"soak in {root}: building the world and a tiny model ...", flush=True)
    dataset = _world(root, db_url)
    model = build_tiny_model(root / "tiny", TinySpec(family="qwen2_5_vl"))
    step_s = _seconds_per_step(db_url, dataset, model, data_dir)
    steps = max(20, int(args.minutes * 60 / step_s))
    print(f"calibrated {step_s:.2f} s/step -> {steps} steps for about {args.minutes:g} min", flush=True)

    app = App(db_url, data_dir, env)
    app.start()
    job_id = start_job(db_url, _spec(dataset, model, steps).replace(run_id="soak"))
    browser, playwright = None, None
    if os.path.exists(CHROMIUM):
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
    began = time.monotonic()
    restarts_at = [began + args.minutes * 60 * (k + 1) / (args.restarts + 1) for k in range(args.restarts)]
    next_reopen = began + min(20.0, args.reopen_every_s)
    stalls, reattach, last_step, last_change, stalled, unanswered = 0, [], -1, time.monotonic(), False, 0
    try:
        while True:
            status = job_status(db_url, job_id)
            if status["status"] not in ("queued", "running"):
                break
            now = time.monotonic()
            found = re.search(r"step (\d+)", status["progress_text"] or "")
            step = int(found.group(1)) if found else 0
            if step != last_step:
                last_step, last_change, stalled = step, now, False
            elif status["status"] == "running" and now - last_change > args.stall_s and not stalled:
                stalls, stalled = stalls + 1, True
                print(f"  stall: no new step for {now - last_change:.0f} s at step {step}", flush=True)
            if restarts_at and now >= restarts_at[0]:
                restarts_at.pop(0)
                app.stop()
                up = app.start()
                print(f"  app restarted (up in {up:.1f} s)", flush=True)
                next_reopen = now  # reopen the page at once after a restart
            if now >= next_reopen:
                if not app.answers_within(5.0):
                    unanswered += 1
                    stalls += 1
                if browser is not None:
                    reattach.append(_reattach_seconds(browser, app.url))
                    print(f"  page reopened: re-attached in {reattach[-1]:.1f} s (step {step}/{steps})", flush=True)
                next_reopen = now + args.reopen_every_s
            if now - began > args.minutes * 60 * 3 + 600:
                print("  the job runs far past its time; giving up", flush=True)
                break
            time.sleep(1.0)
    finally:
        app.stop()
        if browser is not None:
            browser.close()
            playwright.stop()
    final = job_status(db_url, job_id)
    log = Path(final["log_path"] or "")
    log_mb = log.stat().st_size / 1e6 if log.is_file() else 0.0
    worst = max(reattach) if reattach else None
    print(f"stalls {stalls} (goal 0; app not answering within 5 s: {unanswered})")
    print("re-attach " + (f"max {worst:.1f} s over {len(reattach)} reopenings (goal <= 5 s)" if worst is not None
                          else "n/a (no /usr/bin/chromium)"))
    print(f"final {final['status']} (goal succeeded){': ' + final['error'] if final['error'] else ''}; "
          f"job log {log_mb:.1f} MB in {(time.monotonic() - began) / 60:.1f} min")
    ok = stalls == 0 and final["status"] == "succeeded" and (worst is None or worst <= 5.0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Training throughput and peak memory: the project (`rbft train`) vs LLaMA-Factory itself (`llamafactory-cli train`).

Both sides train the same model folder on the same examples (`rbft export --format llamafactory` of the bench
dataset; the project reads the same rows from its database) with the same sampling (frame count, pixel budget),
LoRA targets (every linear layer of the language model), rank, alpha, dropout, batch, epochs, learning rate and
schedule, seed, no gradient checkpointing, fp32 on CPU, and the same number of intra-op threads.

Each repetition runs three processes, each under `/usr/bin/time -v` (its own peak RSS): LLaMA-Factory, the
project with a cold frame cache (a fresh data folder: every video decoded in the first epoch) and the project
again with that folder's now warm cache. The order alternates between repetitions (LLaMA-Factory first, then
last). samples/s is `train_samples_per_second` from each run's `all_results.json` (the Trainer's own figure on
both sides: model loading and LLaMA-Factory's tokenisation before training are outside it); the process's wall
time is printed beside it. Medians of the repetitions, and the ratios, are printed as a Markdown table.

    # the LLaMA-Factory side lives in its own virtualenv (`make bench-anchor` creates .venv-lf)
    .venv/bin/python bench/bench_train.py --lf-python .venv-lf/bin/python            # both workloads, 3 reps
    .venv/bin/python bench/bench_train.py --workload demo --model tiny --clips 8 --epochs 1 --reps 1  # smoke
    .venv/bin/python bench/bench_train.py --device cuda ...                           # on a GPU machine

Workloads (issue #17): ``demo`` = the demo world's 180 train clips (112x84), Stage I, 4 frames, batch 8, 2 epochs;
``real`` = 20 10-s 640x360 cuts of the real doorbell clips, Stage II labels, 8 frames at 448x252, batch 4,
3 epochs. ``--model demo`` (default) is the demo base model (`rbft demo build`, cached in data/demo);
``demo-shape`` is a random model of the same shape (no pre-training, seconds to build), ``tiny`` the smallest.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import train_setup as setup  # noqa: E402  (bench/ is not a package)

REPO = setup.REPO
TIME = "/usr/bin/time"


def _peak_rss_kb(stderr: str) -> int | None:
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    return int(match.group(1)) if match else None


def _gpu_sampler(pid: int, peak: dict) -> threading.Thread:
    """Peak GPU memory of ``pid``'s process tree as nvidia-smi reports it (polled every 0.2 s)."""

    def poll():
        while peak.get("running"):
            try:
                out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout
                used = sum(int(m) for p, m in (line.split(",") for line in out.strip().splitlines() if "," in line)
                           if int(p) == pid)
                peak["mib"] = max(peak.get("mib", 0), used)
            except (OSError, ValueError, subprocess.SubprocessError):
                pass
            time.sleep(0.2)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    return thread


def measure(cmd: list[str], env: dict, log: Path, timeout: float, cwd: Path, device: str) -> dict:
    """Run ``cmd`` as its own process; its wall time, peak RSS (and peak GPU memory on CUDA)."""
    timed = [TIME, "-v", *cmd] if Path(TIME).exists() else cmd
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(timed, env=env, cwd=cwd, stdout=out, stderr=subprocess.PIPE, text=True)
        gpu: dict = {"running": True}
        sampler = _gpu_sampler(proc.pid, gpu) if device != "cpu" else None
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            raise SystemExit(f"timed out after {timeout:.0f} s: {' '.join(cmd)} (log {log})")
        finally:
            gpu["running"] = False
            if sampler:
                sampler.join(timeout=2)
    wall = time.perf_counter() - started
    log.with_suffix(".stderr").write_text(err)
    if proc.returncode != 0:
        raise SystemExit(f"exit {proc.returncode}: {' '.join(cmd)}\n{err[-3000:]}")
    peak = _peak_rss_kb(err)
    return {"wall_s": round(wall, 1), "peak_rss_gb": round(peak / 2**20, 3) if peak else None,
            "peak_gpu_mib": gpu.get("mib"), "load_before": round(load_before, 2),
            "load_after": round(os.getloadavg()[0], 2)}


def run_lf(prep: setup.Prepared, args, rep: int) -> dict:
    import yaml  # the project venv has PyYAML (specs are YAML)

    out = prep.root / f"rep{rep}-lf"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    config = out / "train.yaml"
    config.write_text(yaml.safe_dump(setup.lf_config(prep, out / "output", args.device)))
    env = setup.run_env(args.threads)
    env.pop("PYTHONPATH", None)  # LLaMA-Factory's venv must not see the project's packages
    env["HF_DATASETS_CACHE"] = str(out / "hf-datasets")  # no tokenised dataset reused between repetitions
    cli = str(Path(args.lf_python).parent / "llamafactory-cli")
    result = measure([cli, "train", str(config)], env, out / "train.log", args.timeout, out, args.device)
    metrics = json.loads((out / "output" / "all_results.json").read_text())
    return {**result, "samples_per_s": metrics["train_samples_per_second"], "train_runtime": metrics["train_runtime"],
            "train_loss": metrics.get("train_loss")}


def run_project(prep: setup.Prepared, args, rep: int, cache: str) -> dict:
    data = prep.root / f"rep{rep}-project"
    if cache == "cold":
        shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True, exist_ok=True)
    run_id = f"rep{rep}-{cache}"
    cmd = setup.project_command(prep, args.project_python, data, run_id, args.device) + args.project_flag
    env = setup.run_env(args.threads)
    env["PYTHONPATH"] = os.pathsep.join([str(args.project_root), *filter(None, [os.environ.get("PYTHONPATH")])])
    result = measure(cmd, env, data / f"{run_id}.log", args.timeout, Path(args.project_root), args.device)
    metrics = json.loads((data / "runs" / run_id / "all_results.json").read_text())
    return {**result, "samples_per_s": metrics["train_samples_per_second"], "train_runtime": metrics["train_runtime"],
            "train_loss": metrics.get("train_loss")}


def versions(python: str, packages: list[str]) -> dict:
    code = ("import importlib.metadata as m, json; out = {}\n"
            f"for p in {packages!r}:\n"
            "    try: out[p] = m.version(p)\n"
            "    except m.PackageNotFoundError: out[p] = None\n"
            "print(json.dumps(out))")
    try:
        return json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout)
    except (OSError, subprocess.CalledProcessError, ValueError):
        return {}


def _median(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def summarise(rows: list[dict]) -> dict:
    sides = {}
    for side in ("lf", "cold", "warm"):
        runs = [r[side] for r in rows if side in r]
        sides[side] = {"samples_per_s": _median([r["samples_per_s"] for r in runs]),
                       "samples_per_s_all": [r["samples_per_s"] for r in runs],
                       "peak_rss_gb": _median([r["peak_rss_gb"] for r in runs]),
                       "peak_rss_gb_all": [r["peak_rss_gb"] for r in runs],
                       "peak_gpu_mib": _median([r["peak_gpu_mib"] for r in runs]),
                       "wall_s": _median([r["wall_s"] for r in runs])}
    lf = sides["lf"]["samples_per_s"]
    for side in ("cold", "warm"):
        sides[side]["ratio"] = round(sides[side]["samples_per_s"] / lf, 2) if lf else None
        # within each repetition (the two sides minutes apart): how much of the ratio is the machine's drift
        sides[side]["ratio_per_rep"] = [round(r[side]["samples_per_s"] / r["lf"]["samples_per_s"], 2)
                                        for r in rows if side in r and r.get("lf", {}).get("samples_per_s")]
    return sides


def paired(results: dict) -> str:
    """Each repetition's own ratios, beside the table's ratio of medians."""
    lines = []
    for res in results.values():
        s = res["summary"]
        lines.append(f"{res['workload']['title']}: ratio within each repetition, cold "
                     f"{', '.join(f'{r}x' for r in s['cold']['ratio_per_rep'])}; warm "
                     f"{', '.join(f'{r}x' for r in s['warm']['ratio_per_rep'])}")
    return "\n".join(lines)


def table(results: dict) -> str:
    lines = ["| workload | LLaMA-Factory samples/s | project samples/s cold / warm | ratio cold / warm | "
             "peak RSS GB LF / project cold / warm | process wall s LF / cold / warm |",
             "|---|---|---|---|---|---|"]
    for name, res in results.items():
        s = res["summary"]
        lf, cold, warm = s["lf"], s["cold"], s["warm"]
        lines.append(
            f"| {res['workload']['title']} | {lf['samples_per_s']} ({_span(lf)}) | {cold['samples_per_s']} / "
            f"{warm['samples_per_s']} | **{cold['ratio']}x / {warm['ratio']}x** | {lf['peak_rss_gb']} / "
            f"{cold['peak_rss_gb']} / {warm['peak_rss_gb']} | {lf['wall_s']} / {cold['wall_s']} / {warm['wall_s']} |")
    return "\n".join(lines)


def _span(side: dict) -> str:
    values = side["samples_per_s_all"]
    return f"{min(values)}-{max(values)}" if len(values) > 1 else "1 run"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", action="append", choices=sorted(setup.WORKLOADS),
                        help="demo and/or real (repeatable; default: both)")
    parser.add_argument("--reps", type=int, default=3, help="alternating repetitions (default 3)")
    parser.add_argument("--model", default="demo", help="demo | demo-shape | tiny | a model folder (default demo)")
    parser.add_argument("--clips", type=int, default=0, help="clips per workload (default: 180 demo, 20 real)")
    parser.add_argument("--epochs", type=float, default=0.0, help="epochs (default: 2 demo, 3 real)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads of each side (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu (fp32) or cuda (bf16) (default cpu)")
    parser.add_argument("--lf-python", default=str(REPO / ".venv-lf" / "bin" / "python"),
                        help="python of the LLaMA-Factory venv (default .venv-lf/bin/python; `make bench-anchor`)")
    parser.add_argument("--project-python", default=sys.executable, help="python of the project (default: this one)")
    parser.add_argument("--project-root", default=str(REPO),
                        help="checkout whose rbft_core the project side runs (default: this one; for A/B runs)")
    parser.add_argument("--project-flag", action="append", default=[],
                        help="an extra `rbft train` flag for the project side, e.g. --project-flag=--vision-cache-mb=0 "
                             "--project-flag=--no-trim-heap (the 'before' of a change; repeatable)")
    parser.add_argument("--out", default=str(REPO / "bench" / "out" / "train-bench"), help="work folder")
    parser.add_argument("--json", default="", help="also write the results to this JSON file")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per training process (default 3600)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not Path(args.lf_python).exists():
        print(f"error: no LLaMA-Factory python at {args.lf_python}; run `make bench-anchor` (creates .venv-lf with "
              "llamafactory==0.9.5) or pass --lf-python", file=sys.stderr)
        return 2
    if not Path(TIME).exists():
        print(f"note: {TIME} missing (Debian: apt-get install -y time); peak RSS is not reported", file=sys.stderr)
    out = Path(args.out)
    results = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": args.threads,
                           "device": args.device, "load_at_start": os.getloadavg()},
               "project_flags": args.project_flag,
               "versions": {"project": versions(args.project_python, ["torch", "transformers", "peft", "accelerate"]),
                            "llamafactory": versions(args.lf_python, ["llamafactory", "torch", "transformers", "peft",
                                                                      "accelerate"])}}
    workloads = {}
    for name in args.workload or ["demo", "real"]:
        workload = setup.WORKLOADS[name]
        workload = replace(workload, clips=args.clips or workload.clips, epochs=args.epochs or workload.epochs)
        prep = setup.prepare(workload, out / f"{name}-{workload.clips}", args.model)
        print(f"== {workload.title}: {prep.examples} examples, model {prep.model_dir}", flush=True)
        rows = []
        for rep in range(args.reps):
            order = ["lf", "cold", "warm"] if rep % 2 == 0 else ["cold", "warm", "lf"]
            row = {}
            for side in order:
                row[side] = run_lf(prep, args, rep) if side == "lf" else run_project(prep, args, rep, side)
                print(f"   rep {rep + 1} {side:>4}: {row[side]['samples_per_s']:.2f} samples/s, peak RSS "
                      f"{row[side]['peak_rss_gb']} GB, {row[side]['wall_s']} s, load {row[side]['load_before']}"
                      f"->{row[side]['load_after']}", flush=True)
            rows.append(row)
        workloads[name] = {"workload": workload.to_dict(), "model": str(prep.model_dir), "examples": prep.examples,
                           "runs": rows, "summary": summarise(rows)}
    results["workloads"] = workloads
    print()
    print(table(workloads))
    print(paired(workloads))
    loads = [r[s]["load_before"] for w in workloads.values() for r in w["runs"] for s in r]
    if max(loads) > 0.5 * (os.cpu_count() or 1):
        print(f"\nwarning: the load average reached {max(loads)} on {os.cpu_count()} CPUs while measuring; "
              "these figures are not a measurement of a quiet machine")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

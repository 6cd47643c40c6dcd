"""Data, model and command lines of the training bench (`bench/bench_train.py`): both sides get the same.

A *workload* names the clips, the stage, the sampling and the optimisation settings. `prepare` builds it
once in the project's own venv: the clips (the demo world, or 10-s cuts of the real doorbell footage), a
SQLite dataset with Stage-I rationales / Stage-II labels, the model folder (the demo base model, a tiny
model, or a folder given), and the `rbft export --format llamafactory` folder LLaMA-Factory reads.
`project_command` and `lf_config` then turn the same settings into the two command lines.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL_CLIPS = Path(os.environ.get("RBFT_SHARED_DIR", "/work/shared")) / "real" / "smarthome-bench"
DATASET = "bench"


@dataclass(frozen=True)
class Workload:
    """One row of the bench table: what is trained and how (identical on both sides)."""

    name: str
    title: str
    stage: int
    num_frames: int
    max_pixels: int
    batch_size: int
    epochs: float
    clips: int
    lr: float = 2e-4
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    warmup_ratio: float = 0.1
    seed: int = 0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


WORKLOADS = {
    # the two rows; `--clips/--epochs` shrink them for a smoke run
    "demo": Workload("demo", "demo world, Stage I, 112x84, 4 frames", stage=1, num_frames=4,
                     max_pixels=128 * 28 * 28, batch_size=8, epochs=2.0, clips=180),
    "real": Workload("real", "real doorbell footage, 10-s 640x360 cuts, Stage II, 8 frames at 448x252", stage=2,
                     num_frames=8, max_pixels=448 * 252, batch_size=4, epochs=3.0, clips=20),
}


@dataclass
class Prepared:
    workload: Workload
    root: Path
    db_url: str
    model_dir: Path
    export_dir: Path
    lf_dataset: str
    min_duration_s: float
    examples: int

    def to_dict(self) -> dict:
        return {"workload": self.workload.to_dict(), "root": str(self.root), "db_url": self.db_url,
                "model_dir": str(self.model_dir), "export_dir": str(self.export_dir), "lf_dataset": self.lf_dataset,
                "min_duration_s": self.min_duration_s, "examples": self.examples}

    @classmethod
    def from_dict(cls, d: dict) -> "Prepared":
        return cls(Workload(**d["workload"]), Path(d["root"]), d["db_url"], Path(d["model_dir"]), Path(d["export_dir"]),
                   d["lf_dataset"], d["min_duration_s"], d["examples"])


# ------------------------------------------------------------------------------------------------- clips


def demo_world(out: Path, clips: int) -> Path:
    """The demo's own world geometry (112x84, 16 frames at 8 fps); 180 train clips = the full demo's train split."""
    from rbft_core.demo import WorldSpec, render_world
    from rbft_core.demo.prepare import DemoConfig

    full = DemoConfig().world
    if clips == 180:  # exactly the demo world (240 clips, 180 of them train)
        return render_world(out / "world", full)
    return render_world(out / f"world-{clips}", replace(full, num_clips=clips, test_fraction=0.0))


def real_cuts(out: Path, clips: int, seconds: float = 10.0) -> Path:
    """``clips`` 10-s cuts of the two real doorbell clips (640x360, H.264 re-encoded at the source fps).

    Cuts start at evenly spaced times over each source; the 57-s clip gets about three quarters of them.
    Labels alternate normal / abnormal (a throughput bench: the words only need two classes)."""
    import imageio_ffmpeg

    from rbft_core.data.video import probe_video

    folder = out / f"real-{clips}"
    manifest = folder / "manifest.jsonl"
    if manifest.exists():
        return manifest
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    sources = [REAL_CLIPS / "ring_00037.mp4", REAL_CLIPS / "example_video.mp4"]
    durations = [probe_video(p).duration_s for p in sources]
    first = max(1, round(clips * 0.7)) if clips > 1 else 1
    counts = [first, clips - first]
    rows = []
    for source, duration, count in zip(sources, durations, counts):
        span = max(0.0, duration - seconds - 0.1)
        for k in range(count):
            start = span * k / max(1, count - 1)
            name = f"clips/{source.stem}_{k:02d}.mp4"
            subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-ss", f"{start:.3f}",
                            "-i", str(source), "-t", f"{seconds}", "-an", "-c:v", "libx264", "-preset", "veryfast",
                            "-pix_fmt", "yuv420p", str(folder / name)], check=True)
            rows.append({"path": name, "label": ("normal", "abnormal")[len(rows) % 2], "split": "train",
                         "id": Path(name).stem})
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


# ------------------------------------------------------------------------------------------------- model


def model_folder(kind: str, out: Path) -> Path:
    """``demo``: the demo base model (`rbft demo build`, cached); ``demo-shape``: random weights of the demo base
    model's shape (seconds to build: same compute per step, for smoke runs and profiles); ``tiny``: the smallest
    tiny model; else a model folder."""
    if kind == "demo-shape":
        from rbft_core.demo.pretrain import PretrainConfig
        from rbft_core.models.tiny import build_tiny_model

        return build_tiny_model(out / "demo-shape-qwen2_5_vl", PretrainConfig().tiny_spec())
    if kind == "demo":
        from rbft_core.demo import build_demo

        return build_demo().model_dir
    if kind == "tiny":
        from rbft_core.models.tiny import TinySpec, build_tiny_model

        return build_tiny_model(out / "tiny-qwen2_5_vl", TinySpec())
    path = Path(kind).expanduser().resolve()
    if not (path / "config.json").is_file():
        raise SystemExit(f"--model {kind}: not 'demo', 'tiny' or a model folder with config.json")
    return path


# ------------------------------------------------------------------------------------------------- prepare


def prepare(workload: Workload, root: Path, model: str) -> Prepared:
    """Clips -> SQLite dataset (+ rationales for Stage I) -> `rbft export --format llamafactory`."""
    from sqlalchemy import select

    from db import queries
    from db.engine import init_db, session_scope
    from db.models import Video
    from rbft_core.data.importer import import_videos
    from rbft_core.data.video import probe_video

    root.mkdir(parents=True, exist_ok=True)
    shared = REPO / "bench" / "out"
    manifest = demo_world(shared, workload.clips) if workload.name == "demo" else real_cuts(shared, workload.clips)
    model_dir = model_folder(model, shared)
    db_url = f"sqlite:///{root / 'bench.db'}"
    init_db(db_url)
    import_videos(db_url, DATASET, manifest.parent, manifest=manifest, fmt="jsonl", preset="smart-home")
    with session_scope(db_url) as s:
        videos = list(s.scalars(select(Video)))
        train = [v for v in videos if v.split == "train"]
        if workload.stage == 1:
            for v in videos:
                queries.add_suggestion(s, v.id, model_id="scene-graph", prompt_version="rationale-v1", raw_text="",
                                       parse_status="ok", **v.meta["scene_graph"])
        durations = [probe_video(v.path).duration_s for v in train]
    export_root = root / "export"
    subprocess.run([sys.executable, "-m", "rbft_core.cli.main", "--db", db_url, "--data-dir", str(root / "data"),
                    "export", DATASET, "--format", "llamafactory", "--stage", str(workload.stage), "--status", "any",
                    "--split", "train", "--out", str(export_root), "--name", "lf", "--overwrite"],
                   check=True, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL)
    export_dir = export_root / "lf"
    info = json.loads((export_dir / "dataset_info.json").read_text())
    (name,) = [n for n in info if n.endswith(f"stage{workload.stage}_train")]
    rows = json.loads((export_dir / info[name]["file_name"]).read_text())
    if len(rows) != len(train):
        raise SystemExit(f"the export holds {len(rows)} examples, the dataset {len(train)} train videos")
    return Prepared(workload, root, db_url, model_dir, export_dir, name, min(durations), len(rows))


def _env() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_env(threads: int) -> dict:
    """The environment of both sides: offline, ``threads`` intra-op threads."""
    env = _env()
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[key] = str(threads)
    return env


# ------------------------------------------------------------------------------------------------- commands


def project_command(prep: Prepared, python: str, data_dir: Path, run_id: str, device: str) -> list[str]:
    w = prep.workload
    return [python, "-m", "rbft_core.cli.main", "--db", prep.db_url, "--data-dir", str(data_dir), "train", DATASET,
            "--stage", str(w.stage), "--model", str(prep.model_dir), "--run-id", run_id,
            "--frames", str(w.num_frames), "--max-pixels", str(w.max_pixels),
            "--lora-rank", str(w.lora_rank), "--lora-alpha", str(w.lora_alpha), "--lora-dropout", str(w.lora_dropout),
            "--lr", str(w.lr), "--epochs", str(w.epochs), "--batch-size", str(w.batch_size),
            "--warmup-ratio", str(w.warmup_ratio), "--seed", str(w.seed), "--no-gradient-checkpointing",
            "--rationale-source", "suggestions", "--device", device,
            "--dtype", "float32" if device == "cpu" else "bfloat16", "--json"]


def lf_video_fps(prep: Prepared) -> float:
    """LLaMA-Factory samples min(frames, video_maxlen, floor(duration * video_fps)): a rate that never binds."""
    return math.ceil(10 * (prep.workload.num_frames / prep.min_duration_s + 0.5)) / 10


def lf_config(prep: Prepared, output_dir: Path, device: str) -> dict:
    """`llamafactory-cli train` arguments with the project's settings (LoRA on the LM's linear layers)."""
    w = prep.workload
    cuda = device != "cpu"
    return {
        "model_name_or_path": str(prep.model_dir), "stage": "sft", "do_train": True, "finetuning_type": "lora",
        "lora_rank": w.lora_rank, "lora_alpha": w.lora_alpha, "lora_dropout": w.lora_dropout,
        "lora_target": "all",  # every linear layer of the language model (vision tower and merger stay frozen)
        "dataset": prep.lf_dataset, "dataset_dir": str(prep.export_dir), "template": "qwen2_vl", "cutoff_len": 4096,
        "overwrite_cache": True, "preprocessing_num_workers": None,
        "video_maxlen": w.num_frames, "video_fps": lf_video_fps(prep), "video_max_pixels": w.max_pixels,
        "output_dir": str(output_dir), "overwrite_output_dir": True, "logging_steps": 1, "save_strategy": "no",
        "plot_loss": False, "report_to": "none",
        "per_device_train_batch_size": w.batch_size, "gradient_accumulation_steps": 1, "learning_rate": w.lr,
        "num_train_epochs": w.epochs, "lr_scheduler_type": "cosine", "warmup_ratio": w.warmup_ratio,
        "weight_decay": 0.0, "seed": w.seed, "data_seed": w.seed,
        "disable_gradient_checkpointing": True, "use_cpu": not cuda, "bf16": cuda, "dataloader_num_workers": 0,
    }

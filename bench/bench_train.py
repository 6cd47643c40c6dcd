"""Stage I / Stage II training throughput and peak memory: the project vs a plain HF Trainer loop.

Anchor (LLaMA-Factory is not installed in the project venv; `bench/check_llamafactory_export.py` shows how to
run it in a side virtualenv): the same transformers Trainer, model, LoRA and settings, but with a collator
that decodes every video from its file on every step (moviepy, whole clip) as a plain script does. The project
uses its frame cache (each video decoded once for all epochs and both stages).

    .venv/bin/python bench/bench_train.py [--videos 64] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _decode_every_step_collator():
    import numpy as np
    from moviepy import VideoFileClip
    from PIL import Image

    from rbft_core.training.sft_data import VideoSFTCollator
    from rbft_core.data.video import smart_resize

    class DecodeEveryStep(VideoSFTCollator):
        def videos(self, examples):
            out = []
            for e in examples:
                with VideoFileClip(e.path, audio=False) as clip:
                    frames, fps = list(clip.iter_frames()), clip.fps
                idx = np.linspace(0, len(frames) - 1, self.spec.num_frames).round().astype(int)
                h, w = frames[0].shape[:2]
                rh, rw = smart_resize(h, w, self.spec.size_factor, self.spec.min_pixels, self.spec.max_pixels)
                video = np.stack([np.asarray(Image.fromarray(frames[i]).resize((rw, rh))) for i in idx])
                out.append(_Sampled(video, fps, len(frames), idx.tolist()))
            return out

    return DecodeEveryStep


class _Sampled:
    def __init__(self, frames, fps, total, indices):
        self.frames, self._meta = frames, {"fps": fps, "total_num_frames": total, "frames_indices": indices}

    def metadata(self):
        return self._meta


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--epochs", type=float, default=2.0)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from db import queries
    from db.engine import init_db, session_scope
    from db.models import Video
    from rbft_core.training import sft_data
    from rbft_core.demo import WorldSpec, render_world
    from rbft_core.data.importer import import_videos
    from rbft_core.models.tiny import TinySpec, build_tiny_model
    from rbft_core.specs.training import TrainSpec
    from rbft_core.training.train import train_stage
    from sqlalchemy import select

    out = Path(__file__).resolve().parent / "out"
    manifest = render_world(out / "train_world", WorldSpec(num_clips=args.videos, num_frames=16, size=(224, 160), test_fraction=0.0))
    model_dir = build_tiny_model(out / "tiny-qwen2_5_vl", TinySpec())
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RBFT_DATA_DIR"] = tmp
        url = f"sqlite:///{tmp}/bench.db"
        init_db(url)
        import_videos(url, "bench", manifest.parent, manifest=manifest, fmt="jsonl")
        with session_scope(url) as s:
            for v in s.scalars(select(Video)):
                queries.add_suggestion(s, v.id, model_id="scene-graph", prompt_version="rationale-v1", raw_text="",
                                       parse_status="ok", **v.meta["scene_graph"])
        real = sft_data.VideoSFTCollator
        for stage in (1, 2):
            for name, collator in (("plain Trainer, decode every step", _decode_every_step_collator()), ("project", real)):
                sft_data.VideoSFTCollator = collator
                cfg = TrainSpec(dataset="bench", stage=stage, model=str(model_dir), epochs=args.epochs, batch_size=2,
                                  num_frames=8, lora_rank=8)
                started = time.perf_counter()
                result = train_stage(url, cfg)
                seconds = time.perf_counter() - started
                samples = result.metrics["train_examples"] * args.epochs
                results[(stage, name)] = samples / seconds
                print(f"stage {stage} {name}: {samples / seconds:.2f} samples/s ({seconds:.1f} s)", flush=True)
        sft_data.VideoSFTCollator = real
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    for stage in (1, 2):
        ratio = results[(stage, "project")] / results[(stage, "plain Trainer, decode every step")]
        print(f"stage {stage} training: project/plain-Trainer = {ratio:.2f}x (goal >= 1.3x)")
    print(f"peak resident memory of this process: {peak_gib:.2f} GiB (both variants share it)")


if __name__ == "__main__":
    main()

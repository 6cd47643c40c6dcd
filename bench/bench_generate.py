"""Rationale generation throughput: the project's batched generator vs a naive one-video-at-a-time loop.

Both run on the same tiny Qwen2.5-VL model, the same videos, 8 frames each and the same greedy settings, in this
process. The naive loop is what a first script does: decode with moviepy, run the processor, generate, one video
after another. Prints videos/s and the ratio (goal >= 2x on CPU). Two workloads:

- ``world`` (default): 32 generated demo-world clips (224x160, 16 frames), the default pixel budget;
- ``real``: 20 10-s 640x360 cuts of the real doorbell clips in ``../shared/real`` (the training bench's real
  workload, ``bench/train_setup.real_cuts``), 8 frames at 448x252.

    .venv/bin/python bench/bench_generate.py [--workload world|real] [--videos N] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def naive_loop(lm, items, num_frames: int, max_new_tokens: int, spec) -> float:
    import numpy as np
    import torch
    from moviepy import VideoFileClip

    from rbft_core.models.loading import chat_text
    from rbft_core.models.prompts import get_preset, rationale_prompt
    from rbft_core.data.video import smart_resize

    preset = get_preset("smart-home")
    started = time.perf_counter()
    for path, label in items:
        with VideoFileClip(str(path), audio=False) as clip:
            frames = list(clip.iter_frames())
            fps = clip.fps
        idx = np.linspace(0, len(frames) - 1, num_frames).round().astype(int)
        h, w = frames[0].shape[:2]
        rh, rw = smart_resize(h, w, spec.size_factor, spec.min_pixels, spec.max_pixels)
        from PIL import Image

        video = np.stack([np.asarray(Image.fromarray(frames[i]).resize((rw, rh))) for i in idx])
        text = chat_text(lm.processor, rationale_prompt(preset, label))
        meta = {"fps": fps, "total_num_frames": len(frames), "frames_indices": idx.tolist()}
        inputs = lm.processor(text=[text], videos=[video], videos_kwargs={"video_metadata": [meta], "do_sample_frames": False},
                              return_tensors="pt")
        with torch.inference_mode():
            lm.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", choices=["world", "real"], default="world",
                        help="world: generated demo clips; real: cuts of the real doorbell clips at 448x252")
    parser.add_argument("--videos", type=int, default=0, help="videos (default: 32 world, 20 real)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from db.engine import init_db
    from rbft_core.demo import WorldSpec, render_world
    from rbft_core.specs.data import GenerateSpec
    from rbft_core.models.generate import generate_rationales
    from rbft_core.data.importer import import_videos
    from rbft_core.models.loading import load_vlm
    from rbft_core.models.tiny import TinySpec, build_tiny_model
    from rbft_core.data.video import SampleSpec

    out = Path(__file__).resolve().parent / "out"
    if args.workload == "real":
        import train_setup  # bench/ is on sys.path: the training bench's real-footage cuts

        manifest = train_setup.real_cuts(out, args.videos or 20)
        max_pixels = 448 * 252
    else:
        manifest = render_world(out / "gen_world", WorldSpec(num_clips=args.videos or 32, num_frames=16,
                                                             size=(224, 160), test_fraction=0.0))
        max_pixels = GenerateSpec().max_pixels
    model_dir = build_tiny_model(out / "tiny-qwen2_5_vl", TinySpec())
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RBFT_DATA_DIR"] = tmp  # a cold frame cache: the project decodes every video once too
        url = f"sqlite:///{tmp}/bench.db"
        init_db(url)
        import_videos(url, "bench", manifest.parent, manifest=manifest, fmt="jsonl")
        lm = load_vlm(str(model_dir))
        vp = lm.processor.video_processor
        factor = vp.patch_size * vp.merge_size
        cfg = GenerateSpec(split=None, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, num_frames=8,
                           max_pixels=max_pixels)
        spec = SampleSpec(num_frames=8, max_pixels=cfg.max_pixels, min_pixels=4 * factor * factor, size_factor=factor)

        import json

        rows = [json.loads(line) for line in manifest.read_text().splitlines()]
        items = [(manifest.parent / r["path"], r["label"]) for r in rows]
        naive_loop(lm, items[:2], 8, 4, spec)  # warm-up (lazy imports, allocator)
        naive_s = naive_loop(lm, items, 8, args.max_new_tokens, spec)
        started = time.perf_counter()
        report = generate_rationales(url, "bench", str(model_dir), cfg, loaded=lm)
        project_s = time.perf_counter() - started
    n = len(items)
    assert report.generated == n, report
    print(f"workload: {args.workload}, videos: {n}, frames: 8, max pixels: {max_pixels}, max_new_tokens: {args.max_new_tokens}, threads: {args.threads}")
    print(f"naive one-at-a-time loop (moviepy decode + processor + generate): {n / naive_s:.2f} videos/s ({naive_s:.1f} s)")
    print(f"project generate_rationales (batch {args.batch_size}, prefetch, cache): {n / project_s:.2f} videos/s ({project_s:.1f} s)")
    print(f"generation: project/naive = {naive_s / project_s:.2f}x (goal >= 2x)")


if __name__ == "__main__":
    main()

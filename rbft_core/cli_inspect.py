"""``rbft attention`` (overlay PNGs / heatmap video for a run and videos) and ``rbft mask-experiment``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["register"]


def _layers(text: str | None):
    if not text:
        return None
    first, _, last = text.partition(":")
    try:
        return (int(first), int(last or first))
    except ValueError:
        from rbft_core.errors import ConfigError

        raise ConfigError(f"--layers must be FIRST:LAST (e.g. 0:-1 or -4:-1), got {text!r}") from None


def cmd_attention(args: argparse.Namespace) -> int:
    from db.engine import init_db
    from rbft_core.attention import attention_maps
    from rbft_core.heatmaps import save_overlay_png, write_heatmap_video
    from rbft_core.inspect import _prompt, list_videos
    from rbft_core.masking import load_inspect_model
    from rbft_core.models import sample_spec_for
    from rbft_core.train import _frame_cache
    from rbft_core.video import sample_frames

    init_db(args.db)
    rows = list_videos(args.db, args.dataset, None if args.split == "all" else args.split)
    if args.video:
        rows = [r for r in rows if r["external_id"] in args.video or str(r["video_id"]) in args.video]
    if not rows:
        from rbft_core.errors import DataError

        raise DataError(f"no matching videos in dataset {args.dataset!r} ({args.split}); check --video / --split")
    lm = load_inspect_model(args.db, args.run, dtype=args.dtype, device=args.device)
    spec = sample_spec_for(lm.processor, num_frames=args.frames, max_pixels=args.max_pixels)
    out_dir = Path(args.out_dir)
    written = []
    for row in rows:
        video = sample_frames(row["path"], spec, sha256=row["sha256"], cache=_frame_cache())
        prompt = args.prompt or _prompt(args.db, row)[0]
        amap = attention_maps(lm, video, prompt, query=args.query, layers=_layers(args.layers), head_agg=args.head_agg,
                              relative=args.relative)
        stem = out_dir / f"{args.run}-{row['external_id']}"
        entry = {"video": row["external_id"], "png": str(save_overlay_png(amap, stem.with_suffix(".png"),
                                                                          title=f"{args.run} · {row['external_id']}"))}
        if args.video_out:
            entry["mp4"] = str(write_heatmap_video(amap, stem.with_suffix(".mp4"), fps=args.video_fps))
        written.append(entry)
    print(json.dumps(written) if args.json else "\n".join(f"{w['video']}: {w['png']}" + (f", {w['mp4']}" if "mp4" in w else "")
                                                        for w in written))
    return 0


def cmd_mask_experiment(args: argparse.Namespace) -> int:
    from db.engine import init_db
    from rbft_core.cli import _tqdm_progress
    from rbft_core.mask_reports import TABLE_COLUMNS, table_rows
    from rbft_core.masking import MaskConfig, run_experiment

    init_db(args.db)
    cfg = MaskConfig(regions_source=args.regions, fill=args.fill, k_random=args.k_random, seed=args.seed,
                     align_to_grid=args.align_to_grid, attention_top_k=args.top_k, split=args.split,
                     num_frames=args.frames, max_pixels=args.max_pixels, bootstrap=args.bootstrap,
                     dtype=args.dtype, device=args.device)
    update, close = _tqdm_progress("mask-experiment", "video")
    try:
        result = run_experiment(args.db, args.run, args.dataset, progress=update, cfg=cfg)
    finally:
        close()
    if args.json:
        print(json.dumps({"models": result.models, "files": result.files, "notices": result.notices}, default=str))
    else:
        print("  ".join(TABLE_COLUMNS))
        for r in table_rows(result.models):
            print("  ".join(str(v) for v in r))
        print(f"written: {result.files['json']}, {result.files['csv']}, {result.files['png']}")
    return 0


def _model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--max-pixels", type=int, default=128 * 28 * 28)
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")


def register(sub, common) -> None:
    p = sub.add_parser("attention", help="attention heatmaps of a run over videos (overlay PNGs, heatmap video)")
    p.add_argument("dataset")
    p.add_argument("--run", required=True, help="run id (any kind: zero-shot, direct SFT, Stage I, RB-FT)")
    p.add_argument("--video", action="append", help="external id or database id; repeat (default: the whole split)")
    p.add_argument("--split", default="test", help="train | val | test | all")
    p.add_argument("--query", default="answer", choices=["answer", "rationale"])
    p.add_argument("--layers", help="FIRST:LAST text layers, inclusive, negative from the end (default: all)")
    p.add_argument("--head-agg", default="mean", choices=["mean", "max"])
    p.add_argument("--relative", action="store_true", help="divide by the map of a generic prompt (cancels sinks)")
    p.add_argument("--prompt", help="prompt (default: the dataset's classification prompt)")
    p.add_argument("--out-dir", default="data/reports/attention")
    p.add_argument("--video-out", action="store_true", help="also write a heatmap mp4 per video")
    p.add_argument("--video-fps", type=float, default=2.0)
    _model_flags(p)
    common(p)
    p.set_defaults(func=cmd_attention)

    p = sub.add_parser("mask-experiment", help="mask the critical object vs random boxes on the test split")
    p.add_argument("dataset")
    p.add_argument("--run", action="append", required=True, help="run id; repeat (e.g. direct SFT and RB-FT)")
    p.add_argument("--regions", default="meta", help="meta | motion | attention | a JSON/JSONL/CSV box file")
    p.add_argument("--fill", default="black", choices=["black", "mean", "blur"])
    p.add_argument("--k-random", type=int, default=3, help="random control trials per video")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--align-to-grid", action="store_true", help="snap boxes to the model's token grid")
    p.add_argument("--top-k", type=int, default=4, help="cells per map for --regions attention")
    p.add_argument("--split", default="test")
    p.add_argument("--bootstrap", type=int, default=1000)
    _model_flags(p)
    common(p)
    p.set_defaults(func=cmd_mask_experiment)

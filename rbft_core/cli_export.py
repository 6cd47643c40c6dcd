"""``rbft export`` and ``rbft export-model``: registered on the main parser by ``rbft_core.cli``."""

from __future__ import annotations

import argparse
import json
from typing import Callable

__all__ = ["add_export_commands", "cmd_export", "cmd_export_model"]


def cmd_export(args: argparse.Namespace) -> int:
    from rbft_core.curation import Selection
    from rbft_core.export import ExportConfig, export_dataset

    selection = Selection(splits=args.split, statuses=args.status, edited=args.edited, labels=args.labels,
                          include_excluded=args.include_excluded)
    config = ExportConfig(format=args.format, stages=args.stage, selection=selection, copy_videos=args.copy_videos,
                          name=args.name or "", overwrite=args.overwrite)
    result = export_dataset(args.db, args.dataset, config, args.out)
    payload = result.to_json()
    if args.json:
        print(json.dumps(payload, ensure_ascii=False, default=str))
        return 0
    counts = payload["counts"]
    stages = "; ".join(f"{k}: " + ", ".join(f"{n} {s}" for s, n in counts[k].items())
                       for k in ("stage1", "stage2") if counts[k])
    print(f"exported {counts['videos']} videos of {args.dataset} as {args.format} ({stages}) to {payload['folder']}")
    print(f"zip: {payload['zip']}")
    for item in payload["missing"]:
        print(f"  missing on disk (left out): {item['path']}")
    return 0


def cmd_export_model(args: argparse.Namespace) -> int:
    from rbft_core.export_model import export_model

    result = export_model(args.db, args.run_id, args.out, merged=args.merged, max_shard_size=args.max_shard_size,
                          dtype=args.dtype, overwrite=args.overwrite)
    payload = result.to_json()
    if args.json:
        print(json.dumps(payload, ensure_ascii=False))
    else:
        chain = " -> ".join(link["run_id"] for link in payload["chain"])
        what = "merged model" if result.merged else "adapter"
        print(f"{what} of run {args.run_id} (chain {chain}) written to {payload['out']}")
    return 0


def add_export_commands(sub: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("export", help="export a curated dataset (LLaMA-Factory, ms-swift, HF datasets, CSV) as a zip")
    p.add_argument("dataset")
    p.add_argument("--format", required=True, choices=["llamafactory", "swift", "hf", "csv"])
    p.add_argument("--out", required=True, help="folder to write <name>/ and <name>.zip into")
    p.add_argument("--name", help="export name (default <dataset>-<format>; path separators become _)")
    p.add_argument("--stage", default="both", choices=["1", "2", "both"],
                   help="1: video + expert prompt -> rationale; 2: video + classification prompt -> label")
    p.add_argument("--status", default="accepted", help="review statuses, comma-separated, or any (default accepted)")
    p.add_argument("--split", default="all", help="splits, comma-separated (train,val,test) or all")
    p.add_argument("--labels", default=None, help="labels, comma-separated (default all)")
    p.add_argument("--edited", default="any", choices=["yes", "no", "any"], help="edited rationales only / untouched only")
    p.add_argument("--include-excluded", action="store_true", help="also export videos a reviewer excluded")
    p.add_argument("--copy-videos", action=argparse.BooleanOptionalAction, default=True,
                   help="copy videos into the export (default) or reference them by relative path")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--json", action="store_true")
    common(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("export-model", help="export a run's peft adapter, or the merged model (--merged)")
    p.add_argument("run_id")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--merged", action="store_true", help="merge the adapter chain into the base model")
    p.add_argument("--max-shard-size", default="5GB")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--json", action="store_true")
    common(p)
    p.set_defaults(func=cmd_export_model)

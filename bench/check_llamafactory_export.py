"""Check that LLaMA-Factory's own loader reads our LLaMA-Factory export (not part of the test run).

LLaMA-Factory 0.9.5 pins other transformers/peft/gradio versions, so it lives in its own virtualenv
(never in the project's)::

    python3 -m venv /tmp/lf
    /tmp/lf/bin/pip install torch==2.14.1 torchvision==0.29.1
    /tmp/lf/bin/pip install llamafactory==0.9.5
    .venv/bin/python bench/check_llamafactory_export.py --lf-python /tmp/lf/bin/python

Step 1 (project venv): build a tiny model and a small curated dataset, export it with ``--format
llamafactory``. Step 2 (LLaMA-Factory venv, ``--check``): for every entry of the export's
``dataset_info.json``, run ``llamafactory.data.get_dataset`` (template qwen2_vl, the export folder as
``dataset_dir``), and check that each example holds video tokens and that its supervised tokens decode
to exactly the exported answer. Prints one JSON report; exits 1 when anything differs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _make_export(work: Path) -> tuple[Path, Path]:
    sys.path.insert(0, str(REPO))
    from db.engine import init_db
    from rbft_core.review.curation import Selection
    from rbft_core.export.dataset import ExportConfig, export_dataset
    from rbft_core.models.tiny import TinySpec, build_tiny_model
    from tests.export_world import build_world

    model = build_tiny_model(work / "tiny", TinySpec(family="qwen2_5_vl"))
    db_url = f"sqlite:///{work / 'rbft.db'}"
    init_db(db_url)
    build_world(db_url, work)
    config = ExportConfig(format="llamafactory", selection=Selection(statuses=None, include_excluded=True))
    return export_dataset(db_url, "homes", config, work / "out").folder, model


def _check(export_dir: Path, model: Path, work: Path) -> dict:
    """Runs inside the LLaMA-Factory virtualenv."""
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    info = json.loads((export_dir / "dataset_info.json").read_text())
    report = {"llamafactory": __import__("llamafactory").__version__, "datasets": {}, "ok": True}
    for name, entry in info.items():
        args = dict(stage="sft", do_train=True, model_name_or_path=str(model), dataset=name,
                    dataset_dir=str(export_dir), template="qwen2_vl", cutoff_len=4096, finetuning_type="lora",
                    output_dir=str(work / "lf-out" / name), overwrite_cache=True, report_to="none",
                    video_maxlen=4, video_fps=2.0, video_max_pixels=64 * 64, preprocessing_num_workers=None)
        model_args, data_args, training_args, _, _ = get_train_args(args)
        tokenizer_module = load_tokenizer(model_args)
        tokenizer = tokenizer_module["tokenizer"]
        template = get_template_and_fix_tokenizer(tokenizer, data_args)
        module = get_dataset(template, model_args, data_args, training_args, stage="sft", **tokenizer_module)
        train = module["train_dataset"]
        expected = [r["messages"][1]["content"] for r in json.loads((export_dir / entry["file_name"]).read_text())]
        video_id = tokenizer.convert_tokens_to_ids("<|video_pad|>")
        mismatches = []
        for i, example in enumerate(train):
            answer = tokenizer.decode([t for t in example["labels"] if t != -100], skip_special_tokens=True)
            if answer.strip() != expected[i] or video_id not in example["input_ids"]:
                mismatches.append({"index": i, "decoded": answer, "expected": expected[i]})
        report["datasets"][name] = {"examples": len(train), "expected": len(expected), "mismatches": mismatches,
                                    "video_tokens_first": example["input_ids"].count(video_id)}
        report["ok"] &= not mismatches and len(train) == len(expected)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lf-python", default="/tmp/lf/bin/python", help="python of the LLaMA-Factory venv")
    parser.add_argument("--check", nargs=2, metavar=("EXPORT_DIR", "MODEL_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.check:
            report = _check(Path(args.check[0]), Path(args.check[1]), Path(tmp))
            print(json.dumps(report))
            return 0 if report["ok"] else 1
        start = time.perf_counter()
        export_dir, model = _make_export(Path(tmp))
        out = subprocess.run([args.lf_python, __file__, "--check", str(export_dir), str(model)],
                             capture_output=True, text=True, timeout=900)
        if out.returncode not in (0, 1) or not out.stdout.strip():
            print(out.stderr[-4000:], file=sys.stderr)
            return 2
        report = json.loads(out.stdout.strip().splitlines()[-1])
        report["seconds"] = round(time.perf_counter() - start, 1)
        print(json.dumps(report, indent=1))
        return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

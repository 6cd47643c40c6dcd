"""Evaluation: predict by the log-likelihood of each label's answer, metrics, run comparison.

Scoring every label's answer (``label<|im_end|>``) under the model gives a prediction for every video
(no parse failures) and calibrated-enough probabilities (softmax over the label log-likelihoods). The
generated answer text is kept beside it for inspection.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence

from db import curated_queries, queries
from db import job_queries as jq
from db.engine import session_scope
from rbft_core.data.frame_cache import default_frame_cache
from rbft_core.errors import ConfigError, DataError
from rbft_core.models.loading import encode_prompts, load_vlm, sample_spec_for
from rbft_core.models.model_sampling import model_sampling
from rbft_core.models.prompts import (
    classification_prompt,
    dataset_preset,
    rationale_prompt,
)
from rbft_core.names import file_slug
from rbft_core.settings import data_dir
from rbft_core.specs.training import EvaluateSpec
from rbft_core.task_context import Progress, StopCheck, report, stop_requested
from rbft_core.training import sft_data
from rbft_core.training.run_sampling import resolve_sampling
from rbft_core.training.train import load_run_model, new_run_id, runs_root

__all__ = ["EvalReport", "evaluate_run", "score_labels", "classification_metrics", "compare_runs", "KIND_ORDER"]

KIND_ORDER = ("zero_shot", "direct_sft", "stage1", "stage2")
KIND_NAMES = {"zero_shot": "zero-shot", "direct_sft": "direct SFT", "stage1": "Stage I", "stage2": "RB-FT"}


@dataclass
class EvalReport:
    run_id: str
    kind: str
    split: str
    metrics: dict[str, Any]
    predictions: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def classification_metrics(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str],
                           scores: Optional[Sequence[float]] = None) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support, confusion matrix, ROC-AUC (two classes).

    ``scores``: probability of ``labels[1]`` (the positive class, e.g. "abnormal") per video.
    """
    labels = list(labels)
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for t, p in zip(truth, predicted):
        if t in index and p in index:
            matrix[index[t]][index[p]] += 1
    per_class = {}
    for i, label in enumerate(labels):
        tp = matrix[i][i]
        fp = sum(matrix[r][i] for r in range(len(labels))) - tp
        fn = sum(matrix[i]) - tp
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1, "support": sum(matrix[i])}
    n = len(truth)
    out: dict[str, Any] = {
        "n": n,
        "accuracy": sum(t == p for t, p in zip(truth, predicted)) / n if n else 0.0,
        "macro_f1": sum(c["f1"] for c in per_class.values()) / len(labels) if labels else 0.0,
        "per_class": per_class,
        "confusion_matrix": {"labels": labels, "matrix": matrix},
    }
    if len(labels) == 2 and scores is not None:
        out["roc_auc"] = _roc_auc([t == labels[1] for t in truth], scores)
    return out


def _roc_auc(positive: Sequence[bool], scores: Sequence[float]) -> Optional[float]:
    """Mann-Whitney AUC with ties counted half; None when a class is absent."""
    pos = [s for s, y in zip(scores, positive) if y]
    neg = [s for s, y in zip(scores, positive) if not y]
    if not pos or not neg:
        return None
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def _label_logprobs(lm, collator, examples_per_label: list[list]) -> list[list[float]]:
    """Sum of log-probabilities of each label's answer tokens; [video][label]."""
    import torch  # torch is heavy: loaded only when a model runs

    flat = [ex for group in examples_per_label for ex in group]
    batch = collator(flat)
    labels = batch.pop("labels").to(lm.device)
    batch = {k: v.to(lm.device) for k, v in batch.items()}
    if "pixel_values_videos" in batch:
        batch["pixel_values_videos"] = batch["pixel_values_videos"].to(lm.model.dtype)
    with torch.inference_mode():
        logits = lm.model(**batch).logits.float()
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    target = labels[:, 1:]
    mask = target != -100
    picked = logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    sums = (picked * mask).sum(-1).tolist()
    width = len(examples_per_label[0])
    return [sums[i * width : (i + 1) * width] for i in range(len(examples_per_label))]


def score_labels(lm, collator, prompt: str, labels: Sequence[str], rows: Sequence[dict]) -> list[tuple[dict, list]]:
    """Label probabilities (softmax over each label answer's log-likelihood) for curated ``rows``.

    Returns one (probs by label, the label examples) per row. The collator decides which frames the model sees
    (masking passes one that masks them), so evaluation and masking share this one scoring path.
    """

    groups = [[sft_data.Example(r["video_id"], r["path"], r["sha256"], prompt, label, r["label"]) for label in labels]
              for r in rows]
    out = []
    for group, s in zip(groups, _label_logprobs(lm, collator, groups)):
        top = max(s)
        z = sum(math.exp(v - top) for v in s)
        out.append(({label: math.exp(v - top) / z for label, v in zip(labels, s)}, group))
    return out


def _generate_answers(lm, prompts, videos, max_new_tokens: int) -> list[str]:
    import torch  # torch is heavy: loaded only when a model runs


    lm.processor.tokenizer.padding_side = "left"
    inputs = encode_prompts(lm.processor, prompts, videos).to(lm.device)
    if "pixel_values_videos" in inputs:
        inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(lm.model.dtype)
    with torch.inference_mode():
        out = lm.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return lm.processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def _test_rows(db_url, dataset: str, split: str):
    with session_scope(db_url) as s:
        ds = queries.get_dataset(s, dataset)
        preset = dataset_preset(ds)
        rows = curated_queries.curated_examples(s, ds.id, splits=[split], statuses=None, include_excluded=True)
        dataset_id = ds.id
    if not rows:
        raise DataError(f"dataset {dataset!r} has no readable {split} videos to evaluate on; import some or choose another split")
    return preset, rows, dataset_id


def evaluate_run(db_url: Optional[str], dataset: str, *, run_id: Optional[str] = None, model: Optional[str] = None,
                 cfg: Optional[EvaluateSpec] = None, progress: Optional[Progress] = None,
                 should_stop: Optional[StopCheck] = None) -> EvalReport:
    """Evaluate a trained run (its adapter chain) or, with ``model`` and no run, the base model (zero-shot).

    A run is evaluated with its own sampling unless ``cfg`` overrides a sampling field; the sampling used and
    any override are stored with the metrics (``metrics["sampling"]``, ``metrics["sampling_override"]``)."""
    cfg = cfg or EvaluateSpec()
    preset, rows, dataset_id = _test_rows(db_url, dataset, cfg.split)
    if run_id:
        kind = None
        run_kind = _run_kind(db_url, run_id)
        sampling, changed = resolve_sampling(db_url, run_id, cfg)
        lm = load_run_model(db_url, run_id, dtype=cfg.dtype, device=cfg.device)
    elif model:
        # fields left empty take the model folder's sampling (rbft_core.models.model_sampling)
        sampling, changed = model_sampling(model).sampling.with_overrides(cfg)
        changed = {}  # a zero-shot run's sampling is its own, whatever was given
        lm, kind, run_id = load_vlm(model, dtype=cfg.dtype, device=cfg.device), "zero_shot", new_run_id("zero_shot")
        run_kind = kind
    else:
        raise ConfigError("evaluate needs a run id (--run) or a base model (--model) for zero-shot")
    spec = sample_spec_for(lm.processor, num_frames=sampling.num_frames, fps=sampling.fps,
                           max_frames=sampling.max_frames, max_pixels=sampling.max_pixels)
    collator = sft_data.VideoSFTCollator(lm.processor, spec, default_frame_cache())
    prompt = classification_prompt(preset)
    answer_prompt, answer_tokens = ((rationale_prompt(preset), cfg.rationale_tokens) if run_kind == "stage1"
                                    else (prompt, cfg.max_new_tokens))
    labels = list(preset.labels)
    predictions = []
    for start in range(0, len(rows), cfg.batch_size):
        if stop_requested(should_stop):
            break
        chunk = rows[start : start + cfg.batch_size]
        scored = score_labels(lm, collator, prompt, labels, chunk)
        answers = (_generate_answers(lm, [answer_prompt] * len(chunk),
                                     collator.videos([examples[0] for _, examples in scored]), answer_tokens)
                   if cfg.generate_answer else [""] * len(chunk))
        for row, (probs, _), answer in zip(chunk, scored, answers):
            predictions.append({"video_id": row["video_id"], "truth": row["label"], "predicted": max(probs, key=probs.get),
                                "probs": probs, "answer_text": answer.strip()})
        report(progress, min(start + cfg.batch_size, len(rows)), len(rows), "evaluating")
    metrics = classification_metrics([p["truth"] for p in predictions], [p["predicted"] for p in predictions], labels,
                                     [p["probs"][labels[1]] for p in predictions])
    metrics["sampling"] = sampling.to_dict()
    metrics["sampling_override"] = changed
    zero_shot_spec = cfg.replace(dataset=dataset, run="", model=model or "", **sampling.to_dict()) if kind else None
    _store(db_url, dataset_id, run_id, kind, model, cfg, metrics, predictions, runs_root(), zero_shot_spec)
    return EvalReport(run_id=run_id, kind=run_kind, split=cfg.split, metrics=metrics, predictions=predictions)


def _run_kind(db_url, run_id: str) -> str:
    with session_scope(db_url) as s:
        return jq.get_run(s, run_id).kind


def _store(db_url, dataset_id, run_id, kind, model, cfg: EvaluateSpec, metrics, predictions, root: Path,
           zero_shot_spec: Optional[EvaluateSpec]) -> None:


    flat = {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
            **{f"f1_{k}": v["f1"] for k, v in metrics["per_class"].items()}}
    if metrics.get("roc_auc") is not None:
        flat["roc_auc"] = metrics["roc_auc"]
    flat["sampling"] = metrics["sampling"]
    if metrics["sampling_override"]:
        flat["sampling_override"] = metrics["sampling_override"]
    with session_scope(db_url) as s:
        if kind == "zero_shot":
            run_dir = root / run_id
            run_dir.mkdir(parents=True, exist_ok=True)
            # the zero-shot run's spec holds the sampling it used: later views of the run start from it
            zero_shot_spec.write(run_dir / "spec.yaml")
            jq.upsert_run(s, run_id, dataset_id=dataset_id, kind="zero_shot", stage=None, base_model=model,
                          status="succeeded", run_dir=str(run_dir), config=zero_shot_spec.to_dict(),
                          ended_at=datetime.now(timezone.utc))
        run = jq.get_run(s, run_id)
        run.metrics = {**(run.metrics or {}), "eval": {cfg.split: flat}}
        run_dir = Path(run.run_dir)
        jq.replace_predictions(s, run_id, [{k: p[k] for k in ("video_id", "truth", "predicted", "probs", "answer_text")}
                                           for p in predictions])
        jq.replace_metrics(s, run_id, cfg.split, {k: v for k, v in flat.items() if isinstance(v, (int, float))})
    (run_dir / "eval_results.json").write_text(json.dumps({"split": cfg.split, **metrics}, indent=2))
    with open(run_dir / "predictions.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video_id", "truth", "predicted", "probs", "answer_text"])
        for p in predictions:
            writer.writerow([p["video_id"], p["truth"], p["predicted"], json.dumps(p["probs"]), p["answer_text"]])


def compare_runs(db_url: Optional[str], dataset: str, split: str = "test", out_dir: Optional[Path] = None) -> dict[str, Any]:
    """The newest evaluated run of each kind (zero-shot / direct SFT / Stage I / RB-FT); writes CSV + JSON."""

    with session_scope(db_url) as s:
        ds = queries.get_dataset(s, dataset)
        labels = list(ds.labels or [])
        newest: dict[str, Any] = {}
        for run in jq.list_runs(s, ds.id):  # newest first
            evals = (run.metrics or {}).get("eval", {}).get(split)
            if evals and run.kind not in newest:
                newest[run.kind] = {"run_id": run.id, "kind": run.kind, "name": KIND_NAMES.get(run.kind, run.kind), **evals}
    rows = [newest[k] for k in KIND_ORDER if k in newest]
    if not rows:
        raise DataError(f"no evaluated runs for dataset {dataset!r} yet; run `rbft pipeline {dataset} --model ...` first")
    out = Path(out_dir or data_dir() / "reports")
    out.mkdir(parents=True, exist_ok=True)
    columns = ["name", "run_id", "accuracy", "macro_f1", *[f"f1_{label}" for label in labels], "roc_auc"]
    stem = f"{file_slug(dataset)}-compare"  # a safe, per-name file name (`front.door`, `home` vs `home-2`)
    with open(out / f"{stem}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    result = {"dataset": dataset, "split": split, "labels": labels, "rows": rows,
              "csv": str(out / f"{stem}.csv"), "json": str(out / f"{stem}.json")}
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    return result

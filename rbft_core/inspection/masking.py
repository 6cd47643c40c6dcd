"""Faithfulness by masking: does a model's decision rest on the critical object?

For every test video and model: score the labels on the original frames, on frames with the critical region
masked, and on ``k_random`` controls (per region box one random box of the same width and height that does not
overlap the region). Scoring is ``evaluate.score_labels`` with a collator that swaps in the masked frames, so the
masked clips go through exactly the evaluation data path (same sampling spec, processor, label likelihood).

Per model: accuracy before / after, accuracy drop, flip rate, change in log-probability of the true label, and
drop(critical) / drop(random) with a bootstrap confidence interval. Reports: ``data/reports/mask-*.{json,csv,png}``.

Interface for other callers (the demo report)::

    run_experiment(db_url, run_ids, dataset, regions_source="meta", fill="black", k_random=3, seed=0,
                   progress=None) -> ExperimentResult
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Optional, Sequence

import numpy as np

from db import inspect_queries as iq
from db import job_queries as jq
from db import queries
from db.engine import session_scope
from rbft_core.data.frame_cache import default_frame_cache
from rbft_core.errors import ConfigError, DataError
from rbft_core.inspection import regions as rg
from rbft_core.inspection.attention import attention_maps
from rbft_core.inspection.mask_reports import write_reports
from rbft_core.inspection.regions import (
    Regions,
    align_regions,
    apply_fill,
    load_box_file,
    random_control,
)
from rbft_core.models.loading import load_vlm, sample_spec_for
from rbft_core.models.prompts import classification_prompt, dataset_preset
from rbft_core.specs.inspection import MaskSpec
from rbft_core.task_context import Progress, StopCheck, report, stop_requested
from rbft_core.training.evaluate import KIND_NAMES, score_labels
from rbft_core.training.run_sampling import resolve_sampling, sampling_note
from rbft_core.training.sft_data import Example, VideoSFTCollator
from rbft_core.training.train import load_run_model

__all__ = ["ExperimentResult", "MaskingCollator", "run_experiment", "model_metrics",
           "load_inspect_model", "REGION_SOURCES", "random_controls", "example_of", "score_video_conditions", "grid_px"]

REGION_SOURCES = ("meta", "motion", "attention")  # or a path to a box file


@dataclass
class ExperimentResult:
    dataset: str
    config: dict[str, Any]
    models: list[dict[str, Any]]
    videos: list[dict[str, Any]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


class MaskingCollator(VideoSFTCollator):
    """The evaluation collator; videos listed in ``masked`` (video id -> frames) are seen with those frames."""

    def __init__(self, processor, spec, cache=None):
        super().__init__(processor, spec, cache)
        self.masked: dict[int, np.ndarray] = {}

    def videos(self, examples):
        videos = super().videos(examples)
        return [replace(v, frames=self.masked[e.video_id]) if e.video_id in self.masked else v
                for v, e in zip(videos, examples)]


def load_inspect_model(db_url, run_id: str, *, dtype: str = "auto", device: str = "auto"):
    """A run's model: the base model for a zero-shot run, else the base with the run's adapter chain."""
    with session_scope(db_url) as s:
        run = jq.get_run(s, run_id)
        kind, base = run.kind, run.base_model
    return load_vlm(base, dtype=dtype, device=device) if kind == "zero_shot" else \
        load_run_model(db_url, run_id, dtype=dtype, device=device)


def grid_px(lm, source_size, frame_size) -> float:
    """Source pixels per token cell (patch x merge on the resized frame)."""
    vp = lm.processor.video_processor
    return vp.patch_size * vp.merge_size * source_size[0] / frame_size[0]


def model_metrics(rows: Sequence[dict], *, bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Accuracy before/after, drops, flip rates, mean change of log p(true label), drop ratio with a 95 % CI.

    ``rows``: per video ``correct`` / ``pred`` / ``logp_true`` for ``original``, ``critical`` and ``random``
    (``random`` holds one entry per control trial).
    """
    n = len(rows)
    if n == 0:
        raise DataError("no videos with a region to mask; check the regions source (boxes in meta, a box file, ...)")
    orig = np.array([r["original"]["correct"] for r in rows], float)
    crit = np.array([r["critical"]["correct"] for r in rows], float)
    rand = np.array([np.mean([t["correct"] for t in r["random"]]) for r in rows], float)
    flip_c = np.mean([r["critical"]["pred"] != r["original"]["pred"] for r in rows])
    flip_r = np.mean([np.mean([t["pred"] != r["original"]["pred"] for t in r["random"]]) for r in rows])
    dlp_c = np.mean([r["critical"]["logp_true"] - r["original"]["logp_true"] for r in rows])
    dlp_r = np.mean([np.mean([t["logp_true"] for t in r["random"]]) - r["original"]["logp_true"] for r in rows])
    drop_c, drop_r = orig.mean() - crit.mean(), orig.mean() - rand.mean()
    out = {"n": n, "accuracy_original": orig.mean(), "accuracy_critical": crit.mean(), "accuracy_random": rand.mean(),
           "drop_critical": drop_c, "drop_random": drop_r, "flip_rate_critical": flip_c, "flip_rate_random": flip_r,
           "delta_logp_true_critical": dlp_c, "delta_logp_true_random": dlp_r,
           "drop_ratio": drop_c / drop_r if drop_r != 0 else None, "drop_ratio_ci": None, "drop_ratio_ci_defined": 0.0}
    if bootstrap and n > 1:
        idx = np.random.default_rng(seed).integers(0, n, size=(bootstrap, n))
        dc, dr = orig[idx].mean(1) - crit[idx].mean(1), orig[idx].mean(1) - rand[idx].mean(1)
        ok = dr != 0
        out["drop_ratio_ci_defined"] = float(ok.mean())  # share of resamples where the random drop is not 0
        if ok.sum() >= max(20, bootstrap // 10):
            lo, hi = np.percentile(dc[ok] / dr[ok], [2.5, 97.5])
            out["drop_ratio_ci"] = [float(lo), float(hi)]
    return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in out.items()}


def _regions_for(cfg: MaskSpec, lm, row: dict, video, prompt: str, boxes: Optional[dict]) -> Regions:
    source = cfg.regions_source
    if source == "meta":
        per_frame = (row.get("meta") or {}).get("boxes")
        found = rg.regions_from_frame_boxes(video, rg.frame_boxes_from_list(per_frame)) if per_frame else None
    elif source == "motion":
        found = rg.motion_regions(video)
    elif source == "attention":
        found = rg.attention_regions(attention_maps(lm, video, prompt), cfg.attention_top_k)
    else:
        key = next((k for k in (row["external_id"], _name(row["path"]), _stem(row["path"])) if k in (boxes or {})), None)
        entry = boxes.get(key) if key else None
        found = None if entry is None else (rg.regions_from_frame_boxes(video, entry) if isinstance(entry, dict)
                                           else rg.regions_from_timed(video, entry))
    if found is None:
        return Regions([[] for _ in range(video.num_frames)], tuple(video.source_size), ["no boxes for this video"])
    if cfg.align_to_grid:
        found = align_regions(found, grid_px(lm, video.source_size, video.frames.shape[2:0:-1]))
    return found


def _name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _stem(path: str) -> str:
    return _name(path).rsplit(".", 1)[0]


def _condition(scored, truth: str) -> dict:
    probs = scored[0]
    pred = max(probs, key=probs.get)
    return {"pred": pred, "correct": pred == truth, "logp_true": math.log(max(probs.get(truth, 0.0), 1e-30)),
            "probs": probs}


def score_video_conditions(lm, collator: MaskingCollator, prompt, labels, row, video, regions: Regions, cfg: MaskSpec,
                           controls: Sequence[Regions], original: Optional[dict] = None) -> dict:
    """Original, critical-masked and each random control of one video through ``evaluate.score_labels``.

    ``original``: the unmasked result when the caller scored it already (in evaluation-sized batches)."""
    conditions = [*([] if original else [("original", None)]), ("critical", regions), *(("random", c) for c in controls)]
    out: dict[str, Any] = {"random": [], **({"original": original} if original else {})}
    for name, reg in conditions:
        collator.masked = {} if reg is None else {row["video_id"]: apply_fill(video.frames, reg, cfg.fill)}
        result = _condition(score_labels(lm, collator, prompt, labels, [row])[0], row["label"])
        if name == "random":
            out["random"].append(result)
        else:
            out[name] = result
    collator.masked = {}
    return out


def random_controls(regions: Regions, cfg: MaskSpec, video_id: int, cell: Optional[float]) -> list[Regions]:
    # seeded by video, not by model: every model sees the same random boxes
    return [random_control(regions, np.random.default_rng([cfg.seed, video_id, k]), grid_px=cell)
            for k in range(cfg.k_random)]


def run_experiment(db_url: Optional[str], dataset: str, cfg: MaskSpec, *, progress: Optional[Progress] = None,
                   should_stop: Optional[StopCheck] = None) -> ExperimentResult:
    """Mask the critical region vs random controls on ``cfg.split`` for each of ``cfg.runs``; write the reports.

    Each run is scored with its own sampling (a sampling field set in ``cfg`` overrides it and is reported), and
    its unmasked ("original") scores go through the evaluation batches, so the original accuracy is the run's
    evaluated accuracy."""
    run_ids = list(cfg.runs)
    if not run_ids:
        raise ConfigError("give at least one run (--run), e.g. a direct-SFT run and an RB-FT run")
    with session_scope(db_url) as s:
        ds = queries.get_dataset(s, dataset)
        preset = dataset_preset(ds)
        rows = iq.video_rows(s, ds.id, splits=[cfg.split])
        kinds = {r: jq.get_run(s, r).kind for r in run_ids}
    if not rows:
        raise DataError(f"dataset {dataset!r} has no readable {cfg.split} videos; import some or choose another split")
    boxes = None if cfg.regions_source in REGION_SOURCES else load_box_file(cfg.regions_source)
    prompt, labels = classification_prompt(preset), list(preset.labels)
    total, done = len(rows) * len(run_ids), 0
    models, videos, notices = [], [], []
    for run_id in run_ids:
        sampling, changed = resolve_sampling(db_url, run_id, cfg)
        lm = load_inspect_model(db_url, run_id, dtype=cfg.dtype, device=cfg.device)
        spec = sample_spec_for(lm.processor, num_frames=sampling.num_frames, fps=sampling.fps,
                               max_frames=sampling.max_frames, max_pixels=sampling.max_pixels)
        collator = MaskingCollator(lm.processor, spec, default_frame_cache())
        originals = _original_scores(lm, collator, prompt, labels, rows, cfg.batch_size)
        per_video = []
        for row in rows:
            if stop_requested(should_stop):
                raise DataError("masking experiment stopped before it finished; start it again")
            video = collator.videos([example_of(row, prompt)])[0]
            regions = _regions_for(cfg, lm, row, video, prompt, boxes)
            notices += [f"{row['external_id']}: {n}" for n in regions.notices if f"{row['external_id']}: {n}" not in notices]
            if regions.area() > 0:
                cell = grid_px(lm, video.source_size, video.frames.shape[2:0:-1]) if cfg.align_to_grid else None
                scored = score_video_conditions(lm, collator, prompt, labels, row, video, regions, cfg,
                                                random_controls(regions, cfg, row["video_id"], cell),
                                                original=originals[row["video_id"]])
                per_video.append({"run_id": run_id, "video_id": row["video_id"], "external_id": row["external_id"],
                                  "truth": row["label"], "masked_share": regions.area() / (
                                      video.num_frames * video.source_size[0] * video.source_size[1]), **scored})
            done += 1
            report(progress, done, total, f"{run_id}: {row['external_id']}")
        metrics = model_metrics(per_video, bootstrap=cfg.bootstrap, seed=cfg.seed)
        split_accuracy = sum(o["correct"] for o in originals.values()) / len(originals)
        models.append({"run_id": run_id, "kind": kinds[run_id], "name": KIND_NAMES.get(kinds[run_id], kinds[run_id]),
                       "sampling": sampling.to_dict(), "sampling_override": changed,
                       "sampling_note": sampling_note(sampling, changed), "accuracy_split": split_accuracy,
                       "n_split": len(originals), **metrics})
        videos += per_video
        del lm
    result = ExperimentResult(dataset=dataset, config=cfg.to_dict(), models=models, videos=videos, notices=notices)
    result.files = write_reports(result)
    return result


def _original_scores(lm, collator: MaskingCollator, prompt: str, labels: list[str], rows: list[dict],
                     batch_size: int) -> dict[int, dict]:
    """Unmasked scores of every row, batched as ``evaluate_run`` batches them (same rows, order and sizes)."""
    collator.masked = {}
    out = {}
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        for row, scored in zip(chunk, score_labels(lm, collator, prompt, labels, chunk)):
            out[row["video_id"]] = _condition(scored, row["label"])
    return out


def example_of(row: dict, prompt: str) -> Example:
    return Example(row["video_id"], row["path"], row["sha256"], prompt, row["label"], row["label"])

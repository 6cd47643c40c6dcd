"""Batched rationale generation: the model, prompted as a domain expert, writes one suggestion per video.

Resumable: videos that already have a suggestion for this model + prompt version are skipped unless
``overwrite``. Each batch is committed as it finishes, so a crash loses at most one batch. Frames for
the next batch are decoded in a background thread while the model generates the current one.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from db import queries
from db.engine import session_scope
from rbft_core.data.frame_cache import default_frame_cache
from rbft_core.data.video import sample_frames
from rbft_core.errors import DataError
from rbft_core.models.loading import encode_prompts, load_vlm, sample_spec_for
from rbft_core.models.prompts import (
    RATIONALE_PROMPT_VERSION,
    preset_from_record,
    rationale_prompt,
)
from rbft_core.models.rationale import parse_rationale
from rbft_core.specs.data import GenerateSpec
from rbft_core.task_context import StopCheck, stop_requested

__all__ = ["GenerateReport", "generate_rationales", "canonical_model_id"]

Progress = Callable[[int, int, str], None]


@dataclass
class GenerateReport:
    dataset: str
    model_id: str
    prompt_version: str
    generated: int = 0
    already_done: int = 0
    parse_status: dict[str, int] = field(default_factory=lambda: {"ok": 0, "partial": 0, "failed": 0})
    failed: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Item:
    video_id: int
    path: str
    sha256: str
    label: str


def canonical_model_id(model_id: str) -> str:
    """Local folders are recorded by absolute path (so resuming from another directory matches)."""
    path = Path(model_id).expanduser()
    return str(path.resolve()) if path.exists() else model_id


def _pending_items(db_url, dataset: str, model_id: str, cfg: GenerateSpec):
    with session_scope(db_url) as session:
        ds = queries.get_dataset(session, dataset)
        preset = preset_from_record(ds.preset, role=ds.role, task=ds.task, labels=ds.labels, criteria=ds.criteria)
        todo = queries.videos_for_generation(
            session, ds.id, cfg.split, model_id, RATIONALE_PROMPT_VERSION, overwrite=cfg.overwrite,
            video_ids=list(cfg.video_ids) if cfg.video_ids is not None else None,
        )
        done = 0 if cfg.overwrite else queries.count_suggested_videos(
            session, ds.id, cfg.split, model_id, RATIONALE_PROMPT_VERSION
        )
        items = [_Item(v.id, v.path, v.sha256, v.review.label if v.review and v.review.label else v.label) for v in todo]
    return preset, items, done


def _sample_batch(items: Sequence[_Item], spec, cache):
    ok, failed = [], []
    for item in items:
        try:
            ok.append((item, sample_frames(item.path, spec, sha256=item.sha256, cache=cache)))
        except DataError as exc:
            failed.append({"path": item.path, "error": str(exc)})
        except (OSError, ValueError, RuntimeError) as exc:  # decoder errors on corrupt files
            failed.append({"path": item.path, "error": f"{item.path} could not be decoded ({exc}); re-encode it"})
    return ok, failed


def generate_batch(lm, prompts: list[str], videos: list, max_new_tokens: int) -> list[tuple[str, float]]:
    """Greedy generation; returns (text, mean log-probability per generated token) per video."""
    import torch  # torch is heavy: loaded only when a model runs


    inputs = encode_prompts(lm.processor, prompts, videos).to(lm.device)
    if "pixel_values_videos" in inputs:
        inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(lm.model.dtype)
    with torch.inference_mode():
        out = lm.model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            output_scores=True,
            return_dict_in_generate=True,
        )
    new_tokens = out.sequences[:, inputs["input_ids"].shape[1] :]
    scores = lm.model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
    eos_ids = set(_as_list(lm.model.generation_config.eos_token_id))
    pad_id = lm.model.generation_config.pad_token_id
    results = []
    for row, row_scores in zip(new_tokens.tolist(), scores):
        length = len(row)
        for i, tok in enumerate(row):
            if tok in eos_ids or (tok == pad_id and tok not in eos_ids):
                length = i + (1 if tok in eos_ids else 0)
                break
        logp = row_scores[:length].float()
        mean = float(logp[torch.isfinite(logp)].mean()) if length else float("-inf")
        text = lm.processor.tokenizer.decode(row[:length], skip_special_tokens=True)
        results.append((text, mean if math.isfinite(mean) else -99.0))
    return results


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _store(db_url, generated: list[tuple[_Item, str, float]], model_id: str, cfg: GenerateSpec, report, spec=None):
    params = {
        "num_frames": cfg.num_frames,
        "max_pixels": cfg.max_pixels,
        "max_new_tokens": cfg.max_new_tokens,
        "do_sample": False,
        "batch_size": cfg.batch_size,
    }
    if spec is not None:  # the review page shows exactly these frames
        params["sample_spec"] = spec.to_dict()
    with session_scope(db_url) as session:  # one transaction per batch
        for item, text, mean_logprob in generated:
            parsed = parse_rationale(text)
            queries.add_suggestion(
                session,
                item.video_id,
                model_id=model_id,
                prompt_version=RATIONALE_PROMPT_VERSION,
                label_hint=cfg.label_hint,
                mean_logprob=mean_logprob,
                gen_params=params,
                **parsed.to_fields(),
            )
            report.parse_status[parsed.status] += 1
    report.generated += len(generated)


def generate_rationales(
    db_url: Optional[str],
    dataset: str,
    model: str,
    cfg: GenerateSpec | None = None,
    *,
    progress: Optional[Progress] = None,
    should_stop: Optional[StopCheck] = None,
    loaded=None,
) -> GenerateReport:
    """Write one suggestion per readable video of ``cfg.split`` that lacks one for this model + prompt.

    ``should_stop()`` is checked between batches: a stop keeps every batch committed so far."""

    cfg = cfg or GenerateSpec()
    started = time.perf_counter()
    model_id = canonical_model_id(model)
    preset, items, done = _pending_items(db_url, dataset, model_id, cfg)
    report = GenerateReport(dataset=dataset, model_id=model_id, prompt_version=RATIONALE_PROMPT_VERSION)
    report.already_done = done
    if not items:
        return report
    lm = loaded or load_vlm(model, dtype=cfg.dtype, device=cfg.device, attn_implementation=cfg.attn_implementation)
    spec = sample_spec_for(lm.processor, num_frames=cfg.num_frames, max_pixels=cfg.max_pixels)
    cache = default_frame_cache()
    batches = [items[i : i + cfg.batch_size] for i in range(0, len(items), cfg.batch_size)]
    finished = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rbft-decode") as pool:
        future = pool.submit(_sample_batch, batches[0], spec, cache)
        for index in range(len(batches)):
            if stop_requested(should_stop):  # a stop between batches: everything so far is committed
                break
            sampled, failed = future.result()
            if index + 1 < len(batches):  # decode the next batch while this one generates
                future = pool.submit(_sample_batch, batches[index + 1], spec, cache)
            report.failed.extend(failed)
            if sampled:
                prompts = [rationale_prompt(preset, it.label if cfg.label_hint else None) for it, _ in sampled]
                outputs = generate_batch(lm, prompts, [v for _, v in sampled], cfg.max_new_tokens)
                _store(db_url, [(it, t, lp) for (it, _), (t, lp) in zip(sampled, outputs)], model_id, cfg, report, spec)
            finished += len(batches[index])
            if progress:
                progress(finished, len(items), Path(batches[index][-1].path).name)
    report.seconds = round(time.perf_counter() - started, 3)
    return report

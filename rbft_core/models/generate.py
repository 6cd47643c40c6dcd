"""Batched rationale generation: the model, prompted as a domain expert, writes one suggestion per video.

Resumable: videos that already have a suggestion for this model + prompt version are skipped unless
``overwrite``. Each batch is committed as it finishes, so a crash loses at most one batch. Frames for
the next batch are decoded in a background thread while the model generates the current one.

Several processes (``rbft generate --nproc-per-node N``: torchrun sets ``RANK`` / ``WORLD_SIZE``) share the
videos by batch: the batches are cut from the videos in id order, the same way in every process, and process
``r`` takes batches ``r, r + N, ...``. Each commits its own batches; a fresh run writes the same suggestions
as one process would (same batches, same greedy decoding).
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Optional, Sequence

from db import queries, writes
from db.engine import session_scope
from rbft_core.data.frame_cache import default_frame_cache
from rbft_core.data.video import sample_frames
from rbft_core.errors import DataError
from rbft_core.models.confidence import dimension_logprobs
from rbft_core.models.loading import encode_prompts, load_vlm, sample_spec_for
from rbft_core.models.prompts import (
    DEFAULT_DIMENSIONS,
    RATIONALE_PROMPT_VERSION,
    Dimension,
    dataset_preset,
    rationale_prompt,
)
from rbft_core.models.rationale import parse_rationale
from rbft_core.specs.data import GenerateSpec
from rbft_core.task_context import StopCheck, stop_requested

__all__ = ["GenerateReport", "generate_rationales", "canonical_model_id", "shard_of_process"]

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


def shard_of_process() -> tuple[int, int]:
    """(rank, world size) of this process under torchrun; (0, 1) alone."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _batches(db_url, dataset: str, model_id: str, cfg: GenerateSpec, shard: tuple[int, int]):
    """(preset, this process's batches of videos still to describe, how many of its videos already have one)."""
    rank, world = shard
    with session_scope(db_url) as session:
        ds = queries.get_dataset(session, dataset)
        preset = dataset_preset(ds)
        rows = queries.generation_candidates(session, ds.id, cfg.split, model_id, RATIONALE_PROMPT_VERSION,
                                             video_ids=list(cfg.video_ids) if cfg.video_ids is not None else None)
    items = [(_Item(vid, path, sha, label), done) for vid, path, sha, label, done in rows]
    if world == 1:  # one process: the batches are cut from what is left to do
        todo = [item for item, done in items if cfg.overwrite or not done]
        batches = [todo[i : i + cfg.batch_size] for i in range(0, len(todo), cfg.batch_size)]
        return preset, batches, 0 if cfg.overwrite else sum(done for _, done in items)
    # Several: cut from every candidate (what another process commits meanwhile cannot move a boundary).
    cut = [items[i : i + cfg.batch_size] for i in range(0, len(items), cfg.batch_size)][rank::world]
    mine = [[item for item, done in batch if cfg.overwrite or not done] for batch in cut]
    already = 0 if cfg.overwrite else sum(done for batch in cut for _, done in batch)
    return preset, [batch for batch in mine if batch], already


def _device(device: str, world: int) -> str:
    """Under torchrun on GPUs each process takes its own (``cuda:LOCAL_RANK``)."""
    if world == 1 or device not in ("auto", "cuda") or "LOCAL_RANK" not in os.environ:
        return device
    import torch  # torch is heavy: loaded only when a model runs

    if not torch.cuda.is_available():
        return device
    return f"cuda:{int(os.environ['LOCAL_RANK']) % torch.cuda.device_count()}"  # more ranks than GPUs: they share


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


def generate_batch(lm, prompts: list[str], videos: list, max_new_tokens: int, *,
                   with_confidence: bool = False, dimensions: Sequence[Dimension] = DEFAULT_DIMENSIONS) -> list[tuple]:
    """Greedy generation; returns (text, mean log-probability per generated token) per video, and with
    ``with_confidence`` a third item: the least likely token of each of ``dimensions`` (``models.confidence``)."""
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
        result = (text, mean if math.isfinite(mean) else -99.0)
        if with_confidence:
            fields = parse_rationale(text, dimensions).rationale.dimensions()
            result += (dimension_logprobs(row[:length], logp.tolist(), partial(_decode, lm.processor.tokenizer), fields),)
        results.append(result)
    return results


def _decode(tokenizer, ids) -> str:
    return tokenizer.decode(ids, skip_special_tokens=True)


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _store(db_url, generated: list[tuple[_Item, str, float, dict]], model_id: str, cfg: GenerateSpec, report,
           dimensions: Sequence[Dimension], spec=None):
    params = {
        "num_frames": cfg.num_frames,
        "max_pixels": cfg.max_pixels,
        "max_new_tokens": cfg.max_new_tokens,
        "do_sample": False,
        "batch_size": cfg.batch_size,
    }
    if spec is not None:  # the review page shows exactly these frames
        params["sample_spec"] = spec.to_dict()
    rows = []
    for item, text, mean_logprob, confidence in generated:
        parsed = parse_rationale(text, dimensions)
        rows.append({"video_id": item.video_id, "model_id": model_id, "prompt_version": RATIONALE_PROMPT_VERSION,
                     "label_hint": cfg.label_hint, "mean_logprob": mean_logprob, "gen_params": params,
                     "dimension_logprobs": confidence, **parsed.to_fields()})
        report.parse_status[parsed.status] += 1
    with session_scope(db_url) as session:  # one transaction (a few statements) per batch
        writes.add_suggestions(session, rows)
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
    shard: Optional[tuple[int, int]] = None,
) -> GenerateReport:
    """Write one suggestion per readable video of ``cfg.split`` that lacks one for this model + prompt.

    ``should_stop()`` is checked between batches: a stop keeps every batch committed so far. ``shard``:
    (rank, number of processes) sharing the videos; default from torchrun's environment, else (0, 1)."""

    cfg = cfg or GenerateSpec()
    started = time.perf_counter()
    model_id = canonical_model_id(model)
    shard = shard or shard_of_process()
    preset, batches, done = _batches(db_url, dataset, model_id, cfg, shard)
    report = GenerateReport(dataset=dataset, model_id=model_id, prompt_version=RATIONALE_PROMPT_VERSION)
    report.already_done = done
    if not batches:
        return report
    lm = loaded or load_vlm(model, dtype=cfg.dtype, device=_device(cfg.device, shard[1]),
                            attn_implementation=cfg.attn_implementation)
    spec = sample_spec_for(lm.processor, num_frames=cfg.num_frames, max_pixels=cfg.max_pixels)
    cache = default_frame_cache()
    total = sum(len(batch) for batch in batches)
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
                outputs = generate_batch(lm, prompts, [v for _, v in sampled], cfg.max_new_tokens,
                                         with_confidence=True, dimensions=preset.dimensions)
                _store(db_url, [(it, *out) for (it, _), out in zip(sampled, outputs)], model_id, cfg, report,
                       preset.dimensions, spec)
            finished += len(batches[index])
            if progress:
                progress(finished, total, Path(batches[index][-1].path).name)
    report.seconds = round(time.perf_counter() - started, 3)
    return report

"""Stage I / Stage II training examples and the collator that turns them into model batches.

Stage I: (video, expert rationale prompt) -> rationale target text (``render_target``: the dataset's dimensions,
in their order).
Stage II: (video, classification prompt) -> the label word.

Loss is on answer tokens only: the prompt, the video placeholder tokens and padding are masked with
-100. Frames come from the shared frame cache, so each video is decoded once for all epochs and both
stages; the collator only runs the official processor.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal, Optional, Sequence

from db import curated_queries, queries
from db.engine import session_scope
from rbft_core.data.video import sample_frames
from rbft_core.errors import ConfigError, DataError
from rbft_core.models.loading import encode_prompts
from rbft_core.models.prompts import (
    Preset,
    classification_prompt,
    dataset_preset,
    rationale_prompt,
)
from rbft_core.models.rationale import render_target

__all__ = ["Example", "RationaleSource", "build_examples", "VideoSFTCollator", "IGNORE_INDEX"]

IGNORE_INDEX = -100
RationaleSource = Literal["suggestions", "reviewed", "mix"]
SOURCES = ("suggestions", "reviewed", "mix")


@dataclass(frozen=True)
class Example:
    video_id: int
    path: str
    sha256: str
    prompt: str
    target: str
    label: str
    origin: str = ""  # "human" or "model" for Stage I; "label" for Stage II


def _rationale_target(row: dict, source: str, use_human: bool, preset: Preset
                      ) -> tuple[Optional[str], str, list[str]]:
    """Pick the Stage-I target of one curated row (None when it must be left out), where it comes from, and the
    required dimensions it leaves empty."""
    if row["status"] == "rejected":
        return None, "rejected", []
    human = row.get("edited") and row.get("review_fields")
    if source != "suggestions" and human and use_human:
        text, origin = row["review_fields"], "human"
    elif row.get("suggestion_fields") is None or row.get("parse_status") == "failed":
        return None, "no usable suggestion", []
    else:
        text, origin = row["suggestion_fields"], "model"
    empty = [d.name for d in preset.dimensions if d.required and not (text.get(d.name) or "").strip()]
    return render_target(text, preset.dimension_names), origin, empty


def build_examples(
    db_url: Optional[str],
    dataset: str,
    stage: int,
    *,
    split: str = "train",
    rationale_source: RationaleSource = "reviewed",
    human_share: float = 1.0,
    seed: int = 0,
) -> tuple[list[Example], Preset, dict]:
    """Examples of ``split`` for ``stage``; returns (examples, preset, a summary: the rows read, what was left out
    and, per required dimension, how many Stage-I targets leave it empty).

    ``rationale_source``: ``suggestions`` uses only the model's own rationales; ``reviewed`` uses the
    expert's edit where there is one; ``mix`` uses the edit for a seeded ``human_share`` of edited
    videos and the model's rationale for the rest (the authors' ablation).
    """

    if stage not in (1, 2):
        raise ConfigError(f"stage must be 1 or 2, got {stage}")
    if rationale_source not in SOURCES:
        raise ConfigError(f"rationale_source must be one of {', '.join(SOURCES)}, got {rationale_source!r}")
    if not 0.0 <= human_share <= 1.0:
        raise ConfigError(f"human_share must be within [0, 1], got {human_share}")
    with session_scope(db_url) as session:
        ds = queries.get_dataset(session, dataset)
        preset = dataset_preset(ds)
        rows = curated_queries.curated_examples(session, ds.id, splits=[split], statuses=None, include_excluded=True)
    rng = random.Random(seed)
    examples, left_out = [], {"rejected": 0, "no usable suggestion": 0, "excluded": 0}
    empty_required = {d.name: 0 for d in preset.dimensions if d.required}
    prompt1, prompt2 = rationale_prompt(preset), classification_prompt(preset)
    for row in rows:
        if row["excluded"]:
            left_out["excluded"] += 1
            continue
        if stage == 2:
            examples.append(Example(row["video_id"], row["path"], row["sha256"], prompt2, row["label"], row["label"], "label"))
            continue
        use_human = rationale_source == "reviewed" or rng.random() < human_share
        target, origin, empty = _rationale_target(row, rationale_source, use_human, preset)
        if target is None:
            left_out[origin] += 1
            continue
        for name in empty:
            empty_required[name] += 1
        examples.append(Example(row["video_id"], row["path"], row["sha256"], prompt1, target, row["label"], origin))
    return examples, preset, {"rows": len(rows), "left_out": left_out, "empty_required": empty_required}


def check_trainable(examples: Sequence[Example], stage: int, split: str, summary: dict) -> None:
    """Refuse data that cannot train, naming the counts."""
    if summary["rows"] == 0:
        raise DataError(f"the dataset has no readable {split} videos; import videos or change the split")
    if not examples:
        left = ", ".join(f"{n} {why}" for why, n in summary["left_out"].items() if n)
        what = "usable rationales for Stage I" if stage == 1 else "labelled videos for Stage II"
        hint = "; run `rbft generate` first" if stage == 1 else ""
        raise DataError(f"no {what} among {summary['rows']} {split} videos ({left or 'none usable'}){hint}")
    labels = {e.label for e in examples}
    if stage == 2 and len(labels) < 2:
        raise DataError(
            f"all {len(examples)} {split} videos have the label {next(iter(labels))!r}; Stage II needs at least "
            "two classes — import videos of the other class(es)"
        )


class VideoSFTCollator:
    """Sample (cached) frames, run the processor, mask everything but the answer tokens."""

    def __init__(self, processor, spec, cache=None):
        self.processor = processor
        self.spec = spec
        self.cache = cache
        tok = processor.tokenizer
        self.im_start_id = tok.convert_tokens_to_ids("<|im_start|>")
        self.pad_id = tok.pad_token_id
        # the assistant header after <|im_start|> ("assistant\n") is prompt, not answer
        self.header_len = len(tok("assistant\n", add_special_tokens=False)["input_ids"])

    def videos(self, examples: Sequence[Example]):
        return [sample_frames(e.path, self.spec, sha256=e.sha256, cache=self.cache) for e in examples]

    def __call__(self, examples: Sequence[Example]) -> dict:
        self.processor.tokenizer.padding_side = "right"
        batch = encode_prompts(
            self.processor, [e.prompt for e in examples], self.videos(examples), answers=[e.target for e in examples]
        )
        labels = batch["input_ids"].clone()
        for row in range(labels.shape[0]):
            ids = batch["input_ids"][row]
            starts = (ids == self.im_start_id).nonzero().flatten()
            answer_start = int(starts[-1]) + 1 + self.header_len
            real_len = int(batch["attention_mask"][row].sum())
            labels[row, :answer_start] = IGNORE_INDEX
            labels[row, real_len - 1 :] = IGNORE_INDEX  # the newline after <|im_end|>, and padding
        batch["labels"] = labels
        return dict(batch)

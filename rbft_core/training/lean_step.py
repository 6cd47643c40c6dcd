"""Training steps that do each video's fixed work once per run: the processor and the frozen vision tower.

With the vision tower and its merger frozen (the default: LoRA on the language model only), what the vision tower
makes of a video is the same in every epoch: Qwen2-VL, Qwen2.5-VL and Qwen3-VL have no dropout or batch
statistics there, and each video is encoded on its own (``cu_seqlens`` holds one span per temporal group; see
``models/video_features.py``). The plain path still runs the processor and the vision tower on every video of
every step. This path does both once per example:

- ``LeanCollator`` keeps each example's token ids, labels and video grid (the official processor run on that
  example alone) and builds a batch by right-padding them: the same tensors the batched processor gives, but the
  attention mask (below; ``tests/core/test_lean_step.py`` compares them key by key).
- The vision tower encodes a video the first time the collator meets it (``no_grad``, inside the training loop's
  autocast context); its output is stored within a byte budget (``TrainSpec.vision_cache_mb``; what does not fit
  is encoded again when next needed). A batch hands the model's own forward its videos' features through
  ``mm_encoder_outputs`` (transformers' argument for precomputed encoder outputs), never pixels.
- A batch carries no attention mask. Its rows are right-padded, and in a causal language model no token attends
  to a later position, so no real token ever sees a pad: the mask changes nothing the loss reads (pads carry no
  label) and the position ids of real tokens are the same without it. Without a mask the model runs plain causal
  attention (the fused kernel skips the masked half; no 4-D mask is built). The pads' own outputs differ, and
  nothing reads them.
- The language-model head runs only where a label is predicted (``logits_to_keep``: the position before each
  labelled token; ``shift_labels``: those labels, in the same order). The loss is the same sum over the same
  terms; the logits of unlabelled positions, which the loss ignores, are never made. In Stage II, where the
  answer is a few tokens of a long video prompt, that leaves out almost all of the head's work and the largest
  activations of the step (logits, their log-softmax and its gradient: 35 MB a step on the real-footage bench).

The language model, the LoRA weights, the loss and its masking, the data order and the random draws (LoRA
dropout) are those of the plain path; only the repeated fixed work goes. ``use_lean_step`` says when it applies.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from rbft_core.models.video_features import merge_video_features, split_video_features, video_module
from rbft_core.training.sft_data import IGNORE_INDEX, Example, VideoSFTCollator

__all__ = ["FeatureStore", "LeanCollator", "use_lean_step", "example_key", "LEAN_FAMILIES"]

# model types whose forward takes ``mm_encoder_outputs`` for videos (checked on tiny models in the tests)
LEAN_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
_TEXT_KEYS = ("input_ids", "mm_token_type_ids", "labels")  # no attention mask: module docstring
_PAD = {"mm_token_type_ids": 0, "labels": IGNORE_INDEX}


def example_key(example: Example) -> str:
    """What makes an example's encoding: its video content, prompt and target."""
    text = "\x00".join([example.sha256 or example.path, example.prompt, example.target])
    return hashlib.sha1(text.encode()).hexdigest()


def use_lean_step(model, cfg) -> tuple[bool, str]:
    """(applies, why not): only when nothing in the vision tower trains and the forward takes encoder outputs."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    model_type = getattr(getattr(base, "config", None), "model_type", "")
    inner = getattr(base, "model", None)
    visual = getattr(inner, "visual", None)
    if model_type not in LEAN_FAMILIES or visual is None:
        return False, f"model type {model_type or 'unknown'} is not one of {', '.join(LEAN_FAMILIES)}"
    if any(p.requires_grad for p in visual.parameters()):
        return False, "the vision tower or its merger trains"
    if cfg.deepspeed or cfg.fsdp:
        return False, "DeepSpeed / FSDP wrap the model"
    if "mm_encoder_outputs" not in inspect.signature(inner.forward).parameters:
        return False, "this transformers version's forward takes no mm_encoder_outputs"
    if cfg.vision_cache_mb <= 0:
        return False, "vision_cache_mb is 0"
    return True, ""


class FeatureStore:
    """Vision-tower outputs per example key, up to ``max_bytes`` (first come, first kept)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.items: dict[str, Any] = {}
        self.bytes = 0
        self.encoded = 0  # videos run through the vision tower (a run with everything stored: one per example)

    def get(self, key: str) -> Any:
        return self.items.get(key)

    def put(self, key: str, features: Any) -> bool:
        size = _nbytes(features)
        if key in self.items or self.bytes + size > self.max_bytes:
            return False
        self.items[key] = features
        self.bytes += size
        return True


def _nbytes(value: Any) -> int:
    if hasattr(value, "nbytes"):
        return int(value.nbytes)
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value)
    return 0


@dataclass
class _Encoded:
    """One example through the processor alone: unpadded token rows and its video's grid."""

    text: dict[str, Any]  # _TEXT_KEYS -> 1-D tensors
    grid: Any  # (1, 3)
    seconds: Any  # (1,) or None


class LeanCollator:
    """Batches from per-example encodings and stored vision features, both made once per example: no pixels
    reach the training step, so none stay alive through the language model's forward and backward."""

    def __init__(self, inner: VideoSFTCollator, store: FeatureStore, model):
        self.inner, self.store, self.model = inner, store, model
        self.encoded: dict[str, _Encoded] = {}
        # the training loop's autocast context (run_trainer sets the Trainer's): the vision tower runs as it would
        # inside the model's forward
        self.context: Callable[[], Any] = contextlib.nullcontext

    def _encode(self, examples: Sequence[Example]) -> tuple[list[_Encoded], list[Any]]:
        """The examples through the batched processor and the vision tower once (as the plain step does), split
        per example: token rows without their padding, each video's own features."""
        import torch  # torch is heavy: loaded only when a model runs

        batch = self.inner(list(examples))
        seconds, grid = batch.get("second_per_grid_ts"), batch["video_grid_thw"]
        encoded = []
        for row in range(len(examples)):
            length = int(batch["attention_mask"][row].sum())  # right padding: the row's own tokens come first
            encoded.append(_Encoded({k: batch[k][row, :length].clone() for k in _TEXT_KEYS if k in batch},
                                    grid[row:row + 1], seconds[row:row + 1] if hasattr(seconds, "shape") else None))
        inner = video_module(self.model)
        device = next(inner.visual.parameters()).device  # the vision tower's own (a model may span devices)
        with torch.no_grad(), self.context():
            out = inner.get_video_features(batch["pixel_values_videos"].to(device), grid.to(device))
        self.store.encoded += len(examples)
        return encoded, split_video_features(out)

    def __call__(self, examples: Sequence[Example]) -> dict:
        import torch  # torch is heavy: loaded only when a model runs

        keys = [example_key(e) for e in examples]
        parts = [self.store.get(k) for k in keys]
        missing = [i for i, part in enumerate(parts) if part is None or keys[i] not in self.encoded]
        if missing:
            fresh, features = self._encode([examples[i] for i in missing])
            for i, encoded, feature in zip(missing, fresh, features):
                self.encoded.setdefault(keys[i], encoded)
                self.store.put(keys[i], feature)
                parts[i] = feature
        rows = [self.encoded[k] for k in keys]
        width = max(int(r.text["input_ids"].shape[0]) for r in rows)
        batch: dict[str, Any] = {}
        for name in rows[0].text:
            fill = _PAD.get(name, self.inner.pad_id)
            batch[name] = torch.stack([torch.nn.functional.pad(r.text[name], (0, width - r.text[name].shape[0]),
                                                               value=fill) for r in rows])
        batch["video_grid_thw"] = torch.cat([r.grid for r in rows])
        if all(r.seconds is not None for r in rows):
            batch["second_per_grid_ts"] = torch.cat([r.seconds for r in rows])
        batch["mm_encoder_outputs"] = {"video": merge_video_features(parts)}
        # logits only where a label is predicted: the position before each labelled token (module docstring)
        shifted = torch.nn.functional.pad(batch["labels"][:, 1:], (0, 1), value=IGNORE_INDEX)
        keep = shifted != IGNORE_INDEX
        batch["logits_to_keep"], batch["shift_labels"] = keep, shifted[keep]
        return batch

"""Training steps that do each video's fixed work once per run: the processor and the frozen vision tower.

With the vision tower and its merger frozen (the default: LoRA on the language model only), what the vision tower
makes of a video is the same in every epoch: Qwen2-VL, Qwen2.5-VL and Qwen3-VL have no dropout or batch
statistics there, and each video is encoded on its own (``cu_seqlens`` holds one span per temporal group; see
``models/video_features.py``). The plain path still runs the processor and the vision tower on every video of
every step. This path does both once per example:

- ``LeanCollator`` keeps each example's token ids, labels and video grid (the official processor run on that
  example alone) and builds a batch by right-padding them: the same tensors the batched processor gives
  (``tests/core/test_lean_step.py`` compares them key by key).
- Videos whose vision features are stored come without pixels; the others come with theirs.
- ``lean_trainer_class(Trainer)`` encodes the missing videos under ``no_grad``, stores them within a byte budget
  (``TrainSpec.vision_cache_mb``; what does not fit is encoded again when next needed), and hands all of them to
  the model's own forward through ``mm_encoder_outputs`` (transformers' argument for precomputed encoder outputs).

The language model, the LoRA weights, the loss and its masking, the data order and the random draws (LoRA
dropout) are those of the plain path; only the repeated fixed work goes. ``use_lean_step`` says when it applies.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from rbft_core.models.video_features import encode_video_features, merge_video_features
from rbft_core.training.sft_data import IGNORE_INDEX, Example, VideoSFTCollator

__all__ = ["FeatureStore", "LeanCollator", "lean_trainer_class", "use_lean_step", "example_key", "LEAN_FAMILIES"]

# model types whose forward takes ``mm_encoder_outputs`` for videos (checked on tiny models in the tests)
LEAN_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
_TEXT_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "labels")
_PAD = {"attention_mask": 0, "mm_token_type_ids": 0, "labels": IGNORE_INDEX}


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
    """Batches from per-example encodings (computed once); pixels only for videos without stored features."""

    def __init__(self, inner: VideoSFTCollator, store: FeatureStore):
        self.inner, self.store = inner, store
        self.encoded: dict[str, _Encoded] = {}

    def _encode(self, example: Example) -> tuple[_Encoded, Any]:
        batch = self.inner([example])
        seconds = batch.get("second_per_grid_ts")
        encoded = _Encoded({k: batch[k][0] for k in _TEXT_KEYS if k in batch}, batch["video_grid_thw"],
                           seconds if seconds is None or hasattr(seconds, "shape") else None)
        return encoded, batch["pixel_values_videos"]

    def __call__(self, examples: Sequence[Example]) -> dict:
        import torch  # torch is heavy: loaded only when a model runs

        rows, pixels, keys, stored = [], [], [], []
        for example in examples:
            key = example_key(example)
            encoded, features = self.encoded.get(key), self.store.get(key)
            if encoded is None or features is None:
                encoded, video = self._encode(example)
                self.encoded.setdefault(key, encoded)
                if features is None:
                    pixels.append(video)
            rows.append(encoded)
            keys.append(key)
            stored.append(features)
        width = max(int(r.text["input_ids"].shape[0]) for r in rows)
        batch: dict[str, Any] = {}
        for name in rows[0].text:
            fill = _PAD.get(name, self.inner.pad_id)
            batch[name] = torch.stack([torch.nn.functional.pad(r.text[name], (0, width - r.text[name].shape[0]),
                                                               value=fill) for r in rows])
        batch["video_grid_thw"] = torch.cat([r.grid for r in rows])
        if all(r.seconds is not None for r in rows):
            batch["second_per_grid_ts"] = torch.cat([r.seconds for r in rows])
        if pixels:
            batch["pixel_values_videos"] = torch.cat(pixels)
        batch["rbft_video_keys"] = keys
        batch["rbft_video_features"] = stored
        return batch


def _features(model, store: FeatureStore, inputs: dict) -> Any:
    """Every video's vision output in batch order: stored ones reused, the others encoded now (and stored)."""
    import torch  # torch is heavy: loaded only when a model runs

    keys, stored = inputs.pop("rbft_video_keys"), inputs.pop("rbft_video_features")
    pixels = inputs.pop("pixel_values_videos", None)
    grid = inputs["video_grid_thw"]
    parts, row = [], 0
    for index, (key, features) in enumerate(zip(keys, stored)):
        if features is None:
            t, h, w = (int(v) for v in grid[index].tolist())
            with torch.no_grad():
                features = encode_video_features(model, pixels[row:row + t * h * w], grid[index:index + 1])
            row += t * h * w
            store.encoded += 1
            store.put(key, features)
        parts.append(features)
    return merge_video_features(parts)


def lean_trainer_class(trainer_class):
    """``trainer_class`` whose loss feeds the model stored vision outputs (``LeanCollator`` batches)."""

    class LeanTrainer(trainer_class):
        feature_store: Optional[FeatureStore] = None

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if "rbft_video_keys" in inputs:
                inputs = dict(inputs)
                inputs["mm_encoder_outputs"] = {"video": _features(model, self.feature_store, inputs)}
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

    return LeanTrainer

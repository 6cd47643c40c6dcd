"""Specs of the training tasks: one stage, the whole pipeline, and an evaluation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rbft_core.errors import ConfigError
from rbft_core.specs.base import Spec, setting
from rbft_core.specs.sampling import (
    DEFAULT_MAX_PIXELS,
    Sampling,
    SamplingOverride,
    check_batch_size,
    check_sampling,
)

__all__ = ["TrainSpec", "PipelineSpec", "EvaluateSpec", "DEFAULT_TARGETS", "Dtype", "Split"]

DEFAULT_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
Dtype = Literal["auto", "float32", "bfloat16", "float16"]
Split = Literal["train", "val", "test"]
RationaleSource = Literal["suggestions", "reviewed", "mix"]
DropoutRng = Literal["pcg64", "torch"]


@dataclass
class TrainSpec(Spec):
    """One training stage: Stage I learns the rationales, Stage II the labels (from M_inter, or from the base
    model for direct SFT). Saved as ``runs/<id>/spec.yaml``; ``rbft run`` on that file trains it again."""

    task = "train"
    dataset: str = setting("", "dataset name", cli=False)
    stage: Literal[1, 2] = setting(1, "1 = rationales (Stage I), 2 = labels (Stage II)")
    model: str = setting("", "base model: a local folder or a hub id")
    kind: Literal["stage1", "stage2", "direct_sft"] = setting("stage1", "set from stage and init_from", cli=False)
    run_id: str = setting("", "name of the run folder (default: time-kind-random)")
    init_from: str = setting("", "Stage II: the Stage-I run merged into the base (empty: direct SFT)")
    continue_adapter: bool = setting(False, "Stage II: keep training the Stage-I adapter instead of merging it")
    split: Split = setting("train", "split to train on")
    num_frames: int = setting(8, "frames sampled uniformly per video", label="frames", flag="frames")
    fps: float = setting(0.0, "frames per second instead of a fixed count (0: use frames)", unit="frames/s")
    max_frames: int = setting(32, "cap on the frame count when sampling by fps", label="max frames")
    max_pixels: int = setting(DEFAULT_MAX_PIXELS, "pixel budget per frame after resizing", label="max pixels",
                              unit="pixels")
    lora_rank: int = setting(16, "LoRA rank", label="LoRA rank")
    lora_alpha: int = setting(32, "LoRA alpha (scale = alpha / rank)", label="LoRA alpha")
    lora_dropout: float = setting(0.05, "LoRA dropout", label="LoRA dropout")
    dropout_rng: DropoutRng = setting("pcg64", "where the LoRA dropout masks' random bits come from on CPU: pcg64 "
                                      "(numpy's PCG64 seeded from the run's torch generator; same keep "
                                      "probability, masks about 2x faster) or torch (peft's own draws, as a plain "
                                      "peft run with the same seed)", label="dropout RNG")
    target_modules: str = setting(DEFAULT_TARGETS, "regex over module names that get LoRA (language model only by "
                                  "default)", label="LoRA targets")
    train_vision_merger: bool = setting(False, "also train the vision-language merger fully", label="train merger")
    lr: float = setting(2e-4, "peak learning rate", label="learning rate")
    epochs: float = setting(2.0, "passes over the training examples")
    batch_size: int = setting(2, "examples per device step", label="batch size", unit="videos")
    grad_accum: int = setting(1, "gradient accumulation steps", label="gradient accumulation")
    warmup_ratio: float = setting(0.1, "share of steps with linear warm-up", label="warm-up ratio")
    weight_decay: float = setting(0.0, "AdamW weight decay", label="weight decay")
    max_steps: int = setting(0, "stop after this many optimiser steps (0: from epochs)", label="max steps")
    save_steps: int = setting(0, "checkpoint every N steps (0: only at the end)", label="save steps")
    gradient_checkpointing: bool = setting(False, "recompute activations to save memory (slower)")
    vision_cache_mb: int = setting(1024, "with a frozen vision tower: keep each video's vision features for the "
                                   "run instead of encoding it every step (0: off)", label="vision cache",
                                   unit="MB")
    trim_heap: bool = setting(True, "give freed memory back to the OS when the heap has grown by 64 MB since the "
                              "last time (glibc malloc_trim): lower peak RSS on CPU", label="trim heap")
    prefetch_frames: bool = setting(False, "decode the run's videos into the frame cache on a background thread "
                                    "while it trains, instead of between steps (cold cache: +13 % samples/s on "
                                    "640x360 footage on 2 CPU cores, about 40 MB more peak RSS)",
                                    label="prefetch frames")
    seed: int = setting(0, "seed of the data order and LoRA initialisation")
    rationale_source: RationaleSource = setting("reviewed", "Stage-I targets: model suggestions, reviewed text, or "
                                                "a mix", label="rationale source")
    human_share: float = setting(1.0, "with mix: share of reviewed rationales", label="human share")
    dtype: Dtype = setting("auto", "weights dtype (auto: bfloat16 on GPU, float32 on CPU)")
    device: str = setting("auto", "cpu, cuda, cuda:N or auto")
    deepspeed: str = setting("", "DeepSpeed JSON config passed to TrainingArguments")
    fsdp: str = setting("", "FSDP options passed to TrainingArguments, e.g. 'full_shard auto_wrap'")
    evaluate: bool = setting(False, "evaluate the trained run on the test split afterwards (its own sampling)")

    def validate(self) -> None:
        if self.stage == 1:
            self.kind = "stage1"
        elif self.kind == "stage1":
            self.kind = "stage2" if self.init_from else "direct_sft"
        check_sampling(self.num_frames, self.fps, self.max_frames, self.max_pixels)
        check_batch_size(self.batch_size)
        checks = [
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.epochs > 0 or self.max_steps > 0, f"epochs must be > 0, got {self.epochs}"),
            (self.grad_accum >= 1, f"grad_accum must be >= 1, got {self.grad_accum}"),
            (self.lora_rank >= 1, f"lora_rank must be >= 1, got {self.lora_rank}"),
            (self.lora_alpha > 0, f"lora_alpha must be > 0, got {self.lora_alpha}"),
            (0 <= self.lora_dropout < 1, f"lora_dropout must be within [0, 1), got {self.lora_dropout}"),
            (0 <= self.warmup_ratio < 1, f"warmup_ratio must be within [0, 1), got {self.warmup_ratio}"),
            (self.max_steps >= 0, f"max_steps must be >= 0, got {self.max_steps}"),
            (self.save_steps >= 0, f"save_steps must be >= 0, got {self.save_steps}"),
            (self.vision_cache_mb >= 0, f"vision_cache_mb must be >= 0 (0 turns the cache off), got "
                                        f"{self.vision_cache_mb}"),
            (0 <= self.human_share <= 1, f"human_share must be within [0, 1], got {self.human_share}"),
            (not (self.stage == 1 and self.init_from), "init_from is for Stage II only (Stage I starts from the base)"),
            (bool(self.dataset), "dataset must be given"),
            (bool(self.model), "model must be given (a local folder or hub id)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        try:
            re.compile(self.target_modules)
        except re.error as exc:
            raise ConfigError(f"target_modules is not a valid regex ({exc})") from None

    @property
    def sampling(self) -> Sampling:
        return Sampling.of(self)


@dataclass
class PipelineSpec(Spec):
    """The whole method in one job: generate missing rationales -> Stage I -> Stage II (from M_inter) ->
    evaluate each run with its own sampling, plus zero-shot and direct SFT with Stage II's sampling."""

    task = "pipeline"
    stage1: TrainSpec = setting(None, "Stage I settings (rationales)", cli=False)
    stage2: TrainSpec = setting(None, "Stage II settings (labels); also the baselines' settings", cli=False)
    with_baselines: bool = setting(False, "also run zero-shot and direct SFT, so the comparison has all four rows")
    label_hint: bool = setting(True, "tell the model the label while it writes a missing rationale (the authors' "
                               "default)")
    generate_batch_size: int = setting(4, "videos per generate call for missing rationales", unit="videos")

    def validate(self) -> None:
        if self.stage1.stage != 1:
            raise ConfigError(f"stage1.stage must be 1, got {self.stage1.stage}")
        if self.stage2.stage != 2:
            raise ConfigError(f"stage2.stage must be 2, got {self.stage2.stage}")
        if (self.stage1.dataset, self.stage1.model) != (self.stage2.dataset, self.stage2.model):
            raise ConfigError("stage1 and stage2 must name the same dataset and model")
        check_batch_size(self.generate_batch_size, "generate_batch_size")


@dataclass
class EvaluateSpec(SamplingOverride):
    """Evaluate a run (its adapter chain) or a base model zero-shot, by label likelihood.

    Sampling fields left empty take the run's own sampling (from its spec); a zero-shot evaluation takes the
    given values, else the defaults. A value given here overrides the run's and is shown with the result."""

    task = "evaluate"
    dataset: str = setting("", "dataset name", cli=False)
    run: str = setting("", "run id to evaluate (any kind)")
    model: str = setting("", "base model for a zero-shot evaluation (instead of a run)")
    split: Split = setting("test", "split to evaluate on")
    batch_size: int = setting(4, "videos scored together", label="batch size", unit="videos")
    generate_answer: bool = setting(True, "also keep the model's written answer per video")
    max_new_tokens: int = setting(8, "length cap of the kept answer", unit="tokens")
    rationale_tokens: int = setting(160, "length cap of a Stage-I run's kept rationale", unit="tokens")
    dtype: Dtype = setting("auto", "weights dtype")
    device: str = setting("auto", "cpu, cuda, cuda:N or auto")

    def validate(self) -> None:
        super().validate()
        check_batch_size(self.batch_size)
        if self.run and self.model:
            raise ConfigError("run and model are exclusive: evaluate a run, or a base model zero-shot")

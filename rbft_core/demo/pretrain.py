"""Pre-train the demo's tiny base VLM on generic captions, so it describes clips but knows no security task.

A caption corpus comes from the same renderer with a different distribution (``world.sample_caption_spec``:
other places, daytime-heavy, no labels). Each clip's target is its scene graph as the four-field JSON the
rationale prompt asks for; prompts vary between a few generic phrasings and expert rationale prompts (with
a random, unrelated label hint, so the model learns to describe whatever the hint says). ALL weights of a
tiny Qwen2.5-VL (``rbft_core.models.tiny``) are trained with plain torch for a fixed number of steps; frames are
rendered once to arrays and kept as uint8, and the official processor turns each batch into inputs, so the
folder that ``rbft_core.models.loading.load_vlm`` loads is exactly what generation and training use.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from rbft_core.data.video import SampledVideo
from rbft_core.demo.render import render_clip, uniform_indices
from rbft_core.demo.world import (
    ACTIONS,
    ANIMAL_LOOK,
    CLOTHING,
    COURIER_CLOTHING,
    HOME_SCENES,
    OTHER_SCENES,
    PLURAL_WORDS,
    SIZES,
    SUBJECT_WORDS,
    SUBJECTS,
    ClipSpec,
    sample_caption_spec,
)
from rbft_core.errors import ConfigError
from rbft_core.models.generate import generate_batch
from rbft_core.models.loading import encode_prompts, load_vlm
from rbft_core.models.prompts import (
    DEFAULT_DIMENSIONS,
    PRESETS,
    Preset,
    classification_prompt,
    rationale_prompt,
)
from rbft_core.models.rationale import parse_rationale, render_target
from rbft_core.models.tiny import TinySpec, build_tiny_model
from rbft_core.training.sft_data import IGNORE_INDEX

# The demo world's scene graphs hold the paper's four dimensions.
_DIMS = DEFAULT_DIMENSIONS
_NAMES = tuple(d.name for d in _DIMS)

__all__ = ["PretrainConfig", "pretrain_base_model", "caption_accuracy", "prompt_variants", "clip_video"]

GENERIC_PROMPTS = (
    "Describe the video in four dimensions: subjects, attributes, actions and scenes. Answer with JSON only.",
    "What happens in this video? Answer with JSON: subjects, attributes, actions, scenes.",
    "Caption this clip as JSON with the keys subjects, attributes, actions and scenes.",
    "Watch the video and say who is there, what they look like, what they do and where. Answer with JSON.",
)
# Short questions, one field each: every answer token is content, so the vision tower learns to ground
# subjects, looks, actions and places far sooner than from whole captions (mostly format tokens).
QUESTIONS = {
    "subjects": ("Who or what appears in the video? Answer in a few words.", "Which person or animal is in this clip?"),
    "attributes": ("Describe their size and look in a few words.", "What do they look like?"),
    "actions": ("What are they doing? Answer in a few words.", "Which action happens in the clip?"),
    "scenes": ("Where and when was this filmed? Answer in a few words.", "Name the place and the time of day."),
}
# Other experts, so the rationale prompt's form (not one task) is what the model learns to answer.
OTHER_EXPERTS = (
    Preset(name="wildlife-survey", role="Wildlife Observer", task="Note which animals appear in the video.",
           labels=("animals", "no animals"), contexts=("species", "behaviour")),
    Preset(name="footage-logger", role="Video Archivist", task="Log the content of the clip for search.",
           labels=("indoor", "outdoor")),
)


@dataclass
class PretrainConfig:
    """How the base model is pre-trained.

    Args:
        num_clips: generic caption clips (rendered once, kept as uint8 frames).
        qa_first_steps: the first steps ask one field as a short question (cheap, short sequences; every answer
            token is content), so the model learns to look before it learns the caption format.
        qa_share: share of the later steps that still ask one field instead of the whole JSON caption.
        subject_share: share of the one-field questions that ask who is there (the hardest field to ground);
            the rest ask a random field. Without the grounding heads, 800 of 1100 steps with 0.75 took held-out
            subject accuracy from 19 % to 44 %; with them (``grounding_weight``) 400 of 1000 steps name the right
            subject in 92 % and parse 100 % at the same build time, and the longer caption phase fixed the JSON
            (measured: docs/benchmarks.md).
        heldout_clips: further generic clips for the caption-accuracy check.
        steps: optimiser steps (a fixed count: the build is deterministic).
        batch_size, lr, warmup_steps, weight_decay: optimisation (AdamW, cosine decay, all weights).
        hidden_size, num_layers, num_heads, intermediate_size, vision_hidden_size, vision_depth, vocab_size:
            the tiny Qwen2.5-VL's shape.
        grounding_weight: weight of the grounding heads' loss (0: none). Small linear heads on the vision
            tower's merged tokens, pooled per clip, name each clip's subject, action, place and lighting from its
            scene graph; their cross-entropy is added to the language loss, so the vision tower learns to see the
            subject directly instead of only through the language model. The heads are not saved: the folder is
            a plain Qwen2.5-VL. With them (and a white cat, see ``render.ANIMALS``) the rationales of the task
            world's train clips name the right subject in 87 % (78 % with pre-training seed 1), 49 % before.
        seed: corpus, weights and batch order.
        threads: torch CPU threads (1: on two shared cores a second thread mostly waits on the other jobs, and
            one thread keeps the floating-point sums, and so the build, the same on every machine).
    """

    num_clips: int = 1200
    heldout_clips: int = 64
    steps: int = 1000
    qa_first_steps: int = 400
    qa_share: float = 0.3
    subject_share: float = 0.75
    batch_size: int = 16
    lr: float = 1e-3
    warmup_steps: int = 30
    weight_decay: float = 0.01
    hidden_size: int = 128
    num_layers: int = 3
    num_heads: int = 4
    intermediate_size: int = 384
    vision_hidden_size: int = 96
    vision_depth: int = 2
    vocab_size: int = 1024
    grounding_weight: float = 1.0
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        for name in ("num_clips", "heldout_clips", "steps", "batch_size", "threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"pretrain.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.qa_first_steps < self.steps:
            raise ConfigError(f"pretrain.qa_first_steps must be within [0, steps), got {self.qa_first_steps}")
        if not 0 <= self.qa_share < 1:
            raise ConfigError(f"pretrain.qa_share must be within [0, 1), got {self.qa_share}")
        if self.grounding_weight < 0:
            raise ConfigError(f"pretrain.grounding_weight must be >= 0, got {self.grounding_weight}")
        if not self.lr > 0:
            raise ConfigError(f"pretrain.lr must be > 0, got {self.lr}")

    def tiny_spec(self):
        return TinySpec(family="qwen2_5_vl", vocab_size=self.vocab_size, hidden_size=self.hidden_size,
                        num_layers=self.num_layers, num_heads=self.num_heads, num_kv_heads=max(1, self.num_heads // 2),
                        intermediate_size=self.intermediate_size, vision_hidden_size=self.vision_hidden_size,
                        vision_depth=self.vision_depth, vision_heads=2, seed=self.seed)


def prompt_variants() -> list[str]:
    """Generic phrasings + expert rationale prompts (smart-home and others, with and without a label hint)."""
    prompts = list(GENERIC_PROMPTS)
    for preset in (PRESETS["smart-home"], *OTHER_EXPERTS):
        prompts.append(rationale_prompt(preset))
        prompts += [rationale_prompt(preset, label) for label in preset.labels]
    return prompts


def _vocabulary_corpus() -> list[str]:
    """Every word a caption can use, and every prompt, so the tokenizer has merges for them."""
    words = [*SUBJECT_WORDS.values(), *PLURAL_WORDS.values(), *ANIMAL_LOOK.values(), *ACTIONS, *CLOTHING,
             COURIER_CLOTHING, *SIZES, *HOME_SCENES, *OTHER_SCENES, "at night", "during the day",
             "a package is visible", "and an adult"]
    questions = [q for qs in QUESTIONS.values() for q in qs]
    return [*prompt_variants(), *questions, *(classification_prompt(p) for p in PRESETS.values()), ", ".join(words)] * 4


def clip_video(spec: ClipSpec, *, total_frames: int, num_frames: int, size: tuple[int, int], fps: float):
    """A ``SampledVideo`` rendered straight to arrays, with the frames and metadata the mp4 path would give."""

    indices = uniform_indices(total_frames, num_frames)
    frames = render_clip(spec, num_frames=total_frames, size=size, frame_indices=indices)
    return SampledVideo(frames=frames, timestamps_s=[i / fps for i in indices], frame_indices=indices, source_fps=fps,
                        duration_s=total_frames / fps, source_size=tuple(size), total_num_frames=total_frames)


def _batch(processor, prompts, videos, answers, *, whole_text: bool = False):
    """Inputs with answer-only labels (the project's collator rule), or with ``whole_text`` a loss on every
    text token (prompt included; never the video placeholders or padding)."""

    processor.tokenizer.padding_side = "right"
    batch = encode_prompts(processor, prompts, videos, answers=answers)
    tok = processor.tokenizer
    im_start = tok.convert_tokens_to_ids("<|im_start|>")
    header = len(tok("assistant\n", add_special_tokens=False)["input_ids"])
    labels = batch["input_ids"].clone()
    if whole_text:
        labels[(batch["attention_mask"] == 0) | (labels == tok.convert_tokens_to_ids("<|video_pad|>"))] = IGNORE_INDEX
        batch["labels"] = labels
        return dict(batch)
    for row in range(labels.shape[0]):
        starts = (batch["input_ids"][row] == im_start).nonzero().flatten()
        real_len = int(batch["attention_mask"][row].sum())
        labels[row, : int(starts[-1]) + 1 + header] = IGNORE_INDEX
        labels[row, real_len - 1 :] = IGNORE_INDEX
    batch["labels"] = labels
    return dict(batch)


# The grounding heads' targets: a clip spec's value and the classes it is one of.
_GROUNDING = {
    "subject": (lambda spec: spec.subject, SUBJECTS),
    "action": (lambda spec: spec.action, ACTIONS),
    "scene": (lambda spec: spec.scene, HOME_SCENES + OTHER_SCENES),
    "lighting": (lambda spec: "night" if spec.night else "day", ("day", "night")),
}


def _grounding_heads(torch, hidden: int):
    """Linear heads on the vision tower's merged tokens, pooled per clip (mean and max), one per scene-graph field."""

    class GroundingHeads(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.heads = torch.nn.ModuleDict({name: torch.nn.Linear(2 * hidden, len(classes))
                                              for name, (_, classes) in _GROUNDING.items()})

        def forward(self, tokens, specs):
            per_clip = tokens.view(len(specs), -1, tokens.shape[-1])  # every clip has the same frame grid
            pooled = torch.cat([per_clip.mean(1), per_clip.amax(1)], dim=-1)
            losses = [torch.nn.functional.cross_entropy(
                self.heads[name](pooled), torch.tensor([classes.index(value(spec)) for spec in specs]))
                for name, (value, classes) in _GROUNDING.items()]
            return sum(losses) / len(losses)

    return GroundingHeads()


@dataclass
class PretrainReport:
    steps: int
    seconds: float
    final_loss: float
    losses: list[float] = field(default_factory=list)


def pretrain_base_model(out_dir: Path, cfg: PretrainConfig, *, world_frames: int, num_frames: int,
                        size: tuple[int, int], fps: float,
                        progress: Optional[Callable[[int, int, str], None]] = None) -> PretrainReport:
    """Build the tokenizer + tiny model into ``out_dir`` and train all its weights on the caption corpus."""
    import torch  # torch is heavy: loaded only when a model runs
    from transformers import (  # transformers is heavy: loaded only when a model runs
        AutoModelForImageTextToText,
        AutoProcessor,
    )


    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    build_tiny_model(out_dir, cfg.tiny_spec(), extra_corpus=_vocabulary_corpus(), overwrite=True)
    processor = AutoProcessor.from_pretrained(out_dir)
    model = AutoModelForImageTextToText.from_pretrained(out_dir, dtype=torch.float32, attn_implementation="sdpa")
    rng = random.Random(cfg.seed)
    specs = [sample_caption_spec(rng, f"gen_{i:05d}") for i in range(cfg.num_clips)]
    videos = []
    for i, spec in enumerate(specs):
        videos.append(clip_video(spec, total_frames=world_frames, num_frames=num_frames, size=size, fps=fps))
        if progress and (i + 1) % 100 == 0:
            progress(i + 1, cfg.num_clips + cfg.steps, "rendering the caption corpus")
    graphs = [s.scene_graph() for s in specs]
    answers = [render_target(g, _NAMES) for g in graphs]
    prompts = prompt_variants()
    params = list(model.parameters())
    vision_out: dict = {}
    if cfg.grounding_weight > 0:
        heads = _grounding_heads(torch, cfg.hidden_size)
        params += list(heads.parameters())
        model.model.visual.register_forward_hook(
            lambda _module, _args, out: vision_out.__setitem__("tokens", out.pooler_output))
    optimiser = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))

    def lr_at(step: int) -> float:
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        done = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * done)))

    model.train()
    started, losses = time.perf_counter(), []
    for step in range(cfg.steps):
        picks = [rng.randrange(len(specs)) for _ in range(cfg.batch_size)]
        # one prompt per batch (no padding between prompts): a one-field question, or the whole caption
        # after a generic phrasing (60 %; short, so cheap) or an expert rationale prompt (40 %)
        if step < cfg.qa_first_steps or rng.random() < cfg.qa_share:
            # who is there is the hardest to ground (a small sprite among many patches): asked most of the time
            dim = "subjects" if rng.random() < cfg.subject_share else rng.choice(_NAMES)
            prompt, targets = rng.choice(QUESTIONS[dim]), [graphs[i][dim] for i in picks]
        else:
            expert = rng.random() >= 0.6
            prompt = rng.choice(prompts[len(GENERIC_PROMPTS) :] if expert else prompts[: len(GENERIC_PROMPTS)])
            targets = [answers[i] for i in picks]
        batch = _batch(processor, [prompt] * len(picks), [videos[i] for i in picks], targets)
        for group in optimiser.param_groups:
            group["lr"] = lr_at(step)
        loss = model(**batch).loss
        if cfg.grounding_weight > 0:
            loss = loss + cfg.grounding_weight * heads(vision_out.pop("tokens"), [specs[i] for i in picks])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        losses.append(float(loss.detach()))
        if progress:
            progress(cfg.num_clips + step + 1, cfg.num_clips + cfg.steps, f"step {step + 1}, loss {np.mean(losses[-20:]):.3f}")
    model.eval()
    model.save_pretrained(out_dir)
    return PretrainReport(steps=cfg.steps, seconds=round(time.perf_counter() - started, 1),
                          final_loss=round(float(np.mean(losses[-20:])), 4), losses=[round(x, 4) for x in losses[::10]])


def caption_accuracy(model_dir: Path, cfg: PretrainConfig, *, world_frames: int, num_frames: int,
                     size: tuple[int, int], fps: float, batch_size: int = 8, max_new_tokens: int = 80) -> dict:
    """Greedy captions of held-out generic clips (the smart-home rationale prompt) against their scene graphs.

    Returns the parse-ok share, the exact-match share per field, and the share that names the right subject.
    """

    lm = load_vlm(str(model_dir), device="cpu")
    rng = random.Random(f"heldout:{cfg.seed}")
    specs = [sample_caption_spec(rng, f"held_{i:04d}") for i in range(cfg.heldout_clips)]
    prompt = rationale_prompt(PRESETS["smart-home"])
    ok, exact, subject_named, samples = 0, {d: 0 for d in _NAMES}, 0, []
    for start in range(0, len(specs), batch_size):
        chunk = specs[start : start + batch_size]
        videos = [clip_video(s, total_frames=world_frames, num_frames=num_frames, size=size, fps=fps) for s in chunk]
        for spec, (text, _) in zip(chunk, generate_batch(lm, [prompt] * len(chunk), videos, max_new_tokens)):
            parsed = parse_rationale(text, _DIMS)
            truth = spec.scene_graph()
            ok += parsed.status == "ok"
            for dim in _NAMES:
                exact[dim] += parsed.rationale[dim].strip().lower() == truth[dim].lower()
            subject_named += spec.subject in parsed.rationale["subjects"].lower()
            if len(samples) < 4:
                samples.append({"truth": truth, "generated": text})
    n = len(specs)
    return {"clips": n, "parse_ok": ok / n, "field_exact": {d: v / n for d, v in exact.items()},
            "mean_field_exact": sum(exact.values()) / (n * len(_NAMES)), "subject_named": subject_named / n,
            "samples": samples}


def config_json(cfg: PretrainConfig) -> dict:
    return asdict(cfg)

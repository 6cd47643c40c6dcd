"""Tiny random-weight Qwen-VL-family models, built offline and deterministically.

No weights can be downloaded where this project is built and tested, so tests and the demo build
their own: a byte-level BPE tokenizer trained locally with ``tokenizers`` (Qwen special tokens and a
Qwen-style chat template), a small config of the real architecture, and the official processor
classes. Everything is written with ``save_pretrained`` and loads back through the Auto classes,
exactly like a real checkpoint folder (``rbft_core.models.loading.load_vlm`` serves both).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

from rbft_core.errors import ConfigError

__all__ = ["Family", "TinySpec", "build_tiny_model", "QWEN_SPECIAL_TOKENS", "CHAT_TEMPLATE", "qwen2_5_vl_7b_config"]

Family = Literal["qwen2_vl", "qwen2_5_vl", "qwen3_vl"]
FAMILIES: tuple[str, ...] = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")

# Order matters: ids follow this order right after <|endoftext|> (id 0), as in Qwen's vocabulary.
QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# ChatML with Qwen-VL's vision placeholders; content may be a string or a list of typed parts.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# A small generic corpus so the BPE learns useful merges for prompts, rationales and labels.
_BASE_CORPUS = """
You are a helpful assistant. You are a Smart Home Security Expert. You are a Content Moderation Expert.
Watch the video and describe it in four dimensions: subjects, attributes, actions and scenes.
Answer with JSON: {"subjects": "...", "attributes": "...", "actions": "...", "scenes": "..."}
Is the video normal or abnormal? Answer with one word. hateful offensive normal abnormal
Subjects: a person, a child, a delivery courier with a box, a dog, a cat, a bear, a deer, a raccoon.
Attributes: small, large, tall, dark, bright, red, blue, green, yellow, white, black, grey, brown,
wearing a jacket, wearing a hat, carrying a package, one, two, three, several.
Actions: walking by, approaching the door, entering the house, running, climbing the fence, lying still,
picking up a package, leaving a package, standing, sitting, looking around, opening the door.
Scenes: porch, front door, living room, driveway, backyard, pool, garage, kitchen, street, garden,
at night, during the day, in the evening, dim lighting, bright sunlight, rain, camera view from above,
doorbell camera, security camera, indoor, outdoor.
The video shows a person walking towards the front door at night. The dog is lying still in the yard.
A stranger picks up a package from the porch and walks away. A bear climbs onto the porch at night.
""".strip()


@dataclass(frozen=True)
class TinySpec:
    """Sizes of a tiny model. The defaults build a ~1 M parameter model in about a second.

    Args:
        family: architecture family.
        vocab_size: target BPE vocabulary size (special tokens added on top).
        hidden_size: text hidden size (also the vision tower's output size).
        num_layers: text decoder layers.
        num_heads: text attention heads (head_dim = hidden_size / num_heads).
        num_kv_heads: key/value heads.
        vision_hidden_size: vision tower width.
        vision_depth: vision tower blocks.
        seed: seeds tokenizer corpus order and weight init.
    """

    family: Family = "qwen2_5_vl"
    vocab_size: int = 1024
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 128
    vision_hidden_size: int = 32
    vision_depth: int = 2
    vision_heads: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ConfigError(f"family must be one of {', '.join(FAMILIES)}, got {self.family!r}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})")
        if (self.hidden_size // self.num_heads) % 8:
            raise ConfigError("head_dim (hidden_size / num_heads) must be a multiple of 8 for multimodal RoPE")
        if self.vocab_size < 300:
            raise ConfigError(f"vocab_size must be >= 300 (256 byte tokens + merges), got {self.vocab_size}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


def train_tokenizer(corpus: Iterable[str], vocab_size: int):
    """Train a byte-level BPE tokenizer (Qwen2's pre-tokenizer) and wrap it as ``Qwen2Tokenizer``."""
    from tokenizers import (  # tokenizers loads only when a tokenizer is trained
        Regex,  # tokenizers loads only when a tokenizer is trained
        Tokenizer,
        models,
        pre_tokenizers,
        trainers,
    )
    from transformers import (
        Qwen2Tokenizer,  # transformers is heavy: loaded only when a model runs
    )
    from transformers.models.qwen2.tokenization_qwen2 import (
        PRETOKENIZE_REGEX,  # transformers is heavy: loaded only when a model runs
    )

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(QWEN_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(corpus), trainer=trainer)
    state = json.loads(bpe.to_str())["model"]
    vocab: dict[str, int] = state["vocab"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(QWEN_SPECIAL_TOKENS[1:]),
        model_max_length=32768,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _text_config(spec: TinySpec, vocab_size: int, ids: dict[str, int]) -> dict:
    half = spec.head_dim // 2  # mrope_section sums to head_dim / 2 (temporal, height, width)
    t = half // 4
    section = [half - 2 * ((half - t) // 2), (half - t) // 2, (half - t) // 2]
    rope: dict = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": section}
    if spec.family == "qwen3_vl":
        rope["mrope_interleaved"] = True
    cfg = dict(
        vocab_size=vocab_size,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads,
        max_position_embeddings=4096,
        rope_parameters=rope,
        pad_token_id=ids["<|endoftext|>"],
    )
    if spec.family == "qwen3_vl":
        cfg["head_dim"] = spec.head_dim
    else:
        cfg.update(bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"])
    return cfg


def _vision_config(spec: TinySpec) -> dict:
    common = dict(depth=spec.vision_depth, num_heads=spec.vision_heads, spatial_merge_size=2, temporal_patch_size=2)
    if spec.family == "qwen2_vl":
        return dict(common, embed_dim=spec.vision_hidden_size, hidden_size=spec.hidden_size, mlp_ratio=2, patch_size=14)
    if spec.family == "qwen2_5_vl":
        return dict(
            common,
            hidden_size=spec.vision_hidden_size,
            intermediate_size=2 * spec.vision_hidden_size,
            out_hidden_size=spec.hidden_size,
            patch_size=14,
            window_size=112,
            fullatt_block_indexes=[spec.vision_depth - 1],
            tokens_per_second=2,
        )
    return dict(
        common,
        hidden_size=spec.vision_hidden_size,
        intermediate_size=2 * spec.vision_hidden_size,
        out_hidden_size=spec.hidden_size,
        patch_size=16,
        num_position_embeddings=256,
        deepstack_visual_indexes=[0],
    )


def _classes(family: str):
    import transformers as tf  # transformers is heavy: loaded only when a model runs

    if family == "qwen2_vl":
        return tf.Qwen2VLConfig, tf.Qwen2VLForConditionalGeneration, tf.Qwen2VLProcessor, tf.Qwen2VLVideoProcessor
    if family == "qwen2_5_vl":
        return (
            tf.Qwen2_5_VLConfig,
            tf.Qwen2_5_VLForConditionalGeneration,
            tf.Qwen2_5_VLProcessor,
            tf.Qwen2VLVideoProcessor,
        )
    return tf.Qwen3VLConfig, tf.Qwen3VLForConditionalGeneration, tf.Qwen3VLProcessor, tf.Qwen3VLVideoProcessor


def build_processor(spec: TinySpec, tokenizer, *, min_pixels: int | None = None, max_pixels: int | None = None):
    """The official processor classes around a trained tokenizer; pixel limits kept small for CPU."""
    from transformers import (
        Qwen2VLImageProcessor,  # transformers is heavy: loaded only when a model runs
    )

    _, _, processor_cls, video_cls = _classes(spec.family)
    patch = 16 if spec.family == "qwen3_vl" else 14
    factor = patch * 2
    size = {"shortest_edge": min_pixels or 4 * factor * factor, "longest_edge": max_pixels or 64 * factor * factor}
    image_processor = Qwen2VLImageProcessor(patch_size=patch, merge_size=2, temporal_patch_size=2, size=size)
    video_kwargs = dict(patch_size=patch, merge_size=2, temporal_patch_size=2, size=size)
    if spec.family == "qwen3_vl":
        video_kwargs.update(fps=2, do_sample_frames=False)
    video_processor = video_cls(**video_kwargs)
    return processor_cls(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )


def build_tiny_model(
    out_dir: str | Path,
    spec: TinySpec | None = None,
    *,
    extra_corpus: Iterable[str] = (),
    overwrite: bool = False,
) -> Path:
    """Build a tiny random-weight model + processor of ``spec.family`` into ``out_dir``.

    Deterministic for a given spec and corpus. Returns the folder, loadable with
    ``AutoProcessor.from_pretrained`` and ``AutoModelForImageTextToText.from_pretrained``.
    """
    import torch  # torch is heavy: loaded only when a model runs

    spec = spec or TinySpec()
    out = Path(out_dir)
    if (out / "config.json").exists() and not overwrite:
        return out
    out.mkdir(parents=True, exist_ok=True)

    corpus = [line for line in _BASE_CORPUS.splitlines() if line.strip()] + [str(t) for t in extra_corpus]
    tokenizer = train_tokenizer(corpus, spec.vocab_size)
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in QWEN_SPECIAL_TOKENS}
    vocab_size = len(tokenizer)

    config_cls, model_cls, _, _ = _classes(spec.family)
    config = config_cls(
        text_config=_text_config(spec, vocab_size, ids),
        vision_config=_vision_config(spec),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(spec.seed)
    model = model_cls(config).eval()
    model.generation_config.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.do_sample = False

    processor = build_processor(spec, tokenizer)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    (out / "rbft_tiny.json").write_text(json.dumps({"family": spec.family, **spec.__dict__}, indent=2))
    return out


def qwen2_5_vl_7b_config(ids: dict[str, int]):
    """Qwen2.5-VL-7B's configuration (for random-weight memory and speed checks without its weights);
    ``ids``: the ids of the Qwen special tokens in the tokenizer used with it."""
    from transformers import (
        Qwen2_5_VLConfig,  # transformers is heavy: loaded only when a model runs
    )

    return Qwen2_5_VLConfig(
        text_config=dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                         num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
                         pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                           fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )

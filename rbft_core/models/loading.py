"""Load any transformers video VLM (local folder or hub id) and turn prompts + frames into inputs.

One loading path for everything: the tiny models that tests build (``rbft_core.models.tiny``) and a real
Qwen2.5-VL-7B folder go through the same ``AutoProcessor`` + ``AutoModelForImageTextToText`` calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

from rbft_core.data.video import SampleSpec
from rbft_core.errors import ConfigError, ModelError

if TYPE_CHECKING:  # pragma: no cover
    from rbft_core.data.video import SampledVideo

__all__ = [
    "LoadedModel",
    "load_vlm",
    "resolve_dtype",
    "resolve_device",
    "check_model_source",
    "encode_prompts",
    "sample_spec_for",
]

DTYPES = ("auto", "float32", "bfloat16", "float16")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2", "flex_attention")


@dataclass
class LoadedModel:
    model: Any
    processor: Any
    model_id: str
    device: str
    dtype: str
    model_type: str


def resolve_device(device: str = "auto") -> str:
    import torch  # torch is heavy: loaded only when a model runs

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was asked for but CUDA is not available here; use --device cpu")
    return device


def resolve_dtype(dtype: str, device: str):
    """bf16 on CUDA (fp16 where bf16 is unsupported), fp32 on CPU, unless overridden."""
    import torch  # torch is heavy: loaded only when a model runs

    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return getattr(torch, dtype)


def _looks_like_path(model_id: str) -> bool:
    """Hub ids are ``name`` or ``owner/name``; anything else is meant as a folder."""
    return model_id.startswith((".", "/", "~")) or model_id.count("/") > 1 or "\\" in model_id


def check_model_source(model_id: str) -> str:
    """Fail early, before any job starts, when the model cannot be a vision-language model.

    Returns the model type (``qwen2_5_vl``, ...). A local folder must exist and hold a config.json;
    a hub id is looked up in the local cache (``HF_HUB_OFFLINE=1`` stops downloads).
    """
    from transformers import (
        AutoConfig,  # transformers is heavy: loaded only when a model runs
    )
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,  # transformers is heavy: loaded only when a model runs
    )

    if not model_id or not str(model_id).strip():
        raise ModelError("no model given; pass --model with a local folder or a hub id")
    path = Path(model_id).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelError(f"model folder {path} has no config.json; point --model at a saved model folder")
    elif _looks_like_path(model_id):
        raise ModelError(f"model folder {model_id} does not exist; check the path or build one with `rbft tiny-model`")
    try:
        config = AutoConfig.from_pretrained(str(path) if path.exists() else model_id)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"could not load the config of model {model_id!r} ({exc.__class__.__name__}: {str(exc).splitlines()[0]}); "
            "pass a local model folder, or a hub id that is already in the local cache"
        ) from None
    model_type = getattr(config, "model_type", "")
    if model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise ModelError(
            f"model {model_id!r} is a {model_type or 'unknown'} model, not a vision-language model; "
            "choose a video VLM such as Qwen2.5-VL"
        )
    return model_type


def load_vlm(
    model_id: str,
    *,
    dtype: str = "auto",
    device: str = "auto",
    attn_implementation: str = "sdpa",
    adapter: Optional[str] = None,
) -> LoadedModel:
    """Load a VLM + processor from a local folder or hub id, optionally with a peft adapter on top."""
    from transformers import (  # transformers is heavy: loaded only when a model runs
        AutoModelForImageTextToText,
        AutoProcessor,
    )

    if attn_implementation not in ATTN_IMPLEMENTATIONS:
        raise ConfigError(
            f"attn_implementation must be one of {', '.join(ATTN_IMPLEMENTATIONS)}, got {attn_implementation!r}"
        )
    model_type = check_model_source(model_id)
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    source = str(Path(model_id).expanduser()) if Path(model_id).expanduser().exists() else model_id
    try:
        processor = AutoProcessor.from_pretrained(source)
        model = AutoModelForImageTextToText.from_pretrained(
            source, dtype=torch_dtype, attn_implementation=attn_implementation
        )
    except ImportError as exc:
        raise ModelError(f"attention implementation {attn_implementation!r} is not installed here ({exc}); use sdpa")
    except (OSError, ValueError) as exc:
        raise ModelError(f"could not load model {model_id!r}: {str(exc).splitlines()[0]}") from None
    if adapter:
        from peft import (
            PeftModel,  # peft pulls in torch: loaded only when adapters are used
        )

        if not (Path(adapter) / "adapter_config.json").is_file():
            raise ModelError(f"adapter folder {adapter} has no adapter_config.json; pick a finished run's adapter")
        model = PeftModel.from_pretrained(model, adapter)
    model.to(device).eval()
    processor.tokenizer.padding_side = "left"
    return LoadedModel(
        model=model,
        processor=processor,
        model_id=model_id,
        device=device,
        dtype=str(torch_dtype).removeprefix("torch."),
        model_type=model_type,
    )


def chat_text(processor, prompt: str, answer: Optional[str] = None) -> str:
    """The chat-formatted text for one video + prompt (and the answer, for training targets)."""
    messages: list[dict] = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    if answer is not None:
        text += answer + "<|im_end|>\n"
    return text


def encode_prompts(processor, prompts: Sequence[str], videos: Sequence["SampledVideo"], answers=None):
    """Batch-encode (video, prompt[, answer]) pairs with the official processor.

    Frames are already sampled and resized by ``rbft_core.data.video``; the processor is told so
    (``do_sample_frames=False``, the real frame indices and fps in ``video_metadata``) so temporal
    positions and timestamps are right.
    """
    if len(prompts) != len(videos):
        raise ValueError(f"{len(prompts)} prompts for {len(videos)} videos")
    answers = answers or [None] * len(prompts)
    texts = [chat_text(processor, p, a) for p, a in zip(prompts, answers)]
    return processor(
        text=texts,
        # cached frames are read-only memory maps; torch wants writable arrays
        videos=[v.frames if v.frames.flags.writeable else v.frames.copy() for v in videos],
        videos_kwargs={
            "video_metadata": [v.metadata() for v in videos],
            "do_sample_frames": False,
            "cap_pixels_per_frame": True,
        },
        padding=True,
        return_tensors="pt",
    )


def sample_spec_for(processor, *, num_frames: int = 8, fps: float = 0.0, max_frames: int = 32, max_pixels: int = 128 * 28 * 28):
    """The frame-sampling spec matching a processor's patch grid: uniform ``num_frames``, or ``fps`` (> 0)."""

    vp = processor.video_processor
    factor = vp.patch_size * vp.merge_size
    frames = dict(num_frames=None, fps=fps, max_frames=max_frames) if fps > 0 else dict(num_frames=num_frames)
    return SampleSpec(**frames, max_pixels=max_pixels, min_pixels=min(max_pixels, 4 * factor * factor), size_factor=factor)

"""Attention weights for a few query rows, at O(L) memory, without changing the model's output.

Eager attention with ``output_attentions=True`` materialises every layer's [heads, L, L] matrix (gigabytes at a
few thousand video tokens); sdpa gives no weights at all. Here a custom attention function (registered with
transformers' ``AttentionInterface``) runs sdpa for the real attention output, so logits are bit-for-bit those
of a plain sdpa forward, and on the chosen layers also computes

    softmax(q[rows] . K^T * scaling + mask[rows])      (key/value heads repeated for GQA)

for the requested query rows only: [heads, R, L] per layer. Only the text model is switched (for the length
of one ``capture_rows`` block); the vision tower keeps its own implementation.

``forward_rows`` is the lean forward the attention maps use: the same logits and rows, with the vision tower
run one temporal group at a time (``rbft_core.models.video_features``), the pixel values freed before the language
model runs, no KV cache and only the last logit.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence

from rbft_core.errors import ConfigError, ModelError
from rbft_core.models.video_features import (
    encode_video_features,
    serve_video_features,
    served_pixels,
)

__all__ = ["ROWS_IMPLEMENTATION", "RowCapture", "capture_rows", "forward_rows", "text_attention_layers",
           "check_hookable"]

ROWS_IMPLEMENTATION = "rbft_rows"
_ACTIVE: contextvars.ContextVar[Optional["RowCapture"]] = contextvars.ContextVar("rbft_row_capture", default=None)
_REGISTERED = False


@dataclass
class RowCapture:
    """What one forward pass should record: query ``positions`` on ``layers``; fills ``rows`` (layer -> [B, H, R, L])."""

    positions: Any  # LongTensor [R]
    layers: frozenset[int]
    rows: dict[int, Any] = field(default_factory=dict)


def _rows_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """sdpa for the output; the requested rows of the attention weights on the chosen layers."""
    from transformers.integrations.sdpa_attention import (
        sdpa_attention_forward,  # transformers is heavy: loaded only when a model runs
    )

    output, _ = sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                       **kwargs)
    capture = _ACTIVE.get()
    layer = getattr(module, "layer_idx", None)
    if capture is not None and layer in capture.layers:
        groups = getattr(module, "num_key_value_groups", 1)
        capture.rows[layer] = attention_rows(query, key, attention_mask, capture.positions, scaling, groups)
    return output, None


def attention_rows(query, key, attention_mask, positions, scaling: Optional[float], groups: int):
    """softmax(q[rows] K^T * scaling + mask[rows]) in float32: [B, H, R, L], as eager attention computes it."""
    import torch  # torch is heavy: loaded only when a model runs
    from transformers.integrations.sdpa_attention import (
        repeat_kv,  # transformers is heavy: loaded only when a model runs
    )

    scaling = scaling if scaling is not None else query.shape[-1] ** -0.5
    q = query[:, :, positions, :].float()
    k = repeat_kv(key, groups).float()
    scores = torch.matmul(q, k.transpose(-1, -2)) * scaling
    kv_len, q_len = key.shape[2], query.shape[2]
    if attention_mask is None:  # sdpa skipped the mask: plain causal, no padding
        cols = torch.arange(kv_len, device=scores.device)
        allowed = cols[None, :] <= (positions.to(scores.device) + kv_len - q_len)[:, None]
        scores = scores.masked_fill(~allowed[None, None], float("-inf"))
    else:
        rows = attention_mask[:, :, positions, :kv_len]
        if rows.dtype == torch.bool:
            scores = scores.masked_fill(~rows, float("-inf"))
        else:
            scores = scores + rows.float()
    return torch.softmax(scores, dim=-1)


def _register() -> None:
    global _REGISTERED
    if _REGISTERED:
        return
    from transformers import (
        AttentionInterface,  # transformers is heavy: loaded only when a model runs
    )
    from transformers.masking_utils import (  # transformers is heavy: loaded only when a model runs
        AttentionMaskInterface,
        sdpa_mask,
    )

    AttentionInterface.register(ROWS_IMPLEMENTATION, _rows_attention)
    # masks are built exactly as for sdpa (None when plain causal lets sdpa use its causal kernel)
    AttentionMaskInterface.register(ROWS_IMPLEMENTATION, sdpa_mask)
    _REGISTERED = True


def _base_model(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def text_attention_layers(model) -> list:
    """The text decoder's self-attention modules (those with a ``layer_idx``), in layer order."""
    found = [m for name, m in _base_model(model).named_modules()
             if "language_model" in name and name.endswith("self_attn") and getattr(m, "layer_idx", None) is not None]
    return sorted(found, key=lambda m: m.layer_idx)


def check_hookable(model, model_id: str = "the model") -> list:
    """Refuse models whose text attention cannot be read this way, naming the setting to change."""
    base = _base_model(model)
    layers = text_attention_layers(base)
    if not layers:
        raise ModelError(f"{model_id} has no text attention layers that rbft can read (no language_model.*.self_attn "
                         "with a layer_idx); attention maps need a Qwen2-VL / Qwen2.5-VL / Qwen3-VL style model")
    if not getattr(base, "_supports_attention_backend", False):
        raise ModelError(f"{model_id} ({base.__class__.__name__}) does not route attention through transformers' "
                         "AttentionInterface, so its attention cannot be hooked; load a model class that does")
    implementation = str(layers[0].config._attn_implementation or "")
    if implementation.startswith(("flash", "paged", "sdpa_paged")) or implementation not in ("sdpa", "eager", ROWS_IMPLEMENTATION):
        raise ModelError(f"{model_id} runs its text attention with {implementation!r}, which gives no attention weights "
                         "and cannot be hooked; load it with attn_implementation='sdpa' "
                         "(load_vlm(..., attn_implementation='sdpa'), the default of `rbft attention`)")
    return layers


def resolve_layers(num_layers: int, layers: Optional[Sequence[int]]) -> list[int]:
    """``layers`` = (first, last), inclusive, negative from the end; None = all layers."""

    if layers is None:
        return list(range(num_layers))
    if len(layers) != 2:
        raise ConfigError(f"layers must be (first, last), got {list(layers)}")
    first, last = (i + num_layers if i < 0 else i for i in layers)
    if not 0 <= first <= last < num_layers:
        raise ConfigError(f"layers {list(layers)} are outside the model's {num_layers} text layers "
                          f"(valid: 0..{num_layers - 1}, or negative from the end)")
    return list(range(first, last + 1))


@contextmanager
def capture_rows(model, positions, layers: Sequence[int], model_id: str = "the model") -> Iterator[RowCapture]:
    """Within the block, forwards of ``model`` record attention rows of ``positions`` on ``layers``."""
    import torch  # torch is heavy: loaded only when a model runs

    attn_layers = check_hookable(model, model_id)
    _register()
    configs = {id(m.config): m.config for m in attn_layers}
    for lm in (m for name, m in _base_model(model).named_modules() if name.endswith("language_model")):
        configs.setdefault(id(lm.config), lm.config)
    saved = {key: cfg._attn_implementation_internal for key, cfg in configs.items()}
    capture = RowCapture(positions=torch.as_tensor(positions, dtype=torch.long), layers=frozenset(layers))
    token = _ACTIVE.set(capture)
    try:
        for cfg in configs.values():
            cfg._attn_implementation_internal = ROWS_IMPLEMENTATION
        yield capture
    finally:
        for key, cfg in configs.items():
            cfg._attn_implementation_internal = saved[key]
        _ACTIVE.reset(token)


def forward_rows(model, inputs: dict, positions, layers: Sequence[int], model_id: str = "the model", *,
                 groups_per_chunk: int = 1) -> dict:
    """One forward of ``inputs`` recording the attention rows of ``positions`` on ``layers`` (layer -> [B, H, R, L]).

    Takes ``pixel_values_videos`` out of ``inputs`` (so that, once the video features are computed, the pixels
    can be freed while the language model runs); everything else in ``inputs`` is passed to the model as is.
    """
    import torch  # torch is heavy: loaded only when a model runs


    check_hookable(model, model_id)  # before the vision tower runs, not after
    pixels = inputs.pop("pixel_values_videos", None)
    with torch.inference_mode():
        if pixels is None:
            with capture_rows(model, positions, layers, model_id) as cap:
                model(**inputs, logits_to_keep=1, use_cache=False)
            return cap.rows
        features = encode_video_features(model, pixels, inputs["video_grid_thw"], groups_per_chunk=groups_per_chunk)
        placeholder = served_pixels(pixels)
        del pixels
        with serve_video_features(model, features), capture_rows(model, positions, layers, model_id) as cap:
            model(**inputs, pixel_values_videos=placeholder, logits_to_keep=1, use_cache=False)
    return cap.rows

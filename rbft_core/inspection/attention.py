"""Attention from answer / rationale tokens to the video tokens, as (T', H', W') maps over the sampled frames.

``attention_maps(lm, video, prompt)`` runs one forward pass with ``attention_rows.forward_rows`` (O(L) memory:
only the query rows are computed, on the chosen layers), aggregates heads (mean or max) and layers (mean),
keeps the video tokens, renormalises them to sum 1 and lays them out on the grid from ``video_grid_thw``:

- Qwen2-VL / Qwen2.5-VL: one contiguous block of T'*H'*W' ``<|video_pad|>`` tokens;
- Qwen3-VL: one block of H'*W' tokens per temporal group, with the timestamp text between blocks.

Either way the k-th video token is cell (k // (H'W'), (k // W') mod H', k mod W'); ``VideoTokenLayout`` checks
the count and block structure against ``input_ids``. H' and W' count merged patches (patch * merge pixels);
each temporal cell covers ``temporal_patch_size`` (2) consecutive sampled frames.

A *relative* map divides by the map for a generic prompt ("Describe this video."), which cancels attention
sinks that take mass whatever the question is. Drawing (matplotlib, moviepy) lives in ``rbft_core.inspection.heatmaps``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, Sequence

import numpy as np

from rbft_core.errors import ConfigError, DataError
from rbft_core.inspection.attention_rows import (
    forward_rows,
    resolve_layers,
    text_attention_layers,
)
from rbft_core.models.loading import encode_prompts

__all__ = ["VideoTokenLayout", "AttentionMap", "attention_maps", "attention_share", "GENERIC_PROMPT"]

GENERIC_PROMPT = "Describe this video."
QueryKind = Literal["answer", "rationale"]
_EPS = 1e-12


@dataclass(frozen=True)
class VideoTokenLayout:
    """Where the video tokens of one sequence are and which (t, h, w) cell each one covers."""

    positions: np.ndarray  # [N] token positions in input_ids
    grid: tuple[int, int, int]  # (T', H', W') in merged cells
    temporal_patch_size: int
    blocks: list[tuple[int, int]]  # contiguous runs of video tokens: (first position, last position + 1)

    @classmethod
    def from_inputs(cls, input_ids, video_grid_thw, *, video_token_id: int, merge_size: int,
                    temporal_patch_size: int, per_frame_blocks: bool) -> "VideoTokenLayout":
        ids = np.asarray(input_ids).reshape(-1)
        positions = np.flatnonzero(ids == video_token_id)
        t, h, w = (int(x) for x in np.asarray(video_grid_thw).reshape(-1)[:3])
        grid = (t, h // merge_size, w // merge_size)
        if len(positions) != grid[0] * grid[1] * grid[2]:
            raise DataError(f"the prompt holds {len(positions)} video tokens but video_grid_thw {t}x{h}x{w} with merge "
                            f"size {merge_size} needs {grid[0] * grid[1] * grid[2]}; encode one video per prompt")
        breaks = np.flatnonzero(np.diff(positions) != 1)
        starts = [int(positions[0]), *(int(positions[i + 1]) for i in breaks)]
        ends = [*(int(positions[i]) + 1 for i in breaks), int(positions[-1]) + 1]
        blocks = list(zip(starts, ends))
        expected = grid[0] if per_frame_blocks else 1
        if len(blocks) != expected:
            raise DataError(f"expected {expected} block(s) of video tokens, found {len(blocks)}; "
                            "the processor's prompt layout is not the one this model family uses")
        return cls(positions=positions, grid=grid, temporal_patch_size=temporal_patch_size, blocks=blocks)

    def to_grid(self, values) -> np.ndarray:
        """Values of the video tokens in sequence order -> [T', H', W']."""
        return np.asarray(values, dtype=np.float64).reshape(self.grid)

    def cell_of(self, k: int) -> tuple[int, int, int]:
        _, h, w = self.grid
        return k // (h * w), (k // w) % h, k % w


@dataclass
class AttentionMap:
    """Attention mass on the video cells (sums to 1), with the frames it was computed on.

    Args:
        grid: [T', H', W'] share of the video attention per cell.
        frames: the sampled frames [T, H, W, 3] (uint8) the model saw.
        timestamps_s: time of each sampled frame.
        temporal_patch_size: frames per temporal cell.
        source_size: (width, height) of the original video.
        tokens: the query tokens (text) the map aggregates.
        per_token: [R, T', H', W'] one map per query token (rationale maps), or None.
    """

    grid: np.ndarray
    frames: np.ndarray
    timestamps_s: list[float]
    temporal_patch_size: int
    source_size: tuple[int, int]
    query: str = "answer"
    layers: list[int] = field(default_factory=list)
    head_agg: str = "mean"
    relative: bool = False
    tokens: list[str] = field(default_factory=list)
    per_token: Optional[np.ndarray] = None

    def cell_of_frame(self, frame_index: int) -> int:
        return min(frame_index // self.temporal_patch_size, self.grid.shape[0] - 1)

    def frame_maps(self) -> np.ndarray:
        """[T, H, W] the cell values spread over each frame's pixels (nearest: a cell stays a cell)."""
        _, height, width, _ = self.frames.shape
        _, gh, gw = self.grid.shape
        rows = (np.arange(height) * gh) // height
        cols = (np.arange(width) * gw) // width
        cells = [self.cell_of_frame(f) for f in range(self.frames.shape[0])]
        return self.grid[cells][:, rows][:, :, cols]

    def top_cells(self, k: int) -> list[tuple[int, int, int]]:
        """The k cells with the most attention, as (t, h, w)."""
        flat = np.argsort(self.grid.reshape(-1))[::-1][:k]
        return [tuple(int(x) for x in np.unravel_index(i, self.grid.shape)) for i in flat]


def _layout(lm, inputs) -> VideoTokenLayout:
    vp = lm.processor.video_processor
    return VideoTokenLayout.from_inputs(
        inputs["input_ids"][0].cpu().numpy(), inputs["video_grid_thw"][0].cpu().numpy(),
        video_token_id=lm.model.config.video_token_id, merge_size=vp.merge_size,
        temporal_patch_size=vp.temporal_patch_size, per_frame_blocks=lm.model_type.startswith("qwen3"))


def _inputs(lm, prompt: str, video, answer: Optional[str] = None):
    lm.processor.tokenizer.padding_side = "left"
    inputs = encode_prompts(lm.processor, [prompt], [video], answers=[answer] if answer is not None else None)
    inputs = inputs.to(lm.device)
    if "pixel_values_videos" in inputs:
        inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(lm.model.dtype)
    return inputs


def _append_tokens(inputs, new_ids):
    """The prompt inputs with generated tokens appended (text tokens: mask 1, mm type 0)."""
    import torch  # torch is heavy: loaded only when a model runs

    out = dict(inputs)
    new = new_ids.reshape(1, -1).to(inputs["input_ids"].device)
    out["input_ids"] = torch.cat([inputs["input_ids"], new], dim=1)
    out["attention_mask"] = torch.cat([inputs["attention_mask"], torch.ones_like(new)], dim=1)
    if "mm_token_type_ids" in inputs:
        out["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(new)], dim=1)
    return out


def _query_rows(lm, prompt, video, query: QueryKind, answer: Optional[str], max_new_tokens: int):
    """(model inputs, query positions, query token texts): the rows that predict the answer / rationale tokens."""
    import torch  # torch is heavy: loaded only when a model runs

    tok = lm.processor.tokenizer
    inputs = _inputs(lm, prompt, video)
    prompt_len = int(inputs["input_ids"].shape[1])
    if query == "rationale":
        with torch.inference_mode():
            out = lm.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        new = out[0, prompt_len:]
        stop = {tok.convert_tokens_to_ids("<|im_end|>"), tok.eos_token_id, tok.pad_token_id}
        keep = [i for i, t in enumerate(new.tolist()) if t not in stop]
        new = new[: keep[-1] + 1] if keep else new[:0]
        if len(new) == 0:
            raise DataError("the model generated no rationale tokens for this video; use query='answer' instead")
        full = _append_tokens(inputs, new)
        texts = [tok.decode([t]) for t in new.tolist()]
    elif answer:
        new = torch.tensor(tok(answer, add_special_tokens=False)["input_ids"])
        full = _append_tokens(inputs, new)
        texts = [tok.decode([t]) for t in new.tolist()]
    else:
        new, full, texts = torch.zeros(1), inputs, ["<answer>"]
    positions = torch.arange(prompt_len - 1, prompt_len - 1 + len(new))
    return full, positions, texts


def _video_rows(lm, inputs, positions, layers: list[int], head_agg: str) -> tuple[np.ndarray, VideoTokenLayout]:
    """[R, N] attention of each query row on the N video tokens, renormalised to sum 1 per row."""
    import torch  # torch is heavy: loaded only when a model runs


    layout = _layout(lm, inputs)
    captured = forward_rows(lm.model, inputs, positions, layers, lm.model_id)  # frees inputs' pixel values
    stacked = torch.stack([captured[i][0] for i in layers])  # [layers, H, R, L]
    heads = stacked.amax(dim=1) if head_agg == "max" else stacked.mean(dim=1)
    rows = heads.mean(dim=0)[:, torch.as_tensor(layout.positions, device=heads.device)].double().cpu().numpy()
    return rows / np.maximum(rows.sum(axis=1, keepdims=True), _EPS), layout


def attention_maps(lm, video, prompt: str, *, query: QueryKind = "answer", answer: Optional[str] = None,
                   layers: Optional[Sequence[int]] = None, head_agg: str = "mean", relative: bool = False,
                   generic_prompt: str = GENERIC_PROMPT, max_new_tokens: int = 32) -> AttentionMap:
    """Attention of ``query`` tokens on the video of ``video`` (a ``SampledVideo``) under ``prompt``.

    Args:
        query: ``answer``: the position that predicts the answer (with ``answer``, e.g. a label, the rows
            predicting each of its tokens); ``rationale``: the model writes a rationale (greedy) and every
            generated token is a query row (``per_token`` holds one map each).
        layers: (first, last) text layers, inclusive, negative from the end; None = all.
        head_agg: ``mean`` or ``max`` over heads (layers are averaged).
        relative: divide by the map of ``generic_prompt`` (same query kind), then renormalise.
    """

    if query not in ("answer", "rationale"):
        raise ConfigError(f"query must be 'answer' or 'rationale', got {query!r}")
    if head_agg not in ("mean", "max"):
        raise ConfigError(f"head_agg must be 'mean' or 'max', got {head_agg!r}")
    chosen = resolve_layers(len(text_attention_layers(lm.model)), layers)
    inputs, positions, texts = _query_rows(lm, prompt, video, query, answer, max_new_tokens)
    rows, layout = _video_rows(lm, inputs, positions, chosen, head_agg)
    if relative:
        g_inputs, g_positions, _ = _query_rows(lm, generic_prompt, video, "answer", None, max_new_tokens)
        generic, _ = _video_rows(lm, g_inputs, g_positions, chosen, head_agg)
        rows = rows / (generic.mean(axis=0, keepdims=True) + 1e-6)
        rows = rows / np.maximum(rows.sum(axis=1, keepdims=True), _EPS)
    mean = rows.mean(axis=0)
    return AttentionMap(
        grid=layout.to_grid(mean / max(mean.sum(), _EPS)), frames=np.asarray(video.frames),
        timestamps_s=list(video.timestamps_s), temporal_patch_size=layout.temporal_patch_size,
        source_size=tuple(video.source_size), query=query, layers=chosen, head_agg=head_agg, relative=relative,
        tokens=texts, per_token=np.stack([layout.to_grid(r) for r in rows]) if query == "rationale" else None)


def attention_share(amap: AttentionMap, boxes: Sequence[Optional[Sequence[Sequence[float]]]]) -> float:
    """Share of the video attention mass inside the boxes (the critical object), in [0, 1].

    ``boxes[f]`` lists (x0, y0, x1, y1) boxes in the *source* video's pixels for sampled frame ``f`` (None or
    empty: no object in that frame). Every frame of a temporal cell carries that cell's mass, spread evenly over
    its pixels, so the share is the mass-weighted fraction of pixels covered, summed over frames.
    """
    maps = amap.frame_maps()
    if len(boxes) != maps.shape[0]:
        raise DataError(f"{len(boxes)} box lists for {maps.shape[0]} sampled frames; give one (maybe empty) per frame")
    _, height, width = maps.shape
    sx, sy = width / amap.source_size[0], height / amap.source_size[1]
    inside = np.zeros(maps.shape, dtype=bool)
    for f, frame_boxes in enumerate(boxes):
        for x0, y0, x1, y1 in frame_boxes or []:
            ya, yb = int(np.clip(np.floor(y0 * sy), 0, height)), int(np.clip(np.ceil(y1 * sy), 0, height))
            xa, xb = int(np.clip(np.floor(x0 * sx), 0, width)), int(np.clip(np.ceil(x1 * sx), 0, width))
            inside[f, ya:yb, xa:xb] = True
    total = maps.sum()
    return float((maps * inside).sum() / total) if total > 0 else 0.0

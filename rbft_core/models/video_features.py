"""The vision tower run a few temporal groups at a time, its features handed to one forward instead of pixels.

In Qwen2-VL, Qwen2.5-VL and Qwen3-VL the vision tower never mixes temporal groups (``temporal_patch_size``
frames each): the patch embedding, MLPs and norms work per patch, window and full attention run inside one
group (``cu_seqlens`` holds one span per group), the rotary / position tables repeat per group and the
merger merges 2x2 patches of one group. Encoding groups ``[a, b)`` of a video as a video of grid
``(b - a, h, w)`` therefore gives exactly its rows of the whole video's features; only the peak shrinks (one
chunk's activations instead of all groups' at once; tests check the equality).

``serve_video_features`` then lets a normal forward of the model use those features: the model's
``get_video_features`` returns them whatever pixels it is handed, so the caller can drop the pixel values
before the language model runs and pass ``SERVED_PIXELS`` (an empty tensor) in their place. Position ids,
rope deltas and Qwen3-VL's deepstack injection are computed by the model's own forward, unchanged.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from rbft_core.errors import ModelError

__all__ = ["encode_video_features", "merge_video_features", "split_video_features", "serve_video_features",
           "served_pixels", "video_module"]


def video_module(model):
    """The module whose forward calls ``self.get_video_features`` (``Qwen*VLModel``, under any wrappers)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner = getattr(base, "model", None)
    if inner is None or not hasattr(inner, "get_video_features") or not hasattr(inner, "visual"):
        raise ModelError(f"{base.__class__.__name__} has no .model.get_video_features / .visual; chunked video "
                         "encoding needs a Qwen2-VL / Qwen2.5-VL / Qwen3-VL style model")
    return inner


def _chunks(video_grid_thw, groups_per_chunk: int) -> Iterator[tuple[int, int, int, tuple[int, int, int]]]:
    """(video index, first patch row, last patch row + 1, chunk grid) in the order of ``pixel_values_videos``."""
    start = 0
    for index, (t, h, w) in enumerate(video_grid_thw.tolist()):
        for first in range(0, t, groups_per_chunk):
            groups = min(groups_per_chunk, t - first)
            yield index, start + first * h * w, start + (first + groups) * h * w, (groups, h, w)
        start += t * h * w


def _merge(parts: list, video_of_part: list[int], num_videos: int):
    """Chunk outputs -> whole-video outputs: tensors concatenated; per-video tuples (one entry per chunk) rebuilt
    as one entry per video; lists (e.g. deepstack levels) merged element-wise."""
    import torch  # torch is heavy: loaded only when a model runs

    first = parts[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(parts, dim=0)
    if isinstance(first, tuple):  # get_video_features splits per video; each chunk is one (part of a) video
        return tuple(torch.cat([p[0] for p, v in zip(parts, video_of_part) if v == i], dim=0)
                     for i in range(num_videos))
    if isinstance(first, list):
        return [_merge([p[k] for p in parts], video_of_part, num_videos) for k in range(len(first))]
    raise ModelError(f"cannot merge video features of type {type(first).__name__} across chunks")


def encode_video_features(model, pixel_values_videos, video_grid_thw, *, groups_per_chunk: int = 1) -> Any:
    """``get_video_features`` of the whole batch of videos, computed ``groups_per_chunk`` temporal groups at a time.

    Returns what the model's ``get_video_features`` returns (``pooler_output`` per video, and Qwen3-VL's
    ``deepstack_features``), without ``last_hidden_state`` (the unmerged patch states, which the forward never
    reads and which would otherwise stay alive through the language model).
    """
    if groups_per_chunk < 1:
        raise ModelError(f"groups_per_chunk must be >= 1, got {groups_per_chunk}")
    inner = video_module(model)
    grid = video_grid_thw.to("cpu")
    parts, video_of_part, kind = [], [], None
    for index, first, last, chunk_grid in _chunks(grid, groups_per_chunk):
        out = inner.get_video_features(pixel_values_videos[first:last], video_grid_thw.new_tensor([chunk_grid]))
        kind = type(out)
        if hasattr(out, "keys"):  # a ModelOutput: keep the fields the forward reads, drop the patch states now
            out = {k: v for k, v in out.items() if k != "last_hidden_state"}
        parts.append(out)
        video_of_part.append(index)
    if not hasattr(parts[0], "keys"):  # older transformers: a tuple of per-video tensors
        return _merge(parts, video_of_part, len(grid))
    return kind(**{k: _merge([p[k] for p in parts], video_of_part, len(grid)) for k in parts[0]})


def split_video_features(output: Any) -> list:
    """``get_video_features`` of several videos -> one output per video (what ``merge_video_features`` joins).

    ``pooler_output`` holds one tensor per video; tensors and lists of tensors beside it (Qwen3-VL's deepstack
    levels) are split by those videos' token counts; the unmerged patch states are dropped."""
    pooled = output["pooler_output"]
    sizes = [int(t.shape[0]) for t in pooled]
    fields = {k: v for k, v in output.items() if k not in ("last_hidden_state", "pooler_output")}
    videos = []
    for index, tensor in enumerate(pooled):
        one: dict[str, Any] = {"pooler_output": (tensor,)}
        for key, value in fields.items():
            if value is not None:
                one[key] = _one_video(value, sizes, index)
        videos.append(type(output)(**one))
    return videos


def _one_video(value: Any, sizes: list[int], index: int) -> Any:
    """Video ``index``'s part of a field: a per-video tuple's entry, a tensor's rows, a list's parts in turn."""
    if isinstance(value, tuple):
        return (value[index],)
    if isinstance(value, list):
        return [_one_video(v, sizes, index) for v in value]
    return value.split(sizes)[index]


def merge_video_features(parts: list) -> Any:
    """Outputs of ``encode_video_features`` for one video each -> the output for all of them, in that order."""
    if not parts:
        raise ModelError("no video features to merge")
    if not hasattr(parts[0], "keys"):
        return _merge(parts, list(range(len(parts))), len(parts))
    return type(parts[0])(**{k: _merge([p[k] for p in parts], list(range(len(parts))), len(parts))
                             for k in parts[0]})


@contextmanager
def serve_video_features(model, features) -> Iterator[None]:
    """Within the block, the model's ``get_video_features`` returns ``features`` instead of encoding pixels."""
    inner = video_module(model)

    def served(pixel_values_videos, video_grid_thw=None, **kwargs):
        return features

    inner.get_video_features = served
    try:
        yield
    finally:
        del inner.get_video_features


def served_pixels(like):
    """What to pass as ``pixel_values_videos`` while features are served: an empty tensor, so the forward takes
    its video branch (it only tests ``is not None``) without the real pixels being kept alive."""
    return like.new_empty(0)

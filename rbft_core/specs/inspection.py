"""Specs of the inspection tasks: the masking experiment and attention maps. Both start from each run's own
sampling; a sampling value given here overrides it and is reported next to the result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from rbft_core.errors import ConfigError
from rbft_core.specs.base import setting
from rbft_core.specs.sampling import SamplingOverride, check_batch_size
from rbft_core.specs.training import Dtype, Split

__all__ = ["MaskSpec", "AttentionSpec", "FILLS", "REGION_SOURCES"]

FILLS = ("black", "mean", "blur")
REGION_SOURCES = ("meta", "motion", "attention")


@dataclass
class MaskSpec(SamplingOverride):
    """Mask the critical object vs same-size random boxes, per run, on one split.

    ``regions_source``: ``meta`` (per-frame boxes in each video's metadata), ``motion`` (frame differencing),
    ``attention`` (each run's own top-k cells) or a JSON/JSONL/CSV box file path."""

    task = "mask-experiment"
    dataset: str = setting("", "dataset name", cli=False)
    runs: tuple[str, ...] = setting((), "run ids to test, e.g. a direct-SFT run and an RB-FT run", flag="run")
    regions_source: str = setting("meta", "meta | motion | attention | a JSON/JSONL/CSV box file", flag="regions")
    fill: Literal["black", "mean", "blur"] = setting("black", "what covers a masked box")
    k_random: int = setting(3, "random control trials per video", label="random trials")
    seed: int = setting(0, "seed of the random boxes")
    align_to_grid: bool = setting(False, "snap boxes to the model's token grid (patch x merge pixels)")
    attention_top_k: int = setting(4, "cells per map for attention regions", flag="top-k")
    split: Split = setting("test", "split to run on")
    batch_size: int = setting(4, "videos scored together", unit="videos")
    bootstrap: int = setting(1000, "bootstrap resamples for the confidence intervals")
    dtype: Dtype = setting("auto", "weights dtype")
    device: str = setting("auto", "cpu, cuda, cuda:N or auto")

    def validate(self) -> None:
        super().validate()
        if self.k_random < 1:
            raise ConfigError(f"k_random must be >= 1, got {self.k_random}")
        if self.attention_top_k < 1:
            raise ConfigError(f"attention_top_k must be >= 1, got {self.attention_top_k}")
        check_batch_size(self.batch_size)
        if self.bootstrap < 0:
            raise ConfigError(f"bootstrap must be >= 0, got {self.bootstrap}")
        if not self.regions_source:
            raise ConfigError("regions_source must be meta, motion, attention or a box file path")


@dataclass
class AttentionSpec(SamplingOverride):
    """Attention heatmaps of a run over videos: overlay PNGs and, optionally, a heatmap mp4 per video."""

    task = "attention"
    dataset: str = setting("", "dataset name", cli=False)
    run: str = setting("", "run id (any kind: zero-shot, direct SFT, Stage I, RB-FT)")
    videos: tuple[str, ...] = setting((), "external ids or database ids (default: the whole split)", flag="video")
    split: Optional[Literal["train", "val", "test", "all"]] = setting("test", "split to draw (all: every split)")
    query: Literal["answer", "rationale"] = setting("answer", "which query rows: the answer token or the rationale")
    layers: str = setting("", "FIRST:LAST text layers, inclusive, negative from the end (empty: all)")
    head_agg: Literal["mean", "max"] = setting("mean", "how heads are combined")
    relative: bool = setting(False, "divide by the map of a generic prompt (cancels attention sinks)")
    prompt: str = setting("", "prompt (default: the dataset's classification prompt)")
    out_dir: str = setting("data/reports/attention", "folder for the PNGs and mp4s")
    video_out: bool = setting(False, "also write a heatmap mp4 per video")
    video_fps: float = setting(2.0, "frame rate of the heatmap mp4", unit="frames/s")
    dtype: Dtype = setting("auto", "weights dtype")
    device: str = setting("auto", "cpu, cuda, cuda:N or auto")

    def validate(self) -> None:
        super().validate()
        if self.split == "all":
            self.split = None
        if self.layers:
            layer_range(self.layers)


def layer_range(text: str) -> Optional[tuple[int, int]]:
    """``"0:-1"`` -> (0, -1); ``""`` -> None (all layers)."""
    if not text:
        return None
    first, _, last = text.partition(":")
    try:
        return (int(first), int(last or first))
    except ValueError:
        raise ConfigError(f"layers must be FIRST:LAST (e.g. 0:-1 or -4:-1), got {text!r}") from None

"""Specs of the data tasks: import, generate rationales, export a dataset, export a model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from rbft_core.errors import ConfigError
from rbft_core.models.prompts import parse_dimensions
from rbft_core.specs.base import Spec, setting
from rbft_core.specs.sampling import (
    DEFAULT_MAX_PIXELS,
    check_batch_size,
    check_sampling,
)
from rbft_core.specs.training import Dtype

__all__ = ["ImportSpec", "GenerateSpec", "ExportSpec", "ExportModelSpec", "ImportFormat", "ExportFormat"]

ImportFormat = Literal["auto", "folder", "csv", "jsonl", "smarthome-bench", "multihateclip", "rbft-export"]
ExportFormat = Literal["llamafactory", "swift", "hf", "csv"]


@dataclass
class ImportSpec(Spec):
    """Import labelled videos into a dataset (created when missing)."""

    task = "import"
    dataset: str = setting("", "dataset name", cli=False)
    source: str = setting("", "folder holding the videos (one subfolder per label for the folder format)", cli=False)
    manifest: str = setting("", "CSV/JSONL manifest, SmartHome-Bench CSV or MultiHateClip TSV(s) (empty: folder)")
    format: ImportFormat = setting("auto", "importer to use (auto: from the manifest or label folders)")
    preset: str = setting("smart-home", "expert preset: smart-home, moderation, or custom (with labels)")
    labels: tuple[str, ...] = setting((), "label set, comma-separated, e.g. normal,abnormal (custom presets)")
    dimensions: str = setting("", "rationale dimensions of a new dataset: 'name: description' per line or "
                              "';'-separated, '?' after an optional one's name, e.g. 'subjects: who or what appears; "
                              "speech?: on-screen text and speech' (empty: the preset's; subjects, attributes, "
                              "actions, scenes)")
    seed: int = setting(0, "seed of the stratified train/test split")
    test_fraction: float = setting(0.2, "share of each label put in the test split", label="test fraction")
    workers: int = setting(0, "processes that hash and probe the files (0: one per CPU core)", unit="processes")

    def validate(self) -> None:
        if not 0 <= self.test_fraction < 1:
            raise ConfigError(f"test_fraction must be within [0, 1), got {self.test_fraction}")
        parse_dimensions(self.dimensions, "`dimensions`")  # refused here, before a job starts
        if self.workers < 0:
            raise ConfigError(f"workers must be >= 0 (0: one per CPU core), got {self.workers}")


@dataclass
class GenerateSpec(Spec):
    """Have the model, prompted as a domain expert, write a rationale per video in the dataset's dimensions."""

    task = "generate"
    dataset: str = setting("", "dataset name", cli=False)
    model: str = setting("", "model that writes the rationales: a local folder or hub id")
    split: Optional[Literal["train", "val", "test", "all"]] = setting("train", "split to describe (all: every split)")
    num_frames: int = setting(8, "frames sampled uniformly per video", label="frames", flag="frames")
    max_pixels: int = setting(DEFAULT_MAX_PIXELS, "pixel budget per frame after resizing", label="max pixels",
                              unit="pixels")
    batch_size: int = setting(4, "videos per generate call", label="batch size", unit="videos")
    label_hint: bool = setting(True, "tell the model the label while it writes (the authors' default)")
    overwrite: bool = setting(False, "add a newer suggestion even where one exists for this model and prompt")
    max_new_tokens: int = setting(160, "length cap of a rationale", label="max new tokens", unit="tokens")
    dtype: Dtype = setting("auto", "weights dtype")
    device: str = setting("auto", "cpu, cuda, cuda:N or auto")
    attn_implementation: str = setting("sdpa", "attention kernel passed to from_pretrained", cli=False)
    video_ids: Optional[tuple[int, ...]] = setting(None, "only these videos (database ids)", flag="video-id")
    nproc_per_node: int = setting(1, "processes sharing the videos (torchrun; one GPU each on a GPU machine); "
                                  "each commits its own batches", label="processes", unit="processes")

    def validate(self) -> None:
        if self.nproc_per_node < 1:
            raise ConfigError(f"nproc_per_node must be >= 1, got {self.nproc_per_node}")
        if self.split == "all":
            self.split = None
        check_sampling(self.num_frames, None, None, self.max_pixels)
        check_batch_size(self.batch_size)
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


@dataclass
class ExportSpec(Spec):
    """Export a curated dataset (LLaMA-Factory, ms-swift, HF datasets, CSV) as a folder and a zip."""

    task = "export"
    dataset: str = setting("", "dataset name", cli=False)
    format: ExportFormat = setting("llamafactory", "layout of the export")
    out: str = setting("", "folder to write <name>/ and <name>.zip into")
    name: str = setting("", "export name (default <dataset>-<format>)")
    stage: Literal["1", "2", "both"] = setting("both", "1: video + expert prompt -> rationale; 2: video + "
                                               "classification prompt -> label")
    status: str = setting("accepted", "review statuses, comma-separated, or any")
    split: str = setting("all", "splits, comma-separated (train,val,test) or all")
    labels: str = setting("", "labels, comma-separated (empty: all)")
    edited: Literal["yes", "no", "any"] = setting("any", "edited rationales only (yes), untouched only (no), or any")
    include_excluded: bool = setting(False, "also export videos a reviewer excluded")
    copy_videos: bool = setting(True, "copy the videos into the export (else reference them by relative path)")
    overwrite: bool = setting(False, "replace an existing export of the same name")


@dataclass
class ExportModelSpec(Spec):
    """Export a run's peft adapter (with its parents'), or the merged model; the run's sampling goes with it."""

    task = "export-model"
    run: str = setting("", "run id", cli=False)
    out: str = setting("", "output folder")
    merged: bool = setting(False, "merge the adapter chain into the base model")
    max_shard_size: str = setting("5GB", "largest safetensors shard of a merged model")
    dtype: Dtype = setting("auto", "dtype of a merged model")
    overwrite: bool = setting(False, "replace an existing output folder")

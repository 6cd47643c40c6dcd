"""The sampling a model expects, read from its folder: the default of every task that feeds it videos.

Where the value comes from, first found wins:

1. ``rbft_sampling.json`` in the folder: written by the demo model build and by training into each run's
   ``adapter/`` (the run's own sampling);
2. ``rbft_export.json``'s ``sampling``: an adapter or merged model exported by ``rbft export-model``;
3. the processor's video defaults (``video_preprocessor_config.json``, or the ``video_processor`` part of
   ``processor_config.json``): its pixel budget per frame, and its frame count / fps where it samples frames
   itself. A hub id is looked up in the local hub cache only (nothing is downloaded);
4. the built-in default (``Sampling()``).

``model_sampling`` returns the sampling and a short text saying where it came from, which the CLI prints in its
plan and the UI shows next to the field. A value the user gives always wins (``fill_sampling``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from huggingface_hub import try_to_load_from_cache

from rbft_core.errors import ConfigError
from rbft_core.specs.sampling import (
    MAX_FRAMES_LIMIT,
    MAX_PIXELS_LIMIT,
    SAMPLING_FIELDS,
    Sampling,
)

__all__ = ["ModelSampling", "SAMPLING_FILE", "EXPORT_FILE", "model_sampling", "write_model_sampling",
           "processor_sampling", "fill_sampling", "sampling_plan", "BUILT_IN"]

SAMPLING_FILE = "rbft_sampling.json"
EXPORT_FILE = "rbft_export.json"
BUILT_IN = "built-in default"
_PROCESSOR_FILES = ("video_preprocessor_config.json", "processor_config.json")
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


@dataclass(frozen=True)
class ModelSampling:
    """A model's sampling, where it came from (``from data/demo/base-model/rbft_sampling.json``, ``processor
    defaults (...)``, ``built-in default``) and which fields that source set (the others are built-in)."""

    sampling: Sampling
    source: str
    fields: tuple[str, ...] = ()

    def note(self) -> str:
        """``4 frames at 12,544 px (frames, max pixels from data/demo/base-model/rbft_sampling.json)``."""
        return sampling_plan(self.sampling.to_dict(), {}, self)


def _shown(path: Path) -> str:
    """A path relative to the working directory when it lies under it (shorter to read), else absolute."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not readable JSON ({exc.__class__.__name__}); fix or delete the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object; fix or delete the file")
    return data


def _sampling_of(values: dict[str, Any], path: Path) -> Sampling:
    """The sampling a file names, checked like any spec (a bad file is named with the field)."""
    try:
        return Sampling.from_dict({k: values[k] for k in SAMPLING_FIELDS if values.get(k) is not None})
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}; fix or delete the file") from None


def processor_sampling(config: dict[str, Any]) -> dict[str, Any]:
    """The sampling fields a video processor's saved config implies: its per-frame pixel budget, and its frame
    count or fps where it samples frames itself (``do_sample_frames``). Values outside the server's bounds are
    capped to them. Qwen3-VL's ``size.longest_edge`` budgets a whole clip (frames x height x width), so it is
    shared out over the frames the clip will have."""
    out = _processor_frames(config)
    size = config.get("size") if isinstance(config.get("size"), dict) else {}
    pixels = config.get("max_pixels") or size.get("longest_edge")
    if str(config.get("video_processor_type", "")).startswith("Qwen3VL") and isinstance(pixels, (int, float)):
        pixels //= out.get("num_frames") or out.get("max_frames") or Sampling().num_frames
    if isinstance(pixels, (int, float)) and pixels >= 28 * 28:
        out["max_pixels"] = int(min(pixels, MAX_PIXELS_LIMIT))
    return out


def _processor_frames(config: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    samples = bool(config.get("do_sample_frames"))
    num_frames = config.get("num_frames")
    if isinstance(num_frames, int) and num_frames >= 1:
        out["num_frames"] = min(num_frames, MAX_FRAMES_LIMIT)
    fps = config.get("fps")
    if samples and "num_frames" not in out and isinstance(fps, (int, float)) and 0 < fps <= 60:
        out["fps"] = float(fps)
        max_frames = config.get("max_frames")
        if isinstance(max_frames, int) and max_frames >= 1:
            out["max_frames"] = min(max_frames, MAX_FRAMES_LIMIT)
    return out


def _video_processor_config(path: Path) -> Optional[dict[str, Any]]:
    data = _read_json(path)
    if path.name == "processor_config.json":
        inner = data.get("video_processor")
        return inner if isinstance(inner, dict) else None
    return data


def _from_files(files: dict[str, Path], where: str) -> Optional[ModelSampling]:
    """The first source among a folder's (or a hub cache entry's) files, or None."""
    if SAMPLING_FILE in files:
        data = _read_json(files[SAMPLING_FILE])
        sampling = _sampling_of(data, files[SAMPLING_FILE])
        return ModelSampling(sampling, f"from {where}{SAMPLING_FILE}", tuple(k for k in SAMPLING_FIELDS if k in data))
    if EXPORT_FILE in files:
        data = _read_json(files[EXPORT_FILE])
        stored = data.get("sampling")
        if isinstance(stored, dict) and any(stored.get(k) is not None for k in SAMPLING_FIELDS):
            sampling = _sampling_of(stored, files[EXPORT_FILE])
            run = f" (run {data['run_id']})" if data.get("run_id") else ""
            return ModelSampling(sampling, f"from {where}{EXPORT_FILE}{run}",
                                 tuple(k for k in SAMPLING_FIELDS if stored.get(k) is not None))
    for name in _PROCESSOR_FILES:
        if name in files:
            config = _video_processor_config(files[name])
            found = processor_sampling(config) if config else {}
            if found:
                fields = tuple(k for k in SAMPLING_FIELDS if k in found)
                return ModelSampling(Sampling.from_dict(found), f"from the processor defaults ({where}{name})",
                                     fields)
    return None


def _folder_files(folder: Path) -> dict[str, Path]:
    names = (SAMPLING_FILE, EXPORT_FILE, *_PROCESSOR_FILES)
    return {n: folder / n for n in names if (folder / n).is_file()}


def _hub_files(repo_id: str) -> dict[str, Path]:
    """Files of a hub model already in the local cache (never a download)."""
    out = {}
    for name in (SAMPLING_FILE, EXPORT_FILE, *_PROCESSOR_FILES):
        try:
            found = try_to_load_from_cache(repo_id, name)
        except Exception:  # an id the hub library refuses: treated as not cached
            return {}
        if isinstance(found, str) and Path(found).is_file():
            out[name] = Path(found)
    return out


def model_sampling(model: Optional[str]) -> ModelSampling:
    """The sampling ``model`` (a folder or a hub id) expects, and where that came from (see the module doc)."""
    model = (model or "").strip()
    if not model:
        return ModelSampling(Sampling(), BUILT_IN)
    folder = Path(model).expanduser()
    if folder.is_dir():
        found = _from_files(_folder_files(folder), _shown(folder) + "/")
    elif _HUB_ID.match(model):
        found = _from_files(_hub_files(model), f"{model}: ")
    else:
        found = None
    return found or ModelSampling(Sampling(), BUILT_IN)


def write_model_sampling(folder: str | Path, sampling: Sampling) -> Path:
    """Write ``rbft_sampling.json`` into a model or adapter folder: what ``model_sampling`` reads first."""
    path = Path(folder) / SAMPLING_FILE
    path.write_text(json.dumps(sampling.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path


def fill_sampling(values: dict[str, Any], model: Optional[str], names: tuple[str, ...] = SAMPLING_FIELDS,
                  found: Optional[ModelSampling] = None) -> tuple[dict[str, Any], ModelSampling]:
    """``values`` (a spec's fields as given by a user) with each sampling field of ``names`` they leave out
    (absent or None) taken from the model's sampling; the values given stay. Returns the filled values and the
    model's sampling."""
    found = found or model_sampling(model)
    filled = dict(values)
    if filled.get("num_frames") is not None and filled.get("fps") is None and "fps" in names:
        filled["fps"] = 0.0  # a frame count given means a frame count, even where the model samples by fps
    for name in names:
        if filled.get(name) is None:
            filled[name] = getattr(found.sampling, name)
    return filled, found


def sampling_plan(values: dict[str, Any], given: dict[str, Any], found: ModelSampling,
                  names: tuple[str, ...] = SAMPLING_FIELDS) -> str:
    """One line for a printed plan: the sampling a task will use and where each value came from, e.g.
    ``4 frames at 12,544 px (frames given; max pixels from data/demo/base-model/rbft_sampling.json)``."""
    sampling = Sampling.of({**Sampling().to_dict(), **{k: values[k] for k in names if k in values}})
    shown = [n for n in names if n in ("num_frames", "max_pixels") or sampling.fps > 0]
    words = {"num_frames": "frames", "max_pixels": "max pixels", "fps": "fps", "max_frames": "max frames"}
    groups = {"given": [n for n in shown if given.get(n) is not None],
              found.source: [n for n in shown if given.get(n) is None and n in found.fields],
              BUILT_IN: [n for n in shown if given.get(n) is None and n not in found.fields]}
    parts = [", ".join(words[n] for n in group) + " " + where for where, group in groups.items() if group]
    return f"{sampling.describe()} ({'; '.join(parts)})"

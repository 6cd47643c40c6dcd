"""Writers for the export formats: LLaMA-Factory, ms-swift, Hugging Face datasets, and the provenance CSV.

Every writer takes the export folder and the examples (one per video and stage, video paths relative to
the folder) and returns the files it wrote, relative to the folder. Layouts (``N`` is 1 or 2, ``SPLIT``
train / val / test):

- ``llamafactory``: ``stageN_SPLIT.json`` (ShareGPT: ``messages`` with ``<video>`` in the user turn and a
  ``videos`` list) and ``dataset_info.json`` naming each file ``<name>_stageN_SPLIT``.
- ``swift``: ``stageN_SPLIT.jsonl`` (one ``{"messages": [...], "videos": [...]}`` per line).
- ``hf``: ``hf/stageN/`` (``DatasetDict.save_to_disk``, one split each) and ``parquet/stageN/SPLIT.parquet``.
- every format: ``provenance.csv``, one row per exported video with flat provenance columns (the whole of
  the ``csv`` format): ``suggestion_<dim>`` and ``response_<dim>`` for each dimension of the dataset, in order.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

__all__ = ["Example", "FORMATS", "WRITERS", "provenance_columns", "provenance_row", "write_provenance"]

FORMATS = ("llamafactory", "swift", "hf", "csv")
_HEAD_COLUMNS = (
    "video_id", "external_id", "video", "sha256", "split", "label", "video_label", "review_label",
    "status", "excluded", "reviewer", "updated_at", "review_version", "model_id", "prompt_version",
    "parse_status", "edited", "rationale_source",
)
_TAIL_COLUMNS = ("stage1_target", "stage2_answer")


def provenance_columns(names: Sequence[str]) -> tuple[str, ...]:
    """The columns of ``provenance.csv`` for a dataset whose dimensions are ``names`` (in order)."""
    return (*_HEAD_COLUMNS, *(f"suggestion_{d}" for d in names), *(f"response_{d}" for d in names), *_TAIL_COLUMNS)
_LF_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}


@dataclass(frozen=True)
class Example:
    """One training example: a video (path relative to the export folder), a prompt and its answer."""

    stage: int
    split: str
    video: str
    prompt: str
    answer: str
    row: dict[str, Any]


def _groups(examples: Iterable[Example]) -> dict[tuple[int, str], list[Example]]:
    groups: dict[tuple[int, str], list[Example]] = {}
    for example in examples:
        groups.setdefault((example.stage, example.split), []).append(example)
    return dict(sorted(groups.items()))


def _messages(example: Example) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": "<video>" + example.prompt},
            {"role": "assistant", "content": example.answer},
        ],
        "videos": [example.video],
    }


def write_llamafactory(folder: Path, name: str, examples: list[Example]) -> list[str]:
    info, files = {}, []
    for (stage, split), group in _groups(examples).items():
        file_name = f"stage{stage}_{split}.json"
        (folder / file_name).write_text(
            json.dumps([_messages(e) for e in group], ensure_ascii=False, indent=1), encoding="utf-8"
        )
        info[f"{name}_stage{stage}_{split}"] = {
            "file_name": file_name,
            "formatting": "sharegpt",
            "columns": {"messages": "messages", "videos": "videos"},
            "tags": dict(_LF_TAGS),
        }
        files.append(file_name)
    (folder / "dataset_info.json").write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")
    return [*files, "dataset_info.json"]


def write_swift(folder: Path, name: str, examples: list[Example]) -> list[str]:
    files = []
    for (stage, split), group in _groups(examples).items():
        file_name = f"stage{stage}_{split}.jsonl"
        with open(folder / file_name, "w", encoding="utf-8") as handle:
            for example in group:
                handle.write(json.dumps(_messages(example), ensure_ascii=False) + "\n")
        files.append(file_name)
    return files


def _hf_record(example: Example) -> dict[str, Any]:
    row = example.row
    return {
        "video_id": row["video_id"],
        "id": row["external_id"],
        "video": example.video,
        "split": example.split,
        "label": row["label"],
        "prompt": example.prompt,
        "response": example.answer,
        "status": row["status"],
        "edited": bool(row["edited"]),
        "reviewer": row["reviewer"] or "",
        "model_id": row["model_id"] or "",
        "prompt_version": row["prompt_version"] or "",
    }


def write_hf(folder: Path, name: str, examples: list[Example]) -> list[str]:
    from datasets import (  # HF datasets (pyarrow) loads only for this export format
        Dataset,
        DatasetDict,
        Features,
        Value,
    )

    string_columns = ("id", "video", "split", "label", "prompt", "response", "status", "reviewer", "model_id",
                      "prompt_version")
    features = Features({"video_id": Value("int64"), "edited": Value("bool"),
                         **{c: Value("string") for c in string_columns}})
    by_stage: dict[int, dict[str, list[Example]]] = {}
    for (stage, split), group in _groups(examples).items():
        by_stage.setdefault(stage, {})[split] = group
    files = []
    for stage, splits in by_stage.items():
        parts = {split: Dataset.from_list([_hf_record(e) for e in group], features=features)
                 for split, group in splits.items()}
        DatasetDict(parts).save_to_disk(str(folder / "hf" / f"stage{stage}"))
        files.append(f"hf/stage{stage}/")
        for split, part in parts.items():
            target = folder / "parquet" / f"stage{stage}" / f"{split}.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            part.to_parquet(str(target))
            files.append(target.relative_to(folder).as_posix())
    return files


def write_csv(folder: Path, name: str, examples: list[Example]) -> list[str]:
    return []  # the provenance CSV every export carries is the whole of this format


WRITERS: dict[str, Callable[[Path, str, list[Example]], list[str]]] = {
    "llamafactory": write_llamafactory,
    "swift": write_swift,
    "hf": write_hf,
    "csv": write_csv,
}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def provenance_row(row: dict[str, Any], video: str, stage1_target: Optional[str], stage2_answer: Optional[str],
                   names: Sequence[str]) -> dict[str, str]:
    """The flat CSV row of one exported video of a dataset whose dimensions are ``names``."""
    suggestion = row["suggestion_fields"] or {}
    response = row["review_fields"] or {}
    source = "review" if row["review_fields"] is not None else ("suggestion" if row["suggestion_fields"] else "")
    values: dict[str, Any] = {
        "video_id": row["video_id"], "external_id": row["external_id"], "video": video, "sha256": row["sha256"],
        "split": row["split"], "label": row["label"], "video_label": row["video_label"],
        "review_label": row["review_label"], "status": row["status"], "excluded": row["excluded"],
        "reviewer": row["reviewer"], "updated_at": row["updated_at"], "review_version": row["version"],
        "model_id": row["model_id"], "prompt_version": row["prompt_version"], "parse_status": row["parse_status"],
        "edited": row["edited"], "rationale_source": source,
        **{f"suggestion_{d}": suggestion.get(d) for d in names},
        **{f"response_{d}": response.get(d) for d in names},
        "stage1_target": stage1_target, "stage2_answer": stage2_answer,
    }
    return {column: _text(values[column]) for column in provenance_columns(names)}


def write_provenance(folder: Path, rows: list[dict[str, str]], names: Sequence[str]) -> str:
    with open(folder / "provenance.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(provenance_columns(names)))
        writer.writeheader()
        writer.writerows(rows)
    return "provenance.csv"

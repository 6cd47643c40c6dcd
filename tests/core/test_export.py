"""Dataset export: every format written and read back, the round trip, and bad input."""

from __future__ import annotations

import csv
import json
import threading
import zipfile
from pathlib import Path

import pytest

from db import queries as q
from db import curated_queries as cq
from db.engine import session_factory, session_scope
from rbft_core.export import dataset as export_mod
from rbft_core.review.curation import Selection
from rbft_core.errors import DataError
from rbft_core.export.dataset import ExportConfig, export_dataset, preview_export
from rbft_core.data.importer import import_videos
from rbft_core.models.prompts import DEFAULT_DIMENSIONS, classification_prompt, preset_from_record, rationale_prompt
from rbft_core.models.rationale import parse_rationale, render_target
from tests.export_world import build_world

pytestmark = pytest.mark.both_backends  # export reads run on SQLite and on PostgreSQL


@pytest.fixture
def world(db_url, tmp_path, data_dir):
    return build_world(db_url, tmp_path)


def _expected(db_url, dataset="homes", **selection):
    """sha256 -> (label, Stage-I target or None) straight from the database."""
    sel = Selection(**selection)
    with session_scope(db_url) as s:
        ds = q.get_dataset(s, dataset)
        rows = cq.curated_examples(s, ds.id, splits=sel.splits, statuses=sel.statuses, edited=sel.edited,
                                  labels=sel.labels, include_excluded=sel.include_excluded)
    names = tuple(d.name for d in DEFAULT_DIMENSIONS)
    return {r["sha256"]: (r["label"], render_target(r["rationale"], names) if r["rationale"] else None) for r in rows}


def _prompts():
    preset = preset_from_record("smart-home", labels=["normal", "abnormal"])
    return rationale_prompt(preset), classification_prompt(preset)


def _sha_of(folder: Path, video: str) -> str:
    from rbft_core.data.video import file_sha256

    return file_sha256(folder / video)


def _check_messages(folder: Path, records: list[dict], stage: int, expected: dict) -> int:
    prompt1, prompt2 = _prompts()
    for record in records:
        user, answer = record["messages"]
        assert user["role"] == "user" and answer["role"] == "assistant"
        assert user["content"] == "<video>" + (prompt1 if stage == 1 else prompt2)
        assert "The correct label" not in user["content"]  # Stage I is trained without the label hint
        label, target = expected[_sha_of(folder, record["videos"][0])]
        assert answer["content"] == (target if stage == 1 else label)
        if stage == 1:
            assert parse_rationale(answer["content"], DEFAULT_DIMENSIONS).status == "ok"
    return len(records)


def _read_llamafactory(folder: Path, expected: dict) -> int:
    info = json.loads((folder / "dataset_info.json").read_text())
    assert set(info) == {"homes-llamafactory_stage1_train", "homes-llamafactory_stage2_train"}
    total = 0
    for entry in info.values():
        assert entry["formatting"] == "sharegpt" and entry["columns"] == {"messages": "messages", "videos": "videos"}
        assert entry["tags"] == {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                                 "assistant_tag": "assistant"}
        records = json.loads((folder / entry["file_name"]).read_text(encoding="utf-8"))
        total += _check_messages(folder, records, int(entry["file_name"][5]), expected)
    return total


def _read_swift(folder: Path, expected: dict) -> int:
    total = 0
    for stage in (1, 2):
        lines = (folder / f"stage{stage}_train.jsonl").read_text(encoding="utf-8").splitlines()
        total += _check_messages(folder, [json.loads(line) for line in lines], stage, expected)
    return total


def _read_hf(folder: Path, expected: dict) -> int:
    import pyarrow.parquet as pq
    from datasets import load_from_disk

    prompt1, prompt2 = _prompts()
    total = 0
    for stage in (1, 2):
        parts = load_from_disk(str(folder / "hf" / f"stage{stage}"))
        assert list(parts) == ["train"]
        table = pq.read_table(folder / "parquet" / f"stage{stage}" / "train.parquet").to_pylist()
        assert table == parts["train"].to_list()
        for rec in table:
            label, target = expected[_sha_of(folder, rec["video"])]
            assert rec["prompt"] == (prompt1 if stage == 1 else prompt2)
            assert rec["response"] == (target if stage == 1 else label) and rec["label"] == label
        total += len(table)
    return total


def _read_provenance(folder: Path) -> list[dict]:
    with open(folder / "provenance.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _read_csv(folder: Path, expected: dict) -> int:
    rows = _read_provenance(folder)
    for row in rows:
        label, target = expected[row["sha256"]]
        assert _sha_of(folder, row["video"]) == row["sha256"]
        assert row["label"] == label and row["stage1_target"] == target and row["stage2_answer"] == label
    return 2 * len(rows)


READERS = {"llamafactory": _read_llamafactory, "swift": _read_swift, "hf": _read_hf, "csv": _read_csv}


@pytest.mark.parametrize("fmt", list(READERS))
def test_each_format_is_written_and_reads_back(world, tmp_path, fmt):
    result = export_dataset(world.db_url, "homes", ExportConfig(format=fmt), tmp_path / "out")
    expected = _expected(world.db_url)
    assert len(expected) == 2  # v0 and v1: accepted, not excluded, both train
    assert READERS[fmt](result.folder, expected) == 4
    assert result.counts["stage1"] == {"train": 2} and result.counts["stage2"] == {"train": 2}
    manifest = json.loads((result.folder / "manifest.json").read_text())
    assert manifest["counts"]["videos"] == 2 and manifest["counts"]["edited"] == 1
    assert manifest["provenance"]["reviewers"] == {"ana": 1, "ben": 1}
    assert manifest["provenance"]["models"] == {"tiny-vlm": 2}
    assert "2 videos" in (result.folder / "README.md").read_text()
    prov = {r["external_id"]: r for r in _read_provenance(result.folder)}
    v1 = prov["abnormal/v1.mp4"]
    assert (v1["edited"], v1["status"], v1["reviewer"], v1["model_id"]) == ("true", "accepted", "ben", "tiny-vlm")
    assert v1["suggestion_subjects"] == "person 1" and v1["response_subjects"] == "two people ✓"
    assert (v1["video_label"], v1["review_label"], v1["label"]) == ("abnormal", "normal", "normal")
    assert prov["normal/v0.mp4"]["response_subjects"] == "" and prov["normal/v0.mp4"]["edited"] == "false"
    with zipfile.ZipFile(result.zip_path) as archive:
        names = set(archive.namelist())
    on_disk = {f"{result.folder.name}/{p.relative_to(result.folder).as_posix()}"
               for p in result.folder.rglob("*") if p.is_file()}
    assert names == on_disk and f"{result.folder.name}/manifest.json" in names


@pytest.mark.parametrize("fmt,as_zip", [("llamafactory", True), ("csv", False)])
def test_round_trip_reimport_reproduces_labels_and_rationales(world, tmp_path, fmt, as_zip):
    config = ExportConfig(format=fmt, selection=Selection(statuses=None, include_excluded=True))
    result = export_dataset(world.db_url, "homes", config, tmp_path / "out")
    report = import_videos(world.db_url, "copy", result.zip_path if as_zip else result.folder)
    assert report.imported == 6 and not report.failed and report.format == "rbft-export"
    everything = dict(statuses=None, include_excluded=True)
    assert _expected(world.db_url, "copy", **everything) == _expected(world.db_url, **everything)
    with session_scope(world.db_url) as s:
        rows = {d: {r["sha256"]: r for r in cq.curated_examples(s, q.get_dataset(s, d).id, statuses=None,
                                                                include_excluded=True)} for d in ("homes", "copy")}
        copy_ds = q.get_dataset(s, "copy")
        assert (copy_ds.preset, copy_ds.labels) == ("smart-home", ["normal", "abnormal"])
    keys = ("label", "split", "status", "edited", "excluded", "reviewer", "model_id", "prompt_version", "rationale",
            "suggestion_fields")
    for sha, row in rows["homes"].items():
        assert {k: rows["copy"][sha][k] for k in keys} == {k: row[k] for k in keys}
    again = import_videos(world.db_url, "copy", result.zip_path if as_zip else result.folder)
    assert again.imported == 0 and again.unchanged == 6


def test_selection_filters_and_stage_choice(world, tmp_path):
    config = ExportConfig(format="swift", stages="1", name="edited-only",
                          selection=Selection(statuses="accepted,draft", edited="yes"))
    result = export_dataset(world.db_url, "homes", config, tmp_path / "out")
    assert [p.name for p in result.folder.glob("stage*")] == ["stage1_train.jsonl"]
    records = [json.loads(x) for x in (result.folder / "stage1_train.jsonl").read_text().splitlines()]
    assert len(records) == 2 and result.counts["statuses"] == {"accepted": 1, "draft": 1}
    test_only = ExportConfig(format="swift", stages="2", name="test", selection=Selection(
        splits="test", statuses=None, include_excluded=True))
    result = export_dataset(world.db_url, "homes", test_only, tmp_path / "out")
    assert result.counts["stage2"] == {"test": 2} and result.counts["stage1"] == {}


def test_empty_selection_names_it_and_writes_nothing(world, tmp_path):
    out = tmp_path / "out"
    config = ExportConfig(format="hf", selection=Selection(labels="abnormal", edited="no"))
    with pytest.raises(DataError) as err:
        export_dataset(world.db_url, "homes", config, out)
    message = str(err.value)
    assert "no videos of dataset 'homes' match the selection" in message
    assert "status accepted" in message and "labels abnormal" in message and "untouched only" in message
    assert "nothing was written" in message
    assert not out.exists() or not any(out.iterdir())
    preview = preview_export(world.db_url, "homes", config)
    assert preview["counts"]["videos"] == 0 and preview["message"]


def test_output_name_with_path_separators_is_sanitised(world, tmp_path):
    out = tmp_path / "out"
    before = {p for p in tmp_path.parent.rglob("*") if "out" not in p.relative_to(tmp_path.parent).parts[1:2]}
    config = ExportConfig(format="csv", name="../../evil/..\\name")
    result = export_dataset(world.db_url, "homes", config, out)
    assert result.folder == out.resolve() / "evil_name" and result.zip_path == out.resolve() / "evil_name.zip"
    after = {p for p in tmp_path.parent.rglob("*") if "out" not in p.relative_to(tmp_path.parent).parts[1:2]}
    assert {p.name for p in after - before} <= {"rbft.db-wal", "rbft.db-shm"}  # nothing written outside out/
    assert ExportConfig(format="csv", name="///").name == ""  # falls back to <dataset>-<format>


def _save_review_in_thread(db_url: str, review_id: int, **changes) -> None:
    def work():
        with session_scope(session_factory(db_url)) as s:
            review = q.get_review(s, review_id)
            q.save_review(s, review_id, expected_version=review.version, reviewer="late", **changes)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_export_reads_one_snapshot_while_a_review_is_saved(world, tmp_path, monkeypatch):
    """A review saved between the export's two reads is in neither; without the snapshot it would be in one."""
    changes = {"status": "accepted", "subjects": "changed meanwhile"}
    monkeypatch.setattr(export_mod, "_between_reads",
                        lambda: _save_review_in_thread(world.db_url, world.review_ids["abnormal/v5.mp4"], **changes))
    result = export_dataset(world.db_url, "homes", ExportConfig(format="csv"), tmp_path / "out")
    manifest = json.loads((result.folder / "manifest.json").read_text())
    # rows (2 accepted, not excluded) and dataset counts (3 accepted incl. the excluded one) agree
    assert manifest["counts"]["videos"] == 2 and manifest["dataset_counts"]["review_status"]["accepted"] == 3
    assert "changed meanwhile" not in (result.folder / "provenance.csv").read_text()
    monkeypatch.setattr(export_mod, "_between_reads", None)
    after = export_dataset(world.db_url, "homes", ExportConfig(format="csv", name="after"), tmp_path / "out")
    assert after.counts["videos"] == 3  # the save did land, and the next export sees it

    # Control: without the snapshot the same interleaving gives counts that contradict the rows.
    monkeypatch.setattr(cq, "begin_snapshot", lambda session: None)
    monkeypatch.setattr(export_mod, "_between_reads", lambda: _save_review_in_thread(
        world.db_url, world.review_ids["normal/v2.mp4"], status="accepted"))
    torn = export_dataset(world.db_url, "homes", ExportConfig(format="csv", name="torn"), tmp_path / "out")
    torn_manifest = json.loads((torn.folder / "manifest.json").read_text())
    assert torn.counts["videos"] == 3 and torn_manifest["dataset_counts"]["review_status"]["accepted"] == 5


def test_missing_video_is_listed_and_export_goes_on(world, tmp_path):
    (world.src / "abnormal" / "v1.mp4").unlink()
    result = export_dataset(world.db_url, "homes", ExportConfig(format="llamafactory"), tmp_path / "out")
    manifest = json.loads((result.folder / "manifest.json").read_text())
    assert [m["external_id"] for m in manifest["missing_videos"]] == ["abnormal/v1.mp4"]
    assert manifest["counts"]["missing_videos"] == 1 and manifest["counts"]["videos"] == 1
    assert "1 missing on disk" in (result.folder / "README.md").read_text()
    records = json.loads((result.folder / "stage2_train.json").read_text())
    assert len(records) == 1 and (result.folder / records[0]["videos"][0]).is_file()
    report = import_videos(world.db_url, "copy", result.zip_path)
    assert report.imported == 1 and "missing on disk" in report.failed[0]["error"]


def test_no_copy_videos_references_relative_paths(world, tmp_path):
    result = export_dataset(world.db_url, "homes", ExportConfig(format="swift", copy_videos=False),
                            tmp_path / "out")
    assert not (result.folder / "videos").exists()
    for line in (result.folder / "stage2_train.jsonl").read_text().splitlines():
        video = json.loads(line)["videos"][0]
        assert not Path(video).is_absolute() and (result.folder / video).resolve().is_file()


def test_existing_export_needs_overwrite(world, tmp_path):
    from rbft_core.errors import ConfigError

    export_dataset(world.db_url, "homes", ExportConfig(format="csv"), tmp_path / "out")
    with pytest.raises(ConfigError, match="already exists; pass --overwrite"):
        export_dataset(world.db_url, "homes", ExportConfig(format="csv"), tmp_path / "out")
    export_dataset(world.db_url, "homes", ExportConfig(format="csv", overwrite=True), tmp_path / "out")
    assert not list((tmp_path / "out").glob(".*partial*"))

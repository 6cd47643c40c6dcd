"""Importing videos: formats, bad files, dedupe, splits, path safety, and the real annotation files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from db import queries
from db.engine import session_factory
from db.models import Dataset, ImportRun, Video
from rbft_core.errors import ConfigError, DataError
from rbft_core.data.importer import detect_format, import_videos
from tests.helpers import (
    make_audio_only,
    make_still_png_as_mp4,
    make_text_as_mp4,
    make_truncated,
    make_video,
    make_zero_byte,
)


pytestmark = pytest.mark.both_backends  # the DB paths run on SQLite and on PostgreSQL


def _videos(url: str, dataset: str = "ds") -> dict[str, Video]:
    with session_factory(url)() as s:
        ds = queries.get_dataset(s, dataset)
        return {v.external_id: v for v in s.scalars(select(Video).where(Video.dataset_id == ds.id))}


def _label_folders(root: Path, per_label: int = 2) -> Path:
    for li, label in enumerate(["abnormal", "normal"]):
        for i in range(per_label):
            make_video(root / label / f"clip{i}.mp4", color_seed=100 * li + i)
    return root


# ------------------------------------------------------------------------------------------- folder
def test_folder_import_with_spaces_and_non_ascii(db_url: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_video(src / "normal" / "vidéo 1.mp4", color_seed=1)
    make_video(src / "normal" / "nested" / "late night.MOV", color_seed=2)
    make_video(src / "abnormal" / "熊 bear.mp4", color_seed=3)
    (src / "normal" / "notes.txt").write_text("not a video")
    report = import_videos(db_url, "ds", src)
    assert report.to_json() == {
        "dataset": "ds", "imported": 3, "unchanged": 0, "failed": [], "counts": {"abnormal": 1, "normal": 2},
    }
    assert report.ok
    videos = _videos(db_url)
    assert set(videos) == {"normal/vidéo 1.mp4", "normal/nested/late night.MOV", "abnormal/熊 bear.mp4"}
    clip = videos["normal/vidéo 1.mp4"]
    assert (clip.width, clip.height, clip.num_frames, clip.codec, clip.readable) == (64, 48, 8, "h264", True)
    assert Path(clip.path) == (src / "normal" / "vidéo 1.mp4").resolve() and len(clip.sha256) == 64
    with session_factory(db_url)() as s:
        assert s.scalar(select(Dataset.labels)) == ["abnormal", "normal"]
        run = s.scalars(select(ImportRun)).one()
        assert run.format == "folder" and run.report["imported"] == 3


def test_reimport_changes_nothing_and_keeps_splits(db_url: str, tmp_path: Path) -> None:
    src = _label_folders(tmp_path / "src", per_label=5)
    first = import_videos(db_url, "ds", src, test_fraction=0.4)
    splits = {k: v.split for k, v in _videos(db_url).items()}
    assert first.imported == 10 and sorted(splits.values()).count("test") == 4
    again = import_videos(db_url, "ds", src, test_fraction=0.4)
    assert again.to_json() == {**first.to_json(), "imported": 0, "unchanged": 10}
    # A new video joins; nobody else moves, even with another seed and fraction.
    make_video(src / "normal" / "new.mp4", color_seed=77)
    third = import_videos(db_url, "ds", src, seed=5, test_fraction=0.9)
    assert (third.imported, third.unchanged) == (1, 10)
    after = _videos(db_url)
    assert {k: v.split for k, v in after.items() if k != "normal/new.mp4"} == splits
    assert after["normal/new.mp4"].split == "test"  # round(0.9 * 1) = 1


def test_split_is_stratified_and_seeded(db_url: str, tmp_path: Path) -> None:
    src = _label_folders(tmp_path / "src", per_label=5)
    import_videos(db_url, "a", src, seed=0, test_fraction=0.2)
    import_videos(db_url, "b", src, seed=0, test_fraction=0.2)
    a, b = _videos(db_url, "a"), _videos(db_url, "b")
    assert {k: v.split for k, v in a.items()} == {k: v.split for k, v in b.items()}
    for label in ("abnormal", "normal"):
        assert [v.split for v in a.values() if v.label == label].count("test") == 1


def test_progress_counts_files_with_rate_and_eta(db_url: str, tmp_path: Path) -> None:
    """Progress runs over hashing (each distinct file) then storing (each new file), with files/s and time left."""
    src = _label_folders(tmp_path / "src")
    calls: list[tuple[int, int, str]] = []
    report = import_videos(db_url, "ds", src, progress=lambda i, n, p: calls.append((i, n, p)), batch_rows=2)
    done = [c[0] for c in calls]
    assert done == sorted(done) and calls[-1][:2] == (8, 8)  # 4 files hashed + 4 stored
    assert any(c[2].startswith("hashing 4/4") for c in calls)
    assert calls[-1][2].startswith("probing and storing 4/4") and "files/s" in calls[-1][2] and "ETA" in calls[-1][2]
    assert (report.hashed, report.probed, report.imported) == (4, 4, 4)
    again = import_videos(db_url, "ds", src, progress=lambda i, n, p: calls.append((i, n, p)))
    assert (again.hashed, again.probed, again.unchanged) == (4, 0, 4)  # known content is never decoded again
    assert calls[-1][:2] == (4, 4)


def test_loose_file_and_same_content_are_reported(db_url: str, tmp_path: Path) -> None:
    src = _label_folders(tmp_path / "src")
    make_video(src / "loose.mp4", color_seed=5)
    shutil.copy(src / "normal" / "clip0.mp4", src / "normal" / "copy.mp4")
    report = import_videos(db_url, "ds", src)
    assert report.imported == 4
    errors = {f["path"]: f["error"] for f in report.failed}
    assert "is not inside a label folder" in errors["loose.mp4"]
    assert errors["normal/copy.mp4"].startswith("same content as normal/clip0.mp4")


def test_empty_source_is_an_error(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "empty" / "normal").mkdir(parents=True)
    with pytest.raises(DataError, match="no videos found in"):
        import_videos(db_url, "ds", tmp_path / "empty")
    with pytest.raises(DataError, match="does not exist or is not a folder"):
        import_videos(db_url, "ds", tmp_path / "nowhere")


# ---------------------------------------------------------------------------------------- bad files
BAD_FILES = {
    "zero-byte": (make_zero_byte, "is empty (0 bytes)"),
    "text-named-mp4": (make_text_as_mp4, "is not a media file"),
    "truncated": (make_truncated, "is truncated or corrupt"),
    "audio-only": (make_audio_only, "has no video stream (an audio-only file)"),
    "one-frame": (lambda p: make_video(p, num_frames=1, color_seed=55), "has only 1 frame"),
    "still-png": (make_still_png_as_mp4, "is a still image (PNG)"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_file_is_kept_unreadable_and_the_rest_imports(db_url: str, tmp_path: Path, kind: str) -> None:
    make, message = BAD_FILES[kind]
    src = _label_folders(tmp_path / "src")
    make(src / "normal" / "bad.mp4")
    report = import_videos(db_url, "ds", src)
    assert report.imported == 4 and report.counts == {"abnormal": 2, "normal": 2}
    assert len(report.failed) == 1 and report.failed[0]["path"] == "normal/bad.mp4"
    assert message in report.failed[0]["error"]
    bad = _videos(db_url)["normal/bad.mp4"]
    assert bad.readable is False and message in bad.error
    again = import_videos(db_url, "ds", src)  # still reported, not stored twice
    assert (again.imported, again.unchanged, again.failed) == (0, 4, report.failed)
    assert len(_videos(db_url)) == 5


# ------------------------------------------------------------------------------------------ escapes
def test_symlink_leaving_the_source_is_refused(db_url: str, tmp_path: Path) -> None:
    src = _label_folders(tmp_path / "src")
    outside = make_video(tmp_path / "outside" / "secret.mp4", color_seed=9)
    os.symlink(outside, src / "normal" / "link.mp4")
    os.symlink(outside.parent, src / "abnormal" / "linked_dir")
    os.symlink(src / "normal" / "clip0.mp4", src / "normal" / "z_link.mp4")  # inside: allowed (a duplicate here)
    report = import_videos(db_url, "ds", src)
    errors = {f["path"]: f["error"] for f in report.failed}
    assert "outside the source folder" in errors["normal/link.mp4"] and str(outside) in errors["normal/link.mp4"]
    assert "outside the source folder" in errors["abnormal/linked_dir"]
    assert errors["normal/z_link.mp4"].startswith("same content as normal/clip0.mp4")
    assert report.imported == 4
    assert all(str(src) in v.path for v in _videos(db_url).values())


def test_dotdot_in_manifest_is_refused(db_url: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_video(src / "a.mp4", color_seed=1)
    make_video(tmp_path / "outside.mp4", color_seed=2)
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\na.mp4,normal\n../outside.mp4,normal\nsub/../../outside.mp4,normal\n")
    report = import_videos(db_url, "ds", src, manifest=manifest)
    assert report.imported == 1
    assert [f["path"] for f in report.failed] == ["../outside.mp4", "sub/../../outside.mp4"]
    assert all("outside the source folder" in f["error"] for f in report.failed)


# ---------------------------------------------------------------------------------------- manifests
def test_csv_manifest_with_split_ids_duplicates_and_unknown_labels(db_url: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    for i in range(4):
        make_video(src / "clips" / f"c{i}.mp4", color_seed=i)
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,label,split,id,camera\n"
        "clips/c0.mp4,normal,train,A,porch\n"
        "clips/c1.mp4,abnormal,valid,B,\n"
        "clips/c2.mp4,abnormal,test,A,\n"
        "clips/c3.mp4,explosion,train,C,\n"
        "clips/missing.mp4,normal,train,D,\n",
        encoding="utf-8",
    )
    report = import_videos(db_url, "ds", src, manifest=manifest, labels=["normal", "abnormal"])
    assert report.imported == 2
    assert report.failed == [
        {"path": "clips/c2.mp4", "error": "duplicate id A (first at row 2); remove one of the rows"},
        {"path": "clips/c3.mp4", "error": "label 'explosion' is not one of the labels of dataset ds "
                                          "(normal, abnormal); fix the label or import into another dataset"},
        {"path": "clips/missing.mp4", "error": f"video file clips/missing.mp4 not found under {src.resolve()}"},
    ]
    videos = _videos(db_url)
    assert (videos["A"].split, videos["B"].split) == ("train", "val")
    assert videos["A"].meta["camera"] == "porch"


def test_csv_without_label_column_imports_nothing(db_url: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_video(src / "a.mp4")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,class\na.mp4,normal\n")
    with pytest.raises(DataError, match=r"has no 'label' column \(columns found: 'path', 'class'\)"):
        import_videos(db_url, "ds", src, manifest=manifest)
    with session_factory(db_url)() as s:
        assert queries.list_datasets(s) == []


def test_jsonl_manifest(db_url: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_video(src / "x y.mp4", color_seed=1)
    make_video(src / "z.mp4", color_seed=2)
    manifest = tmp_path / "m.jsonl"
    rows = [{"path": "x y.mp4", "label": "normal", "split": "test"}, {"path": "z.mp4", "label": "abnormal"}]
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report = import_videos(db_url, "ds", src, manifest=manifest)
    assert (report.imported, report.failed, report.counts) == (2, [], {"abnormal": 1, "normal": 1})
    assert _videos(db_url)["x y.mp4"].split == "test"


def test_bad_arguments(db_url: str, tmp_path: Path) -> None:
    src = _label_folders(tmp_path / "src")
    with pytest.raises(ConfigError, match="format 'zip' is not supported"):
        import_videos(db_url, "ds", src, fmt="zip")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="test_fraction"):
        import_videos(db_url, "ds", src, test_fraction=1.5)
    with pytest.raises(ConfigError, match="needs a manifest"):
        import_videos(db_url, "ds", src, fmt="csv")


# ------------------------------------------------------------------------------------- real manifests
def test_detect_format(tmp_path: Path, shared_dir: Path) -> None:
    real = shared_dir / "real"
    annotations = real / "multihateclip" / "English_data" / "annotation"
    assert detect_format(None) == "folder"
    assert detect_format(real / "smarthome-bench" / "Video_Annotation.csv") == "smarthome-bench"
    assert detect_format(annotations) == "multihateclip"
    assert detect_format(annotations / "valid.tsv") == "multihateclip"
    (tmp_path / "m.jsonl").write_text("{}\n")
    (tmp_path / "m.csv").write_text("path,label\n")
    assert detect_format(tmp_path / "m.jsonl") == "jsonl"
    assert detect_format(tmp_path / "m.csv") == "csv"


def test_smarthome_bench_real_csv(db_url: str, tmp_path: Path, shared_dir: Path) -> None:
    bench = shared_dir / "real" / "smarthome-bench"
    src = tmp_path / "videos"
    (src / "clips").mkdir(parents=True)
    shutil.copy(bench / "ring_00037.mp4", src / "clips" / "smartbench_0002.mp4")  # a "Vague Abnormal" row
    make_video(src / "smartbench_0001.mp4", color_seed=1)  # a "Normal" row
    report = import_videos(db_url, "home", src, manifest=bench / "Video_Annotation.csv")
    assert (report.imported, report.counts) == (2, {"abnormal": 1, "normal": 1})
    assert len(report.failed) == 1201
    assert report.failed[0] == {
        "path": "smartbench_0003.mp4", "error": f"video file smartbench_0003.mp4 not found under {src.resolve()}",
    }
    assert "1201 x not found under: smartbench_0003.mp4, smartbench_0004.mp4, smartbench_0005.mp4 and 1198 more" \
        in report.summary()
    videos = _videos(db_url, "home")
    vague = videos["smartbench_0002"]
    assert (vague.label, vague.meta["anomaly_tag"], vague.meta["category"]) == ("abnormal", "Vague Abnormal",
                                                                               "Baby Monitoring")
    assert vague.meta["description"].startswith("The video, captured by a Ring doorbell camera")
    assert vague.meta["reasoning"] and vague.meta["has_audio"] is True
    assert (vague.width, vague.height) == (640, 360)
    assert videos["smartbench_0001"].label == "normal"
    with session_factory(db_url)() as s:
        assert queries.get_dataset(s, "home").labels == ["abnormal", "normal"]


def test_multihateclip_real_tsvs(db_url: str, tmp_path: Path, shared_dir: Path) -> None:
    annotations = shared_dir / "real" / "multihateclip" / "English_data" / "annotation"
    src = tmp_path / "videos"
    # One id per file, plus an id listed in both train.tsv and test.tsv in the real data.
    picks = {
        "4V0KGql_fUI": ("train", "normal"),
        "5snzFreG79c": ("train", "offensive"),
        "k9OtaMbK0Ac": ("train", "offensive"),
    }
    for name in ("valid.tsv", "test.tsv"):
        first = (annotations / name).read_text(encoding="utf-8").splitlines()[1].split("\t")
        picks[first[0]] = ("val" if name == "valid.tsv" else "test", first[1].lower())
    for i, video_id in enumerate(picks):
        make_video(src / f"{video_id}.mp4", color_seed=i)
    report = import_videos(db_url, "hate", src, manifest=annotations)
    assert report.imported == len(picks)
    assert {"path": "k9OtaMbK0Ac.mp4", "error": "duplicate id k9OtaMbK0Ac (first at train.tsv row 669); "
                                                "remove one of the rows"} in report.failed
    assert sum("not found under" in f["error"] for f in report.failed) == 1000 - len(picks)
    videos = _videos(db_url, "hate")
    assert {k: (v.split, v.label) for k, v in videos.items()} == picks
    assert videos["5snzFreG79c"].meta["target_victim"] == "['Couple']"
    with session_factory(db_url)() as s:
        assert queries.get_dataset(s, "hate").labels == ["hateful", "normal", "offensive"]


def test_multihateclip_single_tsv(db_url: str, tmp_path: Path, shared_dir: Path) -> None:
    tsv = shared_dir / "real" / "multihateclip" / "English_data" / "annotation" / "valid.tsv"
    video_id = tsv.read_text(encoding="utf-8").splitlines()[1].split("\t")[0]
    src = tmp_path / "videos"
    make_video(src / f"{video_id}.mp4")
    report = import_videos(db_url, "hate", src, manifest=tsv)
    assert report.imported == 1 and _videos(db_url, "hate")[video_id].split == "val"


def test_interrupted_import_keeps_finished_batches(db_url: str, tmp_path: Path) -> None:
    src = _label_folders(tmp_path / "src", per_label=3)

    def crash_after_first_batch(done: int, total: int, text: str) -> None:
        if text.startswith("probing and storing 2/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_videos(db_url, "ds", src, progress=crash_after_first_batch, batch_rows=2)
    assert len(_videos(db_url)) == 2
    report = import_videos(db_url, "ds", src)
    assert (report.imported, report.unchanged, report.failed, report.probed) == (4, 2, [], 4)


_KILLED_IMPORT = """
import os, signal, sys
from rbft_core.data.importer import import_videos

def kill_after_two_batches(done, total, text):
    if text.startswith("probing and storing 10/"):
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9: no cleanup, no rollback of anything committed

import_videos(sys.argv[1], "ds", sys.argv[2], workers=2, batch_rows=5, progress=kill_after_two_batches)
"""


def test_import_killed_with_sigkill_resumes_without_redoing_committed_files(db_url: str, tmp_path: Path) -> None:
    """kill -9 in the middle: the committed batches stay, the rerun skips them by hash (no probe) and ends
    where an uninterrupted import ends; the counters agree with a recount."""
    import subprocess
    import sys

    from db.counters import recount, stored
    from db.engine import dispose_engines

    src = tmp_path / "src"
    for i in range(70):  # enough for the process pool (small imports run inline)
        make_video(src / ("abnormal" if i % 3 == 0 else "normal") / f"c{i:02d}.mp4", num_frames=3, size=(32, 24),
                   color_seed=1000 + i)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    killed = subprocess.run([sys.executable, "-c", _KILLED_IMPORT, db_url, str(src)], env=env, timeout=300,
                            capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert len(_videos(db_url)) == 10  # two batches of 5 were committed
    dispose_engines()
    resumed = import_videos(db_url, "ds", src, workers=2, batch_rows=5)
    assert (resumed.unchanged, resumed.imported, resumed.probed, resumed.hashed, resumed.failed) == (10, 60, 60, 70, [])
    whole = import_videos(db_url, "whole", src, workers=2)
    got = {k: (v.sha256, v.label, v.readable, v.num_frames) for k, v in _videos(db_url).items()}
    assert got == {k: (v.sha256, v.label, v.readable, v.num_frames) for k, v in _videos(db_url, "whole").items()}
    assert whole.imported == 70
    with session_factory(db_url)() as s:
        ds = queries.get_dataset(s, "ds")
        assert stored(s, ds.id) == recount(s, ds.id)
        assert queries.dataset_counts(s, ds.id)["total"] == 70


def test_labels_of_an_existing_dataset_win(db_url: str, tmp_path: Path) -> None:
    src = _label_folders(tmp_path / "src")
    import_videos(db_url, "ds", src, labels=["abnormal", "normal"])
    with pytest.raises(ConfigError, match="already has the labels abnormal, normal, not cat, dog"):
        import_videos(db_url, "ds", src, labels=["cat", "dog"])
    make_video(src / "Normal" / "caps.mp4", color_seed=42)  # case differences map onto the existing label
    report = import_videos(db_url, "ds", src)
    assert report.imported == 1 and _videos(db_url)["Normal/caps.mp4"].label == "normal"

"""Dataset management behind the Datasets tab: create, manifest uploads, job command lines."""

from __future__ import annotations

import pytest

from rbft_core.tabs import datasets
from rbft_core.errors import ConfigError, DataError
from tests.helpers import make_video


def test_create_from_preset_and_custom(db_url):
    made = datasets.create_dataset(db_url, "homes", preset="smart-home")
    assert made == {"name": "homes", "preset": "smart-home", "labels": ["normal", "abnormal"],
                    "dimensions": ["subjects", "attributes", "actions", "scenes"]}
    custom = datasets.create_dataset(db_url, "doors", preset="custom", role="Door Inspector", labels="OK, Broken")
    assert custom["labels"] == ["ok", "broken"] and custom["preset"] == "custom"
    with pytest.raises(ConfigError, match="already exists"):
        datasets.create_dataset(db_url, "homes")
    with pytest.raises(ConfigError, match="needs at least two labels"):
        datasets.create_dataset(db_url, "x", preset="custom", role="r", labels="only")
    assert datasets.dataset_detail(db_url, "doors")["role"] == "Door Inspector"
    with pytest.raises(ConfigError, match="dataset name '../etc' must be"):
        datasets.create_dataset(db_url, "../etc")


def test_stage_manifest_accepts_text_manifests_only(tmp_path, data_dir):
    good = tmp_path / "m.csv"
    good.write_text("path,label\na.mp4,normal\n", encoding="utf-8")
    staged = datasets.stage_manifest(good)
    assert staged.parent == data_dir / "uploads" and staged.read_text() == good.read_text()
    with pytest.raises(DataError, match="clip.mp4 is not a manifest"):
        datasets.stage_manifest(make_video(tmp_path / "clip.mp4"))
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    with pytest.raises(DataError, match="not a text manifest"):
        datasets.stage_manifest(binary)


def test_jobs_get_their_specs(tmp_path, db_url, data_dir, monkeypatch):
    started = []
    monkeypatch.setattr(datasets, "start_job", lambda url, spec, **kw: started.append(spec) or 1)
    datasets.create_dataset(db_url, "homes")
    (tmp_path / "v").mkdir()
    datasets.start_import(db_url, "homes", str(tmp_path / "v"), manifest="/m.csv", labels="normal,abnormal")
    datasets.start_generation(db_url, "homes", "Qwen/Qwen2.5-VL-7B-Instruct", num_frames=4, label_hint=False)
    imp, gen = started
    assert (imp.task, imp.dataset, imp.source) == ("import", "homes", str((tmp_path / "v").resolve()))
    assert imp.manifest == "/m.csv" and imp.labels == ("normal", "abnormal")
    assert (gen.task, gen.dataset, gen.num_frames, gen.label_hint) == ("generate", "homes", 4, False)
    with pytest.raises(DataError, match="does not exist on the server"):
        datasets.start_import(db_url, "homes", str(tmp_path / "missing"))
    with pytest.raises(DataError, match="dataset 'nope' not found"):
        datasets.start_generation(db_url, "nope", "m")


@pytest.mark.parametrize("name, message", [
    ("a/b", "must not contain '/'"), ("a\\b", "must not contain '/'"), ("..", "must not start with '.'"),
    ("x..y", "contain '..'"), ("tab\there", "control character"), ("bell\x07", "control character"),
    ("rtl\u202eoverride", "control character"), ("n" * 101, "101 characters; use at most 100"), ("   ", "empty"),
])
def test_dataset_names_are_checked_wherever_a_dataset_is_made(db_url, tmp_path, name, message):
    """The Datasets tab, an import (CLI or job) and the query layer refuse the same names."""
    from db import queries
    from db.engine import session_scope
    from rbft_core.data.importer import import_videos

    with pytest.raises(ConfigError, match=message), session_scope(db_url) as s:
        queries.get_or_create_dataset(s, name, labels=["normal", "abnormal"])
    make_video(tmp_path / "src" / "normal" / "a.mp4")
    make_video(tmp_path / "src" / "abnormal" / "b.mp4", color_seed=1)
    with pytest.raises(ConfigError):
        import_videos(db_url, name, tmp_path / "src")
    with pytest.raises(ConfigError):
        datasets.create_dataset(db_url, name)
    from rbft_core.data.catalog import dataset_overview
    assert dataset_overview(db_url) == []  # nothing was made


def test_file_names_made_from_dataset_names_never_collide(data_dir):
    from rbft_core.names import file_slug
    from rbft_core.tabs.inspect import drawn_boxes_file

    names = ["front.door", "front_door", "front door", "home", "home-2", "Home", "../etc", "ä", "a"]
    slugs = [file_slug(n) for n in names]
    assert len(set(slugs)) == len(names)
    assert all(set(slug) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") for slug in slugs)
    files = [drawn_boxes_file(n) for n in names]
    assert len(set(files)) == len(names) and all(f.parent == data_dir / "regions" for f in files)
    # a glob for one dataset's reports never matches another's: `home` vs `home-2`
    assert not f"mask-{file_slug('home-2')}-1.json".startswith(f"mask-{file_slug('home')}-")


def test_mask_reports_of_similar_names_stay_apart(data_dir):
    from types import SimpleNamespace

    from rbft_core.inspection.mask_reports import latest_experiment, write_reports

    def result(dataset):
        models = [{"name": "rbft", "accuracy_original": 0.9, "accuracy_critical": 0.5, "accuracy_random": 0.8,
                   "drop_ratio": 4.0}]
        return SimpleNamespace(dataset=dataset, models=models, config={"regions_source": "meta", "fill": "black",
                                                                       "k_random": 1},
                               to_json=lambda: {"dataset": dataset, "models": models})

    dotted = write_reports(result("front.door"))
    assert dotted["json"].endswith(".json") and "front_door-" in dotted["json"]  # the dot did not cut the name
    write_reports(result("home"))
    write_reports(result("home-2"))  # newer, and its name starts with "home-"
    assert latest_experiment("home")["dataset"] == "home"
    assert latest_experiment("front.door")["dataset"] == "front.door"
    assert len(list((data_dir / "reports").glob("*.json"))) == 3


def test_upload_check_reads_only_the_head(tmp_path, data_dir):
    """A large upload is checked without reading it into memory (the copy streams)."""
    import tracemalloc

    big = tmp_path / "big.csv"
    with open(big, "w") as handle:
        handle.write("path,label\n")
        row = "normal/clip_%07d.mp4,normal\n"
        for start in range(0, 600_000, 10_000):
            handle.write("".join(row % i for i in range(start, start + 10_000)))
    assert big.stat().st_size > 15_000_000
    tracemalloc.start()
    staged = datasets.stage_manifest(big)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2_000_000, f"peak {peak:,} bytes"
    assert staged.stat().st_size == big.stat().st_size
    one_line = tmp_path / "one.csv"
    one_line.write_bytes(b"path" + b"x" * 5_000_000)
    with pytest.raises(DataError, match="first line of one.csv is longer than 64 KB"):
        datasets.stage_manifest(one_line)


def test_stored_failures_are_capped_and_paged(tmp_path, db_url, data_dir):
    """Thousands of failures never go into one database row or one page: the row keeps the first ones and the
    count; every failure stays readable page by page."""
    from db import queries
    from db.engine import session_scope
    from db.review_queries import latest_import_run
    from rbft_core.data.importer import MAX_STORED_FAILURES, import_videos

    make_video(tmp_path / "src" / "a.mp4")
    missing = [f"gone_{i:04d}.mp4" for i in range(MAX_STORED_FAILURES + 50)]
    (tmp_path / "m.csv").write_text("path,label\na.mp4,normal\n" + "".join(f"{p},normal\n" for p in missing))
    report = import_videos(db_url, "big", tmp_path / "src", manifest=tmp_path / "m.csv", labels=["normal", "abnormal"])
    assert len(report.failed) == len(missing)
    with session_scope(db_url) as s:
        stored = latest_import_run(s, queries.get_dataset(s, "big").id)["report"]
    assert len(stored["failed"]) == MAX_STORED_FAILURES and stored["failed_total"] == len(missing)

    shown = datasets.import_report(db_url, "big")["report"]
    assert shown["failed_total"] == len(missing) and len(shown["failed"]) == MAX_STORED_FAILURES + 1
    assert shown["failed"][-1]["path"] == "... and 50 more"
    pages = [datasets.import_failures(db_url, "big", page=p, page_size=100) for p in range(3)]
    assert [len(p["rows"]) for p in pages] == [100, 100, 50] and {p["pages"] for p in pages} == {3}
    assert [r["path"] for p in pages for r in p["rows"]] == missing  # every failure, in order
    assert datasets.import_failures(db_url, "big", page=99, page_size=100)["page"] == 2  # clamped to the last
    with pytest.raises(ConfigError, match="page_size must be within"):
        datasets.import_failures(db_url, "big", page_size=10_000)

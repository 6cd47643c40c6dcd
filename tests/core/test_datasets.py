"""Dataset management behind the Datasets tab: create, manifest uploads, job command lines."""

from __future__ import annotations

import pytest

from rbft_core.tabs import datasets
from rbft_core.errors import ConfigError, DataError
from tests.helpers import make_video


def test_create_from_preset_and_custom(db_url):
    made = datasets.create_dataset(db_url, "homes", preset="smart-home")
    assert made == {"name": "homes", "preset": "smart-home", "labels": ["normal", "abnormal"]}
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

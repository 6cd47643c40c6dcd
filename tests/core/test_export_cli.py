"""`rbft export`, `rbft import --format rbft-export` and `rbft export-model` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.export_world import build_world

RBFT = [sys.executable, "-m", "rbft_core.cli.main"]


@pytest.fixture
def env(tmp_path, db_url):
    e = dict(os.environ, RBFT_DATA_DIR=str(tmp_path / "data"), RBFT_DATABASE_URL=db_url, HF_HUB_OFFLINE="1",
             OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return e


def run(args, env, cwd):
    return subprocess.run(RBFT + args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_export_then_import_the_zip(tmp_path, env, db_url):
    build_world(db_url, tmp_path)
    out = run(["export", "homes", "--format", "swift", "--status", "accepted,draft", "--split", "train",
               "--edited", "yes", "--stage", "1", "--out", str(tmp_path / "exports"), "--json"], env, tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["counts"]["stage1"] == {"train": 2} and result["counts"]["stage2"] == {}
    assert Path(result["zip"]).name == "homes-swift.zip"
    back = run(["import", "again", result["zip"], "--format", "rbft-export", "--json"], env, tmp_path)
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["imported"] == 2


def test_empty_selection_is_one_line_exit_2(tmp_path, env, db_url):
    build_world(db_url, tmp_path)
    out = run(["export", "homes", "--format", "csv", "--labels", "abnormal", "--edited", "no",
               "--out", str(tmp_path / "exports")], env, tmp_path)
    assert out.returncode == 2 and out.stderr.startswith("error: no videos of dataset 'homes' match the selection")
    assert "Traceback" not in out.stderr and not (tmp_path / "exports").exists()
    missing = run(["export-model", "nope", "--out", str(tmp_path / "m")], env, tmp_path)
    assert missing.returncode == 2 and "run 'nope' not found" in missing.stderr

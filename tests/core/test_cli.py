"""The `rbft` console script end to end, as a user runs it (real subprocesses)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import make_text_as_mp4, make_video

RBFT = [sys.executable, "-m", "rbft_core.cli.main"]


def run(args, env, cwd):
    return subprocess.run(RBFT + args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ, RBFT_DATA_DIR=str(tmp_path / "data"), RBFT_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}")
    e.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return e


def test_import_then_generate_then_nothing_left(tmp_path, env, tiny_model_dir):
    src = tmp_path / "src"
    for i in range(6):
        make_video(src / ("abnormal" if i % 2 else "normal") / f"v{i}.mp4", num_frames=4, color_seed=i)
    make_text_as_mp4(src / "normal" / "notes.mp4")

    out = run(["import", "homes", str(src), "--json"], env, tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert set(report) == {"status", "summary", "dataset", "imported", "unchanged", "failed", "counts"}
    assert report["imported"] == 6 and report["unchanged"] == 0
    assert [Path(f["path"]).name for f in report["failed"]] == ["notes.mp4"]
    assert report["counts"] == {"abnormal": 3, "normal": 3}

    again = json.loads(run(["import", "homes", str(src), "--json"], env, tmp_path).stdout)
    assert again["imported"] == 0 and again["unchanged"] == 6

    gen = run(["generate", "homes", "--model", str(tiny_model_dir), "--max-new-tokens", "8", "--json"], env, tmp_path)
    assert gen.returncode == 0, gen.stderr
    first = json.loads(gen.stdout)
    assert first["generated"] >= 1 and not first["failed"]
    second = json.loads(run(["generate", "homes", "--model", str(tiny_model_dir), "--json"], env, tmp_path).stdout)
    assert second["generated"] == 0 and second["already_done"] == first["generated"]

    listing = json.loads(run(["datasets", "--json"], env, tmp_path).stdout)["datasets"]
    assert listing[0]["name"] == "homes" and listing[0]["pending"] == first["generated"]


def test_human_output_has_progress_bar_and_summary(tmp_path, env):
    src = tmp_path / "src"
    make_video(src / "normal" / "a.mp4", color_seed=1)
    make_video(src / "abnormal" / "b.mp4", color_seed=2)
    out = run(["import", "homes", str(src)], env, tmp_path)
    assert out.returncode == 0
    assert "2 imported, 0 unchanged, 0 failed" in out.stdout
    assert "import" in out.stderr and "100%" in out.stderr  # tqdm


def test_nothing_importable_exits_non_zero(tmp_path, env):
    src = tmp_path / "src"
    make_text_as_mp4(src / "normal" / "x.mp4")
    out = run(["import", "homes", str(src), "--json"], env, tmp_path)
    assert out.returncode == 1
    assert json.loads(out.stdout)["failed"][0]["path"].endswith("x.mp4")


def test_user_errors_are_one_line_exit_2(tmp_path, env):
    out = run(["generate", "nope", "--model", str(tmp_path / "missing")], env, tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and "Traceback" not in out.stderr

"""``rbft generate --nproc-per-node 2``: two CPU processes under torchrun share the videos by batch, each commits
its own batches, and the suggestions equal a one-process run on the same videos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from db.engine import dispose_engines, init_db, session_scope
from db.models import Suggestion, Video
from rbft_core.data.importer import import_videos
from rbft_core.models.generate import generate_rationales
from rbft_core.specs.data import GenerateSpec
from tests.helpers import make_video

REPO = Path(__file__).resolve().parents[2]


def _suggestions(url: str) -> dict[str, tuple]:
    with session_scope(url) as s:
        rows = s.execute(select(Video.external_id, Suggestion.raw_text, Suggestion.parse_status, Suggestion.mean_logprob,
                                Suggestion.doubt_score).join(Video, Video.id == Suggestion.video_id)).all()
    return {ext: (text, status, round(lp, 4), round(doubt, 4)) for ext, text, status, lp, doubt in rows}


def test_two_processes_write_what_one_process_writes(tmp_path, data_dir, tiny_model_dir):
    src = tmp_path / "videos"
    for i in range(10):
        make_video(src / ("abnormal" if i % 2 else "normal") / f"clip{i}.mp4", num_frames=6, color_seed=i)
    single, double = (f"sqlite:///{tmp_path / name}.db" for name in ("single", "double"))
    for url in (single, double):
        init_db(url)
        assert import_videos(url, "homes", src, test_fraction=0.2).imported == 10
    cfg = GenerateSpec(batch_size=2, max_new_tokens=8)
    one = generate_rationales(single, "homes", str(tiny_model_dir), cfg)
    dispose_engines()

    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", RBFT_DATA_DIR=str(data_dir))
    command = [sys.executable, "-m", "rbft_core.cli.main", "generate", "homes", "--model", str(tiny_model_dir),
               "--batch-size", "2", "--max-new-tokens", "8", "--nproc-per-node", "2", "--db", double, "--json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=str(REPO))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["processes"] == 2 and result["generated"] == one.generated == 8
    assert sorted(s["rank"] for s in result["shards"]) == [0, 1]
    assert all(s["generated"] == 4 for s in result["shards"])  # 4 batches of 2: two each
    assert result["parse_status"] == one.parse_status
    assert _suggestions(double) == _suggestions(single)

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=str(REPO))
    assert again.returncode == 0, again.stderr[-3000:]
    rerun = json.loads(again.stdout.strip().splitlines()[-1])
    assert (rerun["generated"], rerun["already_done"]) == (0, 8)  # resumable: nothing left to do


def test_nproc_per_node_is_a_spec_setting_with_a_flag():
    from rbft_core.cli.main import build_parser
    from rbft_core.errors import ConfigError

    args = build_parser().parse_args(["generate", "d", "--model", "m", "--nproc-per-node", "3"])
    assert args.nproc_per_node == 3
    assert GenerateSpec.from_dict({"dataset": "d", "model": "m", "nproc_per_node": 3}).nproc_per_node == 3
    with pytest.raises(ConfigError, match="`nproc_per_node` must be >= 1, got 0"):
        GenerateSpec(nproc_per_node=0)

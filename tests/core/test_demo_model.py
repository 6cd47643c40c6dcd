"""The fast demo's pre-trained base model through the project's own paths: rationales, zero-shot, the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def _import(db_url, build):
    from rbft_core.demo import DEMO_DATASET
    from rbft_core.data.importer import import_videos

    import_videos(db_url, DEMO_DATASET, build.manifest.parent, manifest=build.manifest, fmt="jsonl", preset="smart-home")
    return DEMO_DATASET


def test_base_model_writes_readable_rationales_in_its_caption_vocabulary(demo_base_model, db_url, data_dir):
    """Through the project's generate path: four filled fields, in the words the captions use.

    The fast model learns the caption format and vocabulary, not yet the grounding (its subjects are
    right about as often as chance); the full build's held-out check (``rbft demo build``) measures that.
    """
    from sqlalchemy import select

    from db.engine import session_scope
    from db.models import Suggestion, Video
    from rbft_core.demo.world import ACTIONS, PLURAL_WORDS, SUBJECT_WORDS
    from rbft_core.specs.data import GenerateSpec
    from rbft_core.models.generate import generate_rationales

    dataset = _import(db_url, demo_base_model)
    cfg = GenerateSpec(num_frames=demo_base_model.config.sample_frames, batch_size=8, max_new_tokens=80)
    report = generate_rationales(db_url, dataset, str(demo_base_model.model_dir), cfg)
    assert report.generated == 24
    with session_scope(db_url) as s:
        suggestions = [sug for sug, _ in s.execute(select(Suggestion, Video).join(Video, Video.id == Suggestion.video_id))]
    ok = sum(sug.parse_status == "ok" for sug in suggestions) / len(suggestions)
    assert ok >= 0.9, f"only {ok:.0%} of the rationales parse into four fields"
    subjects = {*SUBJECT_WORDS.values(), *PLURAL_WORDS.values()}
    known = sum(sug.rationale["subjects"].removesuffix(" and an adult") in subjects for sug in suggestions) / len(suggestions)
    assert known >= 0.9, f"only {known:.0%} of the subjects are phrases the captions use"
    actions = [sug.rationale["actions"] for sug in suggestions]
    assert sum(any(a in text for a in ACTIONS) or "walking" in text for text in actions) >= 0.8 * len(suggestions)
    assert all("normal" not in sug.raw_text for sug in suggestions)  # it describes; it never learned the labels
    assert demo_base_model.info["caption"]["parse_ok"] >= 0.9  # the build's own held-out check agrees


def test_zero_shot_is_near_chance(demo_base_model, db_url, data_dir):
    from rbft_core.specs.training import EvaluateSpec
    from rbft_core.training.evaluate import evaluate_run

    dataset = _import(db_url, demo_base_model)
    cfg = EvaluateSpec(split="train", num_frames=demo_base_model.config.sample_frames, batch_size=8, generate_answer=False)
    report = evaluate_run(db_url, dataset, model=str(demo_base_model.model_dir), cfg=cfg)
    assert report.metrics["n"] == 24
    assert 0.3 <= report.metrics["accuracy"] <= 0.7, report.metrics


def test_demo_build_command_reuses_the_cache(demo_base_model):
    stamp = demo_base_model.model_dir / "build.json"
    before = stamp.stat().st_mtime_ns
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "rbft_core.cli.main", "demo", "build", "--fast", "--json",
                          "--data-dir", str(demo_base_model.model_dir.parents[1])],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["reused"] is True and payload["model"] == str(demo_base_model.model_dir)
    assert stamp.stat().st_mtime_ns == before
    assert time.perf_counter() - started < 60


def test_prepare_reuses_the_build_and_imports_the_dataset_with_boxes(demo_base_model, db_url, monkeypatch):
    from sqlalchemy import select

    from db.engine import session_scope
    from db.models import Video
    from rbft_core.demo import DemoConfig, prepare_demo

    monkeypatch.setenv("RBFT_DATA_DIR", str(demo_base_model.model_dir.parents[1]))
    info = prepare_demo(db_url, config=DemoConfig.fast())
    assert info["reused"] is True and info["videos"] == 32 and info["dataset"] == "demo-smart-home"
    with session_scope(db_url) as s:
        videos = list(s.scalars(select(Video)))
        assert {v.split for v in videos} == {"train", "test"}
        assert all(len(v.meta["boxes"]) == 8 and v.meta["scene_graph"]["subjects"] for v in videos)

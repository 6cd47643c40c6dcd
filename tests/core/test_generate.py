"""Batched, resumable rationale generation into immutable suggestions."""

import math

import pytest
from sqlalchemy import func, select

from db.engine import session_scope
from db.models import Review, Suggestion, Video
from rbft_core.models import generate as gen
from rbft_core.errors import ConfigError, DataError, ModelError
from rbft_core.specs.data import GenerateSpec
from rbft_core.models.generate import generate_rationales
from rbft_core.data.importer import import_videos
from tests.helpers import make_video


@pytest.fixture
def dataset(tmp_path, db_url, data_dir):
    """Ten generated videos in two label folders, split 8 train / 2 test by the seeded splitter."""
    src = tmp_path / "videos"
    for i in range(10):
        label = "abnormal" if i % 2 else "normal"
        make_video(src / label / f"clip {i}.mp4", num_frames=6, size=(64, 48), color_seed=i)
    report = import_videos(db_url, "homes", src, preset="smart-home", test_fraction=0.2)
    assert report.imported == 10
    return "homes"


def _count(db_url, model=Suggestion):
    with session_scope(db_url) as s:
        return s.scalar(select(func.count()).select_from(model))


def _train_count(db_url):
    with session_scope(db_url) as s:
        return s.scalar(select(func.count()).select_from(Video).where(Video.split == "train"))


def test_one_suggestion_per_train_video_then_none(db_url, dataset, tiny_model_dir):
    cfg = GenerateSpec(batch_size=3, max_new_tokens=12)
    calls = []
    report = generate_rationales(db_url, dataset, str(tiny_model_dir), cfg, progress=lambda d, t, n: calls.append((d, t)))
    n_train = _train_count(db_url)
    assert report.generated == n_train == _count(db_url)
    assert sum(report.parse_status.values()) == n_train
    assert calls[-1] == (n_train, n_train) and len(calls) == math.ceil(n_train / 3)
    with session_scope(db_url) as s:
        rows = s.scalars(select(Suggestion)).all()
        assert {r.video.split for r in rows} == {"train"}
        assert all(r.model_id == str(tiny_model_dir.resolve()) and r.prompt_version == "rationale-v1" for r in rows)
        assert all(r.label_hint and r.raw_text and r.mean_logprob < 0 for r in rows)
        assert all(r.gen_params["num_frames"] == 8 for r in rows)
        reviews = s.scalars(select(Review)).all()
        assert len(reviews) == n_train and {r.status for r in reviews} == {"pending"}
    again = generate_rationales(db_url, dataset, str(tiny_model_dir), cfg)
    assert again.generated == 0 and again.already_done == n_train
    assert _count(db_url) == n_train


def test_overwrite_adds_rows_and_keeps_old(db_url, dataset, tiny_model_dir):
    cfg = GenerateSpec(batch_size=4, max_new_tokens=6)
    generate_rationales(db_url, dataset, str(tiny_model_dir), cfg)
    first = _count(db_url)
    generate_rationales(db_url, dataset, str(tiny_model_dir), GenerateSpec(batch_size=4, max_new_tokens=6, overwrite=True))
    assert _count(db_url) == 2 * first
    with session_scope(db_url) as s:
        # pending, never-edited reviews follow the newest suggestion
        for review in s.scalars(select(Review)):
            newest = max(sug.id for sug in review.video.suggestions)
            assert review.suggestion_id == newest


def test_crash_mid_run_loses_at_most_one_batch(db_url, dataset, tiny_model_dir, monkeypatch):
    real = gen.generate_batch
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(gen, "generate_batch", flaky)
    with pytest.raises(RuntimeError, match="simulated crash"):
        generate_rationales(db_url, dataset, str(tiny_model_dir), GenerateSpec(batch_size=2, max_new_tokens=6))
    assert _count(db_url) == 2  # the first batch was committed
    monkeypatch.setattr(gen, "generate_batch", real)
    report = generate_rationales(db_url, dataset, str(tiny_model_dir), GenerateSpec(batch_size=2, max_new_tokens=6))
    assert report.already_done == 2
    assert _count(db_url) == _train_count(db_url)


def test_video_deleted_after_import_is_reported_and_rest_goes_on(db_url, dataset, tiny_model_dir):
    with session_scope(db_url) as s:
        victim = s.scalars(select(Video).where(Video.split == "train").order_by(Video.id)).first()
        path = victim.path
    import os

    os.remove(path)
    report = generate_rationales(db_url, dataset, str(tiny_model_dir), GenerateSpec(batch_size=4, max_new_tokens=6))
    assert [f["path"] for f in report.failed] == [path]
    assert "not found" in report.failed[0]["error"] or "does not exist" in report.failed[0]["error"]
    assert report.generated == _train_count(db_url) - 1


def test_no_label_hint_recorded(db_url, dataset, tiny_model_dir, monkeypatch):
    seen = []
    real = gen.rationale_prompt
    monkeypatch.setattr(gen, "rationale_prompt", lambda preset, label=None: seen.append(label) or real(preset, label))
    generate_rationales(db_url, dataset, str(tiny_model_dir), GenerateSpec(label_hint=False, max_new_tokens=4))
    assert seen and all(label is None for label in seen)
    with session_scope(db_url) as s:
        assert not any(s.scalars(select(Suggestion.label_hint)))


def test_bad_settings_and_sources(db_url, dataset, tmp_path):
    with pytest.raises(ConfigError, match="`num_frames` must be >= 1, got 0"):
        GenerateSpec(num_frames=0)
    with pytest.raises(ConfigError, match="`batch_size` must be >= 1"):
        GenerateSpec(batch_size=0)
    with pytest.raises(ModelError, match="does not exist"):
        generate_rationales(db_url, dataset, str(tmp_path / "missing-model"))
    with pytest.raises(DataError, match="nope"):
        generate_rationales(db_url, "nope", str(tmp_path))


def test_video_ids_regenerates_only_those(db_url, dataset, tiny_model_dir):
    """What the review page's Regenerate runs: one video, any split, a newer suggestion beside the old."""
    with session_scope(db_url) as s:
        test_video = s.scalars(select(Video).where(Video.split == "test")).first().id
    cfg = GenerateSpec(split=None, video_ids=(test_video,), overwrite=True, max_new_tokens=4)
    for _ in range(2):
        report = generate_rationales(db_url, dataset, str(tiny_model_dir), cfg)
        assert report.generated == 1
    with session_scope(db_url) as s:
        rows = s.scalars(select(Suggestion)).all()
        assert {r.video_id for r in rows} == {test_video} and len(rows) == 2
        assert rows[0].gen_params["sample_spec"]["num_frames"] == 8  # the review page shows these frames


def test_each_dimension_keeps_its_least_likely_token(db_url, dataset, tiny_model_dir):
    """Generation stores, per dimension found in the answer, its least likely token (the unsure-subject check reads
    it); the mapping from tokens to values works with the model's real tokenizer (prefix decoding)."""
    from transformers import AutoTokenizer

    from rbft_core.models.confidence import dimension_logprobs

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    answer = '{"subjects": "a tabby cat", "attributes": "small", "actions": "sleeps", "scenes": "sofa"}'
    ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    decode = lambda part: tokenizer.decode(part, skip_special_tokens=True)  # noqa: E731 - as generation decodes
    cat = next(i for i in range(len(ids)) if decode(ids[:i + 1]).endswith("cat"))
    lps = [-0.05] * len(ids)
    lps[cat] = -2.0
    fields = {"subjects": "a tabby cat", "attributes": "small", "actions": "sleeps", "scenes": "sofa"}
    found = dimension_logprobs(ids, lps, decode, fields)
    assert found["subjects"]["min_logprob"] == -2.0 and found["subjects"]["token"].endswith("cat")
    assert found["scenes"]["min_logprob"] == -0.05 and set(found) == set(fields)
    # the whole value's log-probability: every token that writes "a tabby cat" (the doubt scores the subject by it)
    start = answer.index("a tabby cat")
    first = next(i for i in range(len(ids)) if len(decode(ids[:i + 1])) > start)
    written = [i for i in range(first, cat + 1) if decode(ids[i:i + 1]).strip()]  # whitespace-only tokens left out
    assert found["subjects"]["logprob"] == pytest.approx(-2.0 - 0.05 * (len(written) - 1), abs=1e-3)

    generate_rationales(db_url, dataset, str(tiny_model_dir), GenerateSpec(batch_size=4, max_new_tokens=12))
    with session_scope(db_url) as s:
        rows = s.scalars(select(Suggestion)).all()
        assert rows and all(isinstance(r.dimension_logprobs, dict) and isinstance(r.flags, list) for r in rows)
        kept = [d for r in rows for d in r.dimension_logprobs.values()]
        assert all(d["logprob"] <= d["min_logprob"] <= 0 for d in kept)  # the sum is never above its least term

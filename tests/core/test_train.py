"""Two-stage LoRA training on the tiny model: learning, the M_inter merge, adapters, resume, bad input."""

import json
import threading
from pathlib import Path

import pytest
import torch
from sqlalchemy import select

from db import job_queries as jq
from db.engine import session_scope
from db.models import Review, Video
from rbft_core.training import train as train_mod
from rbft_core.training import train_loop
from rbft_core.errors import ConfigError, DataError
from rbft_core.models.loading import encode_prompts, load_vlm, sample_spec_for
from rbft_core.training.sft_data import IGNORE_INDEX, VideoSFTCollator, build_examples
from rbft_core.specs.training import TrainSpec
from rbft_core.training.train import apply_adapters, load_run_spec, train_stage

pytestmark = pytest.mark.both_backends  # the DB paths run on SQLite and on PostgreSQL


FAST = dict(batch_size=4, lora_rank=8, lora_alpha=16, num_frames=4, max_pixels=4 * 28 * 28)


def _losses(run_dir: Path) -> list[float]:
    return [r["loss"] for r in map(json.loads, (run_dir / "trainer_log.jsonl").read_text().splitlines()) if r["loss"] is not None]


def test_collator_masks_all_but_the_answer(world_dataset, tiny_model_dir):
    name, url = world_dataset
    examples, _, _ = build_examples(url, name, 1)
    lm = load_vlm(str(tiny_model_dir))
    collator = VideoSFTCollator(lm.processor, sample_spec_for(lm.processor, num_frames=4, max_pixels=4 * 28 * 28))
    batch = collator(examples[:3])
    tok = lm.processor.tokenizer
    for row, ex in enumerate(examples[:3]):
        kept = batch["labels"][row][batch["labels"][row] != IGNORE_INDEX]
        assert tok.decode(kept) == ex.target + "<|im_end|>"
        video_positions = batch["input_ids"][row] == lm.model.config.video_token_id
        assert (batch["labels"][row][video_positions] == IGNORE_INDEX).all()
    assert batch["pixel_values_videos"].shape[0] == int(batch["video_grid_thw"].prod(-1).sum())


def test_stage1_loss_falls_and_run_folder_is_complete(world_dataset, tiny_model_dir):
    name, url = world_dataset
    cfg = TrainSpec(dataset=name, stage=1, model=str(tiny_model_dir), lr=2e-2, epochs=10, warmup_ratio=0.0, **FAST)
    result = train_stage(url, cfg)
    losses = _losses(result.run_dir)
    assert result.status == "succeeded"
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.25, losses  # nats per answer token, on a random-weight model with LoRA only
    for name_ in ("spec.yaml", "trainer_log.jsonl", "train.log", "all_results.json", "exit_status.json",
                  "adapter/adapter_config.json", "adapter/adapter_model.safetensors"):
        assert (result.run_dir / name_).exists(), name_
    record = json.loads((result.run_dir / "trainer_log.jsonl").read_text().splitlines()[-1])
    assert set(record) == {"current_steps", "total_steps", "loss", "eval_loss", "lr", "epoch", "percentage",
                           "elapsed_time", "remaining_time", "throughput"}
    assert record["current_steps"] == record["total_steps"] and record["percentage"] == 100.0
    assert load_run_spec(result.run_dir / "spec.yaml") == cfg.replace(run_id="")  # rerunnable as is (a new run)
    with session_scope(url) as s:
        run = jq.get_run(s, result.run_id)
        assert (run.kind, run.status, run.stage) == ("stage1", "succeeded", 1)


def test_stage2_starts_from_merged_stage1_and_adapters_reload(world_dataset, tiny_model_dir, monkeypatch):
    name, url = world_dataset
    s1 = train_stage(url, TrainSpec(dataset=name, stage=1, model=str(tiny_model_dir), lr=3e-3, epochs=1, **FAST))
    captured = {}
    real = train_loop.run_trainer

    def spy(lm, cfg, *args, **kwargs):
        base = load_vlm(str(tiny_model_dir)).model
        name_ = "model.language_model.layers.0.self_attn.q_proj.weight"
        start = dict(lm.model.named_parameters())[f"base_model.model.{name_.replace('q_proj.weight', 'q_proj.base_layer.weight')}"]
        captured["differs"] = not torch.equal(start, dict(base.named_parameters())[name_])
        captured["lm"] = lm
        return real(lm, cfg, *args, **kwargs)

    monkeypatch.setattr(train_mod, "run_trainer", spy)
    s2 = train_stage(url, TrainSpec(dataset=name, stage=2, model=str(tiny_model_dir), init_from=s1.run_id, epochs=1, **FAST))
    assert captured["differs"], "Stage II must start from M_inter (Stage-I adapter merged), not the base"
    with session_scope(url) as s:
        run = jq.get_run(s, s2.run_id)
        assert (run.kind, run.parent_run_id) == ("stage2", s1.run_id)

    # the saved adapter, loaded back on base + merged Stage I, gives the trained model's logits
    from peft import PeftModel

    trained = captured["lm"].model.eval()
    lm = load_vlm(str(tiny_model_dir))
    reloaded = PeftModel.from_pretrained(apply_adapters(lm.model, [s1.run_dir / "adapter"]), str(s2.run_dir / "adapter")).eval()
    examples, _, _ = build_examples(url, name, 2)
    collator = VideoSFTCollator(lm.processor, sample_spec_for(lm.processor, num_frames=4, max_pixels=4 * 28 * 28))
    batch = collator(examples[:2])
    batch.pop("labels")
    with torch.inference_mode():
        a, b = trained(**batch).logits, reloaded(**batch).logits
    assert torch.allclose(a, b, atol=1e-5)


def test_stop_then_resume_reaches_the_same_step(world_dataset, tiny_model_dir, monkeypatch):
    name, url = world_dataset
    cfg = TrainSpec(dataset=name, stage=2, model=str(tiny_model_dir), max_steps=6, save_steps=2, batch_size=2,
                      lora_rank=4, num_frames=4, max_pixels=4 * 28 * 28, run_id="resume-me")
    calls = {"n": 0}
    real_call = VideoSFTCollator.__call__

    stop = threading.Event()  # what SIGTERM sets inside a job

    def stop_after_three(self, examples):
        calls["n"] += 1
        if calls["n"] == 3:
            stop.set()
        return real_call(self, examples)

    monkeypatch.setattr(VideoSFTCollator, "__call__", stop_after_three)
    first = train_stage(url, cfg, should_stop=stop.is_set)
    stopped_at = first.global_step
    assert first.status == "cancelled" and 1 <= stopped_at < 6
    assert (first.run_dir / "adapter" / "adapter_config.json").exists()  # saved on the way out
    assert (first.run_dir / "checkpoints" / f"checkpoint-{stopped_at}").exists()
    monkeypatch.setattr(VideoSFTCollator, "__call__", real_call)
    resumed = train_stage(url, load_run_spec(first.run_dir / "spec.yaml").replace(run_id="resume-me"), resume=True)
    assert resumed.status == "succeeded" and resumed.global_step == 6
    assert resumed.metrics["resumed_from"] == f"checkpoint-{stopped_at}"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lr": 0.0}, "`lr` must be > 0, got 0.0"),
        ({"lr": -1e-4}, "`lr` must be > 0"),
        ({"num_frames": 0}, "`num_frames` must be >= 1, got 0"),
        ({"batch_size": 0}, "`batch_size` must be >= 1, got 0"),
        ({"lora_rank": 0}, "`lora_rank` must be >= 1, got 0"),
        ({"target_modules": "(("}, "`target_modules` is not a valid regex"),
        ({"init_from": "r1"}, "`init_from` is for Stage II only"),
    ],
)
def test_invalid_settings_name_the_field(changes, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        TrainSpec(dataset="d", stage=1, model="m", **changes)


def test_unknown_config_key_is_named(tmp_path):
    (tmp_path / "c.yaml").write_text("task: train\ndataset: d\nmodel: m\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="unknown setting\\(s\\) learning_rate for a train spec"):
        load_run_spec(tmp_path / "c.yaml")


def test_no_usable_rationales_names_the_count(world_dataset, tiny_model_dir):
    name, url = world_dataset
    with session_scope(url) as s:
        for review in s.scalars(select(Review)):
            review.status = "rejected"
    with pytest.raises(DataError, match=r"no usable rationales for Stage I among \d+ train videos \(\d+ rejected\)"):
        train_stage(url, TrainSpec(dataset=name, stage=1, model=str(tiny_model_dir), **FAST))


def test_single_class_refused_for_stage2(world_dataset, tiny_model_dir):
    name, url = world_dataset
    with session_scope(url) as s:
        for video in s.scalars(select(Video)):
            video.label = "normal"
    with pytest.raises(DataError, match="have the label 'normal'; Stage II needs at least two classes"):
        train_stage(url, TrainSpec(dataset=name, stage=2, model=str(tiny_model_dir), **FAST))


def test_no_training_videos(world_dataset, tiny_model_dir):
    name, url = world_dataset
    with pytest.raises(DataError, match="no readable val videos"):
        train_stage(url, TrainSpec(dataset=name, stage=2, model=str(tiny_model_dir), split="val", **FAST))


def test_a_torn_checkpoint_is_skipped(tmp_path):
    """A kill while a checkpoint is written leaves it without a readable trainer state: resume takes the one before."""
    from rbft_core.training.train_loop import latest_checkpoint

    for step in (2, 4, 6):
        folder = tmp_path / "checkpoints" / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / "adapter_model.safetensors").write_bytes(b"weights")
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    state = tmp_path / "checkpoints" / "checkpoint-6" / "trainer_state.json"
    state.write_text(state.read_text()[:7])  # torn mid-write
    (tmp_path / "checkpoints" / "checkpoint-8").mkdir()  # killed before the state was written at all
    (tmp_path / "checkpoints" / "checkpoint-tmp").mkdir()  # not a checkpoint name
    assert latest_checkpoint(tmp_path).name == "checkpoint-4"
    for step in (2, 4):
        (tmp_path / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json").unlink()
    assert latest_checkpoint(tmp_path) is None  # nothing complete: start from the beginning

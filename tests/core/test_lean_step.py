"""The lean training step (issue #17): per-example encodings and stored vision features change how much work a
step does, never what it computes: the same batches, the same loss and gradients, the same trained run."""

import json

import pytest
import torch

from rbft_core.models.loading import load_vlm, sample_spec_for
from rbft_core.models.tiny import TinySpec, build_tiny_model
from rbft_core.specs.training import TrainSpec
from rbft_core.training import lean_step
from rbft_core.training.sft_data import VideoSFTCollator, build_examples
from rbft_core.training.train import train_stage, wrap_lora

SAMPLING = dict(num_frames=4, max_pixels=4 * 28 * 28)


def _collators(lm, max_bytes=2**30):
    plain = VideoSFTCollator(lm.processor, sample_spec_for(lm.processor, **SAMPLING))
    return plain, lean_step.LeanCollator(plain, lean_step.FeatureStore(max_bytes))


def test_lean_batches_equal_the_batched_processor(world_dataset, tiny_model_dir):
    name, url = world_dataset
    examples, _, _ = build_examples(url, name, 1)
    lm = load_vlm(str(tiny_model_dir))
    plain, lean = _collators(lm)
    picked = [examples[3], examples[0], examples[5], examples[1]]  # rows of different lengths: padding matters
    expected, got = plain(picked), lean(picked)
    assert len({int(m.sum()) for m in expected["attention_mask"]}) > 1
    for key, value in expected.items():
        assert torch.equal(got[key], value), key
    assert got["rbft_video_features"] == [None] * 4

    lean.store.put(lean_step.example_key(picked[1]), {"pooler_output": (torch.zeros(1),)})
    again = lean(picked)
    rows = expected["video_grid_thw"].prod(-1).tolist()
    without_second = torch.cat([expected["pixel_values_videos"][sum(rows[:i]):sum(rows[:i + 1])]
                                for i in (0, 2, 3)])
    assert torch.equal(again["pixel_values_videos"], without_second)  # stored video: no pixels
    assert again["rbft_video_features"][1] is not None
    for key in ("input_ids", "labels", "attention_mask", "video_grid_thw"):
        assert torch.equal(again[key], expected[key]), key


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
def test_stored_features_give_the_plain_loss_and_gradients(family, world_dataset, tmp_path):
    name, url = world_dataset
    examples, _, _ = build_examples(url, name, 1)
    lm = load_vlm(str(build_tiny_model(tmp_path / family, TinySpec(family=family))))
    lm.model = wrap_lora(lm.model, TrainSpec(dataset=name, model="m", lora_rank=4, lora_alpha=8, lora_dropout=0.1))
    assert lean_step.use_lean_step(lm.model, TrainSpec(dataset=name, model="m")) == (True, "")
    lm.model.train()
    plain, lean = _collators(lm)
    trainer = lean_step.lean_trainer_class(_LossOnly)()
    trainer.feature_store = lean.store
    batch = examples[:3]

    def loss_and_grads(compute):
        lm.model.zero_grad()
        torch.manual_seed(7)  # the same LoRA dropout masks: the vision tower draws nothing
        loss = compute()
        loss.backward()
        grads = {n: p.grad.clone() for n, p in lm.model.named_parameters() if p.requires_grad}
        return loss.detach(), grads

    want, want_grads = loss_and_grads(lambda: lm.model(**plain(batch)).loss)
    for attempt in ("encoded now", "from the store"):
        got, got_grads = loss_and_grads(lambda: trainer.compute_loss(lm.model, lean(batch)))
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6, msg=attempt)
        for key, grad in want_grads.items():
            torch.testing.assert_close(got_grads[key], grad, rtol=1e-5, atol=1e-6, msg=f"{attempt}: {key}")
    assert lean.store.encoded == 3 and len(lean.store.items) == 3  # each video through the vision tower once


class _LossOnly:
    """The part of transformers' Trainer that LeanTrainer extends: the model's own loss."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        return (outputs.loss, outputs) if return_outputs else outputs.loss


def test_a_training_run_is_the_same_with_and_without_the_store(world_dataset, tiny_model_dir):
    name, url = world_dataset
    runs = {}
    for cache_mb in (0, 64):
        cfg = TrainSpec(dataset=name, model=str(tiny_model_dir), stage=1, run_id=f"cache-{cache_mb}", epochs=2,
                        batch_size=4, lora_rank=8, lora_alpha=16, seed=3, vision_cache_mb=cache_mb, **SAMPLING)
        runs[cache_mb] = train_stage(url, cfg)
    plain, lean = runs[0], runs[64]
    assert "vision_encodings" not in plain.metrics
    train_examples = lean.metrics["train_examples"]
    assert lean.metrics["vision_encodings"] == train_examples  # two epochs, each video encoded once
    assert lean.metrics["global_step"] == plain.metrics["global_step"] > 2
    assert lean.metrics["train_loss"] == pytest.approx(plain.metrics["train_loss"], rel=1e-5)

    def losses(run):
        rows = map(json.loads, (run.run_dir / "trainer_log.jsonl").read_text().splitlines())
        return [r["loss"] for r in rows if r["loss"] is not None]

    assert losses(lean) == pytest.approx(losses(plain), rel=1e-5)
    from safetensors.torch import load_file

    a, b = (load_file(str(r.run_dir / "adapter" / "adapter_model.safetensors")) for r in (plain, lean))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-6, msg=key)


def test_the_store_is_off_when_the_vision_side_trains(world_dataset, tiny_model_dir):
    name, _ = world_dataset
    lm = load_vlm(str(tiny_model_dir))
    cfg = TrainSpec(dataset=name, model="m", train_vision_merger=True)
    lm.model = wrap_lora(lm.model, cfg)
    applies, why = lean_step.use_lean_step(lm.model, cfg)
    assert not applies and "vision tower or its merger trains" in why
    off = TrainSpec(dataset=name, model="m", vision_cache_mb=0)
    assert lean_step.use_lean_step(wrap_lora(load_vlm(str(tiny_model_dir)).model, off), off) == (
        False, "vision_cache_mb is 0")


def test_a_full_store_keeps_nothing_more_and_batches_carry_pixels(world_dataset, tiny_model_dir):
    name, url = world_dataset
    examples, _, _ = build_examples(url, name, 1)
    lm = load_vlm(str(tiny_model_dir))
    _, lean = _collators(lm, max_bytes=1)
    assert not lean.store.put("k", {"pooler_output": (torch.zeros(4),)})
    batch = lean(examples[:2])
    assert batch["pixel_values_videos"].shape[0] == int(batch["video_grid_thw"].prod(-1).sum())


def test_a_negative_cache_size_is_refused():
    from rbft_core.errors import ConfigError

    with pytest.raises(ConfigError, match="`vision_cache_mb` must be >= 0"):
        TrainSpec(dataset="d", model="m", vision_cache_mb=-1).validate()

"""The lean training step (issue #17): per-example encodings and stored vision features change how much work a
step does, never what it computes: the same batches, the same loss and gradients, the same trained run."""

import json

import pytest
import torch

from rbft_core.models.loading import load_vlm, sample_spec_for
from rbft_core.models.tiny import TinySpec, build_tiny_model
from rbft_core.specs.training import TrainSpec
from rbft_core.training import lean_step, train_loop
from rbft_core.training.heap import GrowthTrimmer, heap_trimmer
from rbft_core.training.sft_data import VideoSFTCollator, build_examples
from rbft_core.training.train import train_stage, wrap_lora

SAMPLING = dict(num_frames=4, max_pixels=4 * 28 * 28)


def _collators(lm, max_bytes=2**30):
    plain = VideoSFTCollator(lm.processor, sample_spec_for(lm.processor, **SAMPLING))
    return plain, lean_step.LeanCollator(plain, lean_step.FeatureStore(max_bytes), lm.model)


def _pooled(batch) -> torch.Tensor:
    return torch.cat(batch["mm_encoder_outputs"]["video"].pooler_output)


def test_lean_batches_equal_the_batched_processor(world_dataset, tiny_model_dir):
    name, url = world_dataset
    examples, _, _ = build_examples(url, name, 1)
    lm = load_vlm(str(tiny_model_dir))
    plain, lean = _collators(lm)
    picked = [examples[3], examples[0], examples[5], examples[1]]  # rows of different lengths: padding matters
    expected, got = plain(picked), lean(picked)
    assert len({int(m.sum()) for m in expected["attention_mask"]}) > 1
    assert "pixel_values_videos" not in got  # no pixels reach the step: features do
    assert "attention_mask" not in got  # right padding under a causal mask: no real token sees a pad
    mask = expected["attention_mask"]
    assert torch.equal(mask, mask.cummin(dim=1).values)  # the processor's padding is on the right, too
    for key, value in expected.items():
        if key not in ("pixel_values_videos", "attention_mask"):
            assert torch.equal(got[key], value), key
    labels = expected["labels"]
    keep = got["logits_to_keep"]  # the head runs only at the position before each labelled token
    assert keep.shape == labels.shape and not keep[:, -1].any() and labels[:, 0].eq(-100).all()
    assert torch.equal(keep[:, :-1], labels[:, 1:] != -100)
    assert torch.equal(got["shift_labels"], labels[:, 1:][keep[:, :-1]])
    with torch.no_grad():
        whole = lm.model.model.get_video_features(expected["pixel_values_videos"], expected["video_grid_thw"])
    torch.testing.assert_close(_pooled(got), torch.cat(whole.pooler_output), rtol=1e-5, atol=1e-6)
    assert lean.store.encoded == 4 and len(lean.store.items) == 4

    again = lean([picked[2], picked[0]])  # from the store: nothing encoded again, the same features
    assert lean.store.encoded == 4
    torch.testing.assert_close(_pooled(again), torch.cat([whole.pooler_output[2], whole.pooler_output[0]]))


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
def test_stored_features_give_the_plain_loss_and_gradients(family, world_dataset, tmp_path):
    name, url = world_dataset
    examples, _, _ = build_examples(url, name, 1)
    lm = load_vlm(str(build_tiny_model(tmp_path / family, TinySpec(family=family))))
    lm.model = wrap_lora(lm.model, TrainSpec(dataset=name, model="m", lora_rank=4, lora_alpha=8, lora_dropout=0.1))
    assert lean_step.use_lean_step(lm.model, TrainSpec(dataset=name, model="m")) == (True, "")
    lm.model.train()
    plain, lean = _collators(lm)
    batch = [examples[3], examples[0], examples[5]]  # rows of different lengths: the lean batch has no mask
    assert len({int(m.sum()) for m in plain(batch)["attention_mask"]}) > 1

    def loss_and_grads(inputs):
        lm.model.zero_grad()
        torch.manual_seed(7)  # the same LoRA dropout masks: the vision tower draws nothing
        loss = lm.model(**inputs).loss
        loss.backward()
        grads = {n: p.grad.clone() for n, p in lm.model.named_parameters() if p.requires_grad}
        return loss.detach(), grads

    want, want_grads = loss_and_grads(plain(batch))
    for attempt in ("encoded now", "from the store"):
        got, got_grads = loss_and_grads(lean(batch))
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6, msg=attempt)
        for key, grad in want_grads.items():
            torch.testing.assert_close(got_grads[key], grad, rtol=1e-5, atol=1e-6, msg=f"{attempt}: {key}")
    assert lean.store.encoded == 3 and len(lean.store.items) == 3  # each video through the vision tower once


@pytest.mark.parametrize("stage", [1, 2])
def test_a_training_run_is_the_same_with_and_without_the_store(stage, world_dataset, tiny_model_dir, monkeypatch):
    """Stage I (rationale targets) and Stage II (a few label tokens: the head runs at a handful of positions)."""
    name, url = world_dataset
    trims = []
    monkeypatch.setattr(train_loop, "heap_trimmer", lambda: lambda: trims.append(1))
    monkeypatch.setattr(train_loop, "GrowthTrimmer", lambda trim: trim)  # every step asks (growth policy: below)
    runs = {}
    for cache_mb in (0, 64):  # the plain run also leaves the heap alone: trimming changes no number either
        cfg = TrainSpec(dataset=name, model=str(tiny_model_dir), stage=stage, run_id=f"cache-{stage}-{cache_mb}", epochs=2,
                        batch_size=4, lora_rank=8, lora_alpha=16, seed=3, vision_cache_mb=cache_mb,
                        trim_heap=bool(cache_mb), **SAMPLING)
        runs[cache_mb] = train_stage(url, cfg)
    plain, lean = runs[0], runs[64]
    assert len(trims) == lean.metrics["global_step"]  # once after every optimiser step of the trimming run
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


def test_a_full_store_keeps_nothing_and_encodes_every_time(world_dataset, tiny_model_dir):
    name, url = world_dataset
    examples, _, _ = build_examples(url, name, 1)
    lm = load_vlm(str(tiny_model_dir))
    _, lean = _collators(lm, max_bytes=1)
    first, second = lean(examples[:2]), lean(examples[:2])
    assert lean.store.items == {} and lean.store.encoded == 4
    torch.testing.assert_close(_pooled(second), _pooled(first))


def test_a_negative_cache_size_is_refused():
    from rbft_core.errors import ConfigError

    with pytest.raises(ConfigError, match="`vision_cache_mb` must be >= 0"):
        TrainSpec(dataset="d", model="m", vision_cache_mb=-1).validate()


def test_the_c_library_trim_is_found_on_linux():
    import sys

    if sys.platform.startswith("linux"):
        trim = heap_trimmer()
        assert callable(trim)
        trim()  # returns nothing, raises nothing


def test_the_heap_is_trimmed_only_after_it_grew_by_the_margin():
    sizes = iter([100, 150, 160, 171, 120, 150, 180])
    trims = []
    grow = GrowthTrimmer(lambda: trims.append(1), margin=64, rss=lambda: next(sizes))
    for _ in range(3):  # 100 becomes the floor; 150 and 160 are within 64 of it
        grow()
    assert trims == []
    grow()  # 171 > 100 + 64: trim; the floor becomes the size read after it (120)
    assert trims == [1] and grow.floor == 120
    grow(), grow()  # 150, 180: within 64 of the new floor
    assert trims == [1] and grow.trims == 1


def test_a_training_run_is_the_same_with_and_without_frame_prefetching(world_dataset, tiny_model_dir, tmp_path,
                                                                       monkeypatch):
    """The prefetch thread only moves the decoding off the step: same losses and adapter, bit for bit."""
    name, url = world_dataset
    runs = {}
    for prefetch in (False, True):  # each run with its own, empty frame cache
        monkeypatch.setenv("RBFT_DATA_DIR", str(tmp_path / f"data-{prefetch}"))
        cfg = TrainSpec(dataset=name, model=str(tiny_model_dir), stage=1, run_id=f"prefetch-{prefetch}", epochs=1,
                        batch_size=4, lora_rank=8, lora_alpha=16, seed=3, prefetch_frames=prefetch, **SAMPLING)
        runs[prefetch] = train_stage(url, cfg)
    plain, prefetched = runs[False], runs[True]
    assert "frames_prefetched" not in plain.metrics
    assert 0 < prefetched.metrics["frames_prefetched"] <= prefetched.metrics["train_examples"]
    assert prefetched.metrics["train_loss"] == plain.metrics["train_loss"]
    from safetensors.torch import load_file

    a, b = (load_file(str(r.run_dir / "adapter" / "adapter_model.safetensors")) for r in (plain, prefetched))
    assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)

"""Model export: a run's adapter folder, and merged models whose logits equal the PeftModel's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from db import job_queries, queries
from db.engine import session_scope
from rbft_core.errors import JobError, ModelError
from rbft_core.export.model import adapter_chain, export_model

LORA_TARGETS = r".*language_model.*\.(q|k|v|o)_proj"


def _inputs(model_dir: Path):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(str(model_dir))
    frames = np.random.default_rng(0).integers(0, 256, (4, 56, 56, 3), dtype=np.uint8)
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "is this normal?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    meta = {"fps": 4.0, "total_num_frames": 4, "frames_indices": [0, 1, 2, 3]}
    return processor(text=[text], videos=[frames], return_tensors="pt",
                     videos_kwargs={"do_sample_frames": False, "video_metadata": [meta], "cap_pixels_per_frame": True})


def _base(model_dir: Path):
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(str(model_dir)).eval()


def _train_adapter(model, adapter_dir: Path, seed: int):
    """A real peft LoRA with random (non-zero) B matrices, saved as a run's adapter."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=LORA_TARGETS, init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(str(adapter_dir))
    return peft_model.eval()


def _logits(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits


@pytest.fixture
def runs(db_url, tmp_path, tiny_model_dir):
    """stage1 (LoRA on the base) and stage2 (LoRA on base + merged stage1), as Run rows with run dirs."""
    inputs = _inputs(tiny_model_dir)
    stage1 = _train_adapter(_base(tiny_model_dir), tmp_path / "runs" / "s1" / "adapter", seed=1)
    stage1_logits = _logits(stage1, inputs)
    from peft import PeftModel

    inter = PeftModel.from_pretrained(_base(tiny_model_dir), str(tmp_path / "runs" / "s1" / "adapter"))
    stage2 = _train_adapter(inter.merge_and_unload(), tmp_path / "runs" / "s2" / "adapter", seed=2)
    stage2_logits = _logits(stage2, inputs)
    with session_scope(db_url) as s:
        ds = queries.get_or_create_dataset(s, "homes", labels=["normal", "abnormal"])
        common = dict(dataset_id=ds.id, base_model=str(tiny_model_dir), status="succeeded")
        job_queries.upsert_run(s, "s1", kind="stage1", stage=1, run_dir=str(tmp_path / "runs" / "s1"), **common)
        job_queries.upsert_run(s, "s2", kind="stage2", stage=2, parent_run_id="s1",
                               run_dir=str(tmp_path / "runs" / "s2"), **common)
        job_queries.upsert_run(s, "broken", kind="stage1", stage=1, run_dir=str(tmp_path / "runs" / "nope"),
                               **{**common, "status": "failed"})
    return {"inputs": inputs, "s1": stage1_logits, "s2": stage2_logits}


def test_chain_is_oldest_first(db_url, runs):
    assert [link.run_id for link in adapter_chain(db_url, "s2")] == ["s1", "s2"]
    assert [link.run_id for link in adapter_chain(db_url, "s1")] == ["s1"]
    assert (runs["s2"] - runs["s1"]).abs().max() > 1e-3  # the adapters really change the model


def test_base_model_mismatch_ends_the_chain(db_url, runs, tmp_path):
    """A child trained on another folder (e.g. an already merged M_inter) is not merged onto its parent again."""
    with session_scope(db_url) as s:
        job_queries.upsert_run(s, "s2", base_model=str(tmp_path / "m_inter"))
    assert [link.run_id for link in adapter_chain(db_url, "s2")] == ["s2"]


def test_continued_adapter_is_not_merged_twice(db_url, runs):
    with session_scope(db_url) as s:
        job_queries.upsert_run(s, "s2", config={"continue_adapter": True})
    assert [link.run_id for link in adapter_chain(db_url, "s2")] == ["s2"]


@pytest.mark.parametrize("run_id", ["s1", "s2"])
def test_merged_model_loads_and_matches_peft_logits(db_url, runs, tmp_path, run_id):
    from transformers import AutoModelForImageTextToText

    out = tmp_path / f"merged-{run_id}"
    result = export_model(db_url, run_id, out, merged=True, max_shard_size="300KB")
    files = set(result.files)
    # vLLM / transformers layout at top level: config, generation config, shards + index, tokenizer, processor
    assert {"config.json", "generation_config.json", "model.safetensors.index.json", "tokenizer.json",
            "tokenizer_config.json", "rbft_export.json"} <= files
    assert "processor_config.json" in files or "preprocessor_config.json" in files
    shards = sorted(f for f in files if f.endswith(".safetensors"))
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert len(shards) > 1 and set(index["weight_map"].values()) == set(shards)
    assert not any("lora" in key for key in index["weight_map"])
    merged = AutoModelForImageTextToText.from_pretrained(str(out)).eval()
    torch.testing.assert_close(_logits(merged, runs["inputs"]), runs[run_id], atol=1e-5, rtol=0)
    assert json.loads((out / "rbft_export.json").read_text())["chain"][0]["run_id"] == "s1"


def test_adapter_export_copies_adapter_and_parents(db_url, runs, tmp_path):
    result = export_model(db_url, "s2", tmp_path / "adapter")
    files = set(result.files)
    assert {"adapter_config.json", "adapter_model.safetensors", "rbft_export.json",
            "parents/0-s1/adapter_config.json", "parents/0-s1/adapter_model.safetensors"} <= files
    info = json.loads((tmp_path / "adapter" / "rbft_export.json").read_text())
    assert info["base_model"] and "merge each adapter in parents/" in info["how_to_use"]
    with pytest.raises(Exception, match="not empty; pass --overwrite"):
        export_model(db_url, "s2", tmp_path / "adapter")
    export_model(db_url, "s2", tmp_path / "adapter", overwrite=True)


def test_bad_runs_have_clear_errors(db_url, runs, tmp_path):
    with pytest.raises(ModelError, match="run broken has no adapter at .* export a run that finished training"):
        export_model(db_url, "broken", tmp_path / "x")
    with pytest.raises(JobError, match="run 'nope' not found"):
        export_model(db_url, "nope", tmp_path / "x")
    assert not (tmp_path / "x").exists()

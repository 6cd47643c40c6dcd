"""Tiny offline models of each Qwen-VL family load through the same Auto-class path as a real checkpoint."""

import json

import numpy as np
import pytest
import torch

from rbft_core.errors import ConfigError, ModelError
from rbft_core.models.loading import check_model_source, encode_prompts, load_vlm, resolve_dtype
from rbft_core.models.tiny import QWEN_SPECIAL_TOKENS, TinySpec, build_tiny_model
from rbft_core.data.video import SampleSpec, sample_frames
from tests.helpers import make_video


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
def test_tiny_family_builds_loads_and_runs(tmp_path, family, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = build_tiny_model(tmp_path / family, TinySpec(family=family))
    lm = load_vlm(str(folder))
    assert lm.model_type == family
    assert type(lm.model).__name__.lower().replace("_", "").startswith(family.replace("_", ""))
    assert lm.dtype == "float32" and lm.device == "cpu"
    tok = lm.processor.tokenizer
    for special in QWEN_SPECIAL_TOKENS:
        assert tok.convert_tokens_to_ids(special) != tok.unk_token_id
        assert tok.tokenize(special) == [special]  # never split
    vp = lm.processor.video_processor
    factor = vp.patch_size * vp.merge_size
    video = sample_frames(make_video(tmp_path / "v.mp4", num_frames=8, size=(96, 64)),
                          SampleSpec(num_frames=4, size_factor=factor, min_pixels=factor * factor, max_pixels=4 * factor * factor))
    inputs = encode_prompts(lm.processor, ["Describe the video."], [video])
    assert "mm_token_type_ids" in inputs and "video_grid_thw" in inputs
    n_video_tokens = int((inputs["input_ids"] == lm.model.config.video_token_id).sum())
    assert n_video_tokens == int(inputs["video_grid_thw"].prod()) // 4
    with torch.inference_mode():
        logits = lm.model(**inputs).logits
    assert logits.shape[-1] == lm.model.config.text_config.vocab_size
    assert torch.isfinite(logits).all()


def test_tiny_build_is_deterministic(tmp_path):
    a = build_tiny_model(tmp_path / "a", TinySpec(seed=3))
    b = build_tiny_model(tmp_path / "b", TinySpec(seed=3))
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert json.loads((a / "tokenizer.json").read_text()) == json.loads((b / "tokenizer.json").read_text())
    c = build_tiny_model(tmp_path / "c", TinySpec(seed=4))
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()


def test_chat_template_is_qwen_chatml(tiny_model_dir):
    lm = load_vlm(str(tiny_model_dir))
    text = lm.processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Hi"}]}],
        add_generation_prompt=True,
        tokenize=False,
    )
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>Hi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_tiny_spec_validation_names_field():
    with pytest.raises(ConfigError, match="family must be one of"):
        TinySpec(family="llava")
    with pytest.raises(ConfigError, match="divisible by num_heads"):
        TinySpec(hidden_size=66, num_heads=4)


def test_missing_model_folder(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        check_model_source(str(tmp_path / "nope"))


def test_folder_without_config(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="has no config.json"):
        load_vlm(str(tmp_path / "empty"))


def test_text_only_model_is_refused(tmp_path):
    from transformers import Qwen2Config

    Qwen2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, vocab_size=300).save_pretrained(
        tmp_path / "llm"
    )
    with pytest.raises(ModelError, match="qwen2 model, not a vision-language model"):
        load_vlm(str(tmp_path / "llm"))


def test_uncached_hub_id_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="could not load the config of model 'no-such-org/no-such-model'"):
        check_model_source("no-such-org/no-such-model")


def test_dtype_choice():
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("bfloat16", "cpu") == torch.bfloat16
    with pytest.raises(ConfigError, match="dtype must be one of"):
        resolve_dtype("fp8", "cpu")


def test_bad_attention_implementation(tiny_model_dir):
    with pytest.raises(ConfigError, match="attn_implementation must be one of"):
        load_vlm(str(tiny_model_dir), attn_implementation="magic")


def test_eager_and_sdpa_agree(tiny_model_dir, tmp_path):
    video = sample_frames(make_video(tmp_path / "v.mp4", num_frames=4, size=(64, 64)), SampleSpec(num_frames=4))
    outs = []
    for impl in ("sdpa", "eager"):
        lm = load_vlm(str(tiny_model_dir), attn_implementation=impl)
        with torch.inference_mode():
            outs.append(lm.model(**encode_prompts(lm.processor, ["x"], [video])).logits)
    assert torch.allclose(outs[0], outs[1], atol=1e-4)

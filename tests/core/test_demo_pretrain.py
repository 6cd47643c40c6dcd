"""The demo base model's pre-training: the grounding heads reach the vision tower and are not saved."""

from __future__ import annotations

import random

import pytest

from rbft_core.errors import ConfigError


def _tiny(grounding_weight: float):
    from rbft_core.demo.pretrain import PretrainConfig

    return PretrainConfig(num_clips=8, heldout_clips=1, steps=2, qa_first_steps=1, batch_size=4, hidden_size=64,
                          num_layers=1, num_heads=4, intermediate_size=64, vision_hidden_size=32, vision_depth=1,
                          vocab_size=400, grounding_weight=grounding_weight)


def _pretrain(folder, cfg):
    from rbft_core.demo.pretrain import pretrain_base_model

    return pretrain_base_model(folder, cfg, world_frames=8, num_frames=4, size=(112, 84), fps=8.0)


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.mark.slow
def test_grounding_heads_train_the_vision_tower_and_leave_a_plain_model_folder(tmp_path):
    from transformers import AutoModelForImageTextToText

    _pretrain(tmp_path / "plain", _tiny(0.0))
    _pretrain(tmp_path / "grounded", _tiny(1.0))
    plain, grounded = _weights(tmp_path / "plain"), _weights(tmp_path / "grounded")
    assert plain.keys() == grounded.keys()  # no head is saved: the same architecture, key for key
    vision = [k for k in plain if "visual" in k]
    assert vision and any(not plain[k].equal(grounded[k]) for k in vision)  # the heads' loss reached the tower
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "grounded")
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"


def test_every_caption_clip_has_a_class_in_each_grounding_head():
    from rbft_core.demo.pretrain import _GROUNDING
    from rbft_core.demo.world import sample_caption_spec, sample_task_spec

    rng = random.Random(0)
    specs = [sample_caption_spec(rng, f"c{i}") for i in range(400)]
    specs += [sample_task_spec(rng, f"t{i}") for i in range(100)]
    for name, (value, classes) in _GROUNDING.items():
        seen = {value(spec) for spec in specs}
        assert seen <= set(classes), f"{name}: {seen - set(classes)} have no class"
        assert len(seen) == len(classes), f"{name}: a class no clip can have"


def test_grounding_weight_must_not_be_negative():
    with pytest.raises(ConfigError, match="grounding_weight must be >= 0"):
        _tiny(-0.5)

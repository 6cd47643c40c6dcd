"""Parsing model output into a dataset's dimensions (the paper's four here), and the Stage-I target format."""

import json

import pytest

from rbft_core.errors import ConfigError
from rbft_core.models.prompts import (
    DEFAULT_DIMENSIONS,
    PRESETS,
    RATIONALE_PROMPT_VERSION,
    Preset,
    classification_prompt,
    get_preset,
    preset_from_record,
    rationale_prompt,
)
from rbft_core.models.rationale import Rationale, contradicts_label, parse_rationale, render_target

DIMS = DEFAULT_DIMENSIONS
NAMES = tuple(d.name for d in DIMS)
FULL = {"subjects": "a bear", "attributes": "large, dark brown", "actions": "climbs the steps", "scenes": "porch, night"}


def test_strict_json():
    parsed = parse_rationale(json.dumps({**FULL, "conclusion": "abnormal: wildlife"}), DIMS)
    assert parsed.status == "ok"
    assert parsed.rationale["subjects"] == "a bear"
    assert parsed.rationale.conclusion == "abnormal: wildlife"


def test_json_in_code_fence_with_chatter():
    text = "Sure! Here is my analysis:\n```json\n" + json.dumps(FULL, indent=2) + "\n```\nHope this helps."
    parsed = parse_rationale(text, DIMS)
    assert parsed.status == "ok"
    assert parsed.rationale["scenes"] == "porch, night"
    assert parsed.raw_text == text  # raw text is never dropped


def test_key_lines_with_markdown_and_continuations():
    text = "**Subjects**: a courier\n**Attributes:** brown uniform,\n  carrying a box\n- Actions - leaves the box\nScenes: porch"
    parsed = parse_rationale(text, DIMS)
    assert parsed.status == "ok"
    assert parsed.rationale["attributes"] == "brown uniform, carrying a box"
    assert parsed.rationale["actions"] == "leaves the box"


def test_truncated_json_is_partial():
    text = '{"subjects": "two deer", "attributes": "small, brown", "actions": "walking acr'
    parsed = parse_rationale(text, DIMS)
    assert parsed.status == "partial"
    assert parsed.rationale["subjects"] == "two deer"
    assert parsed.rationale["actions"] == "walking acr"
    assert parsed.missing == ("scenes",)


def test_lists_and_case_insensitive_keys():
    parsed = parse_rationale(json.dumps({"Subjects": ["a dog", "a cat"], "ATTRIBUTES": "small", "actions": "", "scenes": "yard"}),
                             DIMS)
    assert parsed.rationale["subjects"] == "a dog; a cat"
    assert parsed.status == "partial" and parsed.missing == ("actions",)


def test_gibberish_fails_but_keeps_raw():
    parsed = parse_rationale("wn gardenW0 К several", DIMS)
    assert parsed.status == "failed"
    assert parsed.raw_text == "wn gardenW0 К several"
    assert parsed.to_fields()["parse_status"] == "failed"


def test_render_target_round_trip_and_format():
    r = Rationale({"subjects": "un ours", "attributes": "grand, « brun »", "actions": "grimpe",
                   "scenes": "porche, nuit"})
    text = render_target(r, NAMES)
    assert "\n" not in text and "«" in text  # one line, no ASCII escaping
    assert list(json.loads(text)) == ["subjects", "attributes", "actions", "scenes"]
    assert parse_rationale(text, DIMS).rationale == r


@pytest.mark.parametrize(
    ("conclusion", "label", "expected"),
    [
        ("This is abnormal: a bear on the porch.", "normal", True),
        ("This is abnormal: a bear on the porch.", "abnormal", False),
        ("Everything looks normal.", "abnormal", True),
        ("Everything looks normal.", "normal", False),
        ("", "normal", False),
        ("a bear", "normal", False),
    ],
)
def test_contradicts_label_whole_words(conclusion, label, expected):
    assert contradicts_label(conclusion, label, ("normal", "abnormal")) is expected


def test_rationale_prompt_with_and_without_hint():
    preset = get_preset("smart-home")
    hinted = rationale_prompt(preset, "abnormal")
    plain = rationale_prompt(preset)
    assert "Smart Home Security Expert" in hinted
    assert 'The correct label for this video is "abnormal"' in hinted
    assert "correct label" not in plain
    for dim in ("subjects", "attributes", "actions", "scenes"):
        assert f"- {dim}:" in plain
    assert RATIONALE_PROMPT_VERSION.startswith("rationale-")


def test_classification_prompt_lists_labels():
    text = classification_prompt(PRESETS["moderation"])
    assert "Content Moderation Expert" in text
    assert text.endswith("hateful, offensive, normal.")


def test_preset_validation_names_the_problem():
    with pytest.raises(ConfigError, match="at least two labels"):
        Preset(name="x", role="Expert", task="t", labels=("only",))
    with pytest.raises(ConfigError, match="duplicate labels"):
        Preset(name="x", role="Expert", task="t", labels=("a", "A"))
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        get_preset("nope")


def test_custom_preset_from_record():
    preset = preset_from_record("custom", role="Weld Inspector", labels=["ok", "defect"], criteria="cracks")
    assert preset.role == "Weld Inspector" and preset.labels == ("ok", "defect")
    overridden = preset_from_record("smart-home", labels=["fine", "alarm"])
    assert overridden.role == "Smart Home Security Expert" and overridden.labels == ("fine", "alarm")

"""Expert presets and the prompts built from them, versioned.

What reviewers and the model are asked is data, not code: a ``Preset`` holds the expert role, the
task, the label set and the decision criteria; datasets store their own copy (custom presets live in
the DB). Each prompt family carries a version string recorded with every suggestion and run, so a
change of wording never silently mixes with older outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional

from rbft_core.errors import ConfigError

__all__ = [
    "Preset",
    "PRESETS",
    "RATIONALE_PROMPT_VERSION",
    "CLASSIFY_PROMPT_VERSION",
    "DIMENSIONS",
    "get_preset",
    "preset_from_record",
    "rationale_prompt",
    "classification_prompt",
]

# Bump when the wording of a prompt changes; suggestions and runs record the version they used.
RATIONALE_PROMPT_VERSION = "rationale-v1"
CLASSIFY_PROMPT_VERSION = "classify-v1"

DIMENSIONS: tuple[str, ...] = ("subjects", "attributes", "actions", "scenes")

_DIMENSION_HINTS = {
    "subjects": "who or what appears (people, animals, vehicles, objects)",
    "attributes": "their size, colour, clothing, count and state",
    "actions": "what they do, how they interact, and in what order",
    "scenes": "the place, lighting, time of day and camera view",
}


@dataclass(frozen=True)
class Preset:
    """An expert persona and classification task.

    Args:
        name: short identifier (``smart-home``, ``moderation`` or a custom name).
        role: the expert the model is asked to be ("Smart Home Security Expert").
        task: one sentence that states the decision.
        labels: the label words, in a fixed order; each a single lower-case word or short phrase.
        criteria: what separates the labels, in the domain expert's words.
        contexts: optional areas the expert should keep in mind.
    """

    name: str
    role: str
    task: str
    labels: tuple[str, ...]
    criteria: str = ""
    contexts: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        labels = tuple(str(label).strip().lower() for label in self.labels)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "contexts", tuple(self.contexts))
        if len(labels) < 2:
            raise ConfigError(f"preset {self.name!r} needs at least two labels, got {list(labels)}")
        if len(set(labels)) != len(labels):
            raise ConfigError(f"preset {self.name!r} has duplicate labels: {list(labels)}")
        if any(not label for label in labels):
            raise ConfigError(f"preset {self.name!r} has an empty label")
        if not self.role.strip():
            raise ConfigError(f"preset {self.name!r} needs a role (e.g. 'Smart Home Security Expert')")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "task": self.task,
            "labels": list(self.labels),
            "criteria": self.criteria,
            "contexts": list(self.contexts),
        }


PRESETS: dict[str, Preset] = {
    "smart-home": Preset(
        name="smart-home",
        role="Smart Home Security Expert",
        task="Decide whether the home-camera video shows normal activity or an abnormal event.",
        labels=("normal", "abnormal"),
        criteria=(
            "Abnormal: events that threaten the safety, security or well-being of people, pets or property "
            "(intruders, package theft, wildlife at the door, a child or senior in danger, fire, flooding). "
            "Normal: everyday activity of residents, visitors, couriers and pets."
        ),
        contexts=(
            "security and access",
            "wildlife",
            "pets",
            "children and babies",
            "senior care",
            "household safety",
        ),
    ),
    "moderation": Preset(
        name="moderation",
        role="Content Moderation Expert",
        task="Decide whether the video is hateful, offensive or normal.",
        labels=("hateful", "offensive", "normal"),
        criteria=(
            "Hateful: attacks or demeans people for a protected attribute (race, religion, gender, "
            "disability, nationality, sexual orientation). Offensive: insulting, vulgar or upsetting but "
            "not targeting a protected group. Normal: neither."
        ),
        contexts=("speech and captions", "symbols and gestures", "targets and victims"),
    ),
}


def get_preset(name: str) -> Preset:
    """Return a built-in preset by name, with a message listing the choices when unknown."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown preset {name!r}; choose one of {', '.join(PRESETS)} or 'custom' with --labels"
        ) from None


def preset_from_record(
    name: str, *, role: str = "", task: str = "", labels: Optional[list[str]] = None, criteria: str = ""
) -> Preset:
    """Build the preset a dataset uses: a built-in one with the dataset's overrides, or a custom one."""
    base = PRESETS.get(name)
    if base is None:
        return Preset(
            name=name or "custom",
            role=role or "Domain Expert",
            task=task or "Classify the video.",
            labels=tuple(labels or ()),
            criteria=criteria,
        )
    return replace(
        base,
        role=role or base.role,
        task=task or base.task,
        labels=tuple(labels) if labels else base.labels,
        criteria=criteria or base.criteria,
    )


def rationale_prompt(preset: Preset, label: Optional[str] = None) -> str:
    """The Stage-I prompt: describe the video in the four dimensions, as JSON.

    With ``label`` (the authors' default), the model is told the ground truth and asked to explain
    the evidence for it; without, it has to find the evidence itself.
    """
    lines = [f"You are a {preset.role}. {preset.task}".strip()]
    if preset.contexts:
        lines.append("Keep in mind: " + ", ".join(preset.contexts) + ".")
    lines.append("Watch the video carefully and describe what matters for this decision in four dimensions:")
    lines += [f"- {dim}: {_DIMENSION_HINTS[dim]}" for dim in DIMENSIONS]
    if label is not None:
        lines.append(f'The correct label for this video is "{label}". Describe the visual evidence for it.')
    lines.append(
        'Answer with JSON only: {"subjects": "...", "attributes": "...", "actions": "...", "scenes": "...", '
        '"conclusion": "one sentence naming the label"}'
    )
    return "\n".join(lines)


def classification_prompt(preset: Preset) -> str:
    """The Stage-II prompt: one label word as the answer."""
    lines = [f"You are a {preset.role}. {preset.task}".strip()]
    if preset.criteria:
        lines.append(preset.criteria)
    lines.append("Answer with exactly one word from: " + ", ".join(preset.labels) + ".")
    return "\n".join(lines)

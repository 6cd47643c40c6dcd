"""Expert presets and the prompts built from them, versioned.

What reviewers and the model are asked is data, not code: a ``Preset`` holds the expert role, the task, the
label set, the decision criteria and the rationale dimensions; datasets store their own copy (custom presets live
in the DB). Each prompt family carries a version string recorded with every suggestion and run, so a change of
wording never silently mixes with older outputs.

Dimensions are data too: a ``Dimension`` is a name (a JSON key and an export column: lower case, digits and
``_``), a one-line description the prompt shows and whether a rationale must fill it. The default is the paper's
four (subjects, attributes, actions, scenes). A dataset stores its own (``datasets.dimensions``) and every part
of the app reads them from there through ``dataset_preset``: the prompt, the parser, the Stage-I target, the
review form, the diff and history, the export columns and the readiness check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Optional

from rbft_core.errors import ConfigError

__all__ = [
    "Dimension",
    "Preset",
    "PRESETS",
    "RATIONALE_PROMPT_VERSION",
    "CLASSIFY_PROMPT_VERSION",
    "DEFAULT_DIMENSIONS",
    "MAX_DIMENSIONS",
    "RESERVED_NAMES",
    "dimensions_from_records",
    "parse_dimensions",
    "dimensions_text",
    "get_preset",
    "preset_from_record",
    "dataset_preset",
    "rationale_prompt",
    "classification_prompt",
]

# Bump when the wording of a prompt changes; suggestions and runs record the version they used. The rationale
# prompt of the paper's four dimensions is word for word what it was before dimensions became data.
RATIONALE_PROMPT_VERSION = "rationale-v1"
CLASSIFY_PROMPT_VERSION = "classify-v1"

# The review form has this many text boxes (Gradio components are fixed when the page is built).
MAX_DIMENSIONS = 8
MAX_DESCRIPTION_CHARS = 200
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# Keys that sit beside the dimensions in the records the app passes around (a suggestion, a review's snapshot,
# its revisions) or in the model's answer: a dimension may not take one of these names.
RESERVED_NAMES = frozenset({
    "conclusion", "label", "status", "excluded", "reviewer", "version", "suggestion_id", "updated_at", "id", "note",
    "refused", "model_id", "prompt_version", "raw_text", "parse_status", "label_hint", "mean_logprob", "gen_params",
    "doubt_score", "doubt_reason", "flags", "flag_bits", "dimension_logprobs", "created_at", "video_id", "rationale",
})
_COUNT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight")
_EXAMPLE = "subjects: who or what appears; speech?: on-screen text and speech"


@dataclass(frozen=True)
class Dimension:
    """One rationale dimension.

    Args:
        name: the key in the model's JSON answer, the Stage-I target and the database, and the export column
            suffix (``suggestion_<name>``): lower case letters, digits and ``_``, starting with a letter, at most 40.
        description: one line the prompt and the review form show ("who or what appears ...").
        required: a rationale without it is incomplete (the parse is partial, the readiness check counts it);
            an optional one may stay empty (e.g. speech in a silent clip).
    """

    name: str
    description: str
    required: bool = True

    def __post_init__(self) -> None:
        name, description = str(self.name or "").strip(), " ".join(str(self.description or "").split())
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "description", description)
        if not _NAME.match(name):
            raise ConfigError(f"dimension name {name!r} must be 1-40 lower-case letters, digits or '_', starting with a "
                              "letter (it becomes a JSON key and an export column), e.g. 'speech' or 'on_screen_text'")
        if name in RESERVED_NAMES:
            raise ConfigError(f"dimension name {name!r} is reserved (the app stores {name!r} beside the dimensions); "
                              f"choose another, e.g. '{name}_text'")
        if not description:
            raise ConfigError(f"dimension {name!r} needs a one-line description (the prompt shows it), e.g. "
                              f"'{name}: on-screen text and speech'")
        if len(description) > MAX_DESCRIPTION_CHARS:
            raise ConfigError(f"the description of dimension {name!r} is {len(description)} characters; keep it to one "
                              f"line of at most {MAX_DESCRIPTION_CHARS}")
        if not isinstance(self.required, bool):
            raise ConfigError(f"`required` of dimension {name!r} must be true or false, got {self.required!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "required": self.required}


DEFAULT_DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("subjects", "who or what appears (people, animals, vehicles, objects)"),
    Dimension("attributes", "their size, colour, clothing, count and state"),
    Dimension("actions", "what they do, how they interact, and in what order"),
    Dimension("scenes", "the place, lighting, time of day and camera view"),
)


def _check_set(dimensions: tuple[Dimension, ...], owner: str) -> tuple[Dimension, ...]:
    if not dimensions:
        raise ConfigError(f"{owner} defines no rationale dimensions; give at least one as `name: description` (e.g. "
                          f"'{_EXAMPLE}'), or leave the dimensions out for the paper's four "
                          f"({', '.join(d.name for d in DEFAULT_DIMENSIONS)})")
    if len(dimensions) > MAX_DIMENSIONS:
        raise ConfigError(f"{owner} defines {len(dimensions)} rationale dimensions; the review form holds at most "
                          f"{MAX_DIMENSIONS}: merge some")
    names = [d.name for d in dimensions]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"{owner} names the dimension(s) {', '.join(twice)} more than once; each name once")
    if not any(d.required for d in dimensions):
        raise ConfigError(f"{owner} has no required dimension ({', '.join(names)} are all optional); mark at least "
                          "one required (drop the '?' after its name): a rationale needs some evidence")
    return dimensions


def dimensions_from_records(records: Optional[Iterable[Any]], owner: str = "the preset") -> tuple[Dimension, ...]:
    """Dimensions from stored records (``[{name, description, required}]``: a dataset row, an export manifest, a
    spec) or ``Dimension`` objects, checked as a set; ``owner`` names what holds them in any refusal."""
    if records is None:
        raise ConfigError(f"{owner} has no rationale dimensions recorded; define them with "
                          f"`rbft dimensions DATASET --set '{_EXAMPLE}'`")
    if isinstance(records, (str, bytes)) or not isinstance(records, Iterable):
        raise ConfigError(f"{owner}'s dimensions must be a list of {{name, description, required}}, got {records!r}")
    out = []
    for record in records:
        if isinstance(record, Dimension):
            out.append(record)
        elif isinstance(record, dict) and set(record) <= {"name", "description", "required"}:
            out.append(Dimension(record.get("name", ""), record.get("description", ""),
                                 record.get("required", True)))
        else:
            raise ConfigError(f"{owner} has a dimension {record!r}; each is {{name, description, required}}")
    return _check_set(tuple(out), owner)


def parse_dimensions(text: str, owner: str = "the preset") -> Optional[tuple[Dimension, ...]]:
    """Dimensions written as text: one ``name: description`` per line (or ``;``-separated on one line), a ``?``
    after the name for an optional one (``speech?: on-screen text and speech``). Empty text: None (the preset's own
    dimensions); text that holds no dimension is refused like a preset without dimensions."""
    text = (text or "").strip()
    if not text:
        return None
    parts = text.splitlines() if "\n" in text else text.split(";")
    out = []
    for part in (p.strip() for p in parts):
        if not part or part.startswith("#"):
            continue
        name, sep, description = part.partition(":")
        if not sep:
            raise ConfigError(f"dimension {part!r} of {owner} needs a description after a colon, e.g. "
                              f"'{part.rstrip('?')}: what it describes'")
        name = name.strip()
        optional = name.endswith("?")
        out.append(Dimension(name.rstrip("?").strip(), description, required=not optional))
    return _check_set(tuple(out), owner)


def dimensions_text(dimensions: Iterable[Dimension], separator: str = "\n") -> str:
    """The text ``parse_dimensions`` reads back (one dimension per line, or ``"; "`` for one line)."""
    return separator.join(f"{d.name}{'' if d.required else '?'}: {d.description}" for d in dimensions)


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
        dimensions: the rationale dimensions, in the order the prompt, the target and the form use (default: the
            paper's four).
    """

    name: str
    role: str
    task: str
    labels: tuple[str, ...]
    criteria: str = ""
    contexts: tuple[str, ...] = field(default_factory=tuple)
    dimensions: tuple[Dimension, ...] = DEFAULT_DIMENSIONS

    def __post_init__(self) -> None:
        labels = tuple(str(label).strip().lower() for label in self.labels)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "contexts", tuple(self.contexts))
        object.__setattr__(self, "dimensions", dimensions_from_records(self.dimensions, f"preset {self.name!r}"))
        if len(labels) < 2:
            raise ConfigError(f"preset {self.name!r} needs at least two labels, got {list(labels)}")
        if len(set(labels)) != len(labels):
            raise ConfigError(f"preset {self.name!r} has duplicate labels: {list(labels)}")
        if any(not label for label in labels):
            raise ConfigError(f"preset {self.name!r} has an empty label")
        if not self.role.strip():
            raise ConfigError(f"preset {self.name!r} needs a role (e.g. 'Smart Home Security Expert')")

    @property
    def dimension_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "task": self.task,
            "labels": list(self.labels),
            "criteria": self.criteria,
            "contexts": list(self.contexts),
            "dimensions": [d.to_dict() for d in self.dimensions],
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
    name: str, *, role: str = "", task: str = "", labels: Optional[list[str]] = None, criteria: str = "",
    dimensions: Optional[Iterable[Any]] = None,
) -> Preset:
    """Build the preset a dataset uses: a built-in one with the dataset's overrides, or a custom one.

    ``dimensions`` (records or ``Dimension`` objects; None: the built-in preset's, else the paper's four)."""
    base = PRESETS.get(name)
    dims = DEFAULT_DIMENSIONS if dimensions is None and base is None else (
        base.dimensions if dimensions is None else dimensions_from_records(dimensions, f"preset {name!r}"))
    if base is None:
        return Preset(
            name=name or "custom",
            role=role or "Domain Expert",
            task=task or "Classify the video.",
            labels=tuple(labels or ()),
            criteria=criteria,
            dimensions=dims,
        )
    return replace(
        base,
        role=role or base.role,
        task=task or base.task,
        labels=tuple(labels) if labels else base.labels,
        criteria=criteria or base.criteria,
        dimensions=dims,
    )


def dataset_preset(dataset: Any) -> Preset:
    """The preset of a dataset row (``db.models.Dataset`` or anything with its attributes), its dimensions
    included: the one way every module rebuilds what a dataset asks of the model and of its reviewers."""
    dims = dimensions_from_records(getattr(dataset, "dimensions", None), f"dataset {dataset.name!r}")
    return preset_from_record(dataset.preset, role=dataset.role, task=dataset.task, labels=dataset.labels,
                              criteria=dataset.criteria, dimensions=dims)


def _count(n: int) -> str:
    return _COUNT_WORDS[n] if n < len(_COUNT_WORDS) else str(n)


def rationale_prompt(preset: Preset, label: Optional[str] = None) -> str:
    """The Stage-I prompt: describe the video in the preset's dimensions, as JSON.

    With ``label`` (the authors' default), the model is told the ground truth and asked to explain
    the evidence for it; without, it has to find the evidence itself. An optional dimension says so, so the
    model may leave it empty; the JSON template lists every dimension by name, in order.
    """
    dims = preset.dimensions
    lines = [f"You are a {preset.role}. {preset.task}".strip()]
    if preset.contexts:
        lines.append("Keep in mind: " + ", ".join(preset.contexts) + ".")
    plural = "s" if len(dims) != 1 else ""
    lines.append(f"Watch the video carefully and describe what matters for this decision in {_count(len(dims))} "
                 f"dimension{plural}:")
    lines += [f"- {d.name}{'' if d.required else ' (optional: leave it empty when there is none)'}: {d.description}"
              for d in dims]
    if label is not None:
        lines.append(f'The correct label for this video is "{label}". Describe the visual evidence for it.')
    template = ", ".join(f'"{d.name}": "..."' for d in dims)
    lines.append(f'Answer with JSON only: {{{template}, "conclusion": "one sentence naming the label"}}')
    return "\n".join(lines)


def classification_prompt(preset: Preset) -> str:
    """The Stage-II prompt: one label word as the answer."""
    lines = [f"You are a {preset.role}. {preset.task}".strip()]
    if preset.criteria:
        lines.append(preset.criteria)
    lines.append("Answer with exactly one word from: " + ", ".join(preset.labels) + ".")
    return "\n".join(lines)

"""The demo world's scene graphs: who is where doing what, the domain rules that label a clip, the split.

Two distributions come from the same vocabulary:

- the **home-security task** (``sample_task_spec``): porch, living room, driveway, backyard; labelled
  normal/abnormal by rules close to SmartHome-Bench's categories (wildlife, child safety, security,
  deliveries, pets), balanced by rejection sampling;
- the **generic caption corpus** the base model is pre-trained on (``sample_caption_spec``): mostly other
  places (garden, street, park, kitchen), daytime-heavy, any subject doing anything, and no label at all.

A clip's scene graph renders to the four rationale fields (``ClipSpec.scene_graph``) in plain words, the
same words the base model learns to write.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, Optional

__all__ = [
    "ClipSpec", "Rule", "RULES", "HOME_SCENES", "OTHER_SCENES", "SUBJECTS", "ACTIONS", "CLOTHING", "SIZES",
    "WILDLIFE", "label_for", "rule_for", "sample_clip_spec", "sample_task_spec", "sample_caption_spec",
    "stratified_split",
]

HOME_SCENES = ("porch", "living room", "driveway", "backyard")
OTHER_SCENES = ("garden", "street", "park", "kitchen")  # only in the pre-training corpus
SUBJECTS = ("person", "child", "courier", "dog", "cat", "bear", "deer", "raccoon")
PEOPLE = {"person", "child", "courier"}
WILDLIFE = {"bear", "deer", "raccoon"}
ACTIONS = (
    "walking by",
    "approaching the door",
    "entering",
    "running",
    "climbing",
    "lying still",
    "picking up a package",
    "leaving a package",
)
ANIMAL_ACTIONS = ("walking by", "approaching the door", "running", "climbing", "lying still")
COURIER_ACTIONS = ("leaving a package", "approaching the door", "walking by")
CLOTHING = ("a red jacket", "a blue hoodie", "a grey coat", "a yellow raincoat", "a green sweater")
COURIER_CLOTHING = "a brown uniform"
SIZES = ("small", "medium", "large")
SUBJECT_WORDS = {
    "person": "a person", "child": "a child", "courier": "a delivery courier with a box", "dog": "a dog",
    "cat": "a cat", "bear": "a bear", "deer": "a deer", "raccoon": "a raccoon",
}
PLURAL_WORDS = {"dog": "two dogs", "deer": "two deer", "cat": "two cats"}
ANIMAL_LOOK = {"dog": "brown fur", "cat": "white fur", "bear": "dark fur", "deer": "tan fur", "raccoon": "striped tail"}


@dataclass
class ClipSpec:
    """The scene graph of one clip (what a perfect rationale would say) and, for task clips, its label."""

    clip_id: str
    scene: str
    night: bool
    subject: str
    action: str
    size: str
    clothing: str = ""
    count: int = 1
    companion: str = ""  # an adult with the child, or none
    package: bool = False
    label: str = ""
    reason: str = ""
    category: str = ""
    seed: int = 0
    # per-frame critical-object box in pixels [x0, y0, x1, y1]; [] where it is out of the frame
    boxes: list[list[float]] = field(default_factory=list)

    def subjects_text(self) -> str:
        who = PLURAL_WORDS[self.subject] if self.count > 1 and self.subject in PLURAL_WORDS else SUBJECT_WORDS[self.subject]
        return who + (" and an adult" if self.companion else "")

    def scene_graph(self) -> dict[str, str]:
        """The four rationale fields in plain words (the Stage-I target a perfect expert would write)."""
        look = self.clothing.removeprefix("a ").removeprefix("an ") if self.clothing else ANIMAL_LOOK.get(self.subject, "")
        attrs = [self.size, look] + (["a package is visible"] if self.package else [])
        return {
            "subjects": self.subjects_text(),
            "attributes": ", ".join(a for a in attrs if a),
            "actions": self.action,
            "scenes": f"{self.scene}, {'at night' if self.night else 'during the day'}",
        }


@dataclass(frozen=True)
class Rule:
    """One domain rule: the first rule whose ``test`` holds labels the clip."""

    category: str
    label: str
    reason: str
    test: Callable[[ClipSpec], bool]


# Close to SmartHome-Bench's categories; order matters (first match wins).
RULES: tuple[Rule, ...] = (
    Rule("wildlife", "abnormal", "wildlife on the porch at night",
         lambda s: s.subject in WILDLIFE and s.scene == "porch" and s.night),
    Rule("wildlife", "abnormal", "a bear near the house", lambda s: s.subject == "bear"),
    Rule("wildlife", "abnormal", "a wild animal inside the house",
         lambda s: s.subject in WILDLIFE and s.scene == "living room"),
    Rule("child safety", "abnormal", "a child near the pool alone",
         lambda s: s.subject == "child" and s.scene == "backyard" and not s.companion),
    Rule("child safety", "abnormal", "a child climbing", lambda s: s.subject == "child" and s.action == "climbing"),
    Rule("security", "abnormal", "a stranger taking a package",
         lambda s: s.subject == "person" and s.action == "picking up a package"),
    Rule("security", "abnormal", "a person climbing into the property",
         lambda s: s.subject == "person" and s.action == "climbing"),
    Rule("security", "abnormal", "a stranger entering at night",
         lambda s: s.subject == "person" and s.night and s.action == "entering"),
    Rule("deliveries", "normal", "a courier leaving a package",
         lambda s: s.subject == "courier" and s.action == "leaving a package"),
    Rule("pets", "normal", "the family pet at home", lambda s: s.subject in {"dog", "cat"}),
    Rule("wildlife", "normal", "wildlife passing by outside", lambda s: s.subject in WILDLIFE),
    Rule("everyday", "normal", "ordinary activity", lambda s: True),
)


def rule_for(spec: ClipSpec) -> Rule:
    return next(rule for rule in RULES if rule.test(spec))


def label_for(spec: ClipSpec) -> tuple[str, str]:
    """Domain rules close to SmartHome-Bench's categories: (label, reason)."""
    rule = rule_for(spec)
    return rule.label, rule.reason


def _draw(rng: random.Random, clip_id: str, scenes, night_share: float) -> ClipSpec:
    subject = rng.choice(SUBJECTS)
    if subject == "courier":
        action = rng.choice(COURIER_ACTIONS)
    elif subject in PEOPLE:
        action = rng.choice(ACTIONS)
    else:
        action = rng.choice(ANIMAL_ACTIONS)
    scene = rng.choice(scenes)
    return ClipSpec(
        clip_id=clip_id,
        scene=scene,
        night=rng.random() < night_share,
        subject=subject,
        action=action,
        size=rng.choice(SIZES),
        clothing=COURIER_CLOTHING if subject == "courier" else rng.choice(CLOTHING) if subject in PEOPLE else "",
        count=2 if subject in PLURAL_WORDS and rng.random() < 0.25 else 1,
        companion="a parent" if subject == "child" and rng.random() < 0.5 else "",
        package=action in {"picking up a package", "leaving a package"} or (scene == "porch" and rng.random() < 0.3),
        seed=rng.randrange(2**31),
    )


def sample_task_spec(rng: random.Random, clip_id: str, *, abnormal: Optional[bool] = None) -> ClipSpec:
    """A home-security clip; ``abnormal`` forces the label by rejection sampling (balanced datasets)."""
    while True:
        spec = _draw(rng, clip_id, HOME_SCENES, 0.45)
        rule = rule_for(spec)
        spec.label, spec.reason, spec.category = rule.label, rule.reason, rule.category
        if abnormal is None or (spec.label == "abnormal") == abnormal:
            return spec


sample_clip_spec = sample_task_spec  # the name older callers use


def sample_caption_spec(rng: random.Random, clip_id: str) -> ClipSpec:
    """A clip of the generic pre-training corpus: mostly other places, mostly daytime, no label."""
    scenes = OTHER_SCENES if rng.random() < 0.7 else HOME_SCENES
    return _draw(rng, clip_id, scenes, 0.2)


def stratified_split(specs: list[ClipSpec], seed: int, test_fraction: float) -> dict[str, str]:
    """clip id -> "train" | "test": per label, a seeded shuffle puts round(n * test_fraction) into test."""
    by_label: dict[str, list[str]] = {}
    for spec in specs:
        by_label.setdefault(spec.label, []).append(spec.clip_id)
    out = {}
    for label in sorted(by_label):
        ids = sorted(by_label[label])
        random.Random(f"{seed}:{label}").shuffle(ids)
        n_test = round(len(ids) * test_fraction)
        out.update({cid: "test" if i < n_test else "train" for i, cid in enumerate(ids)})
    return out

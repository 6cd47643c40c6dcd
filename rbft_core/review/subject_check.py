"""Orphan attributes and actions: a description attached to a subject that the subjects dimension never names.

"subjects: a dog", "attributes: medium, red jacket" describes a jacket on nobody the rationale lists: one of the two
is wrong (often the subject). The check reads two kinds of evidence in the attributes and actions:

- **subject nouns** ("the man", "a cat"): each must be covered by a subject of the same kind. People are one kind
  (man, adult, courier and child may all be the person listed); animals are kinds by species, with "animal",
  "pet" and "wildlife" covering any of them; vehicles are one kind.
- **cues** that belong to one group only: clothing to people, fur and tails to animals, headlights to vehicles,
  leaving or picking up a package to people.

Subjects that name nothing the lexicon knows ("a shape") are not judged: the check stays quiet rather than guess.
The lexicon is plain English common sense, not the demo world's vocabulary; extend ``KINDS`` / ``CUES`` for a
domain with other subjects.
"""

from __future__ import annotations

from typing import Mapping, Optional

from rbft_core.review.text_checks import words

__all__ = ["KINDS", "CUES", "subject_kinds", "orphan_reasons"]

_PEOPLE = """person persons people man men woman women adult adults guy guys lady ladies human humans someone somebody
resident residents visitor visitors stranger strangers intruder intruders burglar burglars thief thieves neighbour
neighbours neighbor neighbors officer officers policeman senior seniors elderly parent parents mother father mom dad
family worker workers courier couriers postman mailman deliveryman driver pedestrian pedestrians child children kid
kids boy boys girl girls baby babies toddler toddlers teenager teenagers teen teens"""
_ANIMALS = {
    "dog": "dog dogs puppy puppies terrier retriever labrador poodle bulldog hound",
    "cat": "cat cats kitten kittens kitty",
    "bear": "bear bears",
    "deer": "deer fawn fawns stag",
    "raccoon": "raccoon raccoons",
    "fox": "fox foxes",
    "coyote": "coyote coyotes",
    "squirrel": "squirrel squirrels",
    "rabbit": "rabbit rabbits bunny",
    "bird": "bird birds crow crows pigeon pigeons",
    "horse": "horse horses pony",
    "skunk": "skunk skunks",
    "opossum": "opossum opossums possum",
    "animal": "animal animals pet pets wildlife creature creatures",  # covers, and is covered by, any animal
}
_VEHICLES = "car cars van vans truck trucks bike bikes bicycle bicycles motorcycle motorbike scooter vehicle vehicles bus suv"

# word -> (group, kind)
KINDS: dict[str, tuple[str, str]] = {
    **{w: ("person", "person") for w in _PEOPLE.split()},
    **{w: ("animal", kind) for kind, ws in _ANIMALS.items() for w in ws.split()},
    **{w: ("vehicle", "vehicle") for w in _VEHICLES.split()},
}
# group -> phrases in attributes / actions that only that group has
CUES: dict[str, tuple[str, ...]] = {
    "person": ("jacket", "hoodie", "coat", "raincoat", "sweater", "shirt", "t-shirt", "dress", "skirt", "uniform",
               "trousers", "jeans", "backpack", "sunglasses", "scarf", "gloves", "apron", "suit",
               "picking up a package", "picks up a package", "picking up the package", "leaving a package",
               "leaves a package", "carrying a box", "unlocks", "unlocking", "knocks", "knocking",
               "rings the doorbell", "ringing the doorbell", "talking on the phone", "typing"),
    "animal": ("fur", "furry", "tail", "paws", "paw", "claws", "antlers", "snout", "muzzle", "whiskers", "feathers",
               "hooves", "mane", "barking", "barks", "meowing", "meows", "wagging", "wags", "sniffing", "sniffs",
               "grazing", "growling", "purring", "on all fours", "on a leash", "on a lead"),
    "vehicle": ("headlights", "license plate", "licence plate", "wheels", "tyres", "tires"),
}
# per group: first word -> (the cue's words, the cue), longest first; cues match whole words, like subject nouns
_CUE_INDEX: dict[str, dict[str, list[tuple[tuple[str, ...], str]]]] = {}
for _group, _cues in CUES.items():
    for _cue in sorted(_cues, key=len, reverse=True):
        _CUE_INDEX.setdefault(_group, {}).setdefault(words(_cue)[0], []).append((tuple(words(_cue)), _cue))


def subject_kinds(text: str) -> set[tuple[str, str]]:
    """The (group, kind) of every subject noun in ``text``."""
    return {KINDS[w] for w in words(text) if w in KINDS}


def _covered(noun: tuple[str, str], listed: set[tuple[str, str]]) -> bool:
    group, kind = noun
    if group != "animal":
        return any(g == group for g, _ in listed)
    return any(g == "animal" and (k == kind or "animal" in (k, kind)) for g, k in listed)


def _first_cue(tokens: list[str], group: str) -> Optional[str]:
    """The leftmost cue of ``group`` in ``tokens`` (the longest where several start at the same word)."""
    index = _CUE_INDEX[group]
    for i, token in enumerate(tokens):
        for cue, written in index.get(token, ()):
            if tuple(tokens[i:i + len(cue)]) == cue:
                return written
    return None


def orphan_reasons(fields: Mapping[str, str]) -> list[str]:
    """Why an attribute or action belongs to a subject the subjects dimension does not name (one reason per
    dimension at most); empty when every description has its subject, or when subjects name nothing known."""
    listed = subject_kinds(fields.get("subjects") or "")
    if not listed:
        return []
    groups = {g for g, _ in listed}
    reasons = []
    for dim in ("attributes", "actions"):
        tokens = words(fields.get(dim) or "")
        nouns = [(w, KINDS[w]) for w in tokens if w in KINDS]
        orphan = next((w for w, noun in nouns if not _covered(noun, listed)), None)
        if orphan:
            reasons.append(f'{dim} mention "{orphan}", which subjects do not name')
            continue
        for group in CUES:
            if group in groups:
                continue
            cue = _first_cue(tokens, group)
            if cue:
                reasons.append(f'{dim} say "{cue}" ({"a" if group != "animal" else "an"} {group}\'s), but subjects '
                               f'name no {group}')
                break
    return reasons

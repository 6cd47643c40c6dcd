"""What the Train tab starts: presets, settings checked before launch, a readiness check, the spec of each
button, and the job itself.

The tab adds no training logic: every button becomes one task spec; "Show command" shows that spec's YAML and
the ``rbft run`` command, and the job runs exactly that file (``rbft_core.jobs.runner.start_job`` writes it
into the job folder).

    Run RB-FT            PipelineSpec   (generate missing rationales, Stage I, Stage II, evaluate, baselines)
    Direct SFT baseline  TrainSpec      (stage 2 from the base model, evaluated afterwards)
    Zero-shot evaluation EvaluateSpec   (the base model with Stage II's sampling)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from db import queries
from db.engine import session_scope
from rbft_core.demo.prepare import demo_model_path
from rbft_core.errors import ConfigError, DataError
from rbft_core.jobs.runner import run_command, start_job
from rbft_core.models.loading import check_model_source
from rbft_core.models.model_sampling import fill_sampling, model_sampling
from rbft_core.specs import PipelineSpec, Spec
from rbft_core.specs.base import field_help as spec_help
from rbft_core.specs.base import field_label as spec_label
from rbft_core.specs.base import spec_fields
from rbft_core.specs.training import DEFAULT_TARGETS as _LM
from rbft_core.specs.training import TrainSpec
from rbft_core.training import sft_data
from rbft_core.training.pipeline import zero_shot_spec

__all__ = ["PRESETS", "STAGE_FIELDS", "LaunchRequest", "Readiness", "stage_configs", "readiness", "launch_spec",
           "spec_yaml", "command_text", "launch", "field_label", "field_help", "demo_model_dir", "sampling_defaults",
           "FORM_SAMPLING"]

Action = Literal["rbft", "direct_sft", "zero_shot"]
ACTIONS = ("rbft", "direct_sft", "zero_shot")

# Per-stage settings the tab shows, in order (their labels come from TrainSpec's fields).
STAGE_FIELDS: tuple[str, ...] = ("num_frames", "fps", "max_pixels", "lora_rank", "lora_alpha", "lr", "epochs",
                                 "batch_size", "grad_accum", "max_steps")

_CPU = {"num_frames": 8, "fps": 0.0, "max_pixels": 112 * 112, "lora_rank": 8, "lora_alpha": 16, "batch_size": 2,
        "grad_accum": 1, "max_steps": 0}
_GPU24 = {"num_frames": 16, "fps": 0.0, "max_pixels": 360 * 420, "lora_rank": 16, "lora_alpha": 32, "batch_size": 1,
          "grad_accum": 8, "max_steps": 0}
_GPU80 = {**_GPU24, "num_frames": 32, "max_pixels": 448 * 448, "batch_size": 2, "grad_accum": 4}
# Stage I learns long rationales (more steps, lower lr); Stage II learns one word per video. The demo's tiny
# base model never answered with label words, so its recipe also adapts lm_head and trains the vision merger
# (what `rbft demo report` uses; see docs/demo-results.md).
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "CPU demo (tiny model)": {"stage1": {**_CPU, "num_frames": 4, "lora_rank": 16, "lora_alpha": 32, "lr": 2e-3,
                                         "epochs": 3.0, "batch_size": 8},
                              "stage2": {**_CPU, "num_frames": 4, "lora_rank": 16, "lora_alpha": 32, "lr": 2e-3,
                                         "epochs": 12.0, "batch_size": 8},
                              "common": {"target_modules": _LM + "|lm_head", "train_vision_merger": True}},
    "1 GPU, 24 GB (7B, LoRA r16)": {"stage1": {**_GPU24, "lr": 1e-4, "epochs": 3.0},
                                    "stage2": {**_GPU24, "lr": 5e-5, "epochs": 2.0},
                                    "common": {"target_modules": _LM, "train_vision_merger": False}},
    "1 GPU, 80 GB (7B, 32 frames)": {"stage1": {**_GPU80, "lr": 1e-4, "epochs": 3.0},
                                     "stage2": {**_GPU80, "lr": 5e-5, "epochs": 2.0},
                                     "common": {"target_modules": _LM, "train_vision_merger": False}},
}


@dataclass
class LaunchRequest:
    """One click of the Train tab.

    Args:
        dataset / model: what to train on and from (a local folder or hub id).
        action: ``rbft`` (generate missing rationales, Stage I, Stage II, evaluate), ``direct_sft`` or ``zero_shot``.
        stage1 / stage2: per-stage settings (keys of ``STAGE_FIELDS``); zero-shot uses Stage II's frames.
        rationale_source / human_share: Stage-I targets (suggestions / reviewed / mix).
        with_baselines: RB-FT also runs zero-shot and direct SFT, so the comparison has all four rows.
    """

    dataset: str
    model: str
    action: Action = "rbft"
    stage1: dict[str, Any] = field(default_factory=dict)
    stage2: dict[str, Any] = field(default_factory=dict)
    rationale_source: str = "reviewed"
    human_share: float = 1.0
    with_baselines: bool = True
    label_hint: bool = True
    seed: int = 0
    target_modules: str = _LM
    train_vision_merger: bool = False

    def __post_init__(self) -> None:
        self.dataset, self.model = (self.dataset or "").strip(), (self.model or "").strip()
        if self.action not in ACTIONS:
            raise ConfigError(f"action must be one of {', '.join(ACTIONS)}, got {self.action!r}")
        if not self.dataset:
            raise ConfigError("choose a dataset to train on (Datasets tab: create and import one first)")
        if not self.model:
            raise ConfigError("give a base model: a local model folder, a hub id, or the tiny demo model")
        for name, values in (("Stage I", self.stage1), ("Stage II", self.stage2)):
            unknown = sorted(set(values) - set(STAGE_FIELDS))
            if unknown:
                raise ConfigError(f"{name}: unknown setting(s) {', '.join(unknown)}")


def field_label(name: str) -> str:
    """What the form calls a TrainSpec field (from the spec's own metadata), with its unit."""
    label = spec_label(TrainSpec, name)
    unit = next(f.metadata.get("unit") for f in spec_fields(TrainSpec) if f.name == name)
    return label[0].upper() + label[1:] + (f" ({unit})" if unit else "")


def field_help(name: str) -> str:
    """The one-line help of a TrainSpec field (the same text `rbft train --help` prints)."""
    return spec_help(TrainSpec, name)


def stage_configs(req: LaunchRequest) -> tuple[TrainSpec, TrainSpec]:
    """The two validated stage specs; a bad value is refused with the stage and the field named."""
    common = {"dataset": req.dataset, "model": req.model, "seed": req.seed,
              "target_modules": req.target_modules or _LM, "train_vision_merger": req.train_vision_merger}
    out = []
    for stage, name, values in ((1, "Stage I", req.stage1), (2, "Stage II", req.stage2)):
        extra = {"rationale_source": req.rationale_source, "human_share": req.human_share} if stage == 1 else {}
        given = {k: v for k, v in values.items() if v is not None and v != ""}
        given, _found = fill_sampling(given, req.model)  # an emptied sampling field: the model folder's value
        try:
            out.append(TrainSpec.from_dict({"stage": stage, **common, **extra, **given}))
        except ConfigError as exc:
            raise ConfigError(f"{name} settings: {_name_field(str(exc))}; fix it and start again") from None
    return out[0], out[1]


def _name_field(message: str) -> str:
    """```lr` must be > 0`` -> ``learning rate (lr) must be > 0``."""
    head, _, rest = message.partition(" ")
    name = head.strip("`")
    if head.startswith("`") and name in {f.name for f in spec_fields(TrainSpec)}:
        return f"{spec_label(TrainSpec, name)} ({name}) {rest}"
    return message


@dataclass
class Readiness:
    ok: bool
    blocking: list[str]
    warnings: list[str]
    per_class: list[dict[str, Any]]
    rationales: dict[str, int]

    def to_markdown(self) -> str:
        lines = ["**Ready to train.**" if self.ok else "**Cannot start:**"]
        lines += [f"- {m}" for m in self.blocking]
        lines += [f"- note: {m}" for m in self.warnings]
        return "\n".join(lines)


def readiness(db_url: Optional[str], dataset: str, *, action: Action = "rbft", rationale_source: str = "reviewed",
              human_share: float = 1.0) -> Readiness:
    """Counts per class and split, rationales usable / missing / rejected, class imbalance, and the reasons
    (if any) the data set cannot train. Uses the same example builder the training stages use."""

    with session_scope(db_url) as s:
        ds = queries.get_dataset(s, dataset)
        labels = list(ds.labels or [])
        counts = queries.dataset_counts(s, ds.id)
    splits = counts["label_split"]
    per_class = [{"label": label, **{split: splits.get(split, {}).get(label, 0) for split in ("train", "val", "test")}}
                 for label in [*labels, *sorted(set(counts["labels"]) - set(labels))]]
    blocking, warnings = [], []
    train = {row["label"]: row["train"] for row in per_class if row["train"]}
    if not train:
        blocking.append(f"dataset {dataset!r} has no readable train videos; import videos (Datasets tab) or re-split")
    elif len(train) < 2 and action != "zero_shot":
        only = next(iter(train))
        blocking.append(f"every train video is labelled {only!r}: a classifier needs at least two classes; "
                        "import videos of the other label(s)")
    elif max(train.values()) >= 3 * min(train.values()):
        shown = ", ".join(f"{k} {v}" for k, v in sorted(train.items()))
        warnings.append(f"class imbalance in train ({shown}); consider more videos of the rare class")
    missing = set(labels) - set(train)
    if train and missing and len(train) >= 2:
        warnings.append(f"no train videos for label(s) {', '.join(sorted(missing))}")
    if not any(row["test"] for row in per_class):
        blocking.append(f"dataset {dataset!r} has no test videos to evaluate on; import with a test split")
    rationales = {"usable": 0, "human": 0, "model": 0, "rejected": 0, "missing": 0, "excluded": 0, "incomplete": 0}
    if action == "rbft" and len(train) >= 2:
        examples, _preset, summary = sft_data.build_examples(db_url, dataset, 1, rationale_source=rationale_source,
                                                             human_share=human_share)
        rationales.update(usable=len(examples), human=sum(e.origin == "human" for e in examples),
                          model=sum(e.origin == "model" for e in examples), rejected=summary["left_out"]["rejected"],
                          missing=summary["left_out"]["no usable suggestion"], excluded=summary["left_out"]["excluded"])
        if rationales["missing"]:
            warnings.append(f"{rationales['missing']} train video(s) have no usable rationale yet: the run generates "
                            "them first (failed parses stay out of Stage I)")
        if rationales["rejected"]:
            warnings.append(f"{rationales['rejected']} rejected rationale(s) are left out of Stage I")
        empty = {name: n for name, n in summary["empty_required"].items() if n}
        rationales["incomplete"] = sum(empty.values())
        if empty:  # the required dimensions of the dataset's own definition
            shown = ", ".join(f"{name} {n}" for name, n in empty.items())
            warnings.append(f"usable Stage-I rationales leave a required dimension empty ({shown}): Stage I learns to "
                            f"leave it out; fill it in the Review tab (or mark the dimension optional with "
                            f"`rbft dimensions {dataset} --set ...`)")
        if rationales["usable"] + rationales["missing"] == 0:
            blocking.append("no train video can get a Stage-I rationale (all rejected or excluded); "
                            "un-reject some in the Review tab")
    return Readiness(ok=not blocking, blocking=blocking, warnings=warnings, per_class=per_class, rationales=rationales)


def launch_spec(req: LaunchRequest) -> Spec:
    """The task spec a click runs: a pipeline, a direct-SFT training run, or a zero-shot evaluation."""
    s1, s2 = stage_configs(req)
    if req.action == "direct_sft":
        return s2.replace(kind="direct_sft", init_from="", evaluate=True)
    if req.action == "zero_shot":
        return zero_shot_spec(PipelineSpec(stage1=s1, stage2=s2))
    return PipelineSpec(stage1=s1, stage2=s2, with_baselines=req.with_baselines, label_hint=req.label_hint)


def spec_yaml(req: LaunchRequest) -> str:
    """The spec file the job will run, byte for byte (``start_job`` writes ``spec.to_yaml()``)."""
    return launch_spec(req).to_yaml()


def command_text(req: LaunchRequest, spec_path: str = "spec.yaml") -> str:
    """The command that runs the spec: ``rbft run spec.yaml`` (the job folder's copy once it started)."""
    launch_spec(req)
    return run_command(spec_path)


def launch(db_url: Optional[str], req: LaunchRequest) -> int:
    """Check everything that can be checked before a job starts, then start it; returns the job id."""
    stage_configs(req)  # settings first: the cheapest refusal, naming the field
    check_model_source(req.model)
    ready = readiness(db_url, req.dataset, action=req.action, rationale_source=req.rationale_source,
                      human_share=req.human_share)
    if not ready.ok:
        raise DataError("; ".join(ready.blocking))
    return start_job(db_url, launch_spec(req))


FORM_SAMPLING = ("num_frames", "fps", "max_pixels")  # the sampling fields each stage's form shows


def sampling_defaults(model: Optional[str]) -> tuple[dict[str, Any], str]:
    """The form's sampling fields the model folder sets (``{}`` when it sets none: the preset's stay) and the note
    shown next to them, e.g. ``Sampling default: 4 frames at 12,544 px (frames, max pixels from data/demo/...)``."""
    found = model_sampling(model)
    values = {k: getattr(found.sampling, k) for k in FORM_SAMPLING if k in found.fields}
    if not (model or "").strip():
        return {}, "Sampling default: give a model; its folder's sampling fills the frames and max pixels"
    if "num_frames" in values and "fps" not in values:
        values["fps"] = 0.0  # the model names a frame count: sample that many, not by fps
    if not values:
        return {}, f"Sampling default: the model folder names none ({found.source}); the preset's values apply"
    return values, f"Sampling default: {found.note()}"


def demo_model_dir() -> Optional[str]:
    """The demo base model built by ``rbft demo build`` / ``make run`` in this data directory, if built."""

    return demo_model_path() or None

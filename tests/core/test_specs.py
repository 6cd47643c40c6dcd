"""Task specs: typed and validated, one YAML form, and the CLI derived from them (no hand-kept flag tables)."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
import yaml

from rbft_core.cli.main import build_parser
from rbft_core.errors import ConfigError
from rbft_core.specs import SPEC_TYPES, PipelineSpec, TrainSpec, load_spec, spec_from_dict
from rbft_core.specs.base import spec_fields
from rbft_core.specs.flags import flag_of

EXAMPLES = {
    "train": {"dataset": "d", "model": "m", "stage": 2, "lr": 5e-4},
    "pipeline": {"stage1": {"dataset": "d", "model": "m"}, "stage2": {"dataset": "d", "model": "m", "stage": 2}},
    "evaluate": {"dataset": "d", "run": "r1", "num_frames": 4},
    "generate": {"dataset": "d", "model": "m", "video_ids": [3, 4]},
    "import": {"dataset": "d", "source": "/videos", "labels": "normal,abnormal"},
    "export": {"dataset": "d", "out": "/tmp/x", "format": "swift"},
    "export-model": {"run": "r1", "out": "/tmp/m"},
    "mask-experiment": {"dataset": "d", "runs": ["a", "b"], "fill": "blur"},
    "attention": {"dataset": "d", "run": "r1", "layers": "-4:-1"},
}


@pytest.mark.parametrize("task", sorted(SPEC_TYPES))
def test_every_spec_round_trips_through_its_yaml_file(task, tmp_path):
    spec = spec_from_dict({"task": task, **EXAMPLES[task]})
    path = spec.write(tmp_path / "spec.yaml")
    assert yaml.safe_load(path.read_text())["task"] == task
    again = load_spec(path)
    assert again == spec and type(again) is SPEC_TYPES[task]
    assert again.to_yaml() == spec.to_yaml()  # stable bytes: the shown file is the file run


@pytest.mark.parametrize(("values", "message"), [
    ({"task": "train", "dataset": "d", "model": "m", "lr": -1}, "`lr` must be > 0, got -1.0"),
    ({"task": "train", "dataset": "d", "model": "m", "rationale_source": "mine"},
     "`rationale_source` must be one of suggestions, reviewed, mix, got 'mine'"),
    ({"task": "train", "dataset": "d", "model": "m", "batch_size": "two"}, "`batch_size` must be a whole number"),
    ({"task": "train", "dataset": "d", "model": "m", "learning_rate": 1}, "unknown setting(s) learning_rate"),
    ({"task": "pipeline", "stage1": {"dataset": "d", "model": "m"},
      "stage2": {"dataset": "d", "model": "m", "stage": 2, "lr": 0}}, "`stage2.lr` must be > 0"),
    ({"task": "pipeline", "stage1": {"dataset": "d", "model": "m"}}, "`stage2` must be given"),
    ({"task": "mask-experiment", "dataset": "d", "fill": "pink"}, "`fill` must be one of black, mean, blur"),
    ({"task": "attention", "dataset": "d", "run": "r", "layers": "x"}, "`layers` must be FIRST:LAST"),
    ({"task": "launch"}, "unknown task 'launch'"),
    ({"dataset": "d"}, "needs a `task:` line"),
])
def test_a_bad_value_is_refused_naming_the_field(values, message):
    with pytest.raises(ConfigError) as err:
        spec_from_dict(values)
    assert message in str(err.value)


def test_a_bad_spec_file_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read spec file .*missing.yaml"):
        load_spec(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("task: train\n  lr: [\n")
    with pytest.raises(ConfigError, match="bad.yaml is not valid YAML"):
        load_spec(tmp_path / "bad.yaml")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize(("command", "task"), [
    ("train", "train"), ("evaluate", "evaluate"), ("generate", "generate"), ("import", "import"),
    ("export", "export"), ("export-model", "export-model"), ("mask-experiment", "mask-experiment"),
    ("attention", "attention")])
def test_each_task_command_has_a_flag_with_help_for_every_spec_field(command, task):
    sub = _subparsers(build_parser())[command]
    options = {opt: action for action in sub._actions for opt in action.option_strings}
    for f in spec_fields(SPEC_TYPES[task]):
        if not f.metadata.get("cli", True):
            continue
        action = options.get(flag_of(f))
        assert action is not None, f"{command}: no flag for {task}.{f.name}"
        assert action.help and "default:" in action.help, f"{command} {flag_of(f)}: {action.help!r}"


def test_pipeline_flags_set_both_stages_or_one():
    from rbft_core.cli.tasks import pipeline_spec_from_args

    args = build_parser().parse_args(["pipeline", "d", "--model", "m", "--lr", "1e-3", "--s2-lr", "5e-5",
                                      "--s1-frames", "4", "--with-baselines"])
    spec = pipeline_spec_from_args(args)
    assert isinstance(spec, PipelineSpec) and spec.with_baselines
    assert (spec.stage1.lr, spec.stage2.lr) == (1e-3, 5e-5)
    assert (spec.stage1.num_frames, spec.stage2.num_frames) == (4, TrainSpec.num_frames)


def test_train_flags_build_the_same_spec_as_the_dataclass():
    from rbft_core.specs.flags import spec_values

    args = build_parser().parse_args(["train", "d", "--model", "m", "--stage", "2", "--frames", "4",
                                      "--no-train-vision-merger", "--rationale-source", "mix"])
    spec = TrainSpec.from_dict({"dataset": "d", **spec_values(args, TrainSpec)})
    assert spec == TrainSpec(dataset="d", model="m", stage=2, num_frames=4, train_vision_merger=False,
                             rationale_source="mix")
    assert dataclasses.asdict(spec)["kind"] == "direct_sft"


def test_rbft_run_refuses_resume_of_a_spec_that_is_not_training(tmp_path, capsys):
    from rbft_core.cli.main import main
    from rbft_core.specs import EvaluateSpec

    path = EvaluateSpec(dataset="d", run="r").write(tmp_path / "spec.yaml")
    assert main(["run", str(path), "--resume"]) == 2
    assert "--resume continues a training run" in capsys.readouterr().err


@pytest.mark.parametrize(("task", "field", "value", "message"), [
    ("train", "num_frames", 257, "`num_frames` must be <= 256, got 257"),
    ("train", "max_frames", 100_000, "`max_frames` must be <= 256, got 100000"),
    ("train", "fps", 1000, "`fps` must be <= 60, got 1000"),
    ("train", "max_pixels", 10**9, "`max_pixels` must be <= 12,845,056, got 1,000,000,000"),
    ("train", "batch_size", 65, "`batch_size` must be <= 64, got 65"),
    ("generate", "num_frames", 10_000, "`num_frames` must be <= 256"),
    ("generate", "batch_size", 1000, "`batch_size` must be <= 64"),
    ("generate", "max_pixels", 10**8, "`max_pixels` must be <= 12,845,056"),
    ("evaluate", "batch_size", 512, "`batch_size` must be <= 64"),
    ("evaluate", "num_frames", 999, "`num_frames` must be <= 256"),
    ("mask-experiment", "batch_size", 100, "`batch_size` must be <= 64"),
    ("mask-experiment", "max_pixels", 10**9, "`max_pixels` must be <= 12,845,056"),
    ("attention", "num_frames", 300, "`num_frames` must be <= 256"),
    ("pipeline", "generate_batch_size", 99, "`generate_batch_size` must be <= 64"),
])
def test_server_side_upper_bounds_on_frames_batch_and_pixels(task, field, value, message):
    """A form, a spec file or a flag cannot ask one task for unbounded frames, pixels or batch size."""
    with pytest.raises(ConfigError) as err:
        spec_from_dict({"task": task, **EXAMPLES[task], field: value})
    assert message in str(err.value)
    edge = {"num_frames": 256, "max_frames": 256, "fps": 60, "max_pixels": 16384 * 28 * 28, "batch_size": 64,
            "generate_batch_size": 64}[field]
    spec_from_dict({"task": task, **EXAMPLES[task], field: edge})  # the bound itself is allowed

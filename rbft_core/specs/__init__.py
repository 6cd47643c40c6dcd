"""Typed specs of every long task, and how they are read from a YAML file.

Each spec is a dataclass (``rbft_core.specs.base.Spec``) whose fields carry their help, label and unit; the
CLI flags (``rbft_core.specs.flags``), the YAML a job runs and the UI's labels come from them. The executor
that runs any spec is ``rbft_core.jobs.execute.execute``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rbft_core.errors import ConfigError
from rbft_core.specs.base import Spec
from rbft_core.specs.data import ExportModelSpec, ExportSpec, GenerateSpec, ImportSpec
from rbft_core.specs.inspection import AttentionSpec, MaskSpec
from rbft_core.specs.sampling import Sampling
from rbft_core.specs.training import EvaluateSpec, PipelineSpec, TrainSpec

__all__ = ["Spec", "Sampling", "TrainSpec", "PipelineSpec", "EvaluateSpec", "GenerateSpec", "ImportSpec",
           "ExportSpec", "ExportModelSpec", "MaskSpec", "AttentionSpec", "SPEC_TYPES", "spec_from_dict",
           "load_spec"]

SPEC_TYPES: dict[str, type[Spec]] = {cls.task: cls for cls in (
    TrainSpec, PipelineSpec, EvaluateSpec, GenerateSpec, ImportSpec, ExportSpec, ExportModelSpec, MaskSpec,
    AttentionSpec)}


def spec_from_dict(values: Any, *, source: str = "spec") -> Spec:
    if not isinstance(values, dict) or "task" not in values:
        raise ConfigError(f"{source} needs a `task:` line naming one of {', '.join(SPEC_TYPES)}")
    task = values["task"]
    if task not in SPEC_TYPES:
        raise ConfigError(f"{source}: unknown task {task!r}; use one of {', '.join(SPEC_TYPES)}")
    return SPEC_TYPES[task].from_dict(values)


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file (``rbft run SPEC.yaml``)."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read spec file {path}: {exc.strerror}; check the path") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"spec file {path} is not valid YAML ({exc}); fix the file") from None
    return spec_from_dict(values, source=f"spec file {path}")

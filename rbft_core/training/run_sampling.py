"""A run's sampling: what every later use of the run (evaluate, compare, attention, masking, Inspect, model
export) starts from. A run stores it in its spec (``runs.config``); an override is returned beside it so the
caller can show it next to the result it changed."""

from __future__ import annotations

from typing import Any, Optional

from db import job_queries as jq
from db.engine import session_scope
from rbft_core.errors import DataError
from rbft_core.specs.sampling import SAMPLING_FIELDS, Sampling

__all__ = ["run_sampling", "resolve_sampling", "sampling_note"]


def run_sampling(db_url: Optional[str], run_id: str) -> Sampling:
    """The sampling ``run_id`` was trained (or zero-shot evaluated) with."""
    with session_scope(db_url) as s:
        run = jq.get_run(s, run_id)
        config = dict(run.config or {})
    if "eval" in config and not any(k in config for k in SAMPLING_FIELDS):  # zero-shot rows before run specs
        config = config["eval"]
    if not any(config.get(k) is not None for k in SAMPLING_FIELDS):
        raise DataError(f"run {run_id} records no sampling (frames / max pixels); rerun it from its spec file")
    return Sampling.of(config)


def resolve_sampling(db_url: Optional[str], run_id: str, overrides: Any = None) -> tuple[Sampling, dict[str, Any]]:
    """The run's sampling with any non-None sampling fields of ``overrides`` applied, and what they changed."""
    base = run_sampling(db_url, run_id)
    return base.with_overrides(overrides) if overrides is not None else (base, {})


def sampling_note(sampling: Sampling, changed: dict[str, Any]) -> str:
    """``4 frames at 12,544 px`` or ``8 frames at 12,544 px (override of the run's frames=4)``."""
    if not changed:
        return sampling.describe()
    return sampling.describe() + " (override: " + ", ".join(f"{k}={v}" for k, v in changed.items()) + ")"

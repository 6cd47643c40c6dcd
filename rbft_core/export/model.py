"""Export a trained run: its peft adapter folder, or a merged model folder other tools load directly.

A run's adapter lives in ``<run_dir>/adapter/`` (peft format). A Stage-II run trained on top of Stage I
names its Stage-I run in ``parent_run_id``; the merged export applies the chain oldest first (base ->
merge Stage-I adapter -> merge Stage-II adapter). A parent counts as part of the chain only while it
shares the child's ``base_model`` (a child whose base is another folder was trained on that folder), and
not when the child continued training the parent's adapter (``config["continue_adapter"]``): that adapter
already holds the parent's update.

The merged folder is what ``AutoModelForImageTextToText.from_pretrained`` and vLLM expect at top level:
``config.json``, ``generation_config.json``, safetensors weights (shards + ``model.safetensors.index.json``
when larger than ``max_shard_size``), tokenizer and processor files (with the chat template).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from db import job_queries
from db.engine import init_db, session_scope
from rbft_core.errors import ConfigError, DataError, ModelError
from rbft_core.models.loading import check_model_source
from rbft_core.specs.sampling import Sampling
from rbft_core.training.run_sampling import run_sampling

__all__ = ["RunLink", "ModelExport", "adapter_chain", "export_model"]

_MAX_CHAIN = 16


@dataclass(frozen=True)
class RunLink:
    """One run of an adapter chain, as plain values."""

    run_id: str
    kind: str
    stage: Optional[int]
    base_model: str
    adapter_dir: str
    status: str


@dataclass
class ModelExport:
    out: Path
    merged: bool
    chain: list[RunLink]
    files: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"out": str(self.out), "merged": self.merged, "chain": [asdict(r) for r in self.chain],
                "files": self.files}


def _link(run: Any) -> RunLink:
    return RunLink(run.id, run.kind, run.stage, run.base_model, str(Path(run.run_dir) / "adapter"), run.status)


def adapter_chain(db_url: Optional[str], run_id: str) -> list[RunLink]:
    """The adapters to apply for ``run_id``, oldest first (its Stage-I parent before it)."""
    init_db(db_url)
    chain: list[RunLink] = []
    with session_scope(db_url) as session:
        run = job_queries.get_run(session, run_id)
        chain.append(_link(run))
        # A run that continued its parent's adapter (config continue_adapter) already holds the parent's training.
        while run.parent_run_id and not (run.config or {}).get("continue_adapter") and len(chain) < _MAX_CHAIN:
            parent = job_queries.get_run(session, run.parent_run_id)
            if parent.base_model != run.base_model or parent.id in {r.run_id for r in chain}:
                break
            chain.append(_link(parent))
            run = parent
    chain.reverse()
    for link in chain:
        if not (Path(link.adapter_dir) / "adapter_config.json").is_file():
            raise ModelError(
                f"run {link.run_id} has no adapter at {link.adapter_dir} (status {link.status}); "
                "export a run that finished training, or re-run it"
            )
    return chain


def _prepare_out(out: Path, overwrite: bool) -> Path:
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(f"output folder {out} is not empty; pass --overwrite or choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.with_name(f".{out.name}.partial-{uuid.uuid4().hex[:8]}")
    work.mkdir()
    return work


def _publish(work: Path, out: Path) -> list[str]:
    if out.exists():
        shutil.rmtree(out)
    work.rename(out)
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


def _write_provenance(folder: Path, chain: list[RunLink], merged: bool, sampling: Optional[Sampling]) -> None:
    """``rbft_export.json``: where the model came from and the sampling it was trained with (the default of
    every later use of the exported model)."""
    info = {"rbft_model_export": 1, "run_id": chain[-1].run_id, "merged": merged,
            "base_model": chain[0].base_model, "chain": [asdict(r) for r in chain],
            "sampling": sampling.to_dict() if sampling else None}
    if not merged and len(chain) > 1:
        info["how_to_use"] = ("load base_model, merge each adapter in parents/ in order (merge_and_unload), "
                              "then apply this adapter")
    (folder / "rbft_export.json").write_text(json.dumps(info, indent=2), encoding="utf-8")


def _copy_adapters(chain: list[RunLink], work: Path) -> None:
    shutil.copytree(chain[-1].adapter_dir, work, dirs_exist_ok=True)
    for i, link in enumerate(chain[:-1]):
        shutil.copytree(link.adapter_dir, work / "parents" / f"{i}-{link.run_id}")


def _merge(chain: list[RunLink], work: Path, max_shard_size: str, dtype: str) -> None:
    import torch  # torch is heavy: loaded only when a model runs
    from peft import (
        PeftModel,  # peft pulls in torch: loaded only when adapters are used
    )
    from transformers import (  # transformers is heavy: loaded only when a model runs
        AutoModelForImageTextToText,
        AutoProcessor,
        GenerationConfig,
    )

    base = chain[0].base_model
    check_model_source(base)
    source = str(Path(base).expanduser()) if Path(base).expanduser().exists() else base
    torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
    model = AutoModelForImageTextToText.from_pretrained(source, dtype=torch_dtype)
    for link in chain:
        model = PeftModel.from_pretrained(model, link.adapter_dir).merge_and_unload()
    model.save_pretrained(str(work), max_shard_size=max_shard_size)
    AutoProcessor.from_pretrained(source).save_pretrained(str(work))
    if not (work / "generation_config.json").is_file():
        GenerationConfig.from_model_config(model.config).save_pretrained(str(work))


def export_model(
    db_url: Optional[str],
    run_id: str,
    out: str | os.PathLike[str],
    *,
    merged: bool = False,
    max_shard_size: str = "5GB",
    dtype: str = "auto",
    overwrite: bool = False,
) -> ModelExport:
    """Write the run's adapter (with its parents' adapters under ``parents/``) or the merged model to ``out``.

    Args:
        merged: merge the adapter chain into the base model and save a full model folder.
        max_shard_size: largest safetensors shard of a merged model (``"5GB"``, ``"200MB"``).
        dtype: dtype of the merged weights (``auto``: as the base checkpoint stores them).
    """
    if dtype not in ("auto", "float32", "bfloat16", "float16"):
        raise ConfigError(f"dtype must be auto, float32, bfloat16 or float16, got {dtype!r}")
    chain = adapter_chain(db_url, run_id)
    try:
        sampling = run_sampling(db_url, run_id)
    except DataError:  # a run recorded before run specs: export it without
        sampling = None
    target = Path(out).expanduser().resolve()
    work = _prepare_out(target, overwrite)
    try:
        if merged:
            _merge(chain, work, max_shard_size, dtype)
        else:
            _copy_adapters(chain, work)
        _write_provenance(work, chain, merged, sampling)
        files = _publish(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ModelExport(out=target, merged=merged, chain=chain, files=files)

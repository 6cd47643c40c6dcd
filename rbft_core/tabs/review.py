"""The Review tab's job: regenerate one rationale (a ``GenerateSpec`` for that video) as a background job."""

from __future__ import annotations

from typing import Optional

from rbft_core.errors import DataError
from rbft_core.jobs.runner import start_job
from rbft_core.models.model_sampling import fill_sampling
from rbft_core.review.workspace import load_item
from rbft_core.specs.data import GenerateSpec

__all__ = ["regenerate"]


def regenerate(db_url: Optional[str], review_id: int) -> int:
    """Write a new suggestion for one video with the model, prompt settings and sampling of its current one;
    returns the job id."""
    item = load_item(db_url, review_id)
    sug = item.suggestion
    if sug is None:
        raise DataError(f"video {item.external_id} has no suggestion to regenerate; generate rationales for "
                        f"dataset {item.dataset} from the Datasets tab first")
    params = sug.get("gen_params") or {}
    if "num_frames" not in params or "max_pixels" not in params:  # an older suggestion: the model folder's
        params = {**fill_sampling({}, sug["model_id"], ("num_frames", "max_pixels"))[0], **params}
    spec = GenerateSpec(dataset=item.dataset, model=sug["model_id"], video_ids=(item.video_id,), overwrite=True,
                        split="all", num_frames=params["num_frames"], max_pixels=params["max_pixels"],
                        max_new_tokens=params.get("max_new_tokens", 160), label_hint=sug.get("label_hint", True))
    return start_job(db_url, spec)

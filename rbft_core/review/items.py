"""What the review workspace works on: a queue filter and one item, as plain values (no ORM objects)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Optional

from db.review_queries import QueueFilter
from rbft_core.errors import ConfigError
from rbft_core.models.prompts import Dimension
from rbft_core.review.flags import ALL_FLAG_BITS, FLAG_BITS, FLAG_CODES

__all__ = ["MAX_FIELD_CHARS", "MAX_REVIEWER_CHARS", "STATUS_FILTERS", "EDITED_FILTERS", "FLAG_FILTERS", "ACTIONS",
           "Action",
           "ACTION_STATUS", "ReviewFilter", "ReviewItem", "reviewer_name"]

MAX_FIELD_CHARS = 4000
MAX_REVIEWER_CHARS = 200
STATUS_FILTERS = ("todo", "pending", "draft", "ready", "accepted", "rejected", "all")
FLAG_FILTERS = ("", "flagged", "unflagged", *FLAG_CODES)  # "": any; a code: suggestions with that flag
_FLAG_SETS = {"": None, "flagged": ALL_FLAG_BITS, "unflagged": 0, **FLAG_BITS}
EDITED_FILTERS = ("any", "edited", "untouched")
ACTIONS = ("accept", "edit", "reject", "draft")
Action = Literal["accept", "edit", "reject", "draft"]
STATUS_SETS: dict[str, Optional[tuple[str, ...]]] = {
    "todo": ("pending", "draft"), "pending": ("pending",), "draft": ("draft",), "accepted": ("accepted",),
    "rejected": ("rejected",), "ready": ("ready",), "all": None,
}
ACTION_STATUS = {"accept": "accepted", "edit": "accepted", "reject": "rejected", "draft": "draft"}


@dataclass(frozen=True)
class ReviewFilter:
    """Which items the queue holds. ``status`` "todo" is pending + draft; empty label/split/search/flag: any.

    ``reviewer``: who works the queue. Where the dataset asks for several reviews per item, that reviewer's
    "todo" leaves out the items they have answered (``ready`` ones wait for the adjudicator)."""

    dataset: str
    status: str = "todo"
    label: str = ""
    split: str = ""
    edited: str = "any"
    parse_failed: bool = False
    search: str = ""
    reviewer: str = ""
    flag: str = ""

    def __post_init__(self) -> None:
        if not (self.dataset or "").strip():
            raise ConfigError("no dataset chosen; pick one in the Dataset box (import videos first if it is empty)")
        if self.status not in STATUS_FILTERS:
            raise ConfigError(f"status filter must be one of {', '.join(STATUS_FILTERS)}, got {self.status!r}")
        if self.edited not in EDITED_FILTERS:
            raise ConfigError(f"edited filter must be one of {', '.join(EDITED_FILTERS)}, got {self.edited!r}")
        if self.split not in ("", "train", "val", "test"):
            raise ConfigError(f"split filter must be train, val, test or empty, got {self.split!r}")
        if self.flag not in FLAG_FILTERS:
            raise ConfigError(f"flag filter must be empty or one of {', '.join(FLAG_FILTERS[1:])}, got {self.flag!r}")
        if len(self.search) > 200:
            raise ConfigError(f"search text is {len(self.search)} characters; use at most 200")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def query(self, dataset: Any) -> QueueFilter:
        """The db layer's filter on ``dataset`` (a ``Dataset`` row: its id and reviews per item)."""
        edited = None if self.edited == "any" else self.edited == "edited"
        mine = self.reviewer if (dataset.reviews_per_item or 1) > 1 and self.status == "todo" else ""
        return QueueFilter(dataset_id=dataset.id, statuses=STATUS_SETS[self.status], label=self.label,
                           split=self.split, edited=edited, parse_failed=self.parse_failed, search=self.search,
                           exclude_reviewer=mine, flags=_FLAG_SETS[self.flag])


@dataclass
class ReviewItem:
    """Everything the review page shows about one video, as plain values. ``fields``, ``stored`` and the
    suggestion's text are keyed by the names of ``dimensions``, the dataset's rationale dimensions in order."""

    review_id: int
    version: int
    status: str
    excluded: bool
    reviewer: Optional[str]
    updated_at: Optional[str]
    dataset: str
    labels: list[str]
    video_id: int
    external_id: str
    split: str
    video_label: str
    label: str
    video_path: str
    sha256: str
    fields: dict[str, str]
    suggestion: Optional[dict[str, Any]]
    edited: bool
    dimensions: tuple[Dimension, ...]
    newer_suggestion_id: Optional[int] = None
    stored: dict[str, Optional[str]] = field(default_factory=dict)
    reviews_per_item: int = 1
    # several reviews per item (rbft_core.review.responses): the final review's status and the responses submitted
    final_status: str = ""
    submitted: int = 0

    @property
    def names(self) -> tuple[str, ...]:
        """The dimension names, in order."""
        return tuple(d.name for d in self.dimensions)


def reviewer_name(name: Optional[str]) -> str:
    """Who saves: the login, else the name typed, else "anonymous"; at most ``MAX_REVIEWER_CHARS``."""
    name = (name or "").strip() or "anonymous"
    if len(name) > MAX_REVIEWER_CHARS:
        raise ConfigError(f"reviewer name is {len(name)} characters; use at most {MAX_REVIEWER_CHARS}")
    return name

"""ORM models (SQLAlchemy 2.0 typed declarative).

The model's output and the human's version are separate records:
``Suggestion`` rows are immutable model output; ``Review`` is the human version of one
video's rationale (one row per video, optimistic locking through ``version``), the final text that trains;
every change to a review appends a ``ReviewRevision``. With several reviewers per item (``Dataset.
reviews_per_item`` > 1) each reviewer's answer is a ``ReviewResponse`` (one per video and reviewer, its own
``version`` and ``ResponseRevision`` history) and an adjudicator writes the ``Review`` from them.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from rbft_core.models.prompts import DEFAULT_DIMENSIONS

__all__ = [
    "Base",
    "Dataset",
    "Video",
    "ImportRun",
    "Suggestion",
    "Review",
    "ReviewRevision",
    "ReviewResponse",
    "ResponseRevision",
    "User",
    "Job",
    "Run",
    "Prediction",
    "Metric",
    "DatasetCounter",
    "COUNTER_KEY",
    "default_dimensions",
    "REVIEW_STATUSES",
    "RESPONSE_STATUSES",
    "ROLES",
    "JOB_STATUSES",
]

# "ready": every response a dataset asks for is in (reviews_per_item > 1); the item waits for its adjudicator.
REVIEW_STATUSES = ("pending", "draft", "ready", "accepted", "rejected")
RESPONSE_STATUSES = ("draft", "accepted", "rejected")  # accepted / rejected: submitted (counts towards k)
ROLES = ("reviewer", "adjudicator", "admin")
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
PARSE_STATUSES = ("ok", "partial", "failed")

# Stable constraint names so Alembic migrations are reproducible on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def default_dimensions() -> list[dict[str, Any]]:
    """The paper's four dimensions as stored records (a callable: each dataset gets its own list)."""
    return [d.to_dict() for d in DEFAULT_DIMENSIONS]


# What a dataset created by plain SQL gets (migration 0008 gave every existing dataset the same).
_DEFAULT_DIMENSIONS_SQL = text("'" + json.dumps(default_dimensions()) + "'")


def utcnow() -> datetime:
    """Timezone-aware now; a callable so each row gets its own time (never evaluated at import)."""
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    preset: Mapped[str] = mapped_column(String(64), default="custom")
    role: Mapped[str] = mapped_column(Text, default="")
    task: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[list[Any]] = mapped_column(JSON, default=list)
    criteria: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # How many reviewers answer each item (k); above 1 an adjudicator writes the final review from the responses.
    reviews_per_item: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Logins an admin assigned to adjudicate this dataset (empty: any adjudicator or admin).
    adjudicators: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    # The rationale dimensions ([{name, description, required}], rbft_core.models.prompts.Dimension): what the
    # prompt asks, the parser reads, the review form shows, Stage I trains on and the export writes.
    dimensions: Mapped[list[Any]] = mapped_column(JSON, default=default_dimensions,
                                                  server_default=_DEFAULT_DIMENSIONS_SQL)

    videos: Mapped[list["Video"]] = relationship(back_populates="dataset", cascade="all, delete-orphan")


class Video(Base):
    __tablename__ = "videos"
    __table_args__ = (
        UniqueConstraint("dataset_id", "sha256", name="uq_videos_dataset_sha256"),
        UniqueConstraint("dataset_id", "external_id", name="uq_videos_dataset_external_id"),
        Index("ix_videos_dataset_split_label", "dataset_id", "split", "label"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # not indexed alone: uq_videos_dataset_sha256 starts with it
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(300))
    path: Mapped[str] = mapped_column(Text)
    source_root: Mapped[str] = mapped_column(Text, default="")
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    duration_s: Mapped[Optional[float]] = mapped_column(Float)
    fps: Mapped[Optional[float]] = mapped_column(Float)
    width: Mapped[Optional[int]] = mapped_column(Integer)
    height: Mapped[Optional[int]] = mapped_column(Integer)
    num_frames: Mapped[Optional[int]] = mapped_column(Integer)
    codec: Mapped[Optional[str]] = mapped_column(String(32))
    split: Mapped[str] = mapped_column(String(16), default="train")
    label: Mapped[str] = mapped_column(String(100))
    readable: Mapped[bool] = mapped_column(Boolean, default=True)
    error: Mapped[Optional[str]] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    dataset: Mapped[Dataset] = relationship(back_populates="videos")
    suggestions: Mapped[list["Suggestion"]] = relationship(back_populates="video", cascade="all, delete-orphan")
    review: Mapped[Optional["Review"]] = relationship(back_populates="video", cascade="all, delete-orphan")


class ImportRun(Base):
    """One ``rbft import`` call and its full report (ok / failed with reason per file)."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(32))
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Suggestion(Base):
    """Immutable model output for one video: never updated, only added (``--overwrite`` adds a newer row)."""

    __tablename__ = "suggestions"
    __table_args__ = (Index("ix_suggestions_video_model_prompt", "video_id", "model_id", "prompt_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # not indexed alone: ix_suggestions_video_model_prompt starts with it
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    model_id: Mapped[str] = mapped_column(Text)
    prompt_version: Mapped[str] = mapped_column(String(64))
    # {dimension: text} over the dataset's dimensions, in their order ("" where the model wrote nothing)
    rationale: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    conclusion: Mapped[str] = mapped_column(Text, default="")
    raw_text: Mapped[str] = mapped_column(Text, default="")
    parse_status: Mapped[str] = mapped_column(String(16))
    label_hint: Mapped[bool] = mapped_column(Boolean, default=True)
    # Mean log-probability per generated token: the lowest are reviewed first.
    mean_logprob: Mapped[Optional[float]] = mapped_column(Float)
    # Per dimension, the least likely token of its value: {dim: {min_logprob, token}} (rbft_core.models.confidence).
    dimension_logprobs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    gen_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Computed once at insert (rbft_core.review.doubt): the review queue sorts by it, most doubtful first.
    doubt_score: Mapped[float] = mapped_column(Float, default=0.0)
    doubt_reason: Mapped[str] = mapped_column(String(200), default="")
    # Automatic checks at insert (rbft_core.review.flags): [{code, reason}], most doubtful first, and the same as
    # bits (FLAG_BITS) for the queue's flag filter.
    flags: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    flag_bits: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    video: Mapped[Video] = relationship(back_populates="suggestions")


class Review(Base):
    """The human version of a video's rationale; ``version`` guards against silent overwrites."""

    __tablename__ = "reviews"
    __table_args__ = (
        # The queue: one equality prefix per "segment" (db.review_queries), then the queue order.
        Index("ix_reviews_queue", "dataset_id", "status", "queue_label", "split", "edited", "parse_failed",
              "queue_key", "video_id", "id"),
        # The queue filtered by flag: the same segments with the suggestion's flag bits first.
        Index("ix_reviews_flags", "dataset_id", "flag_bits", "status", "queue_label", "split", "edited",
              "parse_failed", "queue_key", "video_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), unique=True)
    suggestion_id: Mapped[Optional[int]] = mapped_column(ForeignKey("suggestions.id", ondelete="SET NULL"))
    # {dimension: text} of the dimensions the reviewer set: a dimension not in it is the suggestion's text
    rationale: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    label: Mapped[Optional[str]] = mapped_column(String(100))  # label correction; None keeps the video's label
    status: Mapped[str] = mapped_column(String(16), default="pending")  # filtered through ix_reviews_queue
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)
    reviewer: Mapped[Optional[str]] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    # Derived, kept by db.review_state on every write (never typed by a user): what the review queue sorts and
    # filters on, so "next" / "previous" are index seeks on ix_reviews_queue instead of joins over the dataset.
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    split: Mapped[str] = mapped_column(String(16), default="train")  # the video's split (never changes)
    queue_label: Mapped[str] = mapped_column(String(100), default="")  # label correction, else the video's label
    queue_key: Mapped[float] = mapped_column(Float, default=0.0)  # minus the suggestion's doubt: ascending order
    edited: Mapped[bool] = mapped_column(Boolean, default=False)  # a field differs from the suggestion
    parse_failed: Mapped[bool] = mapped_column(Boolean, default=False)  # the suggestion's parse failed
    # the suggestion's flags (rbft_core.review.flags)
    flag_bits: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    search_doc: Mapped[str] = mapped_column(Text, default="")  # external id + suggestion + review text

    video: Mapped[Video] = relationship(back_populates="review")
    revisions: Mapped[list["ReviewRevision"]] = relationship(
        back_populates="review", cascade="all, delete-orphan", order_by="ReviewRevision.id"
    )


class ReviewRevision(Base):
    """Append-only audit trail: the review before and after one save."""

    __tablename__ = "review_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    before: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    after: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reviewer: Mapped[Optional[str]] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    review: Mapped[Review] = relationship(back_populates="revisions")


class ReviewResponse(Base):
    """One reviewer's answer for one video: never a second row for the same reviewer (a second save edits it).

    ``rationale`` holds the full text the reviewer stands behind, keyed by dimension name (dimensions are data);
    ``suggestion_id`` the suggestion they were shown; ``shown_at`` .. ``saved_at`` the time they spent on it.
    """

    __tablename__ = "review_responses"
    __table_args__ = (
        # "not yet reviewed by me" is one probe of this index per queue entry; also an item's responses
        UniqueConstraint("video_id", "reviewer", name="uq_review_responses_video_reviewer"),
        Index("ix_review_responses_dataset_reviewer", "dataset_id", "reviewer"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    suggestion_id: Mapped[Optional[int]] = mapped_column(ForeignKey("suggestions.id", ondelete="SET NULL"))
    reviewer: Mapped[str] = mapped_column(String(200))
    rationale: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    label: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    version: Mapped[int] = mapped_column(Integer, default=1)
    shown_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    saved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ResponseRevision(Base):
    """Append-only history of one response (apart from ``ReviewRevision``: its versions count the response's saves,
    and the final review's history, which the review page reads by version, stays the final review's own)."""

    __tablename__ = "response_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("review_responses.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    before: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    after: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class User(Base):
    """A login of the web app (``--auth db``): salted scrypt hash, never the password; role from ``ROLES``."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="reviewer")
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Job(Base):
    """A detached background process (generate, train, evaluate, ...)."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    command: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # what the job runs: its spec file (``rbft run SPEC``) and the dataset / model it names
    dataset: Mapped[Optional[str]] = mapped_column(String(300), index=True)
    model: Mapped[Optional[str]] = mapped_column(Text)
    spec_path: Mapped[Optional[str]] = mapped_column(Text)
    device: Mapped[Optional[str]] = mapped_column(String(32))
    # where it runs: liveness is judged by the process table on that machine, by the heartbeat elsewhere
    host: Mapped[Optional[str]] = mapped_column(String(255))
    boot_id: Mapped[Optional[str]] = mapped_column(String(64))
    pid: Mapped[Optional[int]] = mapped_column(Integer)
    pgid: Mapped[Optional[int]] = mapped_column(Integer)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    progress_text: Mapped[str] = mapped_column(Text, default="")
    run_dir: Mapped[Optional[str]] = mapped_column(Text)
    log_path: Mapped[Optional[str]] = mapped_column(Text)
    error: Mapped[Optional[str]] = mapped_column(Text)
    heartbeat_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))


class Run(Base):
    """A training or evaluation run; ``runs/<run_id>/`` on disk is the source of truth, this row mirrors it."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[Optional[int]] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(32))  # zero_shot | stage1 | stage2 | direct_sft
    stage: Mapped[Optional[int]] = mapped_column(Integer)
    parent_run_id: Mapped[Optional[str]] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    base_model: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    run_dir: Mapped[str] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))


class Prediction(Base):
    __tablename__ = "predictions"
    __table_args__ = (UniqueConstraint("run_id", "video_id", name="uq_predictions_run_video"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    truth: Mapped[str] = mapped_column(String(100))
    predicted: Mapped[str] = mapped_column(String(100))
    probs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    answer_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Metric(Base):
    __tablename__ = "metrics"
    __table_args__ = (UniqueConstraint("run_id", "split", "name", name="uq_metrics_run_split_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    split: Mapped[str] = mapped_column(String(16), default="test")
    name: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)


# What a counter row counts by (besides the dataset): every count the app shows is a sum over these rows.
COUNTER_KEY = ("status", "label", "video_label", "split", "readable", "edited", "excluded", "parse_failed",
               "flag_bits")


class DatasetCounter(Base):
    """How many videos of a dataset share one key (``COUNTER_KEY``), kept on every write (``db.counters``).

    ``flag_bits`` is the review's suggestion's flags (0 without a review). ``status`` is the review status, or ``"none"`` for a video without a review (no suggestion yet); ``label``
    is the effective label (the review's correction, else the video's), ``video_label`` the imported one.
    Counts read these few rows instead of scanning the dataset; tests compare them with a full recount.
    """

    __tablename__ = "dataset_counters"
    __table_args__ = (UniqueConstraint("dataset_id", *COUNTER_KEY, name="uq_dataset_counters_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(100))
    video_label: Mapped[str] = mapped_column(String(100))
    split: Mapped[str] = mapped_column(String(16))
    readable: Mapped[bool] = mapped_column(Boolean)
    edited: Mapped[bool] = mapped_column(Boolean)
    excluded: Mapped[bool] = mapped_column(Boolean)
    parse_failed: Mapped[bool] = mapped_column(Boolean)
    flag_bits: Mapped[int] = mapped_column(Integer)
    n: Mapped[int] = mapped_column(Integer, default=0)

"""Domain types shared by every stage. Pydantic models are the typed boundary between packages."""

from __future__ import annotations

import enum
import hashlib
import unicodedata
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    computed_field,
    field_validator,
)


class Platform(str, enum.Enum):
    linkedin = "linkedin"
    x = "x"
    medium = "medium"
    substack = "substack"
    blog = "blog"
    github = "github"
    chat = "chat"
    """Private messages (WhatsApp, Telegram exports), imported only when asked to: training data for the
    author's conversational voice, never a platform to draft for nor a source of drafts' material."""


DRAFT_PLATFORMS: tuple[Platform, ...] = tuple(p for p in Platform if p is not Platform.chat)
"""The platforms the twin drafts for. Private chats are training data only: never a draft target."""
SOURCE_PLATFORMS: tuple[Platform, ...] = tuple(p for p in Platform if p is not Platform.chat)
"""The platforms a source URL can be collected as (a private chat is imported from its export file)."""


def draft_platform_problem(platform: Platform) -> str | None:
    """Why the twin cannot draft for `platform`, or None when it can."""
    if platform in DRAFT_PLATFORMS:
        return None
    names = ", ".join(p.value for p in DRAFT_PLATFORMS)
    return (f"The twin does not draft for {platform.value!r}: private chats are training data only, never a "
            f"platform to draft for. Choose one of: {names}.")


def _draft_platform(platform: Platform) -> Platform:
    problem = draft_platform_problem(platform)
    if problem:
        raise ValueError(problem)
    return platform


DraftPlatform = Annotated[
    Platform,
    AfterValidator(_draft_platform),
    Field(json_schema_extra={"enum": [p.value for p in DRAFT_PLATFORMS]}),
]
"""A platform field of a draft request: `chat` is refused with a message (HTTP 400), and the schema lists
only the platforms that can be drafted for."""


class Kind(str, enum.Enum):
    post = "post"
    article = "article"
    code = "code"
    note = "note"
    chat = "chat"
    """One conversation of a private chat (see `PRIVATE_KINDS`)."""
    reference = "reference"
    """A page someone else wrote, linked in a chat request (or any link that is not one of the author's
    sources): it grounds that run's drafts, and is never the author's writing (style examples, "own
    writing" retrieval, training data, voice scorer) unless the user promotes it."""


def own_writing(documents: Iterable[Document]) -> list[Document]:
    """The author's own writing among `documents`: every kind but linked reference pages."""
    return [d for d in documents if d.kind is not Kind.reference]


PRIVATE_KINDS = frozenset({Kind.chat})
"""Kinds that are never embedded for retrieval, never style examples and never shown in public drafts."""


class DraftStatus(str, enum.Enum):
    new = "new"
    approved = "approved"
    discarded = "discarded"


class TwinError(Exception):
    """An error whose message is meant for the user (CLI prints it, API returns it)."""

    status_code = 400


class NotFound(TwinError):
    status_code = 404


class Conflict(TwinError):
    status_code = 409


AUTHOR_NAME_MAX = 100


def validate_author_name(name: str) -> str:
    """The author's name, stripped, or a TwinError saying what is wrong with it.

    The name becomes a folder name (adapters, datasets, reports) and a URL path segment: 1-100 characters,
    no ``/`` or ``\\``, no control characters, not ``.`` or ``..``.
    """
    name = name.strip()
    if not 1 <= len(name) <= AUTHOR_NAME_MAX:
        raise TwinError(f"An author name must be 1-{AUTHOR_NAME_MAX} characters (got {len(name)}).")
    if "/" in name or "\\" in name:
        raise TwinError(f"An author name cannot contain '/' or '\\': {name!r}.")
    if name in (".", ".."):
        raise TwinError(f"{name!r} is not a valid author name.")
    if any(unicodedata.category(char).startswith("C") for char in name):
        raise TwinError(f"An author name cannot contain control or formatting characters: {name!r}.")
    return name


class Unavailable(TwinError):
    status_code = 503


class TooBusy(TwinError):
    """Every slot for this kind of work is taken; retrying shortly will work."""

    status_code = 429


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Author(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    created_at: datetime


def author_folder(author: Author) -> str:
    """The folder name for an author's files (adapters, datasets, reports): their id, never their name,
    which is free text (other scripts, dots, spaces) and would otherwise be a path component."""
    return f"author-{author.id}"


class Source(BaseModel):
    """A place the author's writing is collected from: a URL (profile, feed, article, repo)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    author_id: int
    url: str
    platform: Platform
    render_js: bool = False
    """Fetch through a real Chromium because the pages need JavaScript."""
    created_at: datetime
    last_ingested_at: datetime | None = None


class PageValidators(BaseModel):
    """What we remember of the page a document came from, to skip it cheaply when it has not changed:
    the HTTP validators for a conditional GET, and a hash of the body for servers that send none."""

    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    document_id: int | None = None
    """The stored document this page became (set when read back from the store)."""


class RawDocument(BaseModel):
    """One piece of writing as collected, before cleaning. The URL is its identity per author."""

    url: str
    platform: Platform
    kind: Kind
    title: str | None = None
    published_at: datetime | None = None
    text: str
    """Main text as markdown (extracted from HTML, or as found in an export)."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """What the collector or export knew beyond the text; empty values are dropped."""
    page: PageValidators | None = None
    """Set for documents fetched from a web page: stored so the next run can skip the page if unchanged."""

    @field_validator("metadata")
    @classmethod
    def _drop_empty_metadata(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in metadata.items() if value not in (None, "", [], {})}


class Document(BaseModel):
    """The current version of a stored document."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    author_id: int
    source_id: int | None
    url: str
    platform: Platform
    kind: Kind
    title: str | None
    published_at: datetime | None
    version: int
    content_hash: str
    raw_text: str
    clean_text: str
    fetched_at: datetime
    embedded_version: int | None = None

    @property
    def word_count(self) -> int:
        return len(self.clean_text.split())


class Chunk(BaseModel):
    """A retrievable passage of one document version."""

    id: str
    document_id: int
    version: int
    author: str
    author_id: int
    platform: Platform
    kind: Kind
    url: str
    title: str | None
    index: int
    text: str
    published_at: datetime | None = None


class SearchHit(BaseModel):
    text: str
    score: float
    url: str
    title: str | None
    platform: Platform
    kind: Kind
    document_id: int
    version: int
    chunk_id: str


class UrlProblem(BaseModel):
    url: str
    reason: str


class IngestReport(BaseModel):
    author: str
    fetched: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    not_modified: int = 0
    """Of the unchanged, pages the server answered 304 to our conditional GET (not downloaded again)."""
    embedded_chunks: int = 0
    refused: list[UrlProblem] = Field(default_factory=list)
    failed: list[UrlProblem] = Field(default_factory=list)
    document_ids: list[int] = Field(default_factory=list)
    """Documents this run stored or confirmed (new, updated or unchanged)."""

    def merge(self, other: IngestReport) -> None:
        self.fetched += other.fetched
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.not_modified += other.not_modified
        self.embedded_chunks += other.embedded_chunks
        self.refused.extend(other.refused)
        self.failed.extend(other.failed)
        self.document_ids.extend(other.document_ids)


class Adapter(BaseModel):
    """A registered LoRA adapter version for one author."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    author_id: int
    version: int
    path: str
    base_model: str
    dataset_hash: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    active: bool
    created_at: datetime


class JobStatus(str, enum.Enum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class JobOwner(BaseModel):
    """The process that runs a job. A job whose owner is gone (its process exited) is failed, or resumed,
    by the next service to start on that host; jobs of live processes (a `twin train` beside the service,
    another service on the same database) are left alone."""

    host: str
    pid: int
    started: float
    """The process's start time (seconds since the epoch): a pid reused by a later process is not the owner."""

    @classmethod
    def current(cls) -> JobOwner:
        import os
        import socket

        import psutil

        return cls(host=socket.gethostname(), pid=os.getpid(), started=psutil.Process().create_time())

    def is_gone(self) -> bool:
        """True when the owner ran on this host and no longer runs; an owner on another host is not ours
        to judge."""
        import socket

        import psutil

        if self.host != socket.gethostname():
            return False
        try:
            process = psutil.Process(self.pid)
            return abs(process.create_time() - self.started) > 1.0 or process.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
        except psutil.AccessDenied:
            return False


class Job(BaseModel):
    """A long-running piece of work (e.g. training) whose status the CLI and the API can follow."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    author_id: int
    kind: str
    status: JobStatus
    progress: dict[str, Any]
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: datetime
    updated_at: datetime
    owner: JobOwner | None = None
    """None for jobs recorded before owners were (their process is presumed gone)."""


class RunStatus(str, enum.Enum):
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class Draft(BaseModel):
    """A post written by the twin, with the scores, critique and sources it was judged on."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    run_id: str | None
    author_id: int
    platform: Platform
    text: str
    scores: dict[str, Any]
    critique: dict[str, Any]
    sources: list[dict[str, Any]]
    status: DraftStatus
    origin: str
    created_at: datetime
    updated_at: datetime


class Run(BaseModel):
    """One agent run: the request, its plan, every step and tool call, and the drafts it produced."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    author_id: int
    author: str
    request: dict[str, Any]
    status: RunStatus
    plan: dict[str, Any] | None
    steps: list[dict[str, Any]]
    """Step records in order; tool calls are the ones with ``"kind": "tool_call"``."""
    error: str | None
    origin: str
    created_at: datetime
    updated_at: datetime
    drafts: list[Draft] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return [step for step in self.steps if step.get("kind") == "tool_call"]


class FeedbackPair(BaseModel):
    """A preference the author expressed in the inbox: ``chosen`` over ``rejected`` for one brief."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    author_id: int
    kind: str
    """``edit`` (the author's edit over the twin's draft) or ``choice`` (approved over discarded)."""
    platform: Platform
    brief: str | None
    chosen_draft_id: int
    rejected_draft_id: int
    chosen: str
    rejected: str
    created_at: datetime
    updated_at: datetime

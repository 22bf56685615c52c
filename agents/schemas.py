"""Typed boundary of the agent: what a caller sends, what it gets back, and the events in between.

Structured values the graph passes around (plan, passages, scored drafts) live here too, apart from the
graph state (``state.py``), as the LangGraph templates keep them.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from tools.schemas import Critique
from twin.domain import DraftPlatform, Platform, TwinError
from twin.settings import ServeSettings

MAX_DRAFTS = 5


class LimitExceeded(TwinError):
    """The request is well formed but asks for more than the service allows (too many links, too long)."""

    status_code = 422


class DraftRequest(BaseModel):
    """Ask the twin for posts: a brief, optional links to read first, the platform, how many drafts.

    ``platform`` is where the post goes; for ``github`` the brief says which piece (a README section by
    default, release notes, or a code snippet with commentary). Never ``chat``: private messages are
    training data, not a platform to draft for (refused with HTTP 400).
    """

    model_config = ConfigDict(extra="forbid")

    author: str = Field(min_length=1, max_length=200, description="The author whose twin writes.")
    prompt: str = Field(min_length=1, description="What to write about (the brief).")
    links: list[str] = Field(default_factory=list, description="Pages to read first (http/https only).")
    platform: DraftPlatform = Platform.linkedin
    drafts: int = Field(default=1, ge=1, le=MAX_DRAFTS, description="How many alternative drafts.")

    @field_validator("author", "prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("links")
    @classmethod
    def _http_links(cls, links: list[str]) -> list[str]:
        cleaned: list[str] = []
        for link in links:
            link = link.strip()
            parsed = urlsplit(link)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ValueError(f"{link!r} is not an http(s) URL")
            if link not in cleaned:
                cleaned.append(link)
        return cleaned

    @model_validator(mode="after")
    def _within_context_limits(self, info: ValidationInfo) -> DraftRequest:
        # `DraftRequest.model_validate(body, context={"limits": settings.serve})` checks the caps as part of
        # validation (a 400 with the field's reason); `check_limits` does the same for an existing object.
        limits = (info.context or {}).get("limits") if info.context else None
        if isinstance(limits, ServeSettings):
            problem = self.limit_problem(limits)
            if problem:
                raise ValueError(problem)
        return self

    def limit_problem(self, limits: ServeSettings) -> str | None:
        if len(self.links) > limits.max_links:
            return f"Too many links: {len(self.links)} given, at most {limits.max_links} per request."
        if len(self.prompt) > limits.max_prompt_chars:
            return (
                f"The prompt is too long: {len(self.prompt)} characters, at most {limits.max_prompt_chars}."
            )
        return None

    def check_limits(self, limits: ServeSettings) -> None:
        """Raise `LimitExceeded` (HTTP 422) with a clear message when the request exceeds the caps."""
        problem = self.limit_problem(limits)
        if problem:
            raise LimitExceeded(problem)


class Plan(BaseModel):
    """What the agent decided to do for a request."""

    platform: Platform
    drafts: int = Field(ge=1, le=MAX_DRAFTS)
    queries: list[str] = Field(description="What to retrieve from the author's own writing.")
    links: list[str] = Field(default_factory=list, description="Links to collect (always from the request).")
    planner: Literal["deterministic", "chat_model"] = "deterministic"


class SourceRef(BaseModel):
    """A source listed with a draft (document URL and the passage used)."""

    url: str
    title: str | None = None
    passage: str
    origin: Literal["retrieved", "link"] = "retrieved"
    document_id: int | None = None


class ScoredDraft(BaseModel):
    """One version of one draft with its scores."""

    text: str
    scores: dict[str, float] = Field(default_factory=dict)
    critique: Critique | None = Field(default=None, description="None until the critique node scored it.")
    revision: int = Field(default=0, description="0 for the first draft, n after n revisions.")
    completion_tokens: int = 0
    prompt: str = Field(default="", description="What the model was shown (echo checks compare against it).")
    removed: list[str] = Field(default_factory=list, description="What cleaning took out of the raw text.")

    @property
    def quality(self) -> float:
        """Ranking key among versions: usable first, then passing, then the overall score (weighted mean)."""
        if "overall" in self.scores:
            overall = self.scores["overall"]
        else:
            overall = sum(self.scores.values()) / len(self.scores) if self.scores else 0.0
        usable = 0.0 if self.critique and self.critique.rejected else 2.0
        return usable + (1.0 if self.critique and self.critique.passed else 0.0) + overall


class DraftOut(BaseModel):
    """A final draft as returned to the caller."""

    text: str
    scores: dict[str, float]
    critique: Critique
    sources: list[SourceRef]
    revisions: int = Field(description="How many revision rounds this draft went through.")
    draft_id: int | None = Field(default=None, description="Id of the stored draft.")


class ToolCallRecord(BaseModel):
    """One tool call as the run log keeps it."""

    kind: Literal["tool_call"] = "tool_call"
    node: str
    name: str
    args: dict[str, Any]
    ok: bool = True
    summary: str = ""


class RunResult(BaseModel):
    run_id: str
    author: str
    plan: Plan
    drafts: list[DraftOut]
    base_model_only: bool = Field(description="True when the author has no active adapter (plain base model).")
    adapter_version: int | None = None


class AgentEvent(BaseModel):
    """One item of a run's stream: a node starting or finishing, a token, a final draft, done or an error."""

    type: Literal["step", "token", "draft", "done", "error"]
    node: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

"""What the tools hand back: passages a draft may stand on, and the critique's verdict on a draft."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Passage(BaseModel):
    """A piece of text a draft may stand on: retrieved from the author's corpus or read from a link."""

    origin: Literal["retrieved", "link"]
    url: str
    title: str | None = None
    text: str
    document_id: int | None = None
    chunk_id: str | None = None
    score: float | None = None


class Critique(BaseModel):
    """The verdict on one draft version: pass/fail against the thresholds and why."""

    passed: bool
    reasons: list[str] = Field(default_factory=list, description="What is wrong, in words a reviser can act on.")
    unsupported_sentences: list[str] = Field(default_factory=list)
    rule_violations: list[str] = Field(default_factory=list)
    metrics: str = Field(default="evals", description="Which metric suite scored it.")
    rejected: bool = Field(
        default=False,
        description="Not a post at all (an echo of the prompt, a restated title, a loop, an assistant's reply, "
        "invented links, copied text): never selected while any other version is not.",
    )

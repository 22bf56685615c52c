"""The eval report's options and results: what `twin eval` takes and what it writes as report.json."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from evals.variants import (
    VARIANT_LABELS,
    VARIANTS,
    HeldOutItem,
    Variant,
)

if TYPE_CHECKING:
    pass


METRICS: tuple[str, ...] = ("style", "stylometry", "grounding", "rules", "privacy", "copying", "overall", "passed")
METRIC_LABELS: dict[str, str] = {
    "style": "style P(author)",
    "stylometry": "stylometry (1 - distance)",
    "grounding": "grounding",
    "rules": "platform rules",
    "privacy": "privacy",
    "copying": "copying (1 - copied)",
    "overall": "overall",
    "passed": "passed",
}
REFERENCE = "reference"
"""The author's own held-out text, scored like a variant: the ceiling the twin aims at."""



def group_label(group: str) -> str:
    """A variant's name as the report shows it (``reference`` is the author's own text)."""
    return VARIANT_LABELS.get(group, "author's own held-out text" if group == REFERENCE else group)


ProgressFn = Callable[[str, int, int], None]


def no_progress(stage: str, done: int, total: int) -> None:
    return None


class EvalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int | None = Field(default=None, ge=1)
    """Held-out documents to evaluate (default: all of the test split)."""
    variants: list[Variant] = Field(default_factory=lambda: list(VARIANTS))
    retrieve_k: int | None = None
    """Passages in the retrieval variants' prompts; default ``settings.agent.retrieve_k``."""
    max_new_tokens: int | None = None
    """Default ``settings.serve.max_new_tokens`` (what the agent uses too)."""
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int = 0
    generic_samples: int = 32
    """Base-model answers generated as the generic voice when the adapter has no DPO data."""
    agent_concurrency: int = 2
    opik: bool | None = None
    """Log an Opik experiment; default: when Opik is configured."""


class ScoredOutput(BaseModel):
    variant: str
    document_id: int
    instruction: str
    text: str
    words: int
    passages: list[str] = Field(default_factory=list)
    """What grounding was checked against (what the variant saw, or the instruction's retrieved passages)."""
    scores: dict[str, float | None]
    reasons: list[str]
    seconds: float | None = None
    revisions: int | None = None
    error: str | None = None


class MetricSummary(BaseModel):
    mean: float | None
    std: float | None
    n: int


class PerplexitySummary(BaseModel):
    base: float
    adapter: float
    ratio: float
    source: str
    """``adapter_metrics`` (from training) or ``computed`` (here, on the test split)."""
    examples: int | None = None


class Headline(BaseModel):
    """The number that matters: the full agent against the base model."""

    agent_style: float | None
    base_style: float | None
    agent_grounding: float | None
    base_grounding: float | None
    style_beats_base: bool
    grounding_not_worse: bool
    verdict: str


class EvalReport(BaseModel):
    author: str
    created_at: datetime
    adapter_version: int
    adapter_path: str
    adapter_params: dict[str, Any]
    base_model: str
    data_source: str
    variants: list[str]
    items: list[HeldOutItem]
    outputs: list[ScoredOutput]
    means: dict[str, dict[str, float | None]]
    """variant -> metric -> mean (the report's table); ``reference`` is the author's own held-out text."""
    summary: dict[str, dict[str, MetricSummary]]
    perplexity: PerplexitySummary | None
    classifier: dict[str, Any]
    generic_source: str
    settings: dict[str, Any]
    timings_s: dict[str, float]
    opik: dict[str, Any] = Field(default_factory=dict)
    out_dir: Path | None = None
    files: dict[str, str] = Field(default_factory=dict)

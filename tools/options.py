"""Settings the tools take from the run (the graph's context builds them)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ToolOptions(BaseModel):
    retrieve_k: int = Field(default=6, ge=1, le=50)
    max_new_tokens: int = Field(default=256, ge=1)
    temperature: float = Field(default=0.7, ge=0.0)
    top_p: float = Field(default=0.9, gt=0.0, le=1.0)
    few_shot_examples: int = Field(default=3, ge=0, le=10)
    """The author's own posts shown to the bare base model as earlier turns (the adapter needs none)."""
    prompt_passages: int = Field(default=3, ge=0, le=20)
    """Passages quoted in the draft prompt (the adapter sees only the request's link excerpts)."""
    candidates: int = Field(default=4, ge=1, le=8)
    """Drafts written at once for each slot (best-of-N); the critique keeps the best."""
    repetition_penalty: float = Field(default=1.1, ge=1.0, le=3.0)
    no_repeat_ngram_size: int = Field(default=6, ge=0, le=16)
    style_threshold: float = 0.5
    """Least P(author | draft) from the style classifier (measured when the adapter has DPO data)."""
    stylometry_threshold: float = 0.75
    """Least closeness to the author's stylometric profile (1 - distance)."""
    grounding_threshold: float = 0.5
    """Least fraction of the draft's sentences supported by the passages."""
    topic_threshold: float = 0.25
    """Least on-topic score (draft-brief similarity, rescaled; see `evals.scoring.score_draft`)."""
    link_excerpt_words: int = Field(default=220, ge=20)
    """Words of each ingested link's text handed back as passages."""

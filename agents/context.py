"""Run-time settings of the graph (its ``context_schema``), read in nodes through ``runtime.context``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from twin.settings import Settings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.tools import BaseTool

    from tools.options import ToolOptions


@dataclass(kw_only=True)
class AgentContext:
    """Knobs of one run. Build it with :meth:`from_settings`; tests override single fields."""

    tools: Sequence[BaseTool] = field(default_factory=tuple)
    """The run's fixed tool set (`tools.build_tools`), bound to its author and to the request's links."""
    chat_model: BaseChatModel | None = None
    """A tool-calling chat model that plans and calls tools; None uses the deterministic planner."""
    max_revisions: int = 2
    """Revision rounds after the first draft, at most."""
    style_threshold: float = 0.5
    """Lowest acceptable P(author | draft) from the style classifier."""
    stylometry_threshold: float = 0.75
    """Lowest acceptable closeness to the author's stylometric profile (1 - distance)."""
    grounding_threshold: float = 0.5
    """Lowest acceptable fraction of a draft's sentences supported by the passages."""
    topic_threshold: float = 0.25
    """Lowest acceptable on-topic score (draft-brief similarity)."""
    retrieve_k: int = 6
    """Passages retrieved per query."""
    max_passages: int = 8
    """Passages (retrieved plus link excerpts) quoted in the draft prompt."""
    few_shot_examples: int = 3
    """The author's own posts for the same platform shown as examples."""
    candidates: int = 4
    """Drafts written at once per slot (best-of-N, batched by the model deployment)."""
    max_new_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.9
    max_planner_turns: int = 4
    """Chat-model planner: model turns (each may call tools) before drafting starts anyway."""

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> AgentContext:
        values: dict[str, object] = {
            "max_revisions": settings.agent.max_revisions,
            "style_threshold": settings.agent.style_threshold,
            "grounding_threshold": settings.agent.grounding_threshold,
            "retrieve_k": settings.agent.retrieve_k,
            "max_new_tokens": settings.serve.max_new_tokens,
            "candidates": settings.agent.candidates,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def tool_options(self) -> ToolOptions:
        """The subset of these knobs the tools need."""
        from tools.options import ToolOptions

        return ToolOptions(
            retrieve_k=self.retrieve_k,
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            few_shot_examples=self.few_shot_examples,
            candidates=self.candidates,
            style_threshold=self.style_threshold,
            stylometry_threshold=self.stylometry_threshold,
            grounding_threshold=self.grounding_threshold,
            topic_threshold=self.topic_threshold,
        )

    def tool(self, name: str) -> BaseTool:
        for candidate in self.tools:
            if candidate.name == name:
                return candidate
        raise LookupError(f"The run has no tool named {name!r}.")

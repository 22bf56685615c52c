"""The LangChain tools the agent may call: a fixed set, each a thin body over a stage package.

`build_tools(deps, author, allowed_links=...)` returns them bound to one author (and to the links of one
request, the only links `ingest_links` will fetch). Each tool returns ``(content, artifact)``: the content
is what a chat model reads (outside text always quoted), the artifact the typed result the graph uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tools.options import ToolOptions

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

    from agents.deps import AgentDeps
    from twin.domain import Author

TOOL_NAMES = ("ingest_links", "retrieve", "generate_draft", "evaluate_draft")

__all__ = ["TOOL_NAMES", "ToolOptions", "build_tools"]


def build_tools(
    deps: AgentDeps,
    author: Author,
    *,
    allowed_links: Sequence[str] = (),
    options: ToolOptions | None = None,
) -> list[BaseTool]:
    """The agent's tools for `author`; `ingest_links` refuses any link not in `allowed_links`."""
    from tools.evaluate import make_evaluate_draft
    from tools.generate import make_generate_draft
    from tools.ingest import RunLinks, make_ingest_links
    from tools.retrieve import make_retrieve

    options = options or ToolOptions()
    run_links = RunLinks()
    return [
        make_ingest_links(deps, author, allowed_links, options, run_links),
        make_retrieve(deps, author, options, run_links),
        make_generate_draft(deps, author, options, exclude_urls=allowed_links),
        make_evaluate_draft(deps, author, options, exclude_urls=allowed_links),
    ]

"""The plan: what to collect, what to retrieve, how many drafts for which platform.

By default the plan follows from the request alone (deterministic). When a tool-calling chat model is
configured, it decides the retrieval queries and calls `ingest_links` and `retrieve` itself, through
LangGraph's `ToolNode`; :func:`plan_from_model_turns` turns what it did back into a typed `Plan`.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage

from agents.schemas import DraftRequest, Plan, ToolCallRecord
from tools.schemas import Passage

QUERY_CHARS = 300

PLANNER_TOOLS = ("ingest_links", "retrieve")
"""The tools a chat-model planner may call; drafting and critique stay with the graph."""


def deterministic_plan(request: DraftRequest) -> Plan:
    """Collect the request's links, retrieve with the brief, write the asked number of drafts."""
    return Plan(
        platform=request.platform,
        drafts=request.drafts,
        queries=[request.prompt[:QUERY_CHARS]],
        links=list(request.links),
    )


def plan_from_model_turns(base: Plan, messages: Sequence[AnyMessage]) -> Plan:
    """The plan a chat model followed: its retrieval queries and the links it collected."""
    queries: list[str] = []
    links: list[str] = []
    for message in messages:
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                if call["name"] == "retrieve" and isinstance(call["args"].get("query"), str):
                    queries.append(call["args"]["query"])
                elif call["name"] == "ingest_links":
                    links.extend(str(link) for link in call["args"].get("links", []))
    return base.model_copy(
        update={
            "queries": list(dict.fromkeys(queries)) or base.queries,
            "links": list(dict.fromkeys(links)),
            "planner": "chat_model",
        }
    )


def tool_results(messages: Sequence[AnyMessage]) -> tuple[list[ToolCallRecord], list[Passage], list[dict]]:
    """From a planner conversation: the tool calls made, the passages they returned, the ingest reports."""
    calls: dict[str, dict] = {}
    for message in messages:
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                calls[call["id"] or ""] = call
    records: list[ToolCallRecord] = []
    passages: list[Passage] = []
    reports: list[dict] = []
    for message in messages:
        if not isinstance(message, ToolMessage):
            continue
        call = calls.get(message.tool_call_id, {"name": message.name or "?", "args": {}})
        ok = message.status != "error"
        artifact = message.artifact
        summary = str(message.content)[:200]
        if ok and call["name"] == "retrieve" and isinstance(artifact, list):
            found = [Passage.model_validate(p) for p in artifact]
            passages.extend(found)
            summary = f"{len(found)} passage(s)"
        elif ok and call["name"] == "ingest_links" and artifact is not None:
            from tools.ingest import IngestLinksResult

            result = IngestLinksResult.model_validate(artifact)
            passages.extend(result.passages)
            reports.append(summarize_ingest(result))
            summary = result.summary()
        records.append(ToolCallRecord(node="tools", name=call["name"], args=call["args"], ok=ok, summary=summary))
    return records, passages, reports


def summarize_ingest(result: object) -> dict:
    """A JSON-able summary of an `IngestLinksResult` for the state and the run log."""
    from tools.ingest import IngestLinksResult

    assert isinstance(result, IngestLinksResult)
    return {
        "document_ids": result.report.document_ids,
        "new": result.report.new,
        "updated": result.report.updated,
        "unchanged": result.report.unchanged,
        "refused": [p.model_dump() for p in [*result.not_allowed, *result.report.refused]],
        "failed": [p.model_dump() for p in result.report.failed],
    }

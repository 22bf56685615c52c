"""The agent graph: plan -> ingest (when links) -> retrieve -> draft -> critique -> revise (at most N) -> final.

With a chat model in the context, planning is a loop of the model and LangGraph's `ToolNode` (it calls
`ingest_links` and `retrieve` itself) before drafting starts. Nodes are module-level functions that read
the run's tools and knobs from ``runtime.context`` (`AgentContext`); routers return `Literal[...]`.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Literal

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from agents.context import AgentContext
from agents.plan import (
    PLANNER_TOOLS,
    deterministic_plan,
    plan_from_model_turns,
    summarize_ingest,
    tool_results,
)
from agents.prompts import planner_system_prompt
from agents.schemas import DraftOut, ScoredDraft, SourceRef, ToolCallRecord
from agents.state import InputState, State
from tools.schemas import Passage

NODES = ("plan", "agent", "tools", "collect", "ingest", "retrieve", "draft", "critique", "revise", "final")


def _loggable(args: dict[str, Any]) -> dict[str, Any]:
    """Tool arguments as the run log keeps them: long texts clipped, passage lists counted."""
    logged: dict[str, Any] = {}
    for key, value in args.items():
        if key == "passages" and isinstance(value, list):
            logged[key] = f"{len(value)} passage(s)"
        elif key == "prompt" and isinstance(value, str):
            logged[key] = f"{len(value)} characters"  # it quotes outside text; the log keeps only its size
        elif isinstance(value, str) and len(value) > 300:
            logged[key] = value[:300] + "…"
        elif hasattr(value, "value"):
            logged[key] = value.value
        else:
            logged[key] = value
    return logged


async def _call_tool(
    runtime: Runtime[AgentContext], node: str, name: str, args: dict[str, Any], call_id: str | None = None
) -> tuple[Any, ToolCallRecord]:
    tool = runtime.context.tool(name)
    call = {"type": "tool_call", "name": name, "args": args, "id": call_id or uuid.uuid4().hex}
    message = await tool.ainvoke(call)
    summary = str(message.content).splitlines()[0][:200] if message.content else ""
    return message.artifact, ToolCallRecord(node=node, name=name, args=_loggable(args), summary=summary)


# --------------------------------------------------------------------------------------------- nodes
async def plan(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    return {"plan": deterministic_plan(state["request"]), "revision_round": 0, "passages": [], "drafts": []}


async def agent(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """The chat-model planner's turn: it answers with tool calls or with READY."""
    request = state["request"]
    model = runtime.context.chat_model
    assert model is not None, "the agent node runs only with a chat model in the context"
    history = list(state.get("messages") or [])
    new: list[Any] = []
    if not history:
        new = [
            SystemMessage(planner_system_prompt(request.author, request.platform, request.links)),
            HumanMessage(request.prompt),
        ]
    tools = [t for t in runtime.context.tools if t.name in PLANNER_TOOLS]
    response = await model.bind_tools(tools).ainvoke([*history, *new])
    return {"messages": [*new, response]}


async def tools(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Run the planner's tool calls through LangGraph's ToolNode (only the planner's tools exist there)."""
    from langgraph.prebuilt import ToolNode

    node = ToolNode([t for t in runtime.context.tools if t.name in PLANNER_TOOLS], handle_tool_errors=True)
    output = await node.ainvoke({"messages": state["messages"]})
    records, _, _ = tool_results([state["messages"][-1], *output["messages"]])
    return {"messages": output["messages"], "tool_calls": records}


async def collect(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Turn what the planner did into the typed plan and the passages (its tool calls are logged already)."""
    messages = state.get("messages") or []
    _, passages, reports = tool_results(messages)
    return {
        "plan": plan_from_model_turns(state["plan"], messages),
        "passages": _select_passages(passages, runtime.context.max_passages),
        "ingest": reports[-1] if reports else {},
    }


async def ingest(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    result, record = await _call_tool(runtime, "ingest", "ingest_links", {"links": state["plan"].links})
    return {"ingest": summarize_ingest(result), "passages": list(result.passages), "tool_calls": [record]}


async def retrieve(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    plan_ = state["plan"]
    found: list[Passage] = list(state.get("passages") or [])
    records: list[ToolCallRecord] = []
    for query in plan_.queries:
        passages, record = await _call_tool(runtime, "retrieve", "retrieve", {"query": query, "k": runtime.context.retrieve_k})
        found.extend(passages)
        records.append(record)
    return {"passages": _select_passages(found, runtime.context.max_passages), "tool_calls": records}


def _select_passages(passages: list[Passage], limit: int) -> list[Passage]:
    """Link excerpts first, then retrieved passages by score; no chunk twice, no link page twice."""
    link_docs = {p.document_id for p in passages if p.origin == "link"}
    # A linked page's excerpt, then its chunks that `retrieve` found (each once, over every query).
    chosen: list[Passage] = list({(p.document_id, p.chunk_id): p for p in passages if p.origin == "link"}.values())
    seen_chunks: set[str] = set()
    for passage in sorted((p for p in passages if p.origin == "retrieved"), key=lambda p: -(p.score or 0.0)):
        if passage.chunk_id in seen_chunks or passage.document_id in link_docs:
            continue
        seen_chunks.add(passage.chunk_id or "")
        chosen.append(passage)
    return chosen[:limit]


def draft_call_id(slot: int) -> str:
    """Tool-call id of a generation for draft `slot`; streamed tokens carry it (see `run.py`)."""
    return f"draft-{slot}-{uuid.uuid4().hex[:8]}"


async def _generate(
    runtime: Runtime[AgentContext], node: str, state: State, slot: int, **extra: Any
) -> tuple[Any, ToolCallRecord]:
    request = state["request"]
    args = {
        "brief": request.prompt,
        "platform": state["plan"].platform,
        "passages": [p.model_dump() for p in state.get("passages") or []],
        "candidates": runtime.context.candidates,
        **extra,
    }
    return await _call_tool(runtime, node, "generate_draft", args, call_id=draft_call_id(slot))


def _versions(generation: Any, revision: int) -> list[ScoredDraft]:
    """Every candidate of one generate call as a version of its slot (the critique scores each)."""
    candidates = getattr(generation, "candidates", None) or [generation]
    return [
        ScoredDraft(text=c.text, revision=revision, completion_tokens=c.completion_tokens,
                    prompt=getattr(generation, "prompt", ""), removed=list(getattr(c, "removed", [])))
        for c in candidates
    ]


async def draft(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    # Concurrent, and N candidates per call: the model deployment batches them all into one forward pass
    # per token, so best-of-N costs little more than one draft.
    results = await asyncio.gather(*(_generate(runtime, "draft", state, slot) for slot in range(state["plan"].drafts)))
    slots = [_versions(generation, 0) for generation, _ in results]
    records = [record for _, record in results]
    generation = results[-1][0] if results else None
    return {
        "drafts": slots,
        "tool_calls": records,
        "base_model_only": generation.base_model_only if generation else True,
        "adapter_version": generation.adapter_version if generation else None,
    }


def _grounding_passages(state: State) -> tuple[list[str], bool]:
    """What a draft must be grounded in: the request's links when there are any (required); otherwise the
    author's retrieved past posts, measured but not required (they are background, not facts to repeat)."""
    passages = state.get("passages") or []
    links = [p.text for p in passages if p.origin == "link"]
    if links:
        return links, True
    return [p.text for p in passages], False


async def critique(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    passages, required = _grounding_passages(state)
    slots = [list(versions) for versions in state["drafts"]]
    records: list[ToolCallRecord] = []
    for versions in slots:
        for index, version in enumerate(versions):
            if version.critique is not None:
                continue
            evaluation, record = await _call_tool(
                runtime,
                "critique",
                "evaluate_draft",
                {"text": version.text, "platform": state["plan"].platform, "passages": passages,
                 "brief": state["request"].prompt, "prompt": version.prompt, "grounding_required": required},
            )
            versions[index] = version.model_copy(update={"scores": evaluation.scores, "critique": evaluation.critique})
            records.append(record)
    return {"drafts": slots, "tool_calls": records}


async def revise(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Slots with no passing version get a fresh set of candidates (new seeds, the same prompt).

    The critique is not fed back into the prompt: a small model copies whatever text stands there, and
    measured on held-out titles, resampling beat rewriting-with-feedback (see benchmarks/twin_quality.py).
    """
    slots = [list(versions) for versions in state["drafts"]]
    round_ = state.get("revision_round", 0) + 1
    failing = [slot for slot, versions in enumerate(slots) if not any(_passed(v) for v in versions)]
    results = await asyncio.gather(*(_generate(runtime, "revise", state, slot) for slot in failing))
    for slot, (generation, _) in zip(failing, results, strict=True):
        slots[slot].extend(_versions(generation, round_))
    return {"drafts": slots, "tool_calls": [record for _, record in results], "revision_round": round_}


def _passed(version: ScoredDraft) -> bool:
    return version.critique is not None and version.critique.passed


async def final(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Keep the best version of each draft (usable, then passing, then by scores) with its sources.

    A version the critique rejected as not a post (an echo, a loop, an assistant's reply) is never returned:
    when every version of a slot was rejected, the slot comes back empty with the reasons.
    """
    sources = [
        SourceRef(url=p.url, title=p.title, passage=p.text, origin=p.origin, document_id=p.document_id)
        for p in state.get("passages") or []
    ]
    out: list[DraftOut] = []
    for versions in state["drafts"]:
        best = max(versions, key=lambda v: (v.quality, -v.revision))
        assert best.critique is not None
        if best.critique.rejected:
            reasons = sorted({r for v in versions for r in (v.critique.reasons if v.critique else [])})
            critique = best.critique.model_copy(update={
                "passed": False,
                "reasons": [f"Every one of the {len(versions)} candidates was discarded as unusable.", *reasons],
            })
            out.append(DraftOut(text="", scores={}, critique=critique, sources=sources, revisions=best.revision))
            continue
        out.append(DraftOut(text=best.text, scores=best.scores, critique=best.critique, sources=sources,
                            revisions=best.revision))
    return {"final": out}


# -------------------------------------------------------------------------------------------- routers
def route_after_plan(state: State, runtime: Runtime[AgentContext]) -> Literal["agent", "ingest", "retrieve"]:
    if runtime.context.chat_model is not None:
        return "agent"
    return "ingest" if state["plan"].links else "retrieve"


def route_after_agent(state: State, runtime: Runtime[AgentContext]) -> Literal["tools", "collect"]:
    messages = state.get("messages") or []
    turns = sum(1 for m in messages if isinstance(m, AIMessage))
    last = messages[-1] if messages else None
    if isinstance(last, AIMessage) and last.tool_calls and turns < runtime.context.max_planner_turns:
        return "tools"
    return "collect"


def route_after_critique(state: State, runtime: Runtime[AgentContext]) -> Literal["revise", "final"]:
    if all(any(_passed(v) for v in versions) for versions in state["drafts"]):
        return "final"
    if state.get("revision_round", 0) >= runtime.context.max_revisions:
        return "final"
    return "revise"


def build_graph(checkpointer: BaseCheckpointSaver | None = None) -> CompiledStateGraph:
    """Compile the agent graph; pass a checkpointer to persist runs (thread id = run id)."""
    builder = StateGraph(State, input_schema=InputState, context_schema=AgentContext)
    for name, fn in (
        ("plan", plan),
        ("agent", agent),
        ("tools", tools),
        ("collect", collect),
        ("ingest", ingest),
        ("retrieve", retrieve),
        ("draft", draft),
        ("critique", critique),
        ("revise", revise),
        ("final", final),
    ):
        builder.add_node(name, fn)
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", route_after_plan)
    builder.add_conditional_edges("agent", route_after_agent)
    builder.add_edge("tools", "agent")
    builder.add_edge("collect", "draft")
    builder.add_edge("ingest", "retrieve")
    builder.add_edge("retrieve", "draft")
    builder.add_edge("draft", "critique")
    builder.add_conditional_edges("critique", route_after_critique)
    builder.add_edge("revise", "critique")
    builder.add_edge("final", END)
    return builder.compile(checkpointer=checkpointer, name="twin-agent")

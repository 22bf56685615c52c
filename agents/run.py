"""Run the agent for one request: stream its steps and tokens, store the run and its drafts.

`run_agent` is what the HTTP API streams (server-sent events) and `run_to_completion` what a plain JSON
endpoint or the CLI awaits. Every run is stored through the `DocumentStore` (request, plan, each step
and tool call, drafts with their scores, critiques and sources) and, with a checkpointer, checkpointed by
LangGraph under ``thread_id = run_id``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StateSnapshot

from agents.context import AgentContext
from agents.deps import AgentDeps
from agents.graph import build_graph
from agents.schemas import AgentEvent, DraftOut, DraftRequest, Plan, RunResult, ToolCallRecord
from twin.domain import Author, Conflict, RunStatus, TwinError

log = logging.getLogger("twin.agent")


def prepare_run(deps: AgentDeps, request: DraftRequest) -> Author:
    """Check a request before anything starts: limits (422) and the author (404)."""
    request.check_limits(deps.settings.serve)
    return deps.store.get_author(request.author)


def run_config(run_id: str, callbacks: list[Any] | None = None) -> dict[str, Any]:
    return {"configurable": {"thread_id": run_id}, "callbacks": callbacks or [], "recursion_limit": 60}


async def run_agent(
    deps: AgentDeps,
    request: DraftRequest,
    run_id: str | None = None,
    *,
    origin: str = "chat",
    context: AgentContext | None = None,
) -> AsyncIterator[AgentEvent]:
    """Stream a run: ``step`` events as nodes start and finish, ``token`` events while drafting, one
    ``draft`` event per final draft, then ``done`` with the `RunResult` (or ``error``, which ends it).

    Request problems (limits, unknown author) raise before the first event.
    """
    async for event in _execute(deps, request, run_id, origin, context, raise_errors=False):
        yield event


async def run_to_completion(
    deps: AgentDeps,
    request: DraftRequest,
    run_id: str | None = None,
    *,
    origin: str = "chat",
    context: AgentContext | None = None,
) -> RunResult:
    """Run to the end and return the result; errors raise (a `TwinError` keeps its HTTP status)."""
    result: RunResult | None = None
    async for event in _execute(deps, request, run_id, origin, context, raise_errors=True):
        if event.type == "done":
            result = RunResult.model_validate(event.data["result"])
    assert result is not None
    return result


def _slot(chunk: dict[str, Any]) -> int:
    """The draft a streamed token belongs to (its generation's tool-call id is ``draft-<slot>-...``)."""
    call = str(chunk.get("call") or "")
    parts = call.split("-")
    return int(parts[1]) if len(parts) > 2 and parts[0] == "draft" and parts[1].isdigit() else 0


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _summary(node: str, update: dict[str, Any]) -> str:
    if "plan" in update and node in ("plan", "collect"):
        plan: Plan = update["plan"]
        text = (
            f"{plan.planner} plan: {plan.drafts} {plan.platform.value} draft(s), "
            f"{len(plan.queries)} retrieval query(ies), {len(plan.links)} link(s)"
        )
        if "passages" in update and node == "collect":
            text += f"; {len(update['passages'])} passage(s)"
        return text
    if node == "ingest":
        report = update.get("ingest", {})
        return (
            f"{len(report.get('document_ids', []))} page(s) read, {len(report.get('refused', []))} refused, "
            f"{len(report.get('failed', []))} failed"
        )
    if node == "retrieve":
        return f"{len(update.get('passages', []))} passage(s) for the prompt"
    if node in ("draft", "revise"):
        return f"{len(update.get('tool_calls', []))} draft(s) written"
    if node == "critique":
        verdicts = []
        for versions in update.get("drafts", []):
            latest = versions[-1]
            if latest.critique is None:
                continue
            scores = ", ".join(f"{k}={v:.2f}" for k, v in latest.scores.items())
            verdicts.append(f"{'passed' if latest.critique.passed else 'failed'} ({scores})")
        return "; ".join(verdicts)
    if node == "final":
        return f"{len(update.get('final', []))} final draft(s)"
    if node == "agent":
        messages = update.get("messages", [])
        calls = [c["name"] for c in getattr(messages[-1], "tool_calls", [])] if messages else []
        return f"planner calls {', '.join(calls)}" if calls else "planner is ready"
    if node == "tools":
        return f"{len(update.get('messages', []))} tool result(s)"
    return ""


def _opik_tracer(deps: AgentDeps, graph: CompiledStateGraph, run_id: str, author: str) -> Any:
    if deps.opik_client is None:
        return None
    import opik
    from opik.integrations.langchain import OpikTracer

    # The tracer logs through opik's current client; make that ours for this run's context.
    opik.set_global_client(deps.opik_client, context_wise=True)
    return OpikTracer(
        graph=graph.get_graph(xray=True),
        project_name=deps.settings.opik_project,
        tags=["agent", author],
        metadata={"run_id": run_id},
    )


def _log_feedback(tracer: Any, drafts: list[DraftOut]) -> None:
    """Attach the critique scores of the final drafts to the run's trace (mean over drafts)."""
    if tracer is None or not drafts:
        return
    names = sorted({name for d in drafts for name in d.scores})
    for trace in tracer.created_traces():
        for name in names:
            values = [d.scores[name] for d in drafts if name in d.scores]
            trace.log_feedback_score(name=name, value=sum(values) / len(values))
        trace.log_feedback_score(name="passed", value=sum(d.critique.passed for d in drafts) / len(drafts))


async def can_resume(checkpointer: Any, run_id: str, graph: CompiledStateGraph | None = None) -> bool:
    """Whether the run has a checkpoint with work left (what `resume_run` continues from)."""
    if checkpointer is None:
        return False
    state = await (graph or build_graph(checkpointer)).aget_state(run_config(run_id))
    # A step cut off before its checkpoint was taken leaves the checkpoint before it, with the step's saved
    # writes: `next` is then empty but the step is among the tasks (its writes are applied, not re-run).
    return bool(state.tasks)


async def resume_run(
    deps: AgentDeps, run_id: str, *, context: AgentContext | None = None, raise_errors: bool = False
) -> AsyncIterator[AgentEvent]:
    """Continue a run that stopped part-way (the client went away, the service restarted, the model was
    down) from its last checkpoint: finished steps are not run again. Streams like `run_agent`; with
    ``raise_errors`` a failure raises instead of ending the stream with an ``error`` event."""
    run = await asyncio.to_thread(deps.store.get_run, run_id)
    if run.status is RunStatus.succeeded:
        raise Conflict(f"Run {run_id} already finished.")
    if run.status is RunStatus.running:
        raise Conflict(f"Run {run_id} is still running.")
    if deps.checkpointer is None:
        raise TwinError("Resuming a run needs the checkpointer.")
    state = await build_graph(deps.checkpointer).aget_state(run_config(run_id))
    if not state.tasks:
        raise Conflict(f"Run {run_id} has no checkpoint to continue from; start a new run.")
    done = frozenset(task.id for task in state.tasks if task.result is not None)
    request = DraftRequest.model_validate(run.request)
    async for event in _execute(deps, request, run_id, run.origin, context, raise_errors=raise_errors,
                                resume=True, done_tasks=done):
        yield event


async def resume_to_completion(deps: AgentDeps, run_id: str, *, context: AgentContext | None = None) -> RunResult:
    """`resume_run` to the end; errors raise (a `TwinError` keeps its HTTP status)."""
    result: RunResult | None = None
    async for event in resume_run(deps, run_id, context=context, raise_errors=True):
        if event.type == "done":
            result = RunResult.model_validate(event.data["result"])
    assert result is not None
    return result


async def _execute(
    deps: AgentDeps,
    request: DraftRequest,
    run_id: str | None,
    origin: str,
    context: AgentContext | None,
    *,
    raise_errors: bool,
    resume: bool = False,
    done_tasks: frozenset[str] = frozenset(),
) -> AsyncIterator[AgentEvent]:
    from tools import build_tools

    author = prepare_run(deps, request)
    # Store writes run in a thread: a synchronous SQLite write on the event loop would wait on the lock
    # held by the checkpointer's aiosqlite connection, whose commit needs the event loop (a deadlock).
    if resume:
        assert run_id is not None
        run = await asyncio.to_thread(deps.store.update_run, run_id, status=RunStatus.running)
        await asyncio.to_thread(deps.store.add_run_steps, run_id, [{"kind": "resumed", "at": _now()}])
    else:
        run = await asyncio.to_thread(
            deps.store.create_run, author, request.model_dump(mode="json"), run_id=run_id, origin=origin
        )
    context = context or AgentContext.from_settings(deps.settings, chat_model=deps.chat_model)
    context = dataclasses.replace(
        context, tools=build_tools(deps, author, allowed_links=request.links, options=context.tool_options())
    )
    graph = build_graph(deps.checkpointer)
    tracer = _opik_tracer(deps, graph, run.id, author.name)
    config = run_config(run.id, [tracer] if tracer else None)
    status = "resumed" if resume else "started"
    yield AgentEvent(type="step", node="run", data={"status": status, "run_id": run.id, "at": _now()})

    values: dict[str, Any] = {}
    node_by_task: dict[str, str] = {}
    finished = False
    try:
        async for mode, chunk in graph.astream(
            None if resume else {"request": request},
            config,
            context=context,
            stream_mode=["tasks", "custom", "values"],
        ):
            if mode == "values":
                values = chunk
            elif mode == "custom" and isinstance(chunk, dict) and "token" in chunk:
                node = next(reversed(node_by_task.values()), None)
                yield AgentEvent(type="token", node=node, data={"text": chunk["token"], "draft": _slot(chunk)})
            elif mode == "tasks" and chunk["id"] in done_tasks:
                continue  # finished before the run stopped: its saved writes are applied, it does not run
            elif mode == "tasks" and "result" not in chunk:
                node_by_task[chunk["id"]] = chunk["name"]
                yield AgentEvent(type="step", node=chunk["name"], data={"status": "started", "at": _now()})
            elif mode == "tasks":
                node = node_by_task.pop(chunk["id"], chunk["name"])
                update = chunk.get("result") or {}
                yield await _record_step(deps, run.id, node, update, chunk.get("error"))
        drafts = await asyncio.to_thread(_store_drafts, deps, author, run.id, values, origin)
        for draft in drafts:
            yield AgentEvent(type="draft", node="final", data=draft.model_dump(mode="json"))
        result = RunResult(
            run_id=run.id,
            author=author.name,
            plan=values["plan"],
            drafts=drafts,
            base_model_only=values.get("base_model_only", True),
            adapter_version=values.get("adapter_version"),
        )
        result_step = {"kind": "result", "base_model_only": result.base_model_only,
                       "adapter_version": result.adapter_version, "at": _now()}
        await asyncio.to_thread(deps.store.add_run_steps, run.id, [result_step])
        await asyncio.to_thread(deps.store.update_run, run.id, status=RunStatus.succeeded)
        finished = True
        _log_feedback(tracer, drafts)
        yield AgentEvent(type="done", node=None, data={"result": result.model_dump(mode="json")})
    except Exception as exc:  # noqa: BLE001 - recorded on the run, then reported or re-raised
        finished = True
        message = str(exc) if isinstance(exc, TwinError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, TwinError):
            log.exception("agent run %s failed", run.id)
        await asyncio.to_thread(deps.store.update_run, run.id, status=RunStatus.failed, error=message)
        if raise_errors:
            raise
        status_code = exc.status_code if isinstance(exc, TwinError) else 500
        yield AgentEvent(
            type="error", node=None, data={"message": message, "status_code": status_code, "run_id": run.id}
        )
    finally:
        if not finished:  # the caller stopped listening (client gone, timeout): say so on the run
            # Shielded: the caller is being cancelled, and the note must be written all the same.
            await asyncio.shield(asyncio.ensure_future(_record_interruption(deps, graph, run.id)))


async def _record_interruption(deps: AgentDeps, graph: CompiledStateGraph, run_id: str) -> None:
    """Mark a run the caller stopped as failed, saying it can be resumed only when a checkpoint allows it."""
    try:
        resumable = await can_resume(deps.checkpointer, run_id, graph)
    except Exception:  # noqa: BLE001 - unknown is "not resumable": never advertise what may not work
        log.exception("run %s: could not read its checkpoint", run_id)
        resumable = False
    error = "The run was stopped before it finished"
    error += "; it can be resumed from its last checkpoint." if resumable else " (no checkpoint to resume from)."
    await asyncio.to_thread(deps.store.update_run, run_id, status=RunStatus.failed, error=error)


async def _record_step(deps: AgentDeps, run_id: str, node: str, update: dict[str, Any], error: Any) -> AgentEvent:
    """Store a finished node (its summary, tool calls and, for planners, the plan) and describe it."""
    records: list[ToolCallRecord] = list(update.get("tool_calls", []))
    summary = f"error: {error}" if error else _summary(node, update)
    step = {"kind": "step", "node": node, "summary": summary, "at": _now()}
    await asyncio.to_thread(deps.store.add_run_steps, run_id, [step, *(r.model_dump(mode="json") for r in records)])
    if "plan" in update:
        await asyncio.to_thread(deps.store.update_run, run_id, plan=update["plan"].model_dump(mode="json"))
    return AgentEvent(
        type="step",
        node=node,
        data={
            "status": "failed" if error else "finished",
            "summary": summary,
            "tool_calls": [r.model_dump(mode="json") for r in records],
            "at": step["at"],
        },
    )


def _store_drafts(
    deps: AgentDeps, author: Author, run_id: str, values: dict[str, Any], origin: str
) -> list[DraftOut]:
    stored: list[DraftOut] = []
    for draft in values.get("final", []):
        row = deps.store.add_draft(
            author,
            values["plan"].platform,
            draft.text,
            scores=draft.scores,
            critique={**draft.critique.model_dump(mode="json"), "revisions": draft.revisions},
            sources=[s.model_dump(mode="json") for s in draft.sources],
            run_id=run_id,
            origin=origin,
        )
        stored.append(draft.model_copy(update={"draft_id": row.id}))
    return stored


async def run_history(graph: CompiledStateGraph, run_id: str) -> list[StateSnapshot]:
    """The run's checkpoints, newest first (needs a graph compiled with a checkpointer)."""
    return [snapshot async for snapshot in graph.aget_state_history(run_config(run_id))]

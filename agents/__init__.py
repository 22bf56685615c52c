"""The LangGraph agent: plan -> ingest -> retrieve -> draft -> critique -> revise -> final.

Public API (imported lazily so `import agents.schemas` stays light):
`run_agent`, `run_to_completion`, `resume_run`, `prepare_run`, `build_graph`, `AgentDeps`, `AgentContext`,
`open_checkpointer`, `DraftRequest`, `RunResult`, `AgentEvent`, `DraftOut`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "run_agent": "agents.run",
    "run_to_completion": "agents.run",
    "prepare_run": "agents.run",
    "run_history": "agents.run",
    "resume_run": "agents.run",
    "build_graph": "agents.graph",
    "AgentDeps": "agents.deps",
    "AgentContext": "agents.context",
    "open_checkpointer": "agents.checkpoint",
    "DraftRequest": "agents.schemas",
    "DraftOut": "agents.schemas",
    "RunResult": "agents.schemas",
    "AgentEvent": "agents.schemas",
    "LimitExceeded": "agents.schemas",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'agents' has no attribute {name!r}")

"""Chat requests the page's form accepted and has not streamed yet, each under a one-time key.

The browser's EventSource can only GET, so `serving.web.chat` parks the POSTed request here and the stream
takes it back; the plugin keeps one `PendingChats` in the app's state.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from agents.schemas import DraftRequest
from twin.domain import TooBusy

PENDING_TTL_S = 300.0
MAX_PENDING = 64


@dataclass(frozen=True)
class ResumeRun:
    """A stopped run the page asked to continue from its last checkpoint."""

    run_id: str
    request: DraftRequest


@dataclass
class PendingChats:
    """Requests accepted by the form (or resumes by its Resume buttons) and not yet streamed, each under a
    one-time key."""

    requests: dict[str, tuple[float, DraftRequest | ResumeRun]] = field(default_factory=dict)

    def park(self, request: DraftRequest | ResumeRun) -> str:
        now = time.monotonic()
        for key, (parked_at, _) in list(self.requests.items()):
            if now - parked_at > PENDING_TTL_S:
                del self.requests[key]
        if len(self.requests) >= MAX_PENDING:
            raise TooBusy("Too many chats are waiting to start; retry in a moment.")
        key = secrets.token_urlsafe(16)
        self.requests[key] = (now, request)
        return key

    def take(self, key: str) -> DraftRequest | ResumeRun | None:
        parked = self.requests.pop(key, None)
        return parked[1] if parked else None

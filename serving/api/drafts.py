"""The drafts inbox: every draft from chat and from schedules; approve, edit or discard."""

from __future__ import annotations

from litestar import Controller, get, patch
from pydantic import BaseModel, Field

from serving.service import TwinService
from twin.domain import Draft, DraftStatus, FeedbackPair, Platform

MAX_DRAFT_CHARS = 40_000


class DraftUpdate(BaseModel):
    text: str | None = Field(default=None, min_length=1, max_length=MAX_DRAFT_CHARS)
    status: DraftStatus | None = None


class FeedbackSummary(BaseModel):
    counts: dict[str, int]
    pairs: list[FeedbackPair]


class DraftController(Controller):
    path = "/api/drafts"
    tags = ["drafts"]

    @get("/", operation_id="listDrafts")
    async def list_drafts(
        self,
        service: TwinService,
        author: str | None = None,
        status: DraftStatus | None = None,
        platform: Platform | None = None,
        origin: str | None = None,
    ) -> list[Draft]:
        drafts = service.db.list_drafts(author=service.author(author) if author else None, status=status,
                                        platform=platform)
        return [d for d in drafts if origin is None or d.origin == origin]

    @get("/feedback", operation_id="listFeedbackPairs")
    async def feedback(self, service: TwinService, author: str) -> FeedbackSummary:
        """The author's inbox preferences (edits and approve-over-discard choices) that DPO trains on."""
        person = service.author(author)
        return FeedbackSummary(counts=service.db.count_feedback_pairs(person),
                               pairs=service.db.list_feedback_pairs(person))

    @get("/{draft_id:int}", operation_id="getDraft")
    async def get_draft(self, service: TwinService, draft_id: int) -> Draft:
        return service.db.get_draft(draft_id)

    @patch("/{draft_id:int}", operation_id="updateDraft")
    async def update_draft(self, service: TwinService, draft_id: int, data: DraftUpdate) -> Draft:
        return service.db.update_draft(draft_id, text=data.text, status=data.status)


ROUTE_HANDLERS = [DraftController]

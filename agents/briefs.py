"""What a scheduled run asks the agent for: a brief about the author's newest writing, else a standing topic.

The scheduler (`serving.scheduler`) decides *when* to draft and records the run; this decides *what*.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from twin.domain import PRIVATE_KINDS, Document, Kind

MAX_NEW_TITLES = 5
"""Titles of new documents named in a scheduled brief (the agent retrieves the rest)."""

NOT_NEWS = frozenset({Kind.code, Kind.reference, *PRIVATE_KINDS})
"""Kinds that never make a scheduled post "about what I published": code, linked pages, private chats."""


class ScheduledBrief(BaseModel):
    brief: str | None
    """None: nothing to write about (``reason`` says why)."""
    new_documents: int
    reason: str | None = None


def scheduled_brief(new_documents: Sequence[Document], topics: Sequence[str], succeeded_runs: int) -> ScheduledBrief:
    """About the newest published writing when there is some, else the schedule's standing topics in turn."""
    published = [d for d in new_documents if d.kind not in NOT_NEWS]
    if published:
        newest = sorted(published, key=lambda d: d.published_at or d.fetched_at, reverse=True)
        titles = [d.title or d.url for d in newest[:MAX_NEW_TITLES]]
        brief = "Write a post about what I published recently: " + "; ".join(f'"{t}"' for t in titles) + "."
        return ScheduledBrief(brief=brief, new_documents=len(published))
    if topics:
        return ScheduledBrief(brief=f"Write a post about: {topics[succeeded_runs % len(topics)]}", new_documents=0)
    return ScheduledBrief(
        brief=None, new_documents=0, reason="Nothing new was collected and the schedule has no standing topics."
    )

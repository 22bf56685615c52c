"""Agent runs, their steps and drafts, and the inbox's preferences (an edit or a choice between drafts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from twin import schema as t
from twin.domain import (
    Author,
    Conflict,
    Draft,
    DraftStatus,
    FeedbackPair,
    NotFound,
    Platform,
    Run,
    RunStatus,
)
from twin.stores.base import StoreBase, _row


class RunRecords(StoreBase):
    # runs and drafts -------------------------------------------------------------------------
    def create_run(
        self, author: Author, request: dict[str, Any], run_id: str | None = None, origin: str = "chat"
    ) -> Run:
        import uuid

        now = t.utcnow()
        run_id = run_id or uuid.uuid4().hex
        with self.engine.begin() as conn:
            if conn.execute(sa.select(t.runs.c.id).where(t.runs.c.id == run_id)).first():
                raise Conflict(f"A run with id {run_id} already exists.")
            conn.execute(
                t.runs.insert().values(
                    id=run_id,
                    author_id=author.id,
                    request=request,
                    status=RunStatus.running.value,
                    plan=None,
                    steps=[],
                    origin=origin,
                    created_at=now,
                    updated_at=now,
                )
            )
        return self.get_run(run_id)

    def update_run(
        self,
        run_id: str,
        status: RunStatus | None = None,
        plan: dict[str, Any] | None = None,
        steps: list[dict[str, Any]] | None = None,
        error: str | None = None,
    ) -> Run:
        """Set the given fields; ``steps`` replaces the whole list (see `add_run_steps` to append)."""
        values: dict[str, Any] = {"updated_at": t.utcnow()}
        if status is not None:
            values["status"] = status.value
        if plan is not None:
            values["plan"] = plan
        if steps is not None:
            values["steps"] = steps
        if error is not None:
            values["error"] = error
        with self.engine.begin() as conn:
            updated = conn.execute(t.runs.update().where(t.runs.c.id == run_id).values(**values)).rowcount
        if not updated:
            raise NotFound(f"No run with id {run_id}.")
        return self.get_run(run_id)

    def add_run_steps(self, run_id: str, steps: Sequence[dict[str, Any]]) -> None:
        """Append step records (node summaries, tool calls) to a run, in one transaction."""
        if not steps:
            return
        with self.engine.begin() as conn:
            current = conn.scalar(sa.select(t.runs.c.steps).where(t.runs.c.id == run_id).with_for_update())
            if current is None:
                raise NotFound(f"No run with id {run_id}.")
            conn.execute(
                t.runs.update()
                .where(t.runs.c.id == run_id)
                .values(steps=[*current, *steps], updated_at=t.utcnow())
            )

    def _runs_query(self) -> sa.Select[Any]:
        return sa.select(t.runs, t.authors.c.name.label("author")).join(t.authors, t.authors.c.id == t.runs.c.author_id)

    def get_run(self, run_id: str) -> Run:
        """The run with its drafts (oldest first)."""
        with self.engine.connect() as conn:
            row = conn.execute(self._runs_query().where(t.runs.c.id == run_id)).first()
            if row is None:
                raise NotFound(f"No run with id {run_id}.")
            drafts = conn.execute(
                sa.select(t.drafts).where(t.drafts.c.run_id == run_id).order_by(t.drafts.c.id)
            ).all()
        return Run(**_row(row), drafts=[Draft(**_row(d)) for d in drafts])

    def list_runs(self, author: Author | None = None, limit: int = 50) -> list[Run]:
        """Most recent first, without their drafts."""
        query = self._runs_query()
        if author is not None:
            query = query.where(t.runs.c.author_id == author.id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.runs.c.created_at.desc(), t.runs.c.id).limit(limit)).all()
        return [Run(**_row(r)) for r in rows]

    def add_draft(
        self,
        author: Author,
        platform: Platform,
        text: str,
        *,
        scores: dict[str, Any] | None = None,
        critique: dict[str, Any] | None = None,
        sources: list[dict[str, Any]] | None = None,
        run_id: str | None = None,
        origin: str = "agent",
        status: DraftStatus = DraftStatus.new,
    ) -> Draft:
        now = t.utcnow()
        with self.engine.begin() as conn:
            draft_id = conn.execute(
                t.drafts.insert().values(
                    run_id=run_id,
                    author_id=author.id,
                    platform=platform.value,
                    text=text,
                    scores=scores or {},
                    critique=critique or {},
                    sources=sources or [],
                    status=status.value,
                    origin=origin,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
        return self.get_draft(draft_id)

    def get_draft(self, draft_id: int) -> Draft:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.drafts).where(t.drafts.c.id == draft_id)).first()
        if row is None:
            raise NotFound(f"No draft with id {draft_id}.")
        return Draft(**_row(row))

    def list_drafts(
        self,
        author: Author | None = None,
        status: DraftStatus | None = None,
        platform: Platform | None = None,
        run_id: str | None = None,
    ) -> list[Draft]:
        """Newest first."""
        query = sa.select(t.drafts)
        if author is not None:
            query = query.where(t.drafts.c.author_id == author.id)
        if status is not None:
            query = query.where(t.drafts.c.status == status.value)
        if platform is not None:
            query = query.where(t.drafts.c.platform == platform.value)
        if run_id is not None:
            query = query.where(t.drafts.c.run_id == run_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.drafts.c.created_at.desc(), t.drafts.c.id.desc())).all()
        return [Draft(**_row(r)) for r in rows]

    def update_draft(self, draft_id: int, text: str | None = None, status: DraftStatus | None = None) -> Draft:
        """Edit, approve or discard a draft; each is also recorded as a preference (`feedback_pairs`)."""
        values: dict[str, Any] = {"updated_at": t.utcnow()}
        if text is not None:
            if not text.strip():
                raise ValueError("A draft's text cannot be empty.")
            values["text"] = text
        if status is not None:
            values["status"] = status.value
        with self.engine.begin() as conn:
            before = conn.execute(sa.select(t.drafts).where(t.drafts.c.id == draft_id)).first()
            if before is None:
                raise NotFound(f"No draft with id {draft_id}.")
            conn.execute(t.drafts.update().where(t.drafts.c.id == draft_id).values(**values))
            if text is not None and text.strip() != before.text.strip():
                self._record_edit(conn, before, text)
            if status is not None and status.value != before.status:
                self._record_choices(conn, draft_id)
        return self.get_draft(draft_id)

    # feedback pairs (the inbox as preferences) --------------------------------------------------
    @staticmethod
    def _brief(conn: sa.Connection, run_id: str | None) -> str | None:
        if run_id is None:
            return None
        request = conn.scalar(sa.select(t.runs.c.request).where(t.runs.c.id == run_id))
        brief = (request or {}).get("prompt") if isinstance(request, dict) else None
        return str(brief) if brief else None

    def _record_edit(self, conn: sa.Connection, before: sa.Row[Any], text: str) -> None:
        """The edited text is chosen over the twin's original (kept from the first edit on)."""
        f = t.feedback_pairs
        now = t.utcnow()
        existing = conn.execute(sa.select(f.c.id, f.c.rejected).where(
            f.c.kind == "edit", f.c.chosen_draft_id == before.id, f.c.rejected_draft_id == before.id)).first()
        if existing is None:
            conn.execute(f.insert().values(
                author_id=before.author_id, kind="edit", platform=before.platform,
                brief=self._brief(conn, before.run_id), chosen_draft_id=before.id, rejected_draft_id=before.id,
                chosen=text, rejected=before.text, created_at=now, updated_at=now,
            ))
        elif existing.rejected.strip() == text.strip():  # edited back to what the twin wrote: no preference
            conn.execute(f.delete().where(f.c.id == existing.id))
        else:
            conn.execute(f.update().where(f.c.id == existing.id).values(chosen=text, updated_at=now))
        # An approved draft's choice pairs carry its current text.
        conn.execute(f.update().where(f.c.kind == "choice", f.c.chosen_draft_id == before.id)
                     .values(chosen=text, updated_at=now))

    def _record_choices(self, conn: sa.Connection, draft_id: int) -> None:
        """Approved drafts are chosen over discarded ones of the same run and platform (the same brief)."""
        f, d = t.feedback_pairs, t.drafts
        conn.execute(f.delete().where(f.c.kind == "choice", sa.or_(
            f.c.chosen_draft_id == draft_id, f.c.rejected_draft_id == draft_id)))
        draft = conn.execute(sa.select(d).where(d.c.id == draft_id)).one()
        if draft.run_id is None or draft.status not in (DraftStatus.approved.value, DraftStatus.discarded.value):
            return
        wanted = DraftStatus.discarded if draft.status == DraftStatus.approved.value else DraftStatus.approved
        others = conn.execute(sa.select(d).where(
            d.c.run_id == draft.run_id, d.c.platform == draft.platform, d.c.id != draft.id,
            d.c.status == wanted.value)).all()
        now = t.utcnow()
        brief = self._brief(conn, draft.run_id)
        for other in others:
            chosen, rejected = (draft, other) if wanted is DraftStatus.discarded else (other, draft)
            conn.execute(f.insert().values(
                author_id=draft.author_id, kind="choice", platform=draft.platform, brief=brief,
                chosen_draft_id=chosen.id, rejected_draft_id=rejected.id, chosen=chosen.text,
                rejected=rejected.text, created_at=now, updated_at=now,
            ))

    def list_feedback_pairs(self, author: Author, platform: Platform | None = None) -> list[FeedbackPair]:
        """The author's inbox preferences, oldest first."""
        f = t.feedback_pairs
        query = sa.select(f).where(f.c.author_id == author.id)
        if platform is not None:
            query = query.where(f.c.platform == platform.value)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(f.c.id)).all()
        return [FeedbackPair(**_row(r)) for r in rows]

    def count_feedback_pairs(self, author: Author) -> dict[str, int]:
        """How many preference pairs of each kind (``edit``, ``choice``) the author's inbox holds."""
        f = t.feedback_pairs
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(f.c.kind, sa.func.count()).where(f.c.author_id == author.id)
                                .group_by(f.c.kind)).all()
        return {"edit": 0, "choice": 0, **{kind: count for kind, count in rows}}

"""The scheduled brief: newest own writing first, then standing topics in turn; never code, links or chats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agents.briefs import MAX_NEW_TITLES, scheduled_brief
from twin.domain import Document, Kind, Platform


def _doc(n: int, kind: Kind = Kind.article, age_days: int = 0) -> Document:
    when = datetime(2026, 11, 30, tzinfo=UTC) - timedelta(days=age_days)
    return Document(
        id=n, author_id=1, source_id=None, url=f"https://blog.example/{n}", platform=Platform.blog, kind=kind,
        title=f"Post {n}", published_at=when, version=1, content_hash=str(n), raw_text="x", clean_text="x",
        fetched_at=when,
    )


def test_newest_published_titles_make_the_brief():
    docs = [_doc(n, age_days=n) for n in range(1, 8)]
    planned = scheduled_brief(docs, ["topic"], 0)
    assert planned.new_documents == 7
    assert planned.brief is not None
    assert '"Post 1"' in planned.brief and f'"Post {MAX_NEW_TITLES}"' in planned.brief
    assert f'"Post {MAX_NEW_TITLES + 1}"' not in planned.brief


def test_code_links_and_chats_are_not_news_and_topics_take_turns():
    docs = [_doc(1, Kind.code), _doc(2, Kind.reference), _doc(3, Kind.chat)]
    assert scheduled_brief(docs, ["a", "b"], 0).brief == "Write a post about: a"
    assert scheduled_brief(docs, ["a", "b"], 3).brief == "Write a post about: b"
    nothing = scheduled_brief(docs, [], 0)
    assert nothing.brief is None and nothing.new_documents == 0 and "no standing topics" in (nothing.reason or "")

"""Serve a real author's corpus (from ../shared/corpora) as a local blog: article pages plus an RSS feed.

Used by the ingestion tests and benchmarks so the real crawl path (feed -> pages -> trafilatura) runs on
real writing. Pages are generated at run time into a temp folder; corpus text never enters the repo.
"""

from __future__ import annotations

import functools
import html
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPORA_DIR = Path(os.environ.get("TWIN_CORPORA_DIR", REPO_ROOT.parent / "shared" / "corpora"))

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title} | {site}</title>
<meta property="og:title" content="{title}"></head><body>
<header><nav><a href="/">Home</a> <a href="/about/">About</a> <a href="/feed.xml">RSS</a></nav></header>
<main><article><h1>{title}</h1><time datetime="{date}">{date}</time>
{body}
</article></main>
<aside><h3>Recent posts</h3><ul>{recent}</ul></aside>
<footer><p>Copyright {site}. All rights reserved. Subscribe to the newsletter for updates.</p></footer>
</body></html>"""


def load_corpus(name: str, limit: int | None = None) -> list[dict]:
    items = []
    with (CORPORA_DIR / f"{name}.jsonl").open() as fh:
        for line in fh:
            items.append(json.loads(line))
            if limit and len(items) >= limit:
                break
    return items


def _date(item: dict) -> datetime:
    try:
        return datetime.fromisoformat(str(item.get("date"))[:10]).replace(tzinfo=UTC)
    except ValueError:
        return datetime(2024, 1, 1, tzinfo=UTC)


def write_site(items: list[dict], out: Path, base_url: str, site: str = "Corpus blog") -> list[str]:
    """Write one page per item and an RSS feed listing them all; returns the page URLs in order."""
    md = MarkdownIt("commonmark").enable("table")
    recent = "".join(f'<li><a href="/p/{i}/">{html.escape(it.get("title") or "")}</a></li>' for i, it in
                     enumerate(items[:5]))
    urls, entries = [], []
    for number, item in enumerate(items):
        title = item.get("title") or f"Post {number}"
        page_dir = out / "p" / str(number)
        page_dir.mkdir(parents=True, exist_ok=True)
        date = _date(item)
        page_dir.joinpath("index.html").write_text(
            PAGE.format(title=html.escape(title), site=site, date=date.date().isoformat(),
                        body=md.render(item["text"]), recent=recent),
            encoding="utf-8",
        )
        url = f"{base_url}/p/{number}/"
        urls.append(url)
        entries.append(
            f"<item><title>{html.escape(title)}</title><link>{url}</link><guid>{url}</guid>"
            f"<pubDate>{format_datetime(date)}</pubDate></item>"
        )
    out.joinpath("feed.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{site}</title><link>{base_url}/</link><description>{site}</description>"
        + "".join(entries) + "</channel></rss>",
        encoding="utf-8",
    )
    out.joinpath("index.html").write_text(
        f'<html><head><link rel="alternate" type="application/rss+xml" href="/feed.xml"></head>'
        f"<body><h1>{site}</h1><ul>{recent}</ul></body></html>",
        encoding="utf-8",
    )
    return urls


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """A static file server on 127.0.0.1 (a free port) for `folder`; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def store_corpus_posts(store: Any, author: Any, corpus: str, limit: int | None, platform: Any) -> int:
    """Store `limit` items of corpus `name` as the author's posts (cleaned, not embedded); returns how many."""
    from ingestion.clean import clean_text
    from twin.domain import Kind, RawDocument

    rows = load_corpus(corpus, limit)
    for i, row in enumerate(rows):
        raw = RawDocument(
            url=f"https://corpus.example/{corpus}/{i}",
            platform=platform,
            kind=Kind.post,
            title=row.get("title"),
            published_at=datetime.fromisoformat(row["date"]) if row.get("date") else None,
            text=row["text"],
        )
        store.upsert_document(author, None, raw, clean_text(raw))
    return len(rows)


@contextmanager
def corpus_blog(name: str, folder: Path, limit: int | None = None) -> Iterator[tuple[str, list[dict], list[str]]]:
    """Serve `limit` items of corpus `name` as a blog; yields (feed URL, items, page URLs)."""
    items = load_corpus(name, limit)
    folder.mkdir(parents=True, exist_ok=True)
    with serve_folder(folder) as base_url:
        urls = write_site(items, folder, base_url)
        yield f"{base_url}/feed.xml", items, urls

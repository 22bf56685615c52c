"""Main-text extraction keeps what carries voice and drops the page furniture."""

from __future__ import annotations

from datetime import UTC, datetime

from ingestion.extract import extract_article
from webserver import ARTICLES, blog_page, medium_page, substack_page

FURNITURE = ["Accept all cookies", "Related posts", "All rights reserved", "Great post, thanks", "Buy my book",
             "Become a member", "Recommended from Medium", "Subscribe for free", "Substack is the home"]


def test_blog_page_keeps_structure_and_drops_boilerplate() -> None:
    retry = ARTICLES[1]
    page = extract_article(blog_page(retry), "http://127.0.0.1/post/a-tiny-retry-helper")
    text = page.text_markdown
    assert page.extractor == "trafilatura"
    assert page.title == retry.title
    assert page.published_at == datetime(2024, 3, 2, 17, 5, tzinfo=UTC)
    assert "```\ndef retry(call, attempts=5, base=0.2):\n    for attempt in range(attempts):" in text  # code block
    assert "- It only catches `TransientError`, never everything." in text  # list + inline code
    assert "| attempt | delay (s) |" in text  # table
    assert "🔁" in text and retry.marker in text
    assert "\n\n" in text  # paragraphs stay paragraphs
    for furniture in FURNITURE:
        assert furniture not in text


def test_quotes_emoji_hashtags_and_ordered_lists() -> None:
    deploys = ARTICLES[0]
    text = extract_article(blog_page(deploys), "http://127.0.0.1/post/slow").text_markdown
    assert "> If it hurts, do it more often, and bring the pain forward." in text
    assert "🚢 #shipit #devops" in text
    assert "1. Deploys became boring" in text and "3. The on-call rota" in text


def test_platform_layouts() -> None:
    for article in ARTICLES[:5]:
        for html in (medium_page(article, "@robin"), substack_page(article, "Quiet Notes")):
            page = extract_article(html, f"http://127.0.0.1/p/{article.slug}")
            assert article.marker in page.text_markdown, article.slug
            assert page.published_at is not None and page.published_at.date().isoformat() == article.date[:10]
            for furniture in FURNITURE:
                assert furniture not in page.text_markdown, (article.slug, furniture)


def test_headings_survive() -> None:
    text = extract_article(blog_page(ARTICLES[2]), "http://127.0.0.1/post/notes").text_markdown
    assert "## What I got wrong at first" in text and "## What works now" in text


def test_falls_back_to_crawl4ai_when_trafilatura_finds_nothing() -> None:
    html = "<html><body><aside><p>Only in an aside: trafilatura skips these as page furniture.</p></aside></body></html>"
    page = extract_article(html, "http://127.0.0.1/odd")
    assert page.extractor == "crawl4ai"
    assert "Only in an aside" in page.text_markdown


def test_empty_page_says_so() -> None:
    page = extract_article("<html><body></body></html>", "http://127.0.0.1/empty")
    assert page.extractor == "none" and page.text_markdown == ""

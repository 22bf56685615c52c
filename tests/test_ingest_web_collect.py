"""collect_source over a real 127.0.0.1 site per platform: feeds, archives, sitemaps, failures in a batch."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from conftest import load_corpus
from ingestion.collectors import collect_source, detect_platform
from ingestion.fetch import WebFetcher
from ingestion.types import CollectedItem, Problem
from ingestion.urlguard import UrlGuard
from twin.domain import Kind, Platform, RawDocument
from twin.settings import Settings
from webserver import (
    ARTICLES,
    Article,
    TestSite,
    atom_feed,
    blog_page,
    medium_page,
    rss_feed,
    serve_site,
    sitemap,
    sitemap_index,
    substack_page,
)

MEDIUM_IDS = ["1a2b3c4d5e6f", "2b3c4d5e6f7a", "3c4d5e6f7a8b", "4d5e6f7a8b9c"]


@pytest.fixture
def site() -> Iterator[TestSite]:
    with serve_site() as running:
        yield running


async def collect(url: str, platform: Platform, settings: Settings, *, render_js: bool = False) -> list[CollectedItem]:
    guard = UrlGuard(settings.allowed_hosts)
    async with WebFetcher(settings, guard) as fetcher:
        return [item async for item in collect_source(url, platform, render_js=render_js, fetcher=fetcher,
                                                      settings=settings, guard=guard)]


def split(items: list[CollectedItem]) -> tuple[list[RawDocument], list[Problem]]:
    return [i for i in items if isinstance(i, RawDocument)], [i for i in items if isinstance(i, Problem)]


def test_detect_platform() -> None:
    assert detect_platform("https://medium.com/@robin") is Platform.medium
    assert detect_platform("https://robin.medium.com/") is Platform.medium
    assert detect_platform("https://quietnotes.substack.com/p/on-saying-no") is Platform.substack
    assert detect_platform("https://github.com/robin/tools") is Platform.github
    assert detect_platform("https://www.linkedin.com/posts/robin_activity-1") is Platform.linkedin
    assert detect_platform("https://x.com/robin/status/1") is Platform.x
    assert detect_platform("https://twitter.com/robin") is Platform.x
    assert detect_platform("https://robinvale.dev/posts/a") is Platform.blog
    assert detect_platform("https://notmedium.com/@robin") is Platform.blog


async def test_medium_profile_through_its_feed(site: TestSite, settings: Settings) -> None:
    user = "@robin"
    links = []
    for article, post_id in zip(ARTICLES[:3], MEDIUM_IDS):
        path = f"/{user}/{article.slug}-{post_id}"
        site.add(path, medium_page(article, user))
        links.append((site.url(path) + "?source=rss-abc123------2", article))
    # The fourth entry's page is gone, but the feed carries its full text; the fifth points at metadata.
    links.append((site.url(f"/{user}/gone-{MEDIUM_IDS[3]}"), ARTICLES[3]))
    links.append(("http://169.254.169.254/latest/meta-data/", ARTICLES[4]))
    site.add(f"/feed/{user}", rss_feed("Robin on Medium", site.url(f"/{user}"), links, full_content=True),
             content_type="text/xml; charset=UTF-8")

    docs, problems = split(await collect(site.url(f"/{user}"), Platform.medium, settings))

    assert [d.title for d in docs] == [a.title for a in ARTICLES[:4]]
    assert all(d.platform is Platform.medium and d.kind is Kind.article for d in docs)
    assert docs[0].url == site.url(f"/{user}/{ARTICLES[0].slug}-{MEDIUM_IDS[0]}")  # tracking query dropped
    assert docs[0].published_at is not None and docs[0].published_at.isoformat() == "2024-02-11T08:30:00+00:00"
    for doc, article in zip(docs, ARTICLES):
        assert article.marker in doc.text
        assert "Recommended from Medium" not in doc.text and "Become a member" not in doc.text
    assert docs[3].metadata["extractor"].startswith("feed:") and "HTTP 404" in docs[3].metadata["page_problem"]
    assert len(problems) == 1 and problems[0].refused and "169.254.169.254" in problems[0].url


async def test_medium_single_article(site: TestSite, settings: Settings) -> None:
    url = site.add(f"/@robin/{ARTICLES[4].slug}-{MEDIUM_IDS[0]}", medium_page(ARTICLES[4], "@robin"))
    docs, problems = split(await collect(url, Platform.medium, settings))
    assert not problems and len(docs) == 1
    assert docs[0].title == ARTICLES[4].title and ARTICLES[4].marker in docs[0].text
    assert "> Strategy is choosing what not to do." in docs[0].text


def mount_substack(site: TestSite) -> None:
    publication = "Quiet Notes"
    for article in ARTICLES[:5]:
        site.add(f"/p/{article.slug}", substack_page(article, publication))
    # The feed only has the two most recent posts; the archive API lists all five.
    recent = [(site.url(f"/p/{a.slug}"), a) for a in reversed(ARTICLES[3:5])]
    site.add("/feed", rss_feed(publication, site.url("/"), recent, full_content=True),
             content_type="application/rss+xml")
    archive = [{"slug": a.slug, "title": a.title, "post_date": a.date, "type": "newsletter",
                "canonical_url": site.url(f"/p/{a.slug}")} for a in reversed(ARTICLES[:5])]
    site.add("/api/v1/archive?sort=new&offset=0&limit=12", json.dumps(archive), content_type="application/json")
    site.add("/", f"""<html><head><title>{publication}</title><meta name="generator" content="Substack">
<meta property="og:type" content="website"><link rel="alternate" type="application/rss+xml" href="/feed">
</head><body><h1>{publication}</h1><p>A newsletter about teams.</p></body></html>""")


async def test_substack_publication_through_archive_and_feed(site: TestSite, settings: Settings) -> None:
    mount_substack(site)
    docs, problems = split(await collect(site.url("/"), Platform.substack, settings))
    assert not problems
    assert [d.title for d in docs] == [a.title for a in reversed(ARTICLES[:5])]
    for doc in docs:
        article = next(a for a in ARTICLES if a.title == doc.title)
        assert article.marker in doc.text and "Subscribe for free" not in doc.text
        assert doc.platform is Platform.substack and doc.kind is Kind.article
        assert doc.published_at is not None and doc.published_at.date().isoformat() == article.date[:10]
    assert site.hits["/api/v1/archive?sort=new&offset=0&limit=12"] == 1


async def test_substack_on_a_custom_domain_is_recognised_from_the_blog_path(site: TestSite, settings: Settings) -> None:
    mount_substack(site)
    docs, problems = split(await collect(site.url("/"), Platform.blog, settings))
    assert not problems and len(docs) == 5
    assert all(d.platform is Platform.substack for d in docs)


async def test_substack_single_post(site: TestSite, settings: Settings) -> None:
    mount_substack(site)
    docs, _ = split(await collect(site.url(f"/p/{ARTICLES[1].slug}"), Platform.substack, settings))
    assert len(docs) == 1 and "def retry(call" in docs[0].text and site.hits.get("/feed") is None


def mount_blog(site: TestSite) -> list[str]:
    urls = []
    for article in ARTICLES:
        urls.append(site.add(f"/post/{article.slug}", blog_page(article, with_feed_link="/feed.xml")))
    entries = [(u, a) for u, a in zip(urls, ARTICLES)]
    # One entry's page is gone (and the feed has no text for it): a Problem, and the rest still come.
    site.add("/feed.xml", rss_feed("The Quiet Engineer", site.url("/"), entries[:3] + [
        (site.url("/post/gone"), ARTICLES[0])] + entries[3:]), content_type="application/rss+xml")
    site.add("/atom.xml", atom_feed("The Quiet Engineer", entries), content_type="application/atom+xml")
    site.add("/sitemap.xml", sitemap_index([site.url("/sitemap-posts.xml")]), content_type="application/xml")
    site.add("/sitemap-posts.xml", sitemap([site.url("/"), site.url("/tags/devops")] + urls),
             content_type="application/xml")
    site.add("/", """<html><head><title>The Quiet Engineer</title>
<link rel="alternate" type="application/rss+xml" title="RSS" href="/feed.xml"></head>
<body><h1>The Quiet Engineer</h1><ul><li><a href="/post/elsewhere">A link that is not in the feed</a></li></ul>
</body></html>""")
    return urls


async def test_blog_by_feed_atom_sitemap_and_home_page(site: TestSite, settings: Settings) -> None:
    mount_blog(site)
    titles = [a.title for a in ARTICLES]

    by_feed, feed_problems = split(await collect(site.url("/feed.xml"), Platform.blog, settings))
    assert [d.title for d in by_feed] == titles  # the broken entry did not stop the others
    assert len(feed_problems) == 1 and "HTTP 404" in feed_problems[0].reason and not feed_problems[0].refused
    kinds = {d.title: d.kind for d in by_feed}
    assert kinds["Tiny note on naming"] is Kind.note and kinds["On saying no"] is Kind.article

    by_atom, _ = split(await collect(site.url("/atom.xml"), Platform.blog, settings))
    assert [d.title for d in by_atom] == titles
    assert by_atom[1].published_at is not None and by_atom[1].published_at.isoformat() == "2024-03-02T17:05:00+00:00"

    by_sitemap, sitemap_problems = split(await collect(site.url("/sitemap.xml"), Platform.blog, settings))
    assert not sitemap_problems and sorted(d.title for d in by_sitemap) == sorted(titles)

    by_home, _ = split(await collect(site.url("/"), Platform.blog, settings))
    assert [d.title for d in by_home] == titles
    assert "/post/elsewhere" not in site.hits  # links come from the feed, never from page content


async def test_blog_single_article_and_page_cap(site: TestSite, settings: Settings) -> None:
    urls = mount_blog(site)
    docs, _ = split(await collect(urls[2], Platform.blog, settings))
    assert len(docs) == 1 and docs[0].title == ARTICLES[2].title and docs[0].kind is Kind.article
    assert docs[0].metadata["extractor"] == "trafilatura" and "## What works now" in docs[0].text

    settings.crawl.max_pages_per_source = 2
    capped, _ = split(await collect(site.url("/feed.xml"), Platform.blog, settings))
    assert len(capped) == 2 and sum(site.hits.get(f"/post/{a.slug}", 0) for a in ARTICLES[2:]) == 1


async def test_linkedin_public_post_and_x(site: TestSite, settings: Settings) -> None:
    post_text = ("Shipped our on-call handbook today. Three rules: write it down, rotate fairly, "
                 "and never page a human for something a machine can retry. 🚨 #oncall #sre")
    path = "/posts/robin-vale_oncall-handbook-activity-7123456789"
    site.add(path, f"""<html><head><title>Robin Vale on LinkedIn: Shipped our on-call handbook</title>
<meta property="og:title" content="Robin Vale on LinkedIn: Shipped our on-call handbook">
<meta property="og:description" content="{post_text}">
<meta property="article:published_time" content="2024-05-01T09:00:00Z"></head>
<body><header>Join now · Sign in</header><main><section class="post">
<p class="attributed-text-segment-list__content">{post_text}</p><div>👍 42 · 7 comments</div></section>
<section class="more"><h2>More Relevant Posts</h2><p>Someone else: ten reasons to hire us this quarter, click to see
all of them and sign up for our webinar about growth hacking and synergy.</p></section>
<section class="signin"><h2>Sign in to view more content</h2><p>Create your free account or sign in to continue
your search. By clicking Continue, you agree to the User Agreement, Privacy Policy and Cookie Policy.</p></section>
</main></body></html>""")
    docs, problems = split(await collect(site.url(path), Platform.linkedin, settings))
    assert not problems and len(docs) == 1
    post = docs[0]
    assert post.kind is Kind.post and post.platform is Platform.linkedin
    assert post.text == post_text
    assert post.published_at is not None and post.published_at.year == 2024

    profile_docs, profile_problems = split(await collect("https://www.linkedin.com/in/robinvale", Platform.linkedin,
                                                         settings))
    assert not profile_docs and "export" in profile_problems[0].reason
    x_docs, x_problems = split(await collect("https://x.com/robin", Platform.x, settings))
    assert not x_docs and "archive" in x_problems[0].reason


async def test_refused_source_is_a_problem_not_an_exception(settings: Settings) -> None:
    docs, problems = split(await collect("http://10.0.0.1/feed.xml", Platform.blog, settings))
    assert not docs and problems[0].refused and "private" in problems[0].reason


async def test_corpus_served_as_blog_comes_back_whole(site: TestSite, settings: Settings, corpora_dir) -> None:
    import lxml.html
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable("table")
    items = [i for i in load_corpus("simon_willison_til", limit=40) if 150 <= i["word_count"] <= 900][:6]
    assert len(items) == 6
    entries = []
    for index, item in enumerate(items):
        article = Article(slug=f"til-{index}", title=item["title"], date=ARTICLES[0].date,
                                        body_html=md.render(item["text"]), marker="")
        entries.append((site.add(f"/til/{index}", blog_page(article)), article))
    site.add("/til.xml", rss_feed("TIL", site.url("/"), entries), content_type="application/rss+xml")
    docs, problems = split(await collect(site.url("/til.xml"), Platform.blog, settings))
    assert not problems and len(docs) == len(items)
    for doc, item in zip(docs, items):
        truth = set(_words(lxml.html.fragment_fromstring(md.render(item["text"]), create_parent="div").text_content()))
        found = set(_words(doc.text))
        recall = len(truth & found) / len(truth)
        precision = len(truth & found) / len(found)
        assert recall >= 0.9 and precision >= 0.9, (item["title"], recall, precision)


def _words(text: str) -> list[str]:
    import re

    return re.findall(r"[a-z0-9]+", text.lower())


async def test_github_urls_are_handed_to_the_github_collector(settings: Settings) -> None:
    # Plain http to a host nobody allowed: the GitHub collector refuses it before any network use.
    docs, problems = split(await collect("http://github.com/robin/tools", Platform.github, settings))
    assert not docs and problems[0].refused and "https" in problems[0].reason

"""A real HTTP server on 127.0.0.1 for the web-ingestion tests (stdlib ``http.server`` in a thread).

Routes are registered per test: static bodies, redirects, slow answers, endless bodies. The server speaks
HTTP/1.1 so Chromium and aiohttp behave as they do on the web.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    """Wait before answering (timeouts)."""
    stream_bytes: int = 0
    """Send this many bytes chunked, without Content-Length (byte cap without a declared size)."""
    etag: str | None = None
    """Send this ETag and answer 304 to a request whose If-None-Match carries it."""


class TestSite:
    """Routes by path; ``hits`` counts requests per path so tests can tell what was fetched."""

    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        self.not_modified: dict[str, int] = {}
        """304 answers per path."""
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def add(self, path: str, body: str | bytes, content_type: str = "text/html; charset=utf-8", **kw) -> str:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.routes[path] = Route(body=data, content_type=content_type, **kw)
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        self.routes[path] = Route(status=status, headers={"Location": location})
        return self.url(path)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                path = self.path.split("#", 1)[0]
                route = site.routes.get(path) or site.routes.get(path.split("?", 1)[0])
                with site._lock:
                    site.hits[path] = site.hits.get(path, 0) + 1
                if route is None:
                    body = b"<html><body><h1>Not found</h1></body></html>"
                    self.send_response(404)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if route.delay_s:
                    time.sleep(route.delay_s)
                if route.etag and self.headers.get("If-None-Match") == route.etag:
                    with site._lock:
                        site.not_modified[path] = site.not_modified.get(path, 0) + 1
                    self.send_response(304)
                    self.send_header("ETag", route.etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(route.status)
                if route.etag:
                    self.send_header("ETag", route.etag)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                if route.stream_bytes:
                    self.send_header("Content-Type", route.content_type)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    chunk = b"<p>" + b"x" * 65_000 + b"</p>\n"
                    sent = 0
                    try:
                        while sent < route.stream_bytes:
                            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                            sent += len(chunk)
                        self.wfile.write(b"0\r\n\r\n")
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return
                if route.status not in (204, 304):
                    self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                try:
                    self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler

    def start(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@contextmanager
def serve_site() -> Iterator[TestSite]:
    site = TestSite()
    site.start()
    try:
        yield site
    finally:
        site.stop()


# --- Test content --------------------------------------------------------------------------------------
# Article bodies written for these tests (never corpus text). Each carries a phrase the tests look for.

@dataclass
class Article:
    slug: str
    title: str
    date: str
    """ISO date-time, UTC."""
    body_html: str
    marker: str
    """A sentence from the body that must survive extraction."""


ARTICLES: list[Article] = [
    Article(
        "slow-mornings-fast-deploys", "Slow mornings, fast deploys", "2024-02-11T08:30:00Z",
        """<p>Every team I have worked with shipped faster once we stopped deploying on Friday evenings.
That is not a rule I read in a book; it is a scar. 🚢 #shipit #devops</p>
<p>Here is what changed for us, in order of how much it mattered:</p>
<ol><li>Deploys became boring, because they happened twelve times a day.</li>
<li>Rollbacks got a button, and the button got pressed without a meeting.</li>
<li>The on-call rota stopped being a punishment and became a rotation.</li></ol>
<blockquote><p>If it hurts, do it more often, and bring the pain forward.</p></blockquote>
<p>The lesson I keep relearning: slow mornings make fast deploys. Coffee first, pipeline second.
When the first hour of the day is quiet, the rest of it has room for the surprises.</p>
<p>None of this needed a new tool. It needed a team that agreed what done means, wrote it down,
and then actually looked at the dashboard after pressing merge.</p>""",
        "slow mornings make fast deploys",
    ),
    Article(
        "a-tiny-retry-helper", "A tiny retry helper", "2024-03-02T17:05:00Z",
        """<p>I copy this helper into almost every project, so it might as well live in a blog post.
It retries a flaky call with exponential backoff and gives up loudly. 🔁</p>
<pre><code class="language-python">def retry(call, attempts=5, base=0.2):
    for attempt in range(attempts):
        try:
            return call()
        except TransientError:
            time.sleep(base * 2 ** attempt)
    raise GaveUp(call)
</code></pre>
<p>Three things worth noticing in the retry helper:</p>
<ul><li>It only catches <code>TransientError</code>, never everything.</li>
<li>The delay doubles, so a dead dependency is not hammered.</li>
<li>Giving up raises, because silence is how outages hide.</li></ul>
<table><thead><tr><th>attempt</th><th>delay (s)</th></tr></thead>
<tbody><tr><td>1</td><td>0.2</td></tr><tr><td>2</td><td>0.4</td></tr><tr><td>3</td><td>0.8</td></tr></tbody></table>
<p>Retries are a bandage, not a cure, but a good bandage buys you the afternoon you need to find the wound.</p>""",
        "a good bandage buys you the afternoon",
    ),
    Article(
        "notes-on-writing-in-public", "Notes on writing in public", "2024-04-20T10:00:00Z",
        """<p>I started writing in public because my private notes had become a graveyard of half-ideas.
Publishing forces the last ten percent: the example, the caveat, the conclusion. ✍️ #writing</p>
<h2>What I got wrong at first</h2>
<p>I waited for ideas to be finished. They never are. The posts people thanked me for were the
ones where I admitted I was still confused and showed my working.</p>
<h2>What works now</h2>
<p>One idea per post. A title that is a claim, not a topic. A first paragraph that could stand alone
if nobody read further. Writing in public is thinking with the door open.</p>
<p>And a budget: forty minutes, then it ships, typos and all. Perfect posts stay drafts forever.</p>""",
        "Writing in public is thinking with the door open",
    ),
    Article(
        "why-i-still-use-makefiles", "Why I still use Makefiles", "2024-05-14T19:45:00Z",
        """<p>Every few months someone tells me Makefiles are dead. Every few months I open a repository
and the first thing I look for is a Makefile, because it tells me how the authors actually work.</p>
<p>A good Makefile is documentation that cannot go stale, since the build breaks when it lies.
Mine always start with the same two targets:</p>
<pre><code>test:
	pytest -q

demo:
	python -m app.demo
</code></pre>
<p>Nothing clever. The value is that <em>make test</em> means the same thing on my laptop, in CI,
and on the machine of the person who joined yesterday. 🛠️ #tooling</p>
<p>Tools come and go; the habit of writing the commands down is what lasts.</p>""",
        "documentation that cannot go stale",
    ),
    Article(
        "on-saying-no", "On saying no", "2024-06-03T07:15:00Z",
        """<p>The most useful word in a roadmap meeting is no, said kindly and with a reason.
I used to think saying no was about protecting my time. It is really about protecting the yes.</p>
<p>When everything is a priority, the team spreads itself so thin that nothing ships well.
A no today is what makes next month's yes possible. 🙅 #leadership</p>
<blockquote><p>Strategy is choosing what not to do.</p></blockquote>
<p>My rule of thumb: if I cannot say which current project we would pause to make room,
I am not ready to say yes to the new one.</p>""",
        "It is really about protecting the yes",
    ),
    Article(
        "tiny-note-on-naming", "Tiny note on naming", "2024-07-01T12:00:00Z",
        """<p>Name functions after what they return, not how they work. fetch_user beats
run_query_and_map. A short note, but I needed to write it down. 🏷️ #naming</p>""",
        "Name functions after what they return",
    ),
]

BOILERPLATE_TOP = """<header class="site-header"><a href="/">The Quiet Engineer</a>
<nav><ul><li><a href="/">Home</a></li><li><a href="/about">About</a></li><li><a href="/archive">Archive</a></li>
<li><a href="/newsletter">Newsletter</a></li></ul></nav></header>
<div class="cookie-banner" id="cookies"><p>We use cookies to improve your experience and analyse traffic.
By clicking accept all cookies you agree to our cookie policy and privacy notice.</p>
<button>Accept all cookies</button><button>Manage preferences</button></div>"""

BOILERPLATE_BOTTOM = """<section class="related"><h3>Related posts</h3><ul>
<li><a href="/post/other-1">Ten tips for a cleaner desk setup this year</a></li>
<li><a href="/post/other-2">Our favourite keyboards of the season, ranked</a></li>
<li><a href="/post/other-3">Subscribe to get every post in your inbox each week</a></li></ul></section>
<section class="comments"><h3>3 comments</h3><div class="comment"><b>Sam</b>: Great post, thanks for sharing!</div>
<div class="comment"><b>Lee</b>: Bookmarked. Sharing with my team.</div></section>
<footer><p>Copyright 2024 The Quiet Engineer. All rights reserved. Privacy policy. Terms of service.
Subscribe to the newsletter for weekly posts. Follow us on every social network.</p></footer>"""


def blog_page(article: Article, *, with_feed_link: str | None = None) -> str:
    feed = f'<link rel="alternate" type="application/rss+xml" href="{with_feed_link}">' if with_feed_link else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{article.title} | The Quiet Engineer</title>
<meta property="og:type" content="article"><meta property="og:title" content="{article.title}">
<meta property="article:published_time" content="{article.date}">{feed}</head>
<body>{BOILERPLATE_TOP}<div class="layout"><main><article class="post"><h1>{article.title}</h1>
<p class="byline">By Robin Vale · {article.date[:10]} · 4 min read</p>
<div class="post-body">{article.body_html}</div></article></main>
<aside class="sidebar"><h3>About me</h3><p>Robin writes about engineering teams and tools. Buy my book!</p>
<h3>Tags</h3><ul><li>devops</li><li>writing</li><li>python</li></ul></aside></div>
{BOILERPLATE_BOTTOM}</body></html>"""


def medium_page(article: Article, user: str) -> str:
    return f"""<!doctype html><html><head><title>{article.title} | by Robin Vale | Medium</title>
<meta property="og:type" content="article"><meta property="og:title" content="{article.title}">
<meta property="article:published_time" content="{article.date}"><meta name="author" content="Robin Vale"></head>
<body><div id="root"><div class="metabar"><a href="/">Medium</a><a href="/m/signin">Sign in</a>
<a href="/new-story">Write</a></div>
<div class="paywall-banner">Get unlimited access to the best of Medium for less than $1/week. Become a member</div>
<article><div class="section"><h1>{article.title}</h1>
<div class="author"><a href="/{user}">Robin Vale</a> · Follow · 4 min read · {article.date[:10]}</div>
<div class="clap-bar">👏 120 · 💬 4 · Share</div>
{article.body_html}</div></article>
<div class="more-from"><h2>More from Robin Vale</h2><div><a href="/{user}/other-aaaaaaaaaaaa">Another story about
something else entirely</a></div><div><a href="/{user}/other-bbbbbbbbbbbb">Yet another story</a></div></div>
<div class="recommended"><h2>Recommended from Medium</h2><p>Staff picks, stories to help you grow as a developer,
self-improvement 101, productivity apps. See more recommendations.</p></div>
<footer>Help Status About Careers Press Blog Privacy Terms Text to speech Teams</footer></div></body></html>"""


def substack_page(article: Article, publication: str) -> str:
    return f"""<!doctype html><html><head><title>{article.title} - {publication}</title>
<meta name="generator" content="Substack"><meta property="og:type" content="article">
<meta property="og:title" content="{article.title}">
<script type="application/ld+json">{{"@type": "NewsArticle", "headline": "{article.title}",
"datePublished": "{article.date}"}}</script></head>
<body><div class="navbar"><a href="/">{publication}</a><a href="/subscribe">Subscribe</a><a href="/signin">Sign in</a></div>
<div class="single-post"><article class="post newsletter-post"><div class="post-header">
<h1 class="post-title">{article.title}</h1><div class="post-meta">Robin Vale · {article.date[:10]}</div></div>
<div class="available-content"><div class="body markup">{article.body_html}</div></div>
<div class="subscribe-widget"><p>Thanks for reading {publication}! Subscribe for free to receive new posts
and support my work.</p><input type="email" placeholder="Type your email..."><button>Subscribe</button></div>
</article><div class="post-footer">Share · Like · 12 Restacks · Discussion about this post · Comments</div>
<div class="recommendations">Ready for more? Recommended publications you might like.</div></div>
<footer>© 2024 Robin Vale · Privacy ∙ Terms ∙ Collection notice · Start writing · Get the app ·
Substack is the home for great culture</footer></body></html>"""


def rss_feed(title: str, site_url: str, items: list[tuple[str, Article]], *, full_content: bool = False) -> str:
    from email.utils import format_datetime
    from datetime import datetime
    from html import escape

    rows = []
    for link, article in items:
        when = format_datetime(datetime.fromisoformat(article.date.replace("Z", "+00:00")))
        content = f"<content:encoded><![CDATA[{article.body_html}]]></content:encoded>" if full_content else ""
        rows.append(f"<item><title>{escape(article.title)}</title><link>{escape(link)}</link>"
                    f"<guid>{escape(link)}</guid><pubDate>{when}</pubDate>"
                    f"<description>{escape(article.marker)}</description>{content}</item>")
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
            f'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>{escape(title)}</title>'
            f"<link>{escape(site_url)}</link><description>feed</description>{''.join(rows)}</channel></rss>")


def atom_feed(title: str, items: list[tuple[str, Article]]) -> str:
    from html import escape

    rows = "".join(
        f'<entry><title>{escape(a.title)}</title><link rel="alternate" href="{escape(link)}"/>'
        f"<id>{escape(link)}</id><published>{a.date}</published><updated>{a.date}</updated></entry>"
        for link, a in items
    )
    return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>{escape(title)}</title><id>urn:test</id><updated>2024-07-01T00:00:00Z</updated>{rows}</feed>")


def sitemap(urls: list[str]) -> str:
    rows = "".join(f"<url><loc>{u}</loc></url>" for u in urls)
    return f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{rows}</urlset>'


def sitemap_index(urls: list[str]) -> str:
    rows = "".join(f"<sitemap><loc>{u}</loc></sitemap>" for u in urls)
    return (f'<?xml version="1.0" encoding="UTF-8"?><sitemapindex '
            f'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{rows}</sitemapindex>')

"""Article pages of varied layouts around real writing, with the true body text recorded for each.

Bodies come from ``../shared/corpora`` at run time (markdown rendered to HTML with markdown-it-py);
the page furniture (menus, cookie banners, related links, ads, comments, footers) is written here. The
true text of a page is its title plus the visible text of its rendered body. Nothing generated here is written into the repository.

Eight layouts: blog with sidebar, Medium-like, Substack-like, news site with ads and many related links,
docs page with a navigation tree, minimal page, page with a long comments section, and a technical
page with code blocks and tables.
"""

from __future__ import annotations

import html
import json
import os
import random
import re
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPORA_DIR = Path(os.environ.get("TWIN_CORPORA_DIR", REPO_ROOT.parent / "shared" / "corpora"))
ARTICLE_CORPORA = ("chris_wellons", "simon_willison_til", "josh_branchaud_til")


class BenchmarkPage(BaseModel):
    name: str
    layout: str
    url: str
    html: str
    title: str
    true_text: str
    """The title plus the visible text of the article body as rendered: what a perfect extractor returns."""
    corpus: str
    path: str


class _Body(BaseModel):
    corpus: str
    path: str
    title: str
    date: str
    html: str
    other_titles: list[str]


COMMENTS = [
    ("Priya", "This is exactly the problem I ran into last week. Thanks for writing it up so clearly!"),
    ("Marcus", "Have you tried doing the same thing with the newer release? I think the behaviour changed."),
    ("Jo", "Bookmarked. Sharing this with my team on Monday."),
    ("Anonymous", "Great post, but I disagree with the second point. In my experience it depends on the workload."),
    ("Dee", "Small typo in the third paragraph, otherwise spot on."),
    ("Ken", "Reply to Marcus: yes, it changed in the last version, the defaults are different now."),
]

ADS = [
    "Sponsored: Cloud hosting from $4/month. Deploy in seconds with our one-click installer. Start free trial",
    "Advertisement: The only project management tool your team will ever need. Book a demo today",
    "Promoted: Learn data science in 12 weeks. Bootcamp scholarships available for new applicants",
]

COOKIE = (
    '<div class="cookie-consent" role="dialog"><p>We and our partners use cookies and similar technologies '
    "to personalise content and ads, provide social media features and analyse our traffic. You can accept "
    "all cookies or manage your preferences at any time.</p><button>Accept all</button><button>Reject all"
    "</button><a href=\"/privacy\">Privacy policy</a></div>"
)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _links(titles: list[str], prefix: str) -> str:
    return "".join(f'<li><a href="/{prefix}/{i}">{_esc(t)}</a></li>' for i, t in enumerate(titles))


def blog_sidebar(b: _Body) -> str:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_esc(b.title)} · Notes</title>
<meta property="og:type" content="article"></head><body>
<header class="masthead"><a class="logo" href="/">Notes from the terminal</a><nav><ul><li><a href="/">Home</a></li>
<li><a href="/archive">Archive</a></li><li><a href="/projects">Projects</a></li><li><a href="/about">About</a></li>
</ul></nav></header>{COOKIE}
<div class="wrap"><main><article class="h-entry"><h1 class="p-name">{_esc(b.title)}</h1>
<p class="meta"><time datetime="{b.date}">{b.date}</time> · 6 min read</p>
<div class="e-content">{b.html}</div></article></main>
<aside class="sidebar"><section><h3>About</h3><p>I write about software, tools and the odd hardware project.
Opinions are my own.</p></section><section><h3>Recent posts</h3><ul>{_links(b.other_titles[:6], "post")}</ul>
</section><section><h3>Newsletter</h3><p>Get new posts by email. No spam, unsubscribe at any time.</p>
<form><input type="email" placeholder="you@example.com"><button>Subscribe</button></form></section></aside></div>
<footer><p>© 2024 Notes from the terminal · Powered by a static site generator · RSS · Privacy</p></footer>
</body></html>"""


def medium_like(b: _Body) -> str:
    return f"""<!doctype html><html><head><title>{_esc(b.title)} | by A. Writer | Medium</title>
<meta property="og:type" content="article"><meta name="author" content="A. Writer"></head><body><div id="root">
<div class="metabar"><a href="/">Medium</a><a href="/search">Search</a><a href="/new-story">Write</a>
<a href="/m/signin">Sign up</a><a href="/m/signin">Sign in</a></div>
<div class="meteredContent"><article><div class="section-content"><h1>{_esc(b.title)}</h1>
<div class="pw-author"><a href="/@writer">A. Writer</a> · <button>Follow</button> · 7 min read · {b.date}</div>
<div class="pw-multi-vote"><button>👏 312</button><button>💬 9</button><button>Listen</button><button>Share</button></div>
{b.html}</div></article></div>
<div class="pw-post-footer"><button>👏 312</button> <button>Share</button></div>
<div class="more-from"><h2>More from A. Writer</h2><ul>{_links(b.other_titles[:4], "@writer")}</ul>
<a href="/@writer">See all from A. Writer</a></div>
<div class="recommended"><h2>Recommended from Medium</h2><ul>{_links(b.other_titles[4:8], "p")}</ul>
<p>Lists: Staff Picks · Stories to Help You Level-Up at Work · Self-Improvement 101</p></div>
<footer>Help Status About Careers Press Blog Privacy Terms Text to speech Teams</footer></div></body></html>"""


def substack_like(b: _Body) -> str:
    return f"""<!doctype html><html><head><title>{_esc(b.title)} - The Weekly Build</title>
<meta name="generator" content="Substack"></head><body>
<div class="topbar"><a href="/">The Weekly Build</a><a href="/subscribe">Subscribe</a><a href="/account/login">Sign in</a></div>
<div class="container"><article class="post newsletter-post"><div class="post-header">
<h1 class="post-title">{_esc(b.title)}</h1><h3 class="subtitle">Notes from this week's work</h3>
<div class="post-meta">A. Writer · {b.date} · <button>Share</button></div></div>
<div class="available-content"><div class="body markup">{b.html}</div></div>
<div class="subscription-widget"><p>Thanks for reading The Weekly Build! Subscribe for free to receive new posts
and support my work.</p><input type="email" placeholder="Type your email..."><button>Subscribe</button></div>
</article><div class="post-footer"><button>❤️ 48 Likes</button><button>3 Restacks</button></div>
<div class="comments-section"><h4>Discussion about this post</h4><p>Ready for more?</p></div>
<div class="recommendations"><h4>Recommended</h4><ul>{_links(b.other_titles[:3], "p")}</ul></div></div>
<footer>© 2024 A. Writer · Privacy ∙ Terms ∙ Collection notice · Start Writing · Get the app ·
Substack is the home for great culture</footer></body></html>"""


def news_heavy(b: _Body) -> str:
    ads = "".join(f'<div class="ad-slot"><span>{_esc(a)}</span></div>' for a in ADS)
    return f"""<!doctype html><html><head><title>{_esc(b.title)} - Tech Daily News</title></head><body>
<div class="ticker">BREAKING: Markets rally as tech shares surge · Weather: 18°C partly cloudy · Live: conference keynote</div>
<header><div class="brand">Tech Daily News</div><nav><a href="/">Home</a><a href="/world">World</a><a href="/business">Business</a>
<a href="/tech">Tech</a><a href="/science">Science</a><a href="/opinion">Opinion</a><a href="/video">Video</a>
<a href="/podcasts">Podcasts</a><a href="/subscribe">Subscribe now: 50% off</a></nav></header>{COOKIE}
<div class="ad-slot leaderboard">{_esc(ADS[0])}</div>
<div class="page"><div class="breadcrumbs"><a href="/">Home</a> › <a href="/tech">Tech</a> › Article</div>
<article class="story"><h1 class="headline">{_esc(b.title)}</h1>
<div class="byline">By Staff Writer · Updated {b.date} · <a href="#comments">Comments</a></div>
<div class="share"><a>Share on Facebook</a><a>Share on X</a><a>Email</a><a>Print</a></div>
<div class="story-body">{b.html}</div>
<div class="tags">Topics: <a>Software</a> <a>Programming</a> <a>Open source</a></div></article>
<aside class="rail"><h3>Most read</h3><ol>{_links(b.other_titles[:5], "news")}</ol>{ads}
<h3>Editor's picks</h3><ul>{_links(b.other_titles[5:9], "picks")}</ul></aside></div>
<section class="more-stories"><h2>More stories</h2><ul>{_links(b.other_titles[9:15], "story")}</ul></section>
<div class="newsletter-box"><h3>Get the morning briefing</h3><p>The day's top stories in your inbox every weekday.</p></div>
<footer><ul><li>About us</li><li>Contact</li><li>Careers</li><li>Advertise</li><li>Terms of use</li><li>Privacy</li>
<li>Cookie settings</li></ul><p>© 2024 Tech Daily News Ltd. All rights reserved. Registered in England.</p></footer>
</body></html>"""


def docs_like(b: _Body) -> str:
    toc = "".join(f'<li><a href="#s{i}">{_esc(t)}</a></li>' for i, t in enumerate(re.findall(r"<h2>(.*?)</h2>", b.html)[:8]))
    return f"""<!doctype html><html><head><title>{_esc(b.title)} — Project Docs</title></head><body>
<div class="docs-header"><a href="/">Project</a> <span class="version">v2.4</span><input placeholder="Search docs (Ctrl+K)">
<a href="/github">GitHub</a></div>
<nav class="docs-sidebar" aria-label="Documentation"><ul><li>Getting started<ul><li><a>Installation</a></li>
<li><a>Quickstart</a></li><li><a>Configuration</a></li></ul></li><li>Guides<ul>{_links(b.other_titles[:6], "guide")}
</ul></li><li>Reference<ul><li><a>API</a></li><li><a>CLI</a></li><li><a>Changelog</a></li></ul></li></ul></nav>
<div class="docs-content" role="main"><div class="breadcrumbs"><a>Docs</a> / <a>Guides</a> / {_esc(b.title)}</div>
<div class="section"><h1>{_esc(b.title)}</h1>{b.html}</div>
<div class="prev-next"><a class="prev" href="/prev">« {_esc(b.other_titles[6])}</a>
<a class="next" href="/next">{_esc(b.other_titles[7])} »</a></div>
<p class="edit">Edit this page on GitHub · Last updated on {b.date}</p>
<div class="feedback">Was this page helpful? <button>Yes</button> <button>No</button></div></div>
<nav class="toc"><h4>On this page</h4><ul>{toc}</ul></nav>
<footer>Copyright © 2024 The Project Authors. Documentation licensed under CC BY 4.0. Built with a docs generator.</footer>
</body></html>"""


def minimal(b: _Body) -> str:
    return f"""<!doctype html><html><head><title>{_esc(b.title)}</title></head><body>
<h1>{_esc(b.title)}</h1>{b.html}<hr><p><a href="/">home</a></p></body></html>"""


def with_comments(b: _Body) -> str:
    comments = "".join(
        f'<li class="comment"><div class="comment-author">{_esc(who)}</div><div class="comment-date">{b.date}</div>'
        f'<div class="comment-body"><p>{_esc(text)}</p></div><a class="reply">Reply</a></li>'
        for who, text in COMMENTS
    )
    return f"""<!doctype html><html><head><title>{_esc(b.title)} | Personal blog</title></head><body>
<div id="header"><h2 class="site-title"><a href="/">A personal blog</a></h2><p class="tagline">Thoughts, mostly about code</p>
<ul class="menu"><li><a href="/">Home</a></li><li><a href="/about/">About</a></li><li><a href="/contact/">Contact</a></li></ul></div>
<div id="content"><div class="post"><h1 class="entry-title">{_esc(b.title)}</h1>
<div class="entry-meta">Posted on {b.date} by admin · Filed under Programming</div>
<div class="entry-content">{b.html}</div>
<div class="entry-footer">Tags: code, notes · <a>Permalink</a> · <a>Leave a comment</a></div></div>
<div id="comments"><h3>{len(COMMENTS)} thoughts on “{_esc(b.title)}”</h3><ol class="commentlist">{comments}</ol>
<div id="respond"><h3>Leave a Reply</h3><p>Your email address will not be published. Required fields are marked *</p>
<textarea></textarea><button>Post Comment</button></div></div></div>
<div id="sidebar"><h3>Archives</h3><ul><li>March 2024</li><li>February 2024</li><li>January 2024</li></ul>
<h3>Blogroll</h3><ul>{_links(b.other_titles[:4], "friend")}</ul></div>
<div id="footer">Proudly powered by a blogging engine · Theme by Someone</div></body></html>"""


def code_and_tables(b: _Body) -> str:
    return f"""<!doctype html><html><head><title>{_esc(b.title)} · Engineering blog</title>
<meta property="og:type" content="article"></head><body>
<header class="eng-header"><a href="/">Engineering</a><nav><a href="/eng">All posts</a><a href="/eng/tags">Tags</a>
<a href="/jobs">We're hiring!</a></nav></header>
<div class="grid"><nav class="article-toc"><p>Contents</p><ul><li><a href="#intro">Introduction</a></li>
<li><a href="#code">The code</a></li><li><a href="#results">Results</a></li></ul></nav>
<article class="markdown-body"><h1>{_esc(b.title)}</h1><div class="post-info"><span>{b.date}</span><span>Engineering</span></div>
{b.html}</article>
<aside class="cta"><h4>Join our team</h4><p>We are hiring engineers who love tooling. See open roles.</p></aside></div>
<section class="read-next"><h2>Read next</h2><ul>{_links(b.other_titles[:3], "eng")}</ul></section>
<footer>© 2024 Example Corp Engineering · Security · Status · Careers</footer></body></html>"""


LAYOUTS: dict[str, Callable[[_Body], str]] = {
    "blog_sidebar": blog_sidebar,
    "medium_like": medium_like,
    "substack_like": substack_like,
    "news_heavy": news_heavy,
    "docs_like": docs_like,
    "minimal": minimal,
    "with_comments": with_comments,
    "code_and_tables": code_and_tables,
}


def visible_text(fragment_html: str) -> str:
    import lxml.html

    root = lxml.html.fragment_fromstring(fragment_html, create_parent="div")
    for element in root.iter("br"):
        element.tail = "\n" + (element.tail or "")
    return root.text_content()


def _load(corpus: str) -> list[dict]:
    with (CORPORA_DIR / f"{corpus}.jsonl").open() as fh:
        return [json.loads(line) for line in fh]


def generate_pages(n_pages: int = 32, *, seed: int = 7) -> list[BenchmarkPage]:
    """``n_pages`` pages cycling through the layouts, bodies drawn from the article corpora."""
    from markdown_it import MarkdownIt

    if not CORPORA_DIR.exists():
        raise FileNotFoundError(f"corpora not found at {CORPORA_DIR} (set TWIN_CORPORA_DIR)")
    rng = random.Random(seed)
    md = MarkdownIt("commonmark").enable("table")
    pools: dict[str, list[dict]] = {}
    for corpus in ARTICLE_CORPORA:
        items = [i for i in _load(corpus) if 150 <= i["word_count"] <= 2500 and i.get("title")]
        rng.shuffle(items)
        pools[corpus] = items
    all_titles = [i["title"] for items in pools.values() for i in items]
    code_pool = [i for items in pools.values() for i in items if "```" in i["text"] and "|---" in i["text"]] or \
        [i for items in pools.values() for i in items if "```" in i["text"]]
    rng.shuffle(code_pool)

    pages: list[BenchmarkPage] = []
    layouts = list(LAYOUTS)
    used: set[tuple[str, str]] = set()
    for index in range(n_pages):
        layout = layouts[index % len(layouts)]
        if layout == "code_and_tables":
            item = next(i for i in code_pool if (i["author"], i["path"]) not in used)
            corpus = next(c for c, items in pools.items() if item in items)
        else:
            corpus = ARTICLE_CORPORA[index % len(ARTICLE_CORPORA)]
            item = next(i for i in pools[corpus] if (i["author"], i["path"]) not in used)
        used.add((item["author"], item["path"]))
        text = item["text"].lstrip()
        if text.startswith("# "):  # some corpora repeat the title as a heading; the layout shows it once
            text = text.split("\n", 1)[1] if "\n" in text else ""
        body_html = md.render(text)
        others = rng.sample([t for t in all_titles if t != item["title"]], 16)
        body = _Body(corpus=corpus, path=item["path"], title=item["title"], date=str(item.get("date") or "2024-01-01")[:10],
                     html=body_html, other_titles=others)
        slug = re.sub(r"[^a-z0-9]+", "-", item["title"].lower()).strip("-")[:60] or f"page-{index}"
        pages.append(BenchmarkPage(
            name=f"{index:02d}-{layout}",
            layout=layout,
            url=f"https://bench.example/{layout}/{slug}",
            html=LAYOUTS[layout](body),
            title=item["title"],
            true_text=f"{item['title']}\n\n{visible_text(body_html)}",
            corpus=corpus,
            path=item["path"],
        ))
    return pages

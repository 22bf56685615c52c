"""The demo author's data: enough of it, in a consistent voice, in each platform's real format,
served over real HTTP on 127.0.0.1 (feed, pages, and a git repository clonable with real git)."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import urllib.request
import xml.etree.ElementTree as ET
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `demo` is a folder of the repository, not an installed package
    sys.path.insert(0, str(REPO_ROOT))

from demo import authoring  # noqa: E402
from demo.build import DemoBuild, build, inventory, read_x_archive_js  # noqa: E402
from demo.serve import serve_directory  # noqa: E402

PLACEHOLDERS = (b"{{BASE_URL}}", b"{{BASE_HOST}}")
SIGN_OFF = "Keep your pipes dry. 🛶"
LOCAL_ONLY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str) -> tuple[int, str]:
    try:
        with LOCAL_ONLY.open(url, timeout=10) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, ""


def git_env(home: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"], "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0", "NO_PROXY": "127.0.0.1,localhost",
        **extra,
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """The demo built for, and served at, a real 127.0.0.1 port."""
    out = tmp_path_factory.mktemp("demo-build")
    (out / "site").mkdir()
    server, base_url = serve_directory(out / "site")
    try:
        yield build(out, base_url)
    finally:
        server.stop()


# ------------------------------------------------------------------ content and voice

def test_committed_site_and_exports_match_the_content() -> None:
    stale = authoring.stale_files()
    assert stale == [], "run `python -m demo.authoring` and commit demo/site and demo/exports"


def test_there_is_enough_writing_of_every_kind() -> None:
    counts = inventory()
    assert counts.total_items >= 40
    assert counts.blog_articles >= 8
    assert counts.linkedin_posts >= 26 and counts.linkedin_reshares >= 1
    assert counts.linkedin_articles == 2
    assert counts.x_posts + counts.x_threads >= 8
    assert counts.x_threads >= 2 and counts.x_thread_tweets >= 3 * counts.x_threads
    assert counts.x_retweets >= 2 and counts.x_replies >= 2
    assert counts.repos == 1 and counts.repo_files >= 8


def test_linkedin_posts_carry_the_voice() -> None:
    posts = [post for post in authoring.load_linkedin_posts() if post.text]
    for post in posts:
        words = len(post.text.split())
        assert 60 <= words <= 250, (post.date, words)
        assert re.match(r"🌊 (Low|High) tide thought: ", post.text), post.date
        assert SIGN_OFF in post.text, post.date
        last_line = post.text.strip().splitlines()[-1]
        assert re.fullmatch(r"#\w+ #\w+ #\w+", last_line), (post.date, last_line)
        assert "#DataEngineering #PipelinePlumbing" in last_line
        assert not re.search(r"^\s*[-•*] ", post.text, flags=re.MULTILINE), "lists in posts use →"
    assert sum("→" in post.text for post in posts) >= len(posts) * 2 // 3


def test_articles_are_long_form_markdown_in_the_same_voice() -> None:
    articles = authoring.load_articles()
    assert len({article.slug for article in articles}) == len(articles)
    for article in articles:
        assert 600 <= article.word_count <= 1500, (article.slug, article.word_count)
        body = article.body_markdown
        assert body.count("\n## ") >= 3 and "```" in body and "\n> " in body, article.slug
        assert "## The short version" in body and body.rstrip().endswith(SIGN_OFF), article.slug
    for article in authoring.load_linkedin_articles():
        assert article.body_markdown.rstrip().endswith(SIGN_OFF)


def test_x_posts_are_lower_case_and_threads_end_with_fin() -> None:
    source = authoring.load_x_source()
    own = [post for post in source.posts if post.kind in ("post", "thread", "reply")]
    for post in own:
        for text in post.parts or [post.text]:
            assert len(text) <= 280, text
            first_word = text.split()[0]
            assert first_word == first_word.lower() or first_word.isupper(), text
    for thread in (post for post in source.posts if post.kind == "thread"):
        assert thread.parts[0].endswith("1/") and thread.parts[-1].endswith("/fin 🛶")


# ------------------------------------------------------------------ exports in their real formats

def test_linkedin_export_zip_has_the_real_layout(served: DemoBuild) -> None:
    with zipfile.ZipFile(served.linkedin_zip) as archive:
        names = archive.namelist()
        assert "Shares.csv" in names and "Profile.csv" in names
        articles = [name for name in names if re.fullmatch(r"Articles/Articles/[^/]+\.html", name)]
        assert len(articles) == 2
        shares_bytes = archive.read("Shares.csv")
        article_pages = [archive.read(name).decode() for name in articles]
    assert not any(marker in shares_bytes for marker in PLACEHOLDERS)
    text = shares_bytes.decode("utf-8")
    assert text.splitlines()[0] == "Date,ShareLink,ShareCommentary,SharedUrl,MediaUrl,Visibility"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == served.inventory.linkedin_posts + served.inventory.linkedin_reshares
    for row in rows:
        datetime.strptime(row["Date"], "%Y-%m-%d %H:%M:%S")
        assert re.fullmatch(r"https://www\.linkedin\.com/feed/update/urn:li:share:\d{19}", row["ShareLink"])
        assert row["Visibility"] in {"MEMBER_NETWORK", "CONNECTIONS_ONLY"}
    assert len({row["ShareLink"] for row in rows}) == len(rows)
    assert any("\n\n" in row["ShareCommentary"] for row in rows), "multi-line commentary survives CSV quoting"
    blog_links = [row["SharedUrl"] for row in rows if "/blog/" in row["SharedUrl"]]
    assert blog_links and all(link in served.article_urls for link in blog_links)
    for page in article_pages:
        assert re.search(r"<h1>.*</h1>", page) and "Published on " in page and SIGN_OFF in page


def test_x_archive_zip_has_the_real_layout(served: DemoBuild) -> None:
    with zipfile.ZipFile(served.x_zip) as archive:
        assert sorted(archive.namelist()) == ["data/account.js", "data/tweets.js"]
        tweets_js = archive.read("data/tweets.js").decode("utf-8")
        account_js = archive.read("data/account.js").decode("utf-8")
    assert tweets_js.startswith("window.YTD.tweets.part0 = [")
    assert account_js.startswith("window.YTD.account.part0 = [")
    assert "{{BASE" not in tweets_js
    account = read_x_archive_js(account_js)[0]["account"]
    assert account["username"] == "tovapipes" and account["accountId"].isdigit()
    tweets = {entry["tweet"]["id_str"]: entry["tweet"] for entry in read_x_archive_js(tweets_js)}
    own_replies, other_replies, retweets = [], [], []
    for tweet in tweets.values():
        assert tweet["id"] == tweet["id_str"] and tweet["retweeted"] is False
        datetime.strptime(tweet["created_at"], "%a %b %d %H:%M:%S %z %Y")
        for url in tweet["entities"]["urls"]:
            start, end = map(int, url["indices"])
            assert tweet["full_text"][start:end] == url["url"] and url["url"].startswith("https://t.co/")
            assert url["expanded_url"].startswith(served.base_url)
        if tweet["full_text"].startswith("RT @"):
            retweets.append(tweet)
        elif tweet.get("in_reply_to_user_id_str") == account["accountId"]:
            own_replies.append(tweet)
            assert tweet["in_reply_to_screen_name"] == "tovapipes"
            assert tweet["in_reply_to_status_id_str"] in tweets, "a thread's parent is in the archive"
        elif "in_reply_to_status_id_str" in tweet:
            other_replies.append(tweet)
            assert tweet["full_text"].startswith("@" + tweet["in_reply_to_screen_name"])
    assert len(retweets) == served.inventory.x_retweets >= 2
    assert len(other_replies) == served.inventory.x_replies >= 2
    assert len(own_replies) >= 6
    assert any("&amp;" in tweet["full_text"] for tweet in tweets.values()), "archives HTML-escape full_text"
    ids = [int(entry["tweet"]["id"]) for entry in read_x_archive_js(tweets_js)]
    assert ids == sorted(ids, reverse=True), "archives list the newest tweet first"


def test_the_projects_importer_reads_both_exports(served: DemoBuild) -> None:
    from ingestion.exports import read_export

    linkedin = read_export(served.linkedin_zip)
    assert len(linkedin.documents) == served.inventory.linkedin_posts + served.inventory.linkedin_articles
    x = read_export(served.x_zip)
    counts = served.inventory
    assert len(x.documents) == counts.x_posts + counts.x_threads + counts.x_replies
    assert sum("retweet" in reason for reason in x.skipped) == counts.x_retweets


# ------------------------------------------------------------------ the site over HTTP

def test_feed_lists_every_article_and_each_page_has_its_metadata(served: DemoBuild) -> None:
    status, feed = fetch(served.feed_url)
    assert status == 200
    channel = ET.fromstring(feed).find("channel")
    items = channel.findall("item")
    assert {item.findtext("link") for item in items} == set(served.article_urls)
    articles = {article.slug: article for article in authoring.load_articles()}
    for item in items:
        for field in ("title", "link", "pubDate", "description", "guid"):
            assert (item.findtext(field) or "").strip(), field
        slug = item.findtext("link").rstrip("/").rsplit("/", 1)[-1]
        status, page = fetch(item.findtext("link"))
        assert status == 200
        assert f'<link rel="canonical" href="{item.findtext("link")}">' in page
        assert re.search(r'<meta property="og:title" content="[^"]+">', page)
        assert f'<time datetime="{articles[slug].iso_date}"' in page
        assert "<article" in page and re.search(r"<h1[^>]*>.+</h1>", page)
        for boilerplate in ("cookie-banner", "site-nav", "sidebar", "share-buttons", "related-posts",
                            "newsletter-box", "site-footer"):
            assert boilerplate in page, boilerplate
    status, sitemap = fetch(served.sitemap_url)
    sitemap_ns = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
    locations = {node.text for node in ET.fromstring(sitemap).iter(f"{sitemap_ns}loc")}
    assert set(served.article_urls) <= locations


def test_no_placeholder_survives_the_build(served: DemoBuild) -> None:
    for path in served.site_dir.rglob("*"):
        if path.is_file() and "git" not in path.relative_to(served.site_dir).parts:
            data = path.read_bytes()
            assert not any(marker in data for marker in PLACEHOLDERS), path


def test_missing_pages_are_404_and_only_git_fetches_may_post(served: DemoBuild) -> None:
    assert fetch(f"{served.base_url}/blog/no-such-post/")[0] == 404
    request = urllib.request.Request(f"{served.base_url}/feed.xml", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        LOCAL_ONLY.open(request, timeout=10)
    assert refused.value.code == 405


# ------------------------------------------------------------------ the repository over HTTP

@pytest.mark.parametrize(
    ("how", "args", "extra_env"),
    [("smart", [], {}), ("shallow", ["--depth", "1"], {}), ("dumb", [], {"GIT_SMART_HTTP": "0"})],
)
def test_demo_repo_clones_with_real_git(served: DemoBuild, tmp_path: Path, how: str, args: list[str],
                                        extra_env: dict[str, str]) -> None:
    target = tmp_path / "clone"
    result = subprocess.run(
        ["git", "clone", "-q", *args, served.repo_url, str(target)],
        env=git_env(tmp_path, **extra_env), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=target, capture_output=True, text=True,
                          env=git_env(tmp_path)).stdout.strip()
    assert head == served.repo_head
    history = subprocess.run(["git", "log", "--format=%an <%ae>|%s"], cwd=target, capture_output=True,
                             text=True, env=git_env(tmp_path)).stdout.splitlines()
    assert len(history) == (1 if how == "shallow" else 4)
    assert all(line.startswith("Tova Brannock <") for line in history)
    cloned = sorted(path.relative_to(target).as_posix() for path in target.rglob("*")
                    if path.is_file() and ".git" not in path.relative_to(target).parts)
    source = authoring.DEMO_DIR / "repo"
    expected = sorted(path.relative_to(source).as_posix() for path in source.rglob("*")
                      if path.is_file() and "__pycache__" not in path.parts)
    assert cloned == expected
    assert (target / "leakcheck/checks.py").read_bytes() == (source / "leakcheck/checks.py").read_bytes()


def test_pushing_to_the_demo_repo_is_refused(served: DemoBuild, tmp_path: Path) -> None:
    target = tmp_path / "clone"
    env = git_env(tmp_path, GIT_AUTHOR_NAME="x", GIT_AUTHOR_EMAIL="x@x", GIT_COMMITTER_NAME="x",
                  GIT_COMMITTER_EMAIL="x@x")
    subprocess.run(["git", "clone", "-q", served.repo_url, str(target)], env=env, check=True, timeout=60)
    (target / "NOTE.md").write_text("not welcome\n")
    subprocess.run(["git", "add", "NOTE.md"], cwd=target, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "push attempt"], cwd=target, env=env, check=True)
    pushed = subprocess.run(["git", "push", "-q", "origin", "main"], cwd=target, env=env, capture_output=True,
                            text=True, timeout=60)
    assert pushed.returncode != 0
    assert subprocess.run(["git", "rev-parse", "main"], cwd=served.repo_bare, capture_output=True, text=True,
                          env=git_env(tmp_path)).stdout.strip() == served.repo_head


# ------------------------------------------------------------------ the build itself

def test_build_is_deterministic_and_the_cli_prints_where_things_are(tmp_path: Path) -> None:
    first = build(tmp_path / "one", "http://127.0.0.1:9/")
    result = subprocess.run(
        [sys.executable, "-m", "demo.build", str(tmp_path / "two"), "--base-url", "http://127.0.0.1:9"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    second = DemoBuild.model_validate_json(result.stdout)
    assert first.base_url == second.base_url == "http://127.0.0.1:9"
    assert first.repo_head == second.repo_head
    assert first.linkedin_zip.read_bytes() == second.linkedin_zip.read_bytes()
    assert first.x_zip.read_bytes() == second.x_zip.read_bytes()
    again = build(tmp_path / "one", "http://127.0.0.1:9")  # a rebuild over an earlier one replaces it
    assert again.repo_head == first.repo_head
    with pytest.raises(ValueError):
        build(tmp_path / "three", "127.0.0.1:9")


def test_the_voice_benchmark_splits_the_demo_author_like_a_corpus_author():
    """`benchmarks.twin_quality --authors tova` needs no ../shared/corpora: her own writing is the corpus."""
    from benchmarks.judge import word_count
    from benchmarks.twin_quality import DEMO_AUTHOR, split_corpus

    split = split_corpus(DEMO_AUTHOR, held_out=3, seed=0)
    assert len(split.held_out) == 3
    assert all(r["title"] and word_count(r["text"]) >= 100 for r in split.held_out)  # articles, not tweets
    held = {r["title"] for r in split.held_out}
    assert not held & {r["title"] for r in split.train}
    texts = [r["text"] for r in (*split.held_out, *split.train)]
    assert sum(r["title"] is None for r in split.train) >= 40  # her LinkedIn and X posts are collected too
    assert not any("{{" in text for text in texts)  # the demo site's address placeholder is filled in

"""Export ZIPs built here in each platform's real layout, read back by `read_export`."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingestion.exports import ExportLimits, read_export
from twin.domain import Kind, Platform, TwinError


def _zip(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _csv(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


# ---------------------------------------------------------------- LinkedIn

LINKEDIN_ARTICLE = """<html><head><meta charset="UTF-8" /><title>Why small teams ship</title></head><body>
<img src="https://media.licdn.com/cover.jpg" alt="" />
<h1><a href="https://www.linkedin.com/pulse/why-small-teams-ship-ada-lovelace">Why small teams ship</a></h1>
<p class="created">Created on 2023-02-01 09:12</p>
<p class="published">Published on 2023-02-03 08:00</p>
<div><p>Small teams ship because every person can hold the whole system in their head.</p>
<h2>The cost of coordination</h2>
<p>Every extra person adds a line of communication &amp; a meeting. 🚀</p>
<ul><li>fewer handoffs</li><li>shorter reviews</li></ul>
<blockquote><p>Make it work, then make it fast.</p></blockquote>
<p>#engineering #teams</p></div></body></html>"""

LINKEDIN_DRAFT = """<html><body><h1>Unfinished thoughts</h1><p class="created">Created on 2023-03-01 10:00</p>
<div><p>Not ready yet.</p></div></body></html>"""


def _linkedin_zip(path: Path, shares_name: str = "Shares.csv") -> Path:
    # LinkedIn wraps each line of a multi-line commentary in quotes inside the field itself.
    multi_line = '"Three things I learned this week:"\n"1. Ship small."\n"2. Say ""no"" more often. 🙌"'
    shares = _csv(
        ["Date", "ShareLink", "ShareCommentary", "SharedUrl", "MediaUrl", "Visibility"],
        [
            ["2023-01-05 10:22:33", "https://www.linkedin.com/feed/update/urn%3Ali%3Ashare%3A7016", multi_line,
             "", "", "MEMBER_NETWORK"],
            ["2023-01-07 18:00:01", "https://www.linkedin.com/feed/update/urn%3Ali%3Ashare%3A7017",
             "Plain one-line post with a #hashtag", "https://example.com/a?utm_source=li", "", "PUBLIC"],
            ["2023-01-09 08:00:00", "https://www.linkedin.com/feed/update/urn%3Ali%3Ashare%3A7018", "",
             "https://example.com/reshared", "", "PUBLIC"],
        ],
    )
    return _zip(
        path,
        {
            f"Basic_LinkedInDataExport_01-10-2023/{shares_name}": shares.encode("utf-8-sig"),
            "Basic_LinkedInDataExport_01-10-2023/Connections.csv": "First Name,Last Name\nGrace,Hopper\n",
            "Basic_LinkedInDataExport_01-10-2023/Articles/Articles/Why small teams ship.html": LINKEDIN_ARTICLE,
            "Basic_LinkedInDataExport_01-10-2023/Articles/Articles/Unfinished thoughts.html": LINKEDIN_DRAFT,
        },
    )


def test_linkedin_shares_and_articles(tmp_path: Path) -> None:
    contents = read_export(_linkedin_zip(tmp_path / "linkedin.zip"))
    assert contents.platform is Platform.linkedin
    posts = [d for d in contents.documents if d.kind is Kind.post]
    articles = [d for d in contents.documents if d.kind is Kind.article]
    assert len(posts) == 2 and len(articles) == 1

    first = posts[0]
    assert first.url == "https://www.linkedin.com/feed/update/urn%3Ali%3Ashare%3A7016"
    assert first.text == 'Three things I learned this week:\n1. Ship small.\n2. Say "no" more often. 🙌'
    assert first.published_at == datetime(2023, 1, 5, 10, 22, 33, tzinfo=UTC)
    assert posts[1].metadata["shared_url"] == "https://example.com/a?utm_source=li"
    assert any("reshare without commentary" in reason for reason in contents.skipped)

    article = articles[0]
    assert article.url == "https://www.linkedin.com/pulse/why-small-teams-ship-ada-lovelace"
    assert article.title == "Why small teams ship"
    assert article.published_at == datetime(2023, 2, 3, 8, 0, tzinfo=UTC)
    assert article.text.startswith("Small teams ship because")
    assert "## The cost of coordination" in article.text
    assert "communication & a meeting. 🚀" in article.text
    assert "- fewer handoffs" in article.text
    assert "> Make it work, then make it fast." in article.text
    assert "#engineering #teams" in article.text
    assert "Published on" not in article.text and "Why small teams ship" not in article.text
    assert any("draft article" in reason for reason in contents.skipped)


def test_linkedin_newer_posts_csv_with_other_casing(tmp_path: Path) -> None:
    shares = _csv(
        ["date", "sharelink", "sharecommentary", "sharedurl", "mediaurl", "visibility"],
        [["2024-06-01 12:00:00", "https://www.linkedin.com/feed/update/urn:li:share:1", "Hello from 2024", "", "", ""]],
    )
    contents = read_export(_zip(tmp_path / "li.zip", {"Posts.csv": shares}))
    assert contents.platform is Platform.linkedin
    assert [d.text for d in contents.documents] == ["Hello from 2024"]


# ---------------------------------------------------------------- X


def _tweet(tweet_id: str, text: str, *, reply_to: str | None = None, reply_user: str | None = None,
           reply_name: str | None = None, urls: list[dict] | None = None, media: list[dict] | None = None,
           retweeted: bool = False, day: int = 1) -> dict:
    tweet = {
        "id_str": tweet_id,
        "id": tweet_id,
        "full_text": text,
        "created_at": f"Wed Mar {day:02d} 10:00:00 +0000 2023",
        "retweeted": retweeted,
        "favorite_count": "3",
        "entities": {"urls": urls or [], "hashtags": [], "user_mentions": []},
        "lang": "en",
    }
    if media:
        tweet["entities"]["media"] = media
    if reply_to:
        tweet.update(in_reply_to_status_id_str=reply_to, in_reply_to_status_id=reply_to,
                     in_reply_to_user_id_str=reply_user, in_reply_to_screen_name=reply_name)
    return {"tweet": tweet}


def _x_zip(path: Path, *, tweets_file: str = "data/tweets.js", variable: str = "tweets") -> Path:
    account = [{"account": {"email": "ada@example.com", "username": "ada_codes", "accountId": "42",
                            "createdAt": "2010-01-01T00:00:00.000Z", "accountDisplayName": "Ada"}}]
    tweets = [
        # listed out of order on purpose: the archive is newest first
        _tweet("1003", "3/ and that is why I write tests first &amp; last.", reply_to="1002", reply_user="42",
               reply_name="ada_codes", day=3),
        _tweet("1001", "1/ A thread on testing 🧵 https://t.co/abc", day=1,
               urls=[{"url": "https://t.co/abc", "expanded_url": "https://example.com/testing",
                      "display_url": "example.com/testing"}]),
        _tweet("1002", "@ada_codes 2/ Tests are documentation that cannot lie. https://t.co/img",
               reply_to="1001", reply_user="42", reply_name="ada_codes", day=2,
               media=[{"url": "https://t.co/img", "media_url_https": "https://pbs.twimg.com/x.jpg"}]),
        _tweet("1004", "RT @someone: a retweet that is not mine", day=4),
        _tweet("1005", "Something I retweeted", retweeted=True, day=5),
        _tweet("1006", "@grace I agree, &lt;b&gt; tags are fine here", reply_to="900", reply_user="7",
               reply_name="grace", day=6),
        _tweet("1007", "A standalone post with #hashtag", day=7),
    ]
    return _zip(
        path,
        {
            "Your archive.html": "<html></html>",
            "data/account.js": "window.YTD.account.part0 = " + json.dumps(account, indent=2),
            tweets_file: f"window.YTD.{variable}.part0 = " + json.dumps(tweets, indent=2),
            "data/tweets_media/1002-x.jpg": b"\xff\xd8\xff",
        },
    )


def test_x_archive_threads_retweets_and_links(tmp_path: Path) -> None:
    contents = read_export(_x_zip(tmp_path / "twitter.zip"))
    assert contents.platform is Platform.x
    by_url = {d.url: d for d in contents.documents}
    assert set(by_url) == {
        "https://x.com/ada_codes/status/1001",
        "https://x.com/ada_codes/status/1006",
        "https://x.com/ada_codes/status/1007",
    }
    thread = by_url["https://x.com/ada_codes/status/1001"]
    assert thread.kind is Kind.post
    assert thread.text == (
        "1/ A thread on testing 🧵 https://example.com/testing\n\n"
        "2/ Tests are documentation that cannot lie.\n\n"
        "3/ and that is why I write tests first & last."
    )
    assert thread.metadata["tweet_ids"] == ["1001", "1002", "1003"]
    assert thread.published_at == datetime(2023, 3, 1, 10, 0, tzinfo=UTC)
    reply = by_url["https://x.com/ada_codes/status/1006"]
    assert reply.kind is Kind.note and reply.text == "I agree, <b> tags are fine here"
    assert by_url["https://x.com/ada_codes/status/1007"].text == "A standalone post with #hashtag"
    assert sum("retweet" in reason for reason in contents.skipped) == 2


def test_x_older_archive_tweet_js(tmp_path: Path) -> None:
    contents = read_export(_x_zip(tmp_path / "old.zip", tweets_file="data/tweet.js", variable="tweet"))
    assert contents.platform is Platform.x and len(contents.documents) == 3


# ---------------------------------------------------------------- Substack


SUBSTACK_BODY = """<div class="captioned-image-container"><figure><img src="https://substackcdn.com/x.png"/></figure></div>
<p>Most advice about writing is advice about <em>rewriting</em>.</p>
<h3>Start ugly</h3><p>The first draft exists to be fixed. Write it fast.</p>
<pre><code>draft = write(fast=True)
final = edit(draft, passes=3)</code></pre>
<p>See you next week ✌️</p>"""


def test_substack_export_published_only(tmp_path: Path) -> None:
    posts = _csv(
        ["post_id", "post_date", "is_published", "email_sent_at", "inbox_sent_at", "type", "audience", "title",
         "subtitle", "podcast_url"],
        [
            ["148210.start-ugly", "2023-04-02T14:00:52.123Z", "true", "2023-04-02T14:01:00.000Z", "", "newsletter",
             "everyone", "Start ugly", "On first drafts", ""],
            ["148300.half-done", "", "false", "", "", "newsletter", "everyone", "Half done", "", ""],
        ],
    )
    archive = _zip(
        tmp_path / "substack.zip",
        {
            "posts.csv": posts,
            "posts/148210.start-ugly.html": SUBSTACK_BODY,
            "posts/148300.half-done.html": "<p>draft</p>",
            "email_list.my-pub.csv": "email,active_subscription\nx@example.com,true\n",
        },
    )
    contents = read_export(archive)
    assert contents.platform is Platform.substack
    assert len(contents.documents) == 1
    post = contents.documents[0]
    assert post.url == "substack-export://148210.start-ugly"
    assert post.kind is Kind.article and post.title == "Start ugly"
    assert post.metadata["subtitle"] == "On first drafts"
    assert post.published_at == datetime(2023, 4, 2, 14, 0, 52, 123000, tzinfo=UTC)
    assert "advice about *rewriting*" in post.text
    assert "### Start ugly" in post.text
    assert "```\ndraft = write(fast=True)\nfinal = edit(draft, passes=3)\n```" in post.text
    assert "✌️" in post.text
    assert any("not published" in reason for reason in contents.skipped)
    named = read_export(archive, publication_url="https://ada.substack.com/")
    assert named.documents[0].url == "https://ada.substack.com/p/start-ugly"


# ---------------------------------------------------------------- Medium


def _medium_page(title: str, body: str, *, canonical: str, published: str) -> str:
    return f"""<!DOCTYPE html><html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<title>{title}</title></head><body><article class="h-entry">
<header><h1 class="p-name">{title}</h1></header>
<section data-field="subtitle" class="p-summary">A subtitle</section>
<section data-field="body" class="e-content"><section name="a1" class="section section--body section--first">
<div class="section-content"><div class="section-inner sectionLayout--insetColumn">
<h3 name="t1" class="graf graf--h3 graf--leading graf--title">{title}</h3>{body}</div></div></section></section>
<footer><p>By <a href="https://medium.com/@ada" class="p-author h-card">Ada</a> on
<a href="{canonical}"><time class="dt-published" datetime="{published}">April 2, 2021</time></a>.</p>
<p><a href="{canonical}" class="p-canonical">Canonical link</a></p>
<p>Exported from <a href="https://medium.com">Medium</a> on May 1, 2024.</p></footer></article></body></html>"""


def test_medium_export_posts_notes_and_drafts(tmp_path: Path) -> None:
    long_body = "".join(
        f'<p name="p{i}" class="graf graf--p">Paragraph {i} about building calm software, one careful '
        "change at a time, with tests that tell the truth and reviews that teach.</p>"
        for i in range(8)
    ) + '<pre name="c1" class="graf graf--pre">make test</pre>'
    article = _medium_page("Calm software", long_body, canonical="https://medium.com/@ada/calm-software-1a2b3c",
                           published="2021-04-02T10:11:12.345Z")
    response = _medium_page("Great point", '<p class="graf graf--p">Great point, thanks for writing this!</p>',
                            canonical="https://medium.com/@ada/great-point-9f8e", published="2021-05-01T08:00:00.000Z")
    archive = _zip(
        tmp_path / "medium.zip",
        {
            "medium-export/README.html": "<html><body>Your export</body></html>",
            "medium-export/posts/2021-04-02_Calm-software-1a2b3c.html": article,
            "medium-export/posts/2021-05-01_Great-point-9f8e.html": response,
            "medium-export/posts/draft_Untitled-77aa.html": _medium_page(
                "Untitled", "<p>wip</p>", canonical="https://medium.com/p/77aa", published="2021-06-01T00:00:00Z"
            ),
            "medium-export/profile/profile.html": "<html><body>Ada</body></html>",
        },
    )
    contents = read_export(archive)
    assert contents.platform is Platform.medium
    by_url = {d.url: d for d in contents.documents}
    assert set(by_url) == {"https://medium.com/@ada/calm-software-1a2b3c", "https://medium.com/@ada/great-point-9f8e"}
    post = by_url["https://medium.com/@ada/calm-software-1a2b3c"]
    assert post.kind is Kind.article and post.title == "Calm software"
    assert post.published_at == datetime(2021, 4, 2, 10, 11, 12, 345000, tzinfo=UTC)
    assert post.text.startswith("Paragraph 0 about building calm software")
    assert "Calm software" not in post.text.split("\n")[0]
    assert "make test" in post.text and "Canonical link" not in post.text
    note = by_url["https://medium.com/@ada/great-point-9f8e"]
    assert note.kind is Kind.note and note.text == "Great point, thanks for writing this!"
    assert any("draft" in reason for reason in contents.skipped)


# ---------------------------------------------------------------- refusals


def test_not_a_zip_and_unknown_and_corrupt(tmp_path: Path) -> None:
    text_file = tmp_path / "notes.zip"
    text_file.write_text("just text")
    with pytest.raises(TwinError, match="not a ZIP"):
        read_export(text_file)
    unknown = _zip(tmp_path / "unknown.zip", {"photos/cat.jpg": b"\xff\xd8", "notes.txt": "hello"})
    with pytest.raises(TwinError, match="not an export this project knows"):
        read_export(unknown)
    good = _x_zip(tmp_path / "x.zip").read_bytes()
    corrupt = tmp_path / "corrupt.zip"
    # keep the central directory (so it still looks like a ZIP) but damage the compressed data
    damaged = bytearray(good)
    for offset in range(200, min(len(damaged) - 400, 1200)):
        damaged[offset] ^= 0x5A
    corrupt.write_bytes(bytes(damaged))
    with pytest.raises(TwinError):
        read_export(corrupt)
    with pytest.raises(TwinError, match="no such file"):
        read_export(tmp_path / "missing.zip")


def test_unsafe_member_paths_are_refused(tmp_path: Path) -> None:
    for name in ("../evil.csv", "/etc/passwd", "data/../../evil.js"):
        archive = tmp_path / "evil.zip"
        with zipfile.ZipFile(archive, "w") as handle:
            handle.writestr(zipfile.ZipInfo(name), "x")
            handle.writestr("Shares.csv", "Date,ShareLink,ShareCommentary\n")
        with pytest.raises(TwinError, match="unsafe path"):
            read_export(archive)


def test_zip_bomb_and_member_count_caps(tmp_path: Path) -> None:
    bomb_text = "window.YTD.tweets.part0 = [" + " " * 5_000_000 + "]"
    bomb = _zip(tmp_path / "bomb.zip", {"data/tweets.js": bomb_text})
    assert bomb.stat().st_size < 100_000  # ~5 MB of spaces deflates to a few KB
    with pytest.raises(TwinError, match="zip bomb"):
        read_export(bomb)
    with pytest.raises(TwinError, match="unpacks to"):
        read_export(bomb, limits=ExportLimits(max_total_bytes=1_000_000))
    with pytest.raises(TwinError, match="went past"):
        read_export(bomb, limits=ExportLimits(max_read_bytes=1_000_000, max_ratio=10_000))
    many = _zip(tmp_path / "many.zip", {f"posts/{i}.html": "<p>x</p>" for i in range(30)})
    with pytest.raises(TwinError, match="more than the 20 allowed"):
        read_export(many, limits=ExportLimits(max_members=20))

"""Platform data exports (the ZIP a person downloads from LinkedIn, X, Substack or Medium) as documents.

The format is detected from what the archive holds, never from its file name:

- **X** ("Download an archive of your data"): ``data/tweets.js`` (older archives: ``data/tweet.js``;
  large ones add ``tweets-part1.js``...), each ``window.YTD.tweets.part0 = [{"tweet": {...}}]``, and
  ``data/account.js`` for the username. Retweets are dropped. A tweet that replies to one of the author's own
  tweets joins that tweet's thread; a thread becomes one post (tweets joined by blank lines, in order) at
  the first tweet's URL. Replies to other people are kept as kind ``note`` with the leading @-mentions
  removed: they are the author's voice too, and the kind lets training or retrieval leave them out.
  t.co links are expanded from ``entities.urls``; links to attached media are removed.
- **LinkedIn** ("Get a copy of your data"): ``Shares.csv`` (newer archives may call it ``Posts.csv``;
  headers matched case-insensitively) as posts, reshares without commentary skipped; and
  ``Articles/Articles/*.html`` as articles (articles with no "Published on" line are drafts: skipped).
- **Substack** (Settings, Exports): ``posts.csv`` (``post_id`` is ``<number>.<slug>``) and
  ``posts/<post_id>.html`` bodies; published posts only. The URL is ``<publication_url>/p/<slug>`` when the
  caller knows the publication, else ``substack-export://<post_id>``.
- **Medium** (Settings, Download your information): ``posts/*.html``, one h-entry page per post; files
  named ``draft_*`` are drafts and skipped. Medium stores responses (comments) as posts too, with nothing
  but their length to tell them apart: a piece without a title or under 100 words is kept as kind ``note``.

Archives are read in memory, member by member, with caps on member count and on uncompressed bytes (the
declared sizes and the bytes actually inflated), and an archive naming absolute paths or ``..`` members is
refused outright.

Private chat exports (WhatsApp, Telegram) live in `ingestion.chats`; given here, they are refused with the
flag that imports them.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import zipfile
from collections.abc import Iterator
from copy import deepcopy
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, Field

from twin.domain import Kind, Platform, RawDocument, TwinError

MEDIUM_NOTE_MAX_WORDS = 100
X_DATE_FORMAT = "%a %b %d %H:%M:%S %z %Y"


class ExportLimits(BaseModel):
    """Caps that keep a hostile or broken archive from exhausting memory or time."""

    max_members: int = 200_000
    max_total_bytes: int = 40_000_000_000
    """Sum of all members' declared uncompressed sizes (X archives carry their media: large but honest, and
    never inflated here: only the text members are read, from the archive on disk)."""
    max_read_bytes: int = 200_000_000
    """Uncompressed bytes actually read, over all the text members used."""
    max_member_bytes: int = 100_000_000
    max_ratio: int = 200
    """Compression ratio above which a member larger than 1 MB counts as a zip bomb."""


class ExportContents(BaseModel):
    platform: Platform
    documents: list[RawDocument] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)
    """One human-readable reason per item left out (draft, retweet, empty reshare...)."""


def read_export(
    path: Path, *, publication_url: str | None = None, limits: ExportLimits | None = None
) -> ExportContents:
    """Read a platform's export ZIP; raises `TwinError` when it is not one this project knows or is unsafe."""
    limits = limits or ExportLimits()
    path = Path(path)
    if not path.is_file():
        raise TwinError(f"{path}: no such file.")
    from ingestion.chats import APP_NAMES, detect_chat_export

    if app := detect_chat_export(path):  # private messages are imported only when asked for by name
        raise TwinError(
            f"{path.name} is a {APP_NAMES[app]} chat export: private messages are imported only when you ask "
            "for it: `twin import AUTHOR FILE --private` (API: `?private=true`)."
        )
    if not zipfile.is_zipfile(path):
        raise TwinError(f"{path.name} is not a ZIP file. Import the archive exactly as the platform sent it.")
    try:
        with zipfile.ZipFile(path) as archive:
            reader = _ArchiveReader(archive, limits, path.name)
            return _detect_and_read(reader, publication_url)
    except zipfile.BadZipFile as exc:
        raise TwinError(f"{path.name} is a damaged ZIP file ({exc}).") from exc


class _ArchiveReader:
    """Checked access to the members of one archive."""

    def __init__(self, archive: zipfile.ZipFile, limits: ExportLimits, name: str) -> None:
        self.archive, self.limits, self.name = archive, limits, name
        self.read_bytes = 0
        infos = archive.infolist()
        if len(infos) > limits.max_members:
            raise TwinError(f"{name} holds {len(infos)} files, more than the {limits.max_members} allowed.")
        total = 0
        for info in infos:
            member = info.filename.replace("\\", "/")
            if member.startswith("/") or re.match(r"^[A-Za-z]:", member) or ".." in PurePosixPath(member).parts:
                raise TwinError(f"{name} contains an unsafe path ({info.filename!r}); refusing the archive.")
            total += info.file_size
        if total > limits.max_total_bytes:
            raise TwinError(
                f"{name} unpacks to {total:,} bytes, more than the {limits.max_total_bytes:,} allowed."
            )
        self.files = [info for info in infos if not info.is_dir()]

    def find(self, pattern: str) -> list[zipfile.ZipInfo]:
        """Members whose path (any leading folder ignored) matches `pattern`, case-insensitively, in order."""
        regex = re.compile(rf"(?:^|/){pattern}$", re.IGNORECASE)
        return sorted((info for info in self.files if regex.search(info.filename)), key=lambda i: i.filename)

    def read_text(self, info: zipfile.ZipInfo) -> str:
        limits = self.limits
        if info.file_size > limits.max_member_bytes:
            raise TwinError(f"{self.name}: {info.filename} is larger than {limits.max_member_bytes:,} bytes.")
        if info.file_size > 1_000_000 and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise TwinError(f"{self.name}: {info.filename} is compressed suspiciously well (a zip bomb?).")
        budget = min(limits.max_member_bytes, limits.max_read_bytes - self.read_bytes)
        buffer = io.BytesIO()
        with self.archive.open(info) as member:  # the declared size can lie: count what actually inflates
            while block := member.read(1 << 16):
                buffer.write(block)
                if buffer.tell() > budget:
                    raise TwinError(
                        f"{self.name}: reading {info.filename} went past the {limits.max_read_bytes:,} bytes "
                        "allowed for an import."
                    )
        self.read_bytes += buffer.tell()
        return buffer.getvalue().decode("utf-8-sig", errors="replace")


def _detect_and_read(reader: _ArchiveReader, publication_url: str | None) -> ExportContents:
    if reader.find(r"data/tweets?(?:-part\d+)?\.js"):
        return _read_x(reader)
    csv_members = reader.find(r"[^/]+\.csv")
    substack_csv = [info for info in csv_members if info.filename.lower().endswith("posts.csv")]
    for info in substack_csv:
        header = _csv_header(reader, info)
        if "post_id" in header:
            return _read_substack(reader, info, publication_url)
    linkedin_csv = [
        info for info in csv_members if PurePosixPath(info.filename).name.lower() in {"shares.csv", "posts.csv"}
    ]
    linkedin_articles = reader.find(r"articles/articles/[^/]+\.html?")
    if linkedin_articles or any("sharecommentary" in _csv_header(reader, info) for info in linkedin_csv):
        return _read_linkedin(reader, linkedin_csv, linkedin_articles)
    medium_posts = reader.find(r"posts/[^/]+\.html?")
    if medium_posts:
        return _read_medium(reader, medium_posts)
    raise TwinError(
        f"{reader.name} is not an export this project knows: expected a LinkedIn data copy (Shares.csv, "
        "Articles/), an X archive (data/tweets.js), a Substack export (posts.csv + posts/) or a Medium "
        "export (posts/*.html)."
    )


def _csv_header(reader: _ArchiveReader, info: zipfile.ZipInfo) -> set[str]:
    with reader.archive.open(info) as member:
        first_line = io.TextIOWrapper(member, encoding="utf-8-sig", errors="replace").readline(10_000)
    return {column.strip().lower() for column in next(csv.reader([first_line]), [])}


def _csv_rows(text: str) -> Iterator[dict[str, str]]:
    """Rows keyed by lower-cased header names (exports change their casing between versions)."""
    for row in csv.DictReader(io.StringIO(text)):
        yield {(key or "").strip().lower(): (value or "") for key, value in row.items()}


def _parse_date(value: str | None) -> datetime | None:
    if not value or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00")
    for candidate in (text, text.replace(" ", "T", 1)):
        try:
            parsed = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    for layout in (X_DATE_FORMAT, "%Y-%m-%d %H:%M", "%m/%d/%y, %I:%M %p", "%Y-%m-%d"):
        try:
            parsed = datetime.strptime(text, layout)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def html_to_markdown(fragment: str) -> str:
    """An HTML body (a whole export file or just its content element) as markdown, all of its text kept.

    trafilatura's minimum sizes are lowered to one character: an export body is all content, and a two-line
    comment must come out as itself rather than through trafilatura's whole-page fallback.
    """
    import trafilatura
    from trafilatura.settings import DEFAULT_CONFIG

    from ingestion.extract import _markdown_with_quotes

    config = deepcopy(DEFAULT_CONFIG)
    for key in ("MIN_EXTRACTED_SIZE", "MIN_OUTPUT_SIZE", "MIN_OUTPUT_COMM_SIZE", "MIN_EXTRACTED_COMM_SIZE"):
        config.set("DEFAULT", key, "1")
    import lxml.html

    # Inside <article>, trafilatura takes every block as content (on a bare <body> it drops short headings).
    root = lxml.html.fromstring(fragment) if fragment.strip() else None
    if root is None:
        return ""
    body = root.find(".//body") if root.tag != "body" else root
    container = body if body is not None else root
    inner = (container.text or "") + "".join(lxml.html.tostring(child, encoding="unicode") for child in container)
    if body is None:
        inner = lxml.html.tostring(root, encoding="unicode")
    page = f"<html><body><article>{inner}</article></body></html>"
    document = trafilatura.bare_extraction(
        page,
        include_formatting=True,
        include_tables=True,
        include_links=False,
        include_images=False,
        include_comments=False,
        favor_recall=True,
        with_metadata=False,
        config=config,
    )
    if document is None or document.body is None:
        return ""
    return _markdown_with_quotes(document.body).strip()


# ---------------------------------------------------------------- X


def _ytd_payload(text: str, source: str) -> list[dict]:
    """``window.YTD.<name>.partN = [...]`` as the list it assigns."""
    _, sep, payload = text.partition("=")
    if not sep:
        raise TwinError(f"{source} is not in the X archive's window.YTD format.")
    try:
        data = json.loads(payload.strip().rstrip(";"))
    except json.JSONDecodeError as exc:
        raise TwinError(f"{source} holds invalid JSON ({exc}).") from exc
    if not isinstance(data, list):
        raise TwinError(f"{source} does not hold a list.")
    return data


def _read_x(reader: _ArchiveReader) -> ExportContents:
    contents = ExportContents(platform=Platform.x)
    username, account_id = None, None
    for info in reader.find(r"data/account\.js"):
        for item in _ytd_payload(reader.read_text(info), info.filename):
            account = item.get("account", {})
            username = account.get("username") or username
            account_id = account.get("accountId") or account_id
    tweets: dict[str, dict] = {}
    for info in reader.find(r"data/tweets?(?:-part\d+)?\.js"):
        for item in _ytd_payload(reader.read_text(info), info.filename):
            tweet = item.get("tweet", item)
            if isinstance(tweet, dict) and tweet.get("id_str"):
                tweets[str(tweet["id_str"])] = tweet
    if account_id is None and username is None:
        contents.skipped.append("data/account.js missing: threads are recognised by reply chains alone")

    def is_own(tweet: dict) -> bool:
        if account_id is not None:
            return str(tweet.get("in_reply_to_user_id_str") or "") == str(account_id)
        if username is not None:
            return str(tweet.get("in_reply_to_screen_name") or "").lower() == username.lower()
        return str(tweet.get("in_reply_to_status_id_str") or "") in tweets

    kept: dict[str, dict] = {}
    for tweet_id, tweet in tweets.items():
        text = str(tweet.get("full_text") or tweet.get("text") or "")
        if tweet.get("retweeted") or text.startswith("RT @"):
            contents.skipped.append(f"tweet {tweet_id}: retweet")
            continue
        kept[tweet_id] = tweet

    # Each tweet joins the thread of the own tweet it replies to (followed to the root); others start one.
    root_of: dict[str, str] = {}

    def root(tweet_id: str) -> str:
        chain = []
        current = tweet_id
        while current not in root_of:
            chain.append(current)
            tweet = kept[current]
            parent = str(tweet.get("in_reply_to_status_id_str") or "")
            if parent and parent in kept and is_own(tweet) and parent not in chain:
                current = parent
                continue
            root_of[current] = current
            break
        for item in chain:
            root_of[item] = root_of[current]
        return root_of[tweet_id]

    threads: dict[str, list[dict]] = {}
    for tweet_id in sorted(kept, key=int):
        threads.setdefault(root(tweet_id), []).append(kept[tweet_id])

    for root_id, members in sorted(threads.items(), key=lambda item: int(item[0])):
        first = members[0]
        replies_to_other = bool(first.get("in_reply_to_status_id_str")) and not is_own(first)
        parts = [_tweet_text(tweet, strip_mentions=index > 0 or replies_to_other) for index, tweet in enumerate(members)]
        text = "\n\n".join(part for part in parts if part)
        if not text.strip():
            contents.skipped.append(f"tweet {root_id}: no text (media only)")
            continue
        url = f"https://x.com/{username}/status/{root_id}" if username else f"https://x.com/i/web/status/{root_id}"
        contents.documents.append(
            RawDocument(
                url=url,
                platform=Platform.x,
                kind=Kind.note if replies_to_other else Kind.post,
                title=None,
                published_at=_parse_date(first.get("created_at")),
                text=text,
                metadata={
                    "tweet_ids": [str(tweet["id_str"]) for tweet in members],
                    "in_reply_to": first.get("in_reply_to_screen_name") if replies_to_other else None,
                    "source": "x-archive",
                },
            )
        )
    return contents


LEADING_MENTIONS_RE = re.compile(r"^(?:@\w+\s+)+")


def _tweet_text(tweet: dict, *, strip_mentions: bool) -> str:
    text = str(tweet.get("full_text") or tweet.get("text") or "")
    entities = tweet.get("entities") or {}
    for link in entities.get("urls") or []:
        if link.get("url"):
            text = text.replace(link["url"], link.get("expanded_url") or link["url"])
    extended = (tweet.get("extended_entities") or {}).get("media") or []
    for media in [*(entities.get("media") or []), *extended]:
        if media.get("url"):
            text = text.replace(media["url"], "")
    text = html.unescape(text).strip()
    if strip_mentions:
        text = LEADING_MENTIONS_RE.sub("", text)
    return text.strip()


# ---------------------------------------------------------------- LinkedIn


def _unwrap_linkedin_commentary(value: str) -> str:
    """LinkedIn writes multi-line commentary as ``"line one"\\n"line two"`` inside the CSV field itself."""
    text = value.strip()
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        text = text[1:-1].replace('"\n"', "\n").replace('""', '"')
    return text.strip()


def _read_linkedin(
    reader: _ArchiveReader, csv_members: list[zipfile.ZipInfo], articles: list[zipfile.ZipInfo]
) -> ExportContents:
    contents = ExportContents(platform=Platform.linkedin)
    seen: set[str] = set()
    for info in csv_members:
        if "sharecommentary" not in _csv_header(reader, info):
            continue
        for number, row in enumerate(_csv_rows(reader.read_text(info)), start=2):
            text = _unwrap_linkedin_commentary(row.get("sharecommentary", ""))
            link = row.get("sharelink", "").strip()
            if not text:
                contents.skipped.append(f"{info.filename} line {number}: reshare without commentary")
                continue
            url = link or f"linkedin-export://shares/{number}"
            if url in seen:
                continue
            seen.add(url)
            contents.documents.append(
                RawDocument(
                    url=url,
                    platform=Platform.linkedin,
                    kind=Kind.post,
                    published_at=_parse_date(row.get("date")),
                    text=text,
                    metadata={
                        "shared_url": row.get("sharedurl", "").strip(),
                        "media_url": row.get("mediaurl", "").strip(),
                        "visibility": row.get("visibility", "").strip(),
                        "source": "linkedin-export",
                    },
                )
            )
    for info in articles:
        document = _linkedin_article(reader.read_text(info), info.filename)
        if isinstance(document, str):
            contents.skipped.append(document)
        elif document.url not in seen:
            seen.add(document.url)
            contents.documents.append(document)
    return contents


def _linkedin_article(page: str, filename: str) -> RawDocument | str:
    import lxml.html

    root = lxml.html.fromstring(page)
    heading = root.find(".//h1")
    title = heading.text_content().strip() if heading is not None else None
    link = heading.find(".//a") if heading is not None else None
    url = (link.get("href") or "").strip() if link is not None else ""
    published = created = None
    for paragraph in root.xpath("//p[@class='published' or @class='created']"):
        stamp = re.sub(r"^\s*(published|created) on\s*", "", paragraph.text_content(), flags=re.IGNORECASE)
        if paragraph.get("class") == "published":
            published = _parse_date(stamp)
        else:
            created = _parse_date(stamp)
        paragraph.drop_tree()
    if published is None:
        return f"{filename}: draft article (no 'Published on' date)"
    if heading is not None:
        heading.drop_tree()
    for image in root.xpath("//body/img"):  # the cover image sits before the title
        image.drop_tree()
    body = root.find(".//body")
    text = html_to_markdown(lxml.html.tostring(body if body is not None else root, encoding="unicode"))
    if not text:
        return f"{filename}: article without text"
    return RawDocument(
        url=url or f"linkedin-export://articles/{PurePosixPath(filename).name}",
        platform=Platform.linkedin,
        kind=Kind.article,
        title=title or None,
        published_at=published or created,
        text=text,
        metadata={"source": "linkedin-export"},
    )


# ---------------------------------------------------------------- Substack


def _read_substack(reader: _ArchiveReader, posts_csv: zipfile.ZipInfo, publication_url: str | None) -> ExportContents:
    contents = ExportContents(platform=Platform.substack)
    bodies = {PurePosixPath(info.filename).stem.lower(): info for info in reader.find(r"posts/[^/]+\.html?")}
    base = publication_url.rstrip("/") if publication_url else None
    for row in _csv_rows(reader.read_text(posts_csv)):
        post_id = row.get("post_id", "").strip()
        if not post_id:
            continue
        if row.get("is_published", "").strip().lower() not in {"true", "1", "yes", "t"}:
            contents.skipped.append(f"post {post_id}: not published")
            continue
        info = bodies.get(post_id.lower())
        if info is None:
            contents.skipped.append(f"post {post_id}: no posts/{post_id}.html in the export")
            continue
        text = html_to_markdown(reader.read_text(info))
        if not text:
            contents.skipped.append(f"post {post_id}: empty body")
            continue
        slug = post_id.split(".", 1)[1] if "." in post_id else post_id
        contents.documents.append(
            RawDocument(
                url=f"{base}/p/{slug}" if base else f"substack-export://{post_id}",
                platform=Platform.substack,
                kind=Kind.article,
                title=row.get("title", "").strip() or None,
                published_at=_parse_date(row.get("post_date")),
                text=text,
                metadata={
                    "subtitle": row.get("subtitle", "").strip(),
                    "type": row.get("type", "").strip(),
                    "audience": row.get("audience", "").strip(),
                    "source": "substack-export",
                },
            )
        )
    return contents


# ---------------------------------------------------------------- Medium


def _read_medium(reader: _ArchiveReader, posts: list[zipfile.ZipInfo]) -> ExportContents:
    contents = ExportContents(platform=Platform.medium)
    for info in posts:
        name = PurePosixPath(info.filename).name
        if name.lower().startswith("draft"):
            contents.skipped.append(f"{name}: draft")
            continue
        document = _medium_post(reader.read_text(info), name)
        if isinstance(document, str):
            contents.skipped.append(document)
        else:
            contents.documents.append(document)
    return contents


def _medium_post(page: str, filename: str) -> RawDocument | str:
    import lxml.html

    root = lxml.html.fromstring(page)
    body = root.xpath("//section[@data-field='body']")
    if not body:
        return f"{filename}: no post body (not a Medium post page)"
    title_node = root.xpath("//h1[contains(concat(' ', @class, ' '), ' p-name ')]")
    title = title_node[0].text_content().strip() if title_node else ""
    # The body repeats the title (and subtitle) as its first headings.
    for first in body[0].xpath(".//h3[contains(@class, 'graf--title')] | .//h4[contains(@class, 'graf--subtitle')]"):
        first.drop_tree()
    text = html_to_markdown(lxml.html.tostring(body[0], encoding="unicode"))
    if not text:
        return f"{filename}: empty post"
    canonical = root.xpath("//a[contains(concat(' ', @class, ' '), ' p-canonical ')]/@href")
    published = root.xpath("//time[contains(concat(' ', @class, ' '), ' dt-published ')]/@datetime")
    is_note = not title or len(text.split()) < MEDIUM_NOTE_MAX_WORDS
    return RawDocument(
        url=canonical[0].strip() if canonical else f"medium-export://{filename}",
        platform=Platform.medium,
        kind=Kind.note if is_note else Kind.article,
        title=title or None,
        published_at=_parse_date(published[0]) if published else None,
        text=text,
        metadata={"source": "medium-export"},
    )

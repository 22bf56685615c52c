"""Private chat exports (WhatsApp, Telegram, iMessage, Signal) as conversations.

Private by design, and imported only when the user asks for it (``twin import AUTHOR FILE --private``):

- **Only the author's lines are the author's.** Each conversation is stored (kind ``chat``) with the author
  as ``me`` and everyone else as ``them``/``them 2``... (`twin.chat`); training turns the author's replies
  into answers and what the others said just before into the prompt.
- **Other people are scrubbed at import**, before anything is stored: their names (as senders and inside
  messages), @mentions, phone numbers and email addresses become ``[name]``, ``[phone]``, ``[email]``.
  The members' names are also found in lower or upper case ("lol maya") unless that word is an ordinary
  one ("will"). Names of people who are not in the chat ("I saw Maria and Tom") are found by `NameFinder`
  from Faker's name lists read in context (no model), capitalised only; the author's own name stays.
- **Never material for public drafts**: conversations are not embedded (no chunks, so no retrieval hit),
  are not posts (so never style examples), and `forget_private_source` removes a chat with everything
  derived from it (documents, any chunks, dataset snapshots) and names the adapters trained on it.

Formats read (`ingestion.chat_formats`; the file as exported, the ZIP the app or tool made, or its folder):

- WhatsApp ``.txt``, Android (``12/31/23, 9:41 PM - Name: text``, ``31/12/2023, 21:41 - Name: text``,
  ``31.12.23, 21:41 - Name: text``) and iOS (``[31.12.23, 21:41:05] Name: text``) layouts; day-first or
  month-first is decided per file from the dates themselves. Multi-line messages, media placeholders
  (``<Media omitted>``, ``image omitted``, ``<attached: ...>``, ``IMG-... (file attached)``) become
  ``[image]``-style markers, and system messages (encryption notice, joins, deleted messages, missed
  calls) are dropped.
- Telegram ``result.json``, one chat or a full export (``chats.list``): text as a string or as a list of
  entities, service messages dropped, media as markers, forwarded messages never counted as the author's,
  and ``reply_to_message_id`` kept as a quote of the message replied to.
- iMessage as `imessage-exporter` writes it with ``--format txt``: one ``.txt`` a conversation (named after
  the other person, the group's name or its members), each message a ``May 17, 2022  5:29:42 PM`` line
  (maybe ``(Read by ... after ...)``), the sender (``Me`` for the author, else a contact name, phone number
  or email), then its lines. Attachment paths become markers; tapbacks, effects (``Sent with ...``),
  unsent parts and group events are dropped; an edited message keeps its last version; a threaded reply
  (shown indented under the message it answers, and again in its own place) is read once and quotes it.
- Signal as `signal-export` writes it: a folder a conversation with ``chat.md`` (``[2024-03-01 18:22:05]
  Me: text``, older ``[2019-05-29, 15:04]``), quotes as ``> `` lines before the text, attachments as
  Markdown links (``![IMG.jpg](./media/IMG.jpg)``), reactions ``(- Name: emoji -)`` dropped, calls and
  deleted messages dropped; its ``data.json`` (``--json``) where a folder has no chat.md. Signal itself
  has no export; signal-export is the tool most people use.

A conversation is split into sessions wherever nobody wrote for ``SESSION_GAP``; each session holding at
least one message of the author's is one document, and a conversation without any is not stored.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shutil
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ingestion.chat_formats import (
    APP_NAMES,
    MAX_CHAT_BYTES,
    App,
    ChatFormat,
    ChatLog,
    ChatMessage,
    detect_chat_export,
    looks_like_imessage,
    looks_like_signal,
    looks_like_whatsapp,
    parse_imessage,
    parse_signal,
    parse_signal_json,
    parse_telegram,
    parse_whatsapp,
    read_chat_export,
)
from twin.chat import ME, THEM, ChatLine, render_chat
from twin.domain import Author, IngestReport, Kind, Platform, RawDocument, TwinError, author_folder

if TYPE_CHECKING:
    from twin.store import DocumentStore

__all__ = [
    "APP_NAMES", "CHAT_SOURCE_PREFIX", "MAX_CHAT_BYTES", "SESSION_GAP", "App", "ChatFormat", "ChatImport", "ChatLog",
    "ChatMessage", "NameFinder", "PrivateRemoval", "Scrubber", "adapters_trained_on", "chat_documents",
    "detect_chat_export", "forget_private_source", "import_chat_export", "looks_like_imessage", "looks_like_signal",
    "looks_like_whatsapp", "parse_imessage", "parse_signal", "parse_signal_json", "parse_telegram", "parse_whatsapp",
    "private_sources", "read_chat_export", "resolve_me",
]

CHAT_SOURCE_PREFIX = "export:chat:"
"""Sources of private chats; ``export:`` keeps `twin ingest` from trying to fetch them."""
SESSION_GAP = timedelta(hours=6)

# ---------------------------------------------------------------- names of people who are not in the chat

# Words that are also someone's name in the name lists: at the start of a sentence they are read as words.
COMMON_NAME_WORDS = frozenset("""
a an and are as at be but by can do for from had has have he her his how if in is it its me my no not of on
or our per she so than that the their them then there they this to too up us was we were what when where who
why will with yes you your all any each even ever more most much must only other same such very well
add age air alas alpha among angel april art august autumn baby back ball ban bay beach bear beat bee bell
belle best beta big bill bird bishop black bliss blue bold bond bone boss bow brand bravo brave bright brook
brown buck buddy bud bunny burns bush butler cal candy cap car care carry case cash chance chase cherry chi
chip christian clay clear cliff close cloud coal cook cool cope cord cotton cousin cross crystal cute dale
dash date dawn day dean dear deep delta diamond dim doc dolly dot dove drew duke dusty each earl early echo
eden else emerald english ever fair faith fall fancy far fawn field fish fisher flower ford forest fox frank
free fresh friend frost gale general gay gem gene gentle ginger glad glen glory gold golden good grace grant
gray great green grey guard guy hall ham hand happy harbor hardy harmony haven hawk hazel heart heath
heaven hill holly homer honey hope hunter ivy jack jade jay jean jewel job joy judge june junior just
justice kay key kind king kit kitty lake lance lane law lea lee legend lemon liberty light lily little
long lord love lucky major man march mark marine mars mason master may mayor melody mercy merry miles
mill miller mint misty moon moss nice noble north oak ocean olive opal orange page palm park parker
patience pat peace pearl penny pepper pierce pink piper plum poppy porter power precious press prince
princess queen rain ray read red reed reign rich river robin rock rocky rose rowan royal ruby rush rusty sage
said sailor salt sandy scout sea shade sharp shore silver sky small smith snow son sonny spencer spring star
sterling stone storm story strong sue summer sunny sunshine swift taylor temple terry tiny tracy true
trust tucker vale valley van vance victory violet wade walker wall ward warren west white wild will willow
winter wolf wood worth wren young zen
""".split())
NOT_NAMES = frozenset("""
I I'm I'll I've I'd Mom Mum Dad Mommy Daddy Mama Papa Grandma Grandpa Granny Nana God Lord Jesus Christ
Monday Tuesday Wednesday Thursday Friday Saturday Sunday Mon Tue Tues Wed Thu Thur Thurs Fri Sat Sun
January February March April May June July August September October November December
Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec Christmas Xmas Easter Halloween Thanksgiving Hanukkah
Ramadan Eid Diwali OK Ok Okay Hi Hey Hello Thanks Yes No Lol Omg Btw
Python Rust Perl Haskell Kotlin Swift Java Siri Alexa Tesla Mercedes Porsche Ferrari Toyota Honda Dell Chanel
""".split())
"""Capitalised words of every chat that are never a person's name here (days, months, family words)."""
TITLES = frozenset("Mr Mrs Ms Miss Dr Prof Aunt Auntie Uncle Cousin Sir Madam Coach".split())
TIME_WORDS = frozenset("in during since until by before after".split())
LOCATION_WORDS = frozenset("in to from at near around visit visiting via through toward towards of".split())
NAME_WORD_RE = re.compile(r"[^\W\d_]+(?:['\u2019\-][^\W\d_]+)*")
URL_RE = re.compile(r"(?:https?://|www\.)\S+|\S+\.(?:com|org|net|io|dev|app)\S*", re.I)
SENTENCE_END = ".!?:;\n\u2026\"'(\u201c["


@functools.cache
def name_lists() -> tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]]:
    """(first names, surnames, places, English first names) from Faker's person providers (86 locales,
    about 31,000 first names and 28,000 surnames) and from Babel's and the time-zone database's place names.
    Loaded once, in about 0.2 s."""
    import importlib
    import pkgutil
    import zoneinfo

    import faker.providers.person as people
    from babel import Locale

    first: set[str] = set()
    last: set[str] = set()
    english: set[str] = set()
    for module in pkgutil.iter_modules(people.__path__):
        provider = getattr(importlib.import_module(f"{people.__name__}.{module.name}"), "Provider", None)
        if provider is None:
            continue
        for attr, target in (("first_names", first), ("first_names_male", first), ("first_names_female", first),
                             ("last_names", last)):
            value = provider.__dict__.get(attr)
            if isinstance(value, (tuple, list, set, frozenset, dict)):
                target.update(str(name) for name in value)
                if module.name.startswith("en") and target is first:
                    english.update(str(name) for name in value)
    places = {name for name in Locale("en").territories.values()}
    places.update(zone.rsplit("/", 1)[-1].replace("_", " ") for zone in zoneinfo.available_timezones() if "/" in zone)
    places = {word for place in places for word in place.split() if word[:1].isupper()}
    return frozenset(first), frozenset(last), frozenset(places), frozenset(english)


class NameFinder:
    """Finds people's names in free text without a model: capitalised words that a name list knows, read
    with their context. A sentence's first word is a name only when it is not also an ordinary word ("Will
    you...", "Grace period"); a place after "in"/"to"/"from" stays a place ("flew to Sydney"); a capitalised
    word right after a found name or a title ("Mrs") is its surname. Days, months, "I" and family words are
    never names. Lower-case names are left alone: a name list has too many ordinary words in it."""

    def __init__(self, keep: Sequence[str] = ()) -> None:
        self.first, self.last, self.places, self.english = name_lists()
        self.keep = {word.casefold() for name in keep for word in NAME_WORD_RE.findall(name)}

    def spans(self, text: str) -> list[tuple[int, int]]:
        urls = [m.span() for m in URL_RE.finditer(text)]
        found: list[tuple[int, int]] = []
        previous: re.Match[str] | None = None
        previous_was_name = False
        last_name_end = 0
        for match in NAME_WORD_RE.finditer(text):
            start = match.start()
            word = re.sub(r"['\u2019]s$", "", match[0])
            # "Chen and Yuki": a capitalised word joined to a found name reads as a name too
            joined = bool(last_name_end) and re.fullmatch(r" (?:and|or|&) ", text[last_name_end:start]) is not None
            is_name = (not any(a <= start < b for a, b in urls)
                       and self._is_name(text, word, start, previous, joined or (
                           previous_was_name and previous is not None and text[previous.end():start] == " ")))
            if is_name:
                found.append((start, start + len(word)))
                last_name_end = start + len(word)
            previous, previous_was_name = match, is_name
        return found

    def _is_name(self, text: str, word: str, start: int, previous: re.Match[str] | None, after_name: bool) -> bool:
        if (len(word) < 2 or not word[0].isupper() or word.isupper() or word in NOT_NAMES
                or word in TITLES or word.casefold() in self.keep):
            return False
        lower = word.casefold()
        common = lower in COMMON_NAME_WORDS
        gap = text[previous.end():start] if previous is not None else None
        prev_word = previous[0] if previous is not None and gap in (" ", ". ") else ""
        after_title = prev_word in TITLES
        before = text[:start].rstrip(" \t")
        sentence_start = not before or (before[-1] in SENTENCE_END and not after_title)
        possessive = text[start + len(word):start + len(word) + 2] in ("'s", "\u2019s")
        if word in self.places and not (possessive and word in self.first) and (
                prev_word.casefold() in LOCATION_WORDS or word not in self.english):
            return False
        if common and prev_word.casefold() in TIME_WORDS:
            return False  # "in Spring", "by Summer"
        if (after_name or after_title) and not common:
            return True  # a surname, or the name after "Mrs"
        if word in self.first:
            return not (common and sentence_start)
        if word in self.last:
            return not common and not sentence_start
        return False


# ---------------------------------------------------------------- scrubbing and conversations

MENTION_RE = re.compile(r"(?<![\w@])@[\w.]{2,}")
# International numbers in any grouping (the metric's finder wants groups of at most four digits).
PLUS_PHONE_RE = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,6}\)?){1,5}(?![\w])")
NAME_TOKEN_RE = re.compile(r"[^\W\d_][\w'-]*", re.UNICODE)


def _is_phone_like(name: str) -> bool:
    return sum(c.isdigit() for c in name) >= 6


class Scrubber:
    """Replaces other people's names (the chat's members, and anyone else named in a message), @mentions,
    phone numbers and emails in the author's chats."""

    def __init__(self, other_names: Sequence[str], own_name: str | None = None) -> None:
        own = {token.casefold() for token in NAME_TOKEN_RE.findall(own_name or "")}
        names: set[str] = set()
        for name in other_names:
            if _is_phone_like(name):
                continue
            names.add(name.strip())
            names.update(token for token in NAME_TOKEN_RE.findall(name)
                         if len(token) >= 3 and token[0].isupper() and token.casefold() not in own)
        names.discard("")
        # The members are known people: their names go in lower or upper case too ("lol maya"), unless the
        # lower-case word is an ordinary one ("will", "grace").
        names.update(variant for token in list(names)
                     if " " not in token and token.casefold() not in COMMON_NAME_WORDS
                     for variant in (token.lower(), token.upper()))
        ordered = sorted(names, key=len, reverse=True)  # "Anna Lee" before "Anna"
        self.names_re = (re.compile(r"(?<!\w)(?:" + "|".join(re.escape(n) for n in ordered) + r")(?!\w)")
                         if ordered else None)
        self.finder = NameFinder(keep=[own_name] if own_name else [])

    def __call__(self, text: str) -> str:
        from evals.privacy import find_emails, find_phone_numbers

        for email in sorted(set(find_emails(text)), key=len, reverse=True):
            text = text.replace(email, "[email]")
        phones = [*find_phone_numbers(text),
                  *(m.group(0) for m in PLUS_PHONE_RE.finditer(text) if 8 <= sum(c.isdigit() for c in m.group(0)) <= 15)]
        for phone in sorted(set(phones), key=len, reverse=True):
            text = text.replace(phone, "[phone]")
        text = MENTION_RE.sub("[name]", text)
        if self.names_re is not None:
            text = self.names_re.sub("[name]", text)
        for start, end in reversed(self.finder.spans(text)):
            text = text[:start] + "[name]" + text[end:]
        return re.sub(r"\[name\](?: \[name\])+", "[name]", text)  # "[name] [name]" was one person's full name


def resolve_me(log: ChatLog, author: Author, me: str | None) -> str:
    """The sender key of the author in ``log``: ``me`` if given (a name or sender id), else what the export
    says, else the one sender who is not the chat's partner, else the sender named like the author."""
    senders = log.senders()
    if me:
        wanted = me.strip().casefold()
        for key, name in senders.items():
            if wanted in (key.casefold(), name.casefold()):
                return key
        raise TwinError(f"Nobody called {me!r} wrote in this chat (senders: {', '.join(senders.values())}).")
    if log.me_id and log.me_id in senders:
        return log.me_id
    if log.partner and len(senders) == 2:
        others = [key for key, name in senders.items() if name.casefold() != log.partner.casefold()]
        if len(others) == 1:
            return others[0]
    first = author.name.split()[0].casefold() if author.name.split() else ""
    named = [key for key, name in senders.items() if name.split() and name.split()[0].casefold() == first]
    if len(named) == 1:
        return named[0]
    raise TwinError(
        f"Which of the senders is {author.name}? Say it with --me NAME (senders: {', '.join(senders.values())})."
    )


def _sessions(messages: Sequence[ChatMessage], gap: timedelta) -> list[list[ChatMessage]]:
    sessions: list[list[ChatMessage]] = []
    for message in sorted(messages, key=lambda m: m.sent_at):
        if not sessions or message.sent_at - sessions[-1][-1].sent_at > gap:
            sessions.append([])
        sessions[-1].append(message)
    return sessions


def _chat_key(log: ChatLog) -> str:
    return hashlib.sha256(f"{log.app}|{'|'.join(sorted(log.senders()))}".encode()).hexdigest()[:12]


def chat_documents(
    log: ChatLog, me_key: str, *, own_name: str | None = None, gap: timedelta = SESSION_GAP
) -> list[RawDocument]:
    """One scrubbed conversation document per session that holds a message of the author's."""
    senders = log.senders()
    others = [key for key in senders if key != me_key]
    labels = {key: THEM if index == 0 else f"{THEM} {index + 1}" for index, key in enumerate(others)}
    labels[me_key] = ME
    scrub = Scrubber([senders[key] for key in others], own_name or senders.get(me_key))
    by_id = {m.id: m for m in log.messages if m.id is not None}
    key = _chat_key(log)
    group = len(others) > 1
    documents = []
    for session in _sessions(log.messages, gap):
        lines: list[ChatLine] = []
        for message in session:
            mine = message.sender == me_key
            if mine and message.forwarded:
                continue  # someone else's words, passed on
            quoted = by_id.get(message.reply_to) if mine and message.reply_to else None
            if quoted is not None and quoted.sender != me_key:
                recent = {id(m) for m in _trailing_others(session, message, me_key)}
                if id(quoted) not in recent:
                    lines.append(ChatLine(speaker=labels[quoted.sender], text=scrub(quoted.text), quote=True))
            lines.append(ChatLine(speaker=labels[message.sender], text=scrub(message.text)))
        if not any(line.mine for line in lines):
            continue
        start = session[0].sent_at
        title = f"{APP_NAMES[log.app]} {'group ' if group else ''}chat, {start:%Y-%m-%d}"
        documents.append(RawDocument(
            url=f"chat://{log.app}/{key}/{start:%Y%m%dT%H%M%S}",
            platform=Platform.chat,
            kind=Kind.chat,
            title=title,
            published_at=start,
            text=render_chat(lines),
            metadata={"source": f"{log.app}-export", "messages": len(lines),
                      "mine": sum(1 for line in lines if line.mine)},
        ))
    return documents


def _trailing_others(session: Sequence[ChatMessage], message: ChatMessage, me_key: str) -> list[ChatMessage]:
    """The other side's messages right before ``message`` (what it answers when it quotes nothing)."""
    index = next(i for i, m in enumerate(session) if m is message)
    out = []
    for earlier in reversed(session[:index]):
        if earlier.sender == me_key:
            break
        out.append(earlier)
    return out


# ---------------------------------------------------------------- store


class ChatImport(BaseModel):
    source_url: str
    report: IngestReport
    chats: int
    skipped_messages: int


def import_chat_export(
    store: DocumentStore,
    author: Author,
    path: Path,
    *,
    me: str | None = None,
    on_document: Callable[[str, str], None] | None = None,
) -> ChatImport:
    """Store a chat export's conversations (scrubbed, not embedded) under one private source."""
    logs = read_chat_export(path)
    documents: list[RawDocument] = []
    for log in logs:
        try:
            me_key = resolve_me(log, author, me)
        except TwinError:
            # in an export of many conversations, one the author never wrote in is left out
            if len(logs) == 1 or not (me or (log.me_id and log.me_id not in log.senders())):
                raise
            continue
        documents.extend(chat_documents(log, me_key))
    digest = hashlib.sha256("|".join(sorted(_chat_key(log) for log in logs)).encode()).hexdigest()[:12]
    source_url = f"{CHAT_SOURCE_PREFIX}{logs[0].app}:{digest}"
    source = store.find_source(author, source_url) or store.add_source(author, source_url, Platform.chat)
    report = IngestReport(author=author.name)
    for raw in documents:
        report.fetched += 1
        # The conversation format is the clean text: web cleaning would reflow its lines.
        document, status = store.upsert_document(author, source.id, raw, raw.text)
        # No chunks by design (private text is never retrieved): the version counts as embedded with none.
        store.mark_embedded(document.id, document.version)
        setattr(report, status, getattr(report, status) + 1)
        report.document_ids.append(document.id)
        if on_document:
            on_document(raw.url, status)
    store.mark_source_ingested(source.id)
    return ChatImport(source_url=source_url, report=report, chats=len(logs),
                      skipped_messages=sum(log.skipped for log in logs))


class PrivateRemoval(BaseModel):
    source_url: str
    documents: int
    datasets: list[str]
    """Dataset snapshot folders deleted because they held the chat's text."""
    adapters: list[int]
    """Versions of adapters trained on it (kept; `twin adapters` lists them, the page marks them)."""


def adapters_trained_on(store: DocumentStore, author: Author, source_url: str) -> list[int]:
    """Versions of the author's adapters whose training data held this private source."""
    versions = []
    for adapter in store.list_adapters(author):
        dataset = adapter.metrics.get("dataset") or {}
        if any(source_url in (split or {}).get("private_sources", []) for split in dataset.values()
               if isinstance(split, dict)):
            versions.append(adapter.version)
    return versions


def forget_private_source(
    store: DocumentStore, author: Author, source_url: str, datasets_dir: Path, vectors: Any | None = None
) -> PrivateRemoval:
    """Remove a private chat source and everything derived from it; name the adapters trained on it."""
    if not source_url.startswith(CHAT_SOURCE_PREFIX):
        raise TwinError(f"{source_url} is not a private chat source (those start with {CHAT_SOURCE_PREFIX!r}).")
    ids = store.source_document_ids(author, source_url)
    if vectors is not None and ids:
        vectors.delete_documents(ids, author)
    removed = store.remove_source(author, source_url)
    datasets = []
    for stats_file in sorted((datasets_dir / author_folder(author)).glob("*/stats.json")):
        try:
            stats = json.loads(stats_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if source_url in stats.get("private_sources", []):
            shutil.rmtree(stats_file.parent, ignore_errors=True)
            datasets.append(str(stats_file.parent))
    return PrivateRemoval(source_url=source_url, documents=len(removed), datasets=datasets,
                          adapters=adapters_trained_on(store, author, source_url))


def private_sources(store: DocumentStore, author: Author) -> list[dict[str, Any]]:
    """The author's private chat sources with their conversation counts and the adapters trained on them."""
    rows = []
    for source in store.list_sources(author):
        if source.url.startswith(CHAT_SOURCE_PREFIX):
            rows.append({"url": source.url, "conversations": len(store.source_document_ids(author, source.url)),
                         "imported_at": source.last_ingested_at,
                         "adapters": adapters_trained_on(store, author, source.url)})
    return rows

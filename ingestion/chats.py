"""Private chat exports (WhatsApp "Export chat", Telegram Desktop "Export chat history") as conversations.

Private by design, and imported only when the user asks for it (``twin import AUTHOR FILE --private``):

- **Only the author's lines are the author's.** Each conversation is stored (kind ``chat``) with the author
  as ``me`` and everyone else as ``them``/``them 2``... (`twin.chat`); training turns the author's replies
  into answers and what the others said just before into the prompt.
- **Other people are scrubbed at import**, before anything is stored: their names (as senders and inside
  messages), @mentions, phone numbers and email addresses become ``[name]``, ``[phone]``, ``[email]``.
- **Never material for public drafts**: conversations are not embedded (no chunks, so no retrieval hit),
  are not posts (so never style examples), and `forget_private_source` removes a chat with everything
  derived from it (documents, any chunks, dataset snapshots) and names the adapters trained on it.

Formats read (the file as exported, or the ZIP the app made with the media):

- WhatsApp ``.txt``, Android (``12/31/23, 9:41 PM - Name: text``, ``31/12/2023, 21:41 - Name: text``,
  ``31.12.23, 21:41 - Name: text``) and iOS (``[31.12.23, 21:41:05] Name: text``) layouts; day-first or
  month-first is decided per file from the dates themselves. Multi-line messages, media placeholders
  (``<Media omitted>``, ``image omitted``, ``<attached: ...>``, ``IMG-... (file attached)``) become
  ``[image]``-style markers, and system messages (encryption notice, joins, deleted messages, missed
  calls) are dropped.
- Telegram ``result.json``, one chat or a full export (``chats.list``): text as a string or as a list of
  entities, service messages dropped, media as markers, forwarded messages never counted as the author's,
  and ``reply_to_message_id`` kept as a quote of the message replied to.

A conversation is split into sessions wherever nobody wrote for ``SESSION_GAP``; each session holding at
least one message of the author's is one document.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import zipfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from twin.chat import ME, THEM, ChatLine, render_chat
from twin.domain import Author, IngestReport, Kind, Platform, RawDocument, TwinError, author_folder

if TYPE_CHECKING:
    from twin.store import DocumentStore

App = Literal["whatsapp", "telegram"]
APP_NAMES = {"whatsapp": "WhatsApp", "telegram": "Telegram"}
CHAT_SOURCE_PREFIX = "export:chat:"
"""Sources of private chats; ``export:`` keeps `twin ingest` from trying to fetch them."""
SESSION_GAP = timedelta(hours=6)
MAX_CHAT_BYTES = 200_000_000

# ---------------------------------------------------------------- parsed form


class ChatMessage(BaseModel):
    sender: str
    """A stable key of who wrote it (Telegram's ``from_id``, else the name shown in the export)."""
    name: str
    """The name the export shows for the sender (scrubbed from the text, never stored)."""
    sent_at: datetime
    text: str
    """With media as markers (``[image]``); never empty."""
    id: str | None = None
    reply_to: str | None = None
    forwarded: bool = False


class ChatLog(BaseModel):
    app: App
    messages: list[ChatMessage] = Field(default_factory=list)
    partner: str | None = None
    """The other person's name when the export says who the chat is with (a one-to-one chat)."""
    me_id: str | None = None
    """The sender key of the exporting user when the export says (Telegram's ``personal_information``)."""
    skipped: int = 0
    """System and service messages left out."""

    def senders(self) -> dict[str, str]:
        """Sender key -> shown name, in order of first message."""
        seen: dict[str, str] = {}
        for message in self.messages:
            seen.setdefault(message.sender, message.name)
        return seen


# ---------------------------------------------------------------- WhatsApp

INVISIBLE_RE = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
WA_HEADER_RE = re.compile(
    r"^\[?(?P<date>\d{1,4}[./-]\d{1,2}[./-]\d{1,4}),?\s+"
    r"(?P<time>\d{1,2}[:.]\d{2}(?:[:.]\d{2})?)(?:\s?(?P<ampm>[AaPp]\.?\s?[Mm]\.?))?\]?"
    r"(?:\s*[-\u2013]\s|\s)(?P<rest>.*)$"
)
WA_CHAT_WITH_RE = re.compile(r"^WhatsApp Chat (?:with|mit|con|avec|com|met|-)\s+(?P<name>.+?)(?:\.txt)?$", re.I)
MEDIA_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^<?(?:media omitted|medien ausgeschlossen|multimedia omitido|m[ée]dias? omis|"
                r"media weggelaten|mídia oculta|media omessi)>?$", re.I), "[media]"),
    (re.compile(r"^(?:image|photo|bild|imagen|foto|immagine) (?:omitted|weggelassen|omitida|omitido|omise|"
                r"omessa)$", re.I), "[image]"),
    (re.compile(r"^(?:video|vidéo) (?:omitted|weggelassen|omitido|omise|omesso)$", re.I), "[video]"),
    (re.compile(r"^(?:audio|voice message) (?:omitted|weggelassen|omitido|omis|omesso)$", re.I), "[audio]"),
    (re.compile(r"^(?:sticker) (?:omitted|weggelassen|omitido|omis|omesso)$", re.I), "[sticker]"),
    (re.compile(r"^gif (?:omitted|weggelassen|omitido|omis|omesso)$", re.I), "[gif]"),
    (re.compile(r"^(?:document|contact card|dokument|kontaktkarte) (?:omitted|weggelassen)$", re.I), "[file]"),
    (re.compile(r"^<attached: [^>]*(?:PHOTO|\.jpe?g|\.png|\.webp)[^>]*>$", re.I), "[image]"),
    (re.compile(r"^<attached: [^>]*(?:VIDEO|\.mp4|\.mov)[^>]*>$", re.I), "[video]"),
    (re.compile(r"^<attached: [^>]*(?:AUDIO|\.opus|\.m4a|\.mp3)[^>]*>$", re.I), "[audio]"),
    (re.compile(r"^<attached: [^>]*>$", re.I), "[file]"),
    (re.compile(r"^\S*(?:IMG|PHOTO)\S*\.(?:jpe?g|png|webp) \((?:file attached|datei angehängt)\)$", re.I), "[image]"),
    (re.compile(r"^\S+\.(?:mp4|3gp|mov) \((?:file attached|datei angehängt)\)$", re.I), "[video]"),
    (re.compile(r"^\S+\.(?:opus|m4a|mp3|aac) \((?:file attached|datei angehängt)\)$", re.I), "[audio]"),
    (re.compile(r"^.+\.\w{2,5} \((?:file attached|datei angehängt)\)$", re.I), "[file]"),
    (re.compile(r"^null$"), "[media]"),  # old Android exports wrote media messages as "null"
]
WA_NOTICE_RE = re.compile(
    r"end-to-end encrypted|Ende-zu-Ende-verschlüsselt|cifrados de extremo a extremo|chiffrés de bout en bout|"
    r"security code (?:with|changed)|Sicherheitsnummer|^this message was deleted$|^you deleted this message$|"
    r"^diese nachricht wurde gelöscht$|^du hast diese nachricht gelöscht$|^se eliminó este mensaje$|"
    r"^missed (?:voice|video|group voice|group video) call|^waiting for this message|"
    r"changed their phone number|^disappearing messages|^you're now an admin",
    re.I,
)
"""Notices that WhatsApp writes as if someone had sent them."""
SENDER_NOTICE_RE = re.compile(r"changed the (?:subject|group)|changed this group|\" to \"", re.I)
"""A group event whose quoted text holds ": " (no real sender name looks like this)."""
EDITED_RE = re.compile(r"\s*<(?:This message was edited|Diese Nachricht wurde bearbeitet)>\s*$", re.I)


def _media_marker(line: str) -> str:
    bare = line.strip()
    for pattern, marker in MEDIA_PATTERNS:
        if pattern.match(bare):
            return marker
    return line


def _wa_text(text: str) -> str:
    text = EDITED_RE.sub("", text)
    return "\n".join(_media_marker(line) for line in text.split("\n")).strip()


def _normalise_line(line: str) -> str:
    return INVISIBLE_RE.sub("", line.replace("\u202f", " ").replace("\u00a0", " ")).rstrip("\r")


def _date_order(dates: Sequence[tuple[int, int, int]], separators: set[str], has_ampm: bool) -> str:
    """``ymd``, ``dmy`` or ``mdy`` for the file's dates: from a component over 12 if any, else the order
    under which the dates run forward in time, else the locale habit of the separator."""
    if any(a > 31 for a, _, _ in dates):
        return "ymd"
    if any(a > 12 for a, _, _ in dates):
        return "dmy"
    if any(b > 12 for _, b, _ in dates):
        return "mdy"

    def backwards(order: str) -> int:
        keys = [(c, b, a) if order == "dmy" else (c, a, b) for a, b, c in dates]
        return sum(1 for x, y in zip(keys, keys[1:], strict=False) if y < x)

    dmy, mdy = backwards("dmy"), backwards("mdy")
    if dmy != mdy:
        return "dmy" if dmy < mdy else "mdy"
    return "mdy" if has_ampm and "/" in separators else "dmy"


def _year(value: int) -> int:
    return value + 2000 if value < 100 else value


def looks_like_whatsapp(text: str) -> bool:
    lines = [_normalise_line(line) for line in text.splitlines()[:20] if line.strip()]
    return bool(lines) and sum(1 for line in lines if WA_HEADER_RE.match(line)) >= max(1, len(lines) // 2)


def parse_whatsapp(text: str, file_name: str | None = None) -> ChatLog:
    """Read a WhatsApp chat export's text; raises `TwinError` when no line looks like a message."""
    raw: list[dict[str, Any]] = []
    for original in text.split("\n"):
        line = _normalise_line(original)
        match = WA_HEADER_RE.match(line)
        if match:
            # iOS marks notices (and media placeholders) with a left-to-right mark after "Name: ".
            _, sep, after = original.replace("\u202f", " ").replace("\u00a0", " ").partition(": ")
            raw.append({**match.groupdict(), "lines": [match["rest"]], "marked": bool(sep) and after[:1] == "\u200e"})
        elif raw:
            raw[-1]["lines"].append(line)
    if not raw:
        raise TwinError(f"{file_name or 'The file'} holds no WhatsApp messages (no line starts with a date).")
    triples = []
    separators: set[str] = set()
    for item in raw:
        parts = re.split(r"[./-]", item["date"])
        separators.update(re.findall(r"[./-]", item["date"]))
        triples.append(tuple(int(p) for p in parts))
    order = _date_order(triples, separators, any(item["ampm"] for item in raw))
    log = ChatLog(app="whatsapp")
    if file_name and (match := WA_CHAT_WITH_RE.match(PurePosixPath(file_name).name)):
        log.partner = match["name"].strip()
    for item, (a, b, c) in zip(raw, triples, strict=True):
        year, month, day = (a, b, c) if order == "ymd" else (_year(c), b, a) if order == "dmy" else (_year(c), a, b)
        hour, minute, *second = (int(p) for p in re.split(r"[:.]", item["time"]))
        if item["ampm"]:
            pm = item["ampm"].lower().startswith("p")
            hour = hour % 12 + (12 if pm else 0)
        try:
            sent_at = datetime(year, month, day, hour, minute, second[0] if second else 0, tzinfo=UTC)
        except ValueError:
            log.skipped += 1
            continue
        body = "\n".join(item["lines"])
        sender, sep, message = body.partition(": ")
        if not sep or len(sender) > 80 or SENDER_NOTICE_RE.search(sender) or WA_NOTICE_RE.search(message.strip()):
            log.skipped += 1  # a system line (no "Name:"), or a notice written as a message
            continue
        message = _wa_text(message)
        if item["marked"] and not re.fullmatch(r"\[\w+\]", message.split("\n")[0]):
            log.skipped += 1  # an iOS notice under the chat's name
            continue
        if not message:
            log.skipped += 1
            continue
        log.messages.append(ChatMessage(sender=sender.strip(), name=sender.strip(), sent_at=sent_at, text=message))
    return log


# ---------------------------------------------------------------- Telegram

TG_MEDIA = {
    "sticker": "[sticker]", "voice_message": "[audio]", "audio_file": "[audio]", "video_file": "[video]",
    "video_message": "[video]", "animation": "[gif]",
}
TG_ENTITY_MASK = {"mention": "[name]", "mention_name": "[name]", "phone": "[phone]", "email": "[email]"}


def _tg_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    parts = []
    for item in value or []:
        if isinstance(item, str):
            parts.append(item)
        elif isinstance(item, dict):
            parts.append(TG_ENTITY_MASK.get(str(item.get("type")), str(item.get("text", ""))))
    return "".join(parts)


def _tg_message(item: dict[str, Any]) -> str:
    markers = []
    if item.get("photo"):
        markers.append("[image]")
    elif item.get("media_type") in TG_MEDIA:
        markers.append(TG_MEDIA[item["media_type"]])
    elif item.get("file"):
        markers.append("[file]")
    for key, marker in (("poll", "[poll]"), ("contact_information", "[contact]"),
                        ("location_information", "[location]")):
        if item.get(key):
            markers.append(marker)
    text = _tg_text(item.get("text")).strip()
    return "\n".join([*markers, text] if text else markers)


def _tg_date(item: dict[str, Any]) -> datetime | None:
    if item.get("date_unixtime"):
        return datetime.fromtimestamp(int(item["date_unixtime"]), tz=UTC)
    try:
        parsed = datetime.fromisoformat(str(item.get("date", "")))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_telegram(data: Any) -> list[ChatLog]:
    """The chats of a Telegram Desktop export (one chat's ``result.json``, or a full export's)."""
    if not isinstance(data, dict):
        raise TwinError("This JSON is not a Telegram export (expected an object).")
    me_id = None
    info = data.get("personal_information")
    if isinstance(info, dict) and info.get("user_id") is not None:
        me_id = f"user{info['user_id']}"
    if isinstance(data.get("chats"), dict):
        chats = [c for c in data["chats"].get("list", []) if isinstance(c, dict)]
    elif isinstance(data.get("messages"), list):
        chats = [data]
    else:
        raise TwinError("This JSON is not a Telegram export (no `messages` or `chats.list`).")
    logs = []
    for chat in chats:
        log = ChatLog(app="telegram", me_id=me_id)
        if chat.get("type") == "personal_chat" and chat.get("name"):
            log.partner = str(chat["name"])
        for item in chat.get("messages", []):
            if not isinstance(item, dict) or item.get("type", "message") != "message":
                log.skipped += 1
                continue
            text = _tg_message(item)
            sent_at = _tg_date(item)
            if not text or sent_at is None:
                log.skipped += 1
                continue
            name = str(item.get("from") or "Deleted Account")
            log.messages.append(ChatMessage(
                sender=str(item.get("from_id") or name), name=name, sent_at=sent_at, text=text,
                id=str(item["id"]) if item.get("id") is not None else None,
                reply_to=str(item["reply_to_message_id"]) if item.get("reply_to_message_id") is not None else None,
                forwarded=bool(item.get("forwarded_from")),
            ))
        if log.messages:
            logs.append(log)
    return logs


# ---------------------------------------------------------------- reading files

ChatFormat = Literal["whatsapp", "telegram"]


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    if info.file_size > MAX_CHAT_BYTES:
        raise TwinError(f"{info.filename} is larger than {MAX_CHAT_BYTES:,} bytes.")
    with archive.open(info) as member:
        data = member.read(MAX_CHAT_BYTES + 1)
    if len(data) > MAX_CHAT_BYTES:
        raise TwinError(f"{info.filename} inflates past {MAX_CHAT_BYTES:,} bytes.")
    return data.decode("utf-8-sig", errors="replace")


def _chat_files(path: Path) -> list[tuple[str, str]]:
    """(name, text) of the chat files in ``path``: the file itself, or the ``.txt``/``result.json`` in a ZIP."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            wanted = [info for info in archive.infolist() if not info.is_dir()
                      and ".." not in PurePosixPath(info.filename).parts
                      and (info.filename.lower().endswith(".txt") or PurePosixPath(info.filename).name == "result.json")]
            return [(info.filename, _read_member(archive, info)) for info in wanted[:50]]
    if path.stat().st_size > MAX_CHAT_BYTES:
        raise TwinError(f"{path.name} is larger than {MAX_CHAT_BYTES:,} bytes.")
    return [(path.name, path.read_text(encoding="utf-8-sig", errors="replace"))]


def _detect(name: str, text: str) -> ChatFormat | None:
    stripped = text.lstrip()
    if name.lower().endswith(".json") or stripped.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return None
        ok = isinstance(data, dict) and (isinstance(data.get("messages"), list) or isinstance(data.get("chats"), dict))
        return "telegram" if ok else None
    return "whatsapp" if looks_like_whatsapp(text) else None


def detect_chat_export(path: Path) -> ChatFormat | None:
    """Which chat app exported ``path``, or None when it is not a chat export."""
    try:
        for name, text in _chat_files(Path(path)):
            found = _detect(name, text)
            if found:
                return found
    except (OSError, zipfile.BadZipFile, TwinError):
        return None
    return None


def read_chat_export(path: Path) -> list[ChatLog]:
    path = Path(path)
    if not path.is_file():
        raise TwinError(f"{path}: no such file.")
    logs: list[ChatLog] = []
    for name, text in _chat_files(path):
        found = _detect(name, text)
        if found == "telegram":
            logs.extend(parse_telegram(json.loads(text)))
        elif found == "whatsapp":
            logs.append(parse_whatsapp(text, name))
    if not logs:
        raise TwinError(
            f"{path.name} is not a chat export this project knows: expected WhatsApp's \"Export chat\" .txt "
            "(or its ZIP with media) or Telegram Desktop's result.json."
        )
    return logs


# ---------------------------------------------------------------- scrubbing and conversations

MENTION_RE = re.compile(r"(?<![\w@])@[\w.]{2,}")
# International numbers in any grouping (the metric's finder wants groups of at most four digits).
PLUS_PHONE_RE = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,6}\)?){1,5}(?![\w])")
NAME_TOKEN_RE = re.compile(r"[^\W\d_][\w'-]*", re.UNICODE)


def _is_phone_like(name: str) -> bool:
    return sum(c.isdigit() for c in name) >= 6


class Scrubber:
    """Replaces other people's names, @mentions, phone numbers and emails in the author's chats."""

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
        ordered = sorted(names, key=len, reverse=True)  # "Anna Lee" before "Anna"
        self.names_re = (re.compile(r"(?<!\w)(?:" + "|".join(re.escape(n) for n in ordered) + r")(?!\w)")
                         if ordered else None)

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
        return text


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
        documents.extend(chat_documents(log, resolve_me(log, author, me)))
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

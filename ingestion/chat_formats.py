"""Reading chat exports into one parsed form (`ChatLog`): WhatsApp, Telegram, iMessage and Signal.

What each app's export looks like, and what is kept of it, is described in `ingestion.chats`; this module
only reads files (a single file, the ZIP an app or a tool made, or the folder a tool wrote) and never
stores anything.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, Field

from twin.domain import TwinError

App = Literal["whatsapp", "telegram", "imessage", "signal"]
ChatFormat = App
APP_NAMES = {"whatsapp": "WhatsApp", "telegram": "Telegram", "imessage": "iMessage", "signal": "Signal"}
MAX_CHAT_BYTES = 200_000_000
"""Per file, and for all the chat files of one export together."""
MAX_CHAT_FILES = 5_000
"""An iMessage or Signal export holds one file per conversation."""

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


# ---------------------------------------------------------------- iMessage (imessage-exporter, txt)

IM_TIME = (r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (?P<day>\d{1,2}), (?P<year>\d{4}) +"
           r"(?P<hour>\d{1,2}):(?P<minute>\d{2}):(?P<second>\d{2}) (?P<ampm>AM|PM)")
IM_HEADER_RE = re.compile(rf"^{IM_TIME}(?: \(Read by .+ after .+\))?$")
"""The first line of a message: when it was sent, and when the other side read it."""
IM_TIMED_LINE_RE = re.compile(rf"^{IM_TIME} (?P<rest>.+)$")
"""A group event (after a blank line) or, inside a message, the first version of an edited one."""
IM_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), start=1)}
IM_EDITED_RE = re.compile(r"^Edited (?:\d+ \w+(?:, )?)+ later: (?P<text>.*)$")
IM_UNSENT_RE = re.compile(r"^.{1,80} (?:unsent this message part(?: .+ after sending)?!|deleted a message\.)$")
IM_STICKER_RE = re.compile(r"^(?:[\w ]{1,20} )?Sticker from .{1,80}?: .+$")
IM_TAPBACK_RE = re.compile(r"^(?:\S{1,12}|Sticker from .+) by .{1,80}$|^Sticker from .+ from .{1,80}$")
IM_DROP = frozenset({
    "This message responded to an earlier message.", "This message was deleted from the conversation!",
    "Attachment missing!", "Started sharing location!", "Stopped sharing location!", "Shared location!",
    "Handwritten messages are not yet supported!",
})
IM_EFFECT_RE = re.compile(r"^Sent with (?:Slam|Loud|Gentle|Invisible Ink|Confetti|Echo|Fireworks|Balloons|Heart|"
                          r"Lasers|Shooting Star|Sparkles|Spotlight|Love|Celebration)$|^Unable to format app message")
IMAGE_EXT = {"heic", "heif", "jpg", "jpeg", "png", "gif", "webp", "tif", "tiff", "bmp", "svg", "apng"}
VIDEO_EXT = {"mov", "mp4", "m4v", "avi", "3gp", "mkv", "webm", "qt", "mpeg"}
AUDIO_EXT = {"caf", "m4a", "mp3", "amr", "wav", "aac", "opus", "ogg", "flac"}
FILE_EXT = {"pdf", "vcf", "zip", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "pages", "numbers", "key", "txt",
            "csv", "pkpass", "ics", "gpx", "usdz", "json"}
IM_ATTACHMENT_RE = re.compile(r"^(?:\S*/)?[^/\s]+\.(?P<ext>\w{2,5})$|^\S.*/[^/]+\.(?P<ext2>\w{2,5})$")


def _file_marker(name: str) -> str | None:
    """``[image]``-style marker for a file name by its extension, None when it is not a media file."""
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    for exts, marker in ((IMAGE_EXT, "[image]"), (VIDEO_EXT, "[video]"), (AUDIO_EXT, "[audio]"),
                         (FILE_EXT, "[file]")):
        if ext in exts:
            return marker
    return None


def _im_time(match: re.Match[str]) -> datetime:
    hour = int(match["hour"]) % 12 + (12 if match["ampm"] == "PM" else 0)
    return datetime(int(match["year"]), IM_MONTHS[match["mon"]], int(match["day"]), hour, int(match["minute"]),
                    int(match["second"]), tzinfo=UTC)


def looks_like_imessage(text: str) -> bool:
    lines = [line.rstrip("\r") for line in text.split("\n", 60)[:60]]
    return any(IM_HEADER_RE.match(line) and i + 1 < len(lines) and lines[i + 1].strip()
               for i, line in enumerate(lines))


def _im_body(lines: Sequence[str]) -> str:
    """A message's own text from its lines: attachments as markers, the last version of an edited part,
    and no tapbacks, effects or notes."""
    out: list[str] = []
    edit_start: int | None = None
    in_tapbacks = False
    for line in lines:
        bare = line.strip()
        if in_tapbacks:
            if not bare or IM_TAPBACK_RE.match(bare):
                in_tapbacks = bool(bare)
                continue
            in_tapbacks = False
        if bare in ("Tapbacks:", "Reactions:"):
            in_tapbacks = True
            continue
        if bare in IM_DROP or IM_EFFECT_RE.match(bare) or IM_UNSENT_RE.match(bare):
            continue
        if (edited := IM_EDITED_RE.match(bare)) and edit_start is not None:
            del out[edit_start:]
            out.append(edited["text"])
            continue
        if (timed := IM_TIMED_LINE_RE.match(line)) and not out:
            edit_start = len(out)  # the first version of an edited message: replaced by its edits
            out.append(timed["rest"])
            continue
        if IM_STICKER_RE.match(bare):
            out.append("[sticker]")
        elif bare.startswith("Transcription: "):
            out.append(bare.removeprefix("Transcription: "))
        elif IM_ATTACHMENT_RE.match(bare) and (marker := _file_marker(bare)):
            out.append(marker)
        else:
            out.append(line.rstrip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def parse_imessage(text: str, file_name: str | None = None) -> ChatLog:
    """Read one conversation that imessage-exporter wrote as ``txt``; raises `TwinError` when none is there."""
    lines = [_normalise_line(line) for line in text.split("\n")]
    blocks: list[dict[str, Any]] = []
    replies: dict[tuple[str, str], int] = {}
    """(header line, sender) of a reply shown under the message it answers -> that message's index."""
    skipped = 0
    current: dict[str, Any] | None = None
    nested: tuple[str, str] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        following = lines[i + 1] if i + 1 < len(lines) else ""
        header = IM_HEADER_RE.match(line)
        if header and following.strip() and not following.startswith(" "):
            current = {"header": header, "key": (line, following.strip()), "lines": []}
            blocks.append(current)
            nested = None
            i += 2
            continue
        if (i == 0 or not lines[i - 1].strip()) and not header and IM_TIMED_LINE_RE.match(line):
            skipped += 1  # "... renamed the conversation to ...", "... added ... to the conversation."
            current = None
            i += 1
            continue
        if current is not None and line.startswith("    "):
            inner, inner_next = line[4:], following[4:] if following.startswith("    ") else ""
            if IM_HEADER_RE.match(inner) and inner_next.strip():
                nested = (inner, inner_next.strip())
                replies[nested] = len(blocks) - 1
                i += 2
                continue
            if nested is not None:
                i += 1
                continue  # the rest of a reply shown in its thread: it is read where it stands on its own
        elif line.strip():
            nested = None
        if current is not None:
            current["lines"].append(line)
        i += 1
    if not blocks:
        raise TwinError(f"{file_name or 'The file'} holds no iMessage messages (no line starts with a date).")
    log = ChatLog(app="imessage", skipped=skipped, me_id="Me")
    stem = PurePosixPath(file_name or "").stem
    if stem and "," not in stem and not re.search(r" - \d+$", stem):
        log.partner = stem  # imessage-exporter names a one-to-one conversation after the other person
    for index, block in enumerate(blocks):
        body = _im_body(block["lines"])
        sender = block["key"][1]
        if not body:
            log.skipped += 1
            continue
        parent = replies.get(block["key"])
        log.messages.append(ChatMessage(
            sender=sender, name=sender, sent_at=_im_time(block["header"]), text=body, id=str(index),
            reply_to=str(parent) if parent is not None and parent != index else None,
        ))
    return log


# ---------------------------------------------------------------- Signal (signal-export, chat.md)

SIGNAL_HEADER_RE = re.compile(
    r"^\[(?P<date>\d{4}-\d{2}-\d{2}),? (?P<time>\d{2}:\d{2}(?::\d{2})?)\] (?P<sender>[^\n]{1,120}?): ?(?P<rest>.*)$"
)
SIGNAL_LINK_RE = re.compile(r"(!?)\[(?P<name>[^\]\n]*)\]\((?P<path>[^)\s]*)\)")
SIGNAL_CALL_RE = re.compile(r"^(?:Incoming|Outgoing|Missed)(?: (?:voice|video))? call(?: \([^)]*\))?$")
SIGNAL_REACTIONS_RE = re.compile(r"^\(- .* -\)$")
SIGNAL_STICKER_RE = re.compile(r"^\(\( .* \)\)$")
SIGNAL_MISSING_RE = re.compile(r"\((media|attachment) not exported\)")


def looks_like_signal(text: str) -> bool:
    lines = [line for line in text.split("\n", 40)[:40] if line.strip()]
    return bool(lines) and sum(1 for line in lines if SIGNAL_HEADER_RE.match(line)) >= max(1, len(lines) // 3)


def _signal_link(match: re.Match[str]) -> str:
    path = match["path"]
    if "exported_stickers/" in path:
        return "\n[sticker]\n"
    if match[1] or path.startswith(("./media/", "media/", "./")):
        return "\n" + ("[image]" if match[1] else _file_marker(path) or "[file]") + "\n"
    return match[0]  # a link someone wrote in a message


def _signal_body(lines: Sequence[str]) -> tuple[str, str | None]:
    """(the message's own text with media as markers, the text it quotes if it is a reply)."""
    quote: list[str] = []
    body: list[str] = []
    rest = list(lines)
    if rest and not rest[0].strip():  # "Me: " then a blank line, "> quoted", a blank line, the body
        j = 1
        while j < len(rest) and not rest[j].strip():
            j += 1
        while j < len(rest) and rest[j].startswith(">"):
            quote.append(rest[j][1:].removeprefix(" ").rstrip())
            j += 1
        if quote:
            rest = rest[j:]
    for line in rest:
        bare = line.strip()
        if SIGNAL_REACTIONS_RE.match(bare):
            continue
        if SIGNAL_STICKER_RE.match(bare):
            body.append("[sticker]")
            continue
        line = SIGNAL_MISSING_RE.sub(lambda m: "\n[media]\n" if m[1] == "media" else "\n[file]\n", line)
        body.extend(part.rstrip() for part in SIGNAL_LINK_RE.sub(_signal_link, line).split("\n"))
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(part.strip() if re.fullmatch(r"\s*\[\w+\]\s*", part) else part
                                            for part in body)).strip()
    return text, ("\n".join(quote).strip() or None)


def _signal_log(records: Sequence[tuple[datetime, str, str, str | None]], folder: str | None) -> ChatLog:
    """A log from (sent at, sender, text, quoted text) records; a quote becomes a reply to the latest
    earlier message that begins with the quoted text."""
    log = ChatLog(app="signal")
    for sent_at, sender, text, quoted in records:
        if not text:
            log.skipped += 1
            continue
        reply_to = None
        if quoted:
            wanted = " ".join(quoted.split())
            for earlier in reversed(log.messages):
                if " ".join(earlier.text.split()).startswith(wanted[:200]):
                    reply_to = earlier.id
                    break
        log.messages.append(ChatMessage(sender=sender, name=sender, sent_at=sent_at, text=text,
                                        id=str(len(log.messages)), reply_to=reply_to))
    log.me_id = "Me"  # signal-export calls the exporting user "Me"
    others = {m.sender for m in log.messages} - {"Me"}
    if folder and others == {folder}:
        log.partner = folder
    return log


def _signal_time(date: str, time: str) -> datetime:
    return datetime.fromisoformat(f"{date}T{time if time.count(':') == 2 else time + ':00'}").replace(tzinfo=UTC)


def parse_signal(text: str, file_name: str | None = None) -> ChatLog:
    """Read a conversation's ``chat.md`` as signal-export writes it; raises `TwinError` when none is there."""
    raw: list[dict[str, Any]] = []
    for original in text.split("\n"):
        line = original.rstrip("\r")
        match = SIGNAL_HEADER_RE.match(line)
        if match:
            raw.append({**match.groupdict(), "lines": [match["rest"]]})
        elif raw:
            raw[-1]["lines"].append(line)
    if not raw:
        raise TwinError(f"{file_name or 'The file'} holds no Signal messages (no line starts with [date time]).")
    records: list[tuple[datetime, str, str, str | None]] = []
    skipped = 0
    for item in raw:
        first = item["lines"][0].strip()
        if first == "(This message was deleted)" or SIGNAL_CALL_RE.match(first):
            skipped += 1
            continue
        text_, quoted = _signal_body(item["lines"])
        records.append((_signal_time(item["date"], item["time"]), item["sender"].strip(), text_, quoted))
    log = _signal_log(records, _folder_name(file_name))
    log.skipped += skipped
    return log


def parse_signal_json(text: str, file_name: str | None = None) -> ChatLog:
    """Read a conversation's ``data.json`` (signal-export ``--json``: one message object a line)."""
    records: list[tuple[datetime, str, str, str | None]] = []
    skipped = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            sent_at = datetime.fromisoformat(str(item["date"]))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            skipped += 1
            continue
        if item.get("deleted") or item.get("call"):
            skipped += 1
            continue
        parts = [str(item.get("body") or "").strip()]
        if item.get("sticker"):
            parts.append("[sticker]")
        for attachment in item.get("attachments") or []:
            name = str((attachment or {}).get("path") or (attachment or {}).get("name") or "")
            parts.append(_file_marker(name) or "[file]")
        quoted = re.sub(r"^> ?", "", str(item.get("quote") or "").strip(), flags=re.M).strip() or None
        records.append((sent_at if sent_at.tzinfo else sent_at.replace(tzinfo=UTC), str(item.get("sender") or ""),
                        "\n".join(p for p in parts if p), quoted))
    log = _signal_log(records, _folder_name(file_name))
    log.skipped += skipped
    return log


def _folder_name(file_name: str | None) -> str | None:
    parent = PurePosixPath(file_name or "").parent.name
    return parent or None


def looks_like_signal_json(text: str) -> bool:
    first = text.lstrip().split("\n", 1)[0]
    try:
        item = json.loads(first)
    except json.JSONDecodeError:
        return False
    return isinstance(item, dict) and {"date", "sender", "body"} <= item.keys()


# ---------------------------------------------------------------- reading files

CHAT_FILE_NAMES = ("result.json", "chat.md", "data.json")


def _wanted(name: str) -> bool:
    path = PurePosixPath(name)
    if ".." in path.parts or path.parts[:1] == ("__MACOSX",) or path.name.startswith("._"):
        return False
    if path.name == "orphaned.txt":
        return False  # imessage-exporter's messages that belong to no conversation
    return path.name.lower().endswith(".txt") or path.name in CHAT_FILE_NAMES


def _without_shadowed(names: list[str]) -> list[str]:
    """signal-export's ``data.json`` repeats its folder's ``chat.md``: read it only where there is no chat.md."""
    folders_with_md = {PurePosixPath(n).parent for n in names if PurePosixPath(n).name == "chat.md"}
    return [n for n in names if not (PurePosixPath(n).name == "data.json" and PurePosixPath(n).parent in folders_with_md)]


def _chat_files(path: Path) -> Iterator[tuple[str, str]]:
    """(name, text) of the chat files in ``path``: the file itself, or the chat files in a ZIP or a folder."""
    total = 0

    def count(size: int, name: str) -> None:
        nonlocal total
        total += size
        if size > MAX_CHAT_BYTES or total > MAX_CHAT_BYTES:
            raise TwinError(f"{name}: the chat files are larger than {MAX_CHAT_BYTES:,} bytes.")

    if path.is_dir():
        names = sorted(str(p.relative_to(path).as_posix()) for p in path.rglob("*")
                       if p.is_file() and not p.is_symlink() and _wanted(p.relative_to(path).as_posix()))
        for name in _without_shadowed(names)[:MAX_CHAT_FILES]:
            file = path / name
            count(file.stat().st_size, name)
            yield name, file.read_text(encoding="utf-8-sig", errors="replace")
        return
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            infos = {info.filename: info for info in archive.infolist() if not info.is_dir() and _wanted(info.filename)}
            for name in _without_shadowed(sorted(infos))[:MAX_CHAT_FILES]:
                count(infos[name].file_size, name)
                yield name, _read_member(archive, infos[name])
        return
    count(path.stat().st_size, path.name)
    # with its folder: signal-export names a conversation's folder, not its chat.md, after the chat
    yield f"{path.parent.name}/{path.name}", path.read_text(encoding="utf-8-sig", errors="replace")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    with archive.open(info) as member:
        data = member.read(MAX_CHAT_BYTES + 1)
    if len(data) > MAX_CHAT_BYTES:
        raise TwinError(f"{info.filename} inflates past {MAX_CHAT_BYTES:,} bytes.")
    return data.decode("utf-8-sig", errors="replace")


def _detect(name: str, text: str) -> ChatFormat | None:
    stripped = text.lstrip()
    base = PurePosixPath(name).name
    if base == "data.json" and looks_like_signal_json(text):
        return "signal"
    if base.lower().endswith(".json") or stripped.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return None
        ok = isinstance(data, dict) and (isinstance(data.get("messages"), list) or isinstance(data.get("chats"), dict))
        return "telegram" if ok else None
    if looks_like_imessage(text):
        return "imessage"
    if looks_like_signal(text):
        return "signal"
    return "whatsapp" if looks_like_whatsapp(text) else None


def detect_chat_export(path: Path) -> ChatFormat | None:
    """Which chat app exported ``path`` (a file, a ZIP or a folder), or None when it is not a chat export."""
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
    if not (path.is_file() or path.is_dir()):
        raise TwinError(f"{path}: no such file.")
    logs: list[ChatLog] = []
    for name, text in _chat_files(path):
        found = _detect(name, text)
        if found == "telegram":
            logs.extend(parse_telegram(json.loads(text)))
        elif found == "whatsapp":
            logs.append(parse_whatsapp(text, name))
        elif found == "imessage":
            logs.append(parse_imessage(text, name))
        elif found == "signal":
            log = parse_signal_json(text, name) if PurePosixPath(name).name == "data.json" else parse_signal(text, name)
            if log.messages:
                logs.append(log)
    if not logs:
        raise TwinError(
            f"{path.name} is not a chat export this project knows: expected WhatsApp's \"Export chat\" .txt "
            "(or its ZIP with media), Telegram Desktop's result.json, imessage-exporter's txt export "
            "(a conversation's .txt, or the folder or ZIP of them) or signal-export's folder (chat.md)."
        )
    return logs

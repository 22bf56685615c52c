"""iMessage (imessage-exporter's txt) and Signal (signal-export's chat.md) chat exports, and scrubbing the
names of people who are not in the chat.

The exports are real files in the tools' own layouts, as their exporters write them (imessage-exporter:
``%b %d, %Y %l:%M:%S %p`` timestamps, read receipts, ``Me``, tapbacks, threaded replies indented four
spaces and repeated in their own place, edits; signal-export: ``[date time] Sender: ``, quotes as ``>``
lines, attachments as Markdown links, reactions as ``(- Name: emoji -)``), read through the real importer
into a real SQLite store.
"""

from __future__ import annotations

import json
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingestion.chats import (
    NameFinder,
    Scrubber,
    chat_documents,
    detect_chat_export,
    import_chat_export,
    read_chat_export,
    resolve_me,
)
from ingestion.exports import read_export
from twin.chat import parse_chat
from twin.domain import TwinError
from twin.store import DocumentStore

# ---------------------------------------------------------------- iMessage

IMESSAGE_ONE_TO_ONE = (
    "May 17, 2022  5:29:42 PM (Read by you after 1 hour, 49 seconds)\n"
    "Maya Okafor\n"
    "are you still coming to the harbour tomorrow?\n"
    "bring the good thermos\n"
    "\n"
    "May 17, 2022  5:31:03 PM (Read by them after 2 minutes, 1 second)\n"
    "Me\n"
    "yes! leaving at 7, low tide is at 8\n"
    "Tapbacks:\n"
    "Loved by Maya Okafor\n"
    "\n"
    "\n"
    "May 17, 2022  5:33:10 PM\n"
    "Maya Okafor\n"
    "attachments/12/IMG_4411.HEIC\n"
    "look at this joint\n"
    "Sent with Confetti\n"
    "\n"
    "May 17, 2022  5:35:00 PM\n"
    "Me\n"
    "May 17, 2022  5:35:00 PM that photo is the leakiest joint I have seen\n"
    "Edited 1 minute, 5 seconds later: that photo is the leakiest joint I have ever seen\n"
    "\n"
    "\n"
    "May 17, 2022  5:36:40 PM\n"
    "Maya Okafor\n"
    "did you ask Jonas about the pump?\n"
    "    May 17, 2022  5:38:00 PM\n"
    "    Me\n"
    "    not yet, I will tonight\n"
    "\n"
    "May 17, 2022  5:37:00 PM\n"
    "Maya Okafor\n"
    "Sticker from Maya Okafor: attachments/12/sticker.png\n"
    "\n"
    "May 17, 2022  5:38:00 PM\n"
    "Me\n"
    "not yet, I will tonight\n"
    "This message responded to an earlier message.\n"
    "\n"
    "May 17, 2022  5:39:00 PM\n"
    "Me\n"
    "You unsent this message part 10 seconds after sending!\n"
    "\n"
    "May 18, 2022 10:02:17 AM\n"
    "Maya Okafor\n"
    "/Users/maya/Library/Messages/Attachments/ab/11/F00D/Audio Message.caf\n"
    "Transcription: call me when you are up\n"
    "\n"
    "Jun 01, 2022 11:15:00 PM\n"
    "Me\n"
    "happy june! the kayak survived\n"
    "\n"
)

IMESSAGE_GROUP = (
    "Jul 04, 2023  9:00:00 AM You renamed the conversation to Harbour crew\n"
    "\n"
    "Jul 04, 2023  9:01:00 AM\n"
    "+15555550123\n"
    "who is bringing the pump?\n"
    "\n"
    "Jul 04, 2023  9:02:00 AM\n"
    "jonas.weber@example.com\n"
    "not me, mine leaks\n"
    "\n"
    "Jul 04, 2023  9:02:30 AM +15555550123 added Priya to the conversation.\n"
    "\n"
    "Jul 04, 2023  9:03:00 AM\n"
    "Me\n"
    "I will, it is the dry one\n"
    "attachments/7/pump.jpeg\n"
    "Tapbacks:\n"
    "Liked by +15555550123\n"
    "\U0001f389 by jonas.weber@example.com\n"
    "\n"
    "\n"
)

IMESSAGE_NOT_MINE = (
    "Aug 02, 2023  8:00:00 AM\n"
    "Dentist\n"
    "Your appointment is tomorrow at 9. Reply C to confirm.\n"
    "\n"
)


def _imessage_folder(root: Path) -> Path:
    folder = root / "imessage_export"
    (folder / "attachments" / "12").mkdir(parents=True)
    (folder / "Maya Okafor.txt").write_text(IMESSAGE_ONE_TO_ONE, encoding="utf-8")
    (folder / "Harbour crew - 41.txt").write_text(IMESSAGE_GROUP, encoding="utf-8")
    (folder / "Dentist.txt").write_text(IMESSAGE_NOT_MINE, encoding="utf-8")
    (folder / "orphaned.txt").write_text("May 17, 2022  5:29:42 PM\nUnknown\nwho is this\n\n", encoding="utf-8")
    (folder / "attachments" / "12" / "IMG_4411.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")
    return folder


@pytest.fixture
def tova(store: DocumentStore):
    return store.add_author("tova")


def test_imessage_one_to_one_with_tapbacks_edits_replies_and_attachments(tmp_path: Path, tova) -> None:
    path = tmp_path / "Maya Okafor.txt"
    path.write_text(IMESSAGE_ONE_TO_ONE, encoding="utf-8")
    assert detect_chat_export(path) == "imessage"
    [log] = read_chat_export(path)
    assert log.app == "imessage" and log.partner == "Maya Okafor" and log.me_id == "Me"
    texts = [(m.sender, m.text) for m in log.messages]
    assert texts == [
        ("Maya Okafor", "are you still coming to the harbour tomorrow?\nbring the good thermos"),
        ("Me", "yes! leaving at 7, low tide is at 8"),  # the tapback is not part of the message
        ("Maya Okafor", "[image]\nlook at this joint"),  # the attachment path is a marker, the effect gone
        ("Me", "that photo is the leakiest joint I have ever seen"),  # the last version of an edit
        ("Maya Okafor", "did you ask Jonas about the pump?"),  # the threaded reply is read once, below
        ("Maya Okafor", "[sticker]"),
        ("Me", "not yet, I will tonight"),
        ("Maya Okafor", "[audio]\ncall me when you are up"),  # a voice message's transcription
        ("Me", "happy june! the kayak survived"),
    ]
    assert log.skipped == 1  # the unsent message
    assert log.messages[0].sent_at == datetime(2022, 5, 17, 17, 29, 42, tzinfo=UTC)
    assert log.messages[-2].sent_at == datetime(2022, 5, 18, 10, 2, 17, tzinfo=UTC)
    assert log.messages[-1].sent_at == datetime(2022, 6, 1, 23, 15, tzinfo=UTC)
    reply = log.messages[6]
    assert reply.reply_to == log.messages[4].id  # found from the thread it was shown in

    assert resolve_me(log, tova, None) == "Me"
    documents = chat_documents(log, "Me")
    # a day's silence starts a new conversation; the next day's voice message alone has no line of mine
    assert len(documents) == 2
    assert documents[0].title.startswith("iMessage chat")
    lines = parse_chat(documents[0].text)
    # the reply answers the messages right before it, so it needs no quote of the question
    assert [(line.speaker, line.quote) for line in lines][-3:] == [("them", False), ("them", False), ("me", False)]
    assert "Maya" not in documents[0].text and "Jonas" not in documents[0].text  # scrubbed


def test_imessage_group_with_handles_and_events(tmp_path: Path, tova) -> None:
    path = tmp_path / "Harbour crew - 41.txt"
    path.write_text(IMESSAGE_GROUP, encoding="utf-8")
    [log] = read_chat_export(path)
    assert log.partner is None and log.skipped == 2  # the rename and the "added" event
    assert [(m.sender, m.text) for m in log.messages] == [
        ("+15555550123", "who is bringing the pump?"),
        ("jonas.weber@example.com", "not me, mine leaks"),
        ("Me", "I will, it is the dry one\n[image]"),
    ]
    [document] = chat_documents(log, resolve_me(log, tova, None))
    assert [line.speaker for line in parse_chat(document.text)] == ["them", "them 2", "me"]
    assert "5555550123" not in document.text and "jonas.weber" not in document.text
    assert "Priya" not in document.text


def test_imessage_folder_and_zip_store_only_conversations_the_author_wrote_in(
    tmp_path: Path, store: DocumentStore, tova
) -> None:
    folder = _imessage_folder(tmp_path)
    assert detect_chat_export(folder) == "imessage"
    logs = read_chat_export(folder)
    assert sorted(len(log.messages) for log in logs) == [1, 3, 9]  # orphaned.txt is not a conversation
    result = import_chat_export(store, tova, folder)
    assert result.chats == 3 and result.report.new == 3  # 2 sessions with Maya, 1 in the group; no dentist
    stored = [d.clean_text for d in store.list_documents(tova)]
    assert not any("appointment" in text for text in stored)

    archive = tmp_path / "imessage_export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in folder.rglob("*"):
            if file.is_file():
                zf.write(file, f"imessage_export/{file.relative_to(folder).as_posix()}")
    again = import_chat_export(store, tova, archive)
    assert again.report.unchanged == 3 and again.source_url == result.source_url
    with pytest.raises(TwinError, match="--private"):
        read_export(archive)  # a platform import refuses private messages


# ---------------------------------------------------------------- Signal

SIGNAL_CHAT = (
    "[2024-03-01 18:20:11] Maya Okafor: did the schema migration go out?  \n"
    "\n"
    "[2024-03-01 18:21:40] Maya Okafor: ![signal-2024-03-01-182140.jpeg](./media/signal-2024-03-01-182140.jpeg)  \n"
    "\n"
    "[2024-03-01 18:22:05] Me: \n"
    "\n"
    "> did the schema migration go out?\n"
    "\n"
    "yes, shipped at nine.  \n"
    "boring is a feature  \n"
    "(- Maya Okafor: \U0001f44d -)\n"
    "\n"
    "[2024-03-01 18:23:00] Maya Okafor: Missed voice call\n"
    "\n"
    "[2024-03-01 18:24:30] Me: runbook attached, call +44 7700 900123 if it breaks  [runbook.pdf](./media/runbook.pdf)  \n"
    "\n"
    "[2024-03-01 18:25:00] Maya Okafor: (This message was deleted)\n"
    "\n"
    "[2024-03-01 18:26:12] Maya Okafor: Priya says thanks, read https://example.com/Priya later  \n"
    "\n"
    "[2024-03-01 18:27:00] Me: tell Priya Sharma the cake is on me  \n"
    "\n"
)


def _signal_folder(root: Path) -> Path:
    export = root / "signal-chats"
    (export / "Maya Okafor" / "media").mkdir(parents=True)
    (export / "Maya Okafor" / "chat.md").write_text(SIGNAL_CHAT, encoding="utf-8")
    (export / "Maya Okafor" / "media" / "runbook.pdf").write_bytes(b"%PDF-1.4")
    (export / "Maya Okafor" / "data.json").write_text(json.dumps(
        {"date": "2024-03-01T18:20:11", "sender": "Maya Okafor", "body": "did the schema migration go out?",
         "quote": "", "sticker": None, "reactions": [], "attachments": []}) + "\n", encoding="utf-8")
    (export / "Bank").mkdir()
    (export / "Bank" / "chat.md").write_text("[2024-03-02 09:00:00] Bank: your code is 123456  \n\n",
                                             encoding="utf-8")
    return export


def test_signal_chat_with_quote_attachments_reactions_calls_and_deletions(tmp_path: Path, tova) -> None:
    export = _signal_folder(tmp_path)
    path = export / "Maya Okafor" / "chat.md"
    assert detect_chat_export(path) == "signal"
    [log] = read_chat_export(path)
    assert log.app == "signal" and log.me_id == "Me" and log.partner == "Maya Okafor"
    assert log.skipped == 2  # the missed call and the deleted message
    assert [(m.sender, m.text) for m in log.messages] == [
        ("Maya Okafor", "did the schema migration go out?"),
        ("Maya Okafor", "[image]"),
        ("Me", "yes, shipped at nine.\nboring is a feature"),  # the reaction is dropped
        ("Me", "runbook attached, call +44 7700 900123 if it breaks\n[file]"),
        ("Maya Okafor", "Priya says thanks, read https://example.com/Priya later"),
        ("Me", "tell Priya Sharma the cake is on me"),
    ]
    assert log.messages[2].reply_to == log.messages[0].id  # the quote names the message it answers
    assert log.messages[0].sent_at == datetime(2024, 3, 1, 18, 20, 11, tzinfo=UTC)

    [document] = chat_documents(log, resolve_me(log, tova, None))
    lines = parse_chat(document.text)
    # the quoted question is among the messages the reply follows: it is not repeated as a quote
    assert [line.speaker for line in lines] == ["them", "them", "me", "me", "them", "me"]
    assert not any(line.quote for line in lines)
    text = document.text
    for secret in ("Maya", "Okafor", "7700", "900123", "Priya", "Sharma"):
        assert secret not in text.replace("https://example.com/Priya", ""), secret
    assert "tell [name] the cake is on me" in text and "[phone]" in text


def test_signal_export_folder_reads_each_chat_once_and_old_layouts(tmp_path: Path, store: DocumentStore, tova) -> None:
    export = _signal_folder(tmp_path)
    assert detect_chat_export(export) == "signal"
    logs = read_chat_export(export)  # data.json beside chat.md is the same chat: not read twice
    assert sorted(len(log.messages) for log in logs) == [1, 6]
    result = import_chat_export(store, tova, export)
    assert result.report.new == 1  # the bank's codes are not a conversation of the author's
    [document] = store.list_documents(tova)
    assert "123456" not in document.clean_text

    old = tmp_path / "old" / "Sam" / "chat.md"  # signal-export before 2024: "[date, HH:MM]"
    old.parent.mkdir(parents=True)
    old.write_text("[2019-05-29, 15:04] Sam: How is everyone?  \n\n[2019-05-29, 15:10] Me: We're great!  \n\n",
                   encoding="utf-8")
    [log] = read_chat_export(old)
    assert [m.text for m in log.messages] == ["How is everyone?", "We're great!"]
    assert log.messages[1].sent_at == datetime(2019, 5, 29, 15, 10, tzinfo=UTC)

    only_json = tmp_path / "json" / "Sam" / "data.json"  # signal-export --json, without chat.md
    only_json.parent.mkdir(parents=True)
    only_json.write_text("\n".join(json.dumps(row) for row in [
        {"date": "2024-01-01T10:00:00", "sender": "Sam", "body": "new year walk?", "quote": "",
         "sticker": None, "reactions": [], "attachments": []},
        {"date": "2024-01-01T10:05:00", "sender": "Me", "body": "yes, the long loop", "quote": "\n\n> new year walk?\n\n",
         "sticker": None, "reactions": [], "attachments": [{"name": "map.png", "path": "media/map.png"}]},
    ]) + "\n", encoding="utf-8")
    [log] = read_chat_export(only_json.parent)
    assert [m.text for m in log.messages] == ["new year walk?", "yes, the long loop\n[image]"]
    assert log.messages[1].reply_to == log.messages[0].id


# ---------------------------------------------------------------- names of people not in the chat

# Messages with the people in them marked {like this}; every other capitalised word must stay.
SCRUB_CASES = [
    "I saw {Maria} and {Tom} yesterday at the market",
    "Will you come on Monday? I told {Will} about it already",
    "We flew to Sydney in March with {Sydney} {Carter}",
    "Grace period ends in May. Hope you're well!",
    "Python and Rust are fine, ask Dr. {Nguyen} or Mrs {Patel}",
    "{Jonas} said the ferry to Berlin leaves at 9",
    "{Maria} {Gonzalez}'s cake in London was great",
    "I'm going to Paris with {Jean} and {Priya} next week",
    "Happy birthday {Aisha}! Ask {Kwame} {Mensah} to bring the candles",
    "Mom says Christmas is at Grandma's this year",
    "Can you send me the PDF? The Wi-Fi password is on the fridge",
    "{Daniel} and I fixed the bike, {Sarah} lent us her tools",
    "My flight lands in Chicago on Friday at 6",
    "{Olga}'s daughter started at Oxford in October",
    "{Ahmed} bought a new Tesla, which is silly",
    "Lunch with {Chen} and {Yuki} tomorrow, then Spanish class",
    "Thanks! Good night, see you Sunday",
    "Tell {Lucas} that the English exam moved to June",
    "Rose and {Mark} are coming too, and {Elena} might",
    "Hello from Lisbon! The weather in Portugal is perfect",
    "The kids watched Frozen again. {Emma} knows every song",
    "I need to call the bank, {Natalia}, before Thursday",
    "Did {Fatima} get the Netflix login from {Mateo}?",
    "Sorry, I was at the gym. Ok see you at {Anna}'s",
    "Our neighbour Mr {Kowalski} fixed the fence",
    "Just landed in Toronto, {Priya} picked me up",
    "The new iPhone is great but the battery in Spring was better",
    "Are you watching the Champions League final with {Hugo}?",
    "{Ingrid} recommended a book by Murakami",
    "Back from the Alps. {Jonas} broke his ski again",
]
# names only a larger list would know ("Murakami" is marked as not-a-name-here on purpose: famous people are
# not the privacy risk, and the finder should not be rewarded for guessing)


def _gold(case: str) -> tuple[str, set[tuple[int, int]]]:
    text, spans = "", set()
    for part in re.split(r"(\{[^}]+\})", case):
        if part.startswith("{"):
            spans.add((len(text), len(text) + len(part) - 2))
            text += part[1:-1]
        else:
            text += part
    return text, spans


def test_names_of_people_outside_the_chat_are_found_with_good_precision_and_recall() -> None:
    finder = NameFinder(keep=["Tova Brannock"])
    true_pos = false_pos = false_neg = kept_words = 0
    for case in SCRUB_CASES:
        text, gold = _gold(case)
        found = set(finder.spans(text))
        true_pos += len(found & gold)
        false_pos += len(found - gold)
        false_neg += len(gold - found)
        capitalised = {m.span() for m in re.finditer(r"\b[A-Z][\w]*", text)}
        kept_words += len(capitalised - gold - {(a, b) for a, b in found})
    precision = true_pos / (true_pos + false_pos)
    recall = true_pos / (true_pos + false_neg)
    assert precision >= 0.95, (precision, recall)
    assert recall >= 0.85, (precision, recall)
    assert kept_words >= 45  # sentence starts, places, months, days, products stay as they were


def test_the_scrubber_replaces_outsiders_and_members_and_keeps_the_author() -> None:
    scrub = Scrubber(["Maya Okafor"], own_name="Tova Brannock")
    assert scrub("I saw Maria and Tom yesterday") == "I saw [name] and [name] yesterday"
    assert scrub("Maria Gonzalez's cake") == "[name]'s cake"  # a full name is one [name]
    # the author's own name stays, the chat's other member goes wherever it is
    assert scrub("Tova here, Maya and Okafor said hi") == "Tova here, [name] and [name] said hi"
    # a member's name in lower or upper case goes too, unless that word is an ordinary one
    assert scrub("lol maya and OKAFOR will mark it") == "lol [name] and [name] will mark it"
    assert Scrubber(["Will Grace"])("i will grace it, Will") == "i will grace it, [name]"
    # lower-case words that are also names are left alone, and a link keeps its path
    assert scrub("i will mark it, grace period, https://example.com/Maria") == \
        "i will mark it, grace period, https://example.com/Maria"


def test_imessage_and_signal_scrub_names_numbers_and_emails(tmp_path: Path, store: DocumentStore, tova) -> None:
    imessage = tmp_path / "Maya Okafor.txt"
    imessage.write_text(
        "Mar 02, 2024  9:00:00 AM\nMaya Okafor\nnew number +44 7700 900123, mail maya.okafor@gmail.com\n\n"
        "Mar 02, 2024  9:01:00 AM\nMe\nthanks Maya! I'll tell Daniel and Ingrid, call (415) 555-0132\n\n",
        encoding="utf-8")
    signal = tmp_path / "signal" / "Maya Okafor" / "chat.md"
    signal.parent.mkdir(parents=True)
    signal.write_text(
        "[2024-03-02 09:00:00] Maya Okafor: new number +44 7700 900123, mail maya.okafor@gmail.com  \n\n"
        "[2024-03-02 09:01:00] Me: thanks Maya! I'll tell Daniel and Ingrid, call (415) 555-0132  \n\n",
        encoding="utf-8")
    for path in (imessage, signal.parent.parent):
        import_chat_export(store, tova, path)
    documents = store.list_documents(tova)
    assert len(documents) == 2
    for document in documents:
        stored = document.clean_text
        for secret in ("Maya", "Okafor", "7700", "maya.okafor", "555-0132", "Daniel", "Ingrid"):
            assert secret not in stored, (secret, stored)
        assert "[phone]" in stored and "[email]" in stored and "I'll tell [name] and [name]" in stored

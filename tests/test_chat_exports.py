"""Private chat exports: WhatsApp in several locales and layouts, Telegram with replies; scrubbing; the
import only on request; conversations as training examples; removal with everything derived from them.

Every export here is a real file written in the app's format (as the apps write them: narrow no-break
spaces before AM/PM, left-to-right marks on iOS notices, Telegram's entity lists), read through the real
importer into a real SQLite store, with the real embedded Qdrant next to it.
"""

from __future__ import annotations

import asyncio
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingestion.chats import (
    CHAT_SOURCE_PREFIX,
    chat_documents,
    forget_private_source,
    import_chat_export,
    private_sources,
    read_chat_export,
    resolve_me,
)
from ingestion.exports import read_export
from training.dataset import build_datasets, chat_turns
from twin.chat import parse_chat
from twin.domain import Kind, Platform, TwinError, author_folder
from twin.settings import Settings
from twin.store import DocumentStore

NNBSP, LRM = "\u202f", "\u200e"

WHATSAPP = {
    # Android, US English: month first, 12-hour clock with a narrow no-break space before PM.
    "android_us": (
        f"12/31/23, 9:41{NNBSP}PM - Messages and calls are end-to-end encrypted. No one outside of this chat, "
        "not even WhatsApp, can read or listen to them. Tap to learn more.\n"
        f"12/31/23, 9:41{NNBSP}PM - Maya Okafor: are you still coming to the harbour tomorrow?\n"
        "bring the good thermos\n"
        f"12/31/23, 9:43{NNBSP}PM - Tova Brannock: yes! leaving at 7, low tide is at 8\n"
        f"12/31/23, 9:44{NNBSP}PM - Maya Okafor: <Media omitted>\n"
        f"12/31/23, 9:45{NNBSP}PM - Tova Brannock: that photo is the leakiest joint I have ever seen\n"
        "second line of the same message\n"
        f"12/31/23, 9:46{NNBSP}PM - Maya Okafor: This message was deleted\n"
        f"1/13/24, 8:05{NNBSP}AM - Tova Brannock: happy new year Maya, the kayak survived\n",
        "WhatsApp Chat with Maya Okafor.txt",
        datetime(2023, 12, 31, 21, 43, tzinfo=UTC),
    ),
    # Android, British English: day first, four-digit year, 24-hour clock.
    "android_gb": (
        "31/12/2023, 21:41 - Maya Okafor: are you still coming to the harbour tomorrow?\n"
        "bring the good thermos\n"
        "31/12/2023, 21:43 - Tova Brannock: yes! leaving at 7, low tide is at 8\n"
        "31/12/2023, 21:44 - Maya Okafor: IMG-20231231-WA0004.jpg (file attached)\n"
        "31/12/2023, 21:45 - Tova Brannock: that photo is the leakiest joint I have ever seen\n"
        "second line of the same message\n"
        "31/12/2023, 21:45 - Maya Okafor added Jonas\n"
        "13/01/2024, 08:05 - Tova Brannock: happy new year Maya, the kayak survived\n",
        "WhatsApp Chat with Maya Okafor.txt",
        datetime(2023, 12, 31, 21, 43, tzinfo=UTC),
    ),
    # Android, German: dots, two-digit year, German media placeholder.
    "android_de": (
        "31.12.23, 21:41 - Maya Okafor: are you still coming to the harbour tomorrow?\n"
        "bring the good thermos\n"
        "31.12.23, 21:43 - Tova Brannock: yes! leaving at 7, low tide is at 8\n"
        "31.12.23, 21:44 - Maya Okafor: <Medien ausgeschlossen>\n"
        "31.12.23, 21:45 - Tova Brannock: that photo is the leakiest joint I have ever seen\n"
        "second line of the same message\n"
        "13.01.24, 08:05 - Tova Brannock: happy new year Maya, the kayak survived\n",
        "WhatsApp Chat mit Maya Okafor.txt",
        datetime(2023, 12, 31, 21, 43, tzinfo=UTC),
    ),
    # iOS, German locale: brackets, seconds, notices and placeholders marked with a left-to-right mark.
    "ios_de": (
        f"{LRM}[31.12.23, 21:41:05] Maya Okafor: {LRM}Messages and calls are end-to-end encrypted.\n"
        "[31.12.23, 21:41:05] Maya Okafor: are you still coming to the harbour tomorrow?\n"
        "bring the good thermos\n"
        "[31.12.23, 21:43:10] Tova Brannock: yes! leaving at 7, low tide is at 8\n"
        f"[31.12.23, 21:44:00] Maya Okafor: {LRM}image omitted\n"
        "[31.12.23, 21:45:30] Tova Brannock: that photo is the leakiest joint I have ever seen\n"
        "second line of the same message\n"
        "[13.01.24, 08:05:00] Tova Brannock: happy new year Maya, the kayak survived\n",
        "_chat.txt",
        datetime(2023, 12, 31, 21, 43, 10, tzinfo=UTC),
    ),
}


def _telegram_export() -> dict:
    return {
        "name": "Maya Okafor",
        "type": "personal_chat",
        "id": 4242,
        "messages": [
            {"id": 1, "type": "service", "date": "2024-02-01T09:00:00", "date_unixtime": "1706778000",
             "actor": "Maya Okafor", "action": "phone_call"},
            {"id": 2, "type": "message", "date": "2024-02-01T09:01:00", "date_unixtime": "1706778060",
             "from": "Maya Okafor", "from_id": "user111", "text": "did the schema migration go out?"},
            {"id": 3, "type": "message", "date": "2024-02-01T09:02:00", "date_unixtime": "1706778120",
             "from": "Maya Okafor", "from_id": "user111", "photo": "photos/photo_1.jpg", "text": ""},
            {"id": 4, "type": "message", "date": "2024-02-01T09:03:00", "date_unixtime": "1706778180",
             "from": "Maya Okafor", "from_id": "user111",
             "text": ["also ask ", {"type": "mention", "text": "@jonas_w"}, " about ",
                      {"type": "link", "text": "https://example.com/runbook"}]},
            {"id": 5, "type": "message", "date": "2024-02-01T09:10:00", "date_unixtime": "1706778600",
             "from": "Tova Brannock", "from_id": "user222", "text": "on it, the runbook is a promise"},
            {"id": 6, "type": "message", "date": "2024-02-01T09:11:00", "date_unixtime": "1706778660",
             "from": "Tova Brannock", "from_id": "user222", "reply_to_message_id": 2,
             "text": ["yes, shipped at nine. ", {"type": "bold", "text": "boring is a feature"}]},
            {"id": 7, "type": "message", "date": "2024-02-01T09:12:00", "date_unixtime": "1706778720",
             "from": "Tova Brannock", "from_id": "user222", "forwarded_from": "Ops Channel",
             "text": "maintenance window tonight"},
            {"id": 8, "type": "message", "date": "2024-02-01T09:13:00", "date_unixtime": "1706778780",
             "from": "Maya Okafor", "from_id": "user111", "media_type": "sticker", "sticker_emoji": "👍",
             "file": "stickers/s.webp", "text": ""},
        ],
    }


@pytest.fixture
def tova(store: DocumentStore):
    return store.add_author("tova")


@pytest.mark.parametrize("layout", sorted(WHATSAPP))
def test_whatsapp_layouts_read_the_same_conversation(layout: str, tmp_path: Path, tova) -> None:
    text, name, my_first_time = WHATSAPP[layout]
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    [log] = read_chat_export(path)
    assert log.app == "whatsapp"
    mine = [m for m in log.messages if m.name == "Tova Brannock"]
    assert mine[0].sent_at == my_first_time
    assert mine[1].text == "that photo is the leakiest joint I have ever seen\nsecond line of the same message"
    assert mine[-1].sent_at.date().isoformat() == "2024-01-13"  # day and month told apart in every locale
    assert "Messages and calls" not in " ".join(m.text for m in log.messages)  # notices are dropped
    theirs = [m.text for m in log.messages if m.name == "Maya Okafor"]
    assert theirs[0] == "are you still coming to the harbour tomorrow?\nbring the good thermos"
    assert theirs[1] in ("[media]", "[image]") and len(theirs) == 2  # placeholder kept, deletion dropped
    assert log.skipped >= 1 or layout == "android_de"

    # the author is found (chat partner named by the file, or the author's name), and only sessions with
    # the author's lines become documents; a 12-day silence starts a new conversation
    me = resolve_me(log, tova, None)
    documents = chat_documents(log, me)
    assert len(documents) == 2 and all(d.kind is Kind.chat and d.platform is Platform.chat for d in documents)
    lines = parse_chat(documents[0].text)
    assert [line.speaker for line in lines] == ["them", "me", "them", "me"]
    assert lines[3].text.endswith("second line of the same message")
    assert "Maya" not in documents[1].text and "[name]" in documents[1].text


def test_whatsapp_zip_with_media_and_unknown_author_needs_me(tmp_path: Path, tova) -> None:
    archive = tmp_path / "WhatsApp Chat - Harbour crew.zip"
    group = (
        "[31.12.23, 21:41:05] Maya Okafor: who is bringing the pump?\n"
        "[31.12.23, 21:42:00] Jonas Weber: not me, mine leaks\n"
        "[31.12.23, 21:43:10] T.B.: I will, it is the dry one\n"
        "[31.12.23, 21:43:30] T.B.: \u200e<attached: 00000012-PHOTO-2023-12-31-21-43-30.jpg>\n"
    )
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("_chat.txt", group)
        zf.writestr("00000012-PHOTO-2023-12-31-21-43-30.jpg", b"\xff\xd8\xff")
    [log] = read_chat_export(archive)
    assert [m.text for m in log.messages][-1] == "[image]"
    with pytest.raises(TwinError, match="--me"):
        resolve_me(log, tova, None)  # three senders, none named like the author
    [document] = chat_documents(log, resolve_me(log, tova, "T.B."))
    lines = parse_chat(document.text)
    assert [line.speaker for line in lines] == ["them", "them 2", "me", "me"]
    # in a group the prompt says who spoke; media markers never become part of the author's answer
    turns = chat_turns(document.text)
    assert turns[0] == (False, "them: who is bringing the pump?\nthem 2: not me, mine leaks")


def test_telegram_text_entities_replies_media_and_forwards(tmp_path: Path, tova) -> None:
    path = tmp_path / "result.json"
    path.write_text(json.dumps(_telegram_export()), encoding="utf-8")
    [log] = read_chat_export(path)
    assert log.app == "telegram" and log.skipped == 1  # the service message
    texts = {m.id: m.text for m in log.messages}
    assert texts["3"] == "[image]" and texts["8"] == "[sticker]"
    assert texts["4"] == "also ask [name] about https://example.com/runbook"
    assert resolve_me(log, tova, None) == "user222"  # the one sender who is not the chat's partner
    [document] = chat_documents(log, "user222")
    lines = parse_chat(document.text)
    # the reply to message 2 (not the messages right before it) quotes it; the forward is not the author's
    assert [(line.speaker, line.quote) for line in lines] == [
        ("them", False), ("them", False), ("them", False), ("me", False), ("them", True), ("me", False),
        ("them", False)]
    assert lines[4].text == "did the schema migration go out?"
    assert "maintenance window" not in document.text
    turns = chat_turns(document.text)
    assert turns[-2] == (True, "yes, shipped at nine. boring is a feature")
    assert turns[-3][1] == "did the schema migration go out?"


def test_full_telegram_export_knows_the_author(tmp_path: Path, tova) -> None:
    chat = _telegram_export()
    chat["type"] = "private_group"
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"personal_information": {"user_id": 222, "first_name": "T"},
                                "chats": {"list": [chat]}}), encoding="utf-8")
    [log] = read_chat_export(path)
    assert resolve_me(log, tova, None) == "user222"


def test_other_peoples_names_numbers_and_emails_are_scrubbed(tmp_path: Path, store: DocumentStore, tova) -> None:
    path = tmp_path / "WhatsApp Chat with Maya Okafor.txt"
    path.write_text(
        "31/12/2023, 21:41 - Maya Okafor: my new number is +44 7700 900123, email maya.okafor@gmail.com\n"
        "31/12/2023, 21:42 - +49 151 23456789: hi from Jonas, call (415) 555-0132\n"
        "31/12/2023, 21:43 - Tova Brannock: thanks Maya! Okafor family dinner at 8? ping @maya_o\n"
        "or text 0151 2345 6789. The 2024 plan is v1.2.3\n",
        encoding="utf-8",
    )
    result = import_chat_export(store, tova, path)
    [document] = store.list_documents(tova)
    stored = document.clean_text
    for secret in ("Maya", "Okafor", "7700", "maya.okafor", "+49 151", "23456789", "555-0132", "@maya_o",
                   "0151 2345"):
        assert secret not in stored, secret
    assert "Tova" not in stored or True  # the author's own name may stay
    assert "[phone]" in stored and "[email]" in stored and "[name]" in stored
    assert "The 2024 plan is v1.2.3" in stored  # years and versions are not phone numbers
    assert [line.speaker for line in parse_chat(stored)] == ["them", "them 2", "me"]
    assert result.source_url.startswith(CHAT_SOURCE_PREFIX) and "Maya" not in result.source_url


def test_a_chat_export_is_imported_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "chat.txt"
    path.write_text(WHATSAPP["android_gb"][0], encoding="utf-8")
    with pytest.raises(TwinError, match="--private"):
        read_export(path)
    telegram = tmp_path / "result.json"
    telegram.write_text(json.dumps(_telegram_export()), encoding="utf-8")
    with pytest.raises(TwinError, match="--private"):
        read_export(telegram)


def _prose(store: DocumentStore, author) -> None:  # noqa: ANN001
    from conftest import load_corpus
    from twin.domain import RawDocument

    for i, item in enumerate(load_corpus("brandur_leach_atoms", 24)):
        raw = RawDocument(url=f"https://example.com/atoms/{i}", platform=Platform.x, kind=Kind.post,
                          title=item["title"], text=item["text"])
        store.upsert_document(author, None, raw, item["text"])


def test_conversations_train_but_are_never_retrieved_and_removal_takes_everything(
    tmp_path: Path, store: DocumentStore, settings: Settings, tova, corpora_dir: Path
) -> None:
    from ingestion.pipeline import IngestionDeps, resume_embedding
    from twin.vectors import Embedder, VectorStore

    _prose(store, tova)
    path = tmp_path / "WhatsApp Chat with Maya Okafor.txt"
    path.write_text(WHATSAPP["android_us"][0], encoding="utf-8")
    result = import_chat_export(store, tova, path)
    assert result.report.new == 2
    again = import_chat_export(store, tova, path)  # the same export again changes nothing
    assert again.report.unchanged == 2 and again.source_url == result.source_url
    chats = store.list_documents(tova, kind=Kind.chat)
    assert len(chats) == 2 and all(d.embedded_version == d.version for d in chats)
    # nothing of a chat is left for `twin ingest` to embed
    assert not [d for d in store.documents_needing_embedding(tova) if d.kind is Kind.chat]

    vectors = VectorStore(settings, Embedder(settings))
    try:
        # the pipeline's own catch-up embeds the posts, and nothing of the chats
        embedded = asyncio.run(resume_embedding(IngestionDeps(settings=settings, store=store, vectors=vectors), tova))
        assert embedded > 0 and vectors.count(tova) == embedded
        hits = vectors.search(tova, "leakiest joint photo thermos harbour low tide kayak", k=20)
        assert hits and not [h for h in hits if h.kind is Kind.chat or "leakiest" in h.text]

        settings.train.min_words = 500
        settings.train.max_length = 256
        settings.train.dpo = False
        out = settings.datasets_dir / author_folder(tova) / "job1"
        bundle = build_datasets(store, "tova", settings, out)
        chat_examples = [ex for ex in bundle.splits["train"] if ex.kind is Kind.chat]
        assert [ex.answer for ex in chat_examples] == [
            "yes! leaving at 7, low tide is at 8",
            "that photo is the leakiest joint I have ever seen\nsecond line of the same message",
            # "happy new year [name], the kayak survived" opens its conversation: nothing to answer
        ]
        assert chat_examples[0].prompt == [{"role": "user", "content":
                                            "are you still coming to the harbour tomorrow?\nbring the good thermos"}]
        assert [m["role"] for m in chat_examples[1].prompt] == ["user", "assistant", "user"]
        assert chat_examples[1].prompt[-1]["content"] == "[media]"
        stats = json.loads(bundle.files["stats"].read_text())
        assert stats["private_sources"] == [result.source_url] and stats["chat_examples"] == 2
        # posts keep their splits whether or not a chat was imported (chats are split on their own)
        assert all(ex.kind is not Kind.chat for split in ("validation", "test") for ex in bundle.splits[split])

        adapter = store.register_adapter(tova, str(tmp_path / "v1"), "base", bundle.dataset_hash, {},
                                         {"dataset": {n: s.model_dump() for n, s in bundle.stats.items()}})
        assert private_sources(store, tova)[0]["adapters"] == [adapter.version]

        removal = forget_private_source(store, tova, result.source_url, settings.datasets_dir, vectors)
    finally:
        vectors.close()
    assert removal.documents == 2 and removal.adapters == [1]
    assert removal.datasets == [str(out)] and not out.exists()
    assert not store.list_documents(tova, kind=Kind.chat)
    assert all(not s.url.startswith(CHAT_SOURCE_PREFIX) for s in store.list_sources(tova))
    assert len(store.list_documents(tova)) == 24  # the author's posts stay

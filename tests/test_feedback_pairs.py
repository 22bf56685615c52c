"""The twin learns from the inbox: edits and approve/discard choices become DPO preference pairs.

Through the real HTTP API (Litestar TestClient, real SQLite) and the real dataset builder with the real
tokenizer: an edit stores (edited over original), approving one draft and discarding another of the same
run stores (approved over discarded), the counts are shown, and the next training's DPO file holds them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from litestar.testing import TestClient

from serving.app import create_app
from training.dataset import build_datasets
from twin.domain import Kind, Platform, RawDocument
from twin.settings import Settings
from twin.store import DocumentStore

ORIGINAL = "Leaks live at the joints. Here is a post the twin wrote about schema contracts and ferries."
EDITED = "🌊 Low tide thought: a schema is a promise you make to a stranger.\n\nKeep your pipes dry. 🛶"


@pytest.fixture
def client(settings: Settings):
    with TestClient(create_app(settings, with_model=False)) as test_client:
        yield test_client


def _drafts(settings: Settings) -> tuple[DocumentStore, list[int]]:
    store = DocumentStore.from_url(settings.resolved_database_url)
    author = store.add_author("tova")
    run = store.create_run(author, {"prompt": "schema contracts", "platform": "linkedin"})
    ids = [store.add_draft(author, Platform.linkedin, text, run_id=run.id).id
           for text in (ORIGINAL, "Second candidate: boring is a feature.", "Third candidate, too long-winded.")]
    return store, ids


def test_inbox_edits_and_choices_become_dpo_pairs(client: TestClient, settings: Settings, corpora_dir: Path) -> None:
    store, (edited, approved, discarded) = _drafts(settings)
    try:
        response = client.patch(f"/api/drafts/{edited}", json={"text": EDITED})
        assert response.status_code == 200 and response.json()["text"] == EDITED
        # a second edit keeps the twin's original as the rejected side
        client.patch(f"/api/drafts/{edited}", json={"text": EDITED + "\n\n#DataEngineering"})
        assert client.patch(f"/api/drafts/{approved}", json={"status": "approved"}).status_code == 200
        assert client.patch(f"/api/drafts/{discarded}", json={"status": "discarded"}).status_code == 200

        feedback = client.get("/api/drafts/feedback", params={"author": "tova"}).json()
        assert feedback["counts"] == {"edit": 1, "choice": 1}
        pairs = {pair["kind"]: pair for pair in feedback["pairs"]}
        assert pairs["edit"]["chosen"] == EDITED + "\n\n#DataEngineering"
        assert pairs["edit"]["rejected"] == ORIGINAL and pairs["edit"]["brief"] == "schema contracts"
        assert (pairs["choice"]["chosen_draft_id"], pairs["choice"]["rejected_draft_id"]) == (approved, discarded)

        # changing one's mind takes the choice back; an edit back to the original is no preference
        client.patch(f"/api/drafts/{discarded}", json={"status": "new"})
        client.patch(f"/api/drafts/{edited}", json={"text": ORIGINAL})
        assert client.get("/api/drafts/feedback", params={"author": "tova"}).json()["counts"] == {"edit": 0, "choice": 0}
        client.patch(f"/api/drafts/{edited}", json={"text": EDITED})
        client.patch(f"/api/drafts/{discarded}", json={"status": "discarded"})

        page = client.get("/inbox", params={"author": "tova"})
        assert page.status_code == 200
        assert "<strong>2</strong>" in page.text and "1 edited, 1" in page.text

        # the next training run's DPO data holds both, ahead of any base-model pair
        from conftest import load_corpus

        author = store.get_author("tova")
        for i, item in enumerate(load_corpus("brandur_leach_atoms", 24)):
            store.upsert_document(author, None, RawDocument(
                url=f"https://example.com/atoms/{i}", platform=Platform.x, kind=Kind.post, title=item["title"],
                text=item["text"]), item["text"])
        settings.train.min_words = 500
        settings.train.max_length = 256
        settings.train.dpo = True
        settings.train.dpo_max_pairs = 0  # the --feedback-only run: no base-model answers to generate
        bundle = build_datasets(store, "tova", settings, settings.datasets_dir / "tova" / "fb",
                                rejected_fn=lambda *_: pytest.fail("no generation wanted"))
    finally:
        store.close()
    assert [pair.feedback_id is not None for pair in bundle.dpo] == [True, True]
    rows = [json.loads(line) for line in bundle.files["dpo"].read_text().splitlines()]
    assert rows[0]["chosen"] == [{"role": "assistant", "content": EDITED}]
    assert rows[0]["rejected"] == [{"role": "assistant", "content": ORIGINAL}]
    assert rows[0]["prompt"][-1]["role"] == "user" and "LinkedIn post" in rows[0]["prompt"][-1]["content"]
    assert "schema contracts" in rows[0]["prompt"][-1]["content"]
    assert rows[1]["chosen"][0]["content"] == "Second candidate: boring is a feature."
    assert json.loads(bundle.files["stats"].read_text())["feedback_pairs"] == 2

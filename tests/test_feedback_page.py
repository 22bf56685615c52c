"""The inbox teaches the twin, in real Chromium against the real app (real SQLite, no model service): a draft
is edited in the page's edit form, another draft of the same run approved and a third discarded; the
preference pairs are stored, the page counts them, and the next training's dataset puts them first in the
DPO pairs, ahead of the base model's answers (generated for real by SmolLM2).

    .venv/bin/python -m pytest -m ui -p no:asyncio tests/test_feedback_page.py
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import MODELS_CACHE, corpus_rows
from web_support import chromium, live_app, screenshot

from training.dataset import build_datasets
from twin.domain import Kind, Platform, RawDocument
from twin.settings import Settings
from twin.store import DocumentStore

pytestmark = pytest.mark.ui

AUTHOR = "tova"
ORIGINAL = "Schema contracts matter. The twin's first try, stiff and a little long, about ferries and pipes."
EDITED_LINES = ["A schema is a promise you make to a stranger.", "", "Keep your pipes dry."]
APPROVED = "Boring is a feature: the schema you never think about is the one that works."
DISCARDED = "In today's fast-paced world, schemas are more important than ever before."


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as launched:
        yield launched


def test_inbox_edits_and_choices_in_the_page_become_the_first_dpo_pairs(browser, tmp_path: Path) -> None:
    rows = corpus_rows("brandur_leach_atoms", 16)
    settings = Settings(data_dir=tmp_path / "data", models_path=MODELS_CACHE,
                        allowed_hosts=["127.0.0.1", "localhost"], _env_file=None)
    with live_app(settings, with_model=False) as url:
        store = DocumentStore.from_url(settings.resolved_database_url)
        try:
            author = store.add_author(AUTHOR)
            for i, item in enumerate(rows):
                store.upsert_document(author, None, RawDocument(
                    url=f"https://example.com/atoms/{i}", platform=Platform.x, kind=Kind.post,
                    title=item["title"], text=item["text"]), item["text"])
            run = store.create_run(author, {"prompt": "schema contracts", "platform": "linkedin"})
            edited, approved, discarded = (store.add_draft(author, Platform.linkedin, text, run_id=run.id).id
                                           for text in (ORIGINAL, APPROVED, DISCARDED))

            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{url}/inbox?author={AUTHOR}")
            assert page.inner_text("#feedback-count strong") == "0"

            # Edit in the page's form (a textarea: the browser sends its newlines as CRLF).
            page.click(f"#draft-{edited} button:has-text('Edit')")
            page.fill(f"#draft-{edited} textarea[name=text]", "\n".join(EDITED_LINES))
            page.click(f"#draft-{edited} button:has-text('Save')")
            page.wait_for_selector(f"#draft-{edited} .draft-text:has-text('Keep your pipes dry.')")

            # Approve one of the run's other drafts and discard the last.
            page.click(f"#draft-{approved} button:has-text('Approve')")
            page.wait_for_selector(f"#draft-{approved}[data-status=approved]")
            page.click(f"#draft-{discarded} button:has-text('Discard')")
            page.wait_for_selector(f"#draft-{discarded}[data-status=discarded]")

            # The page counts both preferences.
            page.reload()
            assert page.inner_text("#feedback-count strong") == "2"
            assert "1 edited, 1 approved over discarded" in page.inner_text("#feedback-count")
            screenshot(page, "inbox-feedback")
            page.close()

            # They are stored: the edit (edited text over the twin's) and the choice (approved over discarded).
            pairs = store.list_feedback_pairs(author)
            assert [(p.kind, p.chosen, p.rejected) for p in pairs] == [
                ("edit", "\n".join(EDITED_LINES), ORIGINAL),
                ("choice", APPROVED, DISCARDED),
            ]
            assert (pairs[1].chosen_draft_id, pairs[1].rejected_draft_id) == (approved, discarded)
            assert all(p.brief == "schema contracts" for p in pairs)

            # The next training's DPO data holds them first, then the base model's answers.
            settings.train.min_words = 500
            settings.train.max_length = 128
            settings.train.dpo = True
            settings.train.dpo_max_pairs = 2
            settings.train.dpo_max_new_tokens = 8
            bundle = build_datasets(store, AUTHOR, settings, tmp_path / "dataset")
        finally:
            store.close()

    assert [pair.feedback_id for pair in bundle.dpo[:2]] == [p.id for p in pairs]
    base_pairs = bundle.dpo[2:]
    assert base_pairs and all(pair.feedback_id is None for pair in base_pairs)
    written = [json.loads(line) for line in bundle.files["dpo"].read_text().splitlines()]
    assert written[0]["chosen"] == [{"role": "assistant", "content": "\n".join(EDITED_LINES)}]
    assert written[0]["rejected"] == [{"role": "assistant", "content": ORIGINAL}]
    assert written[1]["chosen"][0]["content"] == APPROVED and written[1]["rejected"][0]["content"] == DISCARDED
    assert json.loads(bundle.files["stats"].read_text())["feedback_pairs"] == 2

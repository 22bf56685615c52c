"""Chat on the page with the real twin (SmolLM2 on a local Ray Serve, the LangGraph agent): the steps
stream in, the draft shows its scores and sources, and it lands in the inbox, where it is approved,
edited, copied, discarded and filtered. Small generations (48 tokens, no revision round) keep it to
minutes on a CPU."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from conftest import MODELS_CACHE
from twin.settings import Settings
from web_support import chromium, demo_site, live_app, screenshot

pytestmark = [pytest.mark.ui, pytest.mark.slow]

RUN_TIMEOUT_MS = 480_000


@pytest.fixture(scope="module")
def twin_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    """The app with the model, and the demo author collected from the demo site through the API."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), models_path=MODELS_CACHE,
                        allowed_hosts=["127.0.0.1", "localhost"], _env_file=None)
    settings.serve.max_new_tokens = 48
    settings.agent.max_revisions = 0
    with demo_site(tmp_path_factory.mktemp("demo")) as demo, live_app(settings, with_model=True,
                                                                      ready_timeout_s=900) as url:
        httpx.post(url + "/api/authors", json={"name": "tova"}).raise_for_status()
        httpx.post(url + "/api/authors/tova/sources", json={"url": demo.feed_url}).raise_for_status()
        job = httpx.post(url + "/api/authors/tova/ingest", json={}).json()
        deadline = time.monotonic() + 300
        while (state := httpx.get(f"{url}/api/jobs/{job['id']}").json())["status"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert state["status"] == "succeeded" and state["result"]["new"] == demo.inventory.blog_articles, state
        yield url, demo


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as launched:
        yield launched


def test_chat_streams_steps_and_the_draft_lands_in_the_inbox(browser, twin_app):
    url, _ = twin_app
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
    page = context.new_page()
    page.goto(url + "/chat?author=tova")
    assert page.locator("select[name=author]").input_value() == "tova"
    page.select_option("select[name=platform]", "linkedin")
    page.fill("input[name=drafts]", "1")
    page.fill("textarea[name=prompt]", "A short post on why a runbook beats heroics during an incident.")
    page.click("button:has-text('Draft')")

    # The agent's steps stream in while it works, then the draft with its scores and sources.
    page.wait_for_selector(".steps li[data-node=retrieve]", timeout=RUN_TIMEOUT_MS)
    screenshot(page, "chat-streaming")
    page.wait_for_selector("#run-drafts .draft", timeout=RUN_TIMEOUT_MS)
    page.wait_for_selector(".run-done .alert.ok", timeout=60_000)
    screenshot(page, "chat-done")
    nodes = page.locator(".steps li").evaluate_all("items => items.map(li => li.dataset.node)")
    assert nodes.index("plan") < nodes.index("retrieve") < nodes.index("draft") < nodes.index("final"), nodes
    card = page.locator("#run-drafts .draft").first
    draft_id = int(card.get_attribute("data-draft-id"))
    text = card.locator(".draft-text").inner_text().strip()
    assert text
    assert card.locator(".scores .chip").count() >= 1
    card.locator(".sources summary").click()
    sources = card.locator(".sources li a").evaluate_all("links => links.map(a => a.href)")
    assert sources and all(s.startswith(twin_app[1].base_url + "/blog/") for s in sources), sources
    assert "in the inbox" in page.inner_text(".run-done")

    # The inbox has it, as new, from chat.
    page.goto(url + "/inbox")
    inbox_card = page.locator(f"#draft-{draft_id}")
    inbox_card.wait_for()
    assert inbox_card.get_attribute("data-status") == "new"
    assert inbox_card.locator(".draft-text").inner_text().strip() == text

    # Copy puts the text on the clipboard.
    inbox_card.locator("button.copy").click()
    page.wait_for_selector(f"#draft-{draft_id} button.copy:has-text('Copied')")
    assert page.evaluate("navigator.clipboard.readText()").strip() == text

    # Edit and save.
    inbox_card.locator("text=Edit").click()
    page.fill(f"#draft-{draft_id} textarea[name=text]", text + "\n\nEdited by a human.")
    page.click(f"#draft-{draft_id} button:has-text('Save')")
    page.wait_for_selector(f"#draft-{draft_id} .draft-text:has-text('Edited by a human.')")
    assert httpx.get(f"{url}/api/drafts/{draft_id}").json()["text"].endswith("Edited by a human.")

    # Approve, then the filters: approved shows it, new does not, another platform does not.
    page.click(f"#draft-{draft_id} button:has-text('Approve')")
    page.wait_for_selector(f"#draft-{draft_id}[data-status=approved]")
    page.select_option("select[name=status]", "approved")
    page.wait_for_selector(f"#draft-{draft_id}")
    page.select_option("select[name=status]", "new")
    page.locator(f"#draft-{draft_id}").wait_for(state="detached")
    page.select_option("select[name=status]", "")
    page.select_option("select[name=platform]", "x")
    page.locator(f"#draft-{draft_id}").wait_for(state="detached")
    page.select_option("select[name=platform]", "linkedin")
    page.wait_for_selector(f"#draft-{draft_id}")
    assert "platform=linkedin" in page.url  # filters are in the address, so a reload keeps them
    screenshot(page, "inbox")

    # Discard.
    page.click(f"#draft-{draft_id} button:has-text('Discard')")
    page.wait_for_selector(f"#draft-{draft_id}[data-status=discarded]")
    assert httpx.get(f"{url}/api/drafts/{draft_id}").json()["status"] == "discarded"
    context.close()


def test_a_scheduled_run_drafts_into_the_inbox(browser, twin_app):
    url, _ = twin_app
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(url + "/schedules")
    page.fill("textarea[name=topics]", "what sea kayaking teaches about incidents")
    page.uncheck("input[name=collect]")
    page.click("text=Add schedule")
    card = page.locator(".schedule").first
    card.wait_for()
    card.locator("text=Run now").click()
    page.wait_for_selector(".schedule .runs .badge.succeeded", timeout=RUN_TIMEOUT_MS)
    screenshot(page, "schedule-ran")
    page.click(".schedule .runs a")  # the run's drafts, in the inbox filtered to scheduled ones
    page.wait_for_selector(".draft")
    assert "origin=schedule" in page.url
    cards = page.locator(".draft")
    assert cards.count() >= 1
    assert all("scheduled" in t for t in cards.locator(".draft-head").all_inner_texts())
    screenshot(page, "inbox-scheduled")
    page.close()

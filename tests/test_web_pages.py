"""The web page in real Chromium against the real app (no model needed here): set up the demo author from
the demo site, collect with live progress, see what was collected and what failed, import an export,
manage schedules, and log in when a token is configured. Chat and the inbox: test_web_chat.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import MODELS_CACHE
from twin.settings import Settings
from web_support import chromium, demo_site, live_app, screenshot

pytestmark = pytest.mark.ui

JOB_TIMEOUT_MS = 240_000


def page_settings(data_dir: Path, **overrides: object) -> Settings:
    settings = Settings(data_dir=data_dir, models_path=MODELS_CACHE, allowed_hosts=["127.0.0.1", "localhost"],
                        _env_file=None, **overrides)
    settings.schedule.timezone = "UTC"
    return settings


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    with demo_site(tmp_path_factory.mktemp("demo")) as built:
        yield built


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    with live_app(page_settings(tmp_path / "data"), with_model=False) as url:
        yield url


def test_set_up_author_collect_and_see_what_was_collected(browser, demo, app_url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(app_url + "/")
    assert page.locator("script[src^='http']").count() == 0  # every asset is served by the app itself
    page.fill("input[name=name]", "tova")
    page.click("text=Create")
    page.wait_for_url(app_url + "/authors/tova")

    # Sources: the demo blog's feed, and a feed that does not exist (its failure must show with a reason).
    page.fill("input[name=url]", demo.feed_url)
    page.click("text=Add source")
    page.wait_for_selector(f"#sources td.url >> text={demo.feed_url}")
    missing = demo.base_url + "/no-such-feed.xml"
    page.fill("input[name=url]", missing)
    page.select_option("select[name=platform]", "blog")
    page.click("text=Add source")
    page.wait_for_selector(f"#sources td.url >> text={missing}")
    assert page.locator("#sources tbody tr").count() == 2

    # An invalid URL is refused with the reason in the flash area, and nothing is added.
    page.fill("input[name=url]", "ftp://example.org/feed")
    page.eval_on_selector("input[name=url]", "e => e.type = 'text'")  # past the browser's own URL check
    page.click("text=Add source")
    page.wait_for_selector("#flash .alert.error")
    assert "http(s)" in page.inner_text("#flash")
    assert page.locator("#sources tbody tr").count() == 2

    # Collect: the job panel appears running and updates itself until it is done.
    page.click("#collect-button")
    panel = page.locator(".job[data-kind=ingest]").first
    panel.wait_for()
    seen_running = panel.get_attribute("data-status") == "running"
    page.wait_for_selector(".job[data-kind=ingest][data-status=succeeded]", timeout=JOB_TIMEOUT_MS)
    screenshot(page, "author-collected")
    assert seen_running
    text = panel.inner_text()
    new_count = int(re.search(r"(\d+)\s+new", text).group(1))
    assert new_count == demo.inventory.blog_articles
    assert "problem" in text and "no-such-feed.xml" in text  # the failed source, with its reason
    reason = panel.locator(".problems li").first.inner_text()
    assert "no-such-feed.xml" in reason and "—" in reason and len(reason.split("—", 1)[1].strip()) > 3

    # What was collected: the documents list refreshed itself when the job finished.
    page.wait_for_selector("#documents table.documents tbody tr")
    assert page.locator("#documents table.documents tbody tr").count() == demo.inventory.blog_articles
    assert "Blog" in page.inner_text("#documents .chips")

    # An export upload: the LinkedIn ZIP, through the same live job panel.
    page.set_input_files("input[type=file][name=data]", str(demo.linkedin_zip))
    page.click("text=Upload and import")
    page.wait_for_selector(".job[data-kind=import][data-status=succeeded]", timeout=JOB_TIMEOUT_MS)
    page.wait_for_selector("#documents .chips >> text=LinkedIn")
    page.click("#documents .chips a:has-text('LinkedIn')")
    page.wait_for_selector("#documents .chip.on:has-text('LinkedIn')")
    platforms = page.locator("#documents table.documents tbody tr td:nth-child(2)").all_inner_texts()
    assert platforms and set(platforms) == {"LinkedIn"}
    screenshot(page, "author-linkedin-import")

    # Removing a source takes its documents with it.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"#sources tr:has-text('{demo.feed_url}') >> text=Remove")
    page.locator(f"#sources tr:has-text('{demo.feed_url}')").wait_for(state="detached")
    assert page.locator("#sources tbody tr").count() == 2  # the missing feed and the LinkedIn export
    page.click("#documents .chips a:has-text('all')")
    page.wait_for_function(
        "!Array.from(document.querySelectorAll('#documents tbody td:nth-child(2)')).some(td => td.innerText === 'Blog')"
    )
    page.close()


def test_schedules_page(browser, app_url):
    httpx.post(app_url + "/api/authors", json={"name": "tova"}).raise_for_status()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(app_url + "/schedules")
    page.fill("input[name=cron]", "30 8 * * 1-5")
    page.check("input[name=platforms][value=x]")
    page.fill("input[name=drafts]", "2")
    page.fill("textarea[name=topics]", "postgres as a queue\non-call without heroics")
    page.uncheck("input[name=collect]")
    page.click("text=Add schedule")
    card = page.locator(".schedule").first
    card.wait_for()
    assert "LinkedIn, X" in card.inner_text() and "30 8 * * 1-5" in card.inner_text()
    assert "postgres as a queue; on-call without heroics" in card.inner_text()
    [schedule] = httpx.get(app_url + "/api/schedules").json()
    assert (schedule["drafts"], schedule["platforms"], schedule["collect"]) == (2, ["linkedin", "x"], False)

    # A bad crontab is refused with the reason.
    page.fill("input[name=cron]", "every monday")
    page.click("text=Add schedule")
    page.wait_for_selector("#flash .alert.error")
    assert "crontab" in page.inner_text("#flash")
    screenshot(page, "schedules")

    page.once("dialog", lambda dialog: dialog.accept())
    card.locator("text=Remove").click()
    page.wait_for_selector("text=No schedules yet.")
    assert httpx.get(app_url + "/api/schedules").json() == []
    page.close()


def test_login_sets_the_cookie_the_pages_and_api_need(browser, tmp_path):
    settings = page_settings(tmp_path / "data", serve={"api_token": "s3cret-token"})
    with live_app(settings, with_model=False) as url:
        assert httpx.get(url + "/api/authors").status_code == 401
        assert httpx.get(url + "/api/authors", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        assert httpx.get(url + "/static/app.css").status_code == 200

        context = browser.new_context()
        page = context.new_page()
        page.goto(url + "/inbox")
        page.wait_for_url(re.compile(r"/login\?next=/inbox$"))
        page.fill("input[name=token]", "wrong")
        page.click("button[type=submit]")
        page.wait_for_selector(".alert.error")
        assert "not the service's API token" in page.inner_text(".alert.error")
        page.fill("input[name=token]", "s3cret-token")
        page.click("button[type=submit]")
        page.wait_for_url(url + "/inbox")
        assert page.locator("h1").inner_text() == "Inbox"
        cookie = next(c for c in context.cookies() if c["name"] == "twin_token")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        # The cookie also opens the JSON API to the page (same origin), and logging out closes it again.
        assert page.evaluate("fetch('/api/authors').then(r => r.status)") == 200
        page.click("text=Log out")
        page.wait_for_url(re.compile(r"/login$"))
        assert page.evaluate("fetch('/api/authors').then(r => r.status)") == 401
        page.goto(url + "/login?next=//evil.example/")
        assert page.locator("input[name=next]").get_attribute("value") == "/"
        context.close()

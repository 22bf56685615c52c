"""In real Chromium: a page from another origin (another port on 127.0.0.1: same site; `localhost`: another
site) posts to the service the ways a browser allows without asking (a text/plain form dressed as JSON, a
plain form to the page, a no-cors fetch): nothing changes. The service's own page still works."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import MODELS_CACHE
from twin.settings import Settings
from web_support import chromium, live_app
from webserver import serve_site

pytestmark = pytest.mark.ui

ATTACK = """<!doctype html><html><head><title>loading</title></head><body>
<form id="json" method="post" action="{svc}/api/authors" enctype="text/plain">
  <input name='{{"name": "mallory", "x": "' value='"}}'></form>
<form id="page" method="post" action="{svc}/authors"><input name="name" value="mallory-page"></form>
<script>
fetch("{svc}/api/authors", {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}},
                             body: '{{"name": "mallory-fetch"}}'}})
  .then(() => document.title = "sent", () => document.title = "failed");
</script></body></html>"""


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as launched:
        yield launched


def test_another_origin_cannot_change_anything(browser, tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data", models_path=MODELS_CACHE, allowed_hosts=["127.0.0.1"],
                        _env_file=None)
    with live_app(settings, with_model=False) as svc, serve_site() as site:
        site.add("/attack.html", ATTACK.format(svc=svc))
        page = browser.new_page()
        for attacker in (site.url("/attack.html"), site.url("/attack.html", host="localhost")):
            for form in ("json", "page"):
                page.goto(attacker)
                page.wait_for_function("document.title !== 'loading'")  # the fetch went out
                with page.expect_navigation() as navigation:
                    page.evaluate(f"document.getElementById('{form}').submit()")
                assert navigation.value.status == 403, (attacker, form, navigation.value.status)
        page.close()
        assert httpx.get(svc + "/api/authors").json() == []

        # The service's own page, same origin, works.
        page = browser.new_page()
        page.goto(svc + "/")
        page.fill("input[name=name]", "tova")
        page.click("text=Create")
        page.wait_for_url(svc + "/authors/tova")
        page.close()
        assert [a["name"] for a in httpx.get(svc + "/api/authors").json()] == ["tova"]

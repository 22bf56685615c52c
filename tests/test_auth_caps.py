"""Auth and limits: no token needed on loopback; on any other address no start without a token; with a
token every API call and every page need it (bearer header or the login cookie); request body size, links
per request and concurrent runs are capped with clear errors."""

from __future__ import annotations

import re
import threading
import time

import pytest
from litestar.testing import TestClient
from typer.testing import CliRunner

from serving.app import create_app
from serving.auth import TOKEN_COOKIE
from serving.security import login_cookie_value
from twin.domain import TwinError
from twin.settings import Settings

TOKEN = "t0ken-for-tests"
PUBLIC = ("/login", "/static/", "/api/health")


def test_loopback_needs_no_token_and_other_addresses_refuse_to_start_without_one(settings: Settings):
    create_app(settings, with_model=False)  # 127.0.0.1 by default: fine
    for host in ("0.0.0.0", "192.168.1.20", "::"):
        settings.serve.host = host
        with pytest.raises(TwinError, match="without an API token"):
            create_app(settings, with_model=False)
    settings.serve.api_token = TOKEN
    create_app(settings, with_model=False)


def test_twin_serve_refuses_a_public_address_without_a_token(settings: Settings, monkeypatch: pytest.MonkeyPatch):
    from cli import app
    from twin.settings import get_settings

    monkeypatch.setenv("TWIN_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "8799"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "without an API token" in result.output and "TWIN_SERVE__API_TOKEN" in result.output


def _csrf(client: TestClient) -> dict[str, str]:
    """The page's CSRF header, as the page hands it to htmx (the login page is public)."""
    token = re.search(r'"X-CSRFToken": "([0-9a-f]+)"', client.get("/login").text).group(1)
    return {"X-CSRFToken": token}


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+):(\w+)\}", lambda m: "1" if m.group(2) == "int" else "x", path)


def test_with_a_token_every_api_call_and_page_needs_it(settings: Settings):
    settings.serve.host = "0.0.0.0"
    settings.serve.api_token = TOKEN
    app = create_app(settings, with_model=False)
    checked = []
    with TestClient(app) as client:
        csrf = _csrf(client)  # past the page's CSRF check: the token is what is under test
        for route in app.routes:
            path = _concrete(route.path)
            if path.startswith(PUBLIC) or path.startswith("/schema"):
                continue
            for method in sorted(getattr(route, "methods", ())):
                if method in ("HEAD", "OPTIONS"):
                    continue
                response = client.request(method, path, follow_redirects=False, headers=csrf)
                if path.startswith(("/api/", "/v1/")):
                    assert response.status_code == 401, (method, path, response.status_code)
                    assert "API token" in response.json()["detail"]
                else:  # a page sends the browser to the login, and back afterwards
                    assert response.status_code in (303, 401), (method, path, response.status_code)
                    if response.status_code == 303:
                        assert response.headers["location"].startswith("/login?next=")
                    else:
                        assert response.headers["hx-redirect"].startswith("/login?next=")
                checked.append((method, path))
        assert ("GET", "/api/drafts") in checked and ("POST", "/api/schedules") in checked
        assert ("GET", "/inbox") in checked and ("POST", "/chat") in checked and ("GET", "/") in checked

        # The token opens them: as a bearer header, or as the login cookie.
        assert client.get("/api/authors", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert client.get("/api/authors", headers={"Authorization": "Bearer wrong"}).status_code == 401
        client.cookies.set(TOKEN_COOKIE, login_cookie_value(app.state.serve_secret, TOKEN))
        assert client.get("/inbox").status_code == 200
        assert client.get("/api/drafts").status_code == 200
        client.cookies.set(TOKEN_COOKIE, "wrong")
        assert client.get("/api/drafts").status_code == 401
        client.cookies.clear()
        # Public: the login page, the page's assets and the health check.
        assert client.get("/login").status_code == 200
        assert client.get("/static/htmx.min.js").status_code == 200
        assert client.get("/api/health").status_code == 200
        csrf = _csrf(client)
        # A login with the wrong token sets nothing; the right one sets an HttpOnly, SameSite=Strict cookie.
        wrong = client.post("/login", data={"token": "nope", "next": "/inbox"}, follow_redirects=False,
                            headers=csrf)
        assert wrong.status_code == 401 and TOKEN_COOKIE not in wrong.cookies
        right = client.post("/login", data={"token": TOKEN, "next": "/inbox"}, follow_redirects=False,
                            headers=csrf)
        assert right.status_code == 303 and right.headers["location"] == "/inbox"
        set_cookie = right.headers["set-cookie"]
        assert set_cookie.startswith(f"{TOKEN_COOKIE}=") and TOKEN not in set_cookie  # an HMAC of it
        assert "HttpOnly" in set_cookie and "samesite=strict" in set_cookie.lower()
        offsite = client.post("/login", data={"token": TOKEN, "next": "//evil.example/"}, follow_redirects=False,
                              headers=csrf)
        assert offsite.headers["location"] == "/"


def test_request_body_size_is_capped(settings: Settings):
    settings.serve.max_body_bytes = 50_000
    settings.serve.max_upload_bytes = 50_000  # uploads stream to disk under their own cap
    with TestClient(create_app(settings, with_model=False)) as client:
        client.post("/api/authors", json={"name": "ada"})
        too_big = client.post("/api/authors/ada/import", files={"data": ("x.zip", b"0" * 60_000)})
        assert too_big.status_code == 413
        page_upload = client.post("/authors/ada/import", files={"data": ("x.zip", b"0" * 60_000)},
                                  headers={"HX-Request": "true", **_csrf(client)})
        assert page_upload.status_code == 413


def test_links_per_request_and_prompt_length_are_capped_with_clear_errors(settings: Settings):
    settings.serve.max_links = 2
    settings.serve.max_prompt_chars = 100
    links = [f"https://example.org/{i}" for i in range(3)]
    with TestClient(create_app(settings, with_model=False)) as client:
        client.post("/api/authors", json={"name": "ada"})
        chat = client.post("/api/chat", json={"author": "ada", "prompt": "hi", "links": links})
        assert chat.status_code == 422 and "Too many links: 3 given, at most 2" in chat.json()["detail"]
        long = client.post("/api/chat", json={"author": "ada", "prompt": "x" * 101})
        assert long.status_code == 422 and "too long" in long.json()["detail"]
        ingest = client.post("/api/authors/ada/ingest", json={"urls": links})
        assert ingest.status_code == 400 and "At most 2 links" in ingest.json()["detail"]
        # The page's chat form says the same in its flash area.
        page = client.post("/chat", data={"author": "ada", "prompt": "hi", "links": "\n".join(links),
                                          "platform": "linkedin", "drafts": "1"},
                           headers={"HX-Request": "true", **_csrf(client)})
        assert page.status_code == 422 and "Too many links" in page.text
        assert page.headers["hx-retarget"] == "#flash"


@pytest.mark.slow
def test_concurrent_runs_are_capped_with_429(settings: Settings):
    """One real run in progress (the real model on a local Ray) takes the only slot: the next gets 429."""
    settings.serve.max_concurrent_runs = 1
    settings.serve.max_new_tokens = 48
    settings.agent.max_revisions = 0
    with TestClient(create_app(settings, with_model=True), timeout=600) as client:
        deadline = time.monotonic() + 600
        while client.get("/api/health").json()["model"] != "ready":
            assert client.get("/api/health").json()["model"] != "failed", client.get("/api/health").json()
            assert time.monotonic() < deadline, "the model did not start"
            time.sleep(1)
        client.post("/api/authors", json={"name": "ada"})
        body = {"author": "ada", "prompt": "A short post about boring queues.", "platform": "x"}
        first: dict = {}
        running = threading.Thread(target=lambda: first.update(response=client.post("/api/chat", json=body)))
        running.start()
        try:
            slot = client.app.state.service.run_slot()
            deadline = time.monotonic() + 60
            while not slot.locked():  # until the first run holds the slot
                assert running.is_alive() and time.monotonic() < deadline, first
                time.sleep(0.01)
            second = client.post("/api/chat", json=body)
            assert second.status_code == 429
            assert "runs are in progress" in second.json()["detail"] and second.headers.get("retry-after")
            page = client.post("/chat", data={**body, "drafts": "1", "links": ""},
                               headers={"HX-Request": "true", **_csrf(client)})
            assert page.status_code == 429 and "runs are in progress" in page.text
        finally:
            running.join(timeout=600)
        assert first["response"].status_code == 200, first["response"].text
        assert client.post("/api/chat", json=body).status_code == 200  # the slot is free again
    import ray

    # The service stopped the local Ray it started: Ray's processes die with the thread that started
    # them, and a process left holding a dead Ray is ended by Ray a minute later.
    assert not ray.is_initialized()

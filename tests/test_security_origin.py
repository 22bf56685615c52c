"""The service trusts no other web page: a foreign Host (DNS rebinding) gets 400, a cross-origin or
cross-site state change 403, a non-JSON body to a JSON endpoint 415, a page form without its CSRF token 403;
the login cookie holds no token; author names cannot become paths. Clients that are not browsers (no Origin,
no Sec-Fetch-Site) work as before."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient
from typer.testing import CliRunner

from conftest import MODELS_CACHE
from serving.app import create_app
from serving.auth import TOKEN_COOKIE
from serving.security import allowed_hosts
from twin.settings import Settings
from web_support import live_app

PORT = 8765
SELF = f"http://127.0.0.1:{PORT}"
TOKEN = "t0ken-for-security-tests"


def _settings(data_dir: Path, **serve: object) -> Settings:
    return Settings(data_dir=data_dir, models_path=MODELS_CACHE, allowed_hosts=["127.0.0.1", "localhost"],
                    serve={"port": PORT, "public_hosts": ["testserver.local"], **serve}, _env_file=None)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(tmp_path_factory.mktemp("data")), with_model=False)) as test_client:
        yield test_client


def _names(client: TestClient) -> set[str]:
    return {author["name"] for author in client.get("/api/authors").json()}


def _csrf_token(client: TestClient, path: str = "/") -> str:
    """The token the page hands the browser: in htmx's headers, or as the hidden field of a plain form."""
    page = client.get(path).text
    found = (re.search(r'"X-CSRFToken": "([0-9a-f]+)"', page)
             or re.search(r'name="_csrf_token" value="([0-9a-f]+)"', page))
    assert found, page[:500]
    return found.group(1)


def test_a_foreign_host_gets_400_and_no_data(client: TestClient):
    assert client.post("/api/authors", json={"name": "secret-author"}).status_code == 201
    for host in ("rebind.attacker.example", f"rebind.attacker.example:{PORT}", "127.0.0.1:9999", "localhost",
                 "127.0.0.2:8765"):
        for path in ("/api/authors", "/", "/api/authors/secret-author", "/schema/openapi.json"):
            response = client.get(path, headers={"Host": host})
            assert response.status_code == 400, (host, path, response.status_code)
            assert "secret-author" not in response.text
    for host in (f"127.0.0.1:{PORT}", f"localhost:{PORT}", f"[::1]:{PORT}", "testserver.local"):
        response = client.get("/api/authors", headers={"Host": host})
        assert response.status_code == 200 and "secret-author" in response.text, host


def test_the_allowed_hosts_follow_the_bound_address_port_and_public_names(tmp_path: Path):
    settings = _settings(tmp_path, host="0.0.0.0", port=9000,
                         public_hosts=["twin.example.com", "lan.example:8443"])
    hosts = allowed_hosts(settings)
    assert {"0.0.0.0:9000", "127.0.0.1:9000", "localhost:9000", "[::1]:9000", "twin.example.com",
            "twin.example.com:9000", "lan.example:8443"} == set(hosts)
    assert "[::1]:80" in allowed_hosts(_settings(tmp_path, host="::1", port=80, public_hosts=[]))


def test_a_cross_origin_state_change_gets_403_and_changes_nothing(client: TestClient):
    before = _names(client)
    for headers in (
        {"Origin": "http://127.0.0.2:8765"},
        {"Origin": "http://rebind.attacker.example"},
        {"Origin": "null"},
        {"Origin": f"http://localhost:{PORT + 1}"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # same site, another origin (e.g. another port)
        {"Origin": SELF, "Sec-Fetch-Site": "cross-site"},
    ):
        response = client.post("/api/authors", json={"name": "mallory"}, headers=headers)
        assert response.status_code == 403, (headers, response.text)
        assert "Cross-origin request refused" in response.json()["detail"]
        assert client.delete("/api/authors/x/sources", params={"url": "https://a.example"},
                             headers=headers).status_code == 403
        chat = client.post("/api/chat", json={"author": "x", "prompt": "hi"}, headers=headers)
        assert chat.status_code == 403
    assert _names(client) == before


def test_a_json_endpoint_refuses_a_body_a_browser_sends_without_asking(client: TestClient):
    before = _names(client)
    body = b'{"name": "mallory"}'
    for content_type in ("text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x"):
        response = client.post("/api/authors", content=body, headers={"Content-Type": content_type})
        assert response.status_code == 415, (content_type, response.text)
        assert "application/json" in response.json()["detail"]
    assert client.post("/api/chat", content=b'{"author": "x", "prompt": "hi"}',
                       headers={"Content-Type": "text/plain"}).status_code == 415
    assert _names(client) == before


def test_same_origin_browser_requests_and_plain_clients_work(client: TestClient):
    for number, headers in enumerate((
        {"Origin": SELF, "Sec-Fetch-Site": "same-origin"},
        {"Origin": f"http://localhost:{PORT}"},
        {"Sec-Fetch-Site": "none"},
        {},  # curl, the CLI: no Origin, no Sec-Fetch-Site
    )):
        response = client.post("/api/authors", json={"name": f"ok-{number}"}, headers=headers)
        assert response.status_code == 201, (headers, response.text)
    assert {"ok-0", "ok-1", "ok-2", "ok-3"} <= _names(client)
    # The export import stays multipart.
    upload = client.post("/api/authors/ok-0/import", files={"data": ("x.zip", b"not a zip")},
                         headers={"Origin": SELF, "Sec-Fetch-Site": "same-origin"})
    assert upload.status_code != 415, upload.text


def test_a_page_form_needs_its_csrf_token(client: TestClient):
    before = _names(client)
    same_origin = {"Origin": SELF, "Sec-Fetch-Site": "same-origin", "HX-Request": "true"}
    missing = client.post("/authors", data={"name": "forged"}, headers=same_origin)
    assert missing.status_code == 403 and "reload the page" in missing.text  # in the page's flash area
    assert missing.headers["hx-retarget"] == "#flash"
    token = _csrf_token(client)
    cookie = next(c for c in client.cookies.jar if c.name.startswith("twin_csrf"))
    wrong = client.post("/authors", data={"name": "forged"},
                        headers={**same_origin, "X-CSRFToken": token[:-4] + "0000"})
    assert wrong.status_code == 403
    assert _names(client) == before

    made = client.post("/authors", data={"name": "page author"},
                       headers={**same_origin, "X-CSRFToken": token})
    assert made.status_code == 201 and made.headers["hx-redirect"] == "/authors/page%20author"
    # A plain form sends the token as a hidden field.
    form = client.post("/authors", data={"name": "form author", "_csrf_token": token}, follow_redirects=False)
    assert form.status_code == 303, form.text
    assert {"page author", "form author"} <= _names(client)
    # The token's cookie is the page's own: HttpOnly, SameSite=Strict.
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite").lower() == "strict"
    # Even with the token, another origin is refused.
    assert client.post("/authors", data={"name": "forged"},
                       headers={"Origin": "http://127.0.0.2:8765", "X-CSRFToken": token}).status_code == 403


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "../etc", "a/b", "a\\b", ".", "..", "tab\there",
                                  "new\nline", "nul\x00", "bidi\u202eevil"])
def test_bad_author_names_are_refused_with_a_message(client: TestClient, name: str):
    before = _names(client)
    response = client.post("/api/authors", json={"name": name})
    assert 400 <= response.status_code < 500, (name, response.status_code)
    assert "author name" in response.json()["detail"]
    assert _names(client) == before


def test_good_author_names_pass(client: TestClient):
    for name in ("x" * 100, "Ada Lovelace", "jürgen", "o'brien", ".dot", "a..b"):
        assert client.post("/api/authors", json={"name": name}).status_code == 201, name


def test_the_cli_refuses_bad_author_names(settings: Settings, monkeypatch: pytest.MonkeyPatch):
    from cli import app
    from twin.settings import get_settings

    monkeypatch.setenv("TWIN_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    try:
        bad = CliRunner().invoke(app, ["author", "add", "../../etc"])
        good = CliRunner().invoke(app, ["author", "add", "ada"])
    finally:
        get_settings.cache_clear()
    assert bad.exit_code == 1 and "cannot contain '/'" in bad.output
    assert good.exit_code == 0, good.output


def test_the_login_cookie_holds_no_token_and_is_strict(tmp_path: Path):
    with TestClient(create_app(_settings(tmp_path / "data", api_token=TOKEN), with_model=False)) as client:
        csrf = _csrf_token(client, "/login")
        assert client.post("/login", data={"token": TOKEN, "next": "/inbox"},
                           follow_redirects=False).status_code == 403  # no CSRF token
        right = client.post("/login", data={"token": TOKEN, "next": "/inbox", "_csrf_token": csrf},
                            follow_redirects=False)
        assert right.status_code == 303
        set_cookie = right.headers["set-cookie"]
        assert set_cookie.startswith(f"{TOKEN_COOKIE}=") and TOKEN not in set_cookie
        assert "HttpOnly" in set_cookie and "samesite=strict" in set_cookie.lower()
        assert "Secure" not in set_cookie  # plain http
        assert client.get("/inbox", follow_redirects=False).status_code == 200  # the derived cookie is a login
        client.cookies.set(TOKEN_COOKIE, TOKEN)  # the raw token is not a login
        assert client.get("/inbox", follow_redirects=False).status_code == 303
        # Over https (a TLS proxy in front), the cookie is Secure.
        secure = client.post("https://testserver.local/login", follow_redirects=False,
                             data={"token": TOKEN, "next": "/", "_csrf_token": csrf})
        assert secure.status_code == 303 and "Secure" in secure.headers["set-cookie"]
        # With a valid login cookie, a cross-origin state change is still refused.
        login = secure.cookies[TOKEN_COOKIE]
        client.cookies.clear()
        client.cookies.set(TOKEN_COOKIE, login)
        assert client.get("/api/authors").status_code == 200
        assert client.post("/api/authors", json={"name": "x"},
                           headers={"Origin": "http://127.0.0.2:8765"}).status_code == 403


def test_a_real_server_refuses_a_rebound_host(tmp_path: Path):
    settings = _settings(tmp_path / "data", public_hosts=[])
    with live_app(settings, with_model=False) as url:
        port = settings.serve.port
        assert httpx.post(url + "/api/authors", json={"name": "ada"}).status_code == 201
        rebound = httpx.get(url + "/api/authors", headers={"Host": f"rebind.attacker.example:{port}"})
        assert rebound.status_code == 400 and "ada" not in rebound.text
        assert httpx.get(f"http://localhost:{port}/api/authors").json()[0]["name"] == "ada"
        forged = httpx.post(url + "/api/authors", json={"name": "mallory"},
                            headers={"Origin": f"http://127.0.0.2:{port}", "Sec-Fetch-Site": "cross-site"})
        assert forged.status_code == 403
        plain = httpx.post(url + "/api/authors", content=b'{"name": "mallory"}',
                           headers={"Content-Type": "text/plain"})
        assert plain.status_code == 415
        assert [a["name"] for a in httpx.get(url + "/api/authors").json()] == ["ada"]

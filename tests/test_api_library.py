"""The HTTP API without the model: library endpoints, jobs, error mapping, caps, OpenAPI.

The service runs for real (SQLite, embedded Qdrant, fastembed, crawl4ai); only the model deployment is not
started, which is exactly the "model down" case the chat endpoints must answer with 503 and a retry hint.
"""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from litestar.testing import TestClient

from benchmarks.corpus_site import corpus_blog
from serving.app import create_app


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings, with_model=False)) as test_client:
        yield test_client


def _wait(client: TestClient, job_id: str, timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def _x_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data/account.js", 'window.YTD.account.part0 = [{"account": {"accountId": "42", '
                                            '"username": "ada", "accountDisplayName": "Ada"}}]')
        archive.writestr("data/tweets.js", 'window.YTD.tweets.part0 = [{"tweet": {"id_str": "1", "full_text": '
                                           '"shipping the boring queue today #postgres", "created_at": '
                                           '"Wed Mar 06 10:00:00 +0000 2024", "entities": {"hashtags": [], "urls": []}}}]')
    return buffer.getvalue()


def test_author_sources_ingest_import_search_documents(client, corpora_dir, tmp_path):
    assert client.post("/api/authors", json={"name": "ada"}).status_code == 201
    assert client.post("/api/authors", json={"name": "ada"}).status_code == 409
    with corpus_blog("brandur_leach_atoms", tmp_path / "site", limit=6) as (feed_url, items, urls):
        source = client.post("/api/authors/ada/sources", json={"url": feed_url})
        assert source.status_code == 201 and source.json()["platform"] == "blog"
        job = client.post("/api/authors/ada/ingest", json={})
        assert job.status_code == 202
        done = _wait(client, job.json()["id"])
        assert done["status"] == "succeeded", done
        assert done["result"]["new"] == 6

    imported = client.post("/api/authors/ada/import", files={"data": ("x_archive.zip", _x_archive())})
    assert imported.status_code == 202
    assert _wait(client, imported.json()["id"])["result"]["new"] == 1

    documents = client.get("/api/authors/ada/documents").json()
    assert {d["platform"] for d in documents} == {"blog", "x"} and len(documents) == 7
    hits = client.get("/api/authors/ada/search", params={"q": "boring queue postgres", "platform": "x"}).json()
    assert hits[0]["platform"] == "x" and "boring queue" in hits[0]["text"]

    removed = client.delete("/api/authors/ada/sources", params={"url": feed_url})
    assert removed.json() == {"removed_documents": 6}
    assert len(client.get("/api/authors/ada/documents").json()) == 1


def test_errors_are_clear(client):
    assert client.get("/api/authors/nobody/documents").status_code == 404
    assert "No author named" in client.get("/api/authors/nobody").json()["detail"]
    client.post("/api/authors", json={"name": "bo"})
    bad_url = client.post("/api/authors/bo/sources", json={"url": "ftp://example.org/x"})
    assert bad_url.status_code == 400 and "http(s)" in bad_url.json()["detail"]
    assert client.post("/api/authors/bo/sources", json={"nope": 1}).status_code == 400
    not_zip = client.post("/api/authors/bo/import", files={"data": ("x.zip", b"not a zip")})
    job = _wait(client, not_zip.json()["id"])
    assert job["status"] == "failed" and job["error"]


def test_chat_without_model_is_503_with_retry_hint_and_caps_are_4xx(client, settings):
    client.post("/api/authors", json={"name": "cy"})
    down = client.post("/api/chat", json={"author": "cy", "prompt": "hello"})
    assert down.status_code == 503 and down.headers["retry-after"] and down.json()["retry_after_s"] > 0
    assert client.post("/api/chat", json={"author": "nobody", "prompt": "hello"}).status_code == 404
    assert client.post("/api/chat", json={"author": "cy"}).status_code == 400
    links = [f"https://example.org/{i}" for i in range(settings.serve.max_links + 1)]
    too_many = client.post("/api/chat", json={"author": "cy", "prompt": "x", "links": links})
    assert 400 <= too_many.status_code < 500 and "Too many links" in too_many.text
    too_long = client.post("/api/chat", json={"author": "cy", "prompt": "x" * (settings.serve.max_prompt_chars + 1)})
    assert 400 <= too_long.status_code < 500 and "too long" in too_long.text
    openai_down = client.post("/v1/chat/completions", json={"model": "twin:cy", "messages": [
        {"role": "user", "content": "hello"}]})
    assert openai_down.status_code == 503
    assert client.post("/v1/chat/completions", json={"model": "gpt-4", "messages": [
        {"role": "user", "content": "hello"}]}).status_code == 400
    assert "twin:cy" in [m["id"] for m in client.get("/v1/models").json()["data"]]


def test_openapi_is_served(client):
    schema = client.get("/schema/openapi.json").json()
    assert {"/api/chat", "/v1/chat/completions", "/api/runs/{run_id}"} <= set(schema["paths"])


def test_unknown_route_is_404_and_invalid_body_keeps_its_reason(client):
    assert client.get("/api/no-such-thing").status_code == 404
    invalid = client.post("/api/authors", json={"name": 5})
    assert invalid.status_code == 400 and "name" in invalid.text

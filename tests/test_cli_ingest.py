"""The `twin` CLI through click's runner, on the real stores (no service running: it opens them itself)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from benchmarks.corpus_site import corpus_blog
from cli import app


@pytest.fixture
def twin(settings, monkeypatch):
    monkeypatch.setenv("TWIN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TWIN_MODELS_PATH", str(settings.models_dir))
    monkeypatch.setenv("TWIN_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("TWIN_SERVE__PORT", "1")  # no service there: commands open the stores directly
    from twin.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    yield invoke
    get_settings.cache_clear()


def test_collect_search_and_list_from_the_command_line(twin, corpora_dir, tmp_path):
    assert twin("author", "add", "simon").exit_code == 0
    with corpus_blog("simon_willison_til", tmp_path / "site", limit=5) as (feed_url, items, urls):
        assert twin("source", "add", "simon", feed_url).exit_code == 0
        listed = json.loads(twin("source", "list", "simon", "--json").stdout)
        assert [s["url"] for s in listed] == [feed_url] and listed[0]["platform"] == "blog"

        result = twin("ingest", "simon", "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert (report["fetched"], report["new"], report["failed"]) == (5, 5, [])

    hits = json.loads(twin("search", "simon", items[2]["title"], "--json", "-k", "3").stdout)
    assert hits[0]["url"] == urls[2]
    documents = json.loads(twin("documents", "simon", "--json").stdout)
    assert len(documents) == 5 and all(d["clean_text"] for d in documents)

    removed = twin("source", "remove", "simon", feed_url)
    assert removed.exit_code == 0 and "5 documents" in removed.stdout
    assert json.loads(twin("documents", "simon", "--json").stdout) == []


def test_errors_go_to_stderr_with_non_zero_exit(twin, tmp_path):
    missing = twin("documents", "nobody")
    assert missing.exit_code != 0 and "No author named 'nobody'" in missing.stderr
    twin("author", "add", "ada")
    duplicate = twin("author", "add", "ada")
    assert duplicate.exit_code != 0 and "already exists" in duplicate.stderr
    bad = twin("source", "add", "ada", "file:///etc/passwd")
    assert bad.exit_code != 0 and "not an http(s) URL" in bad.stderr
    not_zip = tmp_path / "notes.zip"
    not_zip.write_text("not a zip")
    imported = twin("import", "ada", str(not_zip))
    assert imported.exit_code != 0 and imported.stderr.strip()

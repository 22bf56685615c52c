"""The feature pipeline end to end on real parts: a real author's corpus served as a blog on 127.0.0.1,
crawled by crawl4ai, extracted by trafilatura, stored in SQLite, embedded by fastembed into embedded Qdrant,
searched through LlamaIndex."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from benchmarks.corpus_site import corpus_blog
from ingestion.pipeline import IngestionDeps, ingest_urls, remove_source
from twin.domain import Platform
from twin.vectors import Embedder, VectorStore

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def deps(settings, store):
    vectors = VectorStore(settings, Embedder(settings))
    yield IngestionDeps(settings=settings, store=store, vectors=vectors)
    vectors.close()


def test_corpus_served_as_blog_is_collected_versioned_and_searchable(deps, corpora_dir, tmp_path):
    with corpus_blog("simon_willison_til", tmp_path / "site", limit=40) as (feed_url, items, urls):
        author = deps.store.add_author("simon")
        deps.store.add_source(author, feed_url, Platform.blog)
        report = asyncio.run(ingest_urls(deps, author))
        assert (report.fetched, report.new, report.failed, report.refused) == (40, 40, [], [])
        documents = deps.store.list_documents(author)
        assert sorted(d.url for d in documents) == sorted(urls)
        assert deps.vectors.count(author) == report.embedded_chunks > 0

        # Searching a post's title finds that post (titles are not repeated in the body verbatim always).
        found_first = 0
        for item, url in zip(items, urls, strict=True):
            hits = deps.vectors.search(author, item["title"], k=5)
            assert url in [h.url for h in hits], item["title"]
            found_first += hits[0].url == url
        assert found_first >= 0.8 * len(items)
        assert deps.vectors.search(author.model_copy(update={"id": author.id + 1}), items[0]["title"]) == []

        # Re-ingesting an unchanged corpus stores and embeds nothing.
        again = asyncio.run(ingest_urls(deps, author))
        assert (again.new, again.updated, again.unchanged, again.embedded_chunks) == (0, 0, 40, 0)
        # ... and downloads nothing: every page was a conditional GET answered 304 (Last-Modified).
        assert again.not_modified == 40
        # --refresh fetches and extracts every page again, and still stores nothing new.
        refreshed = asyncio.run(ingest_urls(deps, author, refresh=True))
        assert (refreshed.unchanged, refreshed.not_modified, refreshed.embedded_chunks) == (40, 0, 0)

        # A changed page becomes version 2, and only its chunks are replaced.
        page = tmp_path / "site" / "p" / "3" / "index.html"
        page.write_text(page.read_text().replace("</article>", "<p>An added closing paragraph.</p></article>"))
        changed = asyncio.run(ingest_urls(deps, author))
        assert (changed.updated, changed.unchanged, changed.not_modified) == (1, 39, 39)
        doc = next(d for d in deps.store.list_documents(author) if d.url == urls[3])
        assert doc.version == 2 and "An added closing paragraph." in doc.clean_text
        assert len(deps.store.document_versions(doc.id)) == 2
        assert {h.version for h in deps.vectors.search(author, "An added closing paragraph", k=3)
                if h.document_id == doc.id} == {2}

    # Removing the source removes its documents and their chunks.
    assert remove_source(deps, author, feed_url) == 40
    assert deps.store.list_documents(author) == []
    assert deps.vectors.count(author) == 0


def test_bad_links_are_reported_per_url_and_never_abort(deps, corpora_dir, tmp_path):
    with corpus_blog("brandur_leach_atoms", tmp_path / "site", limit=3) as (feed_url, _, urls):
        author = deps.store.add_author("brandur")
        links = ["http://169.254.169.254/latest/meta-data", urls[0], feed_url.replace("feed.xml", "missing/"), urls[1]]
        report = asyncio.run(ingest_urls(deps, author, links))
    assert report.new == 2
    assert [p.url for p in report.refused] == [links[0]]
    assert [p.url for p in report.failed] == [links[2]]
    assert "404" in report.failed[0].reason or "Not Found" in report.failed[0].reason


KILLABLE_INGEST = textwrap.dedent(
    """
    import asyncio, sys
    from ingestion.pipeline import IngestionDeps, ingest_urls
    from twin.settings import Settings
    from twin.store import DocumentStore
    from twin.vectors import Embedder, VectorStore

    settings = Settings()
    store = DocumentStore.from_url(settings.resolved_database_url)
    deps = IngestionDeps(settings=settings, store=store, vectors=VectorStore(settings, Embedder(settings)))
    report = asyncio.run(ingest_urls(deps, store.get_author("josh")))
    print(report.model_dump_json())
    """
)


def test_killed_ingest_resumes_with_every_document_once_and_every_chunk_once(settings, store, corpora_dir, tmp_path):
    from ingestion.chunk import chunk_document

    env = {**os.environ, "TWIN_DATA_DIR": str(settings.data_dir), "TWIN_MODELS_PATH": str(settings.models_dir),
           "TWIN_ALLOWED_HOSTS": "127.0.0.1", "PYTHONPATH": str(REPO_ROOT)}
    with corpus_blog("josh_branchaud_til", tmp_path / "site", limit=60) as (feed_url, _, urls):
        author = store.add_author("josh")
        store.add_source(author, feed_url, Platform.blog)
        proc = subprocess.Popen([sys.executable, "-c", KILLABLE_INGEST], env=env, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 240
        while len(store.list_documents(author)) < 20 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stored_before = len(store.list_documents(author))
        assert 0 < stored_before < 60, "the run should be killed half-way"

        out = subprocess.run([sys.executable, "-c", KILLABLE_INGEST], env=env, cwd=tmp_path, capture_output=True,
                             text=True, timeout=600, check=True)
        assert '"failed":[]' in out.stdout.replace(" ", "")

    documents = store.list_documents(author)
    assert sorted(d.url for d in documents) == sorted(urls)
    assert {d.version for d in documents} == {1}
    assert all(d.embedded_version == 1 for d in documents)

    deps_vectors = VectorStore(settings, Embedder(settings))
    try:
        from ingestion.chunk import HFTokenCounter
        from twin.models import resolve_embed_model

        counter = HFTokenCounter(resolve_embed_model(settings) / "tokenizer.json")
        expected = sum(len(chunk_document(d, "josh", settings.chunk, counter)) for d in documents)
        assert deps_vectors.count(store.get_author("josh")) == expected  # no chunk twice, none missing
    finally:
        deps_vectors.close()

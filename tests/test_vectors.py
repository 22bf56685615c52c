"""VectorStore retrieval on embedded Qdrant with the real embedders: hybrid fusion, filters, and the BM25
half following every write (new versions and deletions are searchable at once)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from datetime import UTC, datetime

from twin.domain import Author, Chunk, Kind, Platform
from twin.settings import Settings
from twin.vectors import Embedder, VectorStore

TEXTS = {
    (1, Platform.linkedin, Kind.post): "Shipping on Fridays is fine when rollbacks take one click. Ours take one.",
    (2, Platform.blog, Kind.article): "The sourdough starter needs feeding twice a day; rye flour makes it livelier.",
    (3, Platform.blog, Kind.note): "Note to self: the Kubernetes liveness probe timeout was the outage culprit.",
    (4, Platform.github, Kind.code): "def retry(call, attempts=5):\n    for n in range(attempts):\n        return call()",
}


ADA = Author(id=1, name="ada", created_at=datetime(2024, 1, 1, tzinfo=UTC))
NOBODY = Author(id=2, name="nobody", created_at=datetime(2024, 1, 1, tzinfo=UTC))


def chunk(document_id: int, platform: Platform, kind: Kind, text: str, version: int = 1) -> Chunk:
    return Chunk(id=f"00000000-0000-0000-0000-{document_id:06d}{version:06d}", document_id=document_id,
                 version=version, author="ada", author_id=ADA.id, platform=platform, kind=kind, url=f"https://ada.example/{document_id}",
                 title=None, index=0, text=text)


@pytest.fixture
def vectors(settings: Settings) -> Iterator[VectorStore]:
    store = VectorStore(settings, Embedder(settings))
    store.upsert_chunks([chunk(d, p, k, text) for (d, p, k), text in TEXTS.items()])
    yield store
    store.close()


def test_hybrid_search_finds_by_meaning_and_by_rare_words(vectors: VectorStore) -> None:
    assert vectors.search(ADA, "bread fermentation at home", k=1)[0].document_id == 2  # meaning
    assert vectors.search(ADA, "liveness probe", k=1)[0].document_id == 3  # exact rare words (BM25)
    assert vectors.search(NOBODY, "bread") == []
    with pytest.raises(ValueError, match="empty"):
        vectors.search(ADA, "   ")


def test_filters_by_platform_and_kind(vectors: VectorStore) -> None:
    blog = vectors.search(ADA, "outage", k=5, platform=Platform.blog)
    assert {h.document_id for h in blog} == {2, 3} and blog[0].document_id == 3
    assert [h.document_id for h in vectors.search(ADA, "outage", k=5, kind=Kind.code)] == [4]
    assert vectors.search(ADA, "outage", platform=Platform.x) == []


def test_new_versions_and_deletions_are_searchable_at_once(vectors: VectorStore) -> None:
    assert all("Croissant" not in h.text for h in vectors.search(ADA, "croissant lamination", k=5))
    vectors.delete_documents([2], ADA)
    vectors.upsert_chunks([chunk(2, Platform.blog, Kind.article, "Croissant lamination: fold the butter in thirds.",
                                 version=2)])
    hit = vectors.search(ADA, "croissant lamination", k=1)[0]
    assert (hit.document_id, hit.version) == (2, 2) and "Croissant" in hit.text
    vectors.delete_documents([2, 3], ADA)
    assert {h.document_id for h in vectors.search(ADA, "croissant lamination liveness probe", k=5)} == {1, 4}
    assert vectors.count(ADA) == 2

"""Each author's chunks are theirs alone: collections keyed by author id (names that slugged alike under the
old layout — "José"/"Jos", "Ada Smith"/"Ada-Smith", every non-Latin name — no longer share one), every search
filtered by the author's id as well, old name-slug collections adopted on the first open after the upgrade,
and author names never used as path components.

Real parts: SQLite, embedded Qdrant with the real embedders, the Litestar app.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from litestar.testing import TestClient
from qdrant_client import models

from ingestion.pipeline import IngestionDeps, resume_embedding
from serving.app import create_app
from training.job import next_adapter_dir
from twin.domain import Kind, Platform, RawDocument, TwinError, author_folder
from twin.vectors import Embedder, VectorStore

# Names that the old slug (re.sub(r"[^A-Za-z0-9_-]+", "-", name)) put into one collection, pairwise or all.
WRITERS = {
    "José": "Sourdough starters need rye flour and a warm shelf near the oven.",
    "Jos": "Kubernetes liveness probes restarted our pods during every deploy.",
    "Ada Smith": "Tide pools at low tide hold anemones, crabs and tiny fish.",
    "Ada-Smith": "Mechanical keyboards with linear switches are quieter than clicky ones.",
    "山田太郎": "Bonsai pruning in early spring keeps the junipers compact.",
    "Иван Петров": "Chess endgames with rooks reward an active king above all.",
}


def _old_slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "author"


def _store_writing(store, name: str, text: str):
    author = store.add_author(name)
    store.upsert_document(author, None, RawDocument(url=f"https://writers.example/{len(text)}", platform=Platform.blog,
                                                    kind=Kind.note, text=text), text)
    return author


def test_authors_whose_names_collided_get_their_own_collections_and_only_their_own_hits(settings, store) -> None:
    assert _old_slug("José") == "Jos" and _old_slug("Ada Smith") == "Ada-Smith"
    assert _old_slug("山田太郎") == _old_slug("Иван Петров") == "author"
    vectors = VectorStore(settings, Embedder(settings))
    try:
        deps = IngestionDeps(settings=settings, store=store, vectors=vectors)
        authors = {name: _store_writing(store, name, text) for name, text in WRITERS.items()}
        for author in authors.values():
            asyncio.run(resume_embedding(deps, author))
        assert len({vectors.collection_for(a) for a in authors.values()}) == len(WRITERS)
        for name, author in authors.items():
            assert vectors.count(author) == 1
            for query in WRITERS.values():  # every text, including the other authors'
                hits = vectors.search(author, query, k=10)
                assert {h.text for h in hits} <= {WRITERS[name]}, (name, query)
            assert vectors.search(author, WRITERS[name], k=1)[0].text == WRITERS[name]
    finally:
        vectors.close()


def test_the_author_filter_is_a_second_wall(settings, store) -> None:
    """A chunk filed in the wrong collection (a bug, an old import) is still never another author's hit."""
    from ingestion.chunk import HFTokenCounter, chunk_document
    from twin.models import resolve_embed_model

    vectors = VectorStore(settings, Embedder(settings))
    try:
        jose = _store_writing(store, "José", WRITERS["José"])
        jos = _store_writing(store, "Jos", WRITERS["Jos"])
        counter = HFTokenCounter(resolve_embed_model(settings) / "tokenizer.json")
        [document] = store.list_documents(jose)
        [chunk] = chunk_document(document, jose.name, settings.chunk, counter)
        vectors.upsert_chunks([chunk])
        # Misfile a copy of José's chunk in Jos's collection, payload and all.
        misfiled = vectors.client.retrieve(vectors.collection_for(jose), [chunk.id], with_vectors=True)[0]
        vectors.client.create_collection(
            vectors.collection_for(jos),
            vectors_config=vectors.client.get_collection(vectors.collection_for(jose)).config.params.vectors,
            sparse_vectors_config=vectors.client.get_collection(vectors.collection_for(jose)).config.params.sparse_vectors,
        )
        vectors.client.upsert(vectors.collection_for(jos), [models.PointStruct(id=misfiled.id, vector=misfiled.vector,
                                                                               payload=misfiled.payload)])
        assert vectors.client.count(vectors.collection_for(jos)).count == 1
        assert vectors.search(jos, WRITERS["José"], k=5) == []
        assert [h.text for h in vectors.search(jose, WRITERS["José"], k=5)][:1] == [WRITERS["José"]]
    finally:
        vectors.close()


def test_old_name_slug_collections_are_adopted_once_without_embedding_again(settings, store) -> None:
    """Data written by the old layout (one collection per name slug, shared by "José" and "Jos") moves to the
    id-keyed collections on the next open, each chunk to its author, and the old collection goes."""
    from ingestion.chunk import HFTokenCounter, chunk_document
    from twin.models import resolve_embed_model

    vectors = VectorStore(settings, Embedder(settings))
    try:
        jose = _store_writing(store, "José", WRITERS["José"])
        jos = _store_writing(store, "Jos", WRITERS["Jos"])
        counter = HFTokenCounter(resolve_embed_model(settings) / "tokenizer.json")
        chunks = [c for a in (jose, jos) for d in store.list_documents(a)
                  for c in chunk_document(d, a.name, settings.chunk, counter)]
        vectors.upsert_chunks(chunks)
        for a in (jose, jos):
            store.mark_embedded(store.list_documents(a)[0].id, 1)
        # Rewrite what was stored into the old layout: one collection named by the slug, no author_id payload.
        old = f"{settings.collection}__Jos"
        params = vectors.client.get_collection(vectors.collection_for(jose)).config.params
        vectors.client.create_collection(old, vectors_config=params.vectors, sparse_vectors_config=params.sparse_vectors)
        for a in (jose, jos):
            points, _ = vectors.client.scroll(vectors.collection_for(a), with_vectors=True, with_payload=True)
            vectors.client.upsert(old, [models.PointStruct(id=p.id, vector=p.vector, payload={
                k: v for k, v in p.payload.items() if k != "author_id"}) for p in points])
            vectors.client.delete_collection(vectors.collection_for(a))
    finally:
        vectors.close()

    vectors = VectorStore(settings, Embedder(settings))
    try:
        IngestionDeps(settings=settings, store=store, vectors=vectors)  # opening adopts the old collection
        names = {c.name for c in vectors.client.get_collections().collections}
        assert old not in names and {vectors.collection_for(jose), vectors.collection_for(jos)} <= names
        assert vectors.count(jose) == vectors.count(jos) == 1
        assert [h.text for h in vectors.search(jose, WRITERS["Jos"], k=5)] == [WRITERS["José"]]
        assert [h.text for h in vectors.search(jos, WRITERS["José"], k=5)] == [WRITERS["Jos"]]
        assert store.documents_needing_embedding(jose) == [] and store.documents_needing_embedding(jos) == []
        IngestionDeps(settings=settings, store=store, vectors=vectors)  # and again: nothing left to adopt
        assert vectors.count(jose) == 1
    finally:
        vectors.close()


@pytest.mark.parametrize("name", ["../../etc", "a/b", "..\\..\\x", "..", ".", "tab\there", "", "x" * 101])
def test_a_path_like_name_is_refused(store, name: str) -> None:
    with pytest.raises(TwinError):
        store.add_author(name)
    assert store.list_authors() == []


def test_author_files_live_in_id_folders_never_named_after_the_author(settings, store) -> None:
    author = store.add_author("...José")  # a valid name that would be a hidden folder
    version, adapter_dir = next_adapter_dir(store, settings, author)
    assert adapter_dir == settings.adapters_dir / f"author-{author.id}" / "v1" and version == 1
    assert author_folder(author) == f"author-{author.id}"
    assert adapter_dir.resolve().is_relative_to(settings.adapters_dir.resolve())


def test_the_api_refuses_path_like_names(settings) -> None:
    with TestClient(create_app(settings, with_model=False)) as client:
        for name in ("../../etc/passwd", "a/b", "x\u0000y"):
            response = client.post("/api/authors", json={"name": name})
            assert response.status_code == 400, (name, response.status_code)
        assert client.get("/api/authors").json() == []

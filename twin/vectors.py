"""Chunks in Qdrant (embedded local path by default, a server URL at scale), embedded by fastembed
(dense all-MiniLM-L6-v2 ONNX + BM25 sparse) and retrieved through LlamaIndex's hybrid Qdrant store."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from qdrant_client import QdrantClient, models

from twin.domain import Author, Chunk, Kind, Platform, SearchHit
from twin.models import resolve_bm25_dir, resolve_embed_model
from twin.settings import Settings

DENSE_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
SPARSE_MODEL_NAME = "Qdrant/bm25"
REFERENCES_SUFFIX = ".references"
_AUTHOR_COLLECTION = re.compile(r"id\.\d+(?:\.references)?")
"""What follows ``<collection>__`` in an id-keyed collection name. The old name slugs never held a dot,
so anything else there is an old collection, and no author name can land on an id-keyed one."""


class Embedder:
    """Dense and sparse encoders, both fastembed over local files (nothing is downloaded)."""

    def __init__(self, settings: Settings, batch_size: int = 32) -> None:
        from fastembed import SparseTextEmbedding
        from llama_index.embeddings.fastembed import FastEmbedEmbedding

        cache_dir = str(settings.models_dir / "fastembed")
        self.dense = FastEmbedEmbedding(
            model_name=DENSE_MODEL_NAME,
            cache_dir=cache_dir,
            specific_model_path=str(resolve_embed_model(settings)),
            embed_batch_size=batch_size,
        )
        self.sparse = SparseTextEmbedding(
            SPARSE_MODEL_NAME, cache_dir=cache_dir, specific_model_path=str(resolve_bm25_dir(settings))
        )
        self.batch_size = batch_size

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return self.dense.get_text_embedding_batch(list(texts))

    def embed_query(self, text: str) -> list[float]:
        return self.dense.get_query_embedding(text)

    def sparse_documents(self, texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
        vectors = list(self.sparse.embed(texts, batch_size=self.batch_size))
        return [v.indices.tolist() for v in vectors], [v.values.tolist() for v in vectors]

    def sparse_queries(self, texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
        vectors = list(self.sparse.query_embed(texts))
        return [v.indices.tolist() for v in vectors], [v.values.tolist() for v in vectors]


class VectorStore:
    """Chunks in Qdrant, two collections per author, named by the author's id: ``<collection>__id.<id>``
    for their own writing and ``<collection>__id.<id>.references`` for pages linked in chat requests
    (reference material, searched only for the run that linked them). Ids, not names: names collide once
    slugged ("José"/"Jos", every non-Latin name), and every search also checks the ``author_id`` payload,
    so a chunk filed in the wrong collection is still never another author's hit.

    A collection per author also keeps search cheap: embedded Qdrant evaluates filters point by point in
    Python (~0.1 s per query at 1.3k points), while an unfiltered query over one author's chunks does not.

    Every chunk carries its dense and BM25 sparse vectors in both modes, so a collection moves to a server
    as it is. What differs is the BM25 half of a search: a Qdrant server scores sparse vectors natively,
    while embedded Qdrant scores them in a pure-Python loop over every point (~100-200 ms at 3k chunks,
    benchmarks/ingest.py measures both). Embedded, the BM25 half is therefore LlamaIndex's ``BM25Retriever``
    (bm25s, an inverted index in numpy) over the same chunk texts, built from the collection on first
    search and rebuilt after this process writes to it (embedded Qdrant has one writer: this process).
    """

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        if settings.qdrant_url:
            self.client = QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key)
        else:
            path = settings.resolved_qdrant_path
            path.mkdir(parents=True, exist_ok=True)
            self.client = QdrantClient(path=str(path))
        self.collection = settings.collection
        self.embedder = embedder
        self._server = bool(settings.qdrant_url)
        self._llama_stores: dict[str, Any] = {}
        self._bm25_indexes: dict[str, Any] = {}
        """Collection name -> bm25s index over its chunks (embedded mode); dropped on every write."""
        # LlamaIndex's retrievers import this on their first use. Searches run on worker threads, and a first
        # import of it on one thread while another imports langchain_core.messages (the agent) raised
        # _DeadlockError (langchain_core's lazy imports): imported here, on the thread that builds the store.
        from langchain_core.language_models import BaseLanguageModel  # noqa: F401 - lazy: the name imports it

    def close(self) -> None:
        self.client.close()

    def collection_for(self, author: Author | int, *, references: bool = False) -> str:
        author_id = author if isinstance(author, int) else author.id
        return f"{self.collection}__id.{author_id}" + (REFERENCES_SUFFIX if references else "")

    def _collections_of(self, author: Author | None) -> list[str]:
        if author is not None:
            return [self.collection_for(author), self.collection_for(author, references=True)]
        return [f"{self.collection}__{rest}" for rest in self._suffixes() if _AUTHOR_COLLECTION.fullmatch(rest)]

    def _suffixes(self) -> list[str]:
        """What follows ``<collection>__`` in the names of this store's collections."""
        prefix = f"{self.collection}__"
        return [c.name.removeprefix(prefix) for c in self.client.get_collections().collections
                if c.name.startswith(prefix)]

    def llama_store(self, name: str) -> Any:
        """LlamaIndex's hybrid Qdrant store over one collection (created on first write)."""
        from llama_index.vector_stores.qdrant import QdrantVectorStore

        if name not in self._llama_stores:
            self._llama_stores[name] = QdrantVectorStore(
                collection_name=name,
                client=self.client,
                enable_hybrid=True,
                sparse_doc_fn=self.embedder.sparse_documents,
                sparse_query_fn=self.embedder.sparse_queries,
                batch_size=self.embedder.batch_size,
                index_doc_id=self._server,  # payload indexes only exist on a Qdrant server
            )
        return self._llama_stores[name]

    def upsert_chunks(self, chunks: Sequence[Chunk]) -> int:
        """Embed and store chunks; ids are deterministic, so storing the same chunk twice is a no-op.
        Reference chunks go to the author's references collection, everything else to their own."""
        from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

        if not chunks:
            return 0
        embeddings = self.embedder.embed_documents([c.text for c in chunks])
        by_collection: dict[str, list[TextNode]] = {}
        for chunk, embedding in zip(chunks, embeddings, strict=True):
            name = self.collection_for(chunk.author_id, references=chunk.kind is Kind.reference)
            by_collection.setdefault(name, []).append(
                TextNode(
                    id_=chunk.id,
                    text=chunk.text,
                    embedding=embedding,
                    metadata=_payload(chunk),
                    # LlamaIndex writes the source node's id into the payload as `doc_id`/`ref_doc_id`.
                    relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=str(chunk.document_id))},
                )
            )
        for name, nodes in by_collection.items():
            self.llama_store(name).add(nodes)
            self._bm25_indexes.pop(name, None)
        return len(chunks)

    def delete_documents(self, document_ids: Sequence[int], author: Author | None = None) -> None:
        """Remove the documents' chunks (from the author's collections, or from every author's)."""
        if not document_ids:
            return
        selector = models.FilterSelector(
            filter=models.Filter(
                must=[models.FieldCondition(key="doc_id", match=models.MatchAny(any=[str(d) for d in document_ids]))]
            )
        )
        for name in self._collections_of(author):
            if self.client.collection_exists(name):
                self.client.delete(name, points_selector=selector)
            self._bm25_indexes.pop(name, None)

    def count(self, author: Author | None = None, document_id: int | None = None, *,
              references: bool | None = False) -> int:
        """Chunks stored (of the author's own writing by default; ``references=None`` counts both)."""
        names = self._collections_of(author)
        if references is not None:
            names = [n for n in names if n.endswith(REFERENCES_SUFFIX) == references]
        conditions = []
        if document_id is not None:
            conditions.append(models.FieldCondition(key="doc_id", match=models.MatchValue(value=str(document_id))))
        return sum(
            self.client.count(name, count_filter=models.Filter(must=conditions) if conditions else None,
                              exact=True).count
            for name in names
            if self.client.collection_exists(name)
        )

    def search(
        self,
        author: Author,
        query: str,
        k: int = 5,
        platform: Platform | None = None,
        kind: Kind | None = None,
    ) -> list[SearchHit]:
        """Hybrid (dense + BM25, relative-score fusion) retrieval through LlamaIndex over the author's own
        writing (never reference pages)."""
        from llama_index.core.vector_stores import MetadataFilter

        filters = []
        if platform:
            filters.append(MetadataFilter(key="platform", value=platform.value))
        if kind:
            filters.append(MetadataFilter(key="kind", value=kind.value))
        return self._search(self.collection_for(author), author, query, k, filters)

    def search_references(self, author: Author, query: str, document_ids: Sequence[int], k: int = 5) -> list[SearchHit]:
        """The same search over the reference pages `document_ids` (a run's links) of the author."""
        from llama_index.core.vector_stores import FilterOperator, MetadataFilter

        if not document_ids:
            return []
        filters = [MetadataFilter(key="doc_id", operator=FilterOperator.IN, value=[str(d) for d in document_ids])]
        return self._search(self.collection_for(author, references=True), author, query, k, filters)

    def _search(self, name: str, author: Author, query: str, k: int, filters: list[Any]) -> list[SearchHit]:
        from llama_index.core.vector_stores import MetadataFilter, MetadataFilters

        if not query.strip():
            raise ValueError("The search query is empty.")
        if not self.client.collection_exists(name):
            return []
        # The collection is the author's already; the author_id check is a second wall against a misfiled
        # chunk. A Qdrant server filters on the payload natively; embedded Qdrant would check every point
        # in Python (95 -> 195 ms p50 at 1.3k points, measured), so there each hit's payload is checked.
        if self._server:
            retriever = self.qdrant_hybrid_retriever(name, k, MetadataFilters(
                filters=[MetadataFilter(key="author_id", value=author.id), *filters]))
        else:
            retriever = self.fusion_retriever(name, k, MetadataFilters(filters=filters) if filters else None)
        hits = []
        for result in retriever.retrieve(query):
            meta: dict[str, Any] = result.node.metadata
            if meta.get("author_id") != author.id:
                continue
            hits.append(
                SearchHit(
                    text=result.node.get_content(),
                    score=float(result.score or 0.0),
                    url=meta["url"],
                    title=meta.get("title"),
                    platform=Platform(meta["platform"]),
                    kind=Kind(meta["kind"]),
                    document_id=int(result.node.ref_doc_id),
                    version=int(meta["version"]),
                    chunk_id=result.node.node_id,
                )
            )
        return hits

    def adopt_legacy_collections(self, author_ids: Mapping[str, int]) -> list[int]:
        """Move chunks out of collections named by the old name slug (``<collection>__<slug>``) into the
        id-keyed ones, vectors and all (nothing is embedded again), then drop the old collections.

        The old slug mixed authors up, but each point's payload has the author's exact name, which
        `author_ids` (name -> id) maps to its owner; points of authors that no longer exist are dropped.
        Returns the ids of authors whose points could not be moved (their documents need embedding again).
        """
        legacy = [f"{self.collection}__{rest}" for rest in self._suffixes() if "." not in rest]
        failed: set[int] = set()
        for name in legacy:
            params = self.client.get_collection(name).config.params
            offset = None
            while True:
                points, offset = self.client.scroll(name, limit=256, offset=offset, with_payload=True,
                                                    with_vectors=True)
                by_target: dict[str, list[models.PointStruct]] = {}
                for point in points:
                    payload = dict(point.payload or {})
                    author_id = author_ids.get(str(payload.get("author")))
                    if author_id is None:
                        continue
                    payload["author_id"] = author_id
                    target = self.collection_for(author_id, references=payload.get("kind") == Kind.reference.value)
                    by_target.setdefault(target, []).append(
                        models.PointStruct(id=point.id, vector=point.vector or {}, payload=payload))
                for target, batch in by_target.items():
                    try:
                        if not self.client.collection_exists(target):
                            self.client.create_collection(target, vectors_config=params.vectors,
                                                          sparse_vectors_config=params.sparse_vectors)
                        self.client.upsert(target, points=batch)
                    except Exception:  # noqa: BLE001 - the SQL store keeps the text: re-embed instead
                        failed.add(int(batch[0].payload["author_id"]))  # type: ignore[index]
                    self._bm25_indexes.pop(target, None)
                    self._llama_stores.pop(target, None)
                if offset is None:
                    break
            self.client.delete_collection(name)
            self._bm25_indexes.pop(name, None)
            self._llama_stores.pop(name, None)
        return sorted(failed)

    def qdrant_hybrid_retriever(self, name: str, k: int, filters: Any) -> Any:
        """Dense and sparse both scored by the Qdrant server, fused by LlamaIndex's Qdrant store."""
        from llama_index.core import VectorStoreIndex

        index = VectorStoreIndex.from_vector_store(self.llama_store(name), embed_model=self.embedder.dense)
        return index.as_retriever(vector_store_query_mode="hybrid", similarity_top_k=k,
                                  sparse_top_k=max(k * 2, 10), filters=filters)

    def fusion_retriever(self, name: str, k: int, filters: Any) -> Any:
        """Dense from embedded Qdrant plus BM25 from bm25s, fused by relative score (as the Qdrant store
        fuses its hybrid results), all LlamaIndex retrievers."""
        from llama_index.core import VectorStoreIndex
        from llama_index.core.llms.mock import MockLLM
        from llama_index.core.retrievers import QueryFusionRetriever

        candidates = max(k * 2, 10)
        index = VectorStoreIndex.from_vector_store(self.llama_store(name), embed_model=self.embedder.dense)
        retrievers = [index.as_retriever(similarity_top_k=candidates, filters=filters)]
        bm25 = self._bm25_index(name)
        if bm25 is not None:
            try:
                bm25_top_k = min(candidates, int(bm25.scores["num_docs"]))
                retrievers.append(_matching_bm25_retriever()(existing_bm25=bm25, similarity_top_k=bm25_top_k,
                                                           filters=filters))
            except ValueError:  # the filters leave no chunk for BM25: dense finds nothing either
                pass
        return QueryFusionRetriever(
            retrievers, similarity_top_k=k, mode="relative_score", num_queries=1, use_async=False,
            llm=MockLLM(),  # never called: num_queries=1 asks for no generated queries
        )

    def _bm25_index(self, name: str) -> Any:
        import bm25s
        import Stemmer
        from llama_index.core.schema import MetadataMode
        from llama_index.core.vector_stores.utils import metadata_dict_to_node

        if name in self._bm25_indexes:
            return self._bm25_indexes[name]
        corpus, texts = [], []
        offset = None
        while True:
            points, offset = self.client.scroll(name, limit=1024, offset=offset, with_payload=True,
                                                with_vectors=False)
            for point in points:
                payload = dict(point.payload or {})
                node = metadata_dict_to_node(payload)
                # The retriever turns each corpus entry back into a node with metadata_dict_to_node.
                corpus.append(payload | {"node_id": node.node_id})
                texts.append(node.get_content(metadata_mode=MetadataMode.EMBED))
            if offset is None:
                break
        index = None
        if texts:
            tokens = bm25s.tokenize(texts, stopwords="en", stemmer=Stemmer.Stemmer("english"), show_progress=False)
            index = bm25s.BM25(corpus=corpus)
            index.index(tokens, show_progress=False)
        self._bm25_indexes[name] = index
        return index


@functools.cache
def _matching_bm25_retriever() -> type:
    """LlamaIndex's BM25Retriever keeping only chunks that share a term with the query: bm25s still
    ranks the rest (score 0, and chunks outside the filters are masked to 0), and fusion must not count
    those as matches. Built on first use so importing this module stays light."""
    from llama_index.retrievers.bm25 import BM25Retriever

    class MatchingBM25Retriever(BM25Retriever):
        def _retrieve(self, query_bundle: Any) -> list[Any]:
            return [hit for hit in super()._retrieve(query_bundle) if (hit.score or 0.0) > 0.0]

    return MatchingBM25Retriever


def _payload(chunk: Chunk) -> dict[str, Any]:
    return {
        "author": chunk.author,
        "author_id": chunk.author_id,
        "platform": chunk.platform.value,
        "kind": chunk.kind.value,
        "version": chunk.version,
        "url": chunk.url,
        "title": chunk.title or "",
        "index": chunk.index,
        "published_at": chunk.published_at.isoformat() if chunk.published_at else "",
    }

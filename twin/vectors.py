"""Chunks in Qdrant (embedded local path by default, a server URL at scale), embedded by fastembed
(dense all-MiniLM-L6-v2 ONNX + BM25 sparse) and retrieved through LlamaIndex's hybrid Qdrant store."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from qdrant_client import QdrantClient, models

from twin.domain import Chunk, Kind, Platform, SearchHit
from twin.models import resolve_bm25_dir, resolve_embed_model
from twin.settings import Settings

DENSE_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
SPARSE_MODEL_NAME = "Qdrant/bm25"


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
    """Chunks in Qdrant, one collection per author (``<collection>__<author>``).

    A collection per author keeps an author's search free of a payload filter: embedded Qdrant evaluates
    filters point by point in Python (~0.2 s per query at 3k points, measured), while an unfiltered
    query over one author's few thousand chunks takes ~10 ms. On a Qdrant server the same layout works.

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

    def close(self) -> None:
        self.client.close()

    def collection_for(self, author: str) -> str:
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", author).strip("-") or "author"
        return f"{self.collection}__{slug}"

    def _author_collections(self) -> list[str]:
        prefix = f"{self.collection}__"
        return [c.name for c in self.client.get_collections().collections if c.name.startswith(prefix)]

    def llama_store(self, author: str) -> Any:
        """LlamaIndex's hybrid Qdrant store over the author's collection (created on first write)."""
        from llama_index.vector_stores.qdrant import QdrantVectorStore

        name = self.collection_for(author)
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
        """Embed and store chunks; ids are deterministic, so storing the same chunk twice is a no-op."""
        from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

        if not chunks:
            return 0
        embeddings = self.embedder.embed_documents([c.text for c in chunks])
        by_author: dict[str, list[TextNode]] = {}
        for chunk, embedding in zip(chunks, embeddings, strict=True):
            by_author.setdefault(chunk.author, []).append(
                TextNode(
                    id_=chunk.id,
                    text=chunk.text,
                    embedding=embedding,
                    metadata=_payload(chunk),
                    # LlamaIndex writes the source node's id into the payload as `doc_id`/`ref_doc_id`.
                    relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=str(chunk.document_id))},
                )
            )
        for author, nodes in by_author.items():
            self.llama_store(author).add(nodes)
            self._bm25_indexes.pop(self.collection_for(author), None)
        return len(chunks)

    def delete_documents(self, document_ids: Sequence[int], author: str | None = None) -> None:
        """Remove the documents' chunks (from the author's collection, or from every author's)."""
        if not document_ids:
            return
        names = [self.collection_for(author)] if author is not None else self._author_collections()
        selector = models.FilterSelector(
            filter=models.Filter(
                must=[models.FieldCondition(key="doc_id", match=models.MatchAny(any=[str(d) for d in document_ids]))]
            )
        )
        for name in names:
            if self.client.collection_exists(name):
                self.client.delete(name, points_selector=selector)
            self._bm25_indexes.pop(name, None)

    def count(self, author: str | None = None, document_id: int | None = None) -> int:
        names = [self.collection_for(author)] if author is not None else self._author_collections()
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
        author: str,
        query: str,
        k: int = 5,
        platform: Platform | None = None,
        kind: Kind | None = None,
    ) -> list[SearchHit]:
        """Hybrid (dense + BM25, relative-score fusion) retrieval through LlamaIndex over the author's chunks."""
        from llama_index.core.vector_stores import MetadataFilter, MetadataFilters

        if not query.strip():
            raise ValueError("The search query is empty.")
        if not self.client.collection_exists(self.collection_for(author)):
            return []
        filters = []
        if platform:
            filters.append(MetadataFilter(key="platform", value=platform.value))
        if kind:
            filters.append(MetadataFilter(key="kind", value=kind.value))
        metadata_filters = MetadataFilters(filters=filters) if filters else None
        if self._server:
            retriever = self.qdrant_hybrid_retriever(author, k, metadata_filters)
        else:
            retriever = self.fusion_retriever(author, k, metadata_filters)
        hits = []
        for result in retriever.retrieve(query):
            meta: dict[str, Any] = result.node.metadata
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


    def qdrant_hybrid_retriever(self, author: str, k: int, filters: Any) -> Any:
        """Dense and sparse both scored by the Qdrant server, fused by LlamaIndex's Qdrant store."""
        from llama_index.core import VectorStoreIndex

        index = VectorStoreIndex.from_vector_store(self.llama_store(author), embed_model=self.embedder.dense)
        return index.as_retriever(vector_store_query_mode="hybrid", similarity_top_k=k,
                                  sparse_top_k=max(k * 2, 10), filters=filters)

    def fusion_retriever(self, author: str, k: int, filters: Any) -> Any:
        """Dense from embedded Qdrant plus BM25 from bm25s, fused by relative score (as the Qdrant store
        fuses its hybrid results), all LlamaIndex retrievers."""
        from llama_index.core import VectorStoreIndex
        from llama_index.core.llms.mock import MockLLM
        from llama_index.core.retrievers import QueryFusionRetriever

        candidates = max(k * 2, 10)
        index = VectorStoreIndex.from_vector_store(self.llama_store(author), embed_model=self.embedder.dense)
        retrievers = [index.as_retriever(similarity_top_k=candidates, filters=filters)]
        bm25 = self._bm25_index(author)
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

    def _bm25_index(self, author: str) -> Any:
        import bm25s
        import Stemmer
        from llama_index.core.schema import MetadataMode
        from llama_index.core.vector_stores.utils import metadata_dict_to_node

        name = self.collection_for(author)
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
        "platform": chunk.platform.value,
        "kind": chunk.kind.value,
        "version": chunk.version,
        "url": chunk.url,
        "title": chunk.title or "",
        "index": chunk.index,
        "published_at": chunk.published_at.isoformat() if chunk.published_at else "",
    }

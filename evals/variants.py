"""The five ways `twin eval` writes an answer to a held-out instruction, and the held-out data itself.

Variants (all through the product's own paths: the Ray Serve model via its `ModelClient`, the LangGraph agent):

1. ``base``: the base model, the instruction alone (the training prompt format).
2. ``base_retrieval``: the base model, with the author's own passages retrieved from Qdrant quoted in the prompt.
3. ``adapter``: the author's active LoRA adapter, the instruction alone.
4. ``adapter_retrieval``: the adapter with the retrieved passages.
5. ``agent``: the full agent (plan, retrieve, draft with style card and examples, critique, revise).

Held-out means held out everywhere: the documents of the adapter's test split are removed from what every
variant may see (retrieval results, the agent's style card and example posts), through read-only views of the
stores (`HeldOutStore`, `HeldOutVectors`) rather than by touching the stored data.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from evals.hygiene import urls_in
from twin.domain import Adapter, Author, Document, Platform, TwinError
from twin.store import DocumentStore

if TYPE_CHECKING:
    from ingestion.pipeline import IngestionDeps
    from serving.model_client import AdapterRef
    from twin.settings import Settings
    from twin.vectors import VectorStore

log = logging.getLogger("twin.eval")

Variant = Literal["base", "base_retrieval", "adapter", "adapter_retrieval", "agent"]
VARIANTS: tuple[Variant, ...] = ("base", "base_retrieval", "adapter", "adapter_retrieval", "agent")
VARIANT_LABELS: dict[str, str] = {
    "base": "base model",
    "base_retrieval": "base + retrieval",
    "adapter": "adapter",
    "adapter_retrieval": "adapter + retrieval",
    "agent": "full agent (critique)",
}
MIN_HELD_OUT_DOCUMENTS = 2
MIN_HELD_OUT_WORDS = 40


# ------------------------------------------------------------------------------------------ held-out data
class HeldOutItem(BaseModel):
    """One held-out document: the instruction the twin gets, and what the author actually wrote."""

    document_id: int
    url: str
    platform: Platform
    instruction: str
    reference: str


class HeldOutData(BaseModel):
    """The adapter's split of the author's documents, as training made it."""

    items: list[HeldOutItem]
    """One per held-out (test) document, in the split's order."""
    test_examples: list[Any] = Field(default_factory=list)
    """`PromptCompletion`s of the test split (every passage), for perplexity."""
    train_texts: list[str]
    """The author's training answers: the positive class of the style classifier, the copy corpus, the profile."""
    train_instructions: list[str]
    rejected_texts: list[str] = Field(default_factory=list)
    """The base model's answers from the adapter's DPO data (the generic voice), when it has some."""
    held_out_document_ids: list[int]
    source: Literal["adapter_dataset", "rebuilt"]
    """Read from the adapter's own dataset snapshot, or rebuilt with `training.dataset` (same seed)."""
    dataset_dir: str


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_held_out(
    store: DocumentStore, settings: Settings, author: Author, adapter: Adapter, scratch_dir: Path
) -> HeldOutData:
    """The adapter's train/test split: from its dataset snapshot when present, else rebuilt by
    `training.dataset.build_datasets` with the adapter's seed and max length (deterministic)."""
    from training.dataset import PreferencePair, PromptCompletion, adapter_dataset_dir, build_datasets

    dataset_dir = adapter_dataset_dir(settings, author, adapter)
    rejected: list[str] = []
    if dataset_dir is not None:
        train = [PromptCompletion.model_validate(r) for r in _read_jsonl(dataset_dir / "sft_train.jsonl")]
        test = [PromptCompletion.model_validate(r) for r in _read_jsonl(dataset_dir / "sft_test.jsonl")]
        if (dataset_dir / "dpo_train.jsonl").exists():
            pairs = [PreferencePair.model_validate(r) for r in _read_jsonl(dataset_dir / "dpo_train.jsonl")]
            rejected = [p.rejected[-1]["content"] for p in pairs if p.rejected and p.rejected[-1]["content"].strip()]
        source: Literal["adapter_dataset", "rebuilt"] = "adapter_dataset"
    else:
        params = adapter.params or {}
        train_settings = settings.model_copy(
            update={
                "train": settings.train.model_copy(
                    update={
                        "seed": int(params.get("seed", settings.train.seed)),
                        "max_length": int(params.get("max_length", settings.train.max_length)),
                    }
                )
            }
        )
        dataset_dir = scratch_dir / "dataset"
        bundle = build_datasets(store, author.name, train_settings, dataset_dir, with_dpo=False)
        train, test = bundle.splits["train"], bundle.splits["test"]
        source = "rebuilt"

    existing = {d.id for d in store.list_documents(author)}
    test = [ex for ex in test if ex.document_id in existing]
    items: list[HeldOutItem] = []
    seen: set[int] = set()
    for example in test:
        if example.document_id in seen:
            continue  # one item per document: its first passage
        seen.add(example.document_id)
        items.append(
            HeldOutItem(
                document_id=example.document_id,
                url=example.url,
                platform=example.platform,
                instruction=example.instruction,
                reference=example.answer,
            )
        )
    words = sum(len(item.reference.split()) for item in items)
    if len(items) < MIN_HELD_OUT_DOCUMENTS or words < MIN_HELD_OUT_WORDS:
        raise TwinError(
            f"{author.name} has too little held-out text to evaluate: {len(items)} held-out document(s), "
            f"{words} words; the report needs at least {MIN_HELD_OUT_DOCUMENTS} documents and "
            f"{MIN_HELD_OUT_WORDS} words. Ingest more of {author.name}'s writing and retrain "
            "(`twin train`), or raise TWIN_TRAIN__TEST_FRACTION."
        )
    return HeldOutData(
        items=items,
        test_examples=test,
        train_texts=[ex.answer for ex in train],
        train_instructions=[ex.instruction for ex in train],
        rejected_texts=rejected,
        held_out_document_ids=sorted(seen),
        source=source,
        dataset_dir=str(dataset_dir),
    )


# ------------------------------------------------------------------------------- read-only held-out views
class HeldOutStore(DocumentStore):
    """The same database, with the held-out documents left out of document listings (the agent's style card,
    example posts and stylometric profile come from these listings). Writes (runs, drafts) go through."""

    def __init__(self, store: DocumentStore, excluded_document_ids: Sequence[int]) -> None:
        super().__init__(store.engine)
        self.excluded = frozenset(excluded_document_ids)

    def list_documents(self, author: Author, *args: Any, **kwargs: Any) -> list[Document]:
        return [d for d in super().list_documents(author, *args, **kwargs) if d.id not in self.excluded]

    def close(self) -> None:
        """The engine belongs to the store this view was made from."""


class HeldOutVectors:
    """The vector store with the held-out documents' chunks left out of search results."""

    def __init__(self, vectors: VectorStore, excluded_document_ids: Sequence[int]) -> None:
        self.vectors = vectors
        self.excluded = frozenset(excluded_document_ids)
        self._excluded_chunks = sum(vectors.count(document_id=d) for d in self.excluded)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.vectors, name)

    def search(self, author: Author, query: str, k: int = 5, platform: Platform | None = None, kind: Any = None) -> list[Any]:
        # Ask for enough that k remain even if every held-out chunk ranks first.
        hits = self.vectors.search(author, query, k + self._excluded_chunks, platform, kind)
        return [h for h in hits if h.document_id not in self.excluded][:k]


# ------------------------------------------------------------------------------------------- generation
class VariantOutput(BaseModel):
    variant: Variant
    document_id: int
    text: str
    passages: list[str]
    """What the variant saw in its prompt (retrieved passages or the agent's sources); empty for plain ones."""
    seconds: float
    completion_tokens: int | None = None
    revisions: int | None = None
    """Agent only: revision rounds of the final draft."""
    error: str | None = None


def retrieval_messages(instruction: str, passages: Sequence[str]) -> list[dict[str, str]]:
    """The training prompt format (one user turn) with the author's own passages quoted as source material."""
    from tools.prompts import DATA_RULE, quote

    if not passages:
        return [{"role": "user", "content": instruction}]
    sources = "\n\n".join(quote(f"SOURCE {i}", text, max_words=160) for i, text in enumerate(passages, 1))
    content = (
        f"Some of your own earlier writing, as source material. {DATA_RULE}\n\n{sources}\n\n{instruction} "
        "State only facts found in the sources."
    )
    return [{"role": "user", "content": content}]


def retrieve_passages(vectors: HeldOutVectors, author: Author, query: str, k: int) -> list[str]:
    return [hit.text for hit in vectors.search(author, query, k)]


def _text_of(result: Any) -> tuple[str, int | None]:
    """`ModelClient.generate` answers with a `Generation`; accept a bare string too."""
    if isinstance(result, str):
        return result.strip(), None
    return str(result.text).strip(), getattr(result, "completion_tokens", None)


def product_sampling(temperature: float, top_p: float, max_new_tokens: int, seed: int, *,
                     no_links: bool = False) -> Any:
    """The product's decoding (its repetition controls included) at a given temperature, top-p and length;
    `no_links` as the product sets it when its prompt gives no address to cite."""
    from serving.model_client import SamplingParams
    from tools.options import ToolOptions

    product = ToolOptions()
    return SamplingParams(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed,
                          no_links=no_links,
                          repetition_penalty=product.repetition_penalty,
                          no_repeat_ngram_size=product.no_repeat_ngram_size)


class VariantRunner:
    """Writes every variant's answer for every item; model calls run concurrently so Serve can batch them."""

    def __init__(
        self,
        *,
        settings: Settings,
        ingestion: IngestionDeps,
        author: Author,
        adapter: Adapter,
        model: Any,
        data: HeldOutData,
        retrieve_k: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        seed: int,
        agent_concurrency: int = 2,
    ) -> None:
        from ingestion.pipeline import IngestionDeps as Deps
        from serving.model_client import AdapterRef

        self.settings = settings
        self.author = author
        self.adapter = adapter
        self.model = model
        self.data = data
        self.retrieve_k = retrieve_k
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.seed = seed
        self.store = HeldOutStore(ingestion.store, data.held_out_document_ids)
        self.vectors = HeldOutVectors(ingestion.vectors, data.held_out_document_ids)
        self.ingestion = Deps(settings=settings, store=self.store, vectors=self.vectors)  # type: ignore[arg-type]
        self.adapter_ref = AdapterRef(author=author.name, version=adapter.version, path=adapter.path)
        self.model_slots = asyncio.Semaphore(max(1, settings.serve.max_batch_size))
        self.agent_slots = asyncio.Semaphore(max(1, agent_concurrency))
        self._passages: dict[int, list[str]] = {}
        self._agent_deps: Any = None

    def params(self, salt: int, no_links: bool = False) -> Any:
        return product_sampling(self.temperature, self.top_p, self.max_new_tokens, self.seed + salt, no_links=no_links)

    async def generate(self, adapter: AdapterRef | None, messages: list[dict[str, str]], salt: int) -> tuple[str, int | None]:
        # As the product decodes: no address can be written when the prompt gives none to cite.
        no_links = not urls_in("\n".join(m["content"] for m in messages))
        async with self.model_slots:
            return _text_of(await self.model.generate(adapter, messages, self.params(salt, no_links)))

    def retrieved(self, document_id: int) -> list[str]:
        """The passages retrieved for a held-out document's instruction (after `passages_for`)."""
        return self._passages.get(document_id, [])

    async def passages_for(self, item: HeldOutItem) -> list[str]:
        if item.document_id not in self._passages:
            self._passages[item.document_id] = await asyncio.to_thread(
                retrieve_passages, self.vectors, self.author, item.instruction, self.retrieve_k
            )
        return self._passages[item.document_id]

    async def run_one(self, variant: Variant, item: HeldOutItem) -> VariantOutput:
        start = time.perf_counter()
        try:
            if variant == "agent":
                return await self._agent(item, start)
            use_adapter = self.adapter_ref if variant.startswith("adapter") else None
            passages = await self.passages_for(item) if variant.endswith("retrieval") else []
            text, tokens = await self.generate(use_adapter, retrieval_messages(item.instruction, passages), item.document_id)
            return VariantOutput(
                variant=variant, document_id=item.document_id, text=text, passages=passages,
                seconds=time.perf_counter() - start, completion_tokens=tokens,
            )
        except Exception as exc:  # noqa: BLE001 - one failed answer is reported (scored as empty), not fatal
            log.warning("%s failed on document %s: %s", variant, item.document_id, exc, exc_info=not isinstance(exc, TwinError))
            message = str(exc) if isinstance(exc, TwinError) else f"{type(exc).__name__}: {exc}"
            return VariantOutput(
                variant=variant, document_id=item.document_id, text="", passages=[],
                seconds=time.perf_counter() - start, error=message,
            )

    async def _agent(self, item: HeldOutItem, start: float) -> VariantOutput:
        from agents.deps import AgentDeps
        from agents.run import run_to_completion
        from agents.schemas import DraftRequest

        if self._agent_deps is None:  # one for all runs: its metric state (profile) is built once
            self._agent_deps = AgentDeps(settings=self.settings, store=self.store, ingestion=self.ingestion, model=self.model)
        async with self.agent_slots:
            request = DraftRequest(
                author=self.author.name, prompt=item.instruction, platform=item.platform, drafts=1
            )
            result = await run_to_completion(self._agent_deps, request, origin="eval")
        draft = result.drafts[0]
        return VariantOutput(
            variant="agent", document_id=item.document_id, text=draft.text.strip(),
            passages=[s.passage for s in draft.sources], seconds=time.perf_counter() - start,
            revisions=draft.revisions,
        )

    async def generic_answers(self, count: int) -> list[str]:
        """The base model's answers to training instructions: the generic voice, when no DPO data has it."""
        instructions = self.data.train_instructions[:count]
        answers = await asyncio.gather(
            *(self.generate(None, [{"role": "user", "content": text}], 10_000 + i) for i, text in enumerate(instructions))
        )
        return [text for text, _ in answers if text.strip()]

    async def run(
        self,
        variants: Sequence[Variant],
        items: Sequence[HeldOutItem],
        on_done: Callable[[VariantOutput], Awaitable[None] | None] = lambda _: None,
    ) -> list[VariantOutput]:
        async def one(variant: Variant, item: HeldOutItem) -> VariantOutput:
            output = await self.run_one(variant, item)
            maybe = on_done(output)
            if asyncio.iscoroutine(maybe):
                await maybe
            return output

        return list(await asyncio.gather(*(one(v, item) for v in variants for item in items)))

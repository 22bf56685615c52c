"""What the model deployment speaks: names, sampling parameters, requests, generations and stream chunks
(both engines and the client share these; importing them does not import Ray or torch)."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from twin.settings import Settings

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


MODEL_APP_NAME = "twin-model"
MODEL_DEPLOYMENT_NAME = "TwinModel"
BASE_ADAPTER_NAME = "__base__"
"""PEFT's name for "no adapter" in a mixed batch."""


# ---------------------------------------------------------------------------------------------------------
# Typed request and response models (the boundary between the deployment, its client and the API)
# ---------------------------------------------------------------------------------------------------------
class SamplingParams(BaseModel):
    """How one request is decoded. ``temperature=0`` is greedy (deterministic)."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(default=0.7, ge=0.0, le=5.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    max_new_tokens: int | None = Field(default=None, ge=1, le=4096)
    """None: the deployment's default (``settings.serve.max_new_tokens``)."""
    seed: int | None = None
    """Makes a sampled request reproducible; each request has its own random stream, whatever its batch."""
    stop: list[str] = Field(default_factory=list, max_length=8)
    """Generation ends before the first of these strings; the string itself is not returned."""
    repetition_penalty: float = Field(default=1.0, ge=1.0, le=3.0)
    """Above 1, tokens already generated are less likely again (CTRL's penalty; the prompt is exempt, so
    a draft may use its title's words)."""
    no_repeat_ngram_size: int = Field(default=0, ge=0, le=16)
    """Above 0, no word-piece n-gram of this size appears twice in the completion: loops cannot form."""
    no_links: bool = False
    """No token that writes a web address is sampled (`LinkBan`). Set when the prompt shows no address to cite:
    the draft then cannot invent one, instead of having it cut out after."""
    siblings: int = Field(default=1, ge=1, le=8)
    """How many requests with this same prompt and adapter the caller sends at once (a draft's best-of-N
    candidates). The CPU engine holds the first arrivals back briefly (at most ``SIBLING_WAIT_S``) so that
    all of them are prefilled in one forward and read one cached copy of the prompt; decoding is unchanged."""


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class GenerationRequest(BaseModel):
    """What the deployment receives. The adapter is not in the body: it is the multiplexed model id."""

    model_config = ConfigDict(extra="forbid")

    messages: list[ChatMessage] = Field(min_length=1)
    params: SamplingParams = Field(default_factory=SamplingParams)


class Generation(BaseModel):
    """A finished completion."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length"]
    """``stop``: end of turn or a stop string; ``length``: ``max_new_tokens`` reached."""
    adapter: str | None
    """The adapter folder that served it; None when the base model did."""
    adapter_version: int | None = None
    """Filled in by the client from the registry (the deployment knows adapters only by folder)."""
    base_model_only: bool
    base_model: str
    batch_size: int = 1
    """How many requests shared the batched ``generate`` that produced it."""


class StreamChunk(BaseModel):
    """One piece of a streamed completion; the last one carries the finished `Generation`."""

    text: str = ""
    final: Generation | None = None


class ModelInfo(BaseModel):
    base_model: str
    dtype: str
    torch_threads: int
    loaded_adapters: list[str]
    max_batch_size: int
    engine: Literal["continuous", "static", "vllm"] = "static"
    """How the replica batches (the configured engine, unless the model needs the static one); ``vllm``: Ray
    Serve LLM on GPU workers (`serving.vllm_model`)."""
    lora_path: str | None = None
    """``vllm`` only: the cloud folder the GPU replicas load adapters from (the client copies one there first)."""
    quantized: bool = False
    """The decoder runs on int4 weights."""
    rss_bytes: int = 0
    """The replica's resident memory (base model, adapters, caches)."""


class ModelConfig(BaseModel):
    """Everything a replica needs, resolved by the driver (typed, so `.bind()` carries no loose dicts)."""

    model_config = ConfigDict(extra="forbid")

    base_model: str
    """A folder or hub id that `from_pretrained` accepts (already converted by `resolve_base_model`)."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    quantize: Literal["none", "int4"] = "none"
    """``int4``: packed int4 decoder weights where they are exactly int4 (`serving.engine.quantize_for_cpu`)."""
    torch_threads: int | None = None
    """None: what Ray gave the replica (OMP_NUM_THREADS = its CPUs)."""
    max_batch_size: int = Field(default=8, ge=1)
    batch_wait_timeout_s: float = Field(default=0.05, ge=0.0)
    max_new_tokens: int = Field(default=256, ge=1)
    max_adapters: int = Field(default=8, ge=1)
    engine: Literal["continuous", "static"] = "continuous"
    """``continuous``: iteration-level batching (serving/engine.py); ``static``: one ``generate`` per batch."""
    prompt_cache_mb: int = Field(default=128, ge=0)
    """Keys and values of recent prompts kept for prompts that start the same way (continuous engine; 0: off)."""

    @classmethod
    def from_settings(cls, settings: Settings, base_model: str) -> ModelConfig:
        serve_settings = settings.serve
        return cls(
            base_model=base_model,
            dtype=serve_settings.model_dtype,
            quantize=serve_settings.model_quantize,
            torch_threads=serve_settings.torch_threads,
            max_batch_size=serve_settings.max_batch_size,
            batch_wait_timeout_s=serve_settings.batch_wait_timeout_s,
            max_new_tokens=serve_settings.max_new_tokens,
            max_adapters=serve_settings.max_adapters_per_replica,
            engine=serve_settings.model_engine,
            prompt_cache_mb=serve_settings.prompt_cache_mb,
        )


def adapter_name_for(path: str) -> str:
    """A PEFT adapter name (a valid module key) for an adapter folder."""
    return "a" + hashlib.sha1(path.encode()).hexdigest()[:16]


@dataclasses.dataclass
class GenerationJob:
    """One request inside a batch."""

    prompt_ids: list[int]
    params: SamplingParams
    max_new_tokens: int
    adapter_path: str | None


def _held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters might be the start of a stop string (not safe to stream yet)."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


def _row_generator(params: SamplingParams) -> torch.Generator:
    import torch

    generator = torch.Generator()
    generator.manual_seed(params.seed if params.seed is not None else random.SystemRandom().randrange(2**63))
    return generator


NUCLEUS_CANDIDATES = 256
"""Top-p looks for the nucleus among this many most likely tokens first (sorting the whole vocabulary, 49k
tokens, each step cost more than the rest of sampling); only when they hold less than ``top_p`` of the
probability does it sort everything."""


def sample_token(scores: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator) -> int:
    """One token drawn from a row's scores (a 1-D tensor over the vocabulary) with temperature and top-p.

    Exact nucleus sampling: the nucleus is the smallest set of most likely tokens whose probability reaches
    ``top_p`` (the token that crosses it included), renormalised by ``multinomial``.
    """
    import torch

    probs = torch.softmax(scores / temperature, dim=-1)
    if top_p >= 1.0:
        return int(torch.multinomial(probs, 1, generator=generator))
    top, order = probs.topk(min(NUCLEUS_CANDIDATES, probs.shape[-1]))
    if float(top.sum()) < top_p:
        top, order = probs.sort(descending=True)
    outside = top.cumsum(-1) - top > top_p
    top = top.masked_fill(outside, 0.0)
    return int(order[torch.multinomial(top, 1, generator=generator)])


async def final_generation(chunks: AsyncIterator[StreamChunk]) -> Generation:
    """The whole generation of a stream: its last chunk carries it (``final``)."""
    final: Generation | None = None
    async for chunk in chunks:
        final = chunk.final or final
    if final is None:
        raise RuntimeError("the model's stream ended without its final chunk")
    return final


class LinkBan:
    """The tokens a ``no_links`` row may not sample next: any holding ``://`` or being ``www``, always; and
    after a token that ends in ``:`` (or ``:/``), any that starts with ``/``, since ``https`` + ``:`` + ``//``
    spells an address as well as ``https`` + ``://`` does. ``http`` itself stays: an author writes about
    HTTP without linking. Worked out once per tokenizer (a pass over the vocabulary)."""

    def __init__(self, tokenizer: Any) -> None:
        texts = [tokenizer.decode([token_id]) for token_id in range(len(tokenizer))]
        self.always = [i for i, t in enumerate(texts) if "://" in t or t.strip().lower().rstrip(".") == "www"]
        self.after_colon = sorted({*self.always, *(i for i, t in enumerate(texts) if t.startswith("/"))})
        self.colon_ends = frozenset(i for i, t in enumerate(texts) if t.endswith((":", ":/")))

    def banned(self, last_token: int | None) -> list[int]:
        """Token ids the row may not sample after `last_token` (None: nothing generated yet)."""
        return self.after_colon if last_token in self.colon_ends else self.always

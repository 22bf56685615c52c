"""The twin model on Ray Serve: one base model per replica, every author's LoRA adapter multiplexed into it.

One replica holds the base model once. An author's adapter is loaded on first use through Serve's model
multiplexing (the multiplexed model id is the adapter folder, so activating a new version means a new id and
is served on the next request, no restart) into ONE ``PeftModel`` under its own adapter name. Requests are
batched continuously by default (`serving.engine.ContinuousEngine`: a request joins the running batch at the
next decoding step, a finished row leaves at once); ``engine="static"`` (or a model whose cache the
continuous engine cannot splice) batches with ``@serve.batch`` and one ``generate`` per batch instead. Either
way a batch may mix adapters and the bare base model, because PEFT routes each row through its own adapter
(``adapter_names=[...]``, "__base__" = none); each step is fanned out to the callers as text deltas (token
streaming); sampling parameters are per request, so one batch can hold greedy and sampled rows with
different seeds and stops.

    handle = deploy_model(settings)          # local Ray + Serve (or a cluster via settings.serve.ray_address)
    ModelClient(handle).generate(...)        # serving/model_client.py: the typed client
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import dataclasses
import hashlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from ray import serve

from twin.domain import NotFound, TwinError
from twin.settings import Settings

if TYPE_CHECKING:
    import torch
    from ray.serve.handle import DeploymentHandle

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
    engine: Literal["continuous", "static"] = "static"
    """How the replica batches (the configured engine, unless the model needs the static one)."""
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
        )


def adapter_name_for(path: str) -> str:
    """A PEFT adapter name (a valid module key) for an adapter folder."""
    return "a" + hashlib.sha1(path.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------
# The batch engine: plain transformers + PEFT, no Ray (it runs on the replica's single model thread)
# ---------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class GenerationJob:
    """One request inside a batch."""

    prompt_ids: list[int]
    params: SamplingParams
    max_new_tokens: int
    adapter_path: str | None


@dataclasses.dataclass
class _RowState:
    job: GenerationJob
    generator: torch.Generator | None
    token_ids: list[int] = dataclasses.field(default_factory=list)
    text: str = ""
    emitted: int = 0
    finish_reason: Literal["stop", "length"] | None = None


StepSink = Callable[[list[list[StreamChunk]]], None]
"""Receives, once per decoding step, the new chunks of every row of the batch (an empty list: nothing new)."""


def _held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters might be the start of a stop string (not safe to stream yet)."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


class _PerRowSampler:
    """A logits processor that applies each row's own decoding controls and samples sampled rows.

    Repetition controls are Hugging Face's own processors run on one row at a time, over the completion
    only (the left-padded prompts all end at ``prompt_length``). ``generate`` runs greedy for the whole
    batch; for a sampled row this processor draws the token itself with the row's temperature, top-p and
    RNG and leaves only that token finite, so greedy picks it. Greedy rows get the controls, then argmax.
    """

    def __init__(self, rows: list[_RowState], prompt_length: int) -> None:
        from transformers import NoRepeatNGramLogitsProcessor, RepetitionPenaltyLogitsProcessor

        self.rows = rows
        self.prompt_length = prompt_length
        self.sampled = {i for i, row in enumerate(rows) if row.job.params.temperature > 0}
        self.controls: dict[int, list[Any]] = {}
        for i, row in enumerate(rows):
            params = row.job.params
            controls: list[Any] = []
            if params.repetition_penalty > 1.0:
                controls.append(RepetitionPenaltyLogitsProcessor(params.repetition_penalty))
            if params.no_repeat_ngram_size > 0:
                controls.append(NoRepeatNGramLogitsProcessor(params.no_repeat_ngram_size))
            if controls:
                self.controls[i] = controls

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        completion = input_ids[:, self.prompt_length :]
        for i, controls in self.controls.items():
            if completion.shape[1] == 0:
                break
            row_scores = scores[i : i + 1]
            for control in controls:
                row_scores = control(completion[i : i + 1], row_scores)
            scores[i] = row_scores[0]
        for i in self.sampled:
            row = self.rows[i]
            probs = torch.softmax(scores[i] / row.job.params.temperature, dim=-1)
            if row.job.params.top_p < 1.0:
                sorted_probs, order = probs.sort(descending=True)
                outside = sorted_probs.cumsum(-1) - sorted_probs > row.job.params.top_p
                sorted_probs[outside] = 0.0
                probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
            token = torch.multinomial(probs, 1, generator=row.generator)
            scores[i].fill_(float("-inf"))
            scores[i, token] = 0.0
        return scores


class _BatchTracker:
    """A stopping criterion that also turns each step's new tokens into per-row text deltas.

    ``generate`` calls stopping criteria once per step with the whole batch's ids (the new token last),
    before anything else sees the token, so this is where each row's end of turn, stop strings and own
    ``max_new_tokens`` are decided, and where the text is streamed out.
    """

    def __init__(self, rows: list[_RowState], tokenizer: Any, eos_ids: set[int], sink: StepSink,
                 cancelled: Callable[[], bool]) -> None:
        self.rows = rows
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.sink = sink
        self.cancelled = cancelled

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        import torch

        new_tokens = input_ids[:, -1].tolist()
        stop_everything = self.cancelled()
        step: list[list[StreamChunk]] = []
        for row, token in zip(self.rows, new_tokens):
            if row.finish_reason is not None:
                step.append([])
                continue
            if token in self.eos_ids:
                row.finish_reason = "stop"
            else:
                row.token_ids.append(token)
                row.text = self.tokenizer.decode(row.token_ids, skip_special_tokens=True)
                for stop in row.job.params.stop:
                    at = row.text.find(stop)
                    if at >= 0:
                        row.text = row.text[:at]
                        row.finish_reason = "stop"
                if row.finish_reason is None and len(row.token_ids) >= row.job.max_new_tokens:
                    row.finish_reason = "length"
            if stop_everything and row.finish_reason is None:
                row.finish_reason = "length"
            step.append(self._chunks(row))
        self.sink(step)
        return torch.tensor([row.finish_reason is not None for row in self.rows], dtype=torch.bool)

    def finish_all(self) -> None:
        """After ``generate`` returns: close rows it ended without us seeing it (e.g. the overall length cap)."""
        step = []
        for row in self.rows:
            if row.finish_reason is None:
                row.finish_reason = "length"
                step.append(self._chunks(row))
            else:
                step.append([])
        if any(step):
            self.sink(step)

    def _chunks(self, row: _RowState) -> list[StreamChunk]:
        if row.finish_reason is None:
            # Hold back a half-decoded UTF-8 character and anything that may turn out to be a stop string.
            safe = len(row.text) - _held_back(row.text, row.job.params.stop)
            safe = len(row.text[:safe].rstrip("\ufffd"))
            if safe <= row.emitted:
                return []
            delta, row.emitted = row.text[row.emitted:safe], safe
            return [StreamChunk(text=delta)]
        delta, row.emitted = row.text[row.emitted:], len(row.text)
        return [StreamChunk(text=delta, final=self._generation(row))]

    def _generation(self, row: _RowState) -> Generation:
        assert row.finish_reason is not None
        return Generation(
            text=row.text,
            prompt_tokens=len(row.job.prompt_ids),
            completion_tokens=len(row.token_ids),
            finish_reason=row.finish_reason,
            adapter=row.job.adapter_path,
            base_model_only=row.job.adapter_path is None,
            base_model="",  # filled in by the deployment
            batch_size=len(self.rows),
        )


class BatchEngine:
    """The base model, its tokenizer and the adapters loaded into it; generates whole batches.

    Not thread-safe on purpose: the deployment calls it from one model thread only, so adapter loads,
    evictions and generation never overlap.
    """

    def __init__(self, config: ModelConfig) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        self.config = config
        self.dtype = getattr(torch, config.dtype)
        self.tokenizer = AutoTokenizer.from_pretrained(config.base_model)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # Prompts are encoded on the replica's event loop while the model thread decodes: a fast tokenizer
        # must not be used from two threads at once ("Already borrowed"), so each side has its own.
        self.prompt_tokenizer = AutoTokenizer.from_pretrained(config.base_model)
        self.base = AutoModelForCausalLM.from_pretrained(config.base_model, dtype=self.dtype).eval()
        self.quantized = False
        if config.quantize == "int4":
            from serving.engine import quantize_for_cpu

            self.quantized = quantize_for_cpu(self.base)
            if not self.quantized:
                log.warning("%s's weights are not exactly int4: serving them as loaded", config.base_model)
        self.peft: Any = None
        """The PeftModel wrapping `base`, created with the first adapter and unwrapped after the last."""
        self._adapter_paths: dict[str, str] = {}
        """PEFT adapter name -> folder, for the adapters loaded into `peft`."""
        eos = self.base.generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) | {self.tokenizer.eos_token_id}
        self.context_tokens = int(getattr(self.base.config, "max_position_embeddings", 2048))

    # adapters --------------------------------------------------------------------------------------
    @property
    def loaded_adapters(self) -> list[str]:
        """Folders of the adapters in memory."""
        return list(self._adapter_paths.values())

    def load_adapter(self, path: str) -> str:
        from peft import PeftModel

        name = adapter_name_for(path)
        if name in self._adapter_paths:
            return name
        if not (Path(path) / "adapter_config.json").exists():
            raise NotFound(f"Adapter folder {path} has no adapter_config.json (was it deleted?).")
        # Adapters run in the base model's dtype (PEFT would otherwise keep them in fp32 under a bf16 base).
        if self.peft is None:
            self.peft = PeftModel.from_pretrained(self.base, path, adapter_name=name, torch_device="cpu",
                                                  autocast_adapter_dtype=False)
        else:
            self.peft.load_adapter(path, adapter_name=name, torch_device="cpu", autocast_adapter_dtype=False)
        self.peft.to(self.dtype).eval()
        self._adapter_paths[name] = path
        log.info("loaded adapter %s as %s", path, name)
        return name

    def unload_adapter(self, path: str) -> None:
        name = adapter_name_for(path)
        if self._adapter_paths.pop(name, None) is None:
            return
        if not self._adapter_paths:
            self.base = self.peft.unload()  # the last one: back to the plain model, LoRA layers removed
            self.peft = None
        else:
            self.peft.delete_adapter(name)
        log.info("unloaded adapter %s", path)

    # generation ------------------------------------------------------------------------------------
    def encode_chat(self, messages: list[ChatMessage]) -> list[int]:
        """The prompt in the model's chat template, ending where the assistant's turn begins."""
        text = self.prompt_tokenizer.apply_chat_template(
            [m.model_dump() for m in messages], tokenize=False, add_generation_prompt=True
        )
        return self.prompt_tokenizer(text, add_special_tokens=False)["input_ids"]

    def make_job(self, request: GenerationRequest, adapter_path: str | None) -> GenerationJob:
        prompt_ids = self.encode_chat(request.messages)
        max_new = request.params.max_new_tokens or self.config.max_new_tokens
        if len(prompt_ids) + max_new > self.context_tokens:
            raise TwinError(
                f"The prompt is {len(prompt_ids)} tokens; with max_new_tokens={max_new} it exceeds the "
                f"model's context of {self.context_tokens} tokens. Shorten it."
            )
        return GenerationJob(prompt_ids=prompt_ids, params=request.params, max_new_tokens=max_new,
                             adapter_path=adapter_path)

    def generate(self, jobs: list[GenerationJob], sink: StepSink, cancelled: Callable[[], bool] = lambda: False,
                 ) -> None:
        """Decode a batch (left-padded, one forward per step for all rows), streaming each step to `sink`."""
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        for job in jobs:
            if job.adapter_path is not None:
                self.load_adapter(job.adapter_path)  # evicted between routing and batching: reload
        rows = [
            _RowState(job=job, generator=_row_generator(job.params) if job.params.temperature > 0 else None)
            for job in jobs
        ]
        batch = self.tokenizer.pad({"input_ids": [job.prompt_ids for job in jobs]}, return_tensors="pt")
        tracker = _BatchTracker(rows, self.tokenizer, self.eos_ids, sink, cancelled)
        generation_config = GenerationConfig(
            max_new_tokens=max(job.max_new_tokens for job in jobs),
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=sorted(self.eos_ids),
        )
        kwargs: dict[str, Any] = dict(
            **batch,
            generation_config=generation_config,
            logits_processor=LogitsProcessorList([_PerRowSampler(rows, batch["input_ids"].shape[1])]),
            stopping_criteria=StoppingCriteriaList([tracker]),
        )
        model = self.base
        if self.peft is not None:
            model = self.peft
            kwargs["adapter_names"] = [
                adapter_name_for(job.adapter_path) if job.adapter_path else BASE_ADAPTER_NAME for job in jobs
            ]
        with torch.inference_mode():
            model.generate(**kwargs)
        tracker.finish_all()

    def info(self) -> ModelInfo:
        import psutil
        import torch

        return ModelInfo(base_model=self.config.base_model, dtype=self.config.dtype,
                         torch_threads=torch.get_num_threads(), loaded_adapters=self.loaded_adapters,
                         max_batch_size=self.config.max_batch_size, quantized=self.quantized,
                         rss_bytes=psutil.Process().memory_info().rss)


def _row_generator(params: SamplingParams) -> torch.Generator:
    import torch

    generator = torch.Generator()
    generator.manual_seed(params.seed if params.seed is not None else random.SystemRandom().randrange(2**63))
    return generator


# ---------------------------------------------------------------------------------------------------------
# The Serve deployment
# ---------------------------------------------------------------------------------------------------------
class _LoadedAdapter:
    """What Serve's multiplexer caches per adapter id; evicting it (LRU) unloads the adapter from PEFT."""

    def __init__(self, path: str, unload: Callable[[str], None]) -> None:
        self.path = path
        self._unload: Callable[[str], None] | None = unload

    def __del__(self) -> None:
        # Serve calls this on LRU eviction; Python calls it again at garbage collection: act only once.
        unload, self._unload = self._unload, None
        if unload is not None:
            unload(self.path)


def _enqueue_without_multiplexed_id(enqueue: Callable[[], Any]) -> Any:
    """Call a ``@serve.batch`` method so that its request carries no multiplexed model id.

    Serve splits every batch by multiplexed model id (right for models that cannot mix). Ours can: PEFT
    runs each row through its own adapter, so requests for different adapters must share one batch. The
    id is only hidden from the batch queue, in a copy of the request's context.
    """
    from ray.serve import context as serve_context

    def run() -> Any:
        current = serve_context._get_serve_request_context()
        serve_context._serve_request_context.set(dataclasses.replace(current, multiplexed_model_id=""))
        return enqueue()

    return contextvars.copy_context().run(run)


@serve.deployment(name=MODEL_DEPLOYMENT_NAME, max_ongoing_requests=64, graceful_shutdown_timeout_s=5)
class TwinModel:
    """The base model once per replica, adapters multiplexed in, requests batched, tokens streamed.

    Call with ``handle.options(multiplexed_model_id=<adapter folder>)`` for an author's adapter, and
    without one for the base model. ``generate`` answers once; ``stream`` (``handle.options(stream=True)``)
    yields `StreamChunk`s, the last with the finished `Generation`.
    """

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        # One thread owns the model: adapter loads, evictions and batches (or decoding steps) run there one
        # after another.
        self._model_thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="twin-model")
        self.engine = self._model_thread.submit(BatchEngine, config).result()
        self.continuous: Any = None
        """The `ContinuousEngine` (its own loop thread then owns the model); None: static batches."""
        if config.engine == "continuous":
            from serving.engine import ContinuousEngine, UnsupportedModel

            try:
                self.continuous = ContinuousEngine(self.engine, max_batch_size=config.max_batch_size)
            except UnsupportedModel as exc:
                log.warning("continuous batching unavailable, batching statically: %s", exc)
            else:
                self._model_thread.shutdown()
                self.continuous.start()
        self._run_batch.set_max_batch_size(config.max_batch_size)
        self._run_batch.set_batch_wait_timeout_s(config.batch_wait_timeout_s)

        async def load_adapter(adapter_path: str) -> _LoadedAdapter:
            if self.continuous is not None:
                await asyncio.wrap_future(self.continuous.call(lambda: self.continuous.load_adapter(adapter_path)))
            else:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self._model_thread, self.engine.load_adapter, adapter_path)
            return _LoadedAdapter(adapter_path, self._unload_later)

        self._multiplexed_adapter = serve.multiplexed(max_num_models_per_replica=config.max_adapters)(load_adapter)
        log.info("TwinModel ready (%s batching): %s", "continuous" if self.continuous else "static",
                 self.engine.info().model_dump())

    def _unload_later(self, adapter_path: str) -> None:
        # Queued behind the running step or batch on the model thread, never in the middle of one.
        if self.continuous is not None:
            self.continuous.call(lambda: self.continuous.unload_adapter(adapter_path))
        else:
            self._model_thread.submit(self.engine.unload_adapter, adapter_path)

    async def ready(self) -> ModelInfo:
        """A cheap probe: the replica answers while a batch is being generated."""
        return self.engine.info().model_copy(update={"engine": "continuous" if self.continuous else "static"})

    async def generate(self, request: GenerationRequest) -> Generation:
        final: Generation | None = None
        async for chunk in self.stream(request):
            final = chunk.final or final
        assert final is not None
        return final

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamChunk]:
        adapter_path = serve.get_multiplexed_model_id() or None
        if adapter_path is not None:
            await self._multiplexed_adapter(adapter_path)
        job = self.engine.make_job(request, adapter_path)
        if self.continuous is not None:
            async for chunk in self._stream_continuous(job):
                yield chunk
            return
        steps = _enqueue_without_multiplexed_id(lambda: self._run_batch(job))
        async for chunks in steps:
            for chunk in chunks:
                if chunk.final is not None:
                    chunk.final.base_model = self.config.base_model
                yield chunk

    async def _stream_continuous(self, job: GenerationJob) -> AsyncIterator[StreamChunk]:
        """Submit to the running batch; relay this request's chunks until its final one."""
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[list[StreamChunk] | BaseException] = asyncio.Queue()
        ticket = self.continuous.submit(job, lambda item: loop.call_soon_threadsafe(pieces.put_nowait, item))
        try:
            while True:
                item = await pieces.get()
                if isinstance(item, BaseException):
                    raise item
                for chunk in item:
                    if chunk.final is not None:
                        chunk.final.base_model = self.config.base_model
                    yield chunk
                    if chunk.final is not None:
                        return
        finally:
            ticket.cancel()  # a caller that went away frees its slot at the next step

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.05)
    async def _run_batch(self, jobs: list[GenerationJob]) -> AsyncIterator[list[Any]]:
        """One ``generate`` for the whole batch; yields, per step, each row's new chunks (Serve's batch
        protocol: one list entry per request, ``StopIteration`` once a request is done)."""
        loop = asyncio.get_running_loop()
        steps: asyncio.Queue[list[list[StreamChunk]] | None] = asyncio.Queue()
        abandoned = False

        def sink(step: list[list[StreamChunk]]) -> None:
            loop.call_soon_threadsafe(steps.put_nowait, step)

        work = loop.run_in_executor(self._model_thread, self.engine.generate, jobs, sink, lambda: abandoned)
        work.add_done_callback(lambda _: steps.put_nowait(None))
        finished = [False] * len(jobs)
        try:
            while (step := await steps.get()) is not None:
                out: list[Any] = []
                for i, chunks in enumerate(step):
                    if finished[i]:
                        out.append(StopIteration)
                        continue
                    finished[i] = any(chunk.final is not None for chunk in chunks)
                    out.append(chunks)
                yield out
            await work  # raises what generation raised
        finally:
            abandoned = True  # the callers are gone: the model thread stops this batch at its next step



# ---------------------------------------------------------------------------------------------------------
# Building and deploying
# ---------------------------------------------------------------------------------------------------------
def build_model_app(settings: Settings) -> serve.Application:
    """The model application: the base model resolved (converted once) here, in the driver."""
    from twin.models import resolve_base_model

    config = ModelConfig.from_settings(settings, resolve_base_model(settings))
    return TwinModel.options(
        ray_actor_options={"num_cpus": settings.serve.model_num_cpus},
        max_ongoing_requests=max(64, 4 * config.max_batch_size),
    ).bind(config)


def start_ray_and_serve(settings: Settings, *, http: bool = False) -> bool:
    """Attach to the configured Ray cluster (setting or ``RAY_ADDRESS``), or start a local one; then start
    Serve (idempotent).

    Serve's HTTP proxy stays off unless asked (handles need none); when on it binds `settings.serve`'s
    host and port, loopback by default. Returns True when this call started a local Ray (its owner should
    stop it with :func:`stop_local_ray`).
    """
    from twin.ray_cluster import connect

    # The cluster named by the setting or RAY_ADDRESS, else a local Ray of our own (twin.ray_cluster).
    started = connect(
        settings,
        local={"num_cpus": settings.serve.ray_num_cpus, "include_dashboard": False},
        logging_level=logging.WARNING,
        log_to_driver=False,  # replica and worker output (weight-loading bars, warnings) stays in Ray's log files
    )
    proxy: dict[str, Any] = (
        {"proxy_location": "HeadOnly", "http_options": {"host": settings.serve.host, "port": settings.serve.port}}
        if http else {"proxy_location": "Disabled"}
    )
    serve.start(**proxy)
    return started


def stop_local_ray() -> None:
    """Stop Serve and the local Ray this process started.

    Ray's processes die with the *thread* that started them (Linux parent-death signal), so an owner whose
    starting thread may end (an event loop's executor) must stop Ray itself first; otherwise this process
    keeps a Ray handle on a dead cluster and Ray ends the whole process a minute later.
    """
    import ray

    if ray.is_initialized():
        serve.shutdown()
        ray.shutdown()


def deploy_model(settings: Settings, *, http: bool = False) -> DeploymentHandle:
    """Start (or attach to) Ray and Serve and run the model app under `MODEL_APP_NAME`; reuse it when it
    already runs. Returns the deployment's handle."""
    start_ray_and_serve(settings, http=http)
    return run_model_app(settings)


def run_model_app(settings: Settings) -> DeploymentHandle:
    """`deploy_model` once Ray and Serve are up (for an owner that started them itself)."""
    status = serve.status().applications.get(MODEL_APP_NAME)
    if status is None or status.status != "RUNNING":
        serve.run(build_model_app(settings), name=MODEL_APP_NAME, route_prefix=None, blocking=False)
        _wait_until_running(settings.serve.model_start_timeout_s)
    return serve.get_deployment_handle(MODEL_DEPLOYMENT_NAME, app_name=MODEL_APP_NAME)


def _wait_until_running(timeout_s: float) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        app = serve.status().applications.get(MODEL_APP_NAME)
        if app is not None and app.status == "RUNNING":
            return
        if app is not None and app.status in ("DEPLOY_FAILED", "UNHEALTHY"):
            raise TwinError(f"The model deployment failed: {app.message}")
        if time.monotonic() > deadline:
            raise TwinError(f"The model deployment did not start within {timeout_s:.0f} s.")
        time.sleep(0.5)

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
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from ray import serve

from serving.generation import (
    MODEL_APP_NAME,
    MODEL_DEPLOYMENT_NAME,
    Generation,
    GenerationJob,
    GenerationRequest,
    ModelConfig,
    ModelInfo,
    StreamChunk,
    final_generation,
)
from serving.static_engine import BatchEngine
from twin.domain import TwinError
from twin.settings import Settings

if TYPE_CHECKING:
    from ray.serve.handle import DeploymentHandle

log = logging.getLogger(__name__)


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
        return await final_generation(self.stream(request))

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
    """The model application: the base model resolved (converted once) here, in the driver; Ray Serve LLM
    with vLLM on GPU workers when ``serve.llm_engine`` is ``vllm``."""
    from twin.models import resolve_base_model

    if settings.serve.llm_engine == "vllm":
        from serving.vllm_model import build_vllm_app

        return build_vllm_app(settings)
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

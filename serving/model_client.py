"""The typed client of the model deployment: which adapter serves an author, generate, stream.

    client = ModelClient(deploy_model(settings))          # or ModelClient(settings): attach to a running one
    adapter = adapter_for_author(store, "alice")           # None: the base model serves her
    generation = await client.generate(adapter, [{"role": "user", "content": "..."}], SamplingParams())
    async for piece in client.stream(adapter, messages, params): ...

The adapter's folder is the multiplexed model id, so activating a new version in the registry (a new folder)
is served on the next request without restarting anything. A deployment that is down, still starting or
unreachable raises `Unavailable` within ``settings.serve.model_probe_timeout_s``: never a hang.

On GPU clusters (``TWIN_SERVE__LLM_ENGINE=vllm``, `serving.vllm_model`) the same calls reach vLLM; the
deployment turns the adapter folder into vLLM's LoRA model id, and this client first copies the folder to the
lora path the GPU replicas read from (once per adapter version).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from serving.generation import (
    MODEL_APP_NAME,
    MODEL_DEPLOYMENT_NAME,
    ChatMessage,
    Generation,
    GenerationRequest,
    ModelInfo,
    SamplingParams,
    StreamChunk,
)
from twin.domain import TwinError, Unavailable
from twin.settings import Settings
from twin.store import DocumentStore

if TYPE_CHECKING:
    from ray.serve.handle import DeploymentHandle

__all__ = ["AdapterRef", "Generation", "ModelClient", "SamplingParams", "StreamChunk", "adapter_for_author"]

log = logging.getLogger(__name__)

RETRY_HINT = "retry in a few seconds"


class AdapterRef(BaseModel):
    """The adapter version that serves an author."""

    author: str
    version: int
    path: str


def adapter_for_author(store: DocumentStore, author_name: str) -> AdapterRef | None:
    """The author's active adapter in the registry; None when the base model serves them.

    Raises `NotFound` for an unknown author."""
    author = store.get_author(author_name)
    adapter = store.active_adapter(author)
    if adapter is None:
        return None
    return AdapterRef(author=author.name, version=adapter.version, path=adapter.path)


class ModelClient:
    """Talks to the `TwinModel` deployment through a Serve handle (in-process, or attached via Ray)."""

    def __init__(self, target: DeploymentHandle | Settings, *, settings: Settings | None = None,
                 probe_timeout_s: float | None = None, request_timeout_s: float | None = None) -> None:
        """`target`: a handle (from `deploy_model`), or settings to attach to a running deployment through
        Ray. Timeouts come from `settings.serve` (the given settings, else the target's, else defaults)."""
        attach_settings = target if isinstance(target, Settings) else None
        settings = settings or attach_settings
        serve_settings = (settings or Settings(_env_file=None)).serve
        self._attach_settings = attach_settings
        self._handle: Any = None if attach_settings is not None else target
        self._info: ModelInfo | None = None
        """The last probe's answer (which engine serves, and for vLLM where it reads adapters from)."""
        self._synced_adapters: set[str] = set()
        self.probe_timeout_s = probe_timeout_s if probe_timeout_s is not None else serve_settings.model_probe_timeout_s
        self.request_timeout_s = (
            request_timeout_s if request_timeout_s is not None else serve_settings.request_timeout_s
        )

    # public API ------------------------------------------------------------------------------------
    async def info(self) -> ModelInfo:
        """What the deployment runs (base model, dtype, threads, loaded adapters); `Unavailable` when down."""
        handle = await self._ready_handle()
        return await self._call(handle.ready.remote(), self.probe_timeout_s)

    async def generate(self, adapter: AdapterRef | None, messages: Sequence[dict[str, str] | ChatMessage],
                       params: SamplingParams | None = None) -> Generation:
        handle = await self._ready_handle()
        request = _request(messages, params)
        await self._publish_adapter(adapter)
        generation: Generation = await self._call(
            self._for_adapter(handle, adapter).generate.remote(request), self.request_timeout_s
        )
        return _with_version(generation, adapter)

    async def stream(self, adapter: AdapterRef | None, messages: Sequence[dict[str, str] | ChatMessage],
                     params: SamplingParams | None = None) -> AsyncIterator[str]:
        """Text deltas as the tokens are decoded; joined, they are the whole completion."""
        async for chunk in self.stream_chunks(adapter, messages, params):
            if chunk.text:
                yield chunk.text

    async def stream_chunks(self, adapter: AdapterRef | None, messages: Sequence[dict[str, str] | ChatMessage],
                            params: SamplingParams | None = None) -> AsyncIterator[StreamChunk]:
        """Like `stream`, plus a last chunk whose ``final`` is the finished `Generation` (token counts)."""
        handle = await self._ready_handle()
        request = _request(messages, params)
        await self._publish_adapter(adapter)
        chunks = self._for_adapter(handle, adapter).options(stream=True).stream.remote(request)
        iterator = chunks.__aiter__()
        while True:
            try:
                chunk: StreamChunk = await self._call(iterator.__anext__(), self.request_timeout_s)
            except StopAsyncIteration:
                return
            if chunk.final is not None:
                chunk = chunk.model_copy(update={"final": _with_version(chunk.final, adapter)})
            yield chunk

    # plumbing ----------------------------------------------------------------------------------------
    @staticmethod
    def _for_adapter(handle: Any, adapter: AdapterRef | None) -> Any:
        return handle.options(multiplexed_model_id=adapter.path) if adapter is not None else handle

    async def _ready_handle(self) -> Any:
        """The handle, after the deployment answered a probe in time (a down model fails here, fast)."""
        if self._handle is None:
            try:
                self._handle = await asyncio.wait_for(asyncio.to_thread(self._attach), self.probe_timeout_s)
            except Exception as exc:  # noqa: BLE001 - no cluster, no Serve, no such app: all "not reachable"
                raise Unavailable(f"The model deployment is not reachable ({_describe(exc)}); {RETRY_HINT}.") from exc
        self._info = await self._call(self._handle.ready.remote(), self.probe_timeout_s)
        return self._handle

    async def _publish_adapter(self, adapter: AdapterRef | None) -> None:
        """vLLM engine: copy the adapter's folder to the lora path its GPU replicas read (once per version);
        the CPU engine reads the folder itself."""
        info = self._info
        if adapter is None or info is None or info.engine != "vllm" or not info.lora_path:
            return
        if adapter.path in self._synced_adapters:
            return
        from serving.llm_vllm import sync_adapter

        try:
            await asyncio.to_thread(sync_adapter, adapter.path, info.lora_path)
        except OSError as exc:
            raise Unavailable(f"Could not copy {adapter.author}'s adapter v{adapter.version} to {info.lora_path} "
                              f"({_describe(exc)}); check that this machine can write there.") from exc
        self._synced_adapters.add(adapter.path)

    def _attach(self) -> Any:
        import ray
        from ray import serve

        assert self._attach_settings is not None
        if not ray.is_initialized():
            # Only attach: starting a Ray here would mean a second, empty cluster.
            ray.init(address=self._attach_settings.serve.ray_address or "auto", logging_level=logging.WARNING,
                     log_to_driver=False)
        return serve.get_deployment_handle(MODEL_DEPLOYMENT_NAME, app_name=MODEL_APP_NAME)

    async def _call(self, awaitable: Any, timeout_s: float) -> Any:
        """Await a deployment call; user errors keep their type, everything else means "unavailable"."""
        from ray.exceptions import RayTaskError

        try:
            return await asyncio.wait_for(awaitable, timeout_s)
        except StopAsyncIteration:
            raise
        except TimeoutError as exc:
            raise Unavailable(
                f"The model deployment did not answer within {timeout_s:.0f} s; {RETRY_HINT}."
            ) from exc
        except RayTaskError as exc:
            if isinstance(exc.cause, TwinError):
                raise exc.cause from None
            raise Unavailable(f"The model deployment failed ({_describe(exc)}); {RETRY_HINT}.") from exc
        except TwinError:
            raise
        except Exception as exc:  # noqa: BLE001 - dead actors, deleted apps, lost connections: all "down"
            raise Unavailable(f"The model deployment is unavailable ({_describe(exc)}); {RETRY_HINT}.") from exc


def _request(messages: Sequence[dict[str, str] | ChatMessage], params: SamplingParams | None) -> GenerationRequest:
    return GenerationRequest(
        messages=[ChatMessage.model_validate(m) for m in messages], params=params or SamplingParams()
    )


def _with_version(generation: Generation, adapter: AdapterRef | None) -> Generation:
    if adapter is None:
        return generation
    return generation.model_copy(update={"adapter_version": adapter.version})


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__

"""The twin on GPU clusters: Ray Serve LLM (vLLM engine, multi-LoRA) behind the same deployment name and
methods as `serving.model.TwinModel`, so `ModelClient`, the API and the agent do not change.

    TWIN_SERVE__LLM_ENGINE=vllm TWIN_BASE_MODEL=Qwen/Qwen2.5-7B-Instruct \\
    TWIN_SERVE__VLLM__LORA_PATH=s3://bucket/twin-adapters TWIN_SERVE__RAY_ADDRESS=auto twin serve

`TwinVllmModel` (CPU, no vLLM needed) takes our `GenerationRequest` with the adapter folder as the
multiplexed model id, and calls Ray Serve LLM's ``LLMServer`` (on the GPU workers, where vLLM is installed)
with the matching OpenAI-style chat request and LoRA model id (`serving.llm_vllm`). Untested on GPUs so far.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from ray import serve

from serving.generation import (
    MODEL_DEPLOYMENT_NAME,
    Generation,
    GenerationRequest,
    ModelInfo,
    StreamChunk,
    final_generation,
)
from serving.llm_vllm import StreamAssembler, chat_request_fields, lora_model_id, stream_events
from twin.domain import TwinError
from twin.settings import Settings

if TYPE_CHECKING:
    from ray.serve.handle import DeploymentHandle

log = logging.getLogger(__name__)


class VllmGatewayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_model: str
    max_new_tokens: int
    lora_path: str | None
    max_adapters: int


@serve.deployment(name=MODEL_DEPLOYMENT_NAME, max_ongoing_requests=256, graceful_shutdown_timeout_s=5)
class TwinVllmModel:
    """`TwinModel`'s methods (``ready``, ``generate``, ``stream``) over Ray Serve LLM's ``LLMServer``."""

    def __init__(self, llm_server: DeploymentHandle, config: VllmGatewayConfig) -> None:
        self.llm_server = llm_server
        self.config = config

    async def ready(self) -> ModelInfo:
        return ModelInfo(base_model=self.config.base_model, dtype="auto", torch_threads=0, loaded_adapters=[],
                         max_batch_size=0, engine="vllm", lora_path=self.config.lora_path)

    async def generate(self, request: GenerationRequest) -> Generation:
        return await final_generation(self.stream(request))

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamChunk]:
        from ray.serve.llm.openai_api_models import ChatCompletionRequest  # vLLM's protocol: GPU image only

        adapter_path = serve.get_multiplexed_model_id() or None
        if adapter_path is not None and self.config.lora_path is None:
            raise TwinError("This vLLM deployment serves the base model only: set TWIN_SERVE__VLLM__LORA_PATH "
                            "to a cloud folder the GPU workers can read adapters from.")
        body = ChatCompletionRequest(**chat_request_fields(request, adapter_path,
                                                            default_max_new_tokens=self.config.max_new_tokens))
        handle: Any = self.llm_server.options(stream=True)
        if adapter_path is not None:
            # Serve routes to a replica that already has this LoRA loaded (Ray Serve LLM's own routing).
            handle = handle.options(multiplexed_model_id=lora_model_id(adapter_path))
        answer = StreamAssembler(adapter_path=adapter_path, base_model=self.config.base_model)
        async for item in handle.chat.remote(body):
            for delta in answer.feed(stream_events(item)):
                yield StreamChunk(text=delta)
        yield StreamChunk(final=answer.final())


def build_vllm_app(settings: Settings) -> serve.Application:
    """Ray Serve LLM's deployment for the configured model, with `TwinVllmModel` in front of it."""
    try:
        from ray.serve.llm import LLMConfig, build_llm_deployment
    except ImportError as exc:
        raise TwinError(
            f"TWIN_SERVE__LLM_ENGINE=vllm needs Ray Serve LLM with vLLM here and on the GPU workers "
            f"(pip install 'ray[llm]'): {exc}"
        ) from exc

    from serving.llm_vllm import llm_config_fields, model_source
    from twin.models import resolve_base_model
    from twin.settings import DEFAULT_BASE_MODEL

    builtin = not settings.serve.vllm.model_source and settings.base_model == DEFAULT_BASE_MODEL
    source = model_source(settings, resolve_base_model(settings) if builtin else None)
    llm_app = build_llm_deployment(LLMConfig(**llm_config_fields(settings, source)), name_prefix="twin-")
    config = VllmGatewayConfig(base_model=source, max_new_tokens=settings.serve.max_new_tokens,
                               lora_path=settings.serve.vllm.lora_path,
                               max_adapters=settings.serve.max_adapters_per_replica)
    return TwinVllmModel.bind(llm_app, config)

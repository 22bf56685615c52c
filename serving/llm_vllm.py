"""The GPU-cluster engine's pure parts: Ray Serve LLM's `LLMConfig` from `Settings`, our requests as
OpenAI-style chat requests for vLLM, its streamed answer back as our chunks, and adapter folders as vLLM
LoRA model ids (``TWIN_SERVE__LLM_ENGINE=vllm``; the deployment is `serving.vllm_model`).

Nothing here imports Ray, vLLM or torch, so the mapping is tested on machines without a GPU.

Adapters: Ray Serve LLM loads LoRA adapters only from cloud storage (``lora_config.dynamic_lora_loading_path``
must be ``s3://``, ``gs://``, ``abfss://`` or ``azure://``), by model id ``<base model id>:<lora id>`` from
``<dynamic_lora_loading_path>/<lora id>``. A registered adapter lives in ``<adapters>/author-<id>/v<n>``,
so its lora id is ``author-<id>/v<n>`` and the adapters folder mirrored to the lora path (``aws s3 sync``,
or `sync_adapter` on first use) is exactly what the replicas read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path, PurePath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from serving.generation import Generation, GenerationRequest
from twin.domain import TwinError
from twin.settings import DEFAULT_BASE_MODEL, Settings

log = logging.getLogger(__name__)

VLLM_MODEL_ID = "twin"
"""The base model's id inside Ray Serve LLM (what an OpenAI client names); LoRA ids are ``twin:<lora id>``."""
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The ``max_lora_rank`` values vLLM accepts."""
LORA_CONFIG_FILE = "adapter_config.json"


# ---------------------------------------------------------------------------------------------------------
# Settings -> LLMConfig
# ---------------------------------------------------------------------------------------------------------
def max_lora_rank(settings: Settings) -> int:
    """The engine's ``max_lora_rank``: the setting, else the training rank rounded up to one vLLM accepts."""
    wanted = settings.serve.vllm.max_lora_rank or settings.train.lora_r
    for rank in VLLM_LORA_RANKS:
        if rank >= wanted:
            return rank
    raise TwinError(f"LoRA rank {wanted} is above vLLM's largest, {VLLM_LORA_RANKS[-1]}.")


def model_source(settings: Settings, resolved_base_model: str | None = None) -> str:
    """What the GPU workers load: the setting, else ``base_model`` (the built-in one as the folder it was
    converted to on this machine, ``resolved_base_model``)."""
    vllm = settings.serve.vllm
    if vllm.model_source:
        return vllm.model_source
    if settings.base_model == DEFAULT_BASE_MODEL and resolved_base_model:
        return resolved_base_model
    return settings.base_model


def llm_config_fields(settings: Settings, source: str) -> dict[str, Any]:
    """``LLMConfig(**fields)`` for the twin: one base model, vLLM, multi-LoRA from the lora path, replicas
    autoscaled between the configured bounds."""
    serve, vllm = settings.serve, settings.serve.vllm
    engine_kwargs: dict[str, Any] = {}
    if vllm.max_model_len is not None:
        engine_kwargs["max_model_len"] = vllm.max_model_len
    lora_config: dict[str, Any] | None = None
    if vllm.lora_path:
        # max_loras: adapters in one batch (vLLM's default is 1, which would serialise mixed-author batches).
        engine_kwargs.update(enable_lora=True, max_lora_rank=max_lora_rank(settings),
                             max_loras=serve.max_adapters_per_replica)
        lora_config = {
            "dynamic_lora_loading_path": vllm.lora_path.rstrip("/"),
            "max_num_adapters_per_replica": serve.max_adapters_per_replica,
        }
    engine_kwargs.update(vllm.engine_kwargs)
    fields: dict[str, Any] = {
        "model_loading_config": {"model_id": VLLM_MODEL_ID, "model_source": source},
        "llm_engine": "vLLM",
        "engine_kwargs": engine_kwargs,
        "deployment_config": {
            "autoscaling_config": {
                "min_replicas": vllm.min_replicas,
                "max_replicas": max(vllm.max_replicas, vllm.min_replicas),
            },
        },
        "lora_config": lora_config,
    }
    if vllm.accelerator_type:
        fields["accelerator_type"] = vllm.accelerator_type
    return fields


# ---------------------------------------------------------------------------------------------------------
# Adapters -> LoRA model ids
# ---------------------------------------------------------------------------------------------------------
def lora_id(adapter_path: str) -> str:
    """An adapter folder's id under the lora path: ``author-<id>/v<n>`` (its last two path parts)."""
    parts = PurePath(adapter_path).parts
    if len(parts) < 2 or not parts[-2].startswith("author-") or not parts[-1].startswith("v"):
        raise TwinError(f"{adapter_path} is not a registered adapter folder (<adapters>/author-<id>/v<n>).")
    return f"{parts[-2]}/{parts[-1]}"


def lora_model_id(adapter_path: str | None) -> str:
    """What vLLM calls the adapter (Ray Serve LLM's multiplexed model id); the base model's id for None."""
    return VLLM_MODEL_ID if adapter_path is None else f"{VLLM_MODEL_ID}:{lora_id(adapter_path)}"


def lora_uri(lora_path: str, adapter_path: str) -> str:
    return f"{lora_path.rstrip('/')}/{lora_id(adapter_path)}"


def sync_adapter(adapter_path: str, lora_path: str) -> bool:
    """Copy an adapter folder to the lora path unless it is already there (versions never change once
    registered). Returns True when it copied. Any pyarrow filesystem URI works (``file://`` in tests)."""
    import pyarrow.fs

    destination = lora_uri(lora_path, adapter_path)
    filesystem, root = pyarrow.fs.FileSystem.from_uri(destination)
    if filesystem.get_file_info(f"{root}/{LORA_CONFIG_FILE}").type == pyarrow.fs.FileType.File:
        return False
    source = Path(adapter_path)
    # The config last: a copy cut short is redone next time instead of being taken for a whole adapter.
    files = sorted((p for p in source.rglob("*") if p.is_file()), key=lambda p: p.name == LORA_CONFIG_FILE)
    for file in files:
        target = f"{root}/{file.relative_to(source).as_posix()}"
        filesystem.create_dir(target.rpartition("/")[0], recursive=True)
        pyarrow.fs.copy_files(str(file), target, destination_filesystem=filesystem)
    return True


# ---------------------------------------------------------------------------------------------------------
# Requests and streamed answers
# ---------------------------------------------------------------------------------------------------------
VLLM_LINK_WORDS = ("://", "www.")
"""``no_links`` as vLLM's ``bad_words`` (it bans each word's token sequences, with and without a leading space)."""


def chat_request_fields(request: GenerationRequest, adapter_path: str | None, *,
                        default_max_new_tokens: int) -> dict[str, Any]:
    """``ChatCompletionRequest(**fields)`` (vLLM's OpenAI protocol) for one of our requests, streamed with a
    last usage chunk.

    ``no_repeat_ngram_size`` has no vLLM equivalent and is dropped; the repetition penalty is vLLM's (it
    also counts the prompt's tokens, where ours exempts them).
    """
    params = request.params
    fields: dict[str, Any] = {
        "model": lora_model_id(adapter_path),
        "messages": [message.model_dump() for message in request.messages],
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_new_tokens or default_max_new_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if params.seed is not None:
        fields["seed"] = params.seed
    if params.stop:
        fields["stop"] = list(params.stop)
    if params.repetition_penalty != 1.0:
        fields["repetition_penalty"] = params.repetition_penalty
    if params.no_repeat_ngram_size:
        log.debug("no_repeat_ngram_size=%d has no vLLM equivalent; dropped", params.no_repeat_ngram_size)
    if params.no_links:
        fields["bad_words"] = list(VLLM_LINK_WORDS)
    return fields


def stream_events(item: Any) -> list[dict[str, Any]]:
    """The JSON events in one item of Ray Serve LLM's chat stream: a list of ``data: {...}`` SSE strings
    (batched), one such string, or a response object (an `ErrorResponse`, or the whole answer)."""
    if isinstance(item, list | tuple):
        return [event for part in item for event in stream_events(part)]
    if isinstance(item, str):
        events = []
        for line in item.splitlines():
            line = line.strip()
            if not line.startswith("data:"):
                continue
            data = line[len("data:"):].strip()
            if data and data != "[DONE]":
                events.append(json.loads(data))
        return events
    if isinstance(item, dict):
        return [item]
    if hasattr(item, "model_dump"):
        return [item.model_dump(mode="json")]
    raise TypeError(f"unexpected item in the vLLM stream: {type(item).__name__}")


class VllmError(TwinError):
    """vLLM refused the request (HTTP-style code below 500: the request's fault, e.g. a prompt too long)."""


class StreamAssembler(BaseModel):
    """Folds vLLM's chat stream events into text deltas and, at the end, our `Generation`."""

    model_config = ConfigDict(extra="forbid")

    adapter_path: str | None
    base_model: str
    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    chunks_seen: int = Field(default=0, ge=0)

    def feed(self, events: Iterable[dict[str, Any]]) -> list[str]:
        """The text deltas in these events; raises on an error event."""
        deltas = []
        for event in events:
            self.chunks_seen += 1
            if "error" in event and not event.get("choices"):
                _raise_error(event["error"])
            for choice in event.get("choices") or []:
                content = (choice.get("delta") or choice.get("message") or {}).get("content")
                if content:
                    deltas.append(content)
                if choice.get("finish_reason"):
                    self.finish_reason = choice["finish_reason"]
            usage = event.get("usage")
            if usage:
                self.prompt_tokens = usage.get("prompt_tokens") or self.prompt_tokens
                self.completion_tokens = usage.get("completion_tokens") or self.completion_tokens
        self.text += "".join(deltas)
        return deltas

    def final(self) -> Generation:
        return Generation(
            text=self.text,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            finish_reason="length" if self.finish_reason == "length" else "stop",
            adapter=self.adapter_path,
            base_model_only=self.adapter_path is None,
            base_model=self.base_model,
        )


def _raise_error(error: Any) -> None:
    detail = error if isinstance(error, dict) else {"message": str(error)}
    message = str(detail.get("message") or "vLLM failed")
    code = detail.get("code")
    if isinstance(code, int) and 400 <= code < 500:
        raise VllmError(message)
    raise RuntimeError(f"vLLM failed ({code}): {message}")

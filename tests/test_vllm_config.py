"""The GPU-cluster engine's mapping (TWIN_SERVE__LLM_ENGINE=vllm), tested without a GPU or vLLM: Settings ->
Ray Serve LLM's LLMConfig, our requests -> vLLM's OpenAI chat requests, its stream -> our chunks, adapter
folders -> LoRA model ids and the copy to the lora path, and the client publishing an adapter first.

vLLM itself is not installable here; the checks against Ray Serve LLM's and vLLM's own request models skip,
saying so, where those cannot be imported."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from serving.generation import ChatMessage, GenerationRequest, ModelInfo, SamplingParams
from serving.llm_vllm import (
    VLLM_MODEL_ID,
    StreamAssembler,
    VllmError,
    chat_request_fields,
    llm_config_fields,
    lora_id,
    lora_model_id,
    max_lora_rank,
    model_source,
    stream_events,
    sync_adapter,
)
from serving.model_client import AdapterRef, ModelClient
from twin.domain import TwinError
from twin.settings import Settings

ADAPTER = "/data/twin/adapters/author-3/v2"


def _settings(**serve: Any) -> Settings:
    return Settings(_env_file=None, serve={"llm_engine": "vllm", **serve})


def _llm_config_class() -> Any:
    """Ray Serve LLM's LLMConfig. `ray.serve.llm` itself imports vLLM's protocol models; where vLLM is absent
    the same class is validated through the module `ray.serve.llm.LLMConfig` subclasses (unchanged)."""
    try:
        from ray.serve.llm import LLMConfig
    except ImportError:
        try:
            from ray.llm._internal.serve.core.configs.llm_config import LLMConfig
        except ImportError as exc:
            pytest.skip(f"ray.serve.llm cannot be imported here (no vLLM): {exc}")
    return LLMConfig


# Settings -> LLMConfig ------------------------------------------------------------------------------------
def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_SERVE__LLM_ENGINE", "vllm")
    monkeypatch.setenv("TWIN_SERVE__VLLM__LORA_PATH", "s3://bucket/twin-adapters/")
    monkeypatch.setenv("TWIN_SERVE__VLLM__ENGINE_KWARGS", '{"tensor_parallel_size": 2, "max_loras": 4}')
    monkeypatch.setenv("TWIN_SERVE__VLLM__MAX_REPLICAS", "3")
    settings = Settings(_env_file=None)
    assert settings.serve.llm_engine == "vllm"
    assert settings.serve.vllm.engine_kwargs == {"tensor_parallel_size": 2, "max_loras": 4}
    fields = llm_config_fields(settings, "Qwen/Qwen2.5-7B-Instruct")
    assert fields["lora_config"] == {"dynamic_lora_loading_path": "s3://bucket/twin-adapters",
                                     "max_num_adapters_per_replica": settings.serve.max_adapters_per_replica}
    # The explicit engine arguments win over the derived ones.
    assert fields["engine_kwargs"]["max_loras"] == 4
    assert fields["engine_kwargs"]["tensor_parallel_size"] == 2
    assert fields["engine_kwargs"]["enable_lora"] is True
    assert fields["deployment_config"]["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 3}
    monkeypatch.delenv("TWIN_SERVE__LLM_ENGINE")
    assert Settings(_env_file=None).serve.llm_engine == "twin"  # the CPU path stays the default


def test_llm_config_fields_validate_against_ray_serve_llm() -> None:
    llm_config_class = _llm_config_class()
    settings = _settings(vllm={"lora_path": "gs://b/adapters", "accelerator_type": "A10G", "max_model_len": 4096},
                         max_adapters_per_replica=6)
    config = llm_config_class(**llm_config_fields(settings, "meta-llama/Llama-3.1-8B-Instruct"))
    assert config.model_id == VLLM_MODEL_ID
    assert config.model_loading_config.model_source == "meta-llama/Llama-3.1-8B-Instruct"
    assert config.lora_config.dynamic_lora_loading_path == "gs://b/adapters"
    assert config.lora_config.max_num_adapters_per_replica == 6
    assert config.accelerator_type == "A10G"
    assert config.engine_kwargs["max_model_len"] == 4096
    assert config.engine_kwargs["max_loras"] == 6
    assert config.engine_kwargs["max_lora_rank"] == 16  # train.lora_r's default
    # Ray Serve LLM reads adapters from cloud storage only: a local adapters folder is refused there, which
    # is why the client copies adapters to the lora path.
    local = llm_config_fields(_settings(vllm={"lora_path": "gs://b/adapters"}), "m")
    local["lora_config"]["dynamic_lora_loading_path"] = "/data/twin/adapters"
    with pytest.raises(ValueError, match="lora_config"):
        llm_config_class(**local)
    # ... and so do our settings, saying why.
    with pytest.raises(ValueError, match="cloud folder"):
        _settings(vllm={"lora_path": "/data/twin/adapters"})


def test_without_a_lora_path_only_the_base_model_is_served() -> None:
    fields = llm_config_fields(_settings(), "Qwen/Qwen2.5-0.5B-Instruct")
    assert fields["lora_config"] is None
    assert "enable_lora" not in fields["engine_kwargs"]
    assert "accelerator_type" not in fields


@pytest.mark.parametrize(("rank", "expected"), [(4, 8), (8, 8), (16, 16), (24, 32), (300, 320)])
def test_max_lora_rank_rounds_the_training_rank_up(rank: int, expected: int) -> None:
    assert max_lora_rank(Settings(_env_file=None, train={"lora_r": rank})) == expected


def test_max_lora_rank_setting_and_limit() -> None:
    assert max_lora_rank(_settings(vllm={"max_lora_rank": 64})) == 64
    with pytest.raises(TwinError, match="512"):
        max_lora_rank(_settings(vllm={"max_lora_rank": 1024}))


def test_model_source() -> None:
    assert model_source(_settings(vllm={"model_source": "org/model"}), "/models/x") == "org/model"
    # The built-in model is the folder it was converted to; a hub id is passed as it is.
    assert model_source(_settings(), "/models/smollm2") == "/models/smollm2"
    assert model_source(Settings(_env_file=None, base_model="org/other"), "/models/x") == "org/other"


# Adapters -> LoRA ids ----------------------------------------------------------------------------------------
def test_adapter_folders_map_to_lora_model_ids() -> None:
    assert lora_id(ADAPTER) == "author-3/v2"
    assert lora_model_id(ADAPTER) == "twin:author-3/v2"
    assert lora_model_id(None) == "twin"
    # Each version is its own id, so activating a new version is served on the next request.
    assert lora_model_id("/data/twin/adapters/author-3/v3") != lora_model_id(ADAPTER)
    assert lora_model_id("/other/data/adapters/author-12/v1") == "twin:author-12/v1"
    for wrong in ("/tmp/my-adapter", "v2", "/data/adapters/author-3"):
        with pytest.raises(TwinError, match="registered adapter"):
            lora_id(wrong)


def test_sync_adapter_copies_once(tmp_path: Path) -> None:
    adapter = tmp_path / "data" / "adapters" / "author-3" / "v2"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 16}))
    (adapter / "adapter_model.safetensors").write_bytes(b"\0" * 64)
    lora_path = (tmp_path / "bucket").as_uri()
    assert sync_adapter(str(adapter), lora_path) is True
    copied = tmp_path / "bucket" / "author-3" / "v2"
    assert json.loads((copied / "adapter_config.json").read_text()) == {"r": 16}
    assert (copied / "adapter_model.safetensors").stat().st_size == 64
    assert sync_adapter(str(adapter), lora_path) is False  # already there: versions never change


# Requests -------------------------------------------------------------------------------------------------
def _request(**params: Any) -> GenerationRequest:
    return GenerationRequest(messages=[ChatMessage(role="system", content="Be brief."),
                                       ChatMessage(role="user", content="Hi")],
                             params=SamplingParams(**params))


def test_request_translation() -> None:
    fields = chat_request_fields(_request(temperature=0.0, top_p=0.9, seed=7, stop=["\n\n"], repetition_penalty=1.2,
                                          no_repeat_ngram_size=3),
                                 ADAPTER, default_max_new_tokens=256)
    assert fields == {
        "model": "twin:author-3/v2",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "temperature": 0.0,
        "top_p": 0.9,
        "max_tokens": 256,
        "stream": True,
        "stream_options": {"include_usage": True},
        "seed": 7,
        "stop": ["\n\n"],
        "repetition_penalty": 1.2,
    }
    plain = chat_request_fields(_request(max_new_tokens=40), None, default_max_new_tokens=256)
    assert plain["model"] == "twin" and plain["max_tokens"] == 40
    assert not {"seed", "stop", "repetition_penalty", "bad_words"} & plain.keys()
    no_links = chat_request_fields(_request(no_links=True), None, default_max_new_tokens=256)
    assert no_links["bad_words"] == ["://", "www."]


def test_request_validates_against_vllms_chat_request() -> None:
    try:
        from ray.serve.llm.openai_api_models import ChatCompletionRequest
    except ImportError as exc:
        pytest.skip(f"ray.serve.llm cannot be imported here (no vLLM): {exc}")
    request = _request(seed=1, stop=["x"], repetition_penalty=1.1, no_links=True)
    body = ChatCompletionRequest(**chat_request_fields(request, ADAPTER, default_max_new_tokens=64))
    assert body.model == "twin:author-3/v2" and body.stream and body.max_tokens == 64


# The streamed answer -------------------------------------------------------------------------------------------
def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def _chunk(content: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta = {"role": "assistant"} if content is None else {"content": content}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "twin:author-3/v2",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_stream_folds_into_chunks_and_a_generation() -> None:
    usage = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [],
             "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}
    # Ray Serve LLM batches SSE strings into lists; the last holds the usage chunk and [DONE].
    items = [[_sse(_chunk()), _sse(_chunk("Hel"))], [_sse(_chunk("lo")), _sse(_chunk("!", finish="length"))],
             [_sse(usage), "data: [DONE]\n\n"]]
    answer = StreamAssembler(adapter_path=ADAPTER, base_model="org/model")
    deltas = [delta for item in items for delta in answer.feed(stream_events(item))]
    assert deltas == ["Hel", "lo", "!"]
    final = answer.final()
    assert (final.text, final.prompt_tokens, final.completion_tokens) == ("Hello!", 12, 3)
    assert final.finish_reason == "length" and final.adapter == ADAPTER and not final.base_model_only
    assert final.base_model == "org/model"

    base = StreamAssembler(adapter_path=None, base_model="org/model")
    base.feed(stream_events(_sse(_chunk("ok", finish="stop"))))
    assert base.final().base_model_only and base.final().finish_reason == "stop"


def test_stream_errors() -> None:
    refused = {"error": {"message": "This model's maximum context length is 4096 tokens", "type": "BadRequestError",
                         "code": 400}}
    with pytest.raises(VllmError, match="maximum context length"):
        StreamAssembler(adapter_path=None, base_model="m").feed(stream_events([_sse(refused)]))
    with pytest.raises(RuntimeError, match="500"):
        StreamAssembler(adapter_path=None, base_model="m").feed(
            stream_events({"error": {"message": "engine dead", "code": 500}}))
    with pytest.raises(TypeError):
        stream_events(42)


# The client -----------------------------------------------------------------------------------------------
class _Remote:
    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def remote(self, *args: Any) -> Any:
        return self.fn(*args)


class _VllmHandle:
    """Stands in for a Serve handle to `TwinVllmModel` (Ray Serve LLM needs a GPU): answers the probe as
    the vLLM deployment does and records, per request, the multiplexed id and whether the adapter had
    already been copied to the lora path."""

    def __init__(self, lora_path: str, bucket: Path, multiplexed_model_id: str = "", seen: list | None = None):
        self.lora_path, self.bucket, self.multiplexed_model_id = lora_path, bucket, multiplexed_model_id
        self.seen = [] if seen is None else seen
        self.ready = _Remote(self._ready)
        self.generate = _Remote(self._generate)

    def options(self, *, multiplexed_model_id: str = "", **_: Any) -> _VllmHandle:
        return _VllmHandle(self.lora_path, self.bucket, multiplexed_model_id, self.seen)

    async def _ready(self) -> ModelInfo:
        return ModelInfo(base_model="org/model", dtype="auto", torch_threads=0, loaded_adapters=[], max_batch_size=0,
                         engine="vllm", lora_path=self.lora_path)

    async def _generate(self, request: GenerationRequest) -> Any:
        from serving.generation import Generation

        copied = (self.bucket / lora_id(self.multiplexed_model_id) / "adapter_config.json").is_file()
        self.seen.append((self.multiplexed_model_id, copied))
        return Generation(text="hi", prompt_tokens=1, completion_tokens=1, finish_reason="stop",
                          adapter=self.multiplexed_model_id, base_model_only=False, base_model="org/model")


def test_client_copies_the_adapter_to_the_lora_path_before_its_first_request(tmp_path: Path) -> None:
    adapter_dir = tmp_path / "adapters" / "author-5" / "v1"
    adapter_dir.mkdir(parents=True)
    (adapter_dir / "adapter_config.json").write_text("{}")
    bucket = tmp_path / "bucket"
    handle = _VllmHandle(bucket.as_uri(), bucket)
    client = ModelClient(handle, probe_timeout_s=5, request_timeout_s=5)
    adapter = AdapterRef(author="ada", version=1, path=str(adapter_dir))

    async def run() -> None:
        for _ in range(2):
            generation = await client.generate(adapter, [{"role": "user", "content": "hi"}])
            assert generation.adapter_version == 1

    asyncio.run(run())
    # The deployment gets the folder (it maps it to the LoRA id) and the copy was there from the first request.
    assert handle.seen == [(str(adapter_dir), True), (str(adapter_dir), True)]
    (bucket / "author-5" / "v1" / "adapter_config.json").unlink()
    asyncio.run(client.generate(adapter, [{"role": "user", "content": "hi"}]))
    assert handle.seen[-1] == (str(adapter_dir), False)  # copied once per client, not checked per request


def test_vllm_path_is_import_safe_and_says_what_is_missing(settings: Settings) -> None:
    import serving.vllm_model  # noqa: F401 - importable without vLLM

    try:
        import ray.serve.llm  # noqa: F401
    except ImportError:
        from serving.model import build_model_app

        settings.serve.llm_engine = "vllm"
        settings.serve.vllm.model_source = "org/model"
        with pytest.raises(TwinError, match=r"ray\[llm\]"):
            build_model_app(settings)
    else:
        pytest.skip("ray.serve.llm is installed: the missing-vLLM message cannot be shown")

"""The model deployment for real: SmolLM2 on a local Ray Serve, real LoRA adapters, the typed client.

One deployment serves the whole module (starting it is the slow part); the last test takes it down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import MODELS_CACHE
from ray.serve.handle import DeploymentHandle

from serving.generation import MODEL_APP_NAME, Generation, SamplingParams
from serving.model_client import AdapterRef, ModelClient, adapter_for_author
from twin.domain import Unavailable
from twin.settings import ServeSettings, Settings
from twin.store import DocumentStore

pytestmark = pytest.mark.slow

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
SEA = [{"role": "user", "content": "Write one sentence about the sea."}]
GREEDY = SamplingParams(temperature=0.0, max_new_tokens=8)


ADAPTER_VOICES = ["Ahoy! Pirates sail the green sea at dawn.", "Blue whales sing under the quiet sea."]


def _make_adapters(base_model: str, out: Path) -> list[Path]:
    """Two real LoRA adapters (PEFT format), each taught one answer with a few optimizer steps."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
    paths = []
    for version, answer in enumerate(ADAPTER_VOICES, start=1):
        torch.manual_seed(version)
        peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
        text = tokenizer.apply_chat_template(SEA + [{"role": "assistant", "content": answer}], tokenize=False)
        ids = tokenizer(text, return_tensors="pt")["input_ids"]
        optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
        for _ in range(8):
            loss = peft_model(input_ids=ids, labels=ids).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        path = out / f"adapter-v{version}"
        peft_model.save_pretrained(path)
        model = peft_model.unload()
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, DeploymentHandle, list[Path]]]:
    import ray
    from ray import serve

    from serving.model import deploy_model
    from twin.models import resolve_base_model

    MODELS_CACHE.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        models_path=MODELS_CACHE,
        # fp32, not the default int4: these tests compare greedy text alone and in a batch, which only the
        # exact engine keeps identical (int4's bf16 activations vary with the batch; tests/test_engine.py)
        serve=ServeSettings(ray_num_cpus=2, model_num_cpus=1, max_batch_size=8, batch_wait_timeout_s=0.3,
                            max_new_tokens=16, model_probe_timeout_s=30, model_quantize="none"),
        _env_file=None,
    )
    settings.ensure_dirs()
    adapters = _make_adapters(resolve_base_model(settings), tmp_path_factory.mktemp("adapters"))
    try:
        handle = deploy_model(settings)
        yield settings, handle, adapters
    finally:
        serve.shutdown()
        ray.shutdown()


def _ref(path: Path, version: int = 1) -> AdapterRef:
    return AdapterRef(author="alice", version=version, path=str(path))


async def test_base_model_only_and_max_new_tokens(served) -> None:
    _, handle, _ = served
    client = ModelClient(handle, probe_timeout_s=30)  # generous: the test machine is shared
    generation = await client.generate(None, SEA, SamplingParams(temperature=0.0, max_new_tokens=5))
    assert generation.base_model_only is True and generation.adapter is None
    assert generation.text.strip()
    assert generation.completion_tokens == 5 and generation.finish_reason == "length"
    assert generation.prompt_tokens > 10
    assert generation.base_model.endswith("smollm2-135m-instruct")


async def test_mixed_batch_matches_requests_alone_and_adapters_change_output(served) -> None:
    _, handle, (adapter1, adapter2) = served
    client = ModelClient(handle, probe_timeout_s=30)  # generous: the test machine is shared
    requests = [(None, SEA), (_ref(adapter1), SEA), (_ref(adapter2), SEA), (None, QUESTION)]
    alone = [await client.generate(adapter, messages, GREEDY) for adapter, messages in requests]
    together = await asyncio.gather(*(client.generate(a, m, GREEDY) for a, m in requests))

    assert [g.batch_size for g in alone] == [1, 1, 1, 1]
    assert max(g.batch_size for g in together) >= 2, "concurrent requests were not batched together"
    assert len({g.adapter for g in together if g.batch_size >= 2}) >= 2, "the batch did not mix adapters"
    assert [g.text for g in together] == [g.text for g in alone]
    base_sea, adapted_sea, other_adapted_sea, _ = alone
    assert adapted_sea.text.startswith("Ahoy") and other_adapted_sea.text.startswith("Blue whales")
    assert not base_sea.text.startswith(("Ahoy", "Blue whales"))
    assert adapted_sea.adapter == str(adapter1) and adapted_sea.base_model_only is False
    assert adapted_sea.adapter_version == 1


async def test_stream_yields_pieces_of_the_same_text(served) -> None:
    _, handle, (adapter1, _) = served
    client = ModelClient(handle, probe_timeout_s=30)  # generous: the test machine is shared
    params = SamplingParams(temperature=0.0, max_new_tokens=10)
    pieces = [piece async for piece in client.stream(_ref(adapter1), SEA, params)]
    whole = await client.generate(_ref(adapter1), SEA, params)
    assert len(pieces) >= 3
    assert "".join(pieces) == whole.text

    chunks = [chunk async for chunk in client.stream_chunks(None, QUESTION, params)]
    final = chunks[-1].final
    assert isinstance(final, Generation) and final.base_model_only
    assert "".join(c.text for c in chunks) == final.text


async def test_sampling_params_per_request(served) -> None:
    _, handle, _ = served
    client = ModelClient(handle, probe_timeout_s=30)  # generous: the test machine is shared
    sampled = SamplingParams(temperature=1.2, top_p=0.9, seed=7, max_new_tokens=8)
    first, second, greedy = await asyncio.gather(
        client.generate(None, SEA, sampled), client.generate(None, SEA, sampled), client.generate(None, SEA, GREEDY)
    )
    assert first.text == second.text, "the same seed gives the same sample, whatever the batch"
    other_seed = await client.generate(None, SEA, sampled.model_copy(update={"seed": 8}))
    assert other_seed.text != first.text or greedy.text != first.text

    greedy_long = await client.generate(None, SEA, SamplingParams(temperature=0.0, max_new_tokens=12))
    words = greedy_long.text.split()
    stop = " " + words[2]
    stopped = await client.generate(None, SEA, SamplingParams(temperature=0.0, max_new_tokens=12, stop=[stop]))
    assert stopped.finish_reason == "stop"
    assert stopped.text == greedy_long.text[: greedy_long.text.index(stop)]

    with pytest.raises(ValueError):
        SamplingParams(temperature=0.5, beam_width=3)  # extra fields are refused, not ignored


async def test_new_adapter_version_is_served_without_restart(served) -> None:
    settings, handle, (adapter1, adapter2) = served
    client = ModelClient(handle, probe_timeout_s=30)  # generous: the test machine is shared
    store = DocumentStore.from_url(settings.resolved_database_url)
    try:
        author = store.add_author("alice")
        assert adapter_for_author(store, "alice") is None
        store.register_adapter(author, str(adapter1), settings.base_model, "hash1", {}, {})
        first = await client.generate(adapter_for_author(store, "alice"), SEA, GREEDY)
        store.register_adapter(author, str(adapter2), settings.base_model, "hash2", {}, {})  # activates v2
        second = await client.generate(adapter_for_author(store, "alice"), SEA, GREEDY)
    finally:
        store.close()
    assert (first.adapter, first.adapter_version) == (str(adapter1), 1)
    assert (second.adapter, second.adapter_version) == (str(adapter2), 2)
    assert first.text.startswith("Ahoy") and second.text.startswith("Blue whales")
    info = await client.info()
    assert {str(adapter1), str(adapter2)} <= set(info.loaded_adapters)


async def test_model_down_is_unavailable_quickly(served) -> None:
    from ray import serve

    settings, handle, _ = served
    held_handle = ModelClient(handle, probe_timeout_s=2)
    # A client that has served a request (attached, probed) fails as fast as a fresh one.
    assert (await held_handle.generate(None, QUESTION, GREEDY.model_copy(update={"max_new_tokens": 2}))).text
    serve.delete(MODEL_APP_NAME)  # the deployment goes away while a service still holds its handle

    started = time.monotonic()
    with pytest.raises(Unavailable, match="retry"):
        await held_handle.generate(None, QUESTION, GREEDY)
    with pytest.raises(Unavailable, match="retry"):
        [piece async for piece in held_handle.stream(None, QUESTION, GREEDY)]
    assert time.monotonic() - started < 15

    attaching = ModelClient(settings, probe_timeout_s=2)  # a CLI-style client attaching to the running Ray
    started = time.monotonic()
    with pytest.raises(Unavailable, match="retry"):
        await attaching.generate(None, QUESTION, GREEDY)
    assert time.monotonic() - started < 10

"""The continuous-batching engine with the real SmolLM2 and real LoRA adapters, no Ray.

Most tests drive `ContinuousEngine.step` on the test's own thread, so "joins at the next step" and "frees its
slot at once" are counted in steps, not guessed from timings on a shared machine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import MODELS_CACHE

from serving.engine import ContinuousEngine
from serving.generation import (
    ChatMessage,
    Generation,
    GenerationJob,
    GenerationRequest,
    ModelConfig,
    SamplingParams,
    StreamChunk,
    adapter_name_for,
)
from serving.static_engine import BatchEngine
from twin.settings import Settings

PROMPTS = [
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "Write a long blog post about how tides work and why the moon matters.",
    "List three fruits.",
    "Explain recursion to a child.",
    "Hi",
]
TOKENS = 20


class Collector:
    """A request's sink: its chunks, and the engine step at which each arrived."""

    def __init__(self, engine: ContinuousEngine) -> None:
        self.engine = engine
        self.chunks: list[StreamChunk] = []
        self.steps: list[int] = []
        self.error: BaseException | None = None

    def __call__(self, item: list[StreamChunk] | BaseException) -> None:
        if isinstance(item, BaseException):
            self.error = item
            return
        self.chunks.extend(item)
        self.steps.extend(self.engine.steps for _ in item)

    @property
    def final(self) -> Generation | None:
        return self.chunks[-1].final if self.chunks else None


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BatchEngine]:
    import torch

    from twin.models import resolve_base_model

    MODELS_CACHE.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), models_path=MODELS_CACHE, _env_file=None)
    torch.set_num_threads(1)
    yield BatchEngine(ModelConfig(base_model=resolve_base_model(settings), max_new_tokens=TOKENS))


@pytest.fixture(scope="module")
def adapters(runtime: BatchEngine, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Two LoRA adapters in PEFT format with random (untrained) B matrices: they change the greedy output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("adapters")
    model = AutoModelForCausalLM.from_pretrained(runtime.config.base_model, dtype=torch.float32)
    paths = []
    for version in (1, 2):
        torch.manual_seed(version)
        peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0.0, 0.05)
        path = out / f"adapter-v{version}"
        peft_model.save_pretrained(path)
        model = peft_model.unload()
        paths.append(str(path))
    return paths


def _job(runtime: BatchEngine, prompt: str, adapter: str | None = None, **params: object) -> GenerationJob:
    params = {"temperature": 0.0, "max_new_tokens": TOKENS} | params
    request = GenerationRequest(messages=[ChatMessage(role="user", content=prompt)],
                                params=SamplingParams(**params))
    return runtime.make_job(request, adapter)


def _reference(runtime: BatchEngine, job: GenerationJob) -> str:
    """Plain ``model.generate`` on the one prompt (no batch, no padding): what the engine must reproduce."""
    import torch

    ids = torch.tensor([job.prompt_ids])
    model, kwargs = runtime.base, {}
    if runtime.peft is not None:
        model = runtime.peft
        kwargs["adapter_names"] = [adapter_name_for(job.adapter_path) if job.adapter_path else "__base__"]
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=job.max_new_tokens,
                             do_sample=False, eos_token_id=sorted(runtime.eos_ids),
                             pad_token_id=runtime.tokenizer.pad_token_id, **kwargs)
    return runtime.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def _run(engine: ContinuousEngine, arrivals: dict[int, list[tuple[GenerationJob, Collector]]]) -> None:
    """Step until idle, submitting each job at its step number."""
    step = 0
    while True:
        for job, sink in arrivals.pop(step, []):
            engine.submit(job, sink)
        if not engine.has_work() and not arrivals:
            return
        engine.step()
        step += 1


def test_greedy_matches_generate_while_requests_join_and_leave(runtime: BatchEngine) -> None:
    engine = ContinuousEngine(runtime, max_batch_size=4)
    jobs = [_job(runtime, prompt) for prompt in PROMPTS]
    sinks = [Collector(engine) for _ in jobs]
    # Three at once, two more mid-way (the batch is then full, so one waits for a slot), one late.
    _run(engine, {0: list(zip(jobs[:3], sinks[:3])), 5: list(zip(jobs[3:5], sinks[3:5])), 9: [(jobs[5], sinks[5])]})

    finals = [sink.final for sink in sinks]
    assert all(final is not None for final in finals)
    assert [final.text for final in finals] == [_reference(runtime, job) for job in jobs]
    assert max(final.batch_size for final in finals) == 4
    for sink, final in zip(sinks, finals):
        assert "".join(chunk.text for chunk in sink.chunks) == final.text  # the stream adds up
    assert engine.running == 0


def test_a_new_request_gets_its_first_token_at_the_next_step(runtime: BatchEngine) -> None:
    engine = ContinuousEngine(runtime, max_batch_size=4)
    long_rows = [Collector(engine) for _ in range(3)]
    for sink in long_rows:
        engine.submit(_job(runtime, PROMPTS[2], max_new_tokens=12), sink)
    for _ in range(3):
        engine.step()
    newcomer = Collector(engine)
    engine.submit(_job(runtime, PROMPTS[1], max_new_tokens=3), newcomer)
    engine.step()
    assert newcomer.chunks and newcomer.steps[0] == 3, "the newcomer waited for the running rows"
    assert engine.running == 4
    while engine.has_work():
        engine.step()
    # It finished long before the rows it joined, and left the batch when it did.
    assert newcomer.final is not None and newcomer.final.completion_tokens == 3
    assert newcomer.steps[-1] < long_rows[0].steps[-1]


def test_a_finished_row_frees_its_slot_at_once(runtime: BatchEngine) -> None:
    engine = ContinuousEngine(runtime, max_batch_size=2)
    short, long, waiting = Collector(engine), Collector(engine), Collector(engine)
    engine.submit(_job(runtime, PROMPTS[0], max_new_tokens=2), short)
    engine.submit(_job(runtime, PROMPTS[2], max_new_tokens=12), long)
    engine.submit(_job(runtime, PROMPTS[3], max_new_tokens=2), waiting)
    while engine.has_work():
        engine.step()
    assert short.final is not None and long.final is not None and waiting.final is not None
    # The waiting request took the short one's slot on the step after it ended, not after the long one.
    assert waiting.steps[0] == short.steps[-1] + 1
    assert waiting.steps[-1] < long.steps[-1]


def test_mixed_adapters_in_one_batch_match_each_alone(runtime: BatchEngine, adapters: list[str]) -> None:
    engine = ContinuousEngine(runtime, max_batch_size=8)
    jobs = [_job(runtime, PROMPTS[1], adapters[0]), _job(runtime, PROMPTS[1]), _job(runtime, PROMPTS[1], adapters[1]),
            _job(runtime, PROMPTS[0], adapters[1])]
    sinks = [Collector(engine) for _ in jobs]
    _run(engine, {0: list(zip(jobs[:2], sinks[:2])), 2: list(zip(jobs[2:], sinks[2:]))})
    texts = [sink.final.text for sink in sinks]
    assert texts == [_reference(runtime, job) for job in jobs]
    assert len({texts[0], texts[1], texts[2]}) == 3, "the adapters did not change the output"
    assert sinks[0].final.adapter == adapters[0] and sinks[1].final.base_model_only
    assert min(sink.final.batch_size for sink in sinks) >= 2


def test_candidates_of_one_prompt_share_one_prefill_and_sample_apart(runtime: BatchEngine, adapters: list[str]) -> None:
    """Best-of-N: N requests with the same prompt and adapter are prefilled once; each still samples with its
    own seed (as it would alone), and greedy rows still match `generate`."""
    engine = ContinuousEngine(runtime, max_batch_size=8)
    sampled = {"temperature": 1.0, "top_p": 0.95, "max_new_tokens": 12}
    alone = []
    for seed in (1, 2, 3):
        sink = Collector(engine)
        _run(engine, {0: [(_job(runtime, PROMPTS[2], adapters[0], seed=seed, **sampled), sink)]})
        alone.append(sink.final.text)
    assert engine.shared_prefills == 0
    together = [Collector(engine) for _ in range(5)]
    jobs = [_job(runtime, PROMPTS[2], adapters[0], seed=seed, **sampled) for seed in (1, 2, 3)]
    jobs += [_job(runtime, PROMPTS[2]), _job(runtime, PROMPTS[2], adapters[1])]  # same prompt, other adapters
    _run(engine, {0: list(zip(jobs, together))})
    assert engine.shared_prefills == 2  # three candidates, one forward; the other adapters prefill their own
    assert [sink.final.text for sink in together[:3]] == alone
    assert len(set(alone)) == 3, "the seeds did not give different candidates"
    assert [sink.final.text for sink in together[3:]] == [_reference(runtime, job) for job in jobs[3:]]


def test_candidates_read_one_shared_copy_of_their_prompt(runtime: BatchEngine, adapters: list[str]) -> None:
    """Cascade attention: while candidates decode, their prompt is cached once (not once per row) and each
    row's own cache holds only its generated tokens; greedy rows still match `generate`, also beside a row
    whose own cache holds its prompt, and after the group's rows leave one by one."""
    engine = ContinuousEngine(runtime, max_batch_size=8)
    assert engine.cascade
    prompt = _job(runtime, PROMPTS[2]).prompt_ids
    jobs = [_job(runtime, PROMPTS[2], max_new_tokens=n) for n in (6, 12, TOKENS)]
    jobs += [_job(runtime, PROMPTS[4], adapters[0]), _job(runtime, PROMPTS[4], adapters[0])]
    jobs += [_job(runtime, PROMPTS[0], adapters[1])]
    sinks = [Collector(engine) for _ in jobs]
    for job, sink in zip(jobs, sinks):
        engine.submit(job, sink)
    engine.step()
    engine.step()
    prefixes = engine._prefixes
    assert prefixes is not None and prefixes.mask.shape[0] == 2  # two groups: 3 candidates and 2 candidates
    assert int(prefixes.mask[0].sum()) == len(prompt)
    own_width = engine._cache.layers[0].keys.shape[2]
    assert own_width <= len(_job(runtime, PROMPTS[0]).prompt_ids) + 2  # the single row's prompt, not the groups'
    _run(engine, {})
    assert engine._prefixes is None and engine.running == 0
    assert [sink.final.text for sink in sinks] == [_reference(runtime, job) for job in jobs]


def test_announced_siblings_wait_for_each_other_then_share_one_prefill(runtime: BatchEngine) -> None:
    """Candidates that arrive a moment apart (separate requests to the replica) still start together, so
    their prompt is prefilled and cached once; one whose siblings never come starts after SIBLING_WAIT_S."""
    import time

    from serving.engine import SIBLING_WAIT_S

    engine = ContinuousEngine(runtime, max_batch_size=8)
    jobs = [_job(runtime, PROMPTS[2], temperature=0.8, seed=seed, siblings=3) for seed in (1, 2, 3)]
    sinks = [Collector(engine) for _ in jobs]
    for job, sink in zip(jobs, sinks):
        engine.submit(job, sink)
        engine.step()  # nothing starts until the third arrives
    assert [sink.steps[:1] for sink in sinks] == [[2], [2], [2]]  # all three start in the third step
    assert engine.shared_prefills == 2 and engine._prefixes is not None
    _run(engine, {})

    lonely = Collector(engine)
    engine.submit(_job(runtime, PROMPTS[3], siblings=2), lonely)
    start = time.monotonic()
    while not lonely.chunks:
        engine.step()
    assert time.monotonic() - start >= SIBLING_WAIT_S
    _run(engine, {})
    assert lonely.final.text == _reference(runtime, _job(runtime, PROMPTS[3]))


def test_sampling_stops_and_controls_are_per_request(runtime: BatchEngine) -> None:
    engine = ContinuousEngine(runtime, max_batch_size=8)
    sampled = {"temperature": 1.2, "top_p": 0.9, "seed": 7, "max_new_tokens": 12}
    alone = Collector(engine)
    _run(engine, {0: [(_job(runtime, PROMPTS[1], **sampled), alone)]})
    # The same seed in a busy batch (other rows joining around it) gives the same sample.
    crowd = [Collector(engine) for _ in range(4)]
    _run(engine, {0: [(_job(runtime, PROMPTS[2]), crowd[0]), (_job(runtime, PROMPTS[3], **sampled), crowd[1])],
                  1: [(_job(runtime, PROMPTS[1], **sampled), crowd[2])],
                  3: [(_job(runtime, PROMPTS[1], **(sampled | {"seed": 8})), crowd[3])]})
    assert crowd[2].final.text == alone.final.text
    assert crowd[3].final.text != alone.final.text

    greedy = _reference(runtime, _job(runtime, PROMPTS[1]))
    stop = " " + greedy.split()[3]
    stopped, repeat_free = Collector(engine), Collector(engine)
    _run(engine, {0: [(_job(runtime, PROMPTS[1], stop=[stop]), stopped),
                      (_job(runtime, "Say 'la' forty times.", no_repeat_ngram_size=2, max_new_tokens=30),
                       repeat_free)]})
    assert stopped.final.finish_reason == "stop" and stopped.final.text == greedy[: greedy.index(stop)]
    assert "".join(chunk.text for chunk in stopped.chunks) == stopped.final.text  # the stop string never streamed
    completion = runtime.tokenizer(repeat_free.final.text, add_special_tokens=False)["input_ids"]
    pairs = list(zip(completion, completion[1:]))
    assert len(pairs) > 5 and len(set(pairs)) >= len(pairs) - 2  # re-tokenizing the text may merge a piece


def test_a_cancelled_request_leaves_and_an_adapter_in_use_is_unloaded_after(runtime: BatchEngine,
                                                                            adapters: list[str]) -> None:
    engine = ContinuousEngine(runtime, max_batch_size=8)
    gone, stays = Collector(engine), Collector(engine)
    ticket = engine.submit(_job(runtime, PROMPTS[2], adapters[0]), gone)
    engine.submit(_job(runtime, PROMPTS[2], max_new_tokens=8), stays)
    engine.step()
    assert engine.running == 2
    engine.unload_adapter(adapters[0])  # Serve evicted it while a row decodes with it: deferred
    assert adapters[0] in runtime.loaded_adapters
    ticket.cancel()
    engine.step()
    assert engine.running == 1 and gone.final is None
    assert adapters[0] not in runtime.loaded_adapters  # unloaded once its last row left
    while engine.has_work():
        engine.step()
    assert stays.final is not None and stays.final.completion_tokens == 8


def test_the_loop_thread_serves_submissions_and_calls(runtime: BatchEngine, adapters: list[str]) -> None:
    engine = ContinuousEngine(runtime, max_batch_size=8)
    engine.start()
    try:
        assert engine.call(lambda: engine.load_adapter(adapters[1])).result(timeout=60) == adapter_name_for(adapters[1])
        done = threading.Event()
        sink = Collector(engine)

        def on_item(item: list[StreamChunk] | BaseException) -> None:
            sink(item)
            if isinstance(item, BaseException) or any(chunk.final for chunk in item):
                done.set()

        engine.submit(_job(runtime, PROMPTS[0], adapters[1], max_new_tokens=6), on_item)
        assert done.wait(timeout=120) and sink.error is None
        assert sink.final.completion_tokens <= 6 and sink.final.adapter == adapters[1]

        missing = Collector(engine)
        failed = threading.Event()
        engine.submit(_job(runtime, PROMPTS[0], str(Path(adapters[1]).with_name("deleted"))),
                      lambda item: (missing(item), failed.set()))
        assert failed.wait(timeout=60)
        assert missing.error is not None and "adapter_config.json" in str(missing.error)
    finally:
        engine.close()


@pytest.mark.parametrize("dtype_name", ["float32", "bfloat16"])
def test_int4_prefill_runs_on_the_exact_weights(runtime: BatchEngine, dtype_name: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A prompt's prefill (many rows in one matmul) unpacks each int4 layer to its weights, bit for bit the
    model's own, so it computes what the model computes in the prefill's dtype (bf16 where the CPU has bf16
    matmuls, else fp32); decoding's few rows stay on the packed kernel (bf16 activations: close, not equal)."""
    import torch

    import serving.quantize
    from serving.quantize import BF16_PREFILL_ROWS, PREFILL_ROWS

    dtype = getattr(torch, dtype_name)
    if dtype == torch.bfloat16 and serving.quantize.prefill_dtype() != dtype:
        pytest.skip("this CPU has no native bf16 matmul: its prefill runs in fp32 (the other case)")
    monkeypatch.setattr(serving.quantize, "prefill_dtype", lambda: dtype)
    rows = BF16_PREFILL_ROWS if dtype == torch.bfloat16 else PREFILL_ROWS
    int4 = BatchEngine(runtime.config.model_copy(update={"quantize": "int4"}))
    packed = [layer.mlp.down_proj for layer in int4.base.model.layers]
    exact = [layer.mlp.down_proj for layer in runtime.base.model.layers]
    assert all(p.weight.numel() == 0 for p in packed), "the int4 model keeps no fp32 weights"
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for p, e in zip(packed, exact, strict=True):
            prompt = torch.randn(rows, e.in_features, generator=generator)
            expected = torch.nn.functional.linear(prompt.to(dtype), e.weight.to(dtype)).float()
            assert torch.equal(p(prompt), expected)
        decode = torch.randn(4, exact[0].in_features, generator=generator)
        close, reference = packed[0](decode), exact[0](decode)
        assert not torch.equal(close, reference)
        assert (close - reference).norm() / reference.norm() < 0.01


def test_int4_weights_serve_the_same_engine_and_adapters(runtime: BatchEngine, adapters: list[str]) -> None:
    """The built-in model's decoder weights are exactly int4 (from its Q4 GGUF): packed int4 kernels serve
    them, with adapters. Their bf16 activations make a row's numbers depend on its batch (the kernels block
    differently by row count), so only a row alone is compared with ``generate``; `none` is the exact engine."""
    int4 = BatchEngine(runtime.config.model_copy(update={"quantize": "int4"}))
    assert int4.quantized and int4.info().quantized
    engine = ContinuousEngine(int4, max_batch_size=8)
    jobs = [_job(int4, PROMPTS[1]), _job(int4, PROMPTS[1], adapters[0])]
    alone = [Collector(engine) for _ in jobs]
    for job, sink in zip(jobs, alone):
        _run(engine, {0: [(job, sink)]})
    texts = [sink.final.text for sink in alone]
    assert texts == [_reference(int4, job) for job in jobs]
    assert texts[0] != texts[1], "the adapter did not change the int4 model's output"
    together = [Collector(engine) for _ in jobs]
    _run(engine, {0: list(zip(jobs, together))})
    assert all(sink.final.completion_tokens == TOKENS and sink.final.batch_size == 2 for sink in together)
    # The first words agree with the fp32 model's: the drift comes later, not at once.
    fp32 = _reference(runtime, _job(runtime, PROMPTS[1]))
    assert texts[0].split()[:3] == fp32.split()[:3]


def test_no_links_requests_never_write_a_web_address(runtime: BatchEngine) -> None:
    """A request with ``no_links`` (the product sets it when nothing in the prompt can be cited) samples no token
    that writes an address, in both engines; the same request without it writes one, so the ban did the work."""
    prompt = "What is the web address of the Python language's official website? Reply with the full URL."
    engine = ContinuousEngine(runtime, max_batch_size=8)
    free, banned, sampled = Collector(engine), Collector(engine), Collector(engine)
    _run(engine, {0: [(_job(runtime, prompt), free), (_job(runtime, prompt, no_links=True), banned),
                      (_job(runtime, prompt, no_links=True, temperature=0.9, seed=3), sampled)]})
    assert "://" in free.final.text or "www" in free.final.text.lower()
    for text in (banned.final.text, sampled.final.text):
        assert text.strip() and "://" not in text and "www" not in text.lower()

    static: dict[int, str] = {}

    def sink(step: list[list[StreamChunk]]) -> None:
        for i, chunks in enumerate(step):
            static[i] = static.get(i, "") + "".join(chunk.text for chunk in chunks)

    runtime.generate([_job(runtime, prompt), _job(runtime, prompt, no_links=True)], sink)
    assert "://" in static[0] or "www" in static[0].lower()
    assert static[1].strip() and "://" not in static[1] and "www" not in static[1].lower()


SYSTEM = ("You write short posts for an engineer who builds data pipelines. Here is how they write: plain words, "
          "one idea per post, numbers over adjectives, no hashtags, and a closing line that says what to try "
          "next. They never open with a greeting and never thank the reader.")


def _chat_job(runtime: BatchEngine, user: str, adapter: str | None = None) -> GenerationJob:
    request = GenerationRequest(
        messages=[ChatMessage(role="system", content=SYSTEM), ChatMessage(role="user", content=user)],
        params=SamplingParams(temperature=0.0, max_new_tokens=TOKENS),
    )
    return runtime.make_job(request, adapter)


def test_a_prompt_that_starts_like_a_cached_one_prefills_only_its_new_tokens(runtime: BatchEngine,
                                                                              adapters: list[str]) -> None:
    """Prefix caching: a prompt sharing a cached prompt's system turn runs only its own tokens through the model,
    the very same prompt again runs one token, another adapter's cache is never used, and every greedy output
    still matches plain ``generate``."""
    engine = ContinuousEngine(runtime, max_batch_size=8)
    assert engine.prompt_cache is not None
    fed: list[int] = []
    hook = runtime.base.get_input_embeddings().register_forward_pre_hook(lambda _, args: fed.append(args[0].shape[1]))
    try:
        first, second = _chat_job(runtime, PROMPTS[2]), _chat_job(runtime, PROMPTS[4])
        same_again, other_adapter = _chat_job(runtime, PROMPTS[2]), _chat_job(runtime, PROMPTS[4], adapters[0])
        sinks = {}
        for name, job in (("first", first), ("second", second), ("same_again", same_again),
                          ("other_adapter", other_adapter)):
            fed.clear()
            sinks[name] = Collector(engine)
            _run(engine, {0: [(job, sinks[name])]})
            sinks[name].prefill = fed[0]
    finally:
        hook.remove()

    shared = next(i for i, (a, b) in enumerate(zip(first.prompt_ids, second.prompt_ids)) if a != b)
    assert shared > 40  # the chat template's system turn
    assert sinks["first"].prefill == len(first.prompt_ids)
    assert sinks["second"].prefill == len(second.prompt_ids) - shared
    assert sinks["same_again"].prefill == 1
    assert sinks["other_adapter"].prefill == len(other_adapter.prompt_ids)
    assert engine.prompt_cache.hits == 2
    assert engine.prompt_cache.reused_tokens == shared + len(first.prompt_ids) - 1
    jobs = {"first": first, "second": second, "same_again": same_again, "other_adapter": other_adapter}
    assert {name: sinks[name].final.text for name in jobs} == {name: _reference(runtime, job) for name, job in jobs.items()}

    # Unloading an adapter forgets its prompts: the same folder could hold other weights when it comes back.
    engine.unload_adapter(adapters[0])
    assert all(entry.adapter != adapters[0] for entry in engine.prompt_cache._entries.values())


def test_a_zero_prompt_cache_budget_turns_prefix_caching_off(runtime: BatchEngine, monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    monkeypatch.setenv("TWIN_SERVE__PROMPT_CACHE_MB", "0")
    config = ModelConfig.from_settings(Settings(data_dir=tmp_path, _env_file=None), runtime.config.base_model)
    assert config.prompt_cache_mb == 0
    monkeypatch.setattr(runtime, "config", runtime.config.model_copy(update={"prompt_cache_mb": 0}))
    engine = ContinuousEngine(runtime, max_batch_size=2)
    assert engine.prompt_cache is None
    job = _chat_job(runtime, PROMPTS[0])
    for _ in range(2):
        sink = Collector(engine)
        _run(engine, {0: [(job, sink)]})
        assert sink.final.text == _reference(runtime, job)

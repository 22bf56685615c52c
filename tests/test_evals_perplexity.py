"""Held-out perplexity (training.perplexity) under the real base model: the author's
answer tokens given the chat prompt, as SFT learns them and the adapter registry records them."""

from __future__ import annotations

import math
import random

import pytest

from conftest import corpus_texts
from training.perplexity import perplexity
from training.dataset import PromptCompletion
from training.perplexity import completion_nll, encode_example
from twin.domain import Kind, Platform

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    """The built-in base model, converted once into a tmp data dir by the project's own resolver."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from twin.models import resolve_base_model
    from twin.settings import Settings

    path = resolve_base_model(Settings(data_dir=tmp_path_factory.mktemp("twin-data")))
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return model, tokenizer


def example(text: str) -> PromptCompletion:
    return PromptCompletion(prompt=[{"role": "user", "content": "Write a short post."}],
                            completion=[{"role": "assistant", "content": text}], document_id=1,
                            url="https://corpus.example/1", platform=Platform.x, kind=Kind.post)


@pytest.fixture(scope="module")
def english() -> list[str]:
    posts = [p for p in corpus_texts("brandur_leach_atoms")
             if "http" not in p and "```" not in p and "](" not in p]
    random.Random(0).shuffle(posts)
    return [" ".join(p.split()[:60]) for p in posts if len(p.split()) >= 60][:3]


def test_real_text_is_more_likely_than_shuffled_words(base_model, english):
    model, tokenizer = base_model
    shuffled = []
    for text in english:
        tokens = text.split()
        random.Random(1).shuffle(tokens)
        shuffled.append(" ".join(tokens))
    real = perplexity(model, tokenizer, [example(t) for t in english])
    scrambled = perplexity(model, tokenizer, [example(t) for t in shuffled])
    assert math.isfinite(real) and 1.0 < real < 1000.0
    assert real < scrambled / 2, (real, scrambled)


def test_only_answer_tokens_count_and_a_fresh_adapter_changes_nothing(base_model, english):
    from peft import LoraConfig, get_peft_model

    model, tokenizer = base_model
    one = example(english[0])
    nll, tokens = completion_nll(model, tokenizer, [one])
    full, labels = encode_example(tokenizer, one, max_length=512)
    prompt_tokens = labels.count(-100)
    assert 0 < prompt_tokens < len(full) and tokens == len(full) - prompt_tokens and nll > 0

    # A fresh LoRA adapter starts as a no-op (B = 0), so the wrapped model scores the same.
    wrapped = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    try:
        assert perplexity(wrapped, tokenizer, [one]) == pytest.approx(math.exp(nll / tokens), rel=1e-4)
    finally:
        wrapped.unload()  # give the shared fixture its plain model back

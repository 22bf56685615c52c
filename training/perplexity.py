"""Held-out perplexity of the author's text under a model: the number that says whether training helped.

Scored as the twin is used: the chat-formatted instruction is the context and only the author's answer
tokens count (the same tokens SFT trains on), each example truncated to ``max_length`` tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from training.dataset import PromptCompletion


class PerplexityReport(BaseModel):
    base: float
    adapter: float
    ratio: float
    """adapter / base: below 1 means the adapter predicts the author's unseen text better."""
    examples: int
    tokens: int


def _ids(value: Any) -> list[int]:
    return list(value["input_ids"]) if not isinstance(value, list) else value


def encode_example(
    tokenizer: PreTrainedTokenizerBase, example: PromptCompletion, max_length: int
) -> tuple[list[int], list[int]]:
    """(input ids, labels) with the prompt masked out (-100)."""
    prompt = _ids(tokenizer.apply_chat_template(example.prompt, add_generation_prompt=True, tokenize=True))
    full = _ids(tokenizer.apply_chat_template(example.prompt + example.completion, tokenize=True))
    full = full[:max_length]
    labels = [-100] * min(len(prompt), len(full)) + full[len(prompt) :]
    return full, labels


def completion_nll(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[PromptCompletion],
    max_length: int = 512,
    batch_size: int = 4,
) -> tuple[float, int]:
    """Summed negative log-likelihood (nats) of the completion tokens, and how many tokens were scored."""
    import torch

    encoded = [encode_example(tokenizer, ex, max_length) for ex in examples]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    total_nll, total_tokens = 0.0, 0
    model.eval()
    for start in range(0, len(encoded), batch_size):
        batch = encoded[start : start + batch_size]
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (ids, labs) in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            labels[row, : len(labs)] = torch.tensor(labs)
            attention[row, : len(ids)] = 1
        with torch.inference_mode():
            logits = model(input_ids=input_ids, attention_mask=attention).logits.float()
        shifted_logits = logits[:, :-1].reshape(-1, logits.size(-1))
        shifted_labels = labels[:, 1:].reshape(-1)
        total_nll += torch.nn.functional.cross_entropy(
            shifted_logits, shifted_labels, ignore_index=-100, reduction="sum"
        ).item()
        total_tokens += int((shifted_labels != -100).sum())
    return total_nll, total_tokens


def perplexity(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[PromptCompletion],
    max_length: int = 512,
) -> float:
    nll, tokens = completion_nll(model, tokenizer, examples, max_length)
    return math.exp(nll / max(tokens, 1))


def base_and_adapter_perplexity(
    base_model_path: str, adapter_path: str, examples: Sequence[PromptCompletion], max_length: int = 512
) -> PerplexityReport:
    """Perplexity of the examples' completions under the base model and with the adapter (one load)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not examples:
        raise ValueError("no held-out examples to score")
    tokenizer = AutoTokenizer.from_pretrained(base_model_path)
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base_model_path, dtype=torch.float32), adapter_path
    )
    with model.disable_adapter():
        base_nll, tokens = completion_nll(model, tokenizer, examples, max_length)
    adapter_nll, _ = completion_nll(model, tokenizer, examples, max_length)
    base, adapter = math.exp(base_nll / max(tokens, 1)), math.exp(adapter_nll / max(tokens, 1))
    return PerplexityReport(base=base, adapter=adapter, ratio=adapter / base, examples=len(examples), tokens=tokens)

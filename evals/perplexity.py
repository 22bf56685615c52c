"""Perplexity of texts under a causal language model (a transformers model, PEFT-wrapped or not).

Long texts are scored with a sliding window (the Hugging Face recipe): windows of ``max_length`` tokens
advance by ``stride``, and each token is scored once, with up to ``max_length - stride`` tokens of
context before it. Perplexity is ``exp(total negative log-likelihood / scored tokens)`` over all texts,
so longer texts weigh more, as one long held-out document would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel


class PerplexityResult(BaseModel):
    perplexity: float
    nll_sum: float
    """Total negative log-likelihood in nats."""
    tokens: int
    """Tokens scored (the first token of each text has no context and is not scored)."""
    per_text: list[float]
    """Perplexity of each text on its own (``inf`` for a text with fewer than two tokens)."""


def perplexity_details(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    max_length: int = 512,
    stride: int | None = None,
) -> PerplexityResult:
    """Perplexity over ``texts`` plus per-text values; see :func:`perplexity`."""
    import torch

    stride = stride or max(max_length // 2, 1)
    if not 0 < stride <= max_length:
        raise ValueError("stride must be in (0, max_length]")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total_nll, total_tokens, per_text = 0.0, 0, []
    try:
        with torch.inference_mode():
            for text in texts:
                ids = tokenizer(text, return_tensors="pt", add_special_tokens=True).input_ids[0]
                nll, count = 0.0, 0
                scored_until = 1  # position 0 is never predicted
                for start in range(0, max(len(ids) - 1, 0), stride):
                    end = min(start + max_length, len(ids))
                    window = ids[start:end].unsqueeze(0).to(device)
                    logits = model(input_ids=window).logits[0, :-1].float()
                    targets = window[0, 1:]
                    log_probs = torch.log_softmax(logits, dim=-1)
                    token_nll = -log_probs.gather(1, targets.unsqueeze(1)).squeeze(1)
                    # Target at window index i + 1 is text position start + i + 1; skip the ones an
                    # earlier window already scored, which had at least as much context.
                    first_new = max(scored_until - start - 1, 0)
                    new = token_nll[first_new:]
                    nll += float(new.sum())
                    count += int(new.numel())
                    scored_until = end
                    if end == len(ids):
                        break
                per_text.append(math.exp(nll / count) if count else math.inf)
                total_nll += nll
                total_tokens += count
    finally:
        if was_training:
            model.train()
    return PerplexityResult(
        perplexity=math.exp(total_nll / total_tokens) if total_tokens else math.inf,
        nll_sum=total_nll,
        tokens=total_tokens,
        per_text=per_text,
    )


def perplexity(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int = 512,
    stride: int | None = None,
) -> float:
    """Token-weighted perplexity of ``texts`` under ``model`` (default stride: half the window)."""
    return perplexity_details(model, tokenizer, texts, max_length=max_length, stride=stride).perplexity

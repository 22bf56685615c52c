"""The static engine: one ``generate`` per ``@serve.batch`` batch, run to its end, with per-row sampling,
stops and repetition controls (the fallback behind `serving.engine.ContinuousEngine`)."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from serving.generation import (
    BASE_ADAPTER_NAME,
    ChatMessage,
    Generation,
    GenerationJob,
    GenerationRequest,
    LinkBan,
    ModelConfig,
    ModelInfo,
    StreamChunk,
    _held_back,
    _row_generator,
    adapter_name_for,
    sample_token,
)
from twin.domain import NotFound, TwinError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


@dataclasses.dataclass
class _RowState:
    job: GenerationJob
    generator: torch.Generator | None
    token_ids: list[int] = dataclasses.field(default_factory=list)
    text: str = ""
    emitted: int = 0
    finish_reason: Literal["stop", "length"] | None = None


StepSink = Callable[[list[list[StreamChunk]]], None]
"""Receives, once per decoding step, the new chunks of every row of the batch (an empty list: nothing new)."""


class _PerRowSampler:
    """A logits processor that applies each row's own decoding controls and samples sampled rows.

    Repetition controls are Hugging Face's own processors run on one row at a time, over the completion
    only (the left-padded prompts all end at ``prompt_length``). ``generate`` runs greedy for the whole
    batch; for a sampled row this processor draws the token itself with the row's temperature, top-p and
    RNG and leaves only that token finite, so greedy picks it. Greedy rows get the controls, then argmax.
    """

    def __init__(self, rows: list[_RowState], prompt_length: int, link_ban: Callable[[], LinkBan]) -> None:
        from transformers import NoRepeatNGramLogitsProcessor, RepetitionPenaltyLogitsProcessor

        self.rows = rows
        self.prompt_length = prompt_length
        self.no_links = [i for i, row in enumerate(rows) if row.job.params.no_links]
        self.link_ban = link_ban() if self.no_links else None
        self.sampled = {i for i, row in enumerate(rows) if row.job.params.temperature > 0}
        self.controls: dict[int, list[Any]] = {}
        for i, row in enumerate(rows):
            params = row.job.params
            controls: list[Any] = []
            if params.repetition_penalty > 1.0:
                controls.append(RepetitionPenaltyLogitsProcessor(params.repetition_penalty))
            if params.no_repeat_ngram_size > 0:
                controls.append(NoRepeatNGramLogitsProcessor(params.no_repeat_ngram_size))
            if controls:
                self.controls[i] = controls

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        completion = input_ids[:, self.prompt_length :]
        for i in self.no_links:
            assert self.link_ban is not None
            last = int(completion[i, -1]) if completion.shape[1] else None
            scores[i, self.link_ban.banned(last)] = float("-inf")
        for i, controls in self.controls.items():
            if completion.shape[1] == 0:
                break
            row_scores = scores[i : i + 1]
            for control in controls:
                row_scores = control(completion[i : i + 1], row_scores)
            scores[i] = row_scores[0]
        for i in self.sampled:
            row = self.rows[i]
            assert row.generator is not None
            token = sample_token(scores[i], row.job.params.temperature, row.job.params.top_p, row.generator)
            scores[i].fill_(float("-inf"))
            scores[i, token] = 0.0
        return scores


class _BatchTracker:
    """A stopping criterion that also turns each step's new tokens into per-row text deltas.

    ``generate`` calls stopping criteria once per step with the whole batch's ids (the new token last),
    before anything else sees the token, so this is where each row's end of turn, stop strings and own
    ``max_new_tokens`` are decided, and where the text is streamed out.
    """

    def __init__(self, rows: list[_RowState], tokenizer: Any, eos_ids: set[int], sink: StepSink,
                 cancelled: Callable[[], bool]) -> None:
        self.rows = rows
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.sink = sink
        self.cancelled = cancelled

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        import torch

        new_tokens = input_ids[:, -1].tolist()
        stop_everything = self.cancelled()
        step: list[list[StreamChunk]] = []
        for row, token in zip(self.rows, new_tokens):
            if row.finish_reason is not None:
                step.append([])
                continue
            if token in self.eos_ids:
                row.finish_reason = "stop"
            else:
                row.token_ids.append(token)
                row.text = self.tokenizer.decode(row.token_ids, skip_special_tokens=True)
                for stop in row.job.params.stop:
                    at = row.text.find(stop)
                    if at >= 0:
                        row.text = row.text[:at]
                        row.finish_reason = "stop"
                if row.finish_reason is None and len(row.token_ids) >= row.job.max_new_tokens:
                    row.finish_reason = "length"
            if stop_everything and row.finish_reason is None:
                row.finish_reason = "length"
            step.append(self._chunks(row))
        self.sink(step)
        return torch.tensor([row.finish_reason is not None for row in self.rows], dtype=torch.bool)

    def finish_all(self) -> None:
        """After ``generate`` returns: close rows it ended without us seeing it (e.g. the overall length cap)."""
        step = []
        for row in self.rows:
            if row.finish_reason is None:
                row.finish_reason = "length"
                step.append(self._chunks(row))
            else:
                step.append([])
        if any(step):
            self.sink(step)

    def _chunks(self, row: _RowState) -> list[StreamChunk]:
        if row.finish_reason is None:
            # Hold back a half-decoded UTF-8 character and anything that may turn out to be a stop string.
            safe = len(row.text) - _held_back(row.text, row.job.params.stop)
            safe = len(row.text[:safe].rstrip("\ufffd"))
            if safe <= row.emitted:
                return []
            delta, row.emitted = row.text[row.emitted:safe], safe
            return [StreamChunk(text=delta)]
        delta, row.emitted = row.text[row.emitted:], len(row.text)
        return [StreamChunk(text=delta, final=self._generation(row))]

    def _generation(self, row: _RowState) -> Generation:
        assert row.finish_reason is not None
        return Generation(
            text=row.text,
            prompt_tokens=len(row.job.prompt_ids),
            completion_tokens=len(row.token_ids),
            finish_reason=row.finish_reason,
            adapter=row.job.adapter_path,
            base_model_only=row.job.adapter_path is None,
            base_model="",  # filled in by the deployment
            batch_size=len(self.rows),
        )


class BatchEngine:
    """The base model, its tokenizer and the adapters loaded into it; generates whole batches.

    Not thread-safe on purpose: the deployment calls it from one model thread only, so adapter loads,
    evictions and generation never overlap.
    """

    def __init__(self, config: ModelConfig) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        self.config = config
        self.dtype = getattr(torch, config.dtype)
        self.tokenizer = AutoTokenizer.from_pretrained(config.base_model)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # Prompts are encoded on the replica's event loop while the model thread decodes: a fast tokenizer
        # must not be used from two threads at once ("Already borrowed"), so each side has its own.
        self.prompt_tokenizer = AutoTokenizer.from_pretrained(config.base_model)
        self.base = AutoModelForCausalLM.from_pretrained(config.base_model, dtype=self.dtype).eval()
        self.quantized = False
        if config.quantize == "int4":
            from serving.quantize import quantize_for_cpu

            self.quantized = quantize_for_cpu(self.base)
            if not self.quantized:
                log.warning("%s's weights are not exactly int4: serving them as loaded", config.base_model)
        self.peft: Any = None
        """The PeftModel wrapping `base`, created with the first adapter and unwrapped after the last."""
        self._adapter_paths: dict[str, str] = {}
        """PEFT adapter name -> folder, for the adapters loaded into `peft`."""
        eos = self.base.generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) | {self.tokenizer.eos_token_id}
        self.context_tokens = int(getattr(self.base.config, "max_position_embeddings", 2048))

    @functools.cached_property
    def link_ban(self) -> LinkBan:
        """What a ``no_links`` request may not sample (worked out once, on the first such request)."""
        return LinkBan(self.tokenizer)

    # adapters --------------------------------------------------------------------------------------
    @property
    def loaded_adapters(self) -> list[str]:
        """Folders of the adapters in memory."""
        return list(self._adapter_paths.values())

    def load_adapter(self, path: str) -> str:
        from peft import PeftModel

        name = adapter_name_for(path)
        if name in self._adapter_paths:
            return name
        if not (Path(path) / "adapter_config.json").exists():
            raise NotFound(f"Adapter folder {path} has no adapter_config.json (was it deleted?).")
        # Adapters run in the base model's dtype (PEFT would otherwise keep them in fp32 under a bf16 base).
        if self.peft is None:
            self.peft = PeftModel.from_pretrained(self.base, path, adapter_name=name, torch_device="cpu",
                                                  autocast_adapter_dtype=False)
        else:
            self.peft.load_adapter(path, adapter_name=name, torch_device="cpu", autocast_adapter_dtype=False)
        self.peft.to(self.dtype).eval()
        self._adapter_paths[name] = path
        log.info("loaded adapter %s as %s", path, name)
        return name

    def unload_adapter(self, path: str) -> None:
        name = adapter_name_for(path)
        if self._adapter_paths.pop(name, None) is None:
            return
        if not self._adapter_paths:
            self.base = self.peft.unload()  # the last one: back to the plain model, LoRA layers removed
            self.peft = None
        else:
            self.peft.delete_adapter(name)
        log.info("unloaded adapter %s", path)

    # generation ------------------------------------------------------------------------------------
    def encode_chat(self, messages: list[ChatMessage]) -> list[int]:
        """The prompt in the model's chat template, ending where the assistant's turn begins."""
        text = self.prompt_tokenizer.apply_chat_template(
            [m.model_dump() for m in messages], tokenize=False, add_generation_prompt=True
        )
        return self.prompt_tokenizer(text, add_special_tokens=False)["input_ids"]

    def make_job(self, request: GenerationRequest, adapter_path: str | None) -> GenerationJob:
        prompt_ids = self.encode_chat(request.messages)
        max_new = request.params.max_new_tokens or self.config.max_new_tokens
        if len(prompt_ids) + max_new > self.context_tokens:
            raise TwinError(
                f"The prompt is {len(prompt_ids)} tokens; with max_new_tokens={max_new} it exceeds the "
                f"model's context of {self.context_tokens} tokens. Shorten it."
            )
        return GenerationJob(prompt_ids=prompt_ids, params=request.params, max_new_tokens=max_new,
                             adapter_path=adapter_path)

    def generate(self, jobs: list[GenerationJob], sink: StepSink, cancelled: Callable[[], bool] = lambda: False,
                 ) -> None:
        """Decode a batch (left-padded, one forward per step for all rows), streaming each step to `sink`."""
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        for job in jobs:
            if job.adapter_path is not None:
                self.load_adapter(job.adapter_path)  # evicted between routing and batching: reload
        rows = [
            _RowState(job=job, generator=_row_generator(job.params) if job.params.temperature > 0 else None)
            for job in jobs
        ]
        batch = self.tokenizer.pad({"input_ids": [job.prompt_ids for job in jobs]}, return_tensors="pt")
        tracker = _BatchTracker(rows, self.tokenizer, self.eos_ids, sink, cancelled)
        generation_config = GenerationConfig(
            max_new_tokens=max(job.max_new_tokens for job in jobs),
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=sorted(self.eos_ids),
        )
        kwargs: dict[str, Any] = dict(
            **batch,
            generation_config=generation_config,
            logits_processor=LogitsProcessorList(
                [_PerRowSampler(rows, batch["input_ids"].shape[1], lambda: self.link_ban)]
            ),
            stopping_criteria=StoppingCriteriaList([tracker]),
        )
        model = self.base
        if self.peft is not None:
            model = self.peft
            kwargs["adapter_names"] = [
                adapter_name_for(job.adapter_path) if job.adapter_path else BASE_ADAPTER_NAME for job in jobs
            ]
        with torch.inference_mode():
            model.generate(**kwargs)
        tracker.finish_all()

    def info(self) -> ModelInfo:
        import psutil
        import torch

        return ModelInfo(base_model=self.config.base_model, dtype=self.config.dtype,
                         torch_threads=torch.get_num_threads(), loaded_adapters=self.loaded_adapters,
                         max_batch_size=self.config.max_batch_size, quantized=self.quantized,
                         rss_bytes=psutil.Process().memory_info().rss)

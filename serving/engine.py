"""Continuous (iteration-level) batching on one CPU replica: a step loop over a KV cache it manages.

The static engine (`serving.model.BatchEngine.generate`) runs one ``generate`` per batch to its end: a request
that arrives meanwhile waits for the whole batch, and rows that finish early keep their slot. Here the unit of
scheduling is one decoding step, as in vLLM and TGI:

- a request waits at most one step: at the start of every step the waiting requests are prefilled together
  (left-padded, their own fresh cache), stream their first token, and their cache rows are spliced into the
  running batch's;
- every step then feeds each running row its last token (one forward for the whole batch, each row with its
  own position ids and attention-mask row) and picks each row's next token with its own sampling params,
  repetition controls and RNG;
- a row that ends (end of turn, a stop string, its ``max_new_tokens``, its caller gone) leaves the batch at
  once: its cache row is dropped, and the columns no remaining row needs are trimmed from the left;
- a prompt that starts like a recent one under the same adapter (an author's system prompt and example
  posts, a revision's same prompt) starts from that prompt's kept keys and values and prefills only its own
  tokens (`serving.prefix_cache`).

Rows may use different LoRA adapters: PEFT routes each row through its own (``adapter_names=``).

The cache is transformers' `DynamicCache` with layers that grow in place (`serving.kv_cache`). The engine pads
and splices its per-layer tensors, so it serves models whose layers all cache plainly (full attention). Others
(sliding-window or linear-attention layers) raise `UnsupportedModel`, and the deployment falls back to the
static engine, which works for any model.

    engine = ContinuousEngine(runtime, max_batch_size=8)   # runtime: the model, tokenizer and adapters
    engine.submit(job, sink)                                # sink gets lists of StreamChunks, or an exception
    while engine.has_work(): engine.step()                        # or engine.start(): a thread runs the loop
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from serving.generation import (
    BASE_ADAPTER_NAME,
    Generation,
    GenerationJob,
    LinkBan,
    StreamChunk,
    _held_back,
    _row_generator,
    adapter_name_for,
    sample_token,
)
from serving.prefix_cache import PromptCache
from serving.static_engine import BatchEngine
from twin.domain import TwinError

if TYPE_CHECKING:
    import torch

    from serving.cascade import SharedPrefixes
    from serving.prefix_cache import PrefixHit

log = logging.getLogger(__name__)

SIBLING_WAIT_S = 0.05
"""Longest a request that expects siblings (``SamplingParams.siblings``) waits for them before it starts."""

RowSink = Callable[[list[StreamChunk] | BaseException], None]
"""Receives a request's new chunks after each step it was in (the last one carries ``final``), or the
exception that ended it."""


def _deliver(ticket: Ticket, item: list[StreamChunk] | BaseException) -> None:
    """Hand a request its chunks; a sink that fails (its caller's event loop is gone) cancels the request."""
    try:
        ticket.sink(item)
    except Exception:  # noqa: BLE001 - one caller's failure must not stop the loop for the others
        log.warning("dropping a request whose caller cannot take its output", exc_info=True)
        ticket.cancel()


def _use_cascade_attention(runtime: BatchEngine) -> bool:
    """Switch the model to `serving.cascade`'s attention (SDPA unless a step passes shared prompts)."""
    from serving import cascade

    cascade.register()
    try:
        runtime.base.set_attn_implementation(cascade.ATTENTION_NAME)
    except (ValueError, KeyError, NotImplementedError):  # a model that picks its own attention code
        log.info("%s keeps its attention: best-of-N candidates keep a copy of their prompt each",
                 runtime.config.base_model)
        return False
    return True


class UnsupportedModel(TwinError):
    """The model's cache cannot be padded and spliced row by row (the static engine serves it instead)."""


@dataclasses.dataclass(eq=False)
class Ticket:
    """A submitted request; `cancel` (the caller is gone) drops its row at the next step."""

    job: GenerationJob
    sink: RowSink
    cancelled: bool = False
    arrived: float = dataclasses.field(default_factory=time.monotonic)

    def cancel(self) -> None:
        self.cancelled = True

    @functools.cached_property
    def prompt_key(self) -> tuple[tuple[int, ...], str | None]:
        """Requests with equal keys can share a prompt's prefill and cache."""
        return tuple(self.job.prompt_ids), self.job.adapter_path


@dataclasses.dataclass(eq=False)
class _Row:
    ticket: Ticket
    adapter: str
    """PEFT adapter name (`BASE_ADAPTER_NAME`: none)."""
    generator: torch.Generator | None
    controls: list[Any]
    link_ban: LinkBan | None = None
    """What this row may not sample (``no_links``)."""
    next_token: int = -1
    """The token picked last and not yet fed to the model."""
    position: int = 0
    """Its position id (the row's real tokens so far)."""
    token_ids: list[int] = dataclasses.field(default_factory=list)
    text: str = ""
    emitted: int = 0
    finish_reason: Literal["stop", "length"] | None = None
    batch_size: int = 1
    """The most rows this request shared a step with."""
    group: object | None = None
    """Its group in the engine's shared prefixes (best-of-N candidates of one prompt), or None: its own cache
    holds its prompt."""

    @property
    def params(self) -> Any:
        return self.ticket.job.params


class ContinuousEngine:
    """Schedules requests into a running batch one decoding step at a time.

    All model work (steps, and adapter loads and unloads through `call`) runs on one thread: the loop's
    thread after `start`, or the caller's when a test drives `step` itself.
    """

    def __init__(self, runtime: BatchEngine, max_batch_size: int = 8) -> None:
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        probe = DynamicCache(config=runtime.base.config)
        if any(type(layer) is not DynamicLayer for layer in probe.layers):
            raise UnsupportedModel(f"{runtime.config.base_model} has layers whose cache is not a plain one")
        self.runtime = runtime
        self.max_batch_size = max_batch_size
        self._inbox: queue.SimpleQueue[Ticket | tuple[Callable[[], Any], concurrent.futures.Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._waiting: list[Ticket] = []
        self._rows: list[_Row] = []
        self._cache: Any = None
        """The running batch's `DynamicCache` (rows in `_rows`' order, left-padded to a common length)."""
        self._mask: torch.Tensor | None = None
        """Which cached columns of each row are real tokens (1) or padding (0)."""
        self._deferred_unloads: set[str] = set()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.steps = 0
        """Steps taken so far."""
        self.shared_prefills = 0
        """Rows that took a copy of an identical prompt's prefill instead of their own forward."""
        self.cascade = _use_cascade_attention(runtime)
        """Candidates of one prompt read it from one shared copy (`serving.cascade`) rather than N copies."""
        self._prefixes: SharedPrefixes | None = None
        budget = runtime.config.prompt_cache_mb * 2**20
        self.prompt_cache = PromptCache(budget) if budget > 0 else None
        """Recent prompts' keys and values, for later prompts that start the same way (`serving.prefix_cache`)."""

    # the API the deployment uses ---------------------------------------------------------------------
    def submit(self, job: GenerationJob, sink: RowSink) -> Ticket:
        """Queue a request; it joins the running batch at the next step. Thread-safe."""
        ticket = Ticket(job=job, sink=sink)
        self._inbox.put(ticket)
        return ticket

    def call(self, fn: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        """Run `fn` on the model thread between two steps (adapter loads and unloads). Thread-safe."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._inbox.put((fn, future))
        return future

    def load_adapter(self, path: str) -> str:
        """On the model thread: load (or keep) an adapter; a pending deferred unload of it is forgotten."""
        self._deferred_unloads.discard(path)
        return self.runtime.load_adapter(path)

    def unload_adapter(self, path: str) -> None:
        """On the model thread: unload an adapter now, or once no running or waiting row uses it."""
        in_use = {row.ticket.job.adapter_path for row in self._rows}
        in_use |= {ticket.job.adapter_path for ticket in self._waiting}
        if path in in_use:
            self._deferred_unloads.add(path)
        else:
            self.runtime.unload_adapter(path)
            if self.prompt_cache is not None:
                self.prompt_cache.drop_adapter(path)

    def start(self) -> None:
        """Run the step loop on a daemon thread of its own."""
        self._thread = threading.Thread(target=self._loop, name="twin-engine", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._inbox.put(None)
        if self._thread is not None:
            self._thread.join(timeout=30)

    def has_work(self) -> bool:
        """Rows are running or waiting (for a caller driving `step` itself, on its own thread)."""
        self._drain_inbox(block=False)
        return bool(self._rows or self._waiting)

    @property
    def running(self) -> int:
        return len(self._rows)

    # the loop ------------------------------------------------------------------------------------------
    def _loop(self) -> None:
        import torch

        if self.runtime.config.torch_threads:
            torch.set_num_threads(self.runtime.config.torch_threads)  # this thread's, as the runtime's was
        while True:
            held = self._held_back(time.monotonic())
            idle = not self._rows and len(held) == len(self._waiting)
            wait = min((SIBLING_WAIT_S - (time.monotonic() - t.arrived) for t in held), default=None)
            self._drain_inbox(block=idle, timeout=None if wait is None else max(wait, 0.0))
            if self._closed:
                break
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001 - one failed step ends its rows, not the replica
                log.exception("decoding step failed")
                self._fail_all(exc)

    def _drain_inbox(self, block: bool, timeout: float | None = None) -> None:
        """Move submitted requests to the waiting list and run queued calls (waiting for one if `block`, at most
        `timeout` seconds)."""
        while not self._closed:
            try:
                item = self._inbox.get(block=block, timeout=timeout if block else None)
            except queue.Empty:
                return
            block = False
            if item is None:
                self._closed = True
                self._fail_all(TwinError("The model replica is shutting down."))
                return
            if isinstance(item, Ticket):
                self._waiting.append(item)
                continue
            fn, future = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    future.set_exception(exc)

    def step(self) -> None:
        """Admit waiting requests (prefill, first token), then one decoding step for every running row."""
        import torch

        self._drain_inbox(block=False)
        self._drop_cancelled()
        free = self.max_batch_size - len(self._rows)
        held = self._held_back(time.monotonic())
        admitted = [ticket for ticket in self._waiting if ticket not in held][:free]
        self._waiting = [ticket for ticket in self._waiting if ticket not in admitted]
        rows = []
        for ticket in admitted:
            try:
                rows.append(self._new_row(ticket))  # loads its adapter (outside inference mode: PEFT sets grads)
            except Exception as exc:  # noqa: BLE001 - e.g. its adapter folder was deleted: that request fails
                _deliver(ticket, exc)
        with torch.inference_mode():
            if rows:
                try:
                    self._prefill(rows)
                except Exception as exc:  # noqa: BLE001 - the newcomers fail; the running batch goes on
                    if any(row in self._rows for row in rows):
                        raise
                    log.exception("prefill failed")
                    for row in rows:
                        _deliver(row.ticket, exc)
            if self._rows:
                self._decode()
        self.steps += 1
        self._run_deferred_unloads()

    def _held_back(self, now: float) -> list[Ticket]:
        """Waiting requests whose announced siblings have not all arrived yet (and have not waited too long)."""
        expecting = [t for t in self._waiting if t.job.params.siblings > 1 and now - t.arrived < SIBLING_WAIT_S]
        if not expecting:
            return []
        arrived: dict[tuple[tuple[int, ...], str | None], int] = {}
        for ticket in self._waiting:
            arrived[ticket.prompt_key] = arrived.get(ticket.prompt_key, 0) + 1
        return [t for t in expecting if arrived[t.prompt_key] < t.job.params.siblings]

    # prefill and decode --------------------------------------------------------------------------------
    def _prefill(self, rows: list[_Row]) -> None:
        """Prefill newcomers. A prompt that starts like a cached one (`prompt_cache`) runs only its new tokens,
        in a forward of its own; the others run together, left-padded."""
        by_prompt: dict[tuple[tuple[int, ...], str | None], list[_Row]] = {}
        for row in rows:
            by_prompt.setdefault(row.ticket.prompt_key, []).append(row)
        cold: list[_Row] = []
        for (token_ids, adapter), group in by_prompt.items():
            hit = self.prompt_cache.lookup(adapter, token_ids) if self.prompt_cache is not None else None
            if hit is None:
                cold.extend(group)
            else:
                self._prefill_rows(group, hit)
        if cold:
            self._prefill_rows(cold, None)

    def _prefill_rows(self, rows: list[_Row], hit: PrefixHit | None) -> None:
        import torch

        from serving.kv_cache import growing_cache

        # Rows with the same prompt and adapter (a draft's best-of-N candidates) share one forward: they get
        # copies of its cache rows and logits, then each samples on its own. Prefill is most of a long
        # prompt's cost on a CPU, so N candidates cost about one.
        keys = [row.ticket.prompt_key for row in rows]
        unique: dict[tuple[tuple[int, ...], str | None], int] = {}
        index = [unique.setdefault(key, len(unique)) for key in keys]
        leaders = [rows[keys.index(key)] for key in unique]
        prompts = [row.ticket.job.prompt_ids for row in leaders]
        width = max(len(p) for p in prompts)
        cache = growing_cache(self.runtime.base.config)
        if hit is None:
            pad = self.runtime.tokenizer.pad_token_id
            input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], dtype=torch.long)
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], dtype=torch.long)
            position_ids = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
        else:  # one prompt: the cached prefix, then its own tokens
            for layer, (k, v) in enumerate(zip(hit.entry.keys, hit.entry.values, strict=True)):
                cache.update(k[:, :, : hit.length], v[:, :, : hit.length], layer)
            input_ids = torch.tensor([prompts[0][hit.length :]], dtype=torch.long)
            mask = torch.ones(1, width, dtype=torch.long)
            position_ids = torch.arange(hit.length, width).unsqueeze(0)
        logits = self._forward(leaders, input_ids, mask, position_ids, cache)
        if self.prompt_cache is not None:
            for u, leader in enumerate(leaders):
                start = width - len(prompts[u])
                token_ids, adapter = leader.ticket.prompt_key
                self.prompt_cache.store(adapter, token_ids, [layer.keys[u : u + 1, :, start:] for layer in cache.layers],
                                        [layer.values[u : u + 1, :, start:] for layer in cache.layers])
        if len(leaders) < len(rows):
            shared = [u for u in range(len(leaders)) if index.count(u) > 1] if self.cascade else []
            if shared:
                self._share_prompts(rows, index, shared, cache, mask)
            # Each row's own cache: its prompt if it has no shared one (the widest such prompt sets the width).
            own_width = max((len(prompts[u]) for u in range(len(leaders)) if u not in shared), default=0)
            copies = torch.tensor(index, dtype=torch.long)
            for layer in cache.layers:
                layer.keys = layer.keys.index_select(0, copies)[:, :, width - own_width :]
                layer.values = layer.values.index_select(0, copies)[:, :, width - own_width :]
            mask, logits = mask.index_select(0, copies)[:, width - own_width :], logits.index_select(0, copies)
            mask[[i for i, u in enumerate(index) if u in shared]] = 0
        self.shared_prefills += len(rows) - len(leaders)
        for row in rows:
            row.position = len(row.ticket.job.prompt_ids)
        self._splice(rows, cache, mask)
        self._pick(rows, logits)

    def _share_prompts(self, rows: list[_Row], index: list[int], shared: list[int], cache: Any,
                       mask: torch.Tensor) -> None:
        """Keep the prompts of these prefilled leaders once, in `_prefixes`, for the rows that share each."""
        import torch

        from serving.cascade import SharedPrefixes

        pick = torch.tensor(shared, dtype=torch.long)
        prompt_mask = mask.index_select(0, pick).bool()
        first = int(prompt_mask.any(dim=0).nonzero()[0])
        keys = [layer.keys.index_select(0, pick)[:, :, first:] for layer in cache.layers]
        values = [layer.values.index_select(0, pick)[:, :, first:] for layer in cache.layers]
        groups = {u: object() for u in shared}
        if self._prefixes is None:
            self._prefixes = SharedPrefixes(keys=keys, values=values, mask=prompt_mask[:, first:],
                                            groups=list(groups.values()))
        else:
            self._prefixes.add(keys, values, prompt_mask[:, first:], list(groups.values()))
        for row, u in zip(rows, index):
            row.group = groups.get(u)

    def _decode(self) -> None:
        import torch

        assert self._mask is not None
        rows = list(self._rows)
        input_ids = torch.tensor([[row.next_token] for row in rows], dtype=torch.long)
        mask = torch.cat([self._mask, torch.ones(len(rows), 1, dtype=torch.long)], dim=1)
        position_ids = torch.tensor([[row.position] for row in rows], dtype=torch.long)
        extra: dict[str, Any] = {}
        if self._prefixes is not None:
            from serving.cascade import cascade_step

            extra["shared_prefixes"] = cascade_step(self._prefixes, [row.group for row in rows], mask)
        logits = self._forward(rows, input_ids, mask, position_ids, self._cache, **extra)
        self._mask = mask
        for row in rows:
            row.position += 1
        self._pick(rows, logits)

    def _forward(self, rows: list[_Row], input_ids: torch.Tensor, mask: torch.Tensor, position_ids: torch.Tensor,
                 cache: Any, **kwargs: Any) -> torch.Tensor:
        """Logits of each row's last position, as float32 (as ``generate`` takes them)."""
        model = self.runtime.base
        if self.runtime.peft is not None:
            model = self.runtime.peft
            kwargs["adapter_names"] = [row.adapter for row in rows]
        out = model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids, cache=cache,
                    use_cache=True, logits_to_keep=1, **kwargs)
        return out.logits[:, -1, :].float()

    def _new_row(self, ticket: Ticket) -> _Row:
        from transformers import NoRepeatNGramLogitsProcessor, RepetitionPenaltyLogitsProcessor

        job = ticket.job
        adapter = BASE_ADAPTER_NAME
        if job.adapter_path is not None:
            adapter = self.load_adapter(job.adapter_path)  # evicted between routing and admission: reload
            assert adapter == adapter_name_for(job.adapter_path)
        controls: list[Any] = []
        if job.params.repetition_penalty > 1.0:
            controls.append(RepetitionPenaltyLogitsProcessor(job.params.repetition_penalty))
        if job.params.no_repeat_ngram_size > 0:
            controls.append(NoRepeatNGramLogitsProcessor(job.params.no_repeat_ngram_size))
        generator = _row_generator(job.params) if job.params.temperature > 0 else None
        link_ban = self.runtime.link_ban if job.params.no_links else None
        return _Row(ticket=ticket, adapter=adapter, generator=generator, controls=controls, link_ban=link_ban)

    def _pick(self, rows: list[_Row], logits: torch.Tensor) -> None:
        """Each row's next token (its own controls, then greedy or its own sample), streamed out; rows that
        ended leave the batch."""
        greedy = logits.argmax(dim=-1).tolist()
        for i, row in enumerate(rows):
            token = greedy[i]
            if row.controls or row.link_ban is not None or row.generator is not None:
                token = self._pick_one(row, logits[i : i + 1])
            row.batch_size = max(row.batch_size, len(self._rows))
            self._advance(row, token)
        ended = [row for row in rows if row.finish_reason is not None]
        if ended:
            self._remove(ended)

    def _pick_one(self, row: _Row, scores: torch.Tensor) -> int:
        import torch

        if row.link_ban is not None:
            scores[..., row.link_ban.banned(row.token_ids[-1] if row.token_ids else None)] = float("-inf")
        if row.controls and row.token_ids:
            # Over the completion only: the prompt is exempt (a draft may use its title's words).
            completion = torch.tensor([row.token_ids], dtype=torch.long)
            for control in row.controls:
                scores = control(completion, scores)
        if row.generator is None:
            return int(scores.argmax(dim=-1))
        return sample_token(scores[0], row.params.temperature, row.params.top_p, row.generator)

    def _advance(self, row: _Row, token: int) -> None:
        """Record a row's new token: end of turn, stop strings, length; stream what is safe to show."""
        job = row.ticket.job
        row.next_token = token
        if token in self.runtime.eos_ids:
            row.finish_reason = "stop"
        else:
            row.token_ids.append(token)
            row.text = self.runtime.tokenizer.decode(row.token_ids, skip_special_tokens=True)
            for stop in job.params.stop:
                at = row.text.find(stop)
                if at >= 0:
                    row.text = row.text[:at]
                    row.finish_reason = "stop"
            if row.finish_reason is None and len(row.token_ids) >= job.max_new_tokens:
                row.finish_reason = "length"
        if row.finish_reason is None:
            # Hold back a half-decoded UTF-8 character and anything that may turn out to be a stop string.
            safe = len(row.text) - _held_back(row.text, job.params.stop)
            safe = len(row.text[:safe].rstrip("\ufffd"))
            if safe > row.emitted:
                delta, row.emitted = row.text[row.emitted : safe], safe
                _deliver(row.ticket, [StreamChunk(text=delta)])
            return
        delta, row.emitted = row.text[row.emitted :], len(row.text)
        _deliver(row.ticket, [StreamChunk(text=delta, final=self._generation(row))])

    def _generation(self, row: _Row) -> Generation:
        job = row.ticket.job
        assert row.finish_reason is not None
        return Generation(
            text=row.text, prompt_tokens=len(job.prompt_ids), completion_tokens=len(row.token_ids),
            finish_reason=row.finish_reason, adapter=job.adapter_path, base_model_only=job.adapter_path is None,
            base_model="",  # filled in by the deployment
            batch_size=row.batch_size,
        )

    # the cache -----------------------------------------------------------------------------------------
    def _splice(self, rows: list[_Row], cache: Any, mask: torch.Tensor) -> None:
        """Append prefilled rows (their cache and mask) to the running batch, left-padding the shorter side."""
        import torch
        import torch.nn.functional as F

        if not self._rows:
            self._rows, self._cache, self._mask = list(rows), cache, mask
            return
        assert self._mask is not None
        old_len, new_len = self._mask.shape[1], mask.shape[1]
        width = max(old_len, new_len)
        for old, new in zip(self._cache.layers, cache.layers):
            old.keys = torch.cat([F.pad(old.keys, (0, 0, width - old_len, 0)),
                                  F.pad(new.keys, (0, 0, width - new_len, 0))], dim=0)
            old.values = torch.cat([F.pad(old.values, (0, 0, width - old_len, 0)),
                                    F.pad(new.values, (0, 0, width - new_len, 0))], dim=0)
        self._mask = torch.cat([F.pad(self._mask, (width - old_len, 0)), F.pad(mask, (width - new_len, 0))], dim=0)
        self._rows.extend(rows)

    def _remove(self, ended: list[_Row]) -> None:
        """Drop rows from the batch and the cache columns that only they needed."""
        import torch

        keep = [i for i, row in enumerate(self._rows) if row not in ended]
        if not keep:
            self._rows, self._cache, self._mask, self._prefixes = [], None, None, None
            return
        assert self._mask is not None
        index = torch.tensor(keep, dtype=torch.long)
        mask = self._mask.index_select(0, index)
        real = mask.any(dim=0).nonzero()
        # Columns left of this are padding in every remaining row (all of them, for candidates that have only
        # their shared prompt so far).
        first = int(real[0]) if len(real) else mask.shape[1]
        for layer in self._cache.layers:
            layer.keys = layer.keys.index_select(0, index)[:, :, first:]
            layer.values = layer.values.index_select(0, index)[:, :, first:]
        self._mask = mask[:, first:]
        self._rows = [self._rows[i] for i in keep]
        if self._prefixes is not None:
            alive = {id(row.group) for row in self._rows}
            blocks = [i for i, group in enumerate(self._prefixes.groups) if id(group) in alive]
            if not blocks:
                self._prefixes = None
            elif len(blocks) < len(self._prefixes.groups):
                self._prefixes.keep(blocks)

    def _drop_cancelled(self) -> None:
        self._waiting = [ticket for ticket in self._waiting if not ticket.cancelled]
        gone = [row for row in self._rows if row.ticket.cancelled]
        if gone:
            self._remove(gone)

    def _fail_all(self, exc: BaseException) -> None:
        for ticket in [row.ticket for row in self._rows] + self._waiting:
            _deliver(ticket, exc)
        self._rows, self._waiting, self._cache, self._mask, self._prefixes = [], [], None, None, None

    def _run_deferred_unloads(self) -> None:
        for path in list(self._deferred_unloads):
            self._deferred_unloads.discard(path)
            self.unload_adapter(path)  # defers it again while still in use

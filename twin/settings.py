"""One `Settings` object, read from the environment (prefix ``TWIN_``) and an optional ``.env``.

Groups of related settings are nested models; set them with a double underscore, e.g.
``TWIN_CRAWL__MAX_BYTES=2000000`` or ``TWIN_TRAIN__LORA_R=8``. Nothing is read at import time:
call :func:`get_settings` (cached) or build ``Settings()`` yourself (tests do).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_BASE_MODEL = "smollm2-135m-instruct"
DEFAULT_EMBED_MODEL = "all-minilm-l6-v2"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class CrawlSettings(BaseModel):
    """Limits and options for every web fetch."""

    max_bytes: int = 5_000_000
    """Largest response body accepted, per page."""
    timeout_s: float = 20.0
    """Time allowed for one page (connect, redirects and body)."""
    max_pages_per_source: int = 200
    """Most pages collected from one source (feed items, sitemap entries, repo files)."""
    max_redirects: int = 5
    user_agent: str = "llm-twin/0.1 (+https://github.com/llm-twin)"
    chromium_path: str = "/usr/bin/chromium"
    """Chromium used over CDP for sources that need JavaScript."""
    cdp_url: str | None = None
    """Attach to an already running Chromium instead of starting one."""
    github_max_file_bytes: int = 200_000
    github_max_files: int = 300
    github_max_repos: int = 20
    github_max_repo_bytes: int = 50_000_000
    github_extensions: list[str] = Field(
        default_factory=lambda: [
            ".md", ".rst", ".txt", ".py", ".js", ".ts", ".go", ".rs", ".java", ".rb", ".c", ".h",
            ".cpp", ".sh", ".toml", ".yaml", ".yml",
        ]
    )
    git_identities: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Your commit identities, emails or names (comma-separated in the environment). Commits whose author
    matches one (or, on github.com, the repo owner's login or ``login@users.noreply.github.com``) are yours:
    the lines they added become documents that `twin train --with-code` learns from."""
    github_history_commits: int = 200
    """Commits of each repo's history fetched to find your own changes (1: the files at HEAD only)."""
    github_max_authored_changes: int = 300
    """Most documents of your own changes (one per file per commit) kept from one repo, newest first."""

    _split_identities = field_validator("git_identities", mode="before")(_split_csv)


class ChunkSettings(BaseModel):
    """How documents are split for retrieval, in the embedder's own tokens.

    Sized for the default embedder, all-MiniLM-L6-v2, which reads only its first 256 tokens ([CLS] and
    [SEP] included): a chunk of at most 254 is embedded whole. Measured on 25 Chris Wellons articles (100
    known-sentence queries): 384/512 chunks found the right chunk first 45% of the time (right article
    71%); 200/256 chunks 61% (right article 80%). Raise these with an embedder that reads further.
    """

    post_max_tokens: int = 254
    """A post at most this long stays one chunk."""
    target_tokens: int = 200
    max_tokens: int = 254
    overlap_tokens: int = 32


class TrainSettings(BaseModel):
    """LoRA fine-tuning defaults: the one source of them (``TrainConfig`` reads these; CLI flags override).

    Sized so that `twin train` with defaults on a 2-core laptop CPU finishes a ~100-post author (SFT, DPO and
    the perplexity check) in about an hour; see ``benchmarks/results/train.json`` for the measured throughput.
    """

    workers: int = 1
    """Ray Train workers. On one machine one worker using every core is fastest (CPU workers on the same cores
    only add gradient all-reduce); more pay off across the nodes of a cluster (or one per GPU)."""
    cpus_per_worker: int | None = None
    """CPUs each worker reserves in Ray and uses as torch threads; empty: a local Ray's free CPUs split
    evenly across the workers (on a cluster: at most one node's CPUs)."""
    use_gpu: bool = False
    lora_r: int = 16
    """LoRA rank on every linear layer. Rank 64 dropped held-out perplexity as much as the learning-rate lever
    after 24 steps on one author (0.730 vs 0.756; benchmarks/results/train_levers_round2.json), but at the
    120-step default on another, rank 48 ended worse than 16 (ratio 0.774 vs 0.752, simon_willison_til), and a
    replica keeps every loaded adapter in memory: 16 stays."""
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    learning_rate: float = 2e-3
    """SFT learning rate (AdamW, linear decay). On a real author after 24 steps, held-out perplexity ratio 0.735
    at 2e-3, 0.756 at 1e-3, 0.87 at 2e-4 (benchmarks/results/train_levers*.json); rank 64 did as well as 2e-3
    but costs 4x the memory per adapter a replica holds."""
    dpo_learning_rate: float = 5e-6
    epochs: float = 1.0
    """SFT passes over the training examples (capped by ``max_steps``). One: past about one epoch the adapter
    fits the training posts, not the author. On simon_willison_til held-out perplexity stops falling at one
    epoch and rises after it (benchmarks/results/train_levers_simon_trajectory.json); end to end, 1 epoch
    (69 steps, 20.9 min) reached a ratio of 0.725 where 1.76 (the 120-step cap) reached 0.727 and 0.752 in
    27-33 min and 3 epochs 0.864 (benchmarks/results/twin_quality_simon_1epoch.json)."""
    max_length: int = 384
    """Tokens per SFT example (prompt + answer); long documents are cut into passages that fit."""
    batch_size: int = 2
    """SFT examples per worker per forward pass (with 2 accumulation steps: 4 per optimizer step). At 4 x 384
    tokens a worker peaked at 4.6 GB on a long-form author (benchmarks/twin_quality.py); 2 x 2 halves the
    activations."""
    gradient_accumulation_steps: int = 2
    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass: ~30% more compute, but it keeps a worker under 4 GB (at
    4 x 256 tokens: 3.4 GB peak with it, 5.3 GB without)."""
    max_steps: int = 120
    """Cap on SFT optimizer steps (-1: none); the run is ``epochs`` epochs or this, whichever is fewer.
    120 steps of 4 examples are ~150k tokens: ~25 min at 100 tokens/s (a 2-core laptop); an epoch of a
    100-post author of short posts needs fewer (simon_willison_til: 69), of long ones more (chris_wellons)."""
    max_minutes: float | None = 60.0
    """Wall-clock budget of a training job (datasets, SFT, DPO, scoring), from when it starts (a resumed job
    gets it anew): SFT ends at its first optimizer step past 75% of it, DPO past 95%, keeping what they learned
    (the adapter's metrics say ``sft_stopped_by_budget``). The step caps still apply; None: no budget. On a CPU
    where 120 SFT steps take 25 minutes it changes nothing; where they take 64 (an AVX2-only 2-core EPYC),
    the run still ends in about an hour."""
    dpo_epochs: float = 1.0
    dpo_max_steps: int = 16
    """Cap on DPO optimizer steps (-1: none)."""
    dpo_batch_size: int = 1
    """DPO pairs per worker per forward pass (each pair is two sequences, chosen and rejected, plus the
    reference forward): one, with gradient accumulation, bounds memory (4 pairs x 512 tokens per forward
    peaked at 8.3 GB per worker; 1 x 384 at 2.5 GB)."""
    dpo_gradient_accumulation_steps: int = 4
    dpo_max_length: int = 384
    """Tokens per DPO sequence (prompt + chosen or rejected answer)."""
    dpo_beta: float = 0.1
    seed: int = 42
    min_words: int = 2_000
    """An author needs at least this much text before training makes sense."""
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    max_validation_examples: int = 32
    """Cap on the validation examples scored for ``eval_loss`` after SFT."""
    scrub_pii: bool = True
    dpo: bool = True
    """Run DPO after SFT (chosen = the author's text, rejected = the base model's answer)."""
    dpo_max_pairs: int = 64
    """Most DPO pairs; each needs one generation by the base model, so this bounds the time it takes."""
    dpo_max_new_tokens: int = 128
    """Length cap of each rejected (base model) answer."""
    code_mix: bool = False
    """Also learn the author's code (`twin train --with-code`): each change they committed becomes examples
    (commit message -> the lines they added; docstring -> function), with its own held-out perplexity."""
    busy_wait_s: float = 30.0
    """How long a training request on a local Ray waits for CPUs held by work that is ending (a run that
    just finished returns them a moment later) before it is refused as busy."""
    save_steps: int = 25
    """Checkpoint every this many optimizer steps; a restarted worker resumes from the last one."""
    logging_steps: int = 1
    max_failures: int = 2
    """Worker failures Ray Train recovers from (restart from the last checkpoint) before giving up."""
    storage_path: str | None = None
    """Where Ray Train keeps checkpoints; default ``<data_dir>/ray_results``. Shared storage
    (``s3://...``, NFS) on a multi-node cluster."""
    keep_runs: int = 6
    """Ray Train run folders kept under a local ``storage_path`` (newest first; a running or resumable job's
    folders are always kept); older ones are deleted after each training job."""
    resume_on_start: bool = True
    """`twin serve` resumes, from their last checkpoint, the training jobs whose process died."""
    max_eval_examples: int = 64
    """Cap on held-out test examples scored for perplexity (base and adapter)."""


class VllmSettings(BaseModel):
    """The GPU-cluster engine (``TWIN_SERVE__LLM_ENGINE=vllm``): Ray Serve LLM with vLLM and multi-LoRA.

    Set with ``TWIN_SERVE__VLLM__LORA_PATH=s3://bucket/twin-adapters`` and the like. Untested on GPUs so far.
    """

    lora_path: str | None = None
    """Cloud folder (``s3://``, ``gs://``, ``abfss://``, ``azure://``: Ray Serve LLM loads LoRA adapters only
    from these) the GPU replicas load adapters from; an adapter ``<adapters>/author-3/v2`` is read from
    ``<lora_path>/author-3/v2``, and the client copies it there before its first request. Unset: the base
    model only."""
    model_source: str | None = None
    """What the GPU workers load: a Hugging Face id or a path on them; default ``base_model`` (the built-in
    model as converted on the machine that deploys, so only on a one-node cluster)."""
    accelerator_type: str | None = None
    """Ray accelerator type for the replicas, e.g. ``A10G``, ``L4``, ``H100``; unset: any GPU."""
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=1, ge=1)
    max_model_len: int | None = None
    """Prompt plus completion tokens per request; unset: the model's own limit."""
    max_lora_rank: int | None = None
    """Largest LoRA rank the engine accepts; unset: ``train.lora_r`` rounded up to a rank vLLM supports."""
    engine_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Further vLLM engine arguments (JSON in the environment), e.g. ``{"tensor_parallel_size": 2}``; they win
    over the ones derived from these settings."""

    @field_validator("lora_path")
    @classmethod
    def _cloud_lora_path(cls, value: str | None) -> str | None:
        if value and not value.startswith(("s3://", "gs://", "abfss://", "azure://")):
            raise ValueError(f"lora_path must be a cloud folder (s3://, gs://, abfss:// or azure://), not {value!r}: "
                             "Ray Serve LLM loads LoRA adapters only from cloud storage")
        return value


class ServeSettings(BaseModel):
    """The HTTP service and the model deployment."""

    host: str = "127.0.0.1"
    port: int = 8765
    api_token: str | None = None
    ray_address: str | None = None
    """Attach to a cluster (``host:port``, ``ray://...`` or ``auto``); empty uses ``RAY_ADDRESS`` when set
    (as `ray job submit` sets it), else starts a local Ray."""
    ray_start_timeout_s: float = 180.0
    """Time allowed to start a local Ray, all attempts together (Ray itself gives up on one attempt after
    ~30 s on a loaded machine; a failed attempt's processes are ended before the next)."""
    ray_start_attempts: int = 3
    max_batch_size: int = 8
    batch_wait_timeout_s: float = 0.05
    max_new_tokens: int = 256
    max_links: int = 5
    max_prompt_chars: int = 4_000
    max_body_bytes: int = 20_000_000
    """Largest request body, export uploads aside (JSON and forms are read whole)."""
    max_upload_bytes: int = 10_000_000_000
    """Largest export upload: streamed to disk in blocks, never held in memory (an X archive with its media
    is gigabytes); past it the upload is refused (413) and the partial file removed."""
    max_concurrent_runs: int = 4
    request_timeout_s: float = 300.0
    model_dtype: Literal["float32", "bfloat16"] = "float32"
    """Weights and activations of the served model."""
    model_num_cpus: float = 1.0
    """Ray CPUs reserved for the model replica; Ray gives it that many torch threads."""
    torch_threads: int | None = None
    """Override the replica's torch thread count (default: Ray's OMP_NUM_THREADS)."""
    ray_num_cpus: int | None = None
    """CPUs of the embedded local Ray (default: all)."""
    max_adapters_per_replica: int = 8
    """LoRA adapters kept loaded per replica (least recently used evicted)."""
    model_engine: Literal["continuous", "static"] = "continuous"
    """``continuous``: requests join the running batch at the next decoding step; ``static``: one ``generate``
    per batch of requests (works for any Hugging Face model)."""
    prompt_cache_mb: int = Field(default=128, ge=0)
    """Memory for prefix caching (continuous engine): the keys and values of recent prompts, so a prompt that
    starts like one of them (the same author's system prompt and example posts, a revision's same prompt) runs
    only its new tokens. 0: off."""
    model_quantize: Literal["none", "int4"] = "int4"
    """``int4``: the decoder's linear layers on packed int4 CPU kernels when its weights are exactly int4 (the
    built-in SmolLM2 comes from a Q4 GGUF; any other model is served as it is): 3x the tokens/s of ``none``
    on an AVX-512 CPU, never slower on AVX2, perplexity on real posts +0.2% (benchmarks/results/serve.json
    and serve_model.json). Its bf16 activations make greedy text depend a little on which rows share a
    batch; ``none`` (plain fp32) is exact and batch-independent."""
    llm_engine: Literal["twin", "vllm"] = "twin"
    """``twin``: the CPU deployment (`serving.model.TwinModel`: transformers + PEFT, continuous batching);
    ``vllm``: Ray Serve LLM with the vLLM engine and multi-LoRA on GPU workers (see ``vllm``), behind the same
    client and API. Untested on GPUs so far."""
    vllm: VllmSettings = Field(default_factory=VllmSettings)
    model_start_timeout_s: float = 600.0
    model_probe_timeout_s: float = 5.0
    """How long the client waits for the deployment to answer a probe before reporting it unavailable."""
    public_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Extra names the service answers to (the `Host` a browser sends; comma-separated), e.g. ``twin.example.com``
    or ``192.168.1.20``; a name without a port is also allowed with `port`. The bound address and the loopback
    names (localhost, 127.0.0.1, [::1]) with `port` are always allowed; any other Host gets 400."""
    secure_cookies: bool | None = None
    """The page's cookies get ``Secure``: None sets it when the request came over https (behind a TLS proxy,
    uvicorn's proxy headers), True always (serve only behind TLS), False never."""

    _split_public_hosts = field_validator("public_hosts", mode="before")(_split_csv)


class AgentSettings(BaseModel):
    """The LangGraph agent."""

    max_revisions: int = 1
    """Rounds of fresh candidates for a slot none of whose candidates passed the critique."""
    candidates: int = 4
    """Drafts written at once per slot; the critique keeps the best (best-of-N)."""
    retrieve_k: int = 6
    chat_model_url: str | None = None
    """An OpenAI-compatible endpoint for a tool-calling planner; unset uses the deterministic planner."""
    chat_model_name: str | None = None
    chat_model_api_key: str | None = None
    style_threshold: float = 0.5
    grounding_threshold: float = 0.5


class ScheduleSettings(BaseModel):
    """Scheduled drafts (APScheduler, job store in the project database)."""

    enabled: bool = True
    """Run the scheduler inside `twin serve`."""
    misfire_grace_s: int | None = 86_400
    """A run missed while the service was down still runs once on start if it is at most this late;
    0 skips missed runs, empty (None) always runs them."""
    timezone: str | None = None
    """Timezone of cron expressions (e.g. ``Europe/Berlin``); default the machine's."""
    default_cron: str = "0 9 * * MON"
    lookback_days: int = 7
    """On a schedule's first run, documents collected this many days back count as new."""
    poll_s: float = 30.0
    """How often the scheduler re-reads the job store, so schedules added or removed by another service
    process on the same database are seen."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TWIN_", env_file=".env", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Path("~/.llm-twin")
    """Where the database, vectors, models, datasets and adapters live."""
    database_url: str | None = None
    """SQLAlchemy URL; default ``sqlite:///<data_dir>/twin.db``. A Postgres URL works unchanged."""
    qdrant_path: Path | None = None
    """Embedded Qdrant folder; default ``<data_dir>/qdrant``."""
    qdrant_url: str | None = None
    """A Qdrant server; when set it wins over the embedded path."""
    qdrant_api_key: str | None = None
    models_path: Path | None = None
    """Converted base model and exported embedder; default ``<data_dir>/models``. Shareable between data dirs."""
    collection: str = "twin_chunks"
    base_model: str = DEFAULT_BASE_MODEL
    """HF model id, local path, or the built-in ``smollm2-135m-instruct``."""
    embed_model: str = DEFAULT_EMBED_MODEL
    """``all-minilm-l6-v2`` (built in, exported to ONNX) or a folder holding ``model.onnx``."""
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Private hosts the URL guard lets through (comma-separated), e.g. ``127.0.0.1,localhost``."""
    service_url: str | None = None
    """Where the CLI finds a running service; default ``http://<serve.host>:<serve.port>``."""
    opik_url: str | None = None
    opik_api_key: str | None = None
    opik_project: str = "llm-twin"

    crawl: CrawlSettings = Field(default_factory=CrawlSettings)
    chunk: ChunkSettings = Field(default_factory=ChunkSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)

    _split_hosts = field_validator("allowed_hosts", mode="before")(_split_csv)

    @field_validator("data_dir", "models_path", "qdrant_path", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'twin.db'}"

    @property
    def resolved_qdrant_path(self) -> Path:
        return (self.qdrant_path or self.data_dir / "qdrant").expanduser()

    @property
    def resolved_service_url(self) -> str:
        return self.service_url or f"http://{self.serve.host}:{self.serve.port}"

    @property
    def models_dir(self) -> Path:
        return (self.models_path or self.data_dir / "models").expanduser()

    @property
    def datasets_dir(self) -> Path:
        return self.data_dir / "datasets"

    @property
    def adapters_dir(self) -> Path:
        return self.data_dir / "adapters"

    @property
    def opik_enabled(self) -> bool:
        return bool(self.opik_url or self.opik_api_key)

    def ensure_dirs(self) -> None:
        for path in (self.data_dir, self.models_dir, self.datasets_dir, self.adapters_dir):
            path.mkdir(parents=True, exist_ok=True)


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()

"""The training job: validate, snapshot the datasets, SFT then DPO on Ray Train, score, save, register.

    twin train brandur --max-steps 20                    # CLI (one worker with every core by default)
    train(store, "brandur", settings, TrainConfig.from_settings(settings, max_steps=20))   # Python

Every check that can fail fast runs before anything is written (author, amount of text, base model, no other
training job for the author, a reachable Ray with room for the workers). Ray is started locally unless
``settings.serve.ray_address`` or ``RAY_ADDRESS`` names a cluster (see :mod:`twin.ray_cluster`); a Ray
already initialised in this process (the service's) is reused and left running.
"""

from __future__ import annotations

import logging
import os
import queue as std_queue
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from training.config import LORA_TARGET_MODULES, TrainConfig
from training.dataset import (
    DatasetBundle,
    build_datasets,
    check_enough_text,
    generate_rejected,
    usable_documents,
)
from training.train_loop import ADAPTER_DIR, CONFIG_FILE, Stage, WorkerJob, train_loop
from twin.domain import (
    Adapter,
    Author,
    Conflict,
    Job,
    JobStatus,
    Kind,
    NotFound,
    TwinError,
    Unavailable,
    author_folder,
)
from twin.models import check_base_model

if TYPE_CHECKING:
    from ray.train import Result

    from twin.settings import Settings
    from twin.store import DocumentStore

log = logging.getLogger(__name__)
TRAIN_JOB_KIND = "train"
WORKER_ENV = {
    "RAY_TRAIN_ENABLE_PRINT_PATCH": "0",  # else every worker line is printed twice plus pages of bytecode
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_OFFLINE": "1",
}


class TrainProgress(BaseModel):
    """One progress event for the CLI bar, the service's job status and logs."""

    stage: Literal["dataset", "sft", "dpo", "perplexity", "register", "done"]
    event: str = "log"
    step: int = 0
    total: int = 0
    loss: float | None = None
    message: str = ""


ProgressFn = Callable[[TrainProgress], None]


def _no_progress(_: TrainProgress) -> None:
    return None


# validation --------------------------------------------------------------------------------------------
def check_not_busy(store: DocumentStore, author: Author) -> None:
    """Refuse a second training job for the same author; a job whose process died is marked failed."""
    for job in store.list_jobs(author, kind=TRAIN_JOB_KIND, status=JobStatus.running):
        if job.owner is None or job.owner.is_gone():
            store.update_job(job.id, status=JobStatus.failed, error="interrupted (its process exited)")
            continue
        raise Conflict(
            f"{author.name} already has a training job running ({job.id}, started {job.created_at:%Y-%m-%d %H:%M}). "
            "Wait for it to finish."
        )


def connect_ray(settings: Settings, config: TrainConfig) -> bool:
    """Attach to (or start) Ray and check it has room for the workers; True if this call started it."""
    import ray

    from twin.ray_cluster import connect, ray_address

    os.environ.update({k: os.environ.get(k, v) for k, v in WORKER_ENV.items()})
    # Worker output (Trainer reports, weight-loading bars, library warnings) goes to Ray's log files under
    # the session's logs/ folder; progress reaches the terminal through TrainProgress events.
    started = connect(
        settings, runtime_env={"env_vars": WORKER_ENV}, log_to_driver=False, configure_logging=False
    )
    on_cluster = ray_address(settings) is not None  # a cluster may autoscale to fit the workers
    resource = _resource(config)
    per_worker = 1 if config.use_gpu else (config.cpus_per_worker or 1)
    needed = config.workers * per_worker
    total = ray.cluster_resources().get(resource, 0)
    free = ray.available_resources().get(resource, 0)
    if not on_cluster and total < needed:
        if started:
            ray.shutdown()
        raise Unavailable(
            f"Training with {config.workers} workers needs {needed} {resource}s; this Ray has {total:g}. "
            "Use --workers (or TWIN_TRAIN__CPUS_PER_WORKER) with a smaller number or attach to a cluster "
            "(TWIN_SERVE__RAY_ADDRESS)."
        )
    if not on_cluster and free < needed:
        # a run that just ended (this process's or another's) hands its workers' CPUs back a moment later
        free = wait_for_free(resource, needed, settings.train.busy_wait_s)
    if not on_cluster and free < needed:
        if started:
            ray.shutdown()
        raise Unavailable(
            f"Ray is busy: {free:g} of {total:g} {resource}s free, training needs {needed}. "
            "Wait for the running work to finish or use fewer --workers."
        )
    return started


def _resource(config: TrainConfig) -> str:
    """The Ray resource a training worker is counted in."""
    return "GPU" if config.use_gpu else "CPU"


def wait_for_free(resource: str, amount: float, timeout_s: float) -> float:
    """Poll Ray until ``amount`` of ``resource`` is free or ``timeout_s`` passes; the free amount.

    Ray returns an ended Train run's or task's resources asynchronously (its actors and worker processes
    exit after the result is back), so a check made right after one sees them still held.
    """
    import ray

    deadline = time.monotonic() + timeout_s
    free = ray.available_resources().get(resource, 0)
    while free < amount and time.monotonic() < deadline:
        time.sleep(0.2)
        free = ray.available_resources().get(resource, 0)
    return free


def _settled(resource: str, before: float) -> None:
    """On a local Ray, wait (briefly) until what a finished stage held is free again, so that the next stage
    and the next job see every CPU. A cluster's other work may take them meanwhile: nothing to wait for."""
    import ray

    if len([node for node in ray.nodes() if node.get("Alive")]) == 1:
        wait_for_free(resource, before, timeout_s=30.0)


def resolve_worker_cpus(settings: Settings, config: TrainConfig) -> TrainConfig:
    """Fill in ``cpus_per_worker``: the free CPUs split evenly across the workers, at most one node's worth.

    One worker with every core beats several one-CPU workers on one machine: torch runs the matmuls on all
    threads, and nothing is all-reduced (Ray would otherwise give each worker one CPU, hence one thread).
    """
    if config.cpus_per_worker is not None:
        return config
    import ray

    free = int(ray.available_resources().get("CPU", 0))
    largest_node = max(
        (int(node.get("Resources", {}).get("CPU", 0)) for node in ray.nodes() if node.get("Alive")), default=1
    )
    per_worker = max(1, min(free // max(config.workers, 1), largest_node))
    return config.model_copy(update={"cpus_per_worker": per_worker})


# stages ------------------------------------------------------------------------------------------------
def run_stage(
    stage: Stage,
    settings: Settings,
    config: TrainConfig,
    run_name: str,
    base_model_path: str,
    train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]],
    progress: ProgressFn,
    init_adapter: Any = None,
    deadline: float | None = None,
) -> Result:
    """One TorchTrainer run; its progress events are relayed to ``progress`` while it runs. Past `deadline`
    (``time.time()``) its workers take no further optimizer step."""
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.util.queue import Empty, Queue

    events: Queue = Queue(actor_options={"num_cpus": 0})
    job = WorkerJob(
        stage=stage,
        base_model_path=base_model_path,
        config=config,
        train_rows=train_rows,
        eval_rows=eval_rows,
        init_adapter=init_adapter,
        progress=events,
        deadline=deadline,
    )
    storage = _storage(settings)
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={"job": job},
        scaling_config=ScalingConfig(
            num_workers=config.workers,
            use_gpu=config.use_gpu,
            resources_per_worker={"GPU": 1} if config.use_gpu else {"CPU": config.cpus_per_worker or 1},
        ),
        torch_config=TorchConfig(backend="nccl" if config.use_gpu else "gloo"),
        run_config=RunConfig(
            # One name per job and stage: a job resumed after its process died gets the same run, and Ray
            # Train restores it from its last checkpoint (the run's checkpoint-manager snapshot).
            name=f"{run_name}-{stage}",
            storage_path=storage,
            failure_config=FailureConfig(max_failures=config.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
        ),
    )
    outcome: std_queue.Queue[Any] = std_queue.Queue()
    resource = _resource(config)
    free_before = ray.available_resources().get(resource, 0)

    def fit() -> None:
        try:
            outcome.put(trainer.fit())
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            outcome.put(exc)

    thread = threading.Thread(target=fit, name=f"ray-train-{stage}", daemon=True)
    thread.start()
    while True:
        try:
            event = events.get(timeout=0.5)
            progress(
                TrainProgress(
                    stage=stage,
                    event=str(event.get("event", "log")),
                    step=int(event.get("step", 0)),
                    total=int(event.get("total", 0)),
                    loss=event.get("loss"),
                )
            )
        except Empty:
            if not thread.is_alive():
                break
    thread.join()
    result = outcome.get()
    try:
        events.shutdown()
    except Exception:  # noqa: BLE001
        pass
    _settled(resource, free_before)
    if isinstance(result, BaseException):
        raise TwinError(f"{stage.upper()} training failed: {result}") from result
    if result.error is not None:
        raise TwinError(f"{stage.upper()} training failed: {result.error}") from result.error
    if result.checkpoint is None:
        raise TwinError(f"{stage.upper()} training reported no adapter.")
    return result


def _with_threads(fn: Callable[..., Any], threads: int) -> Callable[..., Any]:
    def run(*args: Any) -> Any:
        import torch

        torch.set_num_threads(threads)  # a reused Ray worker may have sized torch's pool for another task
        return fn(*args)

    run.__name__ = run.__qualname__ = getattr(fn, "__name__", "task")
    return run


def _on_ray(fn: Callable[..., Any], config: TrainConfig) -> Callable[..., Any]:
    """Run ``fn`` as a Ray task on one training worker's resources (a GPU on a cluster; ``cpus_per_worker``
    CPUs, and as many torch threads, on a CPU box: no more, since oversubscribed OpenMP is 12x slower)."""
    import ray

    cpus = 1 if config.use_gpu else (config.cpus_per_worker or 1)
    # max_calls=1: a fresh process per call, so its memory is returned to the machine (and measured alone)
    remote = ray.remote(num_cpus=cpus, num_gpus=1 if config.use_gpu else 0, max_retries=0, max_calls=1)(
        _with_threads(fn, cpus)
    )

    def call(*args: Any) -> Any:
        resource = _resource(config)
        free_before = ray.available_resources().get(resource, 0)
        try:
            return ray.get(remote.remote(*args))
        finally:
            _settled(resource, free_before)

    return call


def _score_checkpoint(
    base_model_path: str, checkpoint: Any, examples: list[Any], max_length: int
) -> tuple[Any, float]:
    """(perplexity report, peak RSS in MB of the process that scored it)."""
    import resource

    from training.perplexity import base_and_adapter_perplexity

    with checkpoint.as_directory() as path:
        adapter = str(Path(path) / ADAPTER_DIR)
        report = base_and_adapter_perplexity(base_model_path, adapter, examples, max_length)
    return report, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def code_perplexity_metrics(report: Any) -> dict[str, Any]:
    """The adapter metrics of the held-out code's perplexity report (none without the code mix)."""
    if report is None:
        return {}
    return {
        "perplexity_code_base": report.base,
        "perplexity_code_adapter": report.adapter,
        "perplexity_code_ratio": report.ratio,
        "perplexity_code_examples": report.examples,
        "perplexity_code_tokens": report.tokens,
    }


def _rows(examples: list[Any]) -> list[dict[str, Any]]:
    keep = {"prompt", "completion", "chosen", "rejected"}
    return [{k: v for k, v in ex.model_dump(mode="json").items() if k in keep} for ex in examples]


def fit_voice_scorer(store: DocumentStore, author: Author, bundle: DatasetBundle, adapter_dir: Path) -> dict[str, Any]:
    """Fit this version's voice scorer (the author's training answers against the base model's DPO answers
    and other authors' writing), save it in the adapter folder, and return its held-out numbers."""
    from evals.voice import FILE_NAME, MIN_BASE_TEXTS, VoiceScorer, other_authors_texts
    from twin.domain import PRIVATE_KINDS

    # the base model's own answers only: an inbox preference's rejected side is the twin's draft, not the base
    base = [pair.rejected[-1]["content"] for pair in bundle.dpo if pair.feedback_id is None]
    if len(base) < MIN_BASE_TEXTS:
        return {"voice_scorer_auc": None,
                "voice_scorer_note": f"needs at least {MIN_BASE_TEXTS} base-model answers (DPO pairs)"}
    own = [ex.answer for ex in bundle.splits["train"]  # the public voice, in prose
           if ex.kind not in PRIVATE_KINDS and ex.kind is not Kind.code]
    try:
        scorer = VoiceScorer.fit(own, base, other_authors_texts(store, author))
        scorer.save(adapter_dir / FILE_NAME)
    except ValueError as exc:
        return {"voice_scorer_auc": None, "voice_scorer_note": str(exc)}
    return {"voice_scorer_auc": scorer.info.held_out_auc, "voice_scorer_auc_others": scorer.info.held_out_auc_others}


def _prefixed(prefix: str, metrics: dict[str, Any]) -> dict[str, float]:
    return {
        f"{prefix}_{key.replace('/', '_')}": float(value)
        for key, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def next_adapter_dir(store: DocumentStore, settings: Settings, author: Author) -> tuple[int, Path]:
    versions = [a.version for a in store.list_adapters(author)]
    version = max(versions, default=0) + 1
    return version, settings.adapters_dir / author_folder(author) / f"v{version}"


# the job -----------------------------------------------------------------------------------------------
def check_training_request(store: DocumentStore, author_name: str, settings: Settings, config: TrainConfig) -> str:
    """Everything that can refuse a training run before it starts; returns the base model's path."""
    if config.workers < 1:
        raise TwinError("--workers must be at least 1.")
    author = store.get_author(author_name)
    check_enough_text(author.name, usable_documents(store.list_documents(author)), settings.train.min_words)
    base_model_path = check_base_model(settings)
    if config.feedback_only:
        feedback_base_adapter(store, author, settings, config)
    check_not_busy(store, author)
    return base_model_path


def feedback_base_adapter(
    store: DocumentStore, author: Author, settings: Settings, config: TrainConfig, version: int | None = None
) -> Adapter:
    """The adapter a feedback-only run starts from (the active one; ``version`` when a job resumes), or why
    the run cannot start."""
    if not config.dpo:
        raise TwinError("--feedback-only is a DPO run; it cannot be combined with --no-dpo.")
    if not sum(store.count_feedback_pairs(author).values()):
        raise TwinError(f"{author.name} has no inbox preferences to learn from: edit drafts, or approve one and "
                        "discard another of the same run, first (--feedback-only trains on those alone).")
    adapters = store.list_adapters(author)
    if version is None:
        base = next((a for a in adapters if a.active), None)
        if base is None:
            raise TwinError(f"{author.name} has no active adapter for --feedback-only to build on; train one "
                            f"first (`twin train {author.name}`) or activate one (`twin adapters activate`).")
    else:
        base = next((a for a in adapters if a.version == version), None)
        if base is None:
            raise NotFound(f"{author.name}'s adapter v{version}, which this job started from, is gone.")
    if base.base_model != settings.base_model:
        raise TwinError(f"{author.name}'s adapter v{base.version} was trained on {base.base_model}, not the "
                        f"configured base model {settings.base_model}; train a full run instead of --feedback-only.")
    if not (Path(base.path) / "adapter_config.json").is_file():
        raise NotFound(f"{author.name}'s adapter v{base.version} has no PEFT adapter at {base.path}.")
    return base


def base_adapter_checkpoint(settings: Settings, run_name: str, adapter: Adapter) -> Any:
    """A registered adapter as the checkpoint DPO starts from (its folder as ``adapter/``, what
    ``train_loop.load_model`` reads), written beside the job's stage runs: workers on other nodes read it
    from the same storage, and a resumed job finds it again."""
    from ray.train import Checkpoint

    storage = _storage(settings)
    if "://" in storage:
        import pyarrow.fs

        filesystem, root = pyarrow.fs.FileSystem.from_uri(storage)
        folder = f"{root.rstrip('/')}/{run_name}-base"
        pyarrow.fs.copy_files(adapter.path, f"{folder}/{ADAPTER_DIR}", destination_filesystem=filesystem)
        return Checkpoint(folder, filesystem=filesystem)
    folder_path = Path(storage) / f"{run_name}-base"
    shutil.rmtree(folder_path, ignore_errors=True)
    shutil.copytree(adapter.path, folder_path / ADAPTER_DIR)
    return Checkpoint.from_directory(str(folder_path))


def carried_voice_scorer(base: Adapter, adapter_dir: Path) -> dict[str, Any]:
    """A feedback-only version keeps its base version's voice scorer: the author's writing and the base
    model's answers it was fitted on are unchanged, and the inbox pairs hold no base-model answers."""
    from evals.voice import FILE_NAME

    source = Path(base.path) / FILE_NAME
    if not source.is_file():
        return {"voice_scorer_auc": None, "voice_scorer_note": f"v{base.version} has no voice scorer"}
    shutil.copy(source, adapter_dir / FILE_NAME)
    return {
        **{k: v for k, v in base.metrics.items() if k.startswith("voice_scorer_")},
        "voice_scorer_from_version": base.version,
    }


def create_training_job(
    store: DocumentStore, author: Author, config: TrainConfig | None = None, activate: bool = True
) -> Job:
    """The job row, owned by this process, with what a resume needs (the config, whether to activate)."""
    plan = ResumeState(config=config, activate=activate) if config is not None else ResumeState()
    return store.create_job(
        author, TRAIN_JOB_KIND, job_id=uuid.uuid4().hex, progress={**plan.model_dump(mode="json"), "stage": "dataset"}
    )


# resuming ----------------------------------------------------------------------------------------------
INTERRUPTED_ERRORS = ("interrupted", "cancelled (service stopping)", "The service stopped while this job ran.")
"""How a job that did not fail on its own ends (its process stopped or died): such jobs resume."""


class StageDone(BaseModel):
    """A finished stage's result, kept so that a resumed job does not train it again."""

    checkpoint: str
    storage: str
    metrics: dict[str, Any]


class ResumeState(BaseModel):
    """What a training job records in its progress for a later resume (``job.progress``)."""

    config: TrainConfig | None = None
    activate: bool = True
    done: dict[str, StageDone] = {}
    base_adapter_version: int | None = None
    """A feedback-only job's starting adapter, fixed when it first runs (a resume starts from the same)."""


def is_resumable(job: Job) -> bool:
    """A training job that stopped because its process did (not on an error of its own), with a plan."""
    if job.kind != TRAIN_JOB_KIND or job.progress.get("config") is None:
        return False
    if job.status == JobStatus.running:
        return job.owner is None or job.owner.is_gone()
    return job.status == JobStatus.failed and (job.error or "").startswith(INTERRUPTED_ERRORS)


def claim_for_resume(store: DocumentStore, job_id: str, *, force: bool = False) -> tuple[Job, ResumeState]:
    """Take over a training job whose process is gone; ``force`` also takes a job that failed on an
    error of its own (to retry it from its last checkpoint)."""
    job = store.get_job(job_id)
    if job.kind != TRAIN_JOB_KIND:
        raise TwinError(f"Job {job_id} is a {job.kind} job; only training jobs resume.")
    if job.status == JobStatus.succeeded:
        raise Conflict(f"Job {job_id} already finished.")
    if job.status == JobStatus.running and job.owner is not None and not job.owner.is_gone():
        raise Conflict(f"Job {job_id} is still running (process {job.owner.pid} on {job.owner.host}).")
    state = ResumeState.model_validate({k: v for k, v in job.progress.items() if k in ResumeState.model_fields})
    if state.config is None:
        raise TwinError(f"Job {job_id} was recorded by a version that could not resume it; start a new one.")
    if not (force or is_resumable(job)):
        raise Conflict(f"Job {job_id} failed ({job.error}); pass --force (API: force=true) to retry it "
                       "from its last checkpoint.")
    return store.claim_job(job), state


def _stage_result(done: StageDone) -> Any:
    """A finished stage's checkpoint and metrics, like the ``Result`` its run returned."""
    from types import SimpleNamespace

    from ray.train import Checkpoint

    filesystem = None
    if "://" in done.storage:
        import pyarrow.fs

        filesystem, _ = pyarrow.fs.FileSystem.from_uri(done.storage)
    return SimpleNamespace(checkpoint=Checkpoint(done.checkpoint, filesystem=filesystem), metrics=done.metrics)


def _json_safe(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, str | int | float | bool) or v is None}


def _storage(settings: Settings) -> str:
    return settings.train.storage_path or str(settings.data_dir / "ray_results")


def prune_runs(store: DocumentStore, settings: Settings) -> list[Path]:
    """Delete the oldest Ray Train run folders past ``train.keep_runs``, never a running or resumable
    job's; returns the folders deleted (none for remote storage)."""
    storage = _storage(settings)
    if "://" in storage or not Path(storage).is_dir():
        return []
    keep_ids = {job.id[:8] for job in store.list_jobs(kind=TRAIN_JOB_KIND)
                if job.status == JobStatus.running or is_resumable(job)}
    folders = sorted((p for p in Path(storage).iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime,
                     reverse=True)
    deleted = []
    for folder in folders[max(settings.train.keep_runs, 0):]:
        parts = folder.name.rsplit("-", 2)
        if len(parts) == 3 and parts[1] in keep_ids:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        deleted.append(folder)
    return deleted


def resume(
    store: DocumentStore, job_id: str, settings: Settings, progress: ProgressFn = _no_progress,
    *, force: bool = False,
) -> Adapter:
    """Resume a training job whose process died, in this process: finished stages are kept, the stage it
    was in continues from its last Ray Train checkpoint (same run folder, same step count)."""
    job, state = claim_for_resume(store, job_id, force=force)
    author = store.get_author_by_id(job.author_id)
    assert state.config is not None
    return train(store, author.name, settings, state.config, progress, activate=state.activate, job_id=job.id)


def train(
    store: DocumentStore,
    author_name: str,
    settings: Settings,
    config: TrainConfig | None = None,
    progress: ProgressFn = _no_progress,
    activate: bool = True,
    job_id: str | None = None,
) -> Adapter:
    """Train SFT (+DPO) LoRA adapter for the author, register it (active by default) and return it.

    `job_id` names a job already created with `create_training_job` (the service returns its id before
    the work starts); without it the job is created here.
    """
    config = config or TrainConfig.from_settings(settings)
    if job_id is None:
        base_model_path = check_training_request(store, author_name, settings, config)
        started_ray = connect_ray(settings, config)  # a refusal here leaves no job row behind
        try:
            job = create_training_job(store, store.get_author(author_name), config, activate)
        except BaseException:
            if started_ray:
                import ray

                ray.shutdown()
            raise
        job_id = job.id
    else:
        job = store.get_job(job_id)
        try:
            base_model_path = check_base_model(settings)
            started_ray = connect_ray(settings, config)
        except BaseException as exc:
            store.update_job(job_id, status=JobStatus.failed, error=str(exc) or type(exc).__name__)
            raise
    author = store.get_author(author_name)
    try:
        config = resolve_worker_cpus(settings, config)
    except BaseException as exc:
        store.update_job(job_id, status=JobStatus.failed, error=str(exc) or type(exc).__name__)
        if started_ray:
            import ray

            ray.shutdown()
        raise

    started = time.time()  # the time budget's start (a resumed job gets it anew)
    state = ResumeState.model_validate({k: v for k, v in job.progress.items() if k in ResumeState.model_fields})
    state.config = state.config or config
    state.activate = activate

    def report(event: TrainProgress) -> None:
        store.update_job(job_id, progress={**state.model_dump(mode="json"), **event.model_dump()})
        progress(event)

    def stage(name: Stage, *args: Any, **kwargs: Any) -> Any:
        """Run a stage, or take its result from an earlier attempt of this job."""
        if name in state.done:
            report(TrainProgress(stage=name, event="end", message="finished before the resume"))
            return _stage_result(state.done[name])
        result = run_stage(name, settings, config, run_name, base_model_path, *args,
                           deadline=config.stage_deadline(name, started), **kwargs)
        state.done[name] = StageDone(checkpoint=result.checkpoint.path, storage=_storage(settings),
                                     metrics=_json_safe(result.metrics))
        message = "stage finished"
        if result.metrics.get("stopped_by_budget"):
            message = (f"time budget: stopped at step {int(result.metrics['step'])} of "
                       f"{int(result.metrics['planned_steps'])}")
        report(TrainProgress(stage=name, event="end", message=message))
        return result

    adapter_dir: Path | None = None
    try:
        settings.ensure_dirs()
        run_name = f"{author.name}-{job_id[:8]}"
        base_adapter: Adapter | None = None
        if config.feedback_only:
            base_adapter = feedback_base_adapter(store, author, settings, config, state.base_adapter_version)
            state.base_adapter_version = base_adapter.version
        report(TrainProgress(stage="dataset", event="begin", message="building datasets"))
        train_settings = settings.model_copy(
            update={"train": settings.train.model_copy(update={
                "max_length": config.max_length, "seed": config.seed,
                # feedback-only: no base-model answers, so the DPO pairs are the inbox's alone
                "dpo_max_pairs": 0 if config.feedback_only else config.dpo_max_pairs,
            })}
        )
        bundle: DatasetBundle = build_datasets(
            store, author.name, train_settings, settings.datasets_dir / author_folder(author) / job_id[:8],
            with_dpo=config.dpo, with_code=config.code_mix,
            model_path=base_model_path, rejected_fn=_on_ray(generate_rejected, config),
        )
        report(TrainProgress(stage="dataset", event="end", message=f"{bundle.stats['train'].examples} examples"))

        feedback_pairs = sum(1 for pair in bundle.dpo if pair.feedback_id is not None)
        sft = None
        dpo = None
        dpo_error: str | None = None
        if base_adapter is not None:
            if not bundle.dpo:
                raise TwinError(f"{author.name}'s inbox preferences gave no DPO pairs.")
            # DPO alone, on top of the active adapter; a failure fails the job (there is no new SFT to keep)
            dpo = stage("dpo", _rows(bundle.dpo), [], report,
                        init_adapter=base_adapter_checkpoint(settings, run_name, base_adapter))
            final_result = dpo
        else:
            validation = bundle.splits["validation"][: settings.train.max_validation_examples]
            sft = stage("sft", _rows(bundle.splits["train"]), _rows(validation), report)
            final_result = sft
            if config.dpo and not bundle.dpo:
                dpo_error = "no DPO pairs (the base model gave no rejected answers)"
            elif config.dpo:
                try:
                    dpo = stage("dpo", _rows(bundle.dpo), [], report, init_adapter=sft.checkpoint)
                    final_result = dpo
                except Exception as exc:  # noqa: BLE001 - any DPO failure: keep (and register) the SFT adapter
                    dpo_error = str(exc) or type(exc).__name__
                    log.warning("DPO failed; registering the SFT adapter alone: %s", dpo_error)
                    message = f"DPO failed, keeping SFT: {dpo_error}"[:300]
                    report(TrainProgress(stage="dpo", event="failed", message=message))

        version, adapter_dir = next_adapter_dir(store, settings, author)
        staging = adapter_dir.with_name(adapter_dir.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        with final_result.checkpoint.as_directory() as path:
            shutil.copytree(Path(path) / ADAPTER_DIR, staging)
            shutil.copy(Path(path) / CONFIG_FILE, staging / CONFIG_FILE)
        shutil.copy(bundle.files["stats"], staging / "dataset_stats.json")
        staging.rename(adapter_dir)

        report(TrainProgress(stage="perplexity", event="begin", message="scoring held-out documents"))
        test_examples = bundle.splits["test"][: settings.train.max_eval_examples]
        ppl, ppl_peak_rss_mb = _on_ray(_score_checkpoint, config)(
            base_model_path, final_result.checkpoint, test_examples, config.max_length
        )

        code_ppl = None
        if bundle.code_test:  # the author's own code, held out, scored apart from the prose
            report(TrainProgress(stage="perplexity", event="progress", message="scoring held-out code"))
            code_ppl, _ = _on_ray(_score_checkpoint, config)(
                base_model_path, final_result.checkpoint, bundle.code_test[: settings.train.max_eval_examples],
                config.max_length,
            )

        if base_adapter is not None:
            voice = carried_voice_scorer(base_adapter, adapter_dir)
        else:
            voice = fit_voice_scorer(store, author, bundle, adapter_dir)

        first = sft if sft is not None else final_result
        metrics: dict[str, Any] = {
            **voice,
            **(_prefixed("sft", sft.metrics) if sft else {}),
            **(_prefixed("dpo", dpo.metrics) if dpo else {}),
            "perplexity_base": ppl.base,
            "perplexity_adapter": ppl.adapter,
            "perplexity_ratio": ppl.ratio,
            "perplexity_examples": ppl.examples,
            "perplexity_tokens": ppl.tokens,
            **code_perplexity_metrics(code_ppl),
            # the first stage's loss: SFT's, or DPO's in a feedback-only run (which has no validation loss)
            "train_loss": float(first.metrics.get("train_loss", float("nan"))),
            "validation_loss": float(first.metrics.get("eval_loss", float("nan"))),
            "dataset": {name: stats.model_dump() for name, stats in bundle.stats.items()},
            "dpo_pairs": len(bundle.dpo),
            "feedback_pairs": feedback_pairs,
            "dpo_only": base_adapter is not None,
            **({"base_adapter_version": base_adapter.version} if base_adapter is not None else {}),
            "peak_rss_mb": {
                **({"sft": float(sft.metrics.get("peak_rss_mb", float("nan")))} if sft else {}),
                **({"dpo": float(dpo.metrics.get("peak_rss_mb", float("nan")))} if dpo else {}),
                "perplexity": ppl_peak_rss_mb,
            },
            "job_id": job_id,
        }
        params = {
            **config.model_dump(exclude={"fail_worker_once", "fail_dpo"}),
            "target_modules": LORA_TARGET_MODULES,
            "dpo_ran": dpo is not None,
        }
        if dpo_error is not None:
            params["dpo_error"] = dpo_error
            metrics["dpo_error"] = dpo_error
        report(TrainProgress(stage="register", event="begin", message=f"v{version}"))
        adapter = store.register_adapter(
            author, str(adapter_dir), settings.base_model, bundle.dataset_hash, params, metrics, activate=activate
        )
        store.update_job(job_id, status=JobStatus.succeeded, result=adapter.model_dump(mode="json"))
        progress(TrainProgress(stage="done", event="end", message=f"{author.name} v{adapter.version}"))
        return adapter
    except BaseException as exc:
        if adapter_dir is not None:
            shutil.rmtree(adapter_dir, ignore_errors=True)
            shutil.rmtree(adapter_dir.with_name(adapter_dir.name + ".partial"), ignore_errors=True)
        error = "interrupted (stopped by the user)" if isinstance(exc, KeyboardInterrupt) else str(exc)
        store.update_job(job_id, status=JobStatus.failed, error=error or type(exc).__name__)
        raise
    finally:
        if started_ray:
            import ray

            ray.shutdown()
        try:
            prune_runs(store, settings)
        except OSError:
            log.warning("could not prune old Ray Train run folders", exc_info=True)

"""Training jobs resume after their process died: which jobs resume, who may take one over, and the pruning
of old Ray Train run folders; and, with the real small model, a `twin train` killed mid-run that
`twin train --resume JOB` finishes from its last checkpoint (`-m slow`)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import psutil
import pytest
from conftest import CORPORA_DIR
from test_ray_attach import running_head

from training.config import TrainConfig
from training.job import (
    TRAIN_JOB_KIND,
    WORKER_ENV,
    claim_for_resume,
    create_training_job,
    is_resumable,
    prune_runs,
)
from twin.domain import Conflict, JobOwner, JobStatus, TwinError
from twin.settings import Settings
from twin.store import DocumentStore

TWIN_BIN = Path(sys.executable).with_name("twin")


def _dead_owner() -> JobOwner:
    proc = subprocess.Popen(["true"])
    owner = JobOwner(host=socket.gethostname(), pid=proc.pid, started=psutil.Process(proc.pid).create_time())
    proc.wait()
    return owner


def _orphan(store: DocumentStore, settings: Settings, author: str = "ada") -> str:
    record = store.add_author(author)
    job = create_training_job(store, record, TrainConfig.from_settings(settings, max_steps=2), activate=True)
    store.claim_job(job, owner=_dead_owner())  # as if its process had died
    return job.id


def test_a_job_whose_process_died_is_taken_over_with_its_plan(store: DocumentStore, settings: Settings) -> None:
    job_id = _orphan(store, settings)
    assert is_resumable(store.get_job(job_id))
    job, state = claim_for_resume(store, job_id)
    assert job.owner == JobOwner.current() and state.config is not None and state.config.max_steps == 2
    with pytest.raises(Conflict, match="still running"):
        claim_for_resume(store, job_id)  # this process is alive: nobody else takes it


def test_finished_failed_and_foreign_jobs_are_not_resumed(store: DocumentStore, settings: Settings) -> None:
    ada = store.add_author("ada")
    done = store.create_job(ada, TRAIN_JOB_KIND, progress={"config": {}})
    store.update_job(done.id, status=JobStatus.succeeded)
    with pytest.raises(Conflict, match="already finished"):
        claim_for_resume(store, done.id)

    broken = create_training_job(store, ada, TrainConfig.from_settings(settings))
    store.update_job(broken.id, status=JobStatus.failed, error="SFT training failed: out of memory")
    assert not is_resumable(store.get_job(broken.id))
    with pytest.raises(Conflict, match="force"):
        claim_for_resume(store, broken.id)
    assert claim_for_resume(store, broken.id, force=True)[0].status == JobStatus.running

    ingest = store.create_job(ada, "ingest", owner=_dead_owner())
    with pytest.raises(TwinError, match="only training jobs"):
        claim_for_resume(store, ingest.id)
    legacy = store.create_job(ada, TRAIN_JOB_KIND, owner=_dead_owner())  # recorded without a plan
    with pytest.raises(TwinError, match="could not resume"):
        claim_for_resume(store, legacy.id)


def test_old_run_folders_are_pruned_but_never_a_running_or_resumable_jobs(
    store: DocumentStore, settings: Settings
) -> None:
    settings.train.keep_runs = 2
    runs = settings.data_dir / "ray_results"
    orphan = _orphan(store, settings)
    ada = store.get_author("ada")
    finished = store.create_job(ada, TRAIN_JOB_KIND, progress={})
    store.update_job(finished.id, status=JobStatus.succeeded)
    names = [f"ada-{orphan[:8]}-sft", f"ada-{finished.id[:8]}-sft", f"ada-{finished.id[:8]}-dpo",
             "ada-0000aaaa-sft", "ada-0000bbbb-sft"]
    now = time.time()
    for age, name in enumerate(names):  # the first listed is the oldest
        (runs / name).mkdir(parents=True)
        os.utime(runs / name, (now - 1000 + age, now - 1000 + age))
    deleted = {p.name for p in prune_runs(store, settings)}
    assert deleted == {f"ada-{finished.id[:8]}-sft", f"ada-{finished.id[:8]}-dpo"}
    assert sorted(p.name for p in runs.iterdir()) == sorted(["ada-0000aaaa-sft", "ada-0000bbbb-sft",
                                                             f"ada-{orphan[:8]}-sft"])


# a real run, killed and resumed -----------------------------------------------------------------------
def _latest_checkpoint_step(run_dir: Path) -> int:
    """The step of the last checkpoint Ray Train registered for a run (its checkpoint-manager snapshot)."""
    snapshot = run_dir / "checkpoint_manager_snapshot.json"
    try:
        latest = json.loads(snapshot.read_text()).get("latest_checkpoint_result") or {}
    except (OSError, ValueError):
        return 0
    return int(latest.get("metrics", {}).get("step", 0))


def _train_workers(dashboard: str, state: str | None = None) -> list:
    from ray.util.state import list_actors

    filters = [("class_name", "=", "RayTrainWorker"), *([("state", "=", state)] if state else [])]
    return list_actors(address=dashboard, filters=filters, limit=100)


def _twin(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """`twin ARGS` in a session of its own (so the whole process group can be killed), output to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen([str(TWIN_BIN), *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


@pytest.mark.slow
def test_a_killed_twin_train_resumes_from_its_last_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`twin train` is SIGKILLed (its whole process group) after Ray Train registered a checkpoint at step 2 or
    later; `twin train --resume JOB` finishes the same job from that checkpoint, not from step 0. Both run
    against a Ray head of this test's own, so killing the first driver leaves no stray Ray behind."""
    from test_cluster_train import AUTHOR, add_documents, tiny_settings, tiny_train_env

    if not CORPORA_DIR.exists():
        pytest.skip(f"corpora not found at {CORPORA_DIR}")
    settings = tiny_settings(tmp_path / "data")
    with closing(DocumentStore.from_url(settings.resolved_database_url)) as store:
        add_documents(store, AUTHOR, 12)
    max_steps = 6
    log = tmp_path / "twin-train.log"
    with running_head(num_cpus=2) as head:
        env = {
            **os.environ, **WORKER_ENV, **head.env, **tiny_train_env(settings),
            "RAY_ADDRESS": head.address,
        }
        first = _twin(["train", AUTHOR, "--max-steps", str(max_steps), "--no-dpo"], env, log)
        job_id: str | None = None
        killed_at = 0
        try:
            deadline = time.monotonic() + 600
            with closing(DocumentStore.from_url(settings.resolved_database_url)) as store:
                while time.monotonic() < deadline and first.poll() is None:
                    jobs = store.list_jobs(kind=TRAIN_JOB_KIND)
                    if jobs:
                        job_id = jobs[0].id
                        run_dir = settings.data_dir / "ray_results" / f"{AUTHOR}-{job_id[:8]}-sft"
                        killed_at = _latest_checkpoint_step(run_dir)
                        if killed_at >= 2:
                            break
                    time.sleep(0.5)
            assert first.poll() is None, f"twin train ended (rc {first.returncode}) before a checkpoint at " \
                                         f"step 2:\n{log.read_text()[-3000:]}"
            assert job_id is not None and killed_at >= 2, log.read_text()[-3000:]
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)  # the driver and everything it started, at once
            first.wait(timeout=60)
        assert killed_at < max_steps

        # the head ends the dead driver's Ray Train workers: nothing of the killed run holds the CPUs
        deadline = time.monotonic() + 120
        while _train_workers(head.dashboard, "ALIVE") and time.monotonic() < deadline:
            time.sleep(1)
        assert not _train_workers(head.dashboard, "ALIVE")

        with closing(DocumentStore.from_url(settings.resolved_database_url)) as store:
            orphan = store.get_job(job_id)
            assert orphan.status == JobStatus.running and orphan.owner is not None and orphan.owner.is_gone()
            assert is_resumable(orphan)

        started = time.monotonic()
        second = _twin(["train", AUTHOR, "--resume", job_id], env, log)
        try:
            assert second.wait(timeout=900) == 0, log.read_text()[-5000:]
        finally:
            if second.poll() is None:
                os.killpg(second.pid, signal.SIGKILL)
                second.wait(timeout=60)
        print(f"killed at checkpoint step {killed_at}; resumed run took {time.monotonic() - started:.0f} s")
        # both runs trained on the head: one worker each, on its node
        assert [w.node_id for w in _train_workers(head.dashboard)] == [head.node_id] * 2

    with closing(DocumentStore.from_url(settings.resolved_database_url)) as store:
        job = store.get_job(job_id)
        assert job.status == JobStatus.succeeded, job.error
        assert [j.id for j in store.list_jobs(kind=TRAIN_JOB_KIND)] == [job_id]  # the same job, no new one
        (adapter,) = store.list_adapters(store.get_author(AUTHOR))
    assert job.result["version"] == adapter.version == 1 and adapter.active
    assert Path(adapter.path, "adapter_model.safetensors").exists()
    m = adapter.metrics
    assert m["job_id"] == job_id
    # the SFT stage went on from the checkpoint it had when killed (or a later one), to the planned end
    assert killed_at <= m["sft_start_step"] < max_steps
    assert m["sft_step"] == max_steps
    assert m["sft_steps_this_attempt"] == max_steps - m["sft_start_step"]

"""Training jobs resume after their process died: which jobs resume, who may take one over, and the pruning
of old Ray Train run folders. (The resumed run itself continuing from its checkpoint is the Ray Train
restore that test_training_job's killed worker exercises within one fit.)"""

from __future__ import annotations

import os
import socket
import subprocess
import time

import psutil
import pytest

from training.config import TrainConfig
from training.job import TRAIN_JOB_KIND, claim_for_resume, create_training_job, is_resumable, prune_runs
from twin.domain import Conflict, JobOwner, JobStatus, TwinError
from twin.settings import Settings
from twin.store import DocumentStore


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

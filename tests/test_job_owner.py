"""Jobs have an owner (host, pid, process start time): a starting service fails, or resumes, only the jobs
whose owner is gone, never those of a `twin train` still running beside it or of another service."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest
import sqlalchemy as sa
from conftest import postgres_schema

from serving.service import TwinService
from training.config import TrainConfig
from training.job import TRAIN_JOB_KIND, create_training_job, is_resumable
from twin.domain import JobOwner, JobStatus
from twin.settings import Settings
from twin.store import DocumentStore


@pytest.fixture
def live_process() -> Iterator[psutil.Process]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield psutil.Process(proc.pid)
    proc.kill()
    proc.wait()


def _dead_owner() -> JobOwner:
    proc = subprocess.Popen(["true"])
    owner = JobOwner(host=socket.gethostname(), pid=proc.pid, started=psutil.Process(proc.pid).create_time())
    proc.wait()
    return owner


def _owner_of(process: psutil.Process) -> JobOwner:
    return JobOwner(host=socket.gethostname(), pid=process.pid, started=process.create_time())


def test_a_job_is_owned_by_the_process_that_creates_it(store: DocumentStore) -> None:
    job = store.create_job(store.add_author("ada"), "ingest")
    assert job.owner == JobOwner.current() and not job.owner.is_gone()
    assert store.get_job(job.id).owner == job.owner


def test_an_owner_is_gone_when_its_process_exited_or_its_pid_was_reused(live_process: psutil.Process) -> None:
    assert not _owner_of(live_process).is_gone()
    assert _dead_owner().is_gone()
    reused = _owner_of(live_process).model_copy(update={"started": live_process.create_time() - 3600})
    assert reused.is_gone()  # same pid, another process
    elsewhere = _dead_owner().model_copy(update={"host": "another-host.invalid"})
    assert not elsewhere.is_gone()  # not ours to judge


def test_a_starting_service_fails_only_jobs_whose_owner_is_gone(
    settings: Settings, live_process: psutil.Process
) -> None:
    settings.ensure_dirs()
    store = DocumentStore.from_url(settings.resolved_database_url)
    ada = store.add_author("ada")
    cli_train = store.create_job(ada, TRAIN_JOB_KIND, owner=_owner_of(live_process))  # `twin train` beside us
    other_host = store.create_job(ada, "ingest", owner=_dead_owner().model_copy(update={"host": "b.invalid"}))
    dead_ingest = store.create_job(ada, "ingest", owner=_dead_owner())
    dead_old_train = store.create_job(ada, TRAIN_JOB_KIND, owner=_dead_owner())  # no plan: cannot resume
    store.close()

    service = TwinService(settings)
    service.store = DocumentStore.from_url(settings.resolved_database_url)
    try:
        assert service._recover_jobs() == []
        after = {job.id: job for job in service.db.list_jobs()}
    finally:
        service.db.close()
    assert after[cli_train.id].status == JobStatus.running
    assert after[other_host.id].status == JobStatus.running
    assert after[dead_ingest.id].status == JobStatus.failed and "interrupted" in (after[dead_ingest.id].error or "")
    assert after[dead_old_train.id].status == JobStatus.failed


def test_a_training_job_whose_process_died_is_picked_for_resuming(settings: Settings) -> None:
    settings.ensure_dirs()
    store = DocumentStore.from_url(settings.resolved_database_url)
    ada = store.add_author("ada")
    job = create_training_job(store, ada, TrainConfig.from_settings(settings, max_steps=3), activate=False)
    with store.engine.begin() as conn:  # its process dies
        dead = _dead_owner()
        conn.execute(sa.text("update jobs set owner_pid = :pid, owner_started = :started"),
                     {"pid": dead.pid, "started": dead.started})
    job = store.get_job(job.id)
    assert is_resumable(job) and job.progress["config"]["max_steps"] == 3 and job.progress["activate"] is False
    store.close()

    service = TwinService(settings)
    service.store = DocumentStore.from_url(settings.resolved_database_url)
    try:
        assert [j.id for j in service._recover_jobs()] == [job.id]
        settings.train.resume_on_start = False
        assert service._recover_jobs() == []
        assert service.db.get_job(job.id).status == JobStatus.failed
    finally:
        service.db.close()


def test_claiming_a_job_makes_this_process_its_owner_once(store: DocumentStore) -> None:
    from twin.domain import Conflict

    job = store.create_job(store.add_author("ada"), TRAIN_JOB_KIND, owner=_dead_owner())
    claimed = store.claim_job(job)
    assert claimed.owner == JobOwner.current() and claimed.status == JobStatus.running
    with pytest.raises(Conflict):
        store.claim_job(job)  # a second claimant read the old owner: it loses


def _old_database(url: str) -> None:
    """A database as the previous release left it: jobs without owner columns, with a running job."""
    store = DocumentStore.from_url(url)
    ada = store.add_author("ada")
    store.create_job(ada, "ingest", job_id="old-job", progress={"done": 3})
    with store.engine.begin() as conn:
        for column in ("owner_host", "owner_pid", "owner_started"):
            conn.execute(sa.text(f"alter table jobs drop column {column}"))
        conn.execute(sa.text("delete from alembic_version"))  # recognised by its tables, then upgraded
    store.close()


def _check_upgrade(url: str) -> None:
    _old_database(url)
    store = DocumentStore.from_url(url)  # migrates
    try:
        job = store.get_job("old-job")
        assert job.progress == {"done": 3} and job.status == JobStatus.running and job.owner is None
        with store.engine.connect() as conn:
            columns = set(conn.execute(sa.text("select * from jobs where 1 = 0")).keys())
        assert {"owner_host", "owner_pid", "owner_started"} <= columns
        assert store.create_job(store.get_author("ada"), "ingest").owner == JobOwner.current()
    finally:
        store.close()


def test_an_old_sqlite_database_gains_the_owner_columns_and_keeps_its_jobs(settings: Settings) -> None:
    settings.ensure_dirs()
    _check_upgrade(settings.resolved_database_url)


@pytest.mark.postgres
def test_an_old_postgres_database_gains_the_owner_columns_and_keeps_its_jobs() -> None:
    with postgres_schema() as (url, _):
        _check_upgrade(url)

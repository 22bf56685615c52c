"""`twin train` with RAY_ADDRESS set trains on that cluster: a real `ray start --head` on this machine plays
the cluster, the product's training job runs a tiny real SFT on it, and the head's own state API says where
the Ray Train workers and the scoring task ran. No Ray of this process's own is started.

    .venv/bin/pytest -m slow tests/test_cluster_train.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from conftest import CORPORA_DIR, MODELS_CACHE, load_corpus
from test_ray_attach import RAY_BIN, _free_port, running_head

from training.config import TrainConfig
from training.job import WORKER_ENV, TrainProgress, train
from twin.domain import JobStatus, Kind, Platform, RawDocument
from twin.ray_cluster import local_ray_processes
from twin.settings import Settings
from twin.store import DocumentStore

pytestmark = pytest.mark.slow
AUTHOR = "brandur"


def add_documents(store: DocumentStore, author: str, count: int) -> None:
    """The author's writing: `count` posts of a real corpus."""
    record = store.add_author(author)
    for i, item in enumerate(load_corpus("brandur_leach_atoms", count)):
        raw = RawDocument(url=f"https://brandur.org/atoms/{i}", platform=Platform.x, kind=Kind.post,
                          title=item["title"], text=item["text"])
        store.upsert_document(record, None, raw, item["text"])


def tiny_settings(data_dir: Path) -> Settings:
    settings = Settings(data_dir=data_dir, models_path=MODELS_CACHE, _env_file=None)
    settings.train.min_words = 300
    settings.train.max_eval_examples = 2
    settings.train.max_validation_examples = 2
    settings.ensure_dirs()
    return settings


def tiny_train_env(settings: Settings) -> dict[str, str]:
    """The same tiny run for a `twin train` process: settings through the environment."""
    return {
        "TWIN_DATA_DIR": str(settings.data_dir),
        "TWIN_MODELS_PATH": str(MODELS_CACHE),
        "TWIN_SERVE__PORT": str(_free_port()),  # no service answers there: the CLI trains itself
        "TWIN_TRAIN__MIN_WORDS": str(settings.train.min_words),
        "TWIN_TRAIN__MAX_EVAL_EXAMPLES": str(settings.train.max_eval_examples),
        "TWIN_TRAIN__MAX_VALIDATION_EXAMPLES": str(settings.train.max_validation_examples),
        "TWIN_TRAIN__SAVE_STEPS": "1",
        "TWIN_TRAIN__MAX_LENGTH": "64",
        "TWIN_TRAIN__BATCH_SIZE": "1",
        "TWIN_TRAIN__GRADIENT_ACCUMULATION_STEPS": "1",
        "TWIN_TRAIN__CPUS_PER_WORKER": "1",
        "TWIN_TRAIN__MAX_FAILURES": "0",
        "OMP_NUM_THREADS": "1",
    }


def _our_sessions() -> list[Path]:
    """Session folders a `ray.init` of this process would have created (Ray names them after its pid)."""
    return [p for p in Path("/tmp/ray").glob(f"session_*_{os.getpid()}") if p.is_dir()]


def test_twin_train_with_ray_address_trains_on_that_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not CORPORA_DIR.exists():
        pytest.skip(f"corpora not found at {CORPORA_DIR}")
    import ray
    from ray.util.state import list_actors, list_tasks

    for key, value in WORKER_ENV.items():
        monkeypatch.setenv(key, value)
    settings = tiny_settings(tmp_path / "data")
    store = DocumentStore.from_url(settings.resolved_database_url)
    add_documents(store, AUTHOR, 10)
    config = TrainConfig.from_settings(
        settings, workers=1, cpus_per_worker=1, max_steps=2, save_steps=1, batch_size=1,
        gradient_accumulation_steps=1, max_length=64, dpo=False, max_failures=0,
    )
    sessions_before = set(_our_sessions())
    with running_head(num_cpus=2) as head:
        monkeypatch.setenv("RAY_ADDRESS", head.address)  # what `ray job submit` sets for its driver
        events: list[TrainProgress] = []
        try:
            adapter = train(store, AUTHOR, settings, config, progress=events.append)
            # attached, not started: the driver is connected to the head, and no Ray of ours runs beside it
            assert ray.is_initialized()
            assert ray.get_runtime_context().get_node_id() == head.node_id
            assert not local_ray_processes()
        finally:
            ray.shutdown()
            store.close()
        assert set(_our_sessions()) == sessions_before

        assert adapter.version == 1 and Path(adapter.path, "adapter_model.safetensors").exists()
        assert adapter.metrics["sft_step"] == 2 and adapter.metrics["sft_world_size"] == 1
        job = DocumentStore.from_url(settings.resolved_database_url).get_job(adapter.metrics["job_id"])
        assert job.status == JobStatus.succeeded

        # the head's state API: the Ray Train worker and the perplexity task ran on the head's node
        workers = list_actors(address=head.dashboard, filters=[("class_name", "=", "RayTrainWorker")], limit=100,
                              detail=True)
        assert len(workers) == 1, workers
        assert {w.node_id for w in workers} == {head.node_id}
        assert {w.state for w in workers} == {"DEAD"}  # the run finished and released it
        scoring = list_tasks(address=head.dashboard, filters=[("name", "=", "_score_checkpoint")], limit=100)
        assert [t.node_id for t in scoring] == [head.node_id]
        assert [t.state for t in scoring] == ["FINISHED"]
        assert [e.step for e in events if e.stage == "sft" and e.event == "checkpoint"] == [1, 2]


def test_the_readme_cluster_recipe_ray_job_submit_twin_train(tmp_path: Path) -> None:
    """`ray job submit --address http://<head>:8265 -- twin train AUTHOR` as the README says, with a job runtime
    env that sets one of the variables the training job also gives its workers (Ray refuses a driver whose
    `ray.init` runtime env repeats a key of the job's, unless the driver leaves it to the job)."""
    if not CORPORA_DIR.exists():
        pytest.skip(f"corpora not found at {CORPORA_DIR}")
    from ray.util.state import list_actors

    settings = tiny_settings(tmp_path / "data")
    with closing(DocumentStore.from_url(settings.resolved_database_url)) as store:
        add_documents(store, AUTHOR, 10)
    twin = str(Path(sys.executable).with_name("twin"))
    runtime_env = {"env_vars": {**tiny_train_env(settings), "HF_HUB_OFFLINE": "1"}}
    assert "HF_HUB_OFFLINE" in WORKER_ENV
    with running_head(num_cpus=2) as head:
        submitted = subprocess.run(
            [str(RAY_BIN), "job", "submit", "--address", head.dashboard, "--runtime-env-json",
             json.dumps(runtime_env), "--", twin, "train", AUTHOR, "--max-steps", "2", "--no-dpo"],
            env={**os.environ, **head.env}, capture_output=True, text=True, timeout=900, check=False,
        )
        assert submitted.returncode == 0, submitted.stdout[-5000:] + submitted.stderr[-3000:]
        assert f"Registered {AUTHOR} v1 (active)" in submitted.stdout
        workers = list_actors(address=head.dashboard, filters=[("class_name", "=", "RayTrainWorker")], limit=100)
        assert [w.node_id for w in workers] == [head.node_id]

    with closing(DocumentStore.from_url(settings.resolved_database_url)) as store:
        (adapter,) = store.list_adapters(store.get_author(AUTHOR))
        job = store.get_job(adapter.metrics["job_id"])
    assert job.status == JobStatus.succeeded and adapter.metrics["sft_step"] == 2

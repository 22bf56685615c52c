"""`twin train` refusals (clear errors that change nothing) and `twin adapters` list/activate/rollback."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator

import psutil
import pytest
import typer
from typer.testing import CliRunner

from cli.train import register
from twin.domain import Conflict, JobOwner, JobStatus, Kind, NotFound, Platform, RawDocument, author_folder
from twin.settings import Settings, get_settings
from twin.store import DocumentStore


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    monkeypatch.setenv("TWIN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TWIN_MODELS_PATH", str(settings.models_dir))
    get_settings.cache_clear()
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """test root"""

    register(app)
    yield app
    get_settings.cache_clear()


def add_adapters(store: DocumentStore, name: str, count: int) -> None:
    author = store.add_author(name)
    for version in range(1, count + 1):
        store.register_adapter(
            author, f"/adapters/{name}/v{version}", "smollm2-135m-instruct", f"{version:064d}",
            {"lora_r": 16}, {"perplexity_base": 30.0, "perplexity_adapter": 20.0 + version, "perplexity_ratio": 0.7},
        )


def test_adapters_list_activate_and_rollback(cli: typer.Typer, store: DocumentStore) -> None:
    add_adapters(store, "juno", 3)
    runner = CliRunner()

    listed = runner.invoke(cli, ["adapters", "juno", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["version"], r["active"]) for r in rows] == [(1, False), (2, False), (3, True)]
    assert rows[2]["metrics"]["perplexity_adapter"] == 23.0
    table = runner.invoke(cli, ["adapters", "list", "juno"])
    assert table.exit_code == 0 and "v3" in table.output and "23.00" in table.output

    assert runner.invoke(cli, ["adapters", "activate", "juno", "v1"]).exit_code == 0
    assert store.active_adapter(store.get_author("juno")).version == 1
    first = runner.invoke(cli, ["adapters", "rollback", "juno"])
    assert first.exit_code != 0 and "nothing to roll back" in first.output
    assert runner.invoke(cli, ["adapters", "activate", "juno", "3"]).exit_code == 0
    rolled = runner.invoke(cli, ["adapters", "rollback", "juno"])
    assert rolled.exit_code == 0 and "v3 to v2" in rolled.output
    assert store.active_adapter(store.get_author("juno")).version == 2

    missing = runner.invoke(cli, ["adapters", "activate", "juno", "9"])
    assert missing.exit_code == 2 and "no adapter version 9" in missing.output
    assert runner.invoke(cli, ["adapters", "nobody"]).exit_code == 2


def test_train_refuses_bad_input_and_changes_nothing(
    cli: typer.Typer, store: DocumentStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    unknown = runner.invoke(cli, ["train", "nobody"])
    assert unknown.exit_code == 2 and "No author named 'nobody'" in unknown.output

    author = store.add_author("quiet")
    text = "Only a handful of words."
    store.upsert_document(author, None, RawDocument(url="https://q.example/1", platform=Platform.x,
                                                    kind=Kind.post, text=text), text)
    little = runner.invoke(cli, ["train", "quiet"])
    assert little.exit_code == 1
    assert "5 words" in little.output and "at least 2,000 words" in little.output

    monkeypatch.setenv("TWIN_TRAIN__MIN_WORDS", "1")
    for i in range(3):
        store.upsert_document(author, None, RawDocument(url=f"https://q.example/x{i}", platform=Platform.x,
                                                        kind=Kind.post, text=text), text)
    monkeypatch.setenv("TWIN_BASE_MODEL", "no-such-org/no-such-model")
    get_settings.cache_clear()
    model = runner.invoke(cli, ["train", "quiet"])
    assert model.exit_code == 1 and "Unknown base model 'no-such-org/no-such-model'" in model.output

    assert store.list_jobs(author) == [] and store.list_adapters(author) == []
    assert not (settings.datasets_dir / author_folder(author)).exists()
    assert not (settings.adapters_dir / author_folder(author)).exists()


def test_a_second_training_job_for_the_same_author_is_refused(store: DocumentStore) -> None:
    from training.job import TRAIN_JOB_KIND, check_not_busy

    author = store.add_author("busy")
    store.create_job(author, TRAIN_JOB_KIND)  # owned by this (live) process
    with pytest.raises(Conflict, match="already has a training job running"):
        check_not_busy(store, author)
    store.update_job(store.list_jobs(author)[0].id, status=JobStatus.succeeded)

    # a job whose process is gone (killed CLI) no longer blocks: it is marked failed
    finished = subprocess.Popen(["true"])
    owner = JobOwner(host=socket.gethostname(), pid=finished.pid, started=psutil.Process(finished.pid).create_time())
    finished.wait()
    running = store.create_job(author, TRAIN_JOB_KIND, owner=owner)
    check_not_busy(store, author)
    job = store.get_job(running.id)
    assert job.status == JobStatus.failed and "interrupted" in (job.error or "")


def test_train_flags_reach_the_config_and_an_sft_only_adapter_says_why(
    cli: typer.Typer, store: DocumentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import training.job
    from training.config import TrainConfig
    from training.job import TrainProgress

    seen: dict[str, TrainConfig] = {}

    def fake_train(store_: DocumentStore, author: str, settings_: Settings, config: TrainConfig,
                   progress: object, activate: bool = True) -> object:
        seen["config"] = config
        for event in (TrainProgress(stage="sft", event="begin", total=2), TrainProgress(stage="sft", step=1, total=2),
                      TrainProgress(stage="dpo", event="failed", message="DPO failed, keeping SFT: boom")):
            progress(event)  # type: ignore[operator]
        try:
            record = store.get_author(author)
        except NotFound:
            record = store.add_author(author)
        return store.register_adapter(
            record, "/adapters/x/v1", "smollm2-135m-instruct", "0" * 64, {"dpo_ran": False, "dpo_error": "boom"},
            {"perplexity_base": 30.0, "perplexity_adapter": 20.0, "perplexity_ratio": 0.66, "train_loss": 2.0,
             "validation_loss": 2.1},
        )

    monkeypatch.setattr(training.job, "train", fake_train)
    store.add_author("x")  # the command reads the author's inbox preferences before it trains
    result = CliRunner().invoke(cli, ["train", "x", "--max-steps", "7", "--dpo-max-steps", "3", "--dpo-pairs", "12",
                                      "--epochs", "1.5", "--max-minutes", "30"])
    assert result.exit_code == 0, result.output
    config = seen["config"]
    assert (config.max_steps, config.dpo_max_steps, config.dpo_max_pairs, config.epochs) == (7, 3, 12, 1.5)
    assert config.max_minutes == 30
    assert config.workers == 1  # one worker with every core is the default on one machine
    assert "keeping SFT: boom" in result.output and "SFT only" in result.output

    defaults = CliRunner().invoke(cli, ["train", "x", "--no-dpo"])
    assert defaults.exit_code == 0, defaults.output
    assert seen["config"].max_steps == Settings().train.max_steps and seen["config"].dpo is False
    assert seen["config"].max_minutes == Settings().train.max_minutes == 60

    seen.clear()
    negative = CliRunner().invoke(cli, ["train", "x", "--max-minutes", "-5"])
    assert negative.exit_code == 2 and "--max-minutes" in negative.output and not seen


def test_the_time_budget_splits_between_the_stages() -> None:
    """SFT may take steps until 75% of `max_minutes`, DPO until 95%; the rest saves and scores the adapter
    (tests/test_training_budget.py stops a real run by it)."""
    from training.config import TrainConfig

    config = TrainConfig(max_minutes=60)
    assert config.stage_deadline("sft", 1000.0) == 1000.0 + 45 * 60
    assert config.stage_deadline("dpo", 1000.0) == 1000.0 + 57 * 60
    assert TrainConfig(max_minutes=0).stage_deadline("sft", 0.0) is None
    assert TrainConfig(max_minutes=None).stage_deadline("dpo", 0.0) is None

"""`twin train AUTHOR --feedback-only`: a short DPO-only run on the inbox's preference pairs, on top of the
author's active adapter, registered as a new version.

The refusals (no inbox preferences, no active adapter, an adapter folder gone, --no-dpo) are checked before
anything runs, here and through the HTTP API. The slow test trains for real (SmolLM2, one Ray Train worker):
a one-step SFT adapter (v1), inbox pairs stored through ``update_draft`` (an edit, an approve and a discard),
then a two-step feedback-only run (v2) that starts from v1's weights and runs no SFT.

    .venv/bin/pytest tests/test_feedback_training.py               # the refusals
    .venv/bin/pytest -m slow tests/test_feedback_training.py       # the training run
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import corpus_rows
from litestar.testing import TestClient

from serving.app import create_app
from training.config import TrainConfig
from training.job import WORKER_ENV, TrainProgress, check_training_request, train
from twin.domain import Author, DraftStatus, JobStatus, Kind, NotFound, Platform, RawDocument, TwinError
from twin.settings import Settings
from twin.store import DocumentStore

AUTHOR = "brandur"
ORIGINAL = "Postgres queues are fine. Here is a long post the twin wrote about them, with many caveats."
EDITED = "Postgres is a fine queue until it isn't. Measure the bloat, then decide."
APPROVED = "Use the database you already run as your queue; it is one less thing to page you."
DISCARDED = "In conclusion, queues are an important consideration for many modern applications."


def _author_with_writing(store: DocumentStore, documents: int = 16) -> Author:
    author = store.add_author(AUTHOR)
    for i, item in enumerate(corpus_rows("brandur_leach_atoms", documents)):
        raw = RawDocument(url=f"https://brandur.org/atoms/{i}", platform=Platform.x, kind=Kind.post,
                          title=item["title"], text=item["text"])
        store.upsert_document(author, None, raw, item["text"])
    return author


def _inbox_preferences(store: DocumentStore, author: Author) -> None:
    """One edit and one approved-over-discarded choice, the way the inbox records them."""
    run = store.create_run(author, {"prompt": "postgres as a queue", "platform": "linkedin"})
    edited, approved, discarded = (store.add_draft(author, Platform.linkedin, text, run_id=run.id).id
                                   for text in (ORIGINAL, APPROVED, DISCARDED))
    store.update_draft(edited, text=EDITED)
    store.update_draft(approved, status=DraftStatus.approved)
    store.update_draft(discarded, status=DraftStatus.discarded)
    assert store.count_feedback_pairs(author) == {"edit": 1, "choice": 1}


def _small(settings: Settings) -> Settings:
    settings.train.min_words = 500
    settings.train.max_eval_examples = 2
    settings.ensure_dirs()
    return settings


def test_feedback_only_is_refused_until_there_are_preferences_and_an_adapter(
    settings: Settings, store: DocumentStore
) -> None:
    _small(settings)
    author = _author_with_writing(store)
    config = TrainConfig.from_settings(settings, feedback_only=True)

    with pytest.raises(TwinError, match="no inbox preferences"):
        check_training_request(store, AUTHOR, settings, config)
    _inbox_preferences(store, author)
    with pytest.raises(TwinError, match="no active adapter"):
        check_training_request(store, AUTHOR, settings, config)
    with pytest.raises(TwinError, match="cannot be combined with --no-dpo"):
        check_training_request(store, AUTHOR, settings, config.model_copy(update={"dpo": False}))

    # an adapter whose folder has gone (deleted by hand) is not something to build on
    store.register_adapter(author, str(settings.adapters_dir / "gone"), settings.base_model, "h", {}, {})
    with pytest.raises(NotFound, match="has no PEFT adapter"):
        check_training_request(store, AUTHOR, settings, config)
    assert store.list_jobs(author, kind="train") == []  # nothing was started

    # an adapter trained on another base model cannot be continued on this one
    other = Path(settings.adapters_dir / "other")
    other.mkdir(parents=True)
    (other / "adapter_config.json").write_text("{}")
    store.register_adapter(author, str(other), "someone/other-model", "h", {}, {})
    with pytest.raises(TwinError, match="was trained on someone/other-model"):
        check_training_request(store, AUTHOR, settings, config)


def test_the_api_refuses_feedback_only_without_an_adapter(settings: Settings) -> None:
    _small(settings)
    with TestClient(create_app(settings, with_model=False)) as client:
        store = DocumentStore.from_url(settings.resolved_database_url)
        try:
            _inbox_preferences(store, _author_with_writing(store))
        finally:
            store.close()
        response = client.post(f"/api/authors/{AUTHOR}/train", json={"feedback_only": True})
        assert response.status_code == 400, response.text
        assert "no active adapter" in response.json()["detail"]
        # the whole-config form, which `twin train --feedback-only` sends, is refused the same way
        body = {"config": TrainConfig.from_settings(settings, feedback_only=True).model_dump(mode="json")}
        response = client.post(f"/api/authors/{AUTHOR}/train", json=body)
        assert response.status_code == 400 and "no active adapter" in response.json()["detail"]
        assert client.get(f"/api/authors/{AUTHOR}/adapters").json() == []


def test_twin_train_feedback_only_says_what_is_missing(
    settings: Settings, store: DocumentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer
    from typer.testing import CliRunner

    from cli.train import register
    from twin.settings import get_settings

    monkeypatch.setenv("TWIN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TWIN_MODELS_PATH", str(settings.models_dir))
    monkeypatch.setenv("TWIN_TRAIN__MIN_WORDS", "500")
    get_settings.cache_clear()
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    try:
        author = _author_with_writing(store)
        result = CliRunner().invoke(app, ["train", AUTHOR, "--feedback-only"])
        assert result.exit_code == 1 and "no inbox preferences" in result.output, result.output
        _inbox_preferences(store, author)
        result = CliRunner().invoke(app, ["train", AUTHOR, "--feedback-only"])
        assert result.exit_code == 1 and "no active adapter" in result.output, result.output
        assert "1 edits, 1 approved-over-discarded" in result.output
        assert store.list_jobs(author) == [] and store.list_adapters(author) == []
    finally:
        get_settings.cache_clear()


def _lora_tensors(folder: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


@pytest.mark.slow
def test_feedback_only_continues_the_active_adapter_with_dpo_alone(
    settings: Settings, store: DocumentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray
    import torch

    for key, value in WORKER_ENV.items():
        monkeypatch.setenv(key, value)
    _small(settings)
    settings.train.dpo_max_new_tokens = 8
    author = _author_with_writing(store)
    tiny: dict[str, Any] = {"batch_size": 2, "max_length": 128, "dpo_max_length": 128, "save_steps": 100,
                            "max_failures": 0, "workers": 1}
    ray.init(address="local", num_cpus=min(os.cpu_count() or 2, 2), runtime_env={"env_vars": WORKER_ENV},
             configure_logging=False)
    events: list[TrainProgress] = []
    try:
        # v1: a one-step SFT adapter (a bigger learning rate, so that its LoRA B is clearly away from zero)
        v1 = train(store, AUTHOR, settings,
                   TrainConfig.from_settings(settings, max_steps=1, dpo=False, learning_rate=1e-3, **tiny))
        _inbox_preferences(store, author)
        config = TrainConfig.from_settings(settings, feedback_only=True, dpo_max_steps=2,
                                        dpo_gradient_accumulation_steps=1, **tiny)
        v2 = train(store, AUTHOR, settings, config, progress=events.append)
    finally:
        ray.shutdown()

    assert (v1.version, v2.version) == (1, 2) and v2.active
    assert not store.list_adapters(author)[0].active
    m = v2.metrics
    assert m["dpo_only"] is True and m["base_adapter_version"] == 1
    assert m["feedback_pairs"] == 2 and m["dpo_pairs"] == 2  # the inbox's pairs, no base-model answers
    assert m["dpo_step"] == 2
    assert not [key for key in m if key.startswith("sft_")] and "sft" not in m["peak_rss_mb"]
    assert not {e.stage for e in events} & {"sft"}  # SFT never ran
    assert m["perplexity_adapter"] > 0 and m["perplexity_examples"] >= 1  # held-out perplexity as usual
    assert v1.metrics["dpo_only"] is False and "base_adapter_version" not in v1.metrics
    assert v2.params["feedback_only"] is True and v2.params["dpo_ran"] is True
    (job,) = [j for j in store.list_jobs(author, kind="train") if j.result and j.result["version"] == 2]
    assert job.status == JobStatus.succeeded and job.progress["base_adapter_version"] == 1

    # the DPO data was the inbox's pairs, edit first
    stats = json.loads((Path(v2.path) / "dataset_stats.json").read_text())
    assert (stats["dpo_pairs"], stats["feedback_pairs"]) == (2, 2)

    # v2 started from v1's weights: its LoRA B matrices moved a little from v1's (two DPO steps at a small
    # learning rate), where a fresh LoRA would have B near zero, as far from v1's as v1's own size
    before, after = _lora_tensors(Path(v1.path)), _lora_tensors(Path(v2.path))
    assert before.keys() == after.keys()
    b_keys = [key for key in before if "lora_B" in key]
    assert b_keys
    moved = torch.stack([torch.linalg.norm(after[k] - before[k]) for k in b_keys]).sum()
    size = torch.stack([torch.linalg.norm(before[k]) for k in b_keys]).sum()
    assert 0 < moved < 0.5 * size, (float(moved), float(size))
    assert any(not torch.equal(after[k], before[k]) for k in before)  # and DPO did change it

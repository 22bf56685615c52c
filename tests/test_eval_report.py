"""`twin eval AUTHOR`: a real small run (real corpus, real adapter from `training.job.train`, the Ray Serve model,
the LangGraph agent) and the clear errors when there is nothing to evaluate.

Slow (a few minutes on a 2-core machine): `pytest -m slow tests/test_eval_report.py`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_support import build_world, world_settings
from evals.report import METRIC_LABELS, METRICS, REFERENCE
from evals.variants import VARIANT_LABELS, VARIANTS
from ingestion.pipeline import resume_embedding
from twin.domain import Adapter
from twin.settings import Settings, get_settings
from twin.store import DocumentStore

pytestmark = pytest.mark.slow

AUTHOR = "brandur"
TRAIN_OVERRIDES = {"max_eval_examples": 4, "max_length": 256}
SERVE_OVERRIDES = {"max_new_tokens": 40, "max_batch_size": 8}
AGENT_OVERRIDES = {"max_revisions": 1, "retrieve_k": 3}


@dataclass
class TrainedWorld:
    settings: Settings
    adapter: Adapter


def _env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Point the CLI's settings (read from the environment) at the world's data dir."""
    monkeypatch.setenv("TWIN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TWIN_MODELS_PATH", str(settings.models_dir))
    for group, values in (("TRAIN", TRAIN_OVERRIDES), ("SERVE", SERVE_OVERRIDES), ("AGENT", AGENT_OVERRIDES)):
        for key, value in values.items():
            monkeypatch.setenv(f"TWIN_{group}__{key.upper()}", str(value))
    monkeypatch.setenv("TWIN_SERVE__RAY_NUM_CPUS", "2")
    get_settings.cache_clear()


@dataclass
class CliResult:
    exit_code: int
    output: str
    """Whitespace-normalized (rich wraps long lines)."""
    exception: BaseException | None


def _cli(args: list[str]) -> CliResult:
    from cli import app

    try:
        result = CliRunner().invoke(app, args)
    finally:
        get_settings.cache_clear()
    return CliResult(result.exit_code, " ".join(result.output.split()), result.exception)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainedWorld]:
    """60 real posts stored and embedded, and a real LoRA adapter trained by `training.job.train` (2 SFT steps)."""
    from training.config import TrainConfig
    from training.job import train

    settings = world_settings(
        tmp_path_factory.mktemp("eval") / "data", train=TRAIN_OVERRIDES, serve=SERVE_OVERRIDES, agent=AGENT_OVERRIDES
    )
    settings.ensure_dirs()
    store = DocumentStore.from_url(settings.resolved_database_url)
    world = build_world(settings, store, limit=60, author_name=AUTHOR)
    try:
        asyncio.run(resume_embedding(world.ingestion, world.author))
    finally:
        world.close()  # the CLI opens the embedded Qdrant itself: one client per folder
    config = TrainConfig.from_settings(settings, workers=1, max_steps=2, batch_size=2, dpo=False, save_steps=100)
    adapter = train(store, AUTHOR, settings, config)
    store.close()
    yield TrainedWorld(settings=settings, adapter=adapter)


def test_eval_writes_report_for_all_variants(
    trained: TrainedWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _env(monkeypatch, trained.settings)
    out = tmp_path / "report"
    result = _cli(["eval", AUTHOR, "--limit", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)

    markdown = (out / "report.md").read_text()
    for variant in VARIANTS:
        assert VARIANT_LABELS[variant] in markdown
    for metric in METRICS:
        assert METRIC_LABELS[metric] in markdown
    for png in ("scores_by_variant.png", "style_distribution.png", "perplexity.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000, png
        assert f"]({png})" in markdown

    report = json.loads((out / "report.json").read_text())
    assert report["adapter_version"] == trained.adapter.version
    assert len(report["items"]) == 3
    for variant in VARIANTS:
        rows = [o for o in report["outputs"] if o["variant"] == variant]
        assert len(rows) == 3, variant
        assert any(o["text"].strip() for o in rows), f"{variant} wrote nothing"
        for metric in METRICS:
            mean = report["means"][variant][metric]
            assert mean is not None and 0.0 <= mean <= 1.0, (variant, metric, mean)
    assert report["means"][REFERENCE]["style"] is not None
    # The classifier was trained on TRAIN documents vs the base model's answers (no DPO data here).
    assert report["generic_source"] == "base_model_answers"
    assert report["perplexity"]["source"] == "adapter_metrics"
    assert report["perplexity"]["base"] > 0 and report["perplexity"]["adapter"] > 0

    # Held out means unseen: no variant was shown (or grounded on) a held-out document.
    held_out = [item["reference"][:60] for item in report["items"]]
    for output in report["outputs"]:
        if output["variant"] == REFERENCE:
            continue
        for passage in output["passages"]:
            assert not any(ref in passage for ref in held_out), output["variant"]
    retrieval_rows = [o for o in report["outputs"] if o["variant"] in ("base_retrieval", "adapter_retrieval", "agent")]
    assert all(o["passages"] for o in retrieval_rows)

    # The agent's runs went through the product path and were stored as eval runs.
    store = DocumentStore.from_url(trained.settings.resolved_database_url)
    try:
        runs = store.list_runs(store.get_author(AUTHOR))
    finally:
        store.close()
    assert len([r for r in runs if r.origin == "eval"]) == 3


def test_eval_without_adapter_says_how_to_get_one(
    settings: Settings, store: DocumentStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = build_world(settings, store, limit=12, author_name="newcomer")
    world.close()
    _env(monkeypatch, settings)
    result = _cli(["eval", "newcomer", "--out", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "no active adapter" in result.output and "twin train newcomer" in result.output
    assert not (tmp_path / "out" / "report.md").exists()

    result = _cli(["eval", "nobody"])
    assert result.exit_code != 0 and "nobody" in result.output


def test_eval_with_too_little_held_out_text_says_so(
    trained: TrainedWorld, settings: Settings, store: DocumentStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """12 posts give a test split of one document: too little to evaluate, and the message says what to do."""
    world = build_world(settings, store, limit=12, author_name="sparse")
    world.close()
    # A real adapter folder registered for this author (no dataset snapshot: the split is rebuilt).
    store.register_adapter(world.author, trained.adapter.path, settings.base_model, "none", {"seed": 42}, {})
    _env(monkeypatch, settings)
    monkeypatch.setenv("TWIN_TRAIN__MIN_WORDS", "100")
    result = _cli(["eval", "sparse", "--out", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "too little held-out text" in result.output and "TWIN_TRAIN__TEST_FRACTION" in result.output

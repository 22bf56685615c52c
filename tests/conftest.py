"""Shared fixtures: every test gets its own data dir; converted models are shared across the session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from twin.settings import Settings
from twin.store import DocumentStore

from benchmarks.corpus_site import CORPORA_DIR, REPO_ROOT, load_corpus  # noqa: F401 - one corpus reader
# Converting SmolLM2 and exporting MiniLM take ~30 s each: do it once per machine, not per test.
MODELS_CACHE = Path(os.environ.get("TWIN_TEST_MODELS_DIR", REPO_ROOT / ".cache" / "models"))


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's home or .env: point everything at tmp."""
    for key in list(os.environ):
        if key.startswith("TWIN_") and key not in {"TWIN_CORPORA_DIR", "TWIN_TEST_MODELS_DIR", "TWIN_TEST_POSTGRES_URL"}:
            monkeypatch.delenv(key)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OPIK_TRACK_DISABLE", "true")
    monkeypatch.setenv("OPIK_DEFAULT_FLUSH_TIMEOUT", "1")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    MODELS_CACHE.mkdir(parents=True, exist_ok=True)
    return Settings(
        data_dir=tmp_path / "data",
        models_path=MODELS_CACHE,
        allowed_hosts=["127.0.0.1", "localhost"],
        _env_file=None,
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[DocumentStore]:
    settings.ensure_dirs()
    db = DocumentStore.from_url(settings.resolved_database_url)
    yield db
    db.close()


@pytest.fixture(scope="session")
def corpora_dir() -> Path:
    if not CORPORA_DIR.exists():
        pytest.skip(f"corpora not found at {CORPORA_DIR} (set TWIN_CORPORA_DIR)")
    return CORPORA_DIR
